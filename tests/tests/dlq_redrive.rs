//! Black-box: `userstate dlq redrive` moves a dead-letter queue's messages back to its queue on
//! the emulator exactly once (a second run moves nothing).

use std::process::Command;

use aws_sdk_sqs::types::QueueAttributeName;

fn redrive(queue: &str) -> String {
    let out = Command::new(tests::server::binary())
        .args(["dlq", "redrive", "--queue", queue])
        .output()
        .expect("userstate runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .send()
            .await
            .expect("receive");
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        bodies.extend(messages.iter().filter_map(|m| m.body().map(str::to_owned)));
    }
}

#[tokio::test]
async fn redrive_moves_dead_letters_back_exactly_once() {
    let Some(sdk) = tests::dynamo::emulator_sdk("dlq_redrive").await else {
        return;
    };
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let dlq = sqs
        .create_queue()
        .queue_name(format!("redrive-dlq-{run}"))
        .send()
        .await
        .expect("dlq");
    let dlq_url = dlq.queue_url.expect("url");
    let dlq_arn = format!("arn:aws:sqs:us-east-1:123456789012:redrive-dlq-{run}");
    let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5});
    let queue = sqs
        .create_queue()
        .queue_name(format!("redrive-queue-{run}"))
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .expect("queue");
    let queue_url = queue.queue_url.expect("url");
    for i in 0..13 {
        sqs.send_message()
            .queue_url(&dlq_url)
            .message_body(format!("{{\"job\":{i}}}"))
            .send()
            .await
            .expect("send");
    }

    assert!(redrive(&queue_url).contains("moved 13 message(s)"));
    assert!(
        redrive(&queue_url).contains("moved 0 message(s)"),
        "a second run moves nothing"
    );
    assert!(drain(&sqs, &dlq_url).await.is_empty(), "the DLQ is empty");
    let mut back = drain(&sqs, &queue_url).await;
    back.sort();
    let mut expected: Vec<String> = (0..13).map(|i| format!("{{\"job\":{i}}}")).collect();
    expected.sort();
    assert_eq!(back, expected, "each message back exactly once");
}
