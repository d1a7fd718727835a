//! Lambda: consumes the notify SQS queue, reporting partial batch failures (transient errors are
//! retried by SQS and dead-lettered after the queue's maxReceiveCount).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::NOTIFIER).await?;
    let delivery = app.delivery(app.notify_providers().await?);
    let delivery = &delivery;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(delivery.handle_sqs(event.payload).await)
    }))
    .await
}
