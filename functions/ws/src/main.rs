//! Lambda: the WebSocket API (`$connect` authenticates `?token=`, `$disconnect`, `$default`
//! handles `subscribe:payment` / `unsubscribe:payment`).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let app = shared::App::for_function(&shared::lambda::WS).await?;
    let realtime = &app.realtime();
    lambda_runtime::run(service_fn(
        move |ev: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            Ok::<ApiGatewayProxyResponse, Error>(
                shared::http::ws::handle_event(realtime, ev.payload).await,
            )
        },
    ))
    .await
}
