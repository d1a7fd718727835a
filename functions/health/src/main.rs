//! Lambda: `GET /health` on the HTTP API. It reads no table and sends nothing, so it starts
//! without storage or SDK clients (`App::stateless_from_env`): shorter init, no SDK in the binary.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::stateless_from_env()?;
    lambda_http::run(shared::http::functions::HEALTH.app_router(&app)).await
}
