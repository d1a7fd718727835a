//! Rows of the original system, as read (by `pg` or any other reader). Times are epoch
//! milliseconds; DECIMAL columns stay text so the planner can refuse fractional rupiah.

use serde_json::Value;

/// `user_login`
#[derive(Clone, Debug, Default)]
pub struct LoginRow {
    pub username: String,
    pub pwd: String,
    pub disabled: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// `user_info`
#[derive(Clone, Debug, Default)]
pub struct InfoRow {
    pub id: i64,
    pub username: String,
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub profile_img: Option<String>,
    pub agent: bool,
    pub referral_code: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// `user_balance` (`balance` is the DECIMAL as text).
#[derive(Clone, Debug, Default)]
pub struct BalanceRow {
    pub username: String,
    pub balance: String,
    pub points: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// `address_list`
#[derive(Clone, Debug, Default)]
pub struct AddressRow {
    pub id: i64,
    pub username: String,
    pub label: Option<String>,
    pub recipient_name: Option<String>,
    pub phone_number: Option<String>,
    pub address: Option<String>,
    pub is_default: bool,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// `point_mutation`
#[derive(Clone, Debug, Default)]
pub struct PointRow {
    pub id: i64,
    pub username: String,
    pub kind: String,
    pub amount: i64,
    pub description: Option<String>,
    pub reference_id: Option<String>,
    pub created_ms: i64,
}

/// `referral_history` (`username` was referred by `submitted_by`).
#[derive(Clone, Debug, Default)]
pub struct ReferralRow {
    pub id: i64,
    pub username: String,
    pub submitted_by: String,
    pub referral_code: Option<String>,
    pub status: Option<String>,
    pub created_ms: i64,
}

/// `marketing_offer`
#[derive(Clone, Debug, Default)]
pub struct OfferRow {
    pub id: i64,
    pub username: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub valid_until_ms: i64,
    pub is_active: bool,
    pub created_ms: i64,
}

/// `fcm`
#[derive(Clone, Debug, Default)]
pub struct FcmRow {
    pub id: i64,
    pub username: String,
    pub token: String,
    pub device_type: Option<String>,
    pub created_ms: i64,
}

/// `user_transaction` (`amount` is the DECIMAL as text).
#[derive(Clone, Debug, Default)]
pub struct TxnRow {
    pub id: String,
    pub username: String,
    pub kind: Option<String>,
    pub amount: String,
    pub status: Option<String>,
    pub payment_method: Option<String>,
    pub reference_id: Option<String>,
    pub created_ms: i64,
}

/// `voucher_redemption` (`discount_amount` is the DECIMAL as text).
#[derive(Clone, Debug, Default)]
pub struct VoucherRow {
    pub id: i64,
    pub username: String,
    pub voucher_code: String,
    pub discount_amount: String,
    pub redeemed_ms: i64,
}

/// `api_key` (`key` is a bcrypt hash).
#[derive(Clone, Debug, Default)]
pub struct ApiKeyRow {
    pub holder: String,
    pub key: String,
    pub description: Option<String>,
    pub created_ms: i64,
}

/// `deactivate_reason`
#[derive(Clone, Debug, Default)]
pub struct DeactivateRow {
    pub id: i64,
    pub username: String,
    pub reason: Option<String>,
    pub created_ms: i64,
}

/// `bank_channel`
#[derive(Clone, Debug, Default)]
pub struct BankRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub can_disburse: bool,
}

/// `payment_type`
#[derive(Clone, Debug, Default)]
pub struct PayTypeRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub payment_method: String,
    pub is_active: bool,
}

/// Everything read from the original system.
#[derive(Clone, Debug, Default)]
pub struct Source {
    pub logins: Vec<LoginRow>,
    pub infos: Vec<InfoRow>,
    pub balances: Vec<BalanceRow>,
    pub addresses: Vec<AddressRow>,
    pub points: Vec<PointRow>,
    pub referrals: Vec<ReferralRow>,
    pub offers: Vec<OfferRow>,
    pub fcm: Vec<FcmRow>,
    pub transactions: Vec<TxnRow>,
    pub vouchers: Vec<VoucherRow>,
    pub api_keys: Vec<ApiKeyRow>,
    pub deactivations: Vec<DeactivateRow>,
    pub banks: Vec<BankRow>,
    pub payment_types: Vec<PayTypeRow>,
    /// MongoDB `xendit_checkout_logs` documents (mongoexport JSON lines, extended JSON).
    pub checkout_logs: Vec<Value>,
    /// MongoDB `xendit_payout_logs` documents.
    pub payout_logs: Vec<Value>,
}

impl Source {
    /// Rows read per table or collection.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("user_login", self.logins.len()),
            ("user_info", self.infos.len()),
            ("user_balance", self.balances.len()),
            ("address_list", self.addresses.len()),
            ("point_mutation", self.points.len()),
            ("referral_history", self.referrals.len()),
            ("marketing_offer", self.offers.len()),
            ("fcm", self.fcm.len()),
            ("user_transaction", self.transactions.len()),
            ("voucher_redemption", self.vouchers.len()),
            ("api_key", self.api_keys.len()),
            ("deactivate_reason", self.deactivations.len()),
            ("bank_channel", self.banks.len()),
            ("payment_type", self.payment_types.len()),
            ("xendit_checkout_logs", self.checkout_logs.len()),
            ("xendit_payout_logs", self.payout_logs.len()),
        ]
    }
}

/// A DECIMAL as whole rupiah: `"1500.00"` → 1500; a non-zero fraction or junk is refused.
pub fn parse_rupiah(raw: &str) -> Result<i64, &'static str> {
    let s = raw.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err("not a number");
    }
    if frac.chars().any(|c| c != '0') {
        return Err("has a fractional part (rupiah are whole)");
    }
    let digits = int.strip_prefix('-').unwrap_or(int);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("not a number");
    }
    int.parse::<i64>().map_err(|_| "out of range")
}

/// A mongoexport (extended JSON) value as an integer: `5`, `5.0`, `{"$numberLong":"5"}`,
/// `{"$numberInt":"5"}`, `{"$numberDouble":"5.0"}`, `{"$numberDecimal":"5"}`.
pub fn ejson_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => parse_rupiah(s).ok(),
        Value::Object(o) => [
            "$numberLong",
            "$numberInt",
            "$numberDouble",
            "$numberDecimal",
        ]
        .iter()
        .find_map(|k| o.get(*k))
        .and_then(ejson_i64),
        _ => None,
    }
}

/// A mongoexport date (`{"$date":"2024-01-01T00:00:00Z"}`, `{"$date":{"$numberLong":"…"}}`, or a
/// plain string) as epoch milliseconds.
pub fn ejson_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Object(o) => o.get("$date").and_then(ejson_ms),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// A string field of a document (`None` when missing or not a string).
pub fn ejson_str(doc: &Value, field: &str) -> Option<String> {
    doc.get(field).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_with_a_fraction_are_refused() {
        assert_eq!(parse_rupiah("1500.00"), Ok(1500));
        assert_eq!(parse_rupiah("-20"), Ok(-20));
        assert!(parse_rupiah("1500.50").is_err());
        assert!(parse_rupiah("abc").is_err());
        assert!(parse_rupiah("").is_err());
    }

    #[test]
    fn extended_json_numbers_and_dates_are_read() {
        assert_eq!(ejson_i64(&serde_json::json!({"$numberLong": "7"})), Some(7));
        assert_eq!(ejson_i64(&serde_json::json!(7.0)), Some(7));
        assert_eq!(ejson_i64(&serde_json::json!(7.5)), None);
        assert_eq!(
            ejson_ms(&serde_json::json!({"$date": "1970-01-01T00:00:01Z"})),
            Some(1000)
        );
    }
}
