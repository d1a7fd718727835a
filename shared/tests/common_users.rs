//! Test users written straight into the table (signup lives in the accounts work), and tokens for them.
#![allow(dead_code)]

use shared::App;
use shared::domain::{AccountStatus, LoginRecord, UserInfo, WalletRecord};
use shared::store::{Cond, TxOp, keys, to_item};

/// Creates an active user with profile, wallet and uniqueness guards; returns a bearer token.
pub async fn create_user(app: &App, username: &str, phone: Option<&str>) -> String {
    let now = app.clock.epoch();
    let email = format!("{username}@example.com");
    let refcode = format!("REF{}", username.to_uppercase());
    let login = keys::login(username);
    let info = keys::info(username);
    let wallet = keys::wallet(username);
    let login = LoginRecord {
        pk: login.pk,
        sk: login.sk,
        username: username.into(),
        pwd: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        disabled: false,
        status: AccountStatus::Active,
        mode: None,
        created_at: now,
        updated_at: now,
        cred_version: 0,
    };
    let info = UserInfo {
        pk: info.pk,
        sk: info.sk,
        username: username.into(),
        full_name: format!("{username} Test"),
        email: email.clone(),
        phone_number: phone.map(str::to_owned),
        unverified_phone: None,
        profile_img: None,
        agent: false,
        referral_code: refcode.clone(),
        referred_by: None,
        created_at: now,
        updated_at: now,
        gsi1pk: keys::email_gsi(&email),
        gsi1sk: "INFO".into(),
    };
    let wallet = WalletRecord {
        pk: wallet.pk,
        sk: wallet.sk,
        balance: 50_000,
        points: 150,
        version: 0,
        bonus: 0,
    };
    let guard = |key: shared::store::Key| {
        let mut item = key.item();
        item.insert("username".into(), username.into());
        TxOp::Put {
            item,
            cond: Some(Cond::item_absent()),
        }
    };
    let mut ops = vec![
        TxOp::Put {
            item: to_item(&login).expect("login"),
            cond: Some(Cond::item_absent()),
        },
        TxOp::Put {
            item: to_item(&info).expect("info"),
            cond: None,
        },
        TxOp::Put {
            item: to_item(&wallet).expect("wallet"),
            cond: None,
        },
        guard(keys::email_guard(&email)),
        guard(keys::refcode_guard(&refcode)),
    ];
    if let Some(p) = phone {
        ops.push(guard(keys::phone_guard(p)));
    }
    app.main.transact(ops).await.expect("test user written");
    token(app, username).await
}

/// A fresh bearer token for an existing user.
pub async fn token(app: &App, username: &str) -> String {
    app.sessions()
        .issue(&shared::domain::Username::from_stored(username), false)
        .await
        .expect("session")
        .token
}
