//! The import's planning (bad-row policy, normalisation) and writing (idempotence, conflicts) on an
//! in-memory store, without PostgreSQL (the real-database run is `tests/tests/import_pg.rs`).

use shared::App;
use shared::store::{AttrValue, get_n, get_s, keys, to_item};
use userstate_import::source::{AddressRow, BalanceRow, InfoRow, LoginRow, PointRow};
use userstate_import::{self as import, Options, Source};

fn user(src: &mut Source, u: &str, email: &str, phone: Option<&str>, balance: &str, at: i64) {
    src.logins.push(LoginRow {
        username: u.into(),
        pwd: bcrypt::hash(format!("pw-{u}"), 4).expect("bcrypt"),
        disabled: false,
        created_ms: at,
        updated_ms: at,
    });
    src.infos.push(InfoRow {
        id: src.infos.len() as i64 + 1,
        username: u.into(),
        full_name: Some(format!("Name {u}")),
        email: Some(email.into()),
        phone_number: phone.map(str::to_owned),
        referral_code: Some(format!("R{}", u.to_uppercase())),
        created_ms: at,
        updated_ms: at,
        ..InfoRow::default()
    });
    src.balances.push(BalanceRow {
        username: u.into(),
        balance: balance.into(),
        points: 0,
        created_ms: at,
        updated_ms: at,
    });
}

fn address(src: &mut Source, id: i64, u: &str, is_default: bool) {
    src.addresses.push(AddressRow {
        id,
        username: u.into(),
        label: Some("Home".into()),
        recipient_name: Some("R".into()),
        phone_number: Some("081234567890".into()),
        address: Some("Jl. Sudirman 1, Jakarta".into()),
        is_default,
        created_ms: 1_000 + id,
        updated_ms: 1_000 + id,
    });
}

fn fixture() -> Source {
    let mut src = Source::default();
    user(
        &mut src,
        "alice",
        "Alice@Example.com",
        Some("0812-3456-7890"),
        "15000.00",
        1_000,
    );
    user(&mut src, "alice2", "ALICE@example.COM", None, "500", 2_000);
    user(
        &mut src,
        "bob",
        "bob@example.com",
        Some("12345"),
        "0",
        3_000,
    );
    user(&mut src, "carol", "carol@example.com", None, "-1.00", 4_000);
    user(&mut src, "dave", "dave@example.com", None, "10.25", 5_000);
    address(&mut src, 1, "alice", true);
    address(&mut src, 2, "alice", true);
    address(&mut src, 3, "ghost", true);
    src.balances[0].points = 40;
    src.points.push(PointRow {
        id: 1,
        username: "alice".into(),
        kind: "CREDIT".into(),
        amount: 30,
        created_ms: 1_500,
        ..PointRow::default()
    });
    src
}

fn has(rows: &[import::BadRow], table: &str, key: &str, action: &str) -> bool {
    rows.iter()
        .any(|b| b.table == table && b.key == key && b.action.starts_with(action))
}

#[test]
fn import_plan_reports_every_bad_row_and_keeps_the_oldest_of_case_duplicate_emails() {
    let plan = import::plan(&fixture()).expect("plan");
    let users: Vec<&str> = plan.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(users, ["alice", "bob"]);
    let b = &plan.bad_rows;
    assert!(has(b, "user_info", "alice2", "user skipped"), "{b:?}");
    assert!(
        has(b, "user_info", "bob", "imported without phone"),
        "{b:?}"
    );
    assert!(has(b, "user_balance", "carol", "user skipped"), "{b:?}");
    assert!(has(b, "user_balance", "dave", "user skipped"), "{b:?}");
    assert!(has(b, "address_list", "3", "skipped"), "{b:?}");
    let a = &plan.adjustments;
    assert!(
        has(a, "address_list", "2", "kept the most recently updated"),
        "{a:?}"
    );
    assert!(has(a, "point_mutation", "alice", "reconciling"), "{a:?}");
}

#[tokio::test]
async fn import_twice_writes_nothing_the_second_time_and_old_passwords_log_in() {
    let app = App::for_tests();
    let src = fixture();
    let first = import::execute(&app, import::plan(&src).expect("plan"), Options::default())
        .await
        .expect("import");
    assert_eq!(first.users_imported, 2);
    assert!(first.balances.equal, "{}", first.summary());
    assert_eq!(first.balances.store_imported_users, 15_000);

    let info = app.main.get(&keys::info("alice")).await.unwrap().unwrap();
    assert_eq!(get_s(&info, "email"), Some("alice@example.com"));
    assert_eq!(get_s(&info, "phone_number"), Some("6281234567890"));
    let bob = app.main.get(&keys::info("bob")).await.unwrap().unwrap();
    assert_eq!(bob.get("phone_number"), Some(&AttrValue::Null));
    let alice = shared::domain::Username::from_stored("alice");
    let wallet = app.wallets().read(&alice).await.unwrap();
    assert_eq!((wallet.balance, wallet.points), (15_000, 40));
    let ledger = app.wallets().ledger(&alice).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].description, "Opening balance (import)");
    assert_eq!(ledger[0].reference_id, "import:opening");
    // Points history is in the points module's ledger: the imported mutation plus the
    // reconciling opening entry sum to the wallet's points.
    let points = app.rewards().ledger(&alice).await.unwrap();
    assert_eq!(points.len(), 2, "{points:?}");
    assert_eq!(app.rewards().ledger_sum(&alice).await.unwrap().value(), 40);
    let list = app
        .addresses()
        .list(&shared::domain::Username::from_stored("alice"))
        .await
        .unwrap();
    assert_eq!(list.iter().filter(|a| a.is_default).count(), 1);
    assert!(list.iter().any(|a| a.id == 2 && a.is_default));

    let ok = app
        .accounts()
        .login(
            "10.0.0.1",
            &shared::auth::accounts::LoginId::parse("ALICE@example.com"),
            "pw-alice",
        )
        .await;
    assert!(ok.is_ok(), "{:?}", ok.err());

    let second = import::execute(&app, import::plan(&src).expect("plan"), Options::default())
        .await
        .expect("again");
    assert_eq!(second.items_written, 0, "{}", second.summary());
    assert_eq!(second.users_already_imported, 2);
    assert!(second.balances.equal);
}

#[tokio::test]
async fn import_never_overwrites_an_account_created_in_the_new_system() {
    let app = App::for_tests();
    let k = keys::login("alice");
    let existing =
        serde_json::json!({"pk": k.pk, "sk": k.sk, "username": "alice", "pwd": "x", "n": 1});
    app.main
        .put(to_item(&existing).unwrap(), None)
        .await
        .unwrap();
    let report = import::execute(&app, import::plan(&fixture()).unwrap(), Options::default())
        .await
        .expect("import");
    assert_eq!(report.users_imported, 1);
    assert!(
        report.conflicts.iter().any(|c| c.reason.contains("alice")),
        "{:?}",
        report.conflicts
    );
    let login = app.main.get(&k).await.unwrap().unwrap();
    assert_eq!(get_n(&login, "n"), Some(1));
    assert!(
        app.main
            .get(&keys::wallet("alice"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(report.balances.equal);
}
