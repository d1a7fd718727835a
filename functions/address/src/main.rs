//! Lambda: the `address` route group on the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    lambda_http::run(shared::http::finish(shared::http::address::router(), &app)).await
}
