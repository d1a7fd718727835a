//! The profile/address/device/offer logic on the DynamoDB adapter (the moto emulator the test
//! script starts): the conditions these modules rely on (version guards, NULL comparisons, GSI
//! range queries) behave as on the local store. Skipped without `AWS_ENDPOINT_URL` unless
//! `USERSTATE_REQUIRE_EMULATOR=1`.

#[path = "../../shared/tests/common_users.rs"]
mod common_users;

use std::sync::Arc;

use aws_config::BehaviorVersion;
use shared::App;
use shared::address::AddressInput;
use shared::clock::{Clock, ManualClock};
use shared::config::Config;
use shared::store::dynamo::{DynamoTable, create_table};
use shared::store::schema::{LOGS, MAIN};
use shared::store::{TableRef, keys};

async fn app(clock: ManualClock) -> Option<(App, aws_sdk_dynamodb::Client, Vec<String>)> {
    if std::env::var("AWS_ENDPOINT_URL")
        .map(|v| v.trim().is_empty())
        .unwrap_or(true)
    {
        assert_ne!(
            std::env::var("USERSTATE_REQUIRE_EMULATOR").as_deref(),
            Ok("1"),
            "USERSTATE_REQUIRE_EMULATOR=1 but AWS_ENDPOINT_URL is not set"
        );
        println!("profile[dynamodb]: SKIPPED — AWS_ENDPOINT_URL is not set");
        return None;
    }
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (main_name, logs_name) = (format!("profile-main-{run}"), format!("profile-logs-{run}"));
    create_table(&client, &MAIN, &main_name)
        .await
        .expect("main table");
    create_table(&client, &LOGS, &logs_name)
        .await
        .expect("logs table");
    let clock = Arc::new(clock);
    let main: TableRef =
        Arc::new(DynamoTable::new(client.clone(), &MAIN, &main_name).with_clock(clock.clone()));
    let logs: TableRef =
        Arc::new(DynamoTable::new(client.clone(), &LOGS, &logs_name).with_clock(clock.clone()));
    let app = App::assemble(Config::for_tests(), main, logs, clock);
    Some((app, client, vec![main_name, logs_name]))
}

async fn drop_tables(client: &aws_sdk_dynamodb::Client, names: Vec<String>) {
    for n in names {
        let _ = client.delete_table().table_name(n).send().await;
    }
}

fn input(label: &str, is_default: bool) -> AddressInput {
    AddressInput {
        label: Some(label.into()),
        recipient_name: Some("John".into()),
        phone_number: Some("628123456789".into()),
        address: Some("Jl. Example No. 1".into()),
        is_default: Some(is_default),
    }
}

fn dyn_addr() -> shared::domain::Username {
    shared::domain::Username::from_stored("dyn_addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn address_invariant_holds_on_dynamodb_under_parallel_changes() {
    let Some((app, client, names)) = app(ManualClock::new()).await else {
        return;
    };
    common_users::create_user(&app, "dyn_addr", None).await;
    for i in 0..3 {
        let v = input(&format!("Seed{i}"), false).validate().expect("valid");
        app.addresses().create(&dyn_addr(), &v).await.expect("seed");
    }
    let mut tasks = Vec::new();
    for i in 0..30 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let id = rand::random_range(1..=8);
            let v = input(&format!("P{i}"), rand::random())
                .validate()
                .expect("valid");
            let r = match rand::random_range(0..4) {
                0 => app.addresses().create(&dyn_addr(), &v).await.map(|_| ()),
                1 => app
                    .addresses()
                    .update(&dyn_addr(), id, &v)
                    .await
                    .map(|_| ()),
                2 => app.addresses().delete(&dyn_addr(), id).await,
                _ => app
                    .addresses()
                    .set_default(&dyn_addr(), id)
                    .await
                    .map(|_| ()),
            };
            match r {
                Ok(()) => true,
                Err(shared::address::AddressError::NotFound) => false,
                Err(e) => panic!("unexpected failure: {e}"),
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let all = app.addresses().list(&dyn_addr()).await.expect("list");
    let meta = app.addresses().meta(&dyn_addr()).await.expect("meta");
    assert_eq!(meta.count as usize, all.len());
    let defaults: Vec<i64> = all.iter().filter(|a| a.is_default).map(|a| a.id).collect();
    if all.is_empty() {
        assert!(defaults.is_empty());
    } else {
        assert_eq!(defaults.len(), 1, "{all:?}");
        assert_eq!(meta.default_id, Some(defaults[0]));
    }
    drop_tables(&client, names).await;
}

#[tokio::test]
async fn phone_change_offers_and_device_moves_work_on_dynamodb() {
    let clock = ManualClock::new();
    let Some((app, client, names)) = app(clock.clone()).await else {
        return;
    };
    common_users::create_user(&app, "dyn_a", None).await;
    common_users::create_user(&app, "dyn_b", Some("628222222222")).await;

    // A user without a phone (stored NULL) adds one — verified by the code sent to it — then
    // changes it; the guard follows. A number another account holds is refused only to whoever
    // proved they hold it.
    let verify_phone = |phone: &'static str| {
        let app = app.clone();
        async move {
            let change = shared::profile::ProfileUpdate {
                full_name: None,
                phone_number: Some(phone.into()),
            };
            let p = app
                .profiles()
                .update(
                    &shared::domain::Username::from_stored("dyn_a"),
                    "203.0.113.9",
                    &change,
                )
                .await
                .expect("phone change started");
            assert_eq!(p.pending_phone_number.as_deref(), Some(phone));
            app.queue.flush().await;
            let sms = shared::notify::local::read(&app.main, phone)
                .await
                .expect("outbox");
            let text = &sms.last().expect("a code was sent").body;
            let code: String = text
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .expect("six digits")
                .to_owned();
            app.profiles()
                .verify_phone(&shared::domain::Username::from_stored("dyn_a"), &code)
                .await
        }
    };
    let p = verify_phone("628111111111").await.expect("add phone");
    assert_eq!(p.phone_number.as_deref(), Some("628111111111"));
    let e = verify_phone("628222222222").await.expect_err("taken");
    assert!(
        matches!(e, shared::profile::ProfileError::PhoneTaken),
        "{e}"
    );
    verify_phone("628333333333").await.expect("change phone");
    assert!(
        app.main
            .get(&keys::phone_guard("628111111111"))
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        app.main
            .get(&keys::phone_guard("628333333333"))
            .await
            .expect("get")
            .is_some()
    );

    // Offers: the expiry-ordered index query skips expired offers.
    let soon = (clock.now() + chrono::Duration::hours(1)).to_rfc3339();
    for (title, until, target) in [
        ("Global", "2999-01-01".to_owned(), None),
        ("Soon", soon, None),
        ("Mine", "2999-01-01".into(), Some("dyn_b")),
    ] {
        let o = shared::marketing::NewOffer {
            title: Some(title.into()),
            description: Some("d".into()),
            valid_until: Some(until),
            username: target.map(str::to_owned),
            ..Default::default()
        };
        app.marketing().create(&o).await.expect("offer");
    }
    let titles =
        |v: Vec<shared::marketing::Offer>| v.into_iter().map(|o| o.title).collect::<Vec<_>>();
    assert_eq!(
        titles(
            app.marketing()
                .list_for(&shared::domain::Username::from_stored("dyn_a"))
                .await
                .expect("list")
        ),
        vec!["Soon", "Global"]
    );
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        titles(
            app.marketing()
                .list_for(&shared::domain::Username::from_stored("dyn_b"))
                .await
                .expect("list")
        ),
        vec!["Global", "Mine"]
    );

    // A device token moves between users in one transaction.
    let reg = shared::devices::Registration {
        token: Some("device-token-dynamo-0123456789".into()),
        device_type: Some("ios".into()),
    };
    app.devices()
        .register(
            &shared::domain::Username::from_stored("dyn_a"),
            &reg.parse().expect("valid registration"),
        )
        .await
        .expect("register a");
    app.devices()
        .register(
            &shared::domain::Username::from_stored("dyn_b"),
            &reg.parse().expect("valid registration"),
        )
        .await
        .expect("register b");
    assert!(
        app.devices()
            .of_user(&shared::domain::Username::from_stored("dyn_a"))
            .await
            .expect("a")
            .is_empty()
    );
    assert_eq!(
        app.devices()
            .of_user(&shared::domain::Username::from_stored("dyn_b"))
            .await
            .expect("b")
            .len(),
        1
    );
    drop_tables(&client, names).await;
}

#[tokio::test]
async fn s3_blobs_store_and_hand_out_stable_urls_never_presigned_ones() {
    use shared::blobs::{Blobs, S3Blobs};
    let Some(sdk) = tests::dynamo::emulator_sdk("s3 blobs").await else {
        return;
    };
    // The emulator is addressed by IP: path-style requests (real S3 uses virtual-hosted style).
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    let bucket = format!(
        "profile-img-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let blobs = S3Blobs::new(
        client.clone(),
        &bucket,
        "https://api.example.com/resources/",
    );
    let name = "user_profile_img/0123456789abcdef0123456789abcdef.png";
    let bytes = bytes::Bytes::from_static(b"\x89PNG\r\n\x1a\nnot-really-but-bytes");
    blobs
        .put(name, bytes.clone(), "image/png")
        .await
        .expect("put");
    assert_eq!(blobs.get(name).await.expect("get"), Some(bytes.clone()));
    // The API's own route (`/resources/…`, which reads the object back with `get`): a URL
    // signed with a function role's temporary credentials would die with that session.
    assert_eq!(
        blobs.url(name).await.expect("url"),
        format!("https://api.example.com/resources/{name}")
    );
    blobs.delete(name).await.expect("delete");
    assert_eq!(blobs.get(name).await.expect("get"), None);
    assert!(blobs.put("../escape", bytes, "image/png").await.is_err());
    let public = S3Blobs::new(client, &bucket, "https://img.example.com/");
    assert_eq!(
        public.url(name).await.expect("url"),
        format!("https://img.example.com/{name}")
    );
}
