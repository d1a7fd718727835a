//! Stored sessions: a token is only good while its `SESSION#{sid}` item exists and is unexpired
//! AND the account's credential version (`cred_version` on `LOGIN`) is the one the session was
//! opened for, with the account active. A session is only ever written in a transaction that
//! checks that version on `LOGIN`, and every revocation (password reset or change, deactivation)
//! bumps it in the same write that changes the password or the state — so a login racing a
//! revocation either commits before it (and its session is then stale) or fails, on the embedded
//! store and on DynamoDB alike. Deleting the session items afterwards is only clean-up.

use serde::{Deserialize, Serialize};

use super::token::{self, Claims};
use crate::app::App;
use crate::domain::account::{AccountStatus, LoginRecord};
use crate::error::ApiError;
use crate::store::{
    Cond, Item, Key, Query, StoreError, TxOp, Update, from_item, get_array, keys, query_all,
    to_item,
};

/// The stored part of a session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub pk: String,
    pub sk: String,
    pub agent: bool,
    pub created_at: i64,
    pub expires_at: i64,
    /// DynamoDB TTL: a day after expiry, so the item cleans itself up.
    pub ttl: i64,
    /// The account's credential version this session was opened for (0 for sessions written
    /// before versions existed, which match accounts whose version was never bumped).
    #[serde(default)]
    pub cv: i64,
}

/// A freshly issued token and its session id.
#[derive(Clone, Debug)]
pub struct Issued {
    pub token: String,
    pub sid: String,
    pub expires_at: i64,
}

/// `attribute = v`, where a missing attribute counts as 0 (items written before the attribute).
pub fn version_is(attribute: &str, v: i64) -> Cond {
    if v == 0 {
        Cond::NotExists(attribute.into()).or(Cond::eq(attribute, 0))
    } else {
        Cond::eq(attribute, v)
    }
}

/// The condition on `LOGIN` under which a session for credential version `cv` may be written:
/// the version is unchanged and the account is active and not disabled.
pub fn may_open(cv: i64) -> Cond {
    version_is("cred_version", cv)
        .and(Cond::eq("status", "active"))
        .and(Cond::eq("disabled", false))
}

/// True when `login` (as stored now) still accepts a session opened for version `cv`.
pub fn accepts(login: &LoginRecord, cv: i64) -> bool {
    login.cred_version == cv && login.status == AccountStatus::Active && !login.disabled
}

fn sign(
    app: &App,
    username: &str,
    agent: bool,
    sid: &str,
    now: i64,
    exp: i64,
) -> Result<String, ApiError> {
    let claims = Claims {
        user: username.to_owned(),
        agent,
        sid: sid.to_owned(),
        iat: now,
        exp,
    };
    token::sign(&app.config.jwt_secret, &claims).map_err(|e| {
        tracing::error!(error = %e, "jwt signing failed");
        ApiError::internal()
    })
}

/// The put that creates a session for credential version `cv`. It must run in one transaction
/// with an operation on `LOGIN` conditional on [`may_open`]`(cv)` (see [`open_ops`]).
pub fn new_session_op(
    app: &App,
    username: &str,
    agent: bool,
    cv: i64,
) -> Result<(TxOp, Issued), ApiError> {
    let now = app.clock.epoch();
    let exp = now + app.config.jwt_ttl_secs;
    let sid = uuid::Uuid::new_v4().simple().to_string();
    let key = keys::session(username, &sid);
    let session = Session {
        pk: key.pk,
        sk: key.sk,
        agent,
        created_at: now,
        expires_at: exp,
        ttl: exp + 86_400,
        cv,
    };
    let item = to_item(&session)?;
    let token = sign(app, username, agent, &sid, now, exp)?;
    Ok((
        TxOp::Put {
            item,
            cond: Some(Cond::item_absent()),
        },
        Issued {
            token,
            sid,
            expires_at: exp,
        },
    ))
}

/// The two operations that open a session for an account read at credential version `cv`: a
/// check on `LOGIN` ([`may_open`]) and the session put. Index 0 fails when the account changed.
pub fn open_ops(
    app: &App,
    username: &str,
    agent: bool,
    cv: i64,
) -> Result<([TxOp; 2], Issued), ApiError> {
    let (put, issued) = new_session_op(app, username, agent, cv)?;
    let check = TxOp::Check {
        key: keys::login(username),
        cond: may_open(cv),
    };
    Ok(([check, put], issued))
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The account's credentials or state changed since they were read.
    #[error("the account changed since it was read")]
    AccountChanged,
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Opens a session for an account read at credential version `cv` (one transaction with the
/// check on `LOGIN`).
pub async fn open(app: &App, username: &str, agent: bool, cv: i64) -> Result<Issued, OpenError> {
    let (ops, issued) = open_ops(app, username, agent, cv)?;
    match app.main.transact(ops.into()).await {
        Ok(()) => Ok(issued),
        Err(e) if e.failed_at(0) => Err(OpenError::AccountChanged),
        Err(e) => Err(OpenError::Api(e.into())),
    }
}

/// Opens a session for the account as stored now, without a password (the dev-user route and
/// tests); refused unless the account is active.
pub async fn issue(app: &App, username: &str, agent: bool) -> Result<Issued, ApiError> {
    let login: LoginRecord = crate::store::get_record(app.main.as_ref(), &keys::login(username))
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    match open(app, username, agent, login.cred_version).await {
        Ok(issued) => Ok(issued),
        Err(OpenError::AccountChanged) => Err(ApiError::unauthorized()),
        Err(OpenError::Api(e)) => Err(e),
    }
}

/// Whether each of `sids` is a live session of `username`: the session exists and is unexpired,
/// and the account accepts its credential version. One batch read (the account and the sessions).
pub async fn live(app: &App, username: &str, sids: &[&str]) -> Result<Vec<bool>, StoreError> {
    if sids.is_empty() {
        return Ok(Vec::new());
    }
    let mut read: Vec<Key> = vec![keys::login(username)];
    read.extend(sids.iter().map(|sid| keys::session(username, sid)));
    let mut items = app.main.get_many(&read).await?.into_iter();
    let login: Option<LoginRecord> = items.next().flatten().map(|i| from_item(&i)).transpose()?;
    let now = app.clock.epoch();
    items
        .map(|session| session_accepted(login.as_ref(), session, now))
        .collect()
}

fn session_accepted(
    login: Option<&LoginRecord>,
    session: Option<Item>,
    now: i64,
) -> Result<bool, StoreError> {
    let (Some(login), Some(item)) = (login, session) else {
        return Ok(false);
    };
    let session: Session = from_item(&item)?;
    Ok(session.expires_at > now && accepts(login, session.cv))
}

/// Checks a bearer token against signature, expiry, the stored session and the account's
/// current credential version and state (the session and `LOGIN` in one batch read).
pub async fn check(app: &App, bearer: &str) -> Result<Claims, ApiError> {
    let now = app.clock.epoch();
    let claims =
        token::verify(&app.config.jwt_secret, bearer, now).ok_or_else(ApiError::unauthorized)?;
    let [session, login] = get_array(
        app.main.as_ref(),
        &[
            keys::session(&claims.user, &claims.sid),
            keys::login(&claims.user),
        ],
    )
    .await?;
    let login: Option<LoginRecord> = login.map(|i| from_item(&i)).transpose()?;
    if session_accepted(login.as_ref(), session, now)? {
        Ok(claims)
    } else {
        Err(ApiError::unauthorized())
    }
}

/// Issues a fresh token for the same session and pushes the session's expiry forward (only while
/// the session is still there; a revoked one stays revoked).
pub async fn extend(app: &App, claims: &Claims) -> Result<Issued, ApiError> {
    let now = app.clock.epoch();
    let exp = now + app.config.jwt_ttl_secs;
    let key = keys::session(&claims.user, &claims.sid);
    let update = Update::new()
        .set("expires_at", exp)
        .set("ttl", exp + 86_400);
    match app
        .main
        .update(
            &key,
            update,
            Some(Cond::item_exists().and(Cond::gt("expires_at", now))),
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::ConditionFailed) => return Err(ApiError::unauthorized()),
        Err(e) => return Err(e.into()),
    }
    let token = sign(app, &claims.user, claims.agent, &claims.sid, now, exp)?;
    Ok(Issued {
        token,
        sid: claims.sid.clone(),
        expires_at: exp,
    })
}

/// Revokes one session.
pub async fn revoke(app: &App, username: &str, sid: &str) -> Result<(), ApiError> {
    app.main.delete(&keys::session(username, sid), None).await?;
    Ok(())
}

/// Deletes every session item of a user, optionally keeping one (the caller's own). Clean-up
/// after a credential-version bump, which is what actually revokes them.
pub async fn revoke_all(app: &App, username: &str, keep: Option<&str>) -> Result<usize, ApiError> {
    let q = Query::pk(keys::user_pk(username)).prefix(keys::SESSION_PREFIX);
    let items = query_all(app.main.as_ref(), q).await?;
    let keep_sk = keep.map(|sid| keys::session(username, sid).sk);
    let mut n = 0;
    for item in items {
        let key = crate::store::Key::of(&item)?;
        if Some(&key.sk) == keep_sk.as_ref() {
            continue;
        }
        app.main.delete(&key, None).await?;
        n += 1;
    }
    Ok(n)
}
