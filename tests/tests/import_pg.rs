//! `userstate import` against a real PostgreSQL holding the original schema
//! (`tests/fixtures/original-schema.sql`) and a generated fixture of 1,000+ users with bad rows,
//! into the local store and (when the emulator runs) DynamoDB. `scripts/import-test.sh` starts
//! PostgreSQL and sets `USERSTATE_PG_URL`; without it the test is skipped, unless
//! `USERSTATE_REQUIRE_PG=1`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use shared::App;
use shared::auth::accounts::LoginId;
use shared::clock::{ClockRef, SystemClock};
use shared::config::Config;
use shared::http::error::ApiError;
use shared::store::local::LocalStore;
use shared::store::{get_s, keys};
use userstate_import::{self as import, Options, Report, Source, mongo};

const GOOD_USERS: usize = 1000;
const FIXTURE_DB: &str = "userstate_import_fixture";
const LEGACY_API_KEY: &str = "legacy-key-0123456789";

fn pg_url() -> Option<String> {
    match std::env::var("USERSTATE_PG_URL") {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            if std::env::var("USERSTATE_REQUIRE_PG").as_deref() == Ok("1") {
                panic!("USERSTATE_REQUIRE_PG=1 but USERSTATE_PG_URL is not set");
            }
            println!("import_pg: SKIPPED — USERSTATE_PG_URL is not set");
            None
        }
    }
}

fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("postgres://…/db URL");
    format!("{base}/{db}")
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn password_of(i: usize) -> String {
    format!("old-pass-{i}-Xy")
}

fn username_of(i: usize) -> String {
    format!("user{i:04}")
}

/// The fixture: good users 1..=1000 plus the bad rows, as SQL; returns (sql, expected balance sum
/// of the users that must be imported).
fn fixture_sql(hashes: &[String]) -> (String, i64) {
    let base = 1_600_000_000i64; // 2020-09
    let mut sql = String::new();
    let mut logins = Vec::new();
    let mut infos = Vec::new();
    let mut balances = Vec::new();
    let mut addrs = Vec::new();
    let mut points = Vec::new();
    let mut fcm = Vec::new();
    let mut txns = Vec::new();
    let mut vouchers = Vec::new();
    let mut refs = Vec::new();
    let mut deacts = Vec::new();
    let mut expected = 0i64;
    for (i, hash) in hashes.iter().enumerate().take(GOOD_USERS + 1).skip(1) {
        let u = username_of(i);
        let t = base + i as i64 * 60;
        let disabled = i % 97 == 0;
        logins.push(format!(
            "({}, {}, {disabled}, to_timestamp({t}), to_timestamp({t}))",
            q(&u),
            q(hash)
        ));
        // Mixed-case e-mails (normalised on import); phones in several formats.
        let email = if i % 3 == 0 {
            format!("User{i:04}@Example.COM")
        } else {
            format!("user{i:04}@example.com")
        };
        let phone = match i % 4 {
            0 => format!("0812{i:08}"),
            1 => format!("+62813{i:08}"),
            2 => format!("62814{i:08}"),
            _ => String::new(),
        };
        let phone = if phone.is_empty() {
            "NULL".into()
        } else {
            q(&phone)
        };
        infos.push(format!(
            "({}, {}, {}, {phone}, {}, {}, to_timestamp({t}), to_timestamp({t}))",
            q(&u),
            q(&format!("User Number {i}")),
            q(&email),
            i % 50 == 0,
            q(&format!("REF{i:05}"))
        ));
        let balance = (i as i64 * 7919) % 1_000_000;
        expected += balance;
        // Point mutations: credits 10*k, a debit for some; user_balance.points agrees except for i%101==0.
        let mut psum = 0;
        for k in 0..(i % 4) {
            let amt = 10 * (k as i64 + 1);
            points.push(format!(
                "({}, 'CREDIT', {amt}, 'purchase reward', {}, to_timestamp({}))",
                q(&u),
                q(&format!("ord-{i}-{k}")),
                t + 100 + k as i64
            ));
            psum += amt;
        }
        if i % 4 == 3 {
            points.push(format!(
                "({}, 'DEBIT', 5, 'redeemed', {}, to_timestamp({}))",
                q(&u),
                q(&format!("red-{i}")),
                t + 200
            ));
            psum -= 5;
        }
        let pts = if i % 101 == 0 { psum + 25 } else { psum };
        balances.push(format!(
            "({}, {balance}.00, {pts}, to_timestamp({t}), to_timestamp({}))",
            q(&u),
            t + 300
        ));
        // Addresses: 0–3; i%7==0 has two defaults, i%5==0 none.
        for k in 0..(i % 4) {
            let default = (k == 0 && i % 5 != 0) || (k == 1 && i % 7 == 0);
            addrs.push(format!(
                "({}, {}, {}, '081234567890', {}, {default}, to_timestamp({}), to_timestamp({}))",
                q(&u),
                q(&format!("Label {k}")),
                q(&format!("Recipient {i}")),
                q(&format!("Jl. Merdeka No. {i}-{k}, Jakarta")),
                t + k as i64,
                t + k as i64
            ));
        }
        if i % 2 == 0 {
            fcm.push(format!(
                "({}, {}, 'android', to_timestamp({t}))",
                q(&u),
                q(&format!("fcm-token-{i:06}-abcdefghijklmnopqrstuvwxyz"))
            ));
        }
        if i % 3 == 0 {
            txns.push(format!(
                "({}, {}, 'TOPUP', 50000.00, 'PAID', 'BCA', {}, to_timestamp({t}))",
                q(&format!("trx-{i}")),
                q(&u),
                q(&format!("inv-{i}"))
            ));
        }
        if i % 10 == 0 {
            vouchers.push(format!(
                "({}, 'WELCOME10', 10000.00, to_timestamp({t}))",
                q(&u)
            ));
        }
        if i % 9 == 0 && i > 1 {
            refs.push(format!(
                "({}, {}, {}, 'COMPLETED', to_timestamp({t}))",
                q(&u),
                q(&username_of(i - 1)),
                q(&format!("REF{:05}", i - 1))
            ));
        }
        if disabled {
            deacts.push(format!("({}, 'moving abroad', to_timestamp({t}))", q(&u)));
        }
    }
    // --- bad rows ---
    let t = base + 10_000_000;
    let bad_hash = &hashes[0];
    for (u, email, phone, balance) in [
        // duplicate of user0005's e-mail, differing only in case, created later: skipped
        (
            "baddup",
            "USER0005@EXAMPLE.com",
            "NULL".to_owned(),
            "100.00",
        ),
        // invalid phone: imported without phone
        ("badphone", "badphone@example.com", q("12345"), "700.00"),
        // negative balance: skipped
        ("badneg", "badneg@example.com", "NULL".to_owned(), "-500.00"),
        // fractional rupiah: skipped
        (
            "badfrac",
            "badfrac@example.com",
            "NULL".to_owned(),
            "100.50",
        ),
    ] {
        logins.push(format!(
            "({}, {}, false, to_timestamp({t}), to_timestamp({t}))",
            q(u),
            q(bad_hash)
        ));
        infos.push(format!(
            "({}, 'Bad Row', {}, {phone}, false, NULL, to_timestamp({t}), to_timestamp({t}))",
            q(u),
            q(email)
        ));
        balances.push(format!(
            "({}, {balance}, 0, to_timestamp({t}), to_timestamp({t}))",
            q(u)
        ));
    }
    expected += 700; // badphone is imported
    // orphaned address (user missing)
    addrs.push(format!(
        "('ghost', 'Home', 'Nobody', '081234567890', 'Jl. Hantu 1, Bogor', true, to_timestamp({t}), to_timestamp({t}))"
    ));

    let _ = writeln!(
        sql,
        "INSERT INTO user_login (username, pwd, disabled, created_at, updated_at) VALUES {};",
        logins.join(",")
    );
    let _ = writeln!(
        sql,
        "INSERT INTO user_info (username, full_name, email, phone_number, agent, referral_code, created_at, updated_at) VALUES {};",
        infos.join(",")
    );
    let _ = writeln!(
        sql,
        "INSERT INTO user_balance (username, balance, points, created_at, updated_at) VALUES {};",
        balances.join(",")
    );
    let _ = writeln!(
        sql,
        "INSERT INTO address_list (username, label, recipient_name, phone_number, address, is_default, created_at, updated_at) VALUES {};",
        addrs.join(",")
    );
    let _ = writeln!(
        sql,
        "INSERT INTO point_mutation (username, type, amount, description, reference_id, created_at) VALUES {};",
        points.join(",")
    );
    let _ = writeln!(
        sql,
        "INSERT INTO fcm (username, token, device_type, created_at) VALUES {};",
        fcm.join(",")
    );
    let _ = writeln!(
        sql,
        "INSERT INTO user_transaction (id, username, type, amount, status, payment_method, reference_id, created_at) VALUES {};",
        txns.join(",")
    );
    let _ = writeln!(
        sql,
        "INSERT INTO voucher_redemption (username, voucher_code, discount_amount, redeemed_at) VALUES {};",
        vouchers.join(",")
    );
    let _ = writeln!(
        sql,
        "INSERT INTO referral_history (username, submitted_by, referral_code, status, created_at) VALUES {};",
        refs.join(",")
    );
    let _ = writeln!(
        sql,
        "INSERT INTO deactivate_reason (username, reason, created_at) VALUES {};",
        deacts.join(",")
    );
    let _ = writeln!(
        sql,
        "INSERT INTO marketing_offer (username, title, description, image_url, valid_until, is_active, created_at) VALUES \
         (NULL, 'Summer Sale', 'Get 50% off', '/images/o1.jpg', to_timestamp(4102444800), true, to_timestamp({base})), \
         ('user0001', 'Just for you', 'A personal deal', NULL, to_timestamp(4102444800), true, to_timestamp({base}));"
    );
    let _ = writeln!(
        sql,
        "INSERT INTO api_key (holder, key, description, created_at) VALUES ('legacy-svc', {}, 'old service', to_timestamp({base}));",
        q(&hashes[GOOD_USERS + 1])
    );
    let _ = writeln!(
        sql,
        "INSERT INTO bank_channel (code, name, type, can_disburse) VALUES ('BCA', 'Bank Central Asia', 'DISBURSEMENT', true), ('BNI', 'Bank Negara Indonesia', 'VA', false);"
    );
    let _ = writeln!(
        sql,
        "INSERT INTO payment_type (code, name, payment_method, is_active) VALUES ('OVO', 'OVO', 'EWALLET', true), ('QRIS', 'QRIS', 'QR_CODE', true);"
    );
    (sql, expected)
}

/// Loads the schema and fixture into a fresh database; returns its URL and the expected total.
async fn load_fixture(url: &str) -> (String, i64) {
    let (admin, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(conn);
    for stmt in [
        format!("DROP DATABASE IF EXISTS {FIXTURE_DB}"),
        format!("CREATE DATABASE {FIXTURE_DB}"),
    ] {
        admin
            .batch_execute(&stmt)
            .await
            .expect("create fixture database");
    }
    let db_url = with_db(url, FIXTURE_DB);
    let (client, conn) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
        .await
        .expect("connect to fixture database");
    tokio::spawn(conn);
    let schema = include_str!("../fixtures/original-schema.sql");
    client.batch_execute(schema).await.expect("original schema");
    // bcrypt at cost 4 (fast); index 0 = shared hash of bad users, GOOD_USERS+1 = the API key.
    let hashes: Vec<String> = tokio::task::spawn_blocking(|| {
        (0..=GOOD_USERS + 1)
            .map(|i| {
                let plain = if i == GOOD_USERS + 1 {
                    LEGACY_API_KEY.to_owned()
                } else {
                    password_of(i)
                };
                bcrypt::hash(plain, 4).expect("bcrypt")
            })
            .collect()
    })
    .await
    .expect("hashing");
    let (sql, expected) = fixture_sql(&hashes);
    client.batch_execute(&sql).await.expect("fixture rows");
    (db_url, expected)
}

fn mongo_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("xendit_checkout_logs.json"),
        concat!(
            r#"{"_id":{"$oid":"65a000000000000000000001"},"invoice_id":"inv-1","external_id":"ext-1","username":"user0001","amount":{"$numberInt":"150000"},"status":"PAID","payment_method":"BANK_TRANSFER","payment_channel":"BCA","description":"Top up","invoice_url":"https://x/1","expiry_date":{"$date":"2024-01-02T00:00:00Z"},"created_at":{"$date":"2024-01-01T00:00:00Z"},"updated_at":{"$date":"2024-01-01T00:05:00Z"}}"#,
            "\n",
            r#"{"invoice_id":"inv-ghost","username":"ghost","amount":1000,"status":"PAID","created_at":{"$date":"2024-01-01T00:00:00Z"}}"#,
            "\n"
        ),
    )
    .expect("checkout logs");
    std::fs::write(
        dir.path().join("xendit_payout_logs.json"),
        r#"{"payout_id":"po-1","username":"user0002","amount":50000.0,"status":"COMPLETED","bank_code":"BCA","account_number":"1234567890","account_holder_name":"User Two","created_at":{"$date":"2024-02-01T00:00:00Z"}}"#.to_owned() + "\n",
    )
    .expect("payout logs");
    dir
}

async fn source(db_url: &str, mongo: &std::path::Path) -> Source {
    let client = import::pg::connect(db_url).await.expect("connect");
    let mut src = import::pg::read(&client).await.expect("read source");
    src.checkout_logs = mongo::read_collection(mongo, "xendit_checkout_logs").expect("checkout");
    src.payout_logs = mongo::read_collection(mongo, "xendit_payout_logs").expect("payouts");
    src
}

async fn run(app: &App, src: &Source, dry_run: bool) -> Report {
    let plan = import::plan(src).expect("plan");
    import::execute(
        app,
        plan,
        Options {
            dry_run,
            progress_every: 250,
            parallel: 0,
        },
    )
    .await
    .expect("import")
}

fn has_bad(report: &Report, table: &str, key: &str, action: &str) -> bool {
    report
        .bad_rows
        .iter()
        .any(|b| b.table == table && b.key == key && b.action.starts_with(action))
}

/// The checks shared by both backends after a full import.
async fn check_imported(
    app: &App,
    report: &Report,
    expected_total: i64,
    users: usize,
    logins: usize,
) {
    assert_eq!(report.users_planned, users + 1, "{}", report.summary());
    assert!(report.conflicts.is_empty(), "{:?}", report.conflicts);
    let t = &report.balances;
    assert!(t.equal, "{}", report.summary());
    assert_eq!(t.source_imported_users, expected_total);
    assert_eq!(t.store_imported_users, expected_total);
    assert_eq!(t.store_ledger_imported_users, expected_total);
    // Each bad row is reported.
    assert!(
        has_bad(report, "user_info", "baddup", "user skipped"),
        "{}",
        report.summary()
    );
    assert!(has_bad(report, "user_balance", "badneg", "user skipped"));
    assert!(has_bad(report, "user_balance", "badfrac", "user skipped"));
    assert!(has_bad(
        report,
        "user_info",
        "badphone",
        "imported without phone"
    ));
    assert!(
        report
            .bad_rows
            .iter()
            .any(|b| b.table == "address_list" && b.reason.contains("orphaned: user ghost")),
        "{}",
        report.summary()
    );
    assert!(has_bad(
        report,
        "xendit_checkout_logs",
        "inv-ghost",
        "skipped"
    ));
    assert!(
        report
            .adjustments
            .iter()
            .any(|b| b.table == "point_mutation" && b.key == "user0101"),
        "points mismatch is reconciled and reported"
    );
    for skipped in ["baddup", "badneg", "badfrac"] {
        assert!(
            app.main
                .get(&keys::login(skipped))
                .await
                .expect("get")
                .is_none()
        );
    }

    // Old passwords work through the real login code, and the hash becomes argon2id.
    let sample: Vec<usize> = (1..=users)
        .filter(|i| i % 97 != 0)
        .step_by(users / logins)
        .collect();
    assert!(sample.len() >= logins - 1);
    for (n, i) in sample.iter().enumerate() {
        let u = username_of(*i);
        let ident = if n % 5 == 0 {
            format!("USER{i:04}@example.com")
        } else {
            u.clone()
        };
        let ip = format!("10.0.{}.{}", n / 250, n % 250);
        let ok = app
            .accounts()
            .login(&ip, &LoginId::parse(&ident), &password_of(*i))
            .await;
        assert!(ok.is_ok(), "{ident} could not log in: {:?}", ok.err());
        let login = app
            .main
            .get(&keys::login(&u))
            .await
            .expect("get")
            .expect("login");
        assert!(
            get_s(&login, "pwd").is_some_and(|p| p.starts_with("$argon2id$")),
            "{u}'s hash was not upgraded"
        );
        let w = app
            .wallets()
            .read(&shared::domain::Username::from_stored(&u))
            .await
            .expect("wallet");
        assert_eq!(w.balance, (*i as i64 * 7919) % 1_000_000);
        assert_eq!(
            app.wallets()
                .ledger_sum(&shared::domain::Username::from_stored(&u))
                .await
                .expect("ledger")
                .rupiah(),
            w.balance
        );
    }
    // A disabled account stays disabled (user0097 is the first disabled one); a wrong password is
    // still refused.
    if users >= 97 {
        let e = app
            .accounts()
            .login("10.9.0.1", &LoginId::parse("user0097"), &password_of(97))
            .await
            .expect_err("disabled");
        assert_eq!(ApiError::from(e).status.as_u16(), 403);
    }
    let e = app
        .accounts()
        .login("10.9.0.2", &LoginId::parse("user0002"), "wrong-password")
        .await
        .expect_err("wrong password");
    assert_eq!(ApiError::from(e).status.as_u16(), 422);
    // The legacy API key verifies (and is upgraded).
    assert!(
        app.api_keys()
            .verify("legacy-svc", LEGACY_API_KEY)
            .await
            .expect("verify")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_from_postgres_keeps_logins_and_money_and_a_second_run_writes_nothing() {
    let Some(url) = pg_url() else { return };
    let started = std::time::Instant::now();
    let (db_url, expected_total) = load_fixture(&url).await;
    let mongo = mongo_dir();
    let src = source(&db_url, mongo.path()).await;
    assert!(src.logins.len() > GOOD_USERS);
    println!("fixture loaded in {:?}", started.elapsed());

    // ---- local store (on disk) ----
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: ClockRef = Arc::new(SystemClock);
    let store = LocalStore::open(dir.path(), clock.clone()).expect("local store");
    let app = App::with_local_store(Config::for_tests(), &store, clock.clone());

    // A dry run writes nothing.
    let dry = run(&app, &src, true).await;
    assert!(dry.items_written > 0);
    assert!(
        app.main
            .get(&keys::login("user0001"))
            .await
            .expect("get")
            .is_none()
    );

    // An interrupted run (only the first 100 users) is continued by the next.
    let mut partial = import::plan(&src).expect("plan");
    partial.users.truncate(100);
    let first = import::execute(&app, partial, Options::default())
        .await
        .expect("partial import");
    assert_eq!(first.users_imported, 100);
    let full = run(&app, &src, false).await;
    println!("{}", full.summary());
    assert_eq!(full.users_imported, (GOOD_USERS + 1 - 100) as u64);
    assert_eq!(full.users_already_imported, 100);
    check_imported(&app, &full, expected_total, GOOD_USERS, 60).await;

    // Address default invariant: exactly one default per user with addresses.
    for i in [7usize, 14, 5, 10, 35, 3] {
        let user = shared::domain::Username::from_stored(username_of(i));
        let list = app.addresses().list(&user).await.expect("addresses");
        if !list.is_empty() {
            assert_eq!(
                list.iter().filter(|a| a.is_default).count(),
                1,
                "user{i:04}"
            );
        }
    }
    // The badphone user is imported without a phone.
    let info = app
        .main
        .get(&keys::info("badphone"))
        .await
        .expect("get")
        .expect("info");
    assert_eq!(
        info.get("phone_number"),
        Some(&shared::store::AttrValue::Null)
    );

    // A second run writes nothing.
    let again = run(&app, &src, false).await;
    assert_eq!(again.items_written, 0, "{}", again.summary());
    assert_eq!(again.globals_written, 0);
    assert_eq!(again.users_already_imported, (GOOD_USERS + 1) as u64);
    assert!(again.balances.equal);
    let bad: BTreeSet<_> = full.bad_rows.iter().map(|b| (&b.table, &b.key)).collect();
    let bad_again: BTreeSet<_> = again.bad_rows.iter().map(|b| (&b.table, &b.key)).collect();
    assert_eq!(bad, bad_again, "the report is the same on every run");
    println!("local store done at {:?}", started.elapsed());

    // ---- DynamoDB emulator ----
    if std::env::var("AWS_ENDPOINT_URL")
        .map(|v| v.trim().is_empty())
        .unwrap_or(true)
    {
        if std::env::var("USERSTATE_REQUIRE_EMULATOR").as_deref() == Ok("1") {
            panic!("USERSTATE_REQUIRE_EMULATOR=1 but AWS_ENDPOINT_URL is not set");
        }
        println!("import_pg[dynamodb]: SKIPPED — AWS_ENDPOINT_URL is not set");
        return;
    }
    // The emulator (moto) deep-copies its whole state on every transact_write_items, so a
    // transaction costs O(items stored): the same fixture is imported, but only the users
    // user0001..user0060 (and badphone) are written there. The bad-row report is the full one.
    let app = dynamo_app().await;
    const DYNAMO_USERS: usize = 60;
    let slice = |src: &Source| {
        let mut plan = import::plan(src).expect("plan");
        plan.users.retain(|u| {
            u.username == "badphone"
                || u.username
                    .strip_prefix("user")
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_some_and(|i| i <= DYNAMO_USERS)
        });
        plan
    };
    // moto fails concurrent transactions ("dictionary changed size during iteration"): one at a time.
    let serial = Options {
        parallel: 1,
        ..Options::default()
    };
    // Interrupted mid-user: the history chunks of the first 10 users were written, their core
    // chunks (LOGIN, WALLET, … and the marker) were not. The next run finds those items identical.
    let mut interrupted = slice(&src);
    interrupted.users.truncate(10);
    for u in &mut interrupted.users {
        u.chunks.pop();
    }
    let partial = import::execute(&app, interrupted, serial)
        .await
        .expect("partial");
    assert_eq!(partial.users_imported, 10);
    assert!(partial.items_written > 0);
    assert!(
        app.main
            .get(&keys::login("user0001"))
            .await
            .expect("get")
            .is_none()
    );
    let plan = slice(&src);
    let total: i64 = plan.users.iter().map(|u| u.balance).sum();
    let report = import::execute(&app, plan, serial).await.expect("import");
    println!("{}", report.summary());
    assert_eq!(report.users_imported, (DYNAMO_USERS + 1) as u64);
    assert_eq!(report.items_already_present, partial.items_written);
    check_imported(&app, &report, total, DYNAMO_USERS, 20).await;
    let again = import::execute(&app, slice(&src), serial)
        .await
        .expect("again");
    assert_eq!(again.items_written, 0, "{}", again.summary());
    assert_eq!(again.users_already_imported, (DYNAMO_USERS + 1) as u64);
    assert!(again.balances.equal);
    println!("dynamodb done at {:?}", started.elapsed());
}

async fn dynamo_app() -> App {
    use aws_config::BehaviorVersion;
    use shared::store::TableRef;
    use shared::store::dynamo::{DynamoTable, create_table};
    use shared::store::schema::{LOGS, MAIN};
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (main_name, logs_name) = (
        format!("imp-main-{}", &run[..12]),
        format!("imp-logs-{}", &run[..12]),
    );
    create_table(&client, &MAIN, &main_name)
        .await
        .expect("main table");
    create_table(&client, &LOGS, &logs_name)
        .await
        .expect("logs table");
    let main: TableRef = Arc::new(DynamoTable::new(client.clone(), &MAIN, &main_name));
    let logs: TableRef = Arc::new(DynamoTable::new(client, &LOGS, &logs_name));
    let clock: ClockRef = Arc::new(SystemClock);
    App::assemble(Config::for_tests(), main, logs, clock)
}
