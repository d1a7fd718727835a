//! Lambda: the `user` route group (profile, referral code, profile image) on the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::USER).await?;
    lambda_http::run(shared::http::functions::USER.app_router(&app)).await
}
