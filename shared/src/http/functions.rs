//! Which routes each HTTP Lambda function serves — declared once: the function binaries build
//! their routers from these declarations and the template check reads them, so `template.yaml`'s
//! API events and what a function actually answers cannot drift apart. Each binary names only its
//! own constant, so it links only its own route group.

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;

/// An HTTP function: its name (binary, `BuildProperties.Binary`) and its documented router.
pub struct HttpFunction {
    pub name: &'static str,
    pub openapi: fn() -> OpenApiRouter<App>,
}

impl HttpFunction {
    /// The router the function serves (before the common layers).
    pub fn router(&self) -> Router<App> {
        (self.openapi)().split_for_parts().0
    }

    /// The finished router (common layers included): what the binary hands to lambda_http.
    pub fn app_router(&self, app: &App) -> Router {
        super::finish(self.router(), app)
    }
}

pub const HEALTH: HttpFunction = HttpFunction {
    name: "health",
    openapi: super::health::openapi_router,
};
pub const AUTH: HttpFunction = HttpFunction {
    name: "auth",
    openapi: super::auth::openapi_router,
};
pub const USER: HttpFunction = HttpFunction {
    name: "user",
    openapi: super::user::openapi_router,
};
pub const ADDRESS: HttpFunction = HttpFunction {
    name: "address",
    openapi: super::address::openapi_router,
};
pub const FCM: HttpFunction = HttpFunction {
    name: "fcm",
    openapi: super::fcm::openapi_router,
};
pub const MARKETING: HttpFunction = HttpFunction {
    name: "marketing",
    openapi: super::marketing::openapi_router,
};
pub const PAYMENT: HttpFunction = HttpFunction {
    name: "payment",
    openapi: super::payment::openapi_router,
};
pub const POINTS: HttpFunction = HttpFunction {
    name: "points",
    openapi: super::points::openapi_router,
};
/// Behind a Lambda function URL (callbacks arrive at `/`) and on the HTTP API's callback paths.
pub const XENDIT_CALLBACK: HttpFunction = HttpFunction {
    name: "xendit-callback",
    openapi: super::payment::callback_function_openapi_router,
};

/// Every HTTP function.
pub const ALL: &[&HttpFunction] = &[
    &HEALTH,
    &AUTH,
    &USER,
    &ADDRESS,
    &FCM,
    &MARKETING,
    &PAYMENT,
    &POINTS,
    &XENDIT_CALLBACK,
];

/// The documented router of an HTTP function, by name.
pub fn openapi_router(function: &str) -> Option<OpenApiRouter<App>> {
    ALL.iter()
        .find(|f| f.name == function)
        .map(|f| (f.openapi)())
}
