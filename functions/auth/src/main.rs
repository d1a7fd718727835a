//! Lambda: the `auth` route group (signup, login, passwords, sessions, deactivation) on the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::AUTH).await?;
    lambda_http::run(shared::http::functions::AUTH.app_router(&app)).await
}
