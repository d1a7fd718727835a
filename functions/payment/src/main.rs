//! Lambda: the `payment` route group (balance, checkout, invoices, sync trigger) on the HTTP API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::PAYMENT).await?;
    lambda_http::run(shared::http::functions::PAYMENT.app_router(&app)).await
}
