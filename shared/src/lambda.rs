//! What each Lambda function builds at init besides its tables — declared once per function.
//!
//! A function binary names only its own constant here, and each adapter is reached only through
//! the constructor a constant names, so the linker leaves out the adapters (and AWS SDK crates) a
//! function does not use: only `user` contains S3, only `auth`, `user` and `fcm` contain SQS, only the
//! payment functions contain the API Gateway Management client. A port a function does not
//! declare answers as unconfigured (see [`crate::app::App::from_config_with`]).

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::blobs::{BlobsRef, S3Blobs};
use crate::config::{Config, Setting};
use crate::notify::QueueRef;
use crate::notify::sqs::SqsQueue;
use crate::ws::{ApiGatewayPush, WsSenderRef};

/// Builds the notify queue adapter (given `NOTIFY_QUEUE_URL`).
pub type QueueAdapter = fn(&SdkConfig, &str) -> QueueRef;
/// Builds the blob store adapter.
pub type BlobsAdapter = fn(&SdkConfig, &Config) -> BlobsRef;
/// Builds the WebSocket push adapter (given `WS_MANAGEMENT_ENDPOINT`).
pub type WsPushAdapter = fn(&SdkConfig, &str) -> WsSenderRef;

/// The AWS adapters of the ports other than the tables (which every SDK function has).
#[derive(Clone, Copy, Default)]
pub struct AwsPorts {
    pub queue: Option<QueueAdapter>,
    pub blobs: Option<BlobsAdapter>,
    pub ws_push: Option<WsPushAdapter>,
}

impl AwsPorts {
    /// Tables only.
    pub const NONE: AwsPorts = AwsPorts {
        queue: None,
        blobs: None,
        ws_push: None,
    };
    /// Every adapter (the `userstate` CLI and local server against AWS).
    pub const ALL: AwsPorts = AwsPorts {
        queue: Some(sqs_queue),
        blobs: Some(s3_blobs),
        ws_push: Some(api_gateway_push),
    };
}

/// SQS.
pub fn sqs_queue(sdk: &SdkConfig, url: &str) -> QueueRef {
    Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url))
}

/// S3 (`IMAGE_BUCKET`; URLs under `IMAGE_PUBLIC_BASE_URL` when set, else the API's
/// `{PUBLIC_BASE_URL}/resources/…` route, never presigned).
pub fn s3_blobs(sdk: &SdkConfig, config: &Config) -> BlobsRef {
    let bucket = config.image_bucket.clone().unwrap_or_default();
    let public = match &config.image_public_base_url {
        Some(cdn) => cdn.clone(),
        None => format!("{}/resources", config.public_base_url.trim_end_matches('/')),
    };
    Arc::new(S3Blobs::new(aws_sdk_s3::Client::new(sdk), &bucket, &public))
}

/// API Gateway Management API of the WebSocket stage.
pub fn api_gateway_push(sdk: &SdkConfig, endpoint: &str) -> WsSenderRef {
    let conf = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
        .endpoint_url(endpoint)
        .build();
    let client = aws_sdk_apigatewaymanagement::Client::from_conf(conf);
    Arc::new(ApiGatewayPush::new(client))
}

/// A Lambda function: its name (binary, `BuildProperties.Binary`, key of its table grants in
/// [`crate::permissions`]), the adapters it builds and the settings it cannot start without in
/// aws mode.
pub struct Function {
    pub name: &'static str,
    pub ports: AwsPorts,
    pub settings: &'static [Setting],
}

pub const AUTH: Function = Function {
    name: "auth",
    // Signup, OTP and password-reset messages.
    ports: AwsPorts {
        queue: Some(sqs_queue),
        ..AwsPorts::NONE
    },
    settings: &[
        Setting::JwtSecret,
        Setting::NotifyQueueUrl,
        Setting::PublicBaseUrl,
    ],
};
pub const USER: Function = Function {
    name: "user",
    // Profile images; the code verifying a phone change goes out by SMS.
    ports: AwsPorts {
        blobs: Some(s3_blobs),
        queue: Some(sqs_queue),
        ..AwsPorts::NONE
    },
    settings: &[
        Setting::JwtSecret,
        Setting::ImageBucket,
        Setting::NotifyQueueUrl,
    ],
};
pub const ADDRESS: Function = Function {
    name: "address",
    ports: AwsPorts::NONE,
    settings: &[Setting::JwtSecret],
};
pub const FCM: Function = Function {
    name: "fcm",
    // Admin push is queued for the notifier.
    ports: AwsPorts {
        queue: Some(sqs_queue),
        ..AwsPorts::NONE
    },
    settings: &[Setting::JwtSecret, Setting::NotifyQueueUrl],
};
pub const MARKETING: Function = Function {
    name: "marketing",
    ports: AwsPorts::NONE,
    settings: &[Setting::JwtSecret],
};
pub const POINTS: Function = Function {
    name: "points",
    ports: AwsPorts::NONE,
    settings: &[Setting::JwtSecret],
};
/// Payment status changes are pushed to the payer's WebSocket connections.
const PAYMENT_PORTS: AwsPorts = AwsPorts {
    ws_push: Some(api_gateway_push),
    ..AwsPorts::NONE
};
pub const PAYMENT: Function = Function {
    name: "payment",
    ports: PAYMENT_PORTS,
    settings: &[
        Setting::JwtSecret,
        Setting::XenditSecretKey,
        Setting::WsManagementEndpoint,
    ],
};
pub const XENDIT_CALLBACK: Function = Function {
    name: "xendit-callback",
    ports: PAYMENT_PORTS,
    settings: &[
        Setting::XenditCallbackToken,
        Setting::XenditSecretKey,
        Setting::WsManagementEndpoint,
    ],
};
pub const XENDIT_SYNC: Function = Function {
    name: "xendit-sync",
    ports: PAYMENT_PORTS,
    settings: &[Setting::XenditSecretKey, Setting::WsManagementEndpoint],
};
/// Connection bookkeeping, and the replies to client messages: API Gateway drops a `$default`
/// integration's answer unless the route has a route response, so replies go out through the
/// Management API like the payment functions' pushes.
pub const WS: Function = Function {
    name: "ws",
    ports: PAYMENT_PORTS,
    settings: &[Setting::JwtSecret, Setting::WsManagementEndpoint],
};
/// Delivers queued messages; its providers (SES, FCM, SMS) are built by
/// [`crate::app::App::notify_providers`].
pub const NOTIFIER: Function = Function {
    name: "notifier",
    ports: AwsPorts::NONE,
    settings: &[],
};

/// Every function that builds an [`crate::app::App`] with SDK clients (`health` builds none).
pub const ALL: &[&Function] = &[
    &AUTH,
    &USER,
    &ADDRESS,
    &FCM,
    &MARKETING,
    &POINTS,
    &PAYMENT,
    &XENDIT_CALLBACK,
    &XENDIT_SYNC,
    &WS,
    &NOTIFIER,
];
