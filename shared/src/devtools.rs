//! Developer aids of the local server that write the store (the `dev` route group calls them).

use serde::Serialize;

use crate::clock::ClockRef;
use crate::domain::account::{AccountStatus, LoginRecord, UserInfo, Username, WalletRecord};
use crate::store::{Cond, StoreError, TableRef, TxOp, keys, to_item};

/// Why a dev user was not created.
#[derive(Debug, thiserror::Error)]
pub enum DevUserError {
    #[error("username is already registered")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates signed-in users for scripts and black-box journeys: the main table and the clock.
#[derive(Clone)]
pub struct DevUsers {
    table: TableRef,
    clock: ClockRef,
}

#[derive(Serialize)]
struct Guard {
    pk: String,
    sk: String,
    username: String,
}

/// Writes LOGIN (active, no usable password), INFO, the e-mail and referral-code guards and an
/// empty WALLET for a user, in one transaction. A dev tool: the user cannot log in with a password.
impl DevUsers {
    pub fn new(table: TableRef, clock: ClockRef) -> Self {
        DevUsers { table, clock }
    }

    /// Creates an active user with an empty wallet and no password (local mode only).
    pub async fn create_active_user(&self, username: &Username) -> Result<(), DevUserError> {
        let now = self.clock.epoch();
        let l = keys::login(username);
        let login = LoginRecord {
            pk: l.pk,
            sk: l.sk,
            username: username.to_string(),
            pwd: "!dev-user-without-password".into(),
            disabled: false,
            status: AccountStatus::Active,
            mode: None,
            created_at: now,
            updated_at: now,
            cred_version: 0,
        };
        let i = keys::info(username);
        let email = format!("{username}@dev.userstate.local");
        let referral_code =
            format!("DEV{}", &uuid::Uuid::new_v4().simple().to_string()[..8]).to_uppercase();
        let info = UserInfo {
            pk: i.pk,
            sk: i.sk,
            username: username.to_string(),
            full_name: username.to_string(),
            email: email.clone(),
            phone_number: None,
            unverified_phone: None,
            profile_img: None,
            agent: false,
            referral_code: referral_code.clone(),
            referred_by: None,
            created_at: now,
            updated_at: now,
            gsi1pk: keys::email_gsi(&email),
            gsi1sk: "INFO".into(),
        };
        let w = keys::wallet(username);
        let wallet = WalletRecord {
            pk: w.pk,
            sk: w.sk,
            balance: 0,
            points: 0,
            version: 0,
            bonus: 0,
        };
        let guard = |k: crate::store::Key| -> Result<TxOp, DevUserError> {
            let g = Guard {
                pk: k.pk,
                sk: k.sk,
                username: username.to_string(),
            };
            Ok(TxOp::Put {
                item: to_item(&g)?,
                cond: Some(Cond::item_absent()),
            })
        };
        let ops = vec![
            TxOp::Put {
                item: to_item(&login)?,
                cond: Some(Cond::item_absent()),
            },
            TxOp::Put {
                item: to_item(&info)?,
                cond: Some(Cond::item_absent()),
            },
            TxOp::Put {
                item: to_item(&wallet)?,
                cond: Some(Cond::item_absent()),
            },
            guard(keys::email_guard(&email))?,
            guard(keys::refcode_guard(&referral_code))?,
        ];
        match self.table.transact(ops).await {
            Ok(()) => Ok(()),
            Err(StoreError::TransactionCanceled { .. }) => Err(DevUserError::Taken),
            Err(e) => Err(e.into()),
        }
    }
}
