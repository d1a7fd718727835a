//! An app served on a loopback port (so the Xendit simulator can deliver callbacks back to it)
//! together with its in-process router, for tests of flows that call back into the server; and
//! [`local_routes`], what the local server serves.
#![allow(dead_code)]

use std::net::SocketAddr;

use std::sync::Arc;
use std::time::Duration;

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
    let router = shared::http::finish(local_routes(&app), &app);
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

/// Every route group, the dev group and the Xendit simulator (`infra/xendit-sim`), as `userstate
/// serve` mounts them in local mode: the simulator takes the app's key and callback token, calls
/// back to `public_base_url` and reads the app's clock.
pub fn local_routes(app: &App) -> Router<App> {
    let c = &app.config;
    let key = c.xendit_secret_key.as_ref().map(|s| s.expose().to_owned());
    let token = c
        .xendit_callback_token
        .as_ref()
        .map(|s| s.expose().to_owned());
    let mut sim = xendit_sim::SimSettings::new(
        key.unwrap_or_default(),
        token.unwrap_or_default(),
        c.public_base_url.clone(),
    );
    sim.client_timeout = Duration::from_millis(c.xendit_timeout_ms);
    let clock = app.clock.clone();
    sim.now = Arc::new(move || clock.now());
    let routes = shared::http::local_routes(xendit_sim::openapi());
    xendit_sim::mount(routes, sim)
}
