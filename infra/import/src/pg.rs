//! Reads the original PostgreSQL schema (`tokio-postgres`, no TLS: run it on the database host or
//! through an SSH tunnel to loopback). Values are cast in SQL to text, bigint and boolean, so no
//! driver type mapping is involved: DECIMAL stays text (fractions are judged by the planner), times
//! become epoch milliseconds.

use tokio_postgres::{Client, NoTls, Row};

use super::source::*;

/// Connects with a `postgres://` URL or a key-value string (`host=/run/pg port=5432 …`).
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::error!(error = %e, "postgres connection closed");
        }
    });
    Ok(client)
}

fn ms(col: &str) -> String {
    format!("coalesce((extract(epoch from {col}) * 1000)::bigint, 0)")
}

fn s(r: &Row, i: usize) -> Result<String, tokio_postgres::Error> {
    Ok(r.try_get::<_, Option<String>>(i)?.unwrap_or_default())
}
fn os(r: &Row, i: usize) -> Result<Option<String>, tokio_postgres::Error> {
    r.try_get::<_, Option<String>>(i)
}
fn n(r: &Row, i: usize) -> Result<i64, tokio_postgres::Error> {
    Ok(r.try_get::<_, Option<i64>>(i)?.unwrap_or_default())
}
fn b(r: &Row, i: usize) -> Result<bool, tokio_postgres::Error> {
    Ok(r.try_get::<_, Option<bool>>(i)?.unwrap_or_default())
}

/// Reads every table the import maps (see docs/IMPORT.md). Missing optional tables
/// (`deactivate_reason`, `bank_channel`, `payment_type`) read as empty.
pub async fn read(client: &Client) -> Result<Source, tokio_postgres::Error> {
    let exists = |t: &'static str| async move {
        client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t])
            .await
            .and_then(|r| r.try_get::<_, bool>(0))
    };
    let mut src = Source::default();
    for r in client
        .query(&format!("SELECT username::text, pwd::text, disabled, {}, {} FROM user_login ORDER BY username", ms("created_at"), ms("updated_at")), &[])
        .await?
    {
        src.logins.push(LoginRow { username: s(&r, 0)?, pwd: s(&r, 1)?, disabled: b(&r, 2)?, created_ms: n(&r, 3)?, updated_ms: n(&r, 4)? });
    }
    for r in client
        .query(&format!("SELECT id::bigint, username::text, full_name::text, email::text, phone_number::text, profile_img::text, agent, referral_code::text, {}, {} FROM user_info ORDER BY id", ms("created_at"), ms("updated_at")), &[])
        .await?
    {
        src.infos.push(InfoRow { id: n(&r, 0)?, username: s(&r, 1)?, full_name: os(&r, 2)?, email: os(&r, 3)?, phone_number: os(&r, 4)?, profile_img: os(&r, 5)?, agent: b(&r, 6)?, referral_code: os(&r, 7)?, created_ms: n(&r, 8)?, updated_ms: n(&r, 9)? });
    }
    for r in client
        .query(&format!("SELECT username::text, balance::text, points::bigint, {}, {} FROM user_balance ORDER BY username", ms("created_at"), ms("updated_at")), &[])
        .await?
    {
        src.balances.push(BalanceRow { username: s(&r, 0)?, balance: s(&r, 1)?, points: n(&r, 2)?, created_ms: n(&r, 3)?, updated_ms: n(&r, 4)? });
    }
    for r in client
        .query(&format!("SELECT id::bigint, username::text, label::text, recipient_name::text, phone_number::text, address::text, is_default, {}, {} FROM address_list ORDER BY id", ms("created_at"), ms("updated_at")), &[])
        .await?
    {
        src.addresses.push(AddressRow { id: n(&r, 0)?, username: s(&r, 1)?, label: os(&r, 2)?, recipient_name: os(&r, 3)?, phone_number: os(&r, 4)?, address: os(&r, 5)?, is_default: b(&r, 6)?, created_ms: n(&r, 7)?, updated_ms: n(&r, 8)? });
    }
    for r in client
        .query(&format!("SELECT id::bigint, username::text, type::text, amount::bigint, description::text, reference_id::text, {} FROM point_mutation ORDER BY id", ms("created_at")), &[])
        .await?
    {
        src.points.push(PointRow { id: n(&r, 0)?, username: s(&r, 1)?, kind: s(&r, 2)?, amount: n(&r, 3)?, description: os(&r, 4)?, reference_id: os(&r, 5)?, created_ms: n(&r, 6)? });
    }
    for r in client
        .query(&format!("SELECT id::bigint, username::text, submitted_by::text, referral_code::text, status::text, {} FROM referral_history ORDER BY id", ms("created_at")), &[])
        .await?
    {
        src.referrals.push(ReferralRow { id: n(&r, 0)?, username: s(&r, 1)?, submitted_by: s(&r, 2)?, referral_code: os(&r, 3)?, status: os(&r, 4)?, created_ms: n(&r, 5)? });
    }
    for r in client
        .query(&format!("SELECT id::bigint, username::text, title::text, description::text, image_url::text, {}, is_active, {} FROM marketing_offer ORDER BY id", ms("valid_until"), ms("created_at")), &[])
        .await?
    {
        src.offers.push(OfferRow { id: n(&r, 0)?, username: os(&r, 1)?, title: s(&r, 2)?, description: os(&r, 3)?, image_url: os(&r, 4)?, valid_until_ms: n(&r, 5)?, is_active: b(&r, 6)?, created_ms: n(&r, 7)? });
    }
    for r in client
        .query(&format!("SELECT id::bigint, username::text, token::text, device_type::text, {} FROM fcm ORDER BY id", ms("created_at")), &[])
        .await?
    {
        src.fcm.push(FcmRow { id: n(&r, 0)?, username: s(&r, 1)?, token: s(&r, 2)?, device_type: os(&r, 3)?, created_ms: n(&r, 4)? });
    }
    for r in client
        .query(&format!("SELECT id::text, username::text, type::text, amount::text, status::text, payment_method::text, reference_id::text, {} FROM user_transaction ORDER BY id", ms("created_at")), &[])
        .await?
    {
        src.transactions.push(TxnRow { id: s(&r, 0)?, username: s(&r, 1)?, kind: os(&r, 2)?, amount: s(&r, 3)?, status: os(&r, 4)?, payment_method: os(&r, 5)?, reference_id: os(&r, 6)?, created_ms: n(&r, 7)? });
    }
    for r in client
        .query(&format!("SELECT id::bigint, username::text, voucher_code::text, discount_amount::text, {} FROM voucher_redemption ORDER BY id", ms("redeemed_at")), &[])
        .await?
    {
        src.vouchers.push(VoucherRow { id: n(&r, 0)?, username: s(&r, 1)?, voucher_code: s(&r, 2)?, discount_amount: s(&r, 3)?, redeemed_ms: n(&r, 4)? });
    }
    for r in client
        .query(&format!("SELECT holder::text, key::text, description::text, {} FROM api_key ORDER BY holder", ms("created_at")), &[])
        .await?
    {
        src.api_keys.push(ApiKeyRow { holder: s(&r, 0)?, key: s(&r, 1)?, description: os(&r, 2)?, created_ms: n(&r, 3)? });
    }
    if exists("deactivate_reason").await? {
        for r in client
            .query(&format!("SELECT id::bigint, username::text, reason::text, {} FROM deactivate_reason ORDER BY id", ms("created_at")), &[])
            .await?
        {
            src.deactivations.push(DeactivateRow { id: n(&r, 0)?, username: s(&r, 1)?, reason: os(&r, 2)?, created_ms: n(&r, 3)? });
        }
    }
    if exists("bank_channel").await? {
        for r in client
            .query("SELECT id::bigint, code::text, name::text, type::text, can_disburse FROM bank_channel ORDER BY id", &[])
            .await?
        {
            src.banks.push(BankRow { id: n(&r, 0)?, code: s(&r, 1)?, name: s(&r, 2)?, kind: s(&r, 3)?, can_disburse: b(&r, 4)? });
        }
    }
    if exists("payment_type").await? {
        for r in client
            .query("SELECT id::bigint, code::text, name::text, payment_method::text, is_active FROM payment_type ORDER BY id", &[])
            .await?
        {
            src.payment_types.push(PayTypeRow { id: n(&r, 0)?, code: s(&r, 1)?, name: s(&r, 2)?, payment_method: s(&r, 3)?, is_active: b(&r, 4)? });
        }
    }
    Ok(src)
}
