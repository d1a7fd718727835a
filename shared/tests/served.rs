//! An app served on a loopback port (so the built-in Xendit simulator can deliver callbacks back to
//! it) together with its in-process router, for tests of flows that call back into the server.
#![allow(dead_code)]

use std::net::SocketAddr;

use axum::Router;
use shared::App;
use shared::config::Config;

/// A served app.
pub struct Served {
    pub app: App,
    pub router: Router,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

/// Binds a loopback port, points the configuration at it (public base URL and Xendit simulator),
/// lets `build` make the app from that configuration, and serves every route group plus the dev
/// routes on the port.
pub async fn serve(build: impl FnOnce(Config) -> App) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = Config::for_tests();
    config.public_base_url = base.clone();
    config.xendit_base_url = format!("{base}/_dev/xendit");
    let app = build(config);
    let routes = shared::http::routes().merge(shared::http::dev::router());
    let router = shared::http::finish(routes, &app);
    let served = router.clone();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            served.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Served { app, router, base }
}
