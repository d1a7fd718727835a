//! Lambda: the `points` route group (points history and redemption, referral history and stats).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::POINTS).await?;
    lambda_http::run(shared::http::functions::POINTS.app_router(&app)).await
}
