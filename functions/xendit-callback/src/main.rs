//! Lambda (function URL): the Xendit invoice callback, credited exactly once.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::XENDIT_CALLBACK).await?;
    let env = |n: &str| std::env::var_os(n).is_some();
    app.config.require(&[
        ("XENDIT_CALLBACK_TOKEN", env("XENDIT_CALLBACK_TOKEN")),
        (
            "WS_MANAGEMENT_ENDPOINT",
            app.config.ws_management_endpoint.is_some(),
        ),
    ])?;
    lambda_http::run(shared::http::functions::XENDIT_CALLBACK.app_router(&app)).await
}
