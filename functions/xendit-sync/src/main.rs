//! Lambda (EventBridge schedule): reconcile PENDING invoices with Xendit.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::XENDIT_SYNC).await?;
    let app = &app;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<EventBridgeEvent>| async move {
            let deadline = Some(ev.context.deadline);
            let summary = app
                .sync()
                .handle_event(ev.payload, deadline)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, Error>(summary)
        },
    ))
    .await
}
