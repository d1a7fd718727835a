//! Lambda (function URL): the Xendit invoice callback, credited exactly once.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::XENDIT_CALLBACK).await?;
    lambda_http::run(shared::http::functions::XENDIT_CALLBACK.app_router(&app)).await
}
