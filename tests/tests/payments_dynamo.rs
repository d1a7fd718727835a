//! The money path's exactly-once guarantees on the DynamoDB adapter (the moto emulator the test
//! script starts): parallel debits, a duplicated payment settlement, and a contended voucher.
//! Without `AWS_ENDPOINT_URL` the run is skipped, unless `USERSTATE_REQUIRE_EMULATOR=1`.

use std::sync::Arc;

use shared::App;
use shared::clock::{ClockRef, SystemClock};
use shared::config::Config;
use shared::domain::money::Money;
use shared::payments::invoice::{self, InvoiceRecord, NewInvoice, Status};
use shared::store::to_item;
use shared::wallet::{Change, EntryType, WalletError};

async fn app() -> Option<App> {
    let client = tests::dynamo::client("payments").await?;
    let (main, logs, _) = tests::dynamo::fresh_tables(&client, "pay").await;
    let clock: ClockRef = Arc::new(SystemClock);
    Some(App::assemble(Config::for_tests(), main, logs, clock))
}

fn change(kind: EntryType, amount: i64) -> Change {
    Change {
        kind,
        amount: Money::from_rupiah(amount),
        description: "test".into(),
        reference_id: "test".into(),
        funds: shared::wallet::Funds::Cash,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_debits_never_overdraw_and_a_payment_is_credited_once() {
    let Some(app) = app().await else { return };
    app.wallets()
        .apply(
            &shared::domain::Username::from_stored("racer"),
            &change(EntryType::Credit, 200),
            None,
            &[],
        )
        .await
        .expect("credit");
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            app.wallets()
                .apply(
                    &shared::domain::Username::from_stored("racer"),
                    &change(EntryType::Debit, 10),
                    None,
                    &[],
                )
                .await
        }));
    }
    let (mut ok, mut short) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(WalletError::Insufficient) => short += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, short), (20, 20));
    assert_eq!(
        app.wallets()
            .read(&shared::domain::Username::from_stored("racer"))
            .await
            .expect("wallet")
            .balance,
        0
    );
    assert_eq!(
        app.wallets()
            .ledger_sum(&shared::domain::Username::from_stored("racer"))
            .await
            .expect("sum")
            .rupiah(),
        0
    );

    // The same payment settled 10 times at once (callbacks and syncs racing) credits once.
    let rec = InvoiceRecord::pending(
        NewInvoice {
            invoice_id: "inv-dynamo-1".into(),
            username: "payer".into(),
            amount: 25_000,
            currency: "IDR".into(),
            description: "Top up".into(),
            payment_method: None,
            ewallet_type: None,
            xendit_id: "x-dynamo-1".into(),
            invoice_url: "http://example.invalid".into(),
            expiry_date: "2099-01-01T00:00:00.000Z".into(),
        },
        chrono::Utc::now(),
    );
    app.main
        .put(to_item(&rec).expect("item"), None)
        .await
        .expect("put");
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (app, rec) = (app.clone(), rec.clone());
        tasks.push(tokio::spawn(async move {
            app.invoices().settle_paid(&rec, None, "test").await
        }));
    }
    let mut changed = 0;
    for t in tasks {
        if t.await.expect("task").expect("settle") == invoice::Applied::Changed {
            changed += 1;
        }
    }
    assert_eq!(changed, 1);
    assert_eq!(
        app.wallets()
            .read(&shared::domain::Username::from_stored("payer"))
            .await
            .expect("wallet")
            .balance,
        25_000
    );
    assert_eq!(
        app.wallets()
            .ledger(&shared::domain::Username::from_stored("payer"))
            .await
            .expect("ledger")
            .len(),
        1
    );
    let stored = app
        .invoices()
        .load("inv-dynamo-1")
        .await
        .expect("load")
        .expect("invoice");
    assert_eq!(stored.status, Status::Paid);
    assert!(stored.gsi2pk.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_a_ten_use_voucher_is_redeemed_exactly_ten_times() {
    let Some(app) = app().await else { return };
    let def = shared::payments::voucher::NewVoucher {
        code: "DYN10".into(),
        discount_amount: 5_000,
        valid_from: "2000-01-01T00:00:00Z".into(),
        valid_until: "2999-01-01T00:00:00Z".into(),
        total_limit: 10,
        per_user_limit: None,
    };
    app.vouchers()
        .create(def.try_into().expect("valid voucher"))
        .await
        .expect("voucher");
    let mut tasks = Vec::new();
    for i in 0..25 {
        let app = app.clone();
        // User 0 tries twice.
        let user = format!("user{}", i % 24);
        tasks.push(tokio::spawn(async move {
            let code = shared::payments::voucher::VoucherCode::parse("DYN10").expect("code");
            app.vouchers()
                .redeem(&shared::domain::Username::from_stored(user), &code)
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.expect("task").is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 10);
    let def = app
        .vouchers()
        .load(&shared::payments::voucher::VoucherCode::parse("DYN10").expect("code"))
        .await
        .expect("load")
        .expect("def");
    assert_eq!(def.redeemed_count, 10);
}

/// The amount rule's hold on DynamoDB: the same short payment reported by racing callbacks and
/// syncs is held exactly once (one audit event), credits nothing, and leaves the pending index.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_a_short_payment_is_held_once_and_credits_nothing() {
    let Some(app) = app().await else { return };
    let rec = InvoiceRecord::pending(
        NewInvoice {
            invoice_id: "inv-dynamo-short".into(),
            username: "shortpayer".into(),
            amount: 60_000,
            currency: "IDR".into(),
            description: "Top up".into(),
            payment_method: None,
            ewallet_type: None,
            xendit_id: "x-dynamo-short".into(),
            invoice_url: "http://example.invalid".into(),
            expiry_date: "2099-01-01T00:00:00.000Z".into(),
        },
        chrono::Utc::now(),
    );
    app.main
        .put(to_item(&rec).expect("item"), None)
        .await
        .expect("put");
    assert!(!invoice::paid_as_billed(&rec, 60_000, Some(30_000)));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, rec) = (app.clone(), rec.clone());
        tasks.push(tokio::spawn(async move {
            app.invoices()
                .hold_mismatch(&rec, 60_000, Some(30_000), "test")
                .await
        }));
    }
    let mut changed = 0;
    for t in tasks {
        if t.await.expect("task").expect("hold") == invoice::Applied::Changed {
            changed += 1;
        }
    }
    assert_eq!(changed, 1, "held exactly once");
    let stored = app
        .invoices()
        .load("inv-dynamo-short")
        .await
        .expect("load")
        .expect("invoice");
    assert_eq!(stored.status, Status::Pending);
    assert!(stored.gsi2pk.is_none(), "out of the sync's pending index");
    let held = app
        .main
        .get(&shared::store::keys::invoice("inv-dynamo-short"))
        .await
        .expect("get")
        .expect("item");
    assert_eq!(
        held.get("amount_mismatch"),
        Some(&shared::store::AttrValue::N(30_000))
    );
    let events = shared::store::query_all(
        app.logs.as_ref(),
        shared::store::Query::pk("XENDIT_CALLBACK#inv-dynamo-short"),
    )
    .await
    .expect("logs");
    let held_events = events
        .iter()
        .filter(|l| shared::store::get_s(l, "event") == Some("amount_mismatch"))
        .count();
    assert_eq!(held_events, 1);
    assert!(
        app.wallets()
            .ledger(&shared::domain::Username::from_stored("shortpayer"))
            .await
            .expect("ledger")
            .is_empty(),
        "nothing credited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_racing_adopters_of_a_checkout_intent_agree_on_one_xendit_invoice() {
    let Some(app) = app().await else { return };
    let intent = InvoiceRecord::pending(
        NewInvoice {
            invoice_id: "inv-dynamo-intent".into(),
            username: "adopter".into(),
            amount: 20_000,
            currency: "IDR".into(),
            description: "Top up".into(),
            payment_method: None,
            ewallet_type: None,
            xendit_id: String::new(),
            invoice_url: String::new(),
            expiry_date: "2099-01-01T00:00:00.000Z".into(),
        },
        chrono::Utc::now(),
    );
    app.main
        .put(to_item(&intent).expect("item"), None)
        .await
        .expect("put");
    // The checkout, the sync and callbacks adopting at once, each with the id it was told.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (app, intent) = (app.clone(), intent.clone());
        let x: shared::payments::xendit::XInvoice = serde_json::from_value(serde_json::json!({
            "id": format!("x-adopt-{i}"), "external_id": "inv-dynamo-intent", "status": "PENDING",
            "amount": 20_000, "invoice_url": format!("https://checkout.invalid/{i}"),
            "expiry_date": "2099-01-02T00:00:00.000Z",
        }))
        .expect("invoice");
        tasks.push(tokio::spawn(async move {
            app.invoices()
                .adopt(&intent, &x)
                .await
                .map(|r| r.map(|r| r.xendit_id))
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(id) = t.await.expect("task").expect("adopt") {
            winners.push(id);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = app
        .invoices()
        .load("inv-dynamo-intent")
        .await
        .expect("load")
        .expect("invoice");
    assert_eq!(stored.xendit_id, winners[0]);
    assert_eq!(
        stored.gsi2sk.as_deref(),
        Some("2099-01-02T00:00:00.000Z#inv-dynamo-intent"),
        "pending by Xendit's expiry from now on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_a_reversed_payout_is_credited_back_once_however_often_it_is_reported() {
    use shared::payments::payout::{PayoutRecord, PayoutStatus};
    let Some(app) = app().await else { return };
    let owner = shared::domain::Username::from_stored("reverser");
    // The funds left with a completed payout of 30 000.
    app.wallets()
        .apply(&owner, &change(EntryType::Credit, 30_000), None, &[])
        .await
        .expect("credit");
    let key = shared::store::keys::payout("po-dynamo-rev");
    let rec = PayoutRecord {
        pk: key.pk,
        sk: key.sk,
        payout_id: "po-dynamo-rev".into(),
        username: "reverser".into(),
        amount: 30_000,
        bank_account_id: "ba-1".into(),
        bank_code: "BCA".into(),
        account_number: "1234567890".into(),
        account_holder_name: "R".into(),
        description: "out".into(),
        status: PayoutStatus::Completed,
        xendit_id: Some("disb-rev".into()),
        failure_code: None,
        created_at: 0,
        updated_at: 0,
        gsi1pk: shared::store::keys::user_payouts_gsi("reverser"),
        gsi1sk: "0#po-dynamo-rev".into(),
        gsi2pk: None,
        gsi2sk: None,
    };
    app.wallets()
        .apply(&owner, &change(EntryType::Debit, 30_000), None, &[])
        .await
        .expect("debit");
    app.main
        .put(to_item(&rec).expect("item"), None)
        .await
        .expect("put");
    // Reversal webhooks and a late release race.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (app, rec) = (app.clone(), rec.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                app.payouts().reverse(&rec).await
            } else {
                let mut pending = rec.clone();
                pending.status = PayoutStatus::Pending;
                app.payouts().release(&pending, "FAILED").await
            }
        }));
    }
    let mut credited = 0;
    for t in tasks {
        if t.await.expect("task").expect("give back") {
            credited += 1;
        }
    }
    assert_eq!(credited, 1);
    let w = app.wallets().read(&owner).await.expect("wallet");
    assert_eq!(w.balance, 30_000);
}
