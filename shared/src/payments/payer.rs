//! The account a system route acts for (a checkout or voucher redemption on behalf of a user):
//! it must exist and be active.

use crate::domain::account::{AccountStatus, LoginRecord, Username};
use crate::store::{StoreError, TableRef, from_item, keys};

/// Why a user cannot be acted for.
#[derive(Debug, thiserror::Error)]
pub enum PayerError {
    /// No such account.
    #[error("account does not exist")]
    Unknown,
    /// The account is disabled or not active.
    #[error("account is disabled")]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the accounts system routes act for. Cheap to clone.
#[derive(Clone)]
pub struct Payers {
    table: TableRef,
}

impl Payers {
    /// The check on the main table.
    pub fn new(table: TableRef) -> Payers {
        Payers { table }
    }

    /// The account must exist and be active.
    pub async fn require_active(&self, username: &Username) -> Result<(), PayerError> {
        let Some(item) = self.table.get(&keys::login(username.as_str())).await? else {
            return Err(PayerError::Unknown);
        };
        let login: LoginRecord = from_item(&item)?;
        if login.disabled || login.status != AccountStatus::Active {
            return Err(PayerError::Disabled);
        }
        Ok(())
    }
}
