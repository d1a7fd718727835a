//! Lambda: the `auth` route group (signup, login, passwords, sessions, deactivation) on the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    // Signup and resets send mail/SMS through the queue: refuse to start without it.
    app.config
        .require(&[("NOTIFY_QUEUE_URL", app.config.notify_queue_url.is_some())])?;
    lambda_http::run(shared::http::finish(shared::http::auth::router(), &app)).await
}
