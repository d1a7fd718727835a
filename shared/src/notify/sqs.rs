//! The queue port on SQS: the message body is the serde JSON of the [`Notification`], consumed by
//! the `notifier` Lambda.

use async_trait::async_trait;

use super::{Notification, NotifyError, Queue};

/// Sends notifications to one SQS queue.
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, message: &Notification) -> Result<(), NotifyError> {
        let body =
            serde_json::to_string(message).map_err(|e| NotifyError::Permanent(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                NotifyError::Transient(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
            })
    }
}

/// The queue of a deployment without `NOTIFY_QUEUE_URL`: every send fails (functions that send
/// refuse to start without it; this keeps the others, e.g. `health`, independent of it).
pub struct UnconfiguredQueue;

#[async_trait]
impl Queue for UnconfiguredQueue {
    async fn send(&self, _: &Notification) -> Result<(), NotifyError> {
        Err(NotifyError::Permanent(
            "NOTIFY_QUEUE_URL is not configured".into(),
        ))
    }
}
