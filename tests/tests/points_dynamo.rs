//! Points and referrals on the DynamoDB adapter (the moto emulator the test script starts): the
//! conditions and updates render correctly — redemptions beyond the points are refused, a payment
//! settled repeatedly completes the payer's referral and pays the referrer once, the expiry job
//! finds wallets through GSI2 — and both ledgers reconcile. Requests run one after another: moto
//! serves requests on threads without serialising `TransactWriteItems`, so races are tested on
//! the local adapter (`shared/tests/points.rs`). Without `AWS_ENDPOINT_URL` the run is skipped,
//! unless `USERSTATE_REQUIRE_EMULATOR=1`.

use std::sync::Arc;

use shared::App;
use shared::clock::{ClockRef, ManualClock, SystemClock};
use shared::config::Config;
use shared::domain::money::{Money, Points};
use shared::payments::invoice::{self, InvoiceRecord, NewInvoice};
use shared::referral;
use shared::store::to_item;
use shared::wallet::{Change, EntryType, PointsChange};

async fn app(clock: ClockRef, tweak: impl FnOnce(&mut Config)) -> Option<App> {
    let client = tests::dynamo::client("points").await?;
    let (main, logs, _) = tests::dynamo::fresh_tables(&client, "pts").await;
    let mut config = Config::for_tests();
    tweak(&mut config);
    Some(App::assemble(config, main, logs, clock))
}

async fn assert_reconciled(app: &App, user: &str) {
    let w = app
        .wallets()
        .read(&shared::domain::Username::from_stored(user))
        .await
        .expect("wallet");
    assert_eq!(
        app.wallets()
            .ledger_sum(&shared::domain::Username::from_stored(user))
            .await
            .expect("sum")
            .rupiah(),
        w.balance,
        "{user}: balance"
    );
    assert_eq!(
        app.rewards()
            .ledger_sum(&shared::domain::Username::from_stored(user))
            .await
            .expect("sum")
            .value(),
        w.points,
        "{user}: points"
    );
    assert!(w.points >= 0 && w.balance >= 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_redemptions_never_overdraw_and_a_referral_bonus_is_paid_once() {
    // Any payment qualifies here: the minimum has its own test.
    let Some(app) = app(Arc::new(SystemClock), |c| c.points.referral_min_payment = 1).await else {
        return;
    };
    let grant = PointsChange {
        kind: EntryType::Credit,
        points: Points::new(1_000),
        description: "test".into(),
        reference_id: "test".into(),
    };
    app.wallets()
        .apply_full(
            &shared::domain::Username::from_stored("saver"),
            None,
            Some(&grant),
            None,
            &[],
        )
        .await
        .expect("grant");
    let (mut ok, mut short) = (0, 0);
    for _ in 0..20 {
        match app
            .rewards()
            .redeem(
                &shared::domain::Username::from_stored("saver"),
                Points::new(100),
                None,
            )
            .await
            .map_err(shared::http::error::ApiError::from)
        {
            Ok(_) => ok += 1,
            Err(e) if e.message == "Insufficient Points" => short += 1,
            Err(e) => panic!("unexpected {}", e.message),
        }
    }
    assert_eq!((ok, short), (10, 10));
    assert_eq!(
        app.wallets()
            .read(&shared::domain::Username::from_stored("saver"))
            .await
            .expect("w")
            .points,
        0
    );
    assert_reconciled(&app, "saver").await;

    // The referrer and the referred payer; the payment is settled 8 times at once.
    for u in ["referrer", "payer"] {
        let c = Change {
            kind: EntryType::Credit,
            amount: Money::from_rupiah(1),
            description: "open".into(),
            reference_id: "open".into(),
            funds: shared::wallet::Funds::Cash,
        };
        app.wallets()
            .apply(&shared::domain::Username::from_stored(u), &c, None, &[])
            .await
            .expect("wallet");
    }
    let now = chrono::Utc::now();
    app.main
        .transact(
            referral::signup_ops(
                &shared::domain::Username::from_stored("payer"),
                "referrer",
                "CODE1234",
                now.timestamp_millis(),
            )
            .expect("ops"),
        )
        .await
        .expect("referral recorded");
    let rec = InvoiceRecord::pending(
        NewInvoice {
            invoice_id: "inv-pts-1".into(),
            username: "payer".into(),
            amount: 40_000,
            currency: "IDR".into(),
            description: "Top up".into(),
            payment_method: None,
            ewallet_type: None,
            xendit_id: "x-pts-1".into(),
            invoice_url: "http://example.invalid".into(),
            expiry_date: "2099-01-01T00:00:00.000Z".into(),
        },
        now,
    );
    app.main
        .put(to_item(&rec).expect("item"), None)
        .await
        .expect("put");
    let mut changed = 0;
    for _ in 0..3 {
        if app
            .invoices()
            .settle_paid(&rec, None, "test")
            .await
            .expect("settle")
            == invoice::Applied::Changed
        {
            changed += 1;
        }
    }
    assert_eq!(changed, 1);
    let stats = app
        .referrals()
        .stats(&shared::domain::Username::from_stored("referrer"))
        .await
        .expect("stats");
    assert_eq!(
        (
            stats.completed_referrals,
            stats.pending_referrals,
            stats.total_earned_points
        ),
        (1, 0, 50)
    );
    assert_eq!(
        app.wallets()
            .read(&shared::domain::Username::from_stored("referrer"))
            .await
            .expect("w")
            .points,
        50
    );
    assert_eq!(
        app.wallets()
            .read(&shared::domain::Username::from_stored("payer"))
            .await
            .expect("w")
            .points,
        4
    );
    assert_reconciled(&app, "referrer").await;
    assert_reconciled(&app, "payer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_the_expiry_job_finds_wallets_through_gsi2_and_expires_once() {
    let clock = ManualClock::new();
    let Some(app) = app(Arc::new(clock.clone()), |c| c.points.expiry_months = 12).await else {
        return;
    };
    let grant = PointsChange {
        kind: EntryType::Credit,
        points: Points::new(300),
        description: "test".into(),
        reference_id: "test".into(),
    };
    app.wallets()
        .apply_full(
            &shared::domain::Username::from_stored("old"),
            None,
            Some(&grant),
            None,
            &[],
        )
        .await
        .expect("grant");
    clock.advance(chrono::Duration::days(400));
    let first = app
        .rewards()
        .expire(shared::clock::Deadline::after(
            std::time::Duration::from_secs(60),
        ))
        .await
        .expect("run");
    let second = app
        .rewards()
        .expire(shared::clock::Deadline::after(
            std::time::Duration::from_secs(60),
        ))
        .await
        .expect("run");
    assert_eq!((first.expired_points, second.expired_points), (300, 0));
    assert_eq!(
        app.wallets()
            .read(&shared::domain::Username::from_stored("old"))
            .await
            .expect("w")
            .points,
        0
    );
    assert_reconciled(&app, "old").await;
}
