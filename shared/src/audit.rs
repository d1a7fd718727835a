//! Append-only records in the logs table (audit events, provider logs, callback receipts) —
//! the original's MongoDB collections. Callers pass data without secrets; entries expire after
//! `LOG_RETENTION_DAYS`.

use serde::Serialize;

use crate::clock::ClockRef;
use crate::store::{AttrValue, Item, TableRef, value::from_json};

/// Kinds of log entries (the partition prefix in the logs table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    Audit,
    XenditCheckout,
    XenditCallback,
    XenditPayout,
    XenditSync,
    Notification,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Audit => "AUDIT",
            LogKind::XenditCheckout => "XENDIT_CHECKOUT",
            LogKind::XenditCallback => "XENDIT_CALLBACK",
            LogKind::XenditPayout => "XENDIT_PAYOUT",
            LogKind::XenditSync => "XENDIT_SYNC",
            LogKind::Notification => "NOTIFICATION",
        }
    }
}

/// The audit log: writes entries to the logs table. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    logs: TableRef,
    clock: ClockRef,
    /// `LOG_RETENTION_DAYS`: entries expire after this many days.
    retention_days: i64,
}

impl Audit {
    /// The log on `logs`, with entries kept `retention_days`.
    pub fn new(logs: TableRef, clock: ClockRef, retention_days: i64) -> Audit {
        Audit {
            logs,
            clock,
            retention_days,
        }
    }

    /// Writes one entry: `pk = {KIND}#{subject}` (e.g. an invoice id), `sk = {epoch_ms}#{uuid}`,
    /// and, when a user is known, GSI1 `LOGUSER#{username}` for lookups by user. Failures are
    /// logged, not returned: losing an audit line must not fail the request that caused it.
    pub async fn record(
        &self,
        kind: LogKind,
        subject: &str,
        username: Option<&str>,
        event: &str,
        data: serde_json::Value,
    ) {
        let now = self.clock.now();
        let sk = format!(
            "{:013}#{}",
            now.timestamp_millis(),
            uuid::Uuid::new_v4().simple()
        );
        let mut item = Item::new();
        item.insert("pk".into(), format!("{}#{subject}", kind.as_str()).into());
        item.insert("sk".into(), sk.clone().into());
        item.insert("kind".into(), kind.as_str().into());
        item.insert("event".into(), event.into());
        item.insert("at".into(), now.to_rfc3339().into());
        item.insert(
            "ttl".into(),
            AttrValue::N(now.timestamp() + self.retention_days * 86_400),
        );
        if let Some(u) = username {
            item.insert("username".into(), u.into());
            item.insert("gsi1pk".into(), format!("LOGUSER#{u}").into());
            item.insert("gsi1sk".into(), sk.into());
        }
        match from_json(data) {
            Ok(v) => {
                item.insert("data".into(), v);
            }
            Err(e) => tracing::warn!(error = %e, "log data not storable; recorded without it"),
        }
        if let Err(e) = self.logs.put(item, None).await {
            tracing::error!(error = %e, kind = kind.as_str(), event, "could not write log entry");
        }
    }
}
