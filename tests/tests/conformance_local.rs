//! The `Table` conformance suite against the embedded local store: in memory, and durable in a
//! temporary directory (plus a check that data survives reopening the store).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shared::clock::SystemClock;
use shared::store::local::LocalStore;
use shared::store::schema::{GSI1, MAIN};
use shared::store::{AttrValue, Cond, Key, Query, Table, TableRef, TxOp, Update, query_all};
use tests::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_memory_store_conforms() {
    let report = conformance::run("local-memory", |def| async move {
        let store = LocalStore::memory(Arc::new(SystemClock))?;
        Ok(Arc::new(store.table(def, "main")) as TableRef)
    })
    .await;
    assert_eq!(report.passed.len(), conformance::case_names().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_durable_store_conforms_and_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // One store on disk; every case gets its own (fresh, empty) table in it.
        let store = LocalStore::open(dir.path(), Arc::new(SystemClock)).expect("open store");
        let counter = AtomicUsize::new(0);
        let report = conformance::run("local-durable", |def| {
            let table = store.table(
                def,
                &format!("case-{}", counter.fetch_add(1, Ordering::SeqCst)),
            );
            async move { Ok(Arc::new(table) as TableRef) }
        })
        .await;
        assert_eq!(report.passed.len(), conformance::case_names().len());

        let t = store.table(&MAIN, "durable");
        let mut wallet = Key::new("USER#d", "WALLET").item();
        wallet.insert("balance".into(), AttrValue::N(100));
        wallet.insert("gsi1pk".into(), AttrValue::S("EMAIL#d@example.com".into()));
        wallet.insert("gsi1sk".into(), AttrValue::S("USER#d".into()));
        t.put(wallet, Some(Cond::item_absent())).await.expect("put");
        t.transact(vec![
            TxOp::Update {
                key: Key::new("USER#d", "WALLET"),
                update: Update::new().add("balance", -40),
                cond: Some(Cond::ge("balance", 40)),
            },
            TxOp::Put {
                item: Key::new("USER#d", "LEDGER#1").item(),
                cond: Some(Cond::item_absent()),
            },
        ])
        .await
        .expect("transaction");
        t.put(Key::new("USER#d", "GONE").item(), None)
            .await
            .expect("put");
        t.delete(&Key::new("USER#d", "GONE"), None)
            .await
            .expect("delete");
    } // every handle on the database is dropped here

    let store = LocalStore::open(dir.path(), Arc::new(SystemClock)).expect("reopen store");
    let t = store.table(&MAIN, "durable");
    let wallet = t
        .get(&Key::new("USER#d", "WALLET"))
        .await
        .expect("get")
        .expect("wallet survived");
    assert_eq!(wallet.get("balance"), Some(&AttrValue::N(60)));
    let items = query_all(&t, Query::pk("USER#d")).await.expect("query");
    let sks: Vec<_> = items.iter().map(|i| i.get("sk").cloned()).collect();
    assert_eq!(
        sks,
        vec![
            Some(AttrValue::S("LEDGER#1".into())),
            Some(AttrValue::S("WALLET".into()))
        ]
    );
    let by_email = query_all(&t, Query::index(GSI1, "EMAIL#d@example.com"))
        .await
        .expect("gsi query");
    assert_eq!(by_email.len(), 1, "the index survived reopening");
    // Conditions still hold after reopening.
    let r = t
        .put(
            Key::new("USER#d", "WALLET").item(),
            Some(Cond::item_absent()),
        )
        .await;
    assert_eq!(r, Err(shared::store::StoreError::ConditionFailed));
    println!("local-durable: data survived reopening the store");
}
