//! Password hashing: argon2id (OWASP parameters m=19456 KiB, t=2, p=1) in PHC format. bcrypt
//! hashes imported from the original system (`$2a$`/`$2b$`/`$2y$`) still verify; [`needs_rehash`]
//! tells login to replace them (and argon2 hashes with outdated parameters) on the next success.
//! Hashing is CPU-bound, so the async wrappers run it on dedicated threads, behind a bounded
//! queue ([`HashGate`]): a flood of password requests is refused fast instead of slowing everyone.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::InvalidInput;

/// Memory cost in KiB.
pub const M_COST: u32 = 19_456;
/// Iterations.
pub const T_COST: u32 = 2;
/// Parallelism.
pub const P_COST: u32 = 1;
/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 8;
/// Longest accepted password, in characters (bounds hashing work).
pub const MAX_LEN: usize = 128;

fn argon2id() -> Result<Argon2<'static>, argon2::Error> {
    Ok(Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(M_COST, T_COST, P_COST, None)?,
    ))
}

/// Checks the length rule (8–128 characters); `field` names the offending input.
pub fn validate(field: &str, password: &str) -> Result<(), InvalidInput> {
    let n = password.chars().count();
    if (MIN_LEN..=MAX_LEN).contains(&n) {
        Ok(())
    } else {
        Err(InvalidInput::field(
            field,
            format!("must be {MIN_LEN}-{MAX_LEN} characters"),
        ))
    }
}

/// A password a user chose, checked against the length rule (only these are ever hashed for
/// storage).
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    /// Checks the length rule; `field` names the input in the error.
    pub fn parse(field: &str, raw: &str) -> Result<NewPassword, InvalidInput> {
        validate(field, raw)?;
        Ok(NewPassword(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password never prints itself.
impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

/// Password work could not run (no salt, a hasher error, the hashing thread went away).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashFailed;

/// A fresh 16-byte salt (the recommended length) from the thread-local CSPRNG.
fn new_salt() -> Result<SaltString, HashFailed> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    SaltString::encode_b64(&bytes).map_err(|_| HashFailed)
}

/// Hashes a password to an argon2id PHC string.
pub fn hash(password: &str) -> Result<String, HashFailed> {
    let salt = new_salt()?;
    let hasher = argon2id().map_err(|_| HashFailed)?;
    hasher
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            HashFailed
        })
}

fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

/// True when `password` matches the stored argon2 PHC string or legacy bcrypt hash. A stored
/// value in any other shape never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    if is_bcrypt(stored) {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        // Verification takes algorithm and parameters from the PHC string itself.
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// True when the stored hash is not argon2id with the current parameters.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return true;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    !(params.m_cost() == M_COST && params.t_cost() == T_COST && params.p_cost() == P_COST)
}

/// How many hashes may run at once in this process: one per core.
pub fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Password work waiting for a hashing thread.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// [`hashing_slots`] threads that do nothing but password work, taking jobs in FIFO order. At
/// most that many hashes run at once (more than there are cores adds latency and memory, not
/// throughput), and always on the same threads, so an allocator that keeps freed memory per
/// thread (each argon2id run frees a 19 MiB block) keeps it for these threads only. `None` when
/// no thread could be started.
fn hashing_queue() -> Option<&'static std::sync::mpsc::Sender<Job>> {
    static QUEUE: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    QUEUE
        .get_or_init(|| {
            pin_mmap_threshold();
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
            let mut started = 0;
            for i in 0..hashing_slots() {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("password-{i}"))
                    .spawn(move || {
                        loop {
                            let job = match rx.lock() {
                                Ok(queue) => queue.recv(),
                                Err(_) => return,
                            };
                            let Ok(job) = job else { return };
                            // A panicking job fails its own request (its answer channel drops),
                            // not the thread.
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                    });
                match spawned {
                    Ok(_) => started += 1,
                    Err(e) => tracing::error!(error = %e, "could not start a password thread"),
                }
            }
            (started > 0).then_some(tx)
        })
        .as_ref()
}

/// Runs CPU-bound password work on the hashing threads (see [`hashing_queue`]); on the blocking
/// pool if none could be started. Ungated: request handlers go through [`HashGate::admit`] first.
pub async fn on_hashing_pool<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashFailed> {
    let Some(queue) = hashing_queue() else {
        return tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| HashFailed);
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    queue.send(job).map_err(|_| HashFailed)?;
    rx.await.map_err(|_| HashFailed)
}

/// The bounds [`HashGate`] enforces (a plain value, defined with the other limits so the
/// configuration does not depend on this module).
pub use crate::ratelimit::HashLimits;

/// Why password work was refused before it was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashRefused {
    /// The process-wide queue is full.
    #[error("password hashing queue is full")]
    Busy,
    /// This client already has its share of hashes queued or running.
    #[error("too many password operations in flight for this client")]
    ClientBusy,
}

/// Queued or running password work, in all and per client.
#[derive(Default)]
struct InFlight {
    total: usize,
    by_client: std::collections::HashMap<String, usize>,
}

/// Admission to the hashing threads: one per process (held by the application state), counting
/// the password work queued or running, in all and per client.
#[derive(Default)]
pub struct HashGate {
    limits: HashLimits,
    in_flight: std::sync::Mutex<InFlight>,
}

/// A place in the hashing queue for one piece of work, held for its clients until the work has
/// run (the ticket moves into the job, so a request that goes away still counts until its hash is
/// done).
pub struct Ticket {
    gate: std::sync::Arc<HashGate>,
    clients: Vec<String>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut f = self.gate.lock();
        f.total = f.total.saturating_sub(1);
        for c in &self.clients {
            if let Some(n) = f.by_client.get_mut(c) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    f.by_client.remove(c);
                }
            }
        }
    }
}

impl HashGate {
    pub fn new(limits: HashLimits) -> std::sync::Arc<HashGate> {
        std::sync::Arc::new(HashGate {
            limits,
            in_flight: std::sync::Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits one piece of password work for `clients` (e.g. the caller's address and the
    /// account), or refuses it at once: 503 when the queue is full, 429 when one of the clients
    /// already has its share queued or running.
    pub fn admit(self: &std::sync::Arc<Self>, clients: &[&str]) -> Result<Ticket, HashRefused> {
        let mut f = self.lock();
        if clients
            .iter()
            .any(|c| f.by_client.get(*c).copied().unwrap_or(0) >= self.limits.per_client)
        {
            return Err(HashRefused::ClientBusy);
        }
        if f.total >= self.limits.queue_max {
            return Err(HashRefused::Busy);
        }
        f.total += 1;
        for c in clients {
            *f.by_client.entry((*c).to_owned()).or_insert(0) += 1;
        }
        Ok(Ticket {
            gate: self.clone(),
            clients: clients.iter().map(|c| (*c).to_owned()).collect(),
        })
    }
}

/// Password work that was admitted: runs it on the hashing threads, releasing the ticket when done.
async fn run_admitted<T: Send + 'static>(
    ticket: Ticket,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashFailed> {
    on_hashing_pool(move || {
        let out = work();
        drop(ticket);
        out
    })
    .await
}

/// Each argon2id run allocates and frees an `M_COST` KiB (19 MiB) block. glibc serves the first
/// such allocation with mmap, and on its free raises the mmap threshold above 19 MiB, so later
/// ones come from the heap arenas, which keep the freed memory: the local server grew by about
/// 2 MiB per login (6 GiB after 15 s of parallel logins), and a 256 MB auth Lambda would run out.
/// Pinning the threshold at glibc's default (128 KiB) turns off that adjustment: large blocks are
/// always mmapped and returned to the system on free.
fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; glibc serialises it with allocations.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// [`hash`] on the hashing threads, for admitted work.
pub async fn hash_async(ticket: Ticket, password: String) -> Result<String, HashFailed> {
    run_admitted(ticket, move || hash(&password)).await?
}

/// [`verify`] on the hashing threads, for admitted work.
pub async fn verify_async(ticket: Ticket, password: String, stored: String) -> bool {
    run_admitted(ticket, move || verify(&password, &stored))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_hashes_than_cores_run_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..hashing_slots() * 4 + 4)
            .map(|_| {
                let (running, peak) = (running.clone(), peak.clone());
                tokio::spawn(on_hashing_pool(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("slot");
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=hashing_slots()).contains(&peak), "peak {peak}");
    }

    #[test]
    fn argon2id_hash_uses_owasp_parameters_and_verifies() {
        let h = hash("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(!needs_rehash(&h));
    }

    #[test]
    fn legacy_bcrypt_verifies_and_needs_rehash() {
        let legacy = bcrypt::hash("legacyPass123", 4).expect("bcrypt");
        assert!(legacy.starts_with("$2"));
        assert!(verify("legacyPass123", &legacy));
        assert!(!verify("legacyPass124", &legacy));
        assert!(needs_rehash(&legacy));
        // The $2y$ spelling (PHP) is accepted too.
        let y = legacy.replacen("$2b$", "$2y$", 1);
        assert!(verify("legacyPass123", &y));
    }

    #[test]
    fn weaker_argon2_parameters_need_rehash() {
        let salt = new_salt().expect("salt");
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).expect("params"),
        )
        .hash_password(b"somePassword1", &salt)
        .expect("hash")
        .to_string();
        assert!(verify("somePassword1", &weak));
        assert!(needs_rehash(&weak));
    }

    #[test]
    fn garbage_hashes_never_match() {
        assert!(!verify("anything", ""));
        assert!(!verify("anything", "plaintext"));
        assert!(!verify("anything", "$2b$garbage"));
    }

    #[test]
    fn length_is_8_to_128_characters() {
        assert!(validate("password", "1234567").is_err());
        assert!(validate("password", "12345678").is_ok());
        assert!(validate("password", &"x".repeat(128)).is_ok());
        assert!(validate("password", &"x".repeat(129)).is_err());
        // Characters, not bytes.
        assert!(validate("password", &"é".repeat(100)).is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_work_runs_on_the_hashing_threads_at_most_one_per_core() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs = (0..12).map(|_| {
            let (running, peak) = (running.clone(), peak.clone());
            on_hashing_pool(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                std::thread::current().name().unwrap_or_default().to_owned()
            })
        });
        let names = futures::future::join_all(jobs).await;
        for name in names {
            assert!(name.expect("job ran").starts_with("password-"));
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak >= 1 && peak <= hashing_slots(), "peak {peak}");
    }

    #[test]
    fn admission_caps_each_client_and_the_whole_queue_and_frees_places_when_work_ends() {
        let gate = HashGate::new(HashLimits {
            queue_max: 3,
            per_client: 2,
        });
        let admit = |clients: &[&str]| gate.admit(clients);
        let a1 = admit(&["test-admit:a"]).expect("first");
        let a2 = admit(&["test-admit:a", "test-admit:acct"]).expect("second");
        assert_eq!(
            admit(&["test-admit:a"]).err(),
            Some(HashRefused::ClientBusy),
            "a third from the same client is refused"
        );
        let b = admit(&["test-admit:b"]).expect("another client");
        assert_eq!(
            admit(&["test-admit:c"]).err(),
            Some(HashRefused::Busy),
            "the queue is full"
        );
        drop(a1);
        let a3 = admit(&["test-admit:a"]).expect("a place was freed");
        assert_eq!(
            admit(&["test-admit:d", "test-admit:acct"]).err(),
            Some(HashRefused::Busy)
        );
        drop((a2, a3, b));
        assert!(admit(&["test-admit:acct"]).is_ok());
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_threads_keep_working() {
        let failed = on_hashing_pool(|| -> u32 { panic!("boom") }).await;
        assert!(failed.is_err());
        for _ in 0..hashing_slots() + 1 {
            assert_eq!(on_hashing_pool(|| 7).await.expect("ran"), 7);
        }
    }
}
