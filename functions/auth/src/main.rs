//! Lambda: the `auth` route group (signup, login, passwords, sessions, deactivation) on the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::AUTH).await?;
    // Signup and resets queue mail/SMS, and mails carry links to PUBLIC_BASE_URL.
    app.config.require(&[
        ("NOTIFY_QUEUE_URL", app.config.notify_queue_url.is_some()),
        (
            "PUBLIC_BASE_URL",
            std::env::var_os("PUBLIC_BASE_URL").is_some(),
        ),
    ])?;
    lambda_http::run(shared::http::functions::AUTH.app_router(&app)).await
}
