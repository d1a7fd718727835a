//! `userstate dlq redrive`: moves the messages of a queue's dead-letter queue back to the queue
//! (the notification queue by default, `NOTIFY_QUEUE_URL`), once the cause is fixed. The DLQ is
//! found from the queue's `RedrivePolicy`. Each message is sent to the queue, then deleted from
//! the DLQ, so a second run finds the DLQ empty and moves nothing. Only a run killed between
//! the send and the delete of one message leaves that message in both (it is then delivered
//! twice at worst, never lost) — docs/OPERATIONS.md, runbook "Redrive the notification DLQ".

use anyhow::{Context, anyhow};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

/// How long a received message stays invisible to others while it is moved.
const VISIBILITY_SECS: i32 = 120;

/// The DLQ's URL from `queue_url`'s redrive policy.
async fn dead_letter_queue(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> anyhow::Result<String> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .with_context(|| format!("GetQueueAttributes {queue_url}"))?;
    let policy = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        .ok_or_else(|| anyhow!("{queue_url} has no redrive policy, so no dead-letter queue"))?;
    let policy: serde_json::Value = serde_json::from_str(policy).context("RedrivePolicy")?;
    let arn = policy["deadLetterTargetArn"]
        .as_str()
        .ok_or_else(|| anyhow!("RedrivePolicy without deadLetterTargetArn"))?;
    let name = arn.rsplit(':').next().unwrap_or_default();
    let url = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("GetQueueUrl {name}"))?;
    url.queue_url
        .ok_or_else(|| anyhow!("no URL for the dead-letter queue {name}"))
}

/// Moves every message of `queue_url`'s DLQ back to it; returns how many.
pub async fn redrive(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> anyhow::Result<usize> {
    let dlq = dead_letter_queue(sqs, queue_url).await?;
    let mut moved = 0;
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .visibility_timeout(VISIBILITY_SECS)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .context("ReceiveMessage from the dead-letter queue")?;
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        for m in messages {
            let (Some(body), Some(handle)) = (m.body(), m.receipt_handle()) else {
                continue;
            };
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(body)
                .set_message_attributes(m.message_attributes().cloned())
                .send()
                .await
                .context("SendMessage back to the queue")?;
            sqs.delete_message()
                .queue_url(&dlq)
                .receipt_handle(handle)
                .send()
                .await
                .context("DeleteMessage from the dead-letter queue")?;
            moved += 1;
        }
    }
}
