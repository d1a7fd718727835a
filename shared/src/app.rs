//! Wires adapters from configuration into the application state every router shares.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::password::HashGate;
use crate::blobs::{BlobsRef, DirBlobs, MemoryBlobs, UnconfiguredBlobs};
use crate::clock::{ClockRef, SystemClock};
use crate::config::{Backend, Config, ConfigError};
use crate::lambda::{AwsPorts, Function};
use crate::notify::QueueRef;
use crate::notify::sqs::UnconfiguredQueue;
use crate::payments::xendit::Xendit;
use crate::store::dynamo::DynamoTable;
use crate::store::local::LocalStore;
use crate::store::policy::PolicyTable;
use crate::store::schema::{LOGS, MAIN};
use crate::store::unconfigured::UnconfiguredTable;
use crate::store::{StoreError, TableRef};
use crate::ws::{LocalHub, UnconfiguredWs, WsSenderRef};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

/// Application state: configuration and ports. Cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Built>);

/// The ports and the services built from them once, at start.
struct Built {
    ports: Inner,
    services: Services,
}

/// The parts of [`App`].
pub struct Inner {
    pub config: Config,
    /// The main single-table design table.
    pub main: TableRef,
    /// The logs table (audit events, provider logs).
    pub logs: TableRef,
    pub clock: ClockRef,
    /// Outbound notifications (SQS in aws mode; in-process queue into the dev outbox locally).
    pub queue: QueueRef,
    /// When this process started (for `/health` uptime).
    pub started: Instant,
    /// Stored files (profile images): S3 in aws mode, a directory (or memory) locally.
    pub blobs: BlobsRef,
    /// Xendit client (in local mode, the simulator the local server mounts).
    pub xendit: Xendit,
    /// Delivery to one WebSocket connection (API Gateway on AWS, the in-process hub locally).
    pub ws: WsSenderRef,
    /// The in-process WebSocket hub behind `ws` (local backend only; feeds `/ws`).
    pub ws_hub: Option<Arc<LocalHub>>,
    /// The AWS SDK configuration loaded at start (aws backend only), for clients built later
    /// (the notifier's SES client).
    pub sdk: Option<aws_config::SdkConfig>,
    /// Admission to the password-hashing threads (bounded queue, per-client share).
    pub hashing: Arc<HashGate>,
}

impl Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0.ports
    }
}

impl App {
    /// Builds the application from the process environment (the CLI entry point).
    pub async fn from_env() -> Result<App, StartError> {
        App::from_config(Config::from_env()?).await
    }

    /// Builds the application for one Lambda function from the environment: on AWS with only the
    /// adapters the function declares in [`crate::lambda`], and with the tables wrapped so the
    /// function can only use the table actions it declares in [`crate::permissions`] (the same
    /// grants its IAM policy carries).
    pub async fn for_function(function: &'static Function) -> Result<App, StartError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        // Secrets named by `USERSTATE_SECRETS` are read before anything else; their keys are
        // settings, looked up before the environment.
        let ids = crate::secrets::ids_from(env(crate::secrets::SECRETS_VAR).as_deref());
        let (sdk, secrets) = if ids.is_empty() {
            (None, crate::secrets::SecretSettings::default())
        } else {
            let sdk = load_sdk().await;
            let secrets = crate::secrets::load(&sdk, &ids).await?;
            (Some(sdk), secrets)
        };
        let lookup = |k: &str| secrets.get(k).or_else(|| env(k));
        let config = Config::from_lookup(lookup)?;
        config.require(function.settings, |name| lookup(name).is_some())?;
        let app = match config.backend {
            Backend::Aws => App::on_aws(config, function.ports, sdk).await,
            Backend::Local => App::local_for_function(config)?,
        };
        app.with_grants(function.name)
    }

    /// A function on the embedded store: debug builds only (`cargo lambda watch`), so release
    /// builds of the functions (what `sam build` deploys) do not carry the embedded store.
    #[cfg(debug_assertions)]
    fn local_for_function(config: Config) -> Result<App, StartError> {
        App::on_local_store(config)
    }

    #[cfg(not(debug_assertions))]
    fn local_for_function(_: Config) -> Result<App, StartError> {
        Err(ConfigError(
            "USERSTATE_BACKEND=local needs a debug build of the function (e.g. under `cargo lambda \
             watch`) or `userstate serve`: release builds of the Lambda functions carry only the \
             AWS adapters"
                .into(),
        )
        .into())
    }

    /// Wraps the tables so only the table actions `function` declares in
    /// [`crate::permissions`] are allowed. The state must not be shared yet.
    pub fn with_grants(mut self, function: &'static str) -> Result<App, StartError> {
        let access = crate::permissions::of(function).ok_or_else(|| {
            ConfigError(format!(
                "no table grants declared for function `{function}`"
            ))
        })?;
        let inner = Arc::get_mut(&mut self.0).ok_or_else(|| {
            ConfigError("application state shared before grants were applied".into())
        })?;
        let ports = &mut inner.ports;
        ports.main = Arc::new(PolicyTable::new(ports.main.clone(), access.main, function));
        ports.logs = Arc::new(PolicyTable::new(ports.logs.clone(), access.logs, function));
        inner.services = Services::build(&inner.ports);
        Ok(self)
    }

    /// Builds the application from the environment without storage or queue clients, for
    /// functions that use neither (`health`): no AWS SDK configuration is loaded and no client
    /// built, so init is shorter and the SDK is left out of the binary. Every table or queue call
    /// fails as unavailable.
    pub fn stateless_from_env() -> Result<App, StartError> {
        let config = Config::from_env()?;
        let main: TableRef = Arc::new(UnconfiguredTable(&MAIN));
        let logs: TableRef = Arc::new(UnconfiguredTable(&LOGS));
        let queue: QueueRef = Arc::new(UnconfiguredQueue);
        Ok(App::assemble_with_queue(
            config,
            main,
            logs,
            Arc::new(SystemClock),
            queue,
        ))
    }

    /// Builds the application for a configuration, choosing adapters by backend (every adapter
    /// on AWS).
    pub async fn from_config(config: Config) -> Result<App, StartError> {
        App::from_config_with(config, AwsPorts::ALL).await
    }

    /// Builds the application for a configuration; on AWS, the tables plus the adapters in
    /// `ports`. A port without an adapter answers as unconfigured: the queue and blob store
    /// refuse, the WebSocket push has no subscribers.
    pub async fn from_config_with(config: Config, ports: AwsPorts) -> Result<App, StartError> {
        match config.backend {
            Backend::Local => App::on_local_store(config),
            Backend::Aws => Ok(App::on_aws(config, ports, None).await),
        }
    }

    /// The embedded store under `data_dir`, or in memory without one.
    fn on_local_store(config: Config) -> Result<App, StartError> {
        let clock: ClockRef = Arc::new(SystemClock);
        let store = match &config.data_dir {
            Some(dir) => LocalStore::open(dir, clock.clone())?,
            None => LocalStore::memory(clock.clone())?,
        };
        Ok(App::with_local_store(config, &store, clock))
    }

    /// DynamoDB tables and the adapters in `ports`. Builds the SDK configuration and clients
    /// without a request: credentials and endpoints resolve on the first call.
    async fn on_aws(config: Config, ports: AwsPorts, sdk: Option<aws_config::SdkConfig>) -> App {
        let clock: ClockRef = Arc::new(SystemClock);
        let sdk = match sdk {
            Some(sdk) => sdk,
            None => load_sdk().await,
        };
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let main: TableRef = Arc::new(DynamoTable::new(ddb.clone(), &MAIN, &config.main_table));
        let logs: TableRef = Arc::new(DynamoTable::new(ddb, &LOGS, &config.logs_table));
        let queue: QueueRef = match (ports.queue, &config.notify_queue_url) {
            (Some(sqs), Some(url)) => sqs(&sdk, url),
            _ => Arc::new(UnconfiguredQueue),
        };
        let blobs: BlobsRef = match ports.blobs {
            Some(s3) => s3(&sdk, &config),
            None => Arc::new(UnconfiguredBlobs),
        };
        let ws: Option<WsSenderRef> = match (ports.ws_push, &config.ws_management_endpoint) {
            (Some(push), Some(endpoint)) => Some(push(&sdk, endpoint)),
            _ => Some(Arc::new(UnconfiguredWs)),
        };
        let mut app = App::assemble_all(config, main, logs, clock, queue, blobs, ws);
        if let Some(inner) = Arc::get_mut(&mut app.0) {
            inner.ports.sdk = Some(sdk);
        }
        app
    }

    /// Builds the application on an embedded store (used by `serve` and tests).
    pub fn with_local_store(config: Config, store: &LocalStore, clock: ClockRef) -> App {
        let main: TableRef = Arc::new(store.table(&MAIN, &config.main_table));
        let logs: TableRef = Arc::new(store.table(&LOGS, &config.logs_table));
        App::assemble(config, main, logs, clock)
    }

    /// An in-memory application with test defaults and the given clock.
    pub fn for_tests_with_clock(clock: ClockRef) -> App {
        let store =
            LocalStore::memory(clock.clone()).unwrap_or_else(|e| panic!("memory store: {e}"));
        App::with_local_store(Config::for_tests(), &store, clock)
    }

    /// An in-memory application with test defaults and the real clock.
    pub fn for_tests() -> App {
        App::for_tests_with_clock(Arc::new(SystemClock))
    }

    /// Assembles the state from ready adapters (tests inject wrapped or failing tables here), with
    /// the local queue delivering into the dev outbox of `main`.
    pub fn assemble(config: Config, main: TableRef, logs: TableRef, clock: ClockRef) -> App {
        let queue: QueueRef = Arc::new(crate::delivery::local_queue(main.clone(), clock.clone()));
        App::assemble_with_queue(config, main, logs, clock, queue)
    }

    /// Assembles the state from ready adapters including the queue (local blob store).
    pub fn assemble_with_queue(
        config: Config,
        main: TableRef,
        logs: TableRef,
        clock: ClockRef,
        queue: QueueRef,
    ) -> App {
        let blobs = App::local_blobs(&config);
        App::assemble_with_ports(config, main, logs, clock, queue, blobs)
    }

    /// The local blob store: `{data_dir}/resources`, or memory when there is no data dir.
    fn local_blobs(config: &Config) -> BlobsRef {
        match &config.data_dir {
            Some(dir) => Arc::new(DirBlobs::new(
                dir.join("resources"),
                &config.public_base_url,
            )),
            None => Arc::new(MemoryBlobs::new(&config.public_base_url)),
        }
    }

    /// Assembles the state with every port given (the WebSocket push is the in-process hub).
    pub fn assemble_with_ports(
        config: Config,
        main: TableRef,
        logs: TableRef,
        clock: ClockRef,
        queue: QueueRef,
        blobs: BlobsRef,
    ) -> App {
        App::assemble_all(config, main, logs, clock, queue, blobs, None)
    }

    /// Assembles everything; without a WebSocket sender, the in-process hub is used (the local
    /// server's `/ws`).
    fn assemble_all(
        config: Config,
        main: TableRef,
        logs: TableRef,
        clock: ClockRef,
        queue: QueueRef,
        blobs: BlobsRef,
        ws: Option<WsSenderRef>,
    ) -> App {
        let xendit = Xendit::new(&config);
        let hashing = HashGate::new(config.hash_limits);
        let (ws, ws_hub) = match ws {
            Some(ws) => (ws, None),
            None => {
                let hub = Arc::new(LocalHub::default());
                (hub.clone() as WsSenderRef, Some(hub))
            }
        };
        App::from_ports(Inner {
            config,
            main,
            logs,
            clock,
            queue,
            started: Instant::now(),
            blobs,
            xendit,
            ws,
            ws_hub,
            sdk: None,
            hashing,
        })
    }

    /// Builds every service from the ports, once.
    fn from_ports(ports: Inner) -> App {
        let services = Services::build(&ports);
        App(Arc::new(Built { ports, services }))
    }

    /// The same application with another WebSocket sender (tests use a fake Management API).
    pub fn with_ws(&self, ws: WsSenderRef) -> App {
        let mut inner = self.rebuild();
        inner.ws = ws;
        inner.ws_hub = None;
        App::from_ports(inner)
    }

    fn rebuild(&self) -> Inner {
        Inner {
            config: self.config.clone(),
            main: self.main.clone(),
            logs: self.logs.clone(),
            clock: self.clock.clone(),
            queue: self.queue.clone(),
            started: self.started,
            blobs: self.blobs.clone(),
            xendit: self.xendit.clone(),
            ws: self.ws.clone(),
            ws_hub: self.ws_hub.clone(),
            sdk: self.sdk.clone(),
            hashing: self.hashing.clone(),
        }
    }

    /// The same application with another queue (tests inspect a `notify::memory::MemoryQueue`).
    pub fn with_queue(&self, queue: QueueRef) -> App {
        let mut inner = self.rebuild();
        inner.queue = queue;
        App::from_ports(inner)
    }
}

/// Every service of the application, built from its ports once at start; handlers get clones
/// (a few reference counts each) through [`axum::extract::FromRef`] in `http/state.rs`.
#[derive(Clone)]
pub struct Services {
    pub limiter: crate::ratelimit::RateLimiter,
    pub sessions: crate::auth::Sessions,
    pub otps: crate::auth::Otps,
    pub api_keys: crate::auth::ApiKeys,
    pub accounts: crate::auth::Accounts,
    pub audit: crate::audit::Audit,
    pub wallets: crate::wallet::Wallets,
    pub rewards: crate::points::Rewards,
    pub referrals: crate::referral::Referrals,
    pub invoices: crate::payments::invoice::Invoices,
    pub callbacks: crate::payments::callback::Callbacks,
    pub payouts: crate::payments::payout::Payouts,
    pub vouchers: crate::payments::voucher::Vouchers,
    pub catalog: crate::payments::catalog::Catalog,
    pub payers: crate::payments::payer::Payers,
    pub sync: crate::payments::sync::XenditSync,
    pub pushes: crate::devices::Pushes,
    pub realtime: crate::realtime::Realtime,
    pub profiles: crate::profile::Profiles,
    pub marketing: crate::marketing::Marketing,
    pub devices: crate::devices::Devices,
    pub addresses: crate::address::Addresses,
}

impl Services {
    fn build(p: &Inner) -> Services {
        Services {
            limiter: p.build_limiter(),
            sessions: p.build_sessions(),
            otps: p.build_otps(),
            api_keys: p.build_api_keys(),
            accounts: p.build_accounts(),
            audit: p.build_audit(),
            wallets: p.build_wallets(),
            rewards: p.build_rewards(),
            referrals: p.build_referrals(),
            invoices: p.build_invoices(),
            callbacks: p.build_callbacks(),
            payouts: p.build_payouts(),
            vouchers: p.build_vouchers(),
            catalog: p.build_catalog(),
            payers: p.build_payers(),
            sync: p.build_sync(),
            pushes: p.build_pushes(),
            realtime: p.build_realtime(),
            profiles: p.build_profiles(),
            marketing: p.build_marketing(),
            devices: p.build_devices(),
            addresses: p.build_addresses(),
        }
    }
}

// The services, built once by [`Services::build`].
impl App {
    pub fn limiter(&self) -> crate::ratelimit::RateLimiter {
        self.0.services.limiter.clone()
    }

    pub fn sessions(&self) -> crate::auth::Sessions {
        self.0.services.sessions.clone()
    }

    pub fn otps(&self) -> crate::auth::Otps {
        self.0.services.otps.clone()
    }

    pub fn api_keys(&self) -> crate::auth::ApiKeys {
        self.0.services.api_keys.clone()
    }

    pub fn accounts(&self) -> crate::auth::Accounts {
        self.0.services.accounts.clone()
    }

    pub fn audit(&self) -> crate::audit::Audit {
        self.0.services.audit.clone()
    }

    /// The wallet ↔ ledger reconciliation (scheduled with the sync, and `userstate reconcile`).
    pub fn reconciler(&self) -> crate::reconcile::Reconciler {
        crate::reconcile::Reconciler::new(self.main.clone(), self.clock.clone(), self.audit())
    }

    pub fn wallets(&self) -> crate::wallet::Wallets {
        self.0.services.wallets.clone()
    }

    pub fn rewards(&self) -> crate::points::Rewards {
        self.0.services.rewards.clone()
    }

    pub fn referrals(&self) -> crate::referral::Referrals {
        self.0.services.referrals.clone()
    }

    pub fn invoices(&self) -> crate::payments::invoice::Invoices {
        self.0.services.invoices.clone()
    }

    pub fn callbacks(&self) -> crate::payments::callback::Callbacks {
        self.0.services.callbacks.clone()
    }

    pub fn payouts(&self) -> crate::payments::payout::Payouts {
        self.0.services.payouts.clone()
    }

    pub fn vouchers(&self) -> crate::payments::voucher::Vouchers {
        self.0.services.vouchers.clone()
    }

    pub fn catalog(&self) -> crate::payments::catalog::Catalog {
        self.0.services.catalog.clone()
    }

    pub fn payers(&self) -> crate::payments::payer::Payers {
        self.0.services.payers.clone()
    }

    pub fn sync(&self) -> crate::payments::sync::XenditSync {
        self.0.services.sync.clone()
    }

    pub fn pushes(&self) -> crate::devices::Pushes {
        self.0.services.pushes.clone()
    }

    pub fn realtime(&self) -> crate::realtime::Realtime {
        self.0.services.realtime.clone()
    }

    pub fn profiles(&self) -> crate::profile::Profiles {
        self.0.services.profiles.clone()
    }

    pub fn marketing(&self) -> crate::marketing::Marketing {
        self.0.services.marketing.clone()
    }

    pub fn devices(&self) -> crate::devices::Devices {
        self.0.services.devices.clone()
    }

    pub fn addresses(&self) -> crate::address::Addresses {
        self.0.services.addresses.clone()
    }
}

// How each service is built from the ports.

// --- auth services (sessions, accounts, otp, api keys, rate limits) ---
impl Inner {
    /// The rate-limit counters on the main table.
    fn build_limiter(&self) -> crate::ratelimit::RateLimiter {
        crate::ratelimit::RateLimiter::new(self.main.clone(), self.clock.clone())
    }

    /// Sessions, signed with `SECRET_AUTH_CONFIG`, living `JWT_TTL_SECS`.
    fn build_sessions(&self) -> crate::auth::Sessions {
        let keys = crate::auth::session::SessionKeys {
            secret: self.config.jwt_secret.clone(),
            previous: self.config.jwt_secret_previous.clone(),
            ttl_secs: self.config.jwt_ttl_secs,
        };
        crate::auth::Sessions::new(self.main.clone(), self.clock.clone(), keys)
    }

    /// One-time codes and tokens, with their send limits.
    fn build_otps(&self) -> crate::auth::Otps {
        let limits = crate::auth::otp::SendLimits {
            per_ip: self.config.limits.otp_ip,
            per_identifier: self.config.limits.otp_identifier,
        };
        crate::auth::Otps::new(
            self.main.clone(),
            self.clock.clone(),
            self.config.jwt_secret.clone(),
            self.build_limiter(),
            limits,
        )
    }

    /// API keys of service callers.
    fn build_api_keys(&self) -> crate::auth::ApiKeys {
        crate::auth::ApiKeys::new(self.main.clone(), self.clock.clone())
    }

    /// Signup, login, passwords, deactivation.
    fn build_accounts(&self) -> crate::auth::Accounts {
        use crate::auth::accounts::{AccountLimits, AccountPorts, AccountSettings};
        let l = &self.config.limits;
        let settings = AccountSettings {
            public_base_url: self.config.public_base_url.clone(),
            limits: AccountLimits {
                login_account: l.login_account,
                login_ip: l.login_ip,
                signup_ip: l.signup_ip,
                check_email_ip: l.check_email_ip,
                reset_ip: l.reset_ip,
                reset_identifier: l.reset_identifier,
                password_change: l.password_change,
            },
            referral_on_verification: self.config.points.qualify_on
                == crate::config::ReferralQualify::Verification,
        };
        let ports = AccountPorts {
            table: self.main.clone(),
            clock: self.clock.clone(),
            queue: self.queue.clone(),
            hashing: self.hashing.clone(),
            audit: self.build_audit(),
            sessions: self.build_sessions(),
            otps: self.build_otps(),
            limiter: self.build_limiter(),
            referrals: self.build_referrals(),
            devices: self.build_devices(),
        };
        crate::auth::Accounts::new(ports, settings)
    }
}
// --- end auth services ---

// --- money services (wallet, points, referral, payments, audit) ---
impl Inner {
    /// The audit log on the logs table.
    fn build_audit(&self) -> crate::audit::Audit {
        crate::audit::Audit::new(
            self.logs.clone(),
            self.clock.clone(),
            self.config.log_retention_days,
        )
    }

    /// Wallets (balance, points and their ledgers).
    fn build_wallets(&self) -> crate::wallet::Wallets {
        crate::wallet::Wallets::new(self.main.clone(), self.clock.clone())
    }

    /// Reward points: history, redemption, expiry.
    fn build_rewards(&self) -> crate::points::Rewards {
        let p = &self.config.points;
        crate::points::Rewards::new(
            self.main.clone(),
            self.clock.clone(),
            self.build_wallets(),
            self.build_audit(),
            crate::points::RewardSettings {
                redeem_rate: p.redeem_rate,
                redeem_min: p.redeem_min,
                expiry_months: p.expiry_months,
                max_wallets_per_run: self.config.sync_max_wallets,
            },
        )
    }

    /// Referrals.
    fn build_referrals(&self) -> crate::referral::Referrals {
        let p = &self.config.points;
        crate::referral::Referrals::new(
            self.main.clone(),
            self.clock.clone(),
            self.build_wallets(),
            self.build_devices(),
            crate::referral::ReferralSettings {
                bonus: crate::domain::money::Points::new(p.referral_bonus),
                cap_max: p.referral_cap.max,
                cap_window_secs: p.referral_cap.window_secs,
                on_payment: p.qualify_on == crate::config::ReferralQualify::FirstPayment,
                min_payment: crate::domain::money::Money::from_rupiah(p.referral_min_payment),
            },
        )
    }

    /// Checkout invoices.
    fn build_invoices(&self) -> crate::payments::invoice::Invoices {
        use crate::payments::invoice::{InvoicePorts, InvoiceSettings, Invoices};
        Invoices::new(InvoicePorts {
            table: self.main.clone(),
            clock: self.clock.clone(),
            xendit: self.xendit.clone(),
            wallets: self.build_wallets(),
            referrals: self.build_referrals(),
            audit: self.build_audit(),
            push: Arc::new(self.build_realtime()),
            earn: crate::points::EarnRate {
                per_amount: self.config.points.per_amount,
            },
            settings: InvoiceSettings {
                duration_secs: self.config.invoice_duration_secs,
                max_open: self.config.max_open_invoices,
            },
        })
    }

    /// The Xendit callbacks' gate and the invoice callback.
    fn build_callbacks(&self) -> crate::payments::callback::Callbacks {
        crate::payments::callback::Callbacks::new(
            self.build_invoices(),
            self.build_audit(),
            self.config.xendit_callback_token.clone(),
        )
        .with_previous(self.config.xendit_callback_token_previous.clone())
    }

    /// Bank accounts and payouts.
    fn build_payouts(&self) -> crate::payments::payout::Payouts {
        crate::payments::payout::Payouts::new(
            self.main.clone(),
            self.clock.clone(),
            self.xendit.clone(),
            self.build_wallets(),
            self.build_audit(),
        )
    }

    /// Vouchers.
    fn build_vouchers(&self) -> crate::payments::voucher::Vouchers {
        crate::payments::voucher::Vouchers::new(
            self.main.clone(),
            self.clock.clone(),
            self.build_audit(),
        )
    }

    /// Banks and payment types.
    fn build_catalog(&self) -> crate::payments::catalog::Catalog {
        crate::payments::catalog::Catalog::new(self.main.clone(), self.xendit.clone())
    }

    /// The account check of system routes acting for a user.
    fn build_payers(&self) -> crate::payments::payer::Payers {
        crate::payments::payer::Payers::new(self.main.clone())
    }

    /// The Xendit sync.
    fn build_sync(&self) -> crate::payments::sync::XenditSync {
        crate::payments::sync::XenditSync::new(
            self.main.clone(),
            self.clock.clone(),
            self.build_invoices(),
            self.build_payouts(),
            self.build_rewards(),
            self.build_audit(),
            crate::payments::sync::SyncSettings {
                budget_secs: self.config.sync_budget_secs,
                max_invoices: self.config.sync_max_invoices,
                xendit_rpm: self.config.sync_xendit_rpm,
                reconcile_max_wallets: self.config.reconcile_max_wallets,
            },
        )
    }
}
// --- end money services ---

// --- other services (profile, address, devices, marketing, notify, ws) ---
impl Inner {
    /// Builds the providers the configuration names: SES in aws mode, SMSViro when
    /// `API_URL_SMSVIRO` and `SMSVIROTOKEN` are set, FCM when `FCM_SERVICE_ACCOUNT_JSON` is set.
    pub async fn notify_providers(
        &self,
    ) -> Result<crate::notify::providers::Providers, crate::notify::NotifyError> {
        use crate::notify::fcm::{FcmClient, ServiceAccount};
        use crate::notify::providers::Providers;
        use crate::notify::ses::SesMailer;
        use crate::notify::sms::SmsViro;
        let app = self;
        let c = &app.config;
        let mut p = Providers::default();
        if c.backend == Backend::Aws {
            // The configuration the app loaded at start (loading it again would repeat the
            // credential and region lookups); the CLI's app always has it on AWS.
            let loaded;
            let sdk = match &app.sdk {
                Some(sdk) => sdk,
                None => {
                    loaded = aws_config::defaults(aws_config::BehaviorVersion::latest())
                        .load()
                        .await;
                    &loaded
                }
            };
            p.mailer = Some(Arc::new(SesMailer::new(
                aws_sdk_sesv2::Client::new(sdk),
                &c.mail_from,
            )));
        }
        if let (Some(url), Some(key)) = (&c.sms_base_url, &c.sms_api_key) {
            p.sms = Some(Arc::new(SmsViro::new(url, key.clone(), &c.sms_sender_id)?));
        }
        if let Some(sa) = &c.fcm_service_account {
            let account = ServiceAccount::load(sa.expose())?;
            p.push = Some(Arc::new(FcmClient::new(
                account,
                &c.fcm_base_url,
                app.clock.clone(),
            )?));
        }
        Ok(p)
    }

    /// Delivery of queued notifications through `providers` (the notifier).
    pub fn delivery(
        &self,
        providers: crate::notify::providers::Providers,
    ) -> crate::delivery::Delivery {
        crate::delivery::Delivery::new(
            self.main.clone(),
            self.clock.clone(),
            self.build_devices(),
            self.build_audit(),
            providers,
            self.config.notify_max_receives,
        )
    }

    /// Admin pushes.
    fn build_pushes(&self) -> crate::devices::Pushes {
        crate::devices::Pushes::new(self.main.clone(), self.queue.clone())
    }

    /// Real-time payment status (WebSocket connections).
    fn build_realtime(&self) -> crate::realtime::Realtime {
        crate::realtime::Realtime::new(
            self.main.clone(),
            self.clock.clone(),
            self.ws.clone(),
            self.build_sessions(),
        )
    }

    /// Profiles, phone changes and profile images.
    fn build_profiles(&self) -> crate::profile::Profiles {
        crate::profile::Profiles::new(crate::profile::ProfilePorts {
            table: self.main.clone(),
            clock: self.clock.clone(),
            blobs: self.blobs.clone(),
            audit: self.build_audit(),
            queue: self.queue.clone(),
            otps: self.build_otps(),
            limiter: self.build_limiter(),
            phone_change_limit: self.config.limits.phone_change,
        })
    }

    /// Marketing offers and FAQ.
    fn build_marketing(&self) -> crate::marketing::Marketing {
        crate::marketing::Marketing::new(self.main.clone(), self.clock.clone())
    }

    /// Registered push devices.
    fn build_devices(&self) -> crate::devices::Devices {
        crate::devices::Devices::new(self.main.clone(), self.clock.clone())
    }

    /// Delivery addresses.
    fn build_addresses(&self) -> crate::address::Addresses {
        crate::address::Addresses::new(self.main.clone(), self.clock.clone())
    }
}
// --- end other services ---

/// The AWS SDK configuration from the function's environment (region, credentials, endpoint).
async fn load_sdk() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
