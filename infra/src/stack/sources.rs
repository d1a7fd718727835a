//! Event sources: the SQS event source mapping (batches, partial batch failures; the queue's
//! redrive policy moves a message to its DLQ after `maxReceiveCount` receives) and EventBridge
//! schedules (a timer at the rule's rate, `POST /_stack/tick` to fire now), with Lambda's
//! asynchronous retries and on-failure destination.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use serde_json::{Value as Json, json};

use super::runtime::{Function, InvokeError};

/// An SQS event source mapping.
pub struct SqsSource {
    pub function: Arc<Function>,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub report_failures: bool,
    pub region: String,
}

impl SqsSource {
    /// Polls forever (one poller; Lambda runs several, which only changes throughput).
    pub async fn run(self, sqs: aws_sdk_sqs::Client) {
        loop {
            match self.once(&sqs).await {
                Ok(0) => tokio::time::sleep(Duration::from_millis(200)).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(target: "stack", queue = %self.queue_arn, error = %format!("{e:#}"), "SQS poll failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One receive and invocation; returns how many messages it handled.
    pub async fn once(&self, sqs: &aws_sdk_sqs::Client) -> anyhow::Result<usize> {
        let got = sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size.clamp(1, 10))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .context("ReceiveMessage")?;
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
        let records: Vec<Json> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Json> = m
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                    .collect();
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.region,
                })
            })
            .collect();
        let n = records.len();
        let outcome = self.function.invoke(json!({ "Records": records })).await;
        let failed: Vec<String> = match &outcome {
            Ok(resp) if self.report_failures => resp["batchItemFailures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                .collect(),
            Ok(_) => Vec::new(),
            // The whole batch returns to the queue.
            Err(e) => {
                tracing::warn!(target: "stack", function = %self.function.spec.logical, error = %e, "SQS batch failed");
                messages
                    .iter()
                    .filter_map(|m| m.message_id.clone())
                    .collect()
            }
        };
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.message_id.as_ref().is_some_and(|id| !failed.contains(id)))
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        tracing::info!(target: "stack", function = %self.function.spec.logical, messages = n, failed = failed.len(), "SQS batch");
        if !done.is_empty() {
            sqs.delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(done))
                .send()
                .await
                .context("DeleteMessageBatch")?;
        }
        Ok(n)
    }
}

/// An EventBridge schedule and the target's async-invoke configuration.
pub struct Schedule {
    pub name: String,
    pub rule_arn: String,
    pub function: Arc<Function>,
    pub every: Option<Duration>,
    pub retries: u32,
    /// Queue URL of the on-failure destination.
    pub on_failure: Option<String>,
    pub account: String,
    pub region: String,
}

/// `rate(2 hours)` → 2 h; `cron(...)` is not timed locally (fire it with a tick).
pub fn rate(expr: &str) -> anyhow::Result<Option<Duration>> {
    let Some(inner) = expr.strip_prefix("rate(").and_then(|e| e.strip_suffix(')')) else {
        if expr.starts_with("cron(") {
            return Ok(None);
        }
        bail!("schedule expression {expr:?} is neither rate(...) nor cron(...)");
    };
    let (n, unit) = inner
        .trim()
        .split_once(' ')
        .with_context(|| format!("rate {inner:?}"))?;
    let n: u64 = n.parse().with_context(|| format!("rate {inner:?}"))?;
    let secs = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        other => bail!("rate unit {other:?}"),
    };
    Ok(Some(Duration::from_secs(n * secs)))
}

impl Schedule {
    pub fn event(&self) -> Json {
        json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "region": self.region,
            "resources": [self.rule_arn],
            "detail": {},
        })
    }

    /// One scheduled (asynchronous) invocation with Lambda's retries; after the last failure a
    /// record goes to the on-failure destination. Returns the last outcome.
    pub async fn fire(&self, sqs: &aws_sdk_sqs::Client) -> Result<Json, InvokeError> {
        let event = self.event();
        let mut last = Err(InvokeError::Crashed("not run".into()));
        for attempt in 0..=self.retries {
            last = self.function.invoke(event.clone()).await;
            match &last {
                Ok(_) => return last,
                Err(e) => {
                    tracing::warn!(target: "stack", schedule = %self.name, attempt, error = %e, "scheduled run failed")
                }
            }
        }
        if let (Some(url), Err(e)) = (&self.on_failure, &last) {
            let record = json!({
                "version": "1.0",
                "timestamp": chrono::Utc::now().to_rfc3339(),
                "requestContext": {
                    "requestId": uuid::Uuid::new_v4().to_string(),
                    "functionArn": format!("arn:aws:lambda:{}:{}:function:{}:$LATEST", self.region, self.account, self.function.spec.name),
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": self.retries + 1,
                },
                "requestPayload": event,
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                "responsePayload": {"errorMessage": e.to_string()},
            });
            if let Err(err) = sqs
                .send_message()
                .queue_url(url)
                .message_body(record.to_string())
                .send()
                .await
            {
                tracing::error!(target: "stack", error = %err, "on-failure destination");
            }
        }
        last
    }

    /// Fires at the rule's rate (or `every` when given) until the stack stops.
    pub async fn run(self: Arc<Self>, sqs: aws_sdk_sqs::Client) {
        let Some(every) = self.every else { return };
        let mut timer = tokio::time::interval(every);
        timer.tick().await;
        loop {
            timer.tick().await;
            let _ = self.fire(&sqs).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            rate("rate(2 hours)").unwrap(),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(
            rate("rate(1 minute)").unwrap(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(rate("cron(0 * * * ? *)").unwrap(), None);
        assert!(rate("every 2h").is_err());
    }
}
