//! How handlers get the service they need from the application state (`State<Wallets>` via
//! [`axum::extract::FromRef`]).

#[allow(unused_imports)]
use axum::extract::FromRef;

#[allow(unused_imports)]
use crate::app::App;

// --- auth services ---
impl FromRef<App> for crate::auth::Sessions {
    fn from_ref(app: &App) -> Self {
        app.sessions()
    }
}

impl FromRef<App> for crate::auth::ApiKeys {
    fn from_ref(app: &App) -> Self {
        app.api_keys()
    }
}

impl FromRef<App> for crate::auth::Accounts {
    fn from_ref(app: &App) -> Self {
        app.accounts()
    }
}
// --- end auth services ---

// --- money services ---
impl FromRef<App> for crate::audit::Audit {
    fn from_ref(app: &App) -> Self {
        app.audit()
    }
}

impl FromRef<App> for crate::wallet::Wallets {
    fn from_ref(app: &App) -> Self {
        app.wallets()
    }
}

impl FromRef<App> for crate::points::Rewards {
    fn from_ref(app: &App) -> Self {
        app.rewards()
    }
}

impl FromRef<App> for crate::referral::Referrals {
    fn from_ref(app: &App) -> Self {
        app.referrals()
    }
}

impl FromRef<App> for crate::payments::invoice::Invoices {
    fn from_ref(app: &App) -> Self {
        app.invoices()
    }
}

impl FromRef<App> for crate::payments::callback::Callbacks {
    fn from_ref(app: &App) -> Self {
        app.callbacks()
    }
}

impl FromRef<App> for crate::payments::payout::Payouts {
    fn from_ref(app: &App) -> Self {
        app.payouts()
    }
}

impl FromRef<App> for crate::payments::voucher::Vouchers {
    fn from_ref(app: &App) -> Self {
        app.vouchers()
    }
}

impl FromRef<App> for crate::payments::catalog::Catalog {
    fn from_ref(app: &App) -> Self {
        app.catalog()
    }
}

impl FromRef<App> for crate::payments::payer::Payers {
    fn from_ref(app: &App) -> Self {
        app.payers()
    }
}

impl FromRef<App> for crate::payments::sync::XenditSync {
    fn from_ref(app: &App) -> Self {
        app.sync()
    }
}
// --- end money services ---

// --- other services ---
impl FromRef<App> for crate::devices::Devices {
    fn from_ref(app: &App) -> Self {
        app.devices()
    }
}

impl FromRef<App> for crate::devices::Pushes {
    fn from_ref(app: &App) -> Self {
        app.pushes()
    }
}

impl FromRef<App> for crate::marketing::Marketing {
    fn from_ref(app: &App) -> Self {
        app.marketing()
    }
}

impl FromRef<App> for crate::realtime::Realtime {
    fn from_ref(app: &App) -> Self {
        app.realtime()
    }
}

impl FromRef<App> for super::ws::LocalSockets {
    fn from_ref(app: &App) -> Self {
        super::ws::LocalSockets {
            realtime: app.realtime(),
            hub: app.ws_hub.clone(),
            recheck_secs: app.config.ws_recheck_secs,
            idle: std::time::Duration::from_secs(app.config.ws_idle_secs),
            max_age: std::time::Duration::from_secs(app.config.ws_max_connection_secs),
        }
    }
}

impl FromRef<App> for crate::profile::Profiles {
    fn from_ref(app: &App) -> Self {
        app.profiles()
    }
}

impl FromRef<App> for crate::address::Addresses {
    fn from_ref(app: &App) -> Self {
        app.addresses()
    }
}
// --- end other services ---
