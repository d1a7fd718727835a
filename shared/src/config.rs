//! Typed configuration from the environment, validated once at start.
//! Seed names of the original system are kept (`API_PORT`, `ORIGIN_CORS`, `SECRET_AUTH_CONFIG`,
//! `XENDIT_SECRET_KEY`, `XENDIT_CALLBACK_TOKEN`, `API_URL_SMSVIRO`, `SMSVIROTOKEN`).

use std::path::PathBuf;

use crate::ratelimit::Limit;

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
    /// `XENDIT_SECRET_KEY`, `XENDIT_CALLBACK_TOKEN`, `XENDIT_BASE_URL`.
    pub xendit_secret_key: Secret,
    pub xendit_callback_token: Secret,
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
    /// aws mode hands out presigned GET URLs valid 24 h.
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
        }
    }
}

/// Dev-only JWT key used in local mode when `SECRET_AUTH_CONFIG` is unset.
const LOCAL_DEV_SECRET: &str = "local-development-secret-not-for-production-use!";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads configuration through `get` (tests pass a map).
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
        let secret = require("SECRET_AUTH_CONFIG");
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
        let jwt_secret = match secret {
            Some(s) if s.len() >= 32 => Secret::new(s),
            Some(_) => {
                problems.push("SECRET_AUTH_CONFIG must be at least 32 bytes".into());
                Secret::new(LOCAL_DEV_SECRET)
            }
            None => Secret::new(LOCAL_DEV_SECRET),
        };
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
            xendit_secret_key: Secret::new(
                get("XENDIT_SECRET_KEY").unwrap_or_else(|| "xnd_development_local".into()),
            ),
            xendit_callback_token: Secret::new(
                get("XENDIT_CALLBACK_TOKEN").unwrap_or_else(|| "local-callback-token".into()),
            ),
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
        })
    }

    /// Configuration for in-process tests: local backend, memory store, defaults elsewhere.
    pub fn for_tests() -> Self {
        let mut c =
            Self::from_lookup(|_| None).unwrap_or_else(|e| panic!("default config is valid: {e}"));
        c.data_dir = None;
        c
    }

    /// Fails when a value that only some functions need is missing in aws mode.
    pub fn require(&self, what: &[(&str, bool)]) -> Result<(), ConfigError> {
        if self.backend != Backend::Aws {
            return Ok(());
        }
        let missing: Vec<&str> = what
            .iter()
            .filter(|(_, present)| !present)
            .map(|(n, _)| *n)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(format!(
                "{} required when USERSTATE_BACKEND=aws",
                missing.join(", ")
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
        for name in ["SECRET_AUTH_CONFIG", "MAIN_TABLE", "LOGS_TABLE"] {
            assert!(err.contains(name), "{err} should name {name}");
        }
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
    fn secrets_do_not_print() {
        let c = cfg(&[(
            "SECRET_AUTH_CONFIG",
            "0123456789abcdef0123456789abcdef-secret",
        )])
        .expect("valid");
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }
}
