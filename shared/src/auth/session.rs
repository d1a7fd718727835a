//! Stored sessions: a token is only good while its `SESSION#{sid}` item exists and is unexpired
//! AND the account's credential version (`cred_version` on `LOGIN`) is the one the session was
//! opened for, with the account active. A session is only ever written in a transaction that
//! checks that version on `LOGIN`, and every revocation (password reset or change, deactivation)
//! bumps it in the same write that changes the password or the state — so a login racing a
//! revocation either commits before it (and its session is then stale) or fails, on the embedded
//! store and on DynamoDB alike. Deleting the session items afterwards is only clean-up.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::token::{self, Claims};
use crate::clock::ClockRef;
use crate::config::Secret;
use crate::domain::account::{AccountStatus, LoginRecord, Username};
use crate::store::{
    Cond, Item, Key, Query, Steps, StoreError, TableRef, TxOp, Update, from_item, get_array, keys,
    query_all, to_item,
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

/// Why a session was refused or could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No live session: a bad or expired token, a revoked session, an account that changed.
    #[error("no live session")]
    Rejected,
    /// The token could not be signed.
    #[error("token signing failed")]
    Signing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The account's credentials or state changed since they were read.
    #[error("the account changed since it was read")]
    AccountChanged,
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl From<StoreError> for OpenError {
    fn from(e: StoreError) -> Self {
        OpenError::Session(e.into())
    }
}

/// The signing key and lifetime of session tokens (`SECRET_AUTH_CONFIG`, `JWT_TTL_SECS`).
#[derive(Clone, Debug)]
pub struct SessionKeys {
    pub secret: Secret,
    /// A rotated-out key whose tokens still verify (`SECRET_AUTH_CONFIG_PREVIOUS`).
    pub previous: Option<Secret>,
    pub ttl_secs: i64,
}

/// The steps of opening a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenStep {
    /// The check on `LOGIN` ([`may_open`]): fails when the account changed.
    Account,
    /// The session put.
    Session,
}

/// Sessions on the main table, signed with the server key. Cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    table: TableRef,
    clock: ClockRef,
    keys: Arc<SessionKeys>,
}

impl Sessions {
    /// Sessions stored in `table`, tokens signed with `keys`.
    pub fn new(table: TableRef, clock: ClockRef, keys: SessionKeys) -> Sessions {
        Sessions {
            table,
            clock,
            keys: Arc::new(keys),
        }
    }

    fn sign(
        &self,
        username: &str,
        agent: bool,
        sid: &str,
        now: i64,
        exp: i64,
    ) -> Result<String, SessionError> {
        let claims = Claims {
            user: username.to_owned(),
            agent,
            sid: sid.to_owned(),
            iat: now,
            exp,
        };
        token::sign(&self.keys.secret, &claims).map_err(|e| {
            tracing::error!(error = %e, "jwt signing failed");
            SessionError::Signing
        })
    }

    /// The put that creates a session for credential version `cv`. It must run in one
    /// transaction with an operation on `LOGIN` conditional on [`may_open`]`(cv)` (see
    /// [`Sessions::open_steps`]).
    pub fn new_session_op(
        &self,
        username: &Username,
        agent: bool,
        cv: i64,
    ) -> Result<(TxOp, Issued), SessionError> {
        let now = self.clock.epoch();
        let exp = now + self.keys.ttl_secs;
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
        let token = self.sign(username, agent, &sid, now, exp)?;
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

    /// The two operations that open a session for an account read at credential version `cv`:
    /// a check on `LOGIN` ([`may_open`]) and the session put.
    pub fn open_steps(
        &self,
        username: &Username,
        agent: bool,
        cv: i64,
    ) -> Result<(Steps<OpenStep>, Issued), SessionError> {
        let (put, issued) = self.new_session_op(username, agent, cv)?;
        let check = TxOp::Check {
            key: keys::login(username),
            cond: may_open(cv),
        };
        let mut steps = Steps::new();
        steps
            .push(OpenStep::Account, check)
            .push(OpenStep::Session, put);
        Ok((steps, issued))
    }

    /// Opens a session for an account read at credential version `cv` (one transaction with the
    /// check on `LOGIN`).
    pub async fn open(
        &self,
        username: &Username,
        agent: bool,
        cv: i64,
    ) -> Result<Issued, OpenError> {
        let (steps, issued) = self.open_steps(username, agent, cv)?;
        let (ops, names) = steps.split();
        match self.table.transact(ops).await {
            Ok(()) => Ok(issued),
            Err(e) if names.failed(&e, OpenStep::Account) => Err(OpenError::AccountChanged),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a session for the account as stored now, without a password (the dev-user route
    /// and tests); refused unless the account is active.
    pub async fn issue(&self, username: &Username, agent: bool) -> Result<Issued, SessionError> {
        let login: LoginRecord =
            crate::store::get_record(self.table.as_ref(), &keys::login(username))
                .await?
                .ok_or(SessionError::Rejected)?;
        match self.open(username, agent, login.cred_version).await {
            Ok(issued) => Ok(issued),
            Err(OpenError::AccountChanged) => Err(SessionError::Rejected),
            Err(OpenError::Session(e)) => Err(e),
        }
    }

    /// Whether each of `sids` is a live session of `username`: the session exists and is
    /// unexpired, and the account accepts its credential version. One batch read (the account
    /// and the sessions).
    pub async fn live(&self, username: &Username, sids: &[&str]) -> Result<Vec<bool>, StoreError> {
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let mut read: Vec<Key> = vec![keys::login(username)];
        read.extend(sids.iter().map(|sid| keys::session(username, sid)));
        let mut items = self.table.get_many(&read).await?.into_iter();
        let login: Option<LoginRecord> =
            items.next().flatten().map(|i| from_item(&i)).transpose()?;
        let now = self.clock.epoch();
        items
            .map(|session| session_accepted(login.as_ref(), session, now))
            .collect()
    }

    /// Checks a bearer token against signature, expiry, the stored session and the account's
    /// current credential version and state (the session and `LOGIN` in one batch read).
    pub async fn check(&self, bearer: &str) -> Result<Claims, SessionError> {
        let now = self.clock.epoch();
        let claims = token::verify(&self.keys.secret, bearer, now)
            .or_else(|| {
                let previous = self.keys.previous.as_ref()?;
                token::verify(previous, bearer, now)
            })
            .ok_or(SessionError::Rejected)?;
        let [session, login] = get_array(
            self.table.as_ref(),
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
            Err(SessionError::Rejected)
        }
    }

    /// Issues a fresh token for the same session and pushes the session's expiry forward (only
    /// while the session is still there; a revoked one stays revoked).
    pub async fn extend(&self, claims: &Claims) -> Result<Issued, SessionError> {
        let now = self.clock.epoch();
        let exp = now + self.keys.ttl_secs;
        let key = keys::session(&claims.user, &claims.sid);
        let update = Update::new()
            .set("expires_at", exp)
            .set("ttl", exp + 86_400);
        let live = Cond::item_exists().and(Cond::gt("expires_at", now));
        match self.table.update(&key, update, Some(live)).await {
            Ok(_) => {}
            Err(StoreError::ConditionFailed) => return Err(SessionError::Rejected),
            Err(e) => return Err(e.into()),
        }
        let token = self.sign(&claims.user, claims.agent, &claims.sid, now, exp)?;
        Ok(Issued {
            token,
            sid: claims.sid.clone(),
            expires_at: exp,
        })
    }

    /// Revokes one session.
    pub async fn revoke(&self, username: &Username, sid: &str) -> Result<(), StoreError> {
        self.table
            .delete(&keys::session(username, sid), None)
            .await?;
        Ok(())
    }

    /// Deletes every session item of a user, optionally keeping one (the caller's own).
    /// Clean-up after a credential-version bump, which is what actually revokes them.
    pub async fn revoke_all(
        &self,
        username: &Username,
        keep: Option<&str>,
    ) -> Result<usize, StoreError> {
        let q = Query::pk(keys::user_pk(username)).prefix(keys::SESSION_PREFIX);
        let items = query_all(self.table.as_ref(), q).await?;
        let keep_sk = keep.map(|sid| keys::session(username, sid).sk);
        let mut n = 0;
        for item in items {
            let key = Key::of(&item)?;
            if Some(&key.sk) == keep_sk.as_ref() {
                continue;
            }
            self.table.delete(&key, None).await?;
            n += 1;
        }
        Ok(n)
    }
}
