//! Lambda: the `marketing` route group on the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::MARKETING).await?;
    lambda_http::run(shared::http::functions::MARKETING.app_router(&app)).await
}
