//! Lambda: the `payment` route group (balance, checkout, invoices, sync trigger) on the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::PAYMENT).await?;
    let env = |n: &str| std::env::var_os(n).is_some();
    app.config.require(&[
        ("XENDIT_SECRET_KEY", env("XENDIT_SECRET_KEY")),
        (
            "WS_MANAGEMENT_ENDPOINT",
            app.config.ws_management_endpoint.is_some(),
        ),
    ])?;
    lambda_http::run(shared::http::functions::PAYMENT.app_router(&app)).await
}
