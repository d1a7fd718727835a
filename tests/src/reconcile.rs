//! The reconciliation scenario, run on the embedded store and on DynamoDB (emulator): 1 000
//! wallets that match their ledgers and one that was corrupted behind the ledger's back.

use std::sync::Arc;
use std::time::Duration;

use shared::audit::Audit;
use shared::clock::{ClockRef, Deadline, SystemClock};
use shared::domain::Money;
use shared::domain::account::{Username, WalletRecord};
use shared::reconcile::{Budget, Reconciler};
use shared::store::counting::CountingTable;
use shared::store::{Query, TableRef, TxOp, Update, keys, query_all, to_item};
use shared::wallet::{Change, EntryType, LedgerEntry, Wallets};

const USERS: usize = 1_000;
const CORRUPT: usize = 617;

fn name(i: usize) -> Username {
    Username::from_stored(format!("recon{i:04}"))
}

pub async fn scenario(main: TableRef, logs: TableRef) {
    let clock: ClockRef = Arc::new(SystemClock);
    let wallets = Wallets::new(main.clone(), clock.clone());
    // 1 000 users, each a wallet and the one ledger credit it holds, written as the wallet
    // service writes them (50 users per transaction, so the emulator run stays short).
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(50) {
        let mut ops = Vec::new();
        for &i in chunk {
            let u = name(i);
            let amount = 1_000 + i as i64;
            let w = keys::wallet(u.as_str());
            let wallet = WalletRecord {
                pk: w.pk,
                sk: w.sk,
                balance: amount,
                points: 0,
                version: 1,
                bonus: 0,
            };
            let l = keys::ledger(u.as_str(), 1_764_000_000_000, &format!("seed{i}"));
            let entry = LedgerEntry {
                pk: l.pk,
                sk: l.sk,
                entry_id: format!("seed{i}"),
                kind: EntryType::Credit,
                amount,
                balance_after: amount,
                bonus_after: 0,
                description: "seed".into(),
                reference_id: format!("seed-{i}"),
                created_at: 1_764_000_000,
            };
            ops.push(TxOp::Put {
                item: to_item(&wallet).expect("item"),
                cond: None,
            });
            ops.push(TxOp::Put {
                item: to_item(&entry).expect("item"),
                cond: None,
            });
        }
        main.transact(ops).await.expect("seed");
    }
    // A real credit through the wallet service too, so the layout above is the service's.
    let real = name(USERS - 1);
    let change = Change::cash(EntryType::Credit, Money::from_rupiah(1), "real", "real-1");
    wallets
        .apply(&real, &change, None, &[])
        .await
        .expect("credit");
    // One wallet drifts from its ledger (a write that bypassed the wallet service).
    let bad = name(CORRUPT);
    main.update(
        &keys::wallet(bad.as_str()),
        Update::new().set("balance", 999_999i64),
        None,
    )
    .await
    .expect("corrupt");

    let counting = CountingTable::new(main.clone());
    let counted: TableRef = Arc::new(counting.clone());
    let audit = Audit::new(logs.clone(), clock.clone(), 90);
    let reconciler = Reconciler::new(counted, clock, audit);
    let budget = Budget {
        max_wallets: 400,
        deadline: Deadline::after(Duration::from_secs(300)),
    };

    let mut runs = Vec::new();
    for _ in 0..10 {
        let r = reconciler.run(budget).await.expect("run");
        let done = r.pass_complete;
        runs.push(r);
        if done {
            break;
        }
    }
    assert!(
        runs.len() >= 3,
        "400 wallets per run: the pass spans runs ({})",
        runs.len()
    );
    assert!(
        !runs[0].resumed && runs[1..].iter().all(|r| r.resumed),
        "later runs resume"
    );
    assert!(
        runs.iter().all(|r| r.checked <= 400),
        "each run within its budget"
    );
    let checked: usize = runs.iter().map(|r| r.checked).sum();
    assert_eq!(
        checked, USERS,
        "every wallet checked exactly once in the pass"
    );
    let found: Vec<_> = runs.iter().flat_map(|r| r.mismatches.clone()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].username, bad.as_str());
    assert_eq!(
        (found[0].balance, found[0].ledger_sum),
        (999_999, 1_000 + CORRUPT as i64)
    );

    // Nothing but its own cursor was written to the main table.
    let calls = counting.calls();
    assert_eq!((calls.update, calls.transact), (0, 0), "{calls:?}");
    assert_eq!(
        calls.put as usize,
        runs.len() - 1,
        "one cursor write per unfinished run"
    );
    assert_eq!(calls.delete, 1, "the cursor is cleared when the pass ends");
    let w = wallets.read(&bad).await.expect("wallet");
    assert_eq!(w.balance, 999_999, "the reconciliation never changes money");

    // The mismatch is in the logs table, found by user.
    let logged = query_all(
        logs.as_ref(),
        Query::index(
            shared::store::schema::GSI1,
            format!("LOGUSER#{}", bad.as_str()),
        ),
    )
    .await
    .expect("logs");
    assert!(
        logged
            .iter()
            .any(|i| shared::store::get_s(i, "event") == Some("wallet_mismatch")),
        "{logged:?}"
    );

    // The next run starts a new pass (from the beginning, not from a stale cursor).
    let small = Budget {
        max_wallets: 10,
        ..budget
    };
    let again = reconciler.run(small).await.expect("run");
    assert!(!again.resumed && again.checked <= 10, "{again:?}");
}
