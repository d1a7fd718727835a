//! Smoke version of the mixed load test (issue 8): ~10 s at 8 connections with 5 users on the real
//! server with a durable store, then every wallet reconciled against its stored ledger. The full
//! run (60 s, 32 connections) is `scripts/bench.sh` → docs/BENCHMARKS.md.

use std::time::Duration;

use bench::mixed::{self, Op, Options};
use tests::server::{Options as ServerOptions, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_gives_no_5xx_and_every_wallet_equals_its_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Server::start_with(ServerOptions {
        data_dir: Some(dir.path().to_path_buf()),
        env: bench::load::RAISED_LIMITS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..ServerOptions::default()
    });
    let options = Options {
        duration: Duration::from_secs(10),
        concurrency: 8,
        users: 5,
    };
    let accounts = mixed::prepare(&s.base, options.users)
        .await
        .expect("sign the users up");
    let run = mixed::run(&s.base, &accounts, &options)
        .await
        .expect("run the mix");
    s.stop();
    let checks = mixed::reconcile(dir.path(), &run)
        .await
        .expect("read the ledgers");
    let report = mixed::report(&run, &checks);
    println!("{report}");

    assert_eq!(run.total(|o| o.server_errors), 0, "5xx answers\n{report}");
    assert_eq!(run.total(|o| o.transport_errors), 0, "{report}");
    assert_eq!(
        run.total(|o| o.bad_envelopes),
        0,
        "4xx without envelope\n{report}"
    );
    assert_eq!(run.total(|o| o.callback_not_ok), 0, "{report}");
    assert_eq!(run.total(|o| o.replay_mismatches), 0, "{report}");
    for op in [
        Op::Login,
        Op::Balance,
        Op::Checkout,
        Op::Pay,
        Op::CallbackReplay,
        Op::Decrease,
        Op::DecreaseReplay,
    ] {
        assert!(
            run.ops.get(&op).is_some_and(|o| o.ok > 0),
            "no successful {}\n{report}",
            op.label()
        );
    }
    assert_eq!(checks.len(), 5, "{report}");
    for c in &checks {
        assert!(
            c.reconciled(),
            "{} does not reconcile\n{report}",
            c.username
        );
    }
    // Money moved both ways.
    assert!(
        checks.iter().map(|c| c.flow.credit_count).sum::<u64>() > 0,
        "{report}"
    );
    assert!(
        checks.iter().map(|c| c.flow.debit_count).sum::<u64>() > 0,
        "{report}"
    );
}
