//! Mixed workload on the local server (issue 8): logins, authenticated reads, checkouts paid
//! through the Xendit simulator (which delivers the callback), replayed callbacks, and debits with
//! some Idempotency-Keys replayed, from a fixed number of closed-loop connections for a fixed time
//! on loopback. Afterwards every wallet is reconciled: `GET /balance`, the stored ledger sum (read
//! from the data dir after the server stopped) and the client's own accounting must agree.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::stats::{Summary, ms, summarize};

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct Options {
    pub duration: Duration,
    pub concurrency: usize,
    pub users: usize,
}

/// An account of the workload, created through signup + OTP so it can log in with a password.
#[derive(Clone, Debug)]
pub struct Account {
    pub username: String,
    pub password: String,
    pub token: String,
}

/// The operations of the mix, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Login,
    Balance,
    Checkout,
    Pay,
    CallbackReplay,
    Decrease,
    DecreaseReplay,
}

impl Op {
    pub fn label(self) -> &'static str {
        match self {
            Op::Login => "POST /auth",
            Op::Balance => "GET /balance",
            Op::Checkout => "POST /payment-checkout",
            Op::Pay => "POST /_dev/xendit/invoices/{id}/pay (+ callback)",
            Op::CallbackReplay => "POST /_dev/xendit/invoices/{id}/callback (replay)",
            Op::Decrease => "POST /balance/decrease (new key)",
            Op::DecreaseReplay => "POST /balance/decrease (replayed key)",
        }
    }

    /// Routes of the UserState API answer errors as envelopes; the simulator answers like Xendit.
    fn is_api(self) -> bool {
        !matches!(self, Op::Pay | Op::CallbackReplay)
    }
}

/// What one connection loop does next: 20 slots, each connection starting at its own offset.
/// Login 1, balance 7, checkout+pay 4, callback replay 2, debit 4, replayed debit 2.
const SCHEDULE: [Step; 20] = {
    use Step::*;
    [
        Read, Debit, TopUp, Read, Replay, Debit, Read, TopUp, Login, Read, DebitAgain, TopUp, Read,
        Debit, Replay, Read, TopUp, Debit, Read, DebitAgain,
    ]
};

#[derive(Clone, Copy, Debug)]
enum Step {
    Login,
    Read,
    TopUp,
    Replay,
    Debit,
    DebitAgain,
}

/// Counts and latencies of one operation.
#[derive(Clone, Debug, Default)]
pub struct OpStats {
    pub latencies: Vec<Duration>,
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    /// 4xx answers of API routes that were not a well-formed envelope.
    pub bad_envelopes: u64,
    /// Callbacks the simulator delivered whose answer was not 200 (pay and replay only).
    pub callback_not_ok: u64,
    /// Replayed keys of a successful debit not answered with that same debit.
    pub replay_mismatches: u64,
}

impl OpStats {
    pub fn requests(&self) -> u64 {
        self.ok + self.client_errors + self.server_errors + self.transport_errors
    }
    pub fn latency(&self) -> Option<Summary> {
        summarize(&self.latencies)
    }
}

/// Money the client saw move for one user (the expectation the ledger must meet).
#[derive(Clone, Debug, Default)]
pub struct Flow {
    pub credits: i64,
    pub credit_count: u64,
    pub debits: i64,
    pub debit_count: u64,
}

/// The reconciliation of one user.
#[derive(Clone, Debug)]
pub struct UserCheck {
    pub username: String,
    pub api_balance: i64,
    pub stored_balance: i64,
    pub ledger_sum: i64,
    pub flow: Flow,
}

impl UserCheck {
    pub fn reconciled(&self) -> bool {
        self.api_balance == self.ledger_sum
            && self.stored_balance == self.ledger_sum
            && self.flow.credits - self.flow.debits == self.ledger_sum
    }
}

/// The result of the load part of a run.
#[derive(Debug)]
pub struct Run {
    pub options: Options,
    pub elapsed: Duration,
    pub ops: BTreeMap<Op, OpStats>,
    pub flows: BTreeMap<String, Flow>,
    /// `GET /balance` of every user after the load stopped.
    pub final_balances: BTreeMap<String, i64>,
}

impl Run {
    pub fn total(&self, f: impl Fn(&OpStats) -> u64) -> u64 {
        self.ops.values().map(f).sum()
    }
}

/// Signs up `n` users (`mix_user_0..`) through the public API and the dev outbox, then logs each in.
pub async fn prepare(base: &str, n: usize) -> anyhow::Result<Vec<Account>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let username = format!("mix_user_{i}");
        let password = format!("mixPassword{i}x9");
        let token = crate::load::signup_and_login(
            base,
            &username,
            &password,
            &format!("mix{i}@example.com"),
            &format!("62810030{i:04}"),
        )
        .await
        .with_context(|| format!("preparing {username}"))?;
        out.push(Account {
            username,
            password,
            token,
        });
    }
    Ok(out)
}

#[derive(Default)]
struct Shared {
    /// Paid Xendit invoice ids per user (replayed callbacks pick from these).
    paid: BTreeMap<usize, Vec<String>>,
    /// Used debit keys per user: (key, amount, transaction id once a debit under it succeeded).
    keys: BTreeMap<usize, Vec<(String, i64, Option<String>)>>,
    /// Debits the server confirmed, by transaction id (a replay answers the same id): (user, amount).
    debits: BTreeMap<String, (usize, i64)>,
}

impl Shared {
    /// Records a 200 answer of `POST /balance/decrease`; counts it once per transaction id.
    fn debited(&mut self, user: usize, amount: i64, txid: &str) {
        self.debits.entry(txid.to_owned()).or_insert((user, amount));
    }
}

/// Runs the mix against the server at `base` and reads every balance afterwards.
pub async fn run(base: &str, accounts: &[Account], options: &Options) -> anyhow::Result<Run> {
    if accounts.is_empty() || options.concurrency == 0 {
        bail!("need at least one user and one connection");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let shared = Arc::new(Mutex::new(Shared::default()));
    let start = Instant::now();
    let deadline = start + options.duration;
    let mut tasks = Vec::with_capacity(options.concurrency);
    for worker in 0..options.concurrency {
        let w = Worker {
            id: worker,
            base: base.to_owned(),
            client: client.clone(),
            accounts: accounts.to_vec(),
            shared: shared.clone(),
            ops: BTreeMap::new(),
            flows: vec![Flow::default(); accounts.len()],
        };
        tasks.push(tokio::spawn(w.run(deadline)));
    }
    let mut ops: BTreeMap<Op, OpStats> = BTreeMap::new();
    let mut flows = vec![Flow::default(); accounts.len()];
    for t in tasks {
        let (o, f) = t.await?;
        for (op, s) in o {
            let e = ops.entry(op).or_default();
            e.latencies.extend(s.latencies);
            e.ok += s.ok;
            e.client_errors += s.client_errors;
            e.server_errors += s.server_errors;
            e.transport_errors += s.transport_errors;
            e.bad_envelopes += s.bad_envelopes;
            e.callback_not_ok += s.callback_not_ok;
            e.replay_mismatches += s.replay_mismatches;
        }
        for (acc, x) in flows.iter_mut().zip(f) {
            acc.credits += x.credits;
            acc.credit_count += x.credit_count;
            acc.debits += x.debits;
            acc.debit_count += x.debit_count;
        }
    }
    let elapsed = start.elapsed();
    if let Ok(s) = shared.lock() {
        for &(user, amount) in s.debits.values() {
            flows[user].debits += amount;
            flows[user].debit_count += 1;
        }
    }
    let mut final_balances = BTreeMap::new();
    for a in accounts {
        let res = client
            .get(format!("{base}/balance"))
            .bearer_auth(&a.token)
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await?;
        if !status.is_success() {
            bail!("final GET /balance of {}: {status} {body}", a.username);
        }
        let b = body["balance"].as_i64().context("balance is an integer")?;
        final_balances.insert(a.username.clone(), b);
    }
    Ok(Run {
        options: options.clone(),
        elapsed,
        ops,
        flows: accounts
            .iter()
            .map(|a| a.username.clone())
            .zip(flows)
            .collect(),
        final_balances,
    })
}

struct Worker {
    id: usize,
    base: String,
    client: reqwest::Client,
    accounts: Vec<Account>,
    shared: Arc<Mutex<Shared>>,
    ops: BTreeMap<Op, OpStats>,
    flows: Vec<Flow>,
}

/// One answer: status (0 on a transport failure) and body.
struct Answer {
    status: u16,
    body: Value,
}

impl Worker {
    async fn run(mut self, deadline: Instant) -> (BTreeMap<Op, OpStats>, Vec<Flow>) {
        let mut i = 0usize;
        while Instant::now() < deadline {
            let step = SCHEDULE[(self.id * 7 + i) % SCHEDULE.len()];
            let user = (self.id + i / SCHEDULE.len()) % self.accounts.len();
            let seq = i;
            i += 1;
            match step {
                Step::Login => self.login(user).await,
                Step::Read => {
                    let t = self.accounts[user].token.clone();
                    self.call(
                        Op::Balance,
                        reqwest::Method::GET,
                        "/balance",
                        Some(&t),
                        None,
                        None,
                    )
                    .await;
                }
                Step::TopUp => self.top_up(user, seq).await,
                Step::Replay => self.replay_callback(user, seq).await,
                Step::Debit => self.debit(user, seq).await,
                Step::DebitAgain => self.debit_again(user, seq).await,
            }
        }
        (self.ops, self.flows)
    }

    async fn call(
        &mut self,
        op: Op,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let sent = Instant::now();
        let stats = self.ops.entry(op).or_default();
        let res = match req.send().await {
            Ok(r) => r,
            Err(_) => {
                stats.transport_errors += 1;
                return Answer {
                    status: 0,
                    body: Value::Null,
                };
            }
        };
        let status = res.status().as_u16();
        let Ok(bytes) = res.bytes().await else {
            stats.transport_errors += 1;
            return Answer {
                status: 0,
                body: Value::Null,
            };
        };
        stats.latencies.push(sent.elapsed());
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match status {
            200..=299 => stats.ok += 1,
            400..=499 => {
                stats.client_errors += 1;
                if op.is_api() && !is_envelope(&body, status) {
                    stats.bad_envelopes += 1;
                }
            }
            _ => stats.server_errors += 1,
        }
        Answer { status, body }
    }

    async fn login(&mut self, user: usize) {
        let a = &self.accounts[user];
        let body = json!({"username": a.username, "password": a.password});
        let ans = self
            .call(
                Op::Login,
                reqwest::Method::POST,
                "/auth",
                None,
                Some(&body),
                None,
            )
            .await;
        // Later requests of this connection use the fresh session.
        if ans.status == 200
            && let Some(t) = ans.body["token"].as_str()
        {
            self.accounts[user].token = t.to_owned();
        }
    }

    async fn top_up(&mut self, user: usize, seq: usize) {
        let amount = 10_000 + ((self.id * 31 + seq * 17) % 9) as i64 * 5_000;
        let body = json!({"amount": amount, "description": "Mixed load top-up",
            "payment_method": "EWALLET", "ewallet_type": "OVO"});
        let token = self.accounts[user].token.clone();
        let co = self
            .call(
                Op::Checkout,
                reqwest::Method::POST,
                "/payment-checkout",
                Some(&token),
                Some(&body),
                None,
            )
            .await;
        if co.status != 200 {
            return;
        }
        let Some(xid) = co.body["id"].as_str().map(str::to_owned) else {
            return;
        };
        let paid = self
            .call(
                Op::Pay,
                reqwest::Method::POST,
                &format!("/_dev/xendit/invoices/{xid}/pay"),
                None,
                None,
                None,
            )
            .await;
        if paid.status != 200 {
            return;
        }
        if paid.body["callback_status"] == 200 {
            self.flows[user].credits += amount;
            self.flows[user].credit_count += 1;
        } else {
            self.ops.entry(Op::Pay).or_default().callback_not_ok += 1;
        }
        if let Ok(mut s) = self.shared.lock() {
            s.paid.entry(user).or_default().push(xid);
        }
    }

    async fn replay_callback(&mut self, user: usize, seq: usize) {
        let xid = self.shared.lock().ok().and_then(|s| {
            let list = s.paid.get(&user)?;
            list.get(seq % list.len().max(1)).cloned()
        });
        let Some(xid) = xid else {
            // Nothing paid yet for this user: read instead.
            let t = self.accounts[user].token.clone();
            self.call(
                Op::Balance,
                reqwest::Method::GET,
                "/balance",
                Some(&t),
                None,
                None,
            )
            .await;
            return;
        };
        let ans = self
            .call(
                Op::CallbackReplay,
                reqwest::Method::POST,
                &format!("/_dev/xendit/invoices/{xid}/callback"),
                None,
                None,
                None,
            )
            .await;
        if ans.status == 200 && ans.body["callback_status"] != 200 {
            self.ops
                .entry(Op::CallbackReplay)
                .or_default()
                .callback_not_ok += 1;
        }
    }

    async fn debit(&mut self, user: usize, seq: usize) {
        let amount = 5_000 + ((self.id * 13 + seq * 7) % 20) as i64 * 2_000;
        let key = format!("mix-{}-{seq}", self.id);
        let body = json!({"amount": amount, "description": "Mixed load purchase"});
        let token = self.accounts[user].token.clone();
        let ans = self
            .call(
                Op::Decrease,
                reqwest::Method::POST,
                "/balance/decrease",
                Some(&token),
                Some(&body),
                Some(&key),
            )
            .await;
        if ans.status == 0 {
            return;
        }
        let txid = ans.body["transaction_id"].as_str().map(str::to_owned);
        if let Ok(mut s) = self.shared.lock() {
            if ans.status == 200
                && let Some(t) = &txid
            {
                s.debited(user, amount, t);
            }
            let done = txid.filter(|_| ans.status == 200);
            s.keys.entry(user).or_default().push((key, amount, done));
        }
    }

    async fn debit_again(&mut self, user: usize, seq: usize) {
        let used = self.shared.lock().ok().and_then(|s| {
            let list = s.keys.get(&user)?;
            list.get(seq % list.len().max(1)).cloned()
        });
        let Some((key, amount, first)) = used else {
            return self.debit(user, seq).await;
        };
        let body = json!({"amount": amount, "description": "Mixed load purchase"});
        let token = self.accounts[user].token.clone();
        let ans = self
            .call(
                Op::DecreaseReplay,
                reqwest::Method::POST,
                "/balance/decrease",
                Some(&token),
                Some(&body),
                Some(&key),
            )
            .await;
        if ans.status == 0 {
            return;
        }
        let txid = ans.body["transaction_id"]
            .as_str()
            .filter(|_| ans.status == 200);
        match (&first, txid) {
            // A debit under this key happened: the replay must answer it again, unchanged.
            (Some(f), Some(t)) if f == t => {}
            (Some(_), _) => {
                self.ops
                    .entry(Op::DecreaseReplay)
                    .or_default()
                    .replay_mismatches += 1;
            }
            // The first attempt was refused (nothing recorded), so this one may debit now.
            (None, Some(t)) => {
                if let Ok(mut s) = self.shared.lock() {
                    s.debited(user, amount, t);
                    if let Some(rec) = s
                        .keys
                        .get_mut(&user)
                        .and_then(|l| l.iter_mut().find(|r| r.0 == key))
                    {
                        rec.2 = Some(t.to_owned());
                    }
                }
            }
            (None, None) => {}
        }
    }
}

/// `{"status": false, "message": "...", "errorCode": <status>, ...}`.
fn is_envelope(body: &Value, status: u16) -> bool {
    body["status"] == false
        && body["message"].as_str().is_some_and(|m| !m.is_empty())
        && body["errorCode"].as_u64() == Some(u64::from(status))
}

/// Reads every user's stored wallet and ledger from a server data dir (the server must be stopped)
/// and pairs them with what the run observed.
pub async fn reconcile(data_dir: &Path, run: &Run) -> anyhow::Result<Vec<UserCheck>> {
    let mut config = shared::config::Config::for_tests();
    config.data_dir = Some(data_dir.to_path_buf());
    let app = shared::App::from_config(config)
        .await
        .map_err(|e| anyhow::anyhow!("opening {}: {e}", data_dir.display()))?;
    let mut out = Vec::new();
    for (username, &api_balance) in &run.final_balances {
        let user = shared::domain::Username::from_stored(username.as_str());
        let ledger_sum = app
            .wallets()
            .ledger_sum(&user)
            .await
            .map_err(|e| anyhow::anyhow!("ledger of {username}: {e}"))?
            .rupiah();
        let stored_balance = app
            .wallets()
            .read(&user)
            .await
            .map_err(|e| anyhow::anyhow!("wallet of {username}: {e}"))?
            .balance;
        out.push(UserCheck {
            username: username.clone(),
            api_balance,
            stored_balance,
            ledger_sum,
            flow: run.flows.get(username).cloned().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The run and its reconciliation as Markdown.
pub fn report(run: &Run, checks: &[UserCheck]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let secs = run.elapsed.as_secs_f64();
    let _ = writeln!(
        s,
        "{} connections, {} users, {:.1} s: {} requests ({:.0}/s), {} 2xx, {} 4xx, {} 5xx, {} transport errors, {} 4xx without an envelope, {} callbacks not acknowledged with 200, {} replayed debits answered differently.",
        run.options.concurrency,
        run.options.users,
        secs,
        run.total(OpStats::requests),
        run.total(OpStats::requests) as f64 / secs,
        run.total(|o| o.ok),
        run.total(|o| o.client_errors),
        run.total(|o| o.server_errors),
        run.total(|o| o.transport_errors),
        run.total(|o| o.bad_envelopes),
        run.total(|o| o.callback_not_ok),
        run.total(|o| o.replay_mismatches),
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| operation | requests | 2xx | 4xx | 5xx | transport errors | req/s | p50 ms | p90 ms | p99 ms | max ms |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (op, o) in &run.ops {
        let l = o.latency();
        let f =
            |pick: fn(&Summary) -> Duration| l.as_ref().map(|x| ms(pick(x))).unwrap_or("-".into());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
            op.label(),
            o.requests(),
            o.ok,
            o.client_errors,
            o.server_errors,
            o.transport_errors,
            o.requests() as f64 / secs,
            f(|x| x.p50),
            f(|x| x.p90),
            f(|x| x.p99),
            f(|x| x.max),
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| user | GET /balance | stored balance | ledger sum | credits seen (n) | debits seen (n) | reconciled |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|");
    for c in checks {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} ({}) | {} ({}) | {} |",
            c.username,
            c.api_balance,
            c.stored_balance,
            c.ledger_sum,
            c.flow.credits,
            c.flow.credit_count,
            c.flow.debits,
            c.flow.debit_count,
            if c.reconciled() { "yes" } else { "NO" }
        );
    }
    s
}
