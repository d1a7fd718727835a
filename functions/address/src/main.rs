//! Lambda: the `address` route group on the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::ADDRESS).await?;
    lambda_http::run(shared::http::functions::ADDRESS.app_router(&app)).await
}
