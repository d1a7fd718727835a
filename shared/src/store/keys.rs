//! Key builders for the single-table design: every `pk`/`sk` format lives here.

use super::Key;

/// `USER#{username}`
pub fn user_pk(username: &str) -> String {
    format!("USER#{username}")
}

/// The login record of a user.
pub fn login(username: &str) -> Key {
    Key::new(user_pk(username), "LOGIN")
}

/// The profile record of a user.
pub fn info(username: &str) -> Key {
    Key::new(user_pk(username), "INFO")
}

/// A phone change waiting for its code (the number it would set).
pub fn phone_change(username: &str) -> Key {
    Key::new(user_pk(username), "PHONE_CHANGE")
}

/// The wallet (balance and points) of a user.
pub fn wallet(username: &str) -> Key {
    Key::new(user_pk(username), "WALLET")
}

/// Sort-key prefix of a user's sessions.
pub const SESSION_PREFIX: &str = "SESSION#";

/// One session of a user.
pub fn session(username: &str, sid: &str) -> Key {
    Key::new(user_pk(username), format!("{SESSION_PREFIX}{sid}"))
}

/// An API key, by holder.
pub fn api_key(holder: &str) -> Key {
    Key::new(format!("APIKEY#{holder}"), "APIKEY")
}

/// Partition of all API keys (GSI1), so they can be listed.
pub const API_KEYS_GSI_PK: &str = "APIKEYS";

/// A fixed-window rate-limit counter.
pub fn rate(bucket: &str, window: i64) -> Key {
    Key::new(format!("RATE#{bucket}#{window}"), "RATE")
}

/// An idempotency record.
pub fn idempotency(scope: &str, key: &str) -> Key {
    Key::new(format!("IDEM#{scope}#{key}"), "IDEM")
}

/// Uniqueness guard of an e-mail address (normalised), written in the signup transaction.
pub fn email_guard(email: &str) -> Key {
    Key::new(format!("EMAIL#{email}"), "GUARD")
}

/// Uniqueness guard of a phone number (MSISDN).
pub fn phone_guard(phone: &str) -> Key {
    Key::new(format!("PHONE#{phone}"), "GUARD")
}

/// Uniqueness guard of a referral code (points to its owner).
pub fn refcode_guard(code: &str) -> Key {
    Key::new(format!("REFCODE#{code}"), "GUARD")
}

/// GSI1 partition of a user's INFO item, for login by e-mail.
pub fn email_gsi(email: &str) -> String {
    format!("EMAIL#{email}")
}

/// A one-time code (OTP) for a purpose (e.g. `SIGNUP`) and identifier (username, phone).
pub fn otp(purpose: &str, identifier: &str) -> Key {
    Key::new(format!("OTP#{purpose}#{identifier}"), "OTP")
}

/// A single-use or short-lived opaque token, by purpose and the SHA-256 of the token.
pub fn one_time_token(purpose: &str, token_hash: &str) -> Key {
    Key::new(format!("TOKEN#{purpose}#{token_hash}"), "TOKEN")
}

/// Partition of the local dev outbox for one recipient (e-mail, MSISDN or username).
pub fn outbox_pk(to: &str) -> String {
    format!("OUTBOX#{to}")
}

/// One deactivation of a user, with its reason (the original `deactivate_reason`).
pub fn deactivation(username: &str, at_ms: i64) -> Key {
    Key::new(user_pk(username), format!("DEACTIVATE#{at_ms:013}"))
}

/// Sort-key prefix of a user's ledger entries.
pub const LEDGER_PREFIX: &str = "LEDGER#";

/// One append-only ledger entry of a user's wallet (`ts` zero-padded epoch millis, so entries sort by time).
pub fn ledger(username: &str, ts_ms: i64, id: &str) -> Key {
    Key::new(
        user_pk(username),
        format!("{LEDGER_PREFIX}{ts_ms:013}#{id}"),
    )
}

/// A checkout invoice, by our invoice id (the `external_id` at Xendit).
pub fn invoice(id: &str) -> Key {
    Key::new(format!("INVOICE#{id}"), "INVOICE")
}

/// GSI1 partition of a user's invoices (sort key: zero-padded creation millis + id).
pub fn user_invoices_gsi(username: &str) -> String {
    format!("USERINV#{username}")
}

/// A user's count of PENDING invoices (`open`), moved in the same transactions as the invoices,
/// so `MAX_OPEN_INVOICES` holds under parallel checkouts.
pub fn open_invoices(username: &str) -> Key {
    Key::new(user_pk(username), "OPENINV")
}

/// GSI2 (sparse) partition holding every invoice still PENDING (sort key: expiry).
pub const PENDING_INVOICES_GSI_PK: &str = "PENDING";

/// A WebSocket connection (API Gateway WebSocket API).
pub fn ws_connection(connection_id: &str) -> Key {
    Key::new(format!("WSCONN#{connection_id}"), "WSCONN")
}

/// GSI1 partition of a user's subscribed WebSocket connections.
pub fn ws_user_gsi(username: &str) -> String {
    format!("WSUSER#{username}")
}

/// A voucher definition, by code (upper-case).
pub fn voucher_def(code: &str) -> Key {
    Key::new(format!("VOUCHERDEF#{code}"), "VOUCHERDEF")
}

/// A user's redemptions of one voucher (a counter, guarded by the per-user limit).
pub fn user_voucher(username: &str, code: &str) -> Key {
    Key::new(user_pk(username), format!("VOUCHER#{code}"))
}

/// A bank (disbursement or virtual-account channel), by code.
pub fn bank(code: &str) -> Key {
    Key::new(format!("BANK#{code}"), "BANK")
}

/// GSI1 partition listing banks of one type (`DISBURSEMENT`, `VA`).
pub fn banks_gsi(kind: &str) -> String {
    format!("BANKS#{kind}")
}

/// A payment type (e-wallet, VA, QRIS, retail outlet), by code.
pub fn payment_type(code: &str) -> Key {
    Key::new(format!("PAYTYPE#{code}"), "PAYTYPE")
}

/// GSI1 partition listing every payment type.
pub const PAYMENT_TYPES_GSI_PK: &str = "PAYTYPES";

/// A registered bank account of a user.
pub fn bank_account(username: &str, id: &str) -> Key {
    Key::new(user_pk(username), format!("BANKACCT#{id}"))
}

/// Sort-key prefix of a user's bank accounts.
pub const BANK_ACCOUNT_PREFIX: &str = "BANKACCT#";

/// A payout (disbursement) request, by our id (Xendit's `external_id`).
pub fn payout(id: &str) -> Key {
    Key::new(format!("PAYOUT#{id}"), "PAYOUT")
}

/// GSI1 partition of a user's payouts (sort key: zero-padded creation millis + id).
pub fn user_payouts_gsi(username: &str) -> String {
    format!("USERPAYOUT#{username}")
}

/// GSI2 (sparse) partition of payouts still PENDING (read by the sync).
pub const PENDING_PAYOUTS_GSI_PK: &str = "PAYOUT_PENDING";
/// Sort-key prefix of a user's addresses.
pub const ADDR_PREFIX: &str = "ADDR#";

/// One address of a user; ids are per-user integers, zero-padded so sort order is creation order.
pub fn address(username: &str, id: i64) -> Key {
    Key::new(user_pk(username), format!("{ADDR_PREFIX}{id:010}"))
}

/// Per-user address bookkeeping: count, default id, id counter, version (guards every change).
pub fn address_meta(username: &str) -> Key {
    Key::new(user_pk(username), "ADDRMETA")
}

/// Sort-key prefix of a user's device tokens.
pub const FCM_PREFIX: &str = "FCM#";

/// Partition of a user's device tokens. Its own partition (not `USER#…`), so the notifier, which
/// reads and prunes device tokens, can be granted these items without any access to `USER#…`
/// (wallets, logins) through IAM `dynamodb:LeadingKeys`.
pub fn user_devices_pk(username: &str) -> String {
    format!("DEVICES#{username}")
}

/// One device token of a user, by the SHA-256 (hex) of the token.
pub fn user_device(username: &str, token_hash: &str) -> Key {
    Key::new(
        user_devices_pk(username),
        format!("{FCM_PREFIX}{token_hash}"),
    )
}

/// Global owner record of a device token (a token belongs to at most one user).
pub fn device_owner(token_hash: &str) -> Key {
    Key::new(format!("FCMTOKEN#{token_hash}"), "OWNER")
}

/// Sort-key prefix of the "seen" records of a device token or phone number.
pub const SEEN_PREFIX: &str = "SEEN#";

/// That `username` once registered this device token (kept after the token moves on: the
/// self-referral check compares the devices of a referrer and the user they referred).
pub fn device_seen(token_hash: &str, username: &str) -> Key {
    Key::new(
        format!("FCMTOKEN#{token_hash}"),
        format!("{SEEN_PREFIX}{username}"),
    )
}

/// That `username` once held (or gave) this phone number.
pub fn phone_seen(phone: &str, username: &str) -> Key {
    Key::new(format!("PHONE#{phone}"), format!("{SEEN_PREFIX}{username}"))
}

/// A marketing offer.
pub fn offer(id: &str) -> Key {
    Key::new(format!("OFFER#{id}"), "OFFER")
}

/// GSI1 partition holding every offer (listing without a scan).
pub const OFFERS_GSI_PK: &str = "OFFERS";

/// A FAQ entry.
pub fn faq(id: &str) -> Key {
    Key::new(format!("FAQ#{id}"), "FAQ")
}

/// GSI1 partition holding every FAQ entry.
pub const FAQS_GSI_PK: &str = "FAQS";

/// A named counter (integer ids for offers and FAQ entries, like the original's).
pub fn counter(name: &str) -> Key {
    Key::new(format!("COUNTER#{name}"), "COUNTER")
}

/// Sort-key prefix of a user's points-ledger entries.
pub const POINTS_PREFIX: &str = "POINTS#";

/// One append-only points-ledger entry (`ts` zero-padded epoch millis, so entries sort by time).
pub fn points_entry(username: &str, ts_ms: i64, id: &str) -> Key {
    Key::new(
        user_pk(username),
        format!("{POINTS_PREFIX}{ts_ms:013}#{id}"),
    )
}

/// GSI2 (sparse) partition of wallets that ever earned points (read by the points-expiry job).
pub const POINTS_HOLDERS_GSI_PK: &str = "POINTS_HOLDERS";

/// Sort-key prefix of the referrals a user made.
pub const REFERRAL_PREFIX: &str = "REFERRAL#";

/// One referral made by `referrer`: the user `referred` signed up with the referrer's code.
pub fn referral(referrer: &str, ts_ms: i64, referred: &str) -> Key {
    Key::new(
        user_pk(referrer),
        format!("{REFERRAL_PREFIX}{ts_ms:013}#{referred}"),
    )
}

/// A referrer's count of rewarded referrals in one `REFERRAL_CAP` window.
pub fn referral_cap(referrer: &str, window: i64) -> Key {
    Key::new(format!("REFCAP#{referrer}#{window}"), "REFCAP")
}

/// Who referred a user (at most one referrer per user): points at the referrer's referral item.
pub fn referred_by(username: &str) -> Key {
    Key::new(user_pk(username), "REFERRED_BY")
}

/// Progress marker of an imported user (written last, with the user's core items).
pub fn import_marker(username: &str) -> Key {
    Key::new(format!("IMPORT#USER#{username}"), "IMPORT")
}

/// A transaction imported from the original `user_transaction` table (read-only history).
pub fn imported_transaction(username: &str, ts_ms: i64, id: &str) -> Key {
    Key::new(user_pk(username), format!("TXN#{ts_ms:013}#{id}"))
}

/// An imported Xendit log document (`CHECKOUT` or `PAYOUT`) of a user (read-only history).
pub fn imported_log(username: &str, kind: &str, id: &str) -> Key {
    Key::new(user_pk(username), format!("XLOG#{kind}#{id}"))
}
