//! Typed configuration from the environment, validated once at start.
//! Seed names of the original system are kept (`API_PORT`, `ORIGIN_CORS`, `SECRET_AUTH_CONFIG`,
//! `XENDIT_SECRET_KEY`, `XENDIT_CALLBACK_TOKEN`, `API_URL_SMSVIRO`, `SMSVIROTOKEN`).

use std::path::PathBuf;

use crate::ratelimit::{HashLimits, Limit};

/// Which adapters the application wires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded store and in-process stand-ins (the default).
    Local,
    /// DynamoDB, SQS, S3, SES, API Gateway Management.
    Aws,
}

/// A secret value that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret's value; use only where it is needed (signing, comparing, outbound auth).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A configuration problem, naming every offending variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// The application's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub backend: Backend,
    /// `API_PORT` (default 33010): port of the local server.
    pub api_port: u16,
    /// `ORIGIN_CORS`: allowed browser origins (comma list); empty allows none.
    pub origin_cors: Vec<String>,
    /// `SECRET_AUTH_CONFIG`: HS256 key for JWTs, at least 32 bytes (a fixed dev value in local mode).
    pub jwt_secret: Secret,
    /// `SECRET_AUTH_CONFIG_PREVIOUS` (optional, ≥ 32 bytes): during a key rotation, tokens
    /// signed with the previous key still verify (new ones are signed with `jwt_secret`).
    pub jwt_secret_previous: Option<Secret>,
    /// `JWT_TTL_SECS` (default 86400): lifetime of an issued token.
    pub jwt_ttl_secs: i64,
    /// `PUBLIC_BASE_URL`: base URL clients reach this API at (links in mail, image URLs).
    pub public_base_url: String,
    /// `MAIN_TABLE` / `LOGS_TABLE`: physical table names.
    pub main_table: String,
    pub logs_table: String,
    /// `LOG_RETENTION_DAYS` (default 90): TTL of log-table entries.
    pub log_retention_days: i64,
    /// `USERSTATE_DATA_DIR` (default `./.userstate`): where the local store lives; `None` = memory.
    pub data_dir: Option<PathBuf>,
    /// `BODY_LIMIT_BYTES` (default 1 MiB): largest accepted request body (uploads have their own cap).
    pub body_limit_bytes: usize,
    /// `XENDIT_SECRET_KEY`, `XENDIT_CALLBACK_TOKEN`: dev values in local mode; in aws mode only
    /// what the environment gives (the functions that use them require them at start, see
    /// [`Setting`]). `XENDIT_BASE_URL`.
    pub xendit_secret_key: Option<Secret>,
    pub xendit_callback_token: Option<Secret>,
    /// `XENDIT_CALLBACK_TOKEN_PREVIOUS` (optional): during a rotation of the callback token at
    /// Xendit, callbacks carrying the previous token are accepted too.
    pub xendit_callback_token_previous: Option<Secret>,
    pub xendit_base_url: String,
    /// `XENDIT_TIMEOUT_MS` (default 10000): per-request timeout of calls to Xendit.
    pub xendit_timeout_ms: u64,
    /// `INVOICE_DURATION_SECS` (default 86400): how long a checkout invoice stays payable.
    pub invoice_duration_secs: i64,
    /// `NOTIFY_QUEUE_URL`: SQS queue for outbound mail/SMS/push (aws mode).
    pub notify_queue_url: Option<String>,
    /// `IMAGE_BUCKET`: S3 bucket for profile images (aws mode).
    pub image_bucket: Option<String>,
    /// `IMAGE_PUBLIC_BASE_URL`: public base (e.g. CloudFront) for images in `IMAGE_BUCKET`; when unset,
    /// image URLs are `{PUBLIC_BASE_URL}/resources/…`, served by the user function.
    pub image_public_base_url: Option<String>,
    /// `FCM_SERVICE_ACCOUNT_JSON`: Firebase service-account JSON, inline or as a file path (without
    /// it the notifier drops push messages with an error log).
    pub fcm_service_account: Option<Secret>,
    /// `FCM_BASE_URL` (default `https://fcm.googleapis.com`): FCM HTTP v1 endpoint (tests point it at a fake).
    pub fcm_base_url: String,
    /// `NOTIFY_MAX_RECEIVES` (default 5): the notify queue's `maxReceiveCount`; a failure on that
    /// receive is logged as dead-lettered.
    pub notify_max_receives: i64,
    /// `WS_MANAGEMENT_ENDPOINT`: API Gateway Management endpoint of the WebSocket API (aws mode).
    pub ws_management_endpoint: Option<String>,
    /// `MAIL_FROM`: sender address of outgoing mail.
    pub mail_from: String,
    /// `API_URL_SMSVIRO` / `SMSVIROTOKEN`: SMS gateway.
    pub sms_base_url: Option<String>,
    pub sms_api_key: Option<Secret>,
    /// `SMS_SENDER_ID`: sender id shown on SMS.
    pub sms_sender_id: String,
    /// `RATE_LIMIT_*` (`MAX/SECONDS`): rate limits of the auth routes.
    pub limits: RateLimits,
    /// `POINTS_*` / `REFERRAL_*`: earning, redemption, expiry and referral rules.
    pub points: PointsConfig,
    /// `HASH_QUEUE_MAX` (default 8 per core), `HASH_INFLIGHT_PER_CLIENT` (default 4): bounds on
    /// password hashing work waiting in this process, in all and per client.
    pub hash_limits: HashLimits,
    /// `MAX_OPEN_INVOICES` (default 10): PENDING checkout invoices one user may hold.
    pub max_open_invoices: i64,
    /// `SYNC_BUDGET_SECS` (default 240): wall-clock budget of one sync run (keep it below the
    /// sync function's timeout; the Lambda deadline also bounds it).
    pub sync_budget_secs: u64,
    /// `SYNC_MAX_INVOICES` (default 300): invoices checked at Xendit per sync run at most.
    pub sync_max_invoices: usize,
    /// `SYNC_XENDIT_RPM` (default 500; 0 = unpaced): invoice lookups one sync run makes at
    /// Xendit per minute at most. Xendit allows 600 a minute per endpoint in live mode and 60 in
    /// test mode; set 50 for a test-mode key.
    pub sync_xendit_rpm: u32,
    /// `RECONCILE_MAX_WALLETS` (default 5000, 0 = off): wallets each scheduled sync run proves
    /// against their ledgers (the pass resumes in the next run; `crate::reconcile`).
    pub reconcile_max_wallets: usize,
    /// `SYNC_MAX_WALLETS` (default 5000): wallets the points-expiry step looks at per run at most.
    pub sync_max_wallets: usize,
    /// `WS_SESSION_RECHECK_SECS` (default 30): how often the local `/ws` endpoint re-checks the
    /// session of an open connection (closing it once revoked).
    pub ws_recheck_secs: u64,
    /// `WS_IDLE_TIMEOUT_SECS` (default 600) and `WS_MAX_CONNECTION_SECS` (default 7200): the local
    /// `/ws` closes a connection idle that long, and any connection after the maximum, as API
    /// Gateway's WebSocket API does (10 minutes idle, 2 hours in all).
    pub ws_idle_secs: u64,
    pub ws_max_connection_secs: u64,
}

/// A setting a function needs at start in aws mode, declared next to its ports
/// ([`crate::lambda::Function`]): missing or unusable values stop the function with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `SECRET_AUTH_CONFIG`: signs and verifies session tokens (and keys OTP hashes).
    JwtSecret,
    /// `XENDIT_SECRET_KEY`: calls the Xendit API.
    XenditSecretKey,
    /// `XENDIT_CALLBACK_TOKEN`: authenticates Xendit's callbacks.
    XenditCallbackToken,
    /// `NOTIFY_QUEUE_URL`: queues mail, SMS and push.
    NotifyQueueUrl,
    /// `PUBLIC_BASE_URL`: links in mail.
    PublicBaseUrl,
    /// `IMAGE_BUCKET`: profile images.
    ImageBucket,
    /// `WS_MANAGEMENT_ENDPOINT`: pushes payment status to WebSocket clients.
    WsManagementEndpoint,
}

/// Shortest accepted `XENDIT_CALLBACK_TOKEN` / `XENDIT_SECRET_KEY` in aws mode (Xendit's are longer).
const MIN_PROVIDER_SECRET: usize = 32;

/// When a pending referral becomes completed (and the referrer earns the bonus).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReferralQualify {
    /// The referred user's first PAID invoice (the default).
    FirstPayment,
    /// Verification of the referred user's account.
    Verification,
}

/// Points and referral rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointsConfig {
    /// `POINTS_REDEEM_RATE` (default 100): rupiah credited per redeemed point.
    pub redeem_rate: i64,
    /// `POINTS_REDEEM_MIN` (default 100): fewest points one redemption may convert.
    pub redeem_min: i64,
    /// `POINTS_PER_AMOUNT` (default 10000): rupiah of a paid invoice that earn one point; 0 disables.
    pub per_amount: i64,
    /// `POINTS_EXPIRY_MONTHS` (default 0 = never): points expire this many months after being earned.
    pub expiry_months: i64,
    /// `REFERRAL_BONUS_POINTS` (default 50): points the referrer earns per completed referral.
    pub referral_bonus: i64,
    /// `REFERRAL_QUALIFY_ON` (`first_payment` default, or `verification`).
    pub qualify_on: ReferralQualify,
    /// `REFERRAL_MIN_PAYMENT` (default 50000): the smallest payment (rupiah) that qualifies a
    /// referral; smaller payments leave it pending.
    pub referral_min_payment: i64,
    /// `REFERRAL_CAP` (`MAX/SECONDS`, default 10 per 30 days): rewarded referrals per referrer
    /// per window; past it a referral completes without a bonus.
    pub referral_cap: Limit,
}

impl Default for PointsConfig {
    fn default() -> Self {
        PointsConfig {
            redeem_rate: 100,
            redeem_min: 100,
            per_amount: 10_000,
            expiry_months: 0,
            referral_bonus: 50,
            qualify_on: ReferralQualify::FirstPayment,
            referral_min_payment: 50_000,
            referral_cap: Limit::new(10, 30 * 86_400),
        }
    }
}

/// Rate limits of the auth routes, each `MAX/SECONDS` in its environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// `RATE_LIMIT_LOGIN_ACCOUNT` (10/300): failed logins per account.
    pub login_account: Limit,
    /// `RATE_LIMIT_LOGIN_IP` (50/300): login attempts per IP.
    pub login_ip: Limit,
    /// `RATE_LIMIT_OTP_ID` (5/3600): OTP sends per phone number (the original `otp_tracker`).
    pub otp_identifier: Limit,
    /// `RATE_LIMIT_OTP_IP` (20/3600): OTP sends per IP.
    pub otp_ip: Limit,
    /// `RATE_LIMIT_RESET_ID` (5/3600): password-reset requests per e-mail.
    pub reset_identifier: Limit,
    /// `RATE_LIMIT_RESET_IP` (20/3600): password-reset requests per IP.
    pub reset_ip: Limit,
    /// `RATE_LIMIT_CHECK_EMAIL_IP` (30/60): `/check/email` calls per IP.
    pub check_email_ip: Limit,
    /// `RATE_LIMIT_SIGNUP_IP` (20/3600): signups per IP.
    pub signup_ip: Limit,
    /// `RATE_LIMIT_PASSWORD_CHANGE` (5/900): failed `/update-pwd` attempts per account.
    pub password_change: Limit,
    /// `RATE_LIMIT_PHONE_CHANGE` (5/86400): phone-change codes sent per account.
    pub phone_change: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            login_account: Limit::new(10, 300),
            login_ip: Limit::new(50, 300),
            otp_identifier: Limit::new(5, 3600),
            otp_ip: Limit::new(20, 3600),
            reset_identifier: Limit::new(5, 3600),
            reset_ip: Limit::new(20, 3600),
            check_email_ip: Limit::new(30, 60),
            signup_ip: Limit::new(20, 3600),
            password_change: Limit::new(5, 900),
            phone_change: Limit::new(5, 86_400),
        }
    }
}

/// Dev-only JWT key used in local mode when `SECRET_AUTH_CONFIG` is unset.
const LOCAL_DEV_SECRET: &str = "local-development-secret-not-for-production-use!";
/// Local-mode Xendit key and callback token (the simulator's); refused in aws mode.
pub const LOCAL_XENDIT_KEY: &str = "xnd_development_local";
pub const LOCAL_CALLBACK_TOKEN: &str = "local-callback-token";

/// 32 random bytes, hex: a key nobody else knows.
fn random_key() -> String {
    let mut b = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads configuration through `get` (tests pass a map).
    // Long by nature: one short block per setting, in the README table's order; splitting it
    // would scatter the settings without making any one of them easier to read.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let backend = match get("USERSTATE_BACKEND").as_deref() {
            None | Some("local") => Backend::Local,
            Some("aws") => Backend::Aws,
            Some(other) => {
                problems.push(format!(
                    "USERSTATE_BACKEND must be `local` or `aws`, got `{other}`"
                ));
                Backend::Local
            }
        };
        let aws = backend == Backend::Aws;
        let mut require = |name: &str| -> Option<String> {
            let v = get(name);
            if v.is_none() && aws {
                problems.push(format!("{name} is required when USERSTATE_BACKEND=aws"));
            }
            v
        };
        // Required by the functions that sign or verify tokens (see `Setting`), not by all.
        let secret = get("SECRET_AUTH_CONFIG");
        let main_table = require("MAIN_TABLE");
        let logs_table = require("LOGS_TABLE");
        let mut parse_num = |name: &str, default: i64, min: i64, max: i64| -> i64 {
            match get(name) {
                None => default,
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if (min..=max).contains(&n) => n,
                    _ => {
                        problems.push(format!(
                            "{name} must be an integer in {min}..={max}, got `{v}`"
                        ));
                        default
                    }
                },
            }
        };
        let api_port = parse_num("API_PORT", 33010, 0, 65535) as u16;
        let jwt_ttl_secs = parse_num("JWT_TTL_SECS", 86_400, 60, 90 * 86_400);
        let log_retention_days = parse_num("LOG_RETENTION_DAYS", 90, 1, 3650);
        let xendit_timeout_ms = parse_num("XENDIT_TIMEOUT_MS", 10_000, 100, 120_000) as u64;
        let invoice_duration_secs = parse_num("INVOICE_DURATION_SECS", 86_400, 60, 31 * 86_400);
        let notify_max_receives = parse_num("NOTIFY_MAX_RECEIVES", 5, 1, 1000);
        let body_limit_bytes = parse_num("BODY_LIMIT_BYTES", 1 << 20, 1024, 64 << 20) as usize;
        let default_hash = HashLimits::default();
        let hash_limits = HashLimits {
            queue_max: parse_num("HASH_QUEUE_MAX", default_hash.queue_max as i64, 1, 10_000)
                as usize,
            per_client: parse_num(
                "HASH_INFLIGHT_PER_CLIENT",
                default_hash.per_client as i64,
                1,
                1_000,
            ) as usize,
        };
        let max_open_invoices = parse_num("MAX_OPEN_INVOICES", 10, 1, 10_000);
        let sync_budget_secs = parse_num("SYNC_BUDGET_SECS", 240, 1, 900) as u64;
        let sync_max_invoices = parse_num("SYNC_MAX_INVOICES", 300, 1, 100_000) as usize;
        let sync_xendit_rpm = parse_num("SYNC_XENDIT_RPM", 500, 0, 100_000) as u32;
        let reconcile_max_wallets =
            parse_num("RECONCILE_MAX_WALLETS", 5_000, 0, 10_000_000) as usize;
        let sync_max_wallets = parse_num("SYNC_MAX_WALLETS", 5_000, 1, 10_000_000) as usize;
        let ws_recheck_secs = parse_num("WS_SESSION_RECHECK_SECS", 30, 1, 3_600) as u64;
        let ws_idle_secs = parse_num("WS_IDLE_TIMEOUT_SECS", 600, 1, 86_400) as u64;
        let ws_max_connection_secs =
            parse_num("WS_MAX_CONNECTION_SECS", 7_200, 1, 7 * 86_400) as u64;
        let points = PointsConfig {
            redeem_rate: parse_num("POINTS_REDEEM_RATE", 100, 1, 1_000_000),
            redeem_min: parse_num("POINTS_REDEEM_MIN", 100, 1, 1_000_000_000),
            per_amount: parse_num("POINTS_PER_AMOUNT", 10_000, 0, 1_000_000_000),
            expiry_months: parse_num("POINTS_EXPIRY_MONTHS", 0, 0, 120),
            referral_bonus: parse_num("REFERRAL_BONUS_POINTS", 50, 0, 1_000_000),
            referral_min_payment: parse_num("REFERRAL_MIN_PAYMENT", 50_000, 1, 1_000_000_000),
            referral_cap: PointsConfig::default().referral_cap,
            qualify_on: match get("REFERRAL_QUALIFY_ON").as_deref() {
                None | Some("first_payment") => ReferralQualify::FirstPayment,
                Some("verification") => ReferralQualify::Verification,
                Some(other) => {
                    problems.push(format!(
                        "REFERRAL_QUALIFY_ON must be `first_payment` or `verification`, got `{other}`"
                    ));
                    ReferralQualify::FirstPayment
                }
            },
        };
        let mut points = points;
        let mut limits = RateLimits::default();
        for (name, slot) in [
            ("RATE_LIMIT_LOGIN_ACCOUNT", &mut limits.login_account),
            ("RATE_LIMIT_LOGIN_IP", &mut limits.login_ip),
            ("RATE_LIMIT_OTP_ID", &mut limits.otp_identifier),
            ("RATE_LIMIT_OTP_IP", &mut limits.otp_ip),
            ("RATE_LIMIT_RESET_ID", &mut limits.reset_identifier),
            ("RATE_LIMIT_RESET_IP", &mut limits.reset_ip),
            ("RATE_LIMIT_CHECK_EMAIL_IP", &mut limits.check_email_ip),
            ("RATE_LIMIT_SIGNUP_IP", &mut limits.signup_ip),
            ("RATE_LIMIT_PASSWORD_CHANGE", &mut limits.password_change),
            ("RATE_LIMIT_PHONE_CHANGE", &mut limits.phone_change),
        ] {
            if let Some(v) = get(name) {
                match Limit::parse(&v) {
                    Some(l) => *slot = l,
                    None => problems.push(format!(
                        "{name} must be MAX/SECONDS (e.g. 10/300), got `{v}`"
                    )),
                }
            }
        }
        if let Some(v) = get("REFERRAL_CAP") {
            match Limit::parse(&v) {
                Some(l) => points.referral_cap = l,
                None => problems.push(format!(
                    "REFERRAL_CAP must be MAX/SECONDS (e.g. 10/2592000), got `{v}`"
                )),
            }
        }
        let jwt_secret = match secret {
            Some(s) if s.len() >= 32 => Secret::new(s),
            Some(_) => {
                problems.push("SECRET_AUTH_CONFIG must be at least 32 bytes".into());
                Secret::new(LOCAL_DEV_SECRET)
            }
            // On AWS a function without the secret gets a random key of its own: nothing it
            // signs verifies elsewhere and nothing signed elsewhere verifies in it (functions
            // that handle tokens require the setting at start).
            None if aws => Secret::new(random_key()),
            None => Secret::new(LOCAL_DEV_SECRET),
        };
        let jwt_secret_previous = get("SECRET_AUTH_CONFIG_PREVIOUS").map(Secret::new);
        if jwt_secret_previous
            .as_ref()
            .is_some_and(|p| p.expose().len() < 32)
        {
            problems.push("SECRET_AUTH_CONFIG_PREVIOUS must be at least 32 bytes".into());
        }
        if !problems.is_empty() {
            return Err(ConfigError(problems.join("; ")));
        }
        let public_base_url =
            get("PUBLIC_BASE_URL").unwrap_or_else(|| format!("http://localhost:{api_port}"));
        Ok(Config {
            backend,
            api_port,
            origin_cors: get("ORIGIN_CORS")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            jwt_secret,
            jwt_secret_previous,
            jwt_ttl_secs,
            xendit_base_url: get("XENDIT_BASE_URL").unwrap_or_else(|| {
                if aws {
                    "https://api.xendit.co".into()
                } else {
                    format!("{public_base_url}/_dev/xendit")
                }
            }),
            xendit_timeout_ms,
            invoice_duration_secs,
            public_base_url,
            main_table: main_table
                .unwrap_or_else(|| crate::store::schema::MAIN.default_name.into()),
            logs_table: logs_table
                .unwrap_or_else(|| crate::store::schema::LOGS.default_name.into()),
            log_retention_days,
            data_dir: match get("USERSTATE_DATA_DIR").as_deref() {
                Some(":memory:") => None,
                Some(p) => Some(PathBuf::from(p)),
                None => Some(PathBuf::from("./.userstate")),
            },
            body_limit_bytes,
            // No fallback in aws mode: an empty token must never become the public local default.
            xendit_secret_key: get("XENDIT_SECRET_KEY")
                .or_else(|| (!aws).then(|| LOCAL_XENDIT_KEY.into()))
                .map(Secret::new),
            xendit_callback_token: get("XENDIT_CALLBACK_TOKEN")
                .or_else(|| (!aws).then(|| LOCAL_CALLBACK_TOKEN.into()))
                .map(Secret::new),
            xendit_callback_token_previous: get("XENDIT_CALLBACK_TOKEN_PREVIOUS").map(Secret::new),
            notify_queue_url: get("NOTIFY_QUEUE_URL"),
            image_bucket: get("IMAGE_BUCKET"),
            ws_management_endpoint: get("WS_MANAGEMENT_ENDPOINT"),
            image_public_base_url: get("IMAGE_PUBLIC_BASE_URL"),
            notify_max_receives,
            fcm_service_account: get("FCM_SERVICE_ACCOUNT_JSON").map(Secret::new),
            fcm_base_url: get("FCM_BASE_URL")
                .unwrap_or_else(|| "https://fcm.googleapis.com".into()),
            mail_from: get("MAIL_FROM").unwrap_or_else(|| "no-reply@userstate.local".into()),
            sms_base_url: get("API_URL_SMSVIRO"),
            sms_api_key: get("SMSVIROTOKEN").map(Secret::new),
            sms_sender_id: get("SMS_SENDER_ID").unwrap_or_else(|| "USERSTATE".into()),
            limits,
            points,
            hash_limits,
            max_open_invoices,
            sync_budget_secs,
            sync_max_invoices,
            sync_xendit_rpm,
            reconcile_max_wallets,
            sync_max_wallets,
            ws_recheck_secs,
            ws_idle_secs,
            ws_max_connection_secs,
        })
    }

    /// Configuration for in-process tests: local backend, memory store, defaults elsewhere.
    pub fn for_tests() -> Self {
        let mut c =
            Self::from_lookup(|_| None).unwrap_or_else(|e| panic!("default config is valid: {e}"));
        c.data_dir = None;
        c
    }

    /// In aws mode, fails naming every setting of `needed` that is missing or unusable
    /// (`present` tells which optional variables were given at all, e.g. `PUBLIC_BASE_URL`,
    /// which has a local default). A no-op in local mode.
    pub fn require(
        &self,
        needed: &[Setting],
        present: impl Fn(&str) -> bool,
    ) -> Result<(), ConfigError> {
        if self.backend != Backend::Aws {
            return Ok(());
        }
        let provider_secret = |name: &str, v: &Option<Secret>| match v {
            None => Some(format!("{name} is required (it is unset or empty)")),
            Some(s)
                if s.expose().len() < MIN_PROVIDER_SECRET
                    || s.expose() == LOCAL_XENDIT_KEY
                    || s.expose() == LOCAL_CALLBACK_TOKEN =>
            {
                Some(format!(
                    "{name} must be the value from the Xendit dashboard (at least {MIN_PROVIDER_SECRET} characters, not a local default)"
                ))
            }
            Some(_) => None,
        };
        let problems: Vec<String> = needed
            .iter()
            .filter_map(|setting| match setting {
                Setting::JwtSecret => (!present("SECRET_AUTH_CONFIG"))
                    .then(|| "SECRET_AUTH_CONFIG is required (at least 32 bytes)".to_owned()),
                Setting::XenditSecretKey => {
                    provider_secret("XENDIT_SECRET_KEY", &self.xendit_secret_key)
                }
                Setting::XenditCallbackToken => {
                    provider_secret("XENDIT_CALLBACK_TOKEN", &self.xendit_callback_token)
                }
                Setting::NotifyQueueUrl => self
                    .notify_queue_url
                    .is_none()
                    .then(|| "NOTIFY_QUEUE_URL is required".to_owned()),
                Setting::PublicBaseUrl => {
                    (!present("PUBLIC_BASE_URL")).then(|| "PUBLIC_BASE_URL is required".to_owned())
                }
                Setting::ImageBucket => self
                    .image_bucket
                    .is_none()
                    .then(|| "IMAGE_BUCKET is required".to_owned()),
                Setting::WsManagementEndpoint => self
                    .ws_management_endpoint
                    .is_none()
                    .then(|| "WS_MANAGEMENT_ENDPOINT is required".to_owned()),
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(format!(
                "{} (USERSTATE_BACKEND=aws)",
                problems.join("; ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn local_mode_starts_with_defaults() {
        let c = cfg(&[]).expect("defaults");
        assert_eq!(c.backend, Backend::Local);
        assert_eq!(c.api_port, 33010);
        assert_eq!(c.main_table, "userstate-main");
    }

    #[test]
    fn aws_mode_names_every_missing_value() {
        let err = cfg(&[("USERSTATE_BACKEND", "aws")])
            .expect_err("must refuse")
            .to_string();
        for name in ["MAIN_TABLE", "LOGS_TABLE"] {
            assert!(err.contains(name), "{err} should name {name}");
        }
    }

    fn aws(extra: &[(&str, &str)]) -> Config {
        let mut pairs = vec![
            ("USERSTATE_BACKEND", "aws"),
            ("MAIN_TABLE", "m"),
            ("LOGS_TABLE", "l"),
        ];
        pairs.extend_from_slice(extra);
        cfg(&pairs).expect("valid")
    }

    #[test]
    fn aws_mode_never_falls_back_to_the_local_xendit_credentials() {
        let c = aws(&[]);
        assert!(c.xendit_callback_token.is_none() && c.xendit_secret_key.is_none());
        let err = c
            .require(
                &[Setting::XenditCallbackToken, Setting::XenditSecretKey],
                |_| false,
            )
            .expect_err("refused")
            .to_string();
        assert!(err.contains("XENDIT_CALLBACK_TOKEN") && err.contains("XENDIT_SECRET_KEY"));
        let short = aws(&[("XENDIT_CALLBACK_TOKEN", "short-token")]);
        assert!(
            short
                .require(&[Setting::XenditCallbackToken], |_| true)
                .is_err()
        );
        let local = aws(&[("XENDIT_CALLBACK_TOKEN", LOCAL_CALLBACK_TOKEN)]);
        assert!(
            local
                .require(&[Setting::XenditCallbackToken], |_| true)
                .is_err()
        );
        let real = aws(&[(
            "XENDIT_CALLBACK_TOKEN",
            "tokenFromTheXenditDashboard0123456789abcd",
        )]);
        assert!(
            real.require(&[Setting::XenditCallbackToken], |_| true)
                .is_ok()
        );
        let local_mode = cfg(&[]).expect("local");
        assert_eq!(
            local_mode
                .xendit_callback_token
                .as_ref()
                .map(Secret::expose),
            Some(LOCAL_CALLBACK_TOKEN)
        );
    }

    #[test]
    fn without_the_jwt_secret_an_aws_function_signs_with_a_key_nobody_else_has() {
        let (a, b) = (aws(&[]), aws(&[]));
        assert_ne!(a.jwt_secret, b.jwt_secret);
        assert!(a.jwt_secret.expose().len() >= 32);
        let err = a
            .require(&[Setting::JwtSecret], |_| false)
            .expect_err("a token function needs it")
            .to_string();
        assert!(err.contains("SECRET_AUTH_CONFIG"));
    }

    #[test]
    fn short_jwt_secret_is_refused() {
        let err = cfg(&[("SECRET_AUTH_CONFIG", "short")])
            .expect_err("must refuse")
            .to_string();
        assert!(err.contains("32 bytes"));
    }

    #[test]
    fn origin_list_is_split_and_trimmed() {
        let c = cfg(&[("ORIGIN_CORS", "http://a.test, http://b.test,")]).expect("valid");
        assert_eq!(c.origin_cors, vec!["http://a.test", "http://b.test"]);
    }

    #[test]
    fn rate_limits_are_configurable_and_validated() {
        let c = cfg(&[("RATE_LIMIT_LOGIN_ACCOUNT", "3/60")]).expect("valid");
        assert_eq!(c.limits.login_account, Limit::new(3, 60));
        assert_eq!(c.limits.login_ip, RateLimits::default().login_ip);
        let err = cfg(&[("RATE_LIMIT_LOGIN_IP", "lots")])
            .expect_err("must refuse")
            .to_string();
        assert!(err.contains("RATE_LIMIT_LOGIN_IP"));
    }

    #[test]
    fn points_rules_are_configurable_and_validated() {
        let c = cfg(&[]).expect("defaults");
        assert_eq!(c.points, PointsConfig::default());
        let c = cfg(&[
            ("POINTS_REDEEM_RATE", "250"),
            ("POINTS_PER_AMOUNT", "0"),
            ("POINTS_EXPIRY_MONTHS", "6"),
            ("REFERRAL_QUALIFY_ON", "verification"),
        ])
        .expect("valid");
        assert_eq!(
            (
                c.points.redeem_rate,
                c.points.per_amount,
                c.points.expiry_months
            ),
            (250, 0, 6)
        );
        assert_eq!(c.points.qualify_on, ReferralQualify::Verification);
        let err = cfg(&[
            ("REFERRAL_QUALIFY_ON", "signup"),
            ("POINTS_REDEEM_RATE", "0"),
        ])
        .expect_err("must refuse")
        .to_string();
        assert!(err.contains("REFERRAL_QUALIFY_ON") && err.contains("POINTS_REDEEM_RATE"));
    }

    #[test]
    fn secrets_do_not_print() {
        let c = cfg(&[(
            "SECRET_AUTH_CONFIG",
            "0123456789abcdef0123456789abcdef-secret",
        )])
        .expect("valid");
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }
}
