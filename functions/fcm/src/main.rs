//! Lambda: the `fcm` route group on the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::FCM).await?;
    lambda_http::run(shared::http::functions::FCM.app_router(&app)).await
}
