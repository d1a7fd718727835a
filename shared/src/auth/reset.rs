//! The consumer's half of a password reset request (`/request-reset-pwd` only queues the e-mail):
//! look the account up, issue the single-use reset token bound to the account's credential
//! version, and build the mail — sent to the address the account registered, whichever alias
//! was typed. Runs in the notifier (and the local queue's consumer), never on the request path.

use crate::auth::identity;
use crate::auth::otp::{self, Purpose};
use crate::domain::account::{AccountStatus, Email, LoginRecord, UserInfo};
use crate::notify::Notification;
use crate::store::{StoreError, Table, from_item, get_array, keys};

/// A reset mail ready to send, and whose it is.
#[derive(Debug)]
pub struct Prepared {
    pub username: String,
    pub mail: Notification,
}

/// Issues a reset token for the account `email` names (at `now`, epoch seconds) and returns the
/// mail carrying it; `None` when no usable account has that address (unknown, deactivated or
/// disabled): nothing is sent then.
pub async fn prepare(
    table: &dyn Table,
    now: i64,
    email: &str,
) -> Result<Option<Prepared>, StoreError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(None);
    };
    let Some(username) = identity::email_owner(table, &email).await? else {
        return Ok(None);
    };
    let [login, info] = get_array(table, &[keys::login(&username), keys::info(&username)]).await?;
    let (Some(login), Some(info)) = (login, info) else {
        return Ok(None);
    };
    let login: LoginRecord = from_item(&login)?;
    let info: UserInfo = from_item(&info)?;
    if login.disabled || login.status == AccountStatus::Deactivated {
        return Ok(None);
    }
    let (op, token) = otp::token_op(now, Purpose::ResetPwd, &username, Some(login.cred_version))?;
    table.transact(vec![op]).await?;
    Ok(Some(Prepared {
        username,
        mail: Notification::Email {
            to: info.email,
            subject: "Reset your UserState password".into(),
            body: format!(
                "A password reset was requested for your account.\nEnter this reset token in the app: {token}\n\nIt is valid for 30 minutes and works once. If you did not ask for it, ignore this mail."
            ),
            html: None,
        },
    }))
}
