//! Lambda (EventBridge schedule): reconcile PENDING invoices with Xendit.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::XENDIT_SYNC).await?;
    let env = |n: &str| std::env::var_os(n).is_some();
    app.config.require(&[
        ("XENDIT_SECRET_KEY", env("XENDIT_SECRET_KEY")),
        (
            "WS_MANAGEMENT_ENDPOINT",
            app.config.ws_management_endpoint.is_some(),
        ),
    ])?;
    let app = &app;
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<EventBridgeEvent>| async move {
            let summary = shared::payments::sync::handle_event(app, ev.payload)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, Error>(summary)
        },
    ))
    .await
}
