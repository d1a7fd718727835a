//! Stored sessions: a token is only good while its `SESSION#{sid}` item exists and is unexpired,
//! so `/logoff` really revokes, and password changes or deactivation revoke every session.

use serde::{Deserialize, Serialize};

use super::token::{self, Claims};
use crate::app::App;
use crate::error::ApiError;
use crate::store::{Cond, Query, StoreError, TxOp, Update, from_item, keys, query_all, to_item};

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
}

/// A freshly issued token and its session id.
#[derive(Clone, Debug)]
pub struct Issued {
    pub token: String,
    pub sid: String,
    pub expires_at: i64,
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

/// The put that creates a session — exposed so login can write it in the same transaction as
/// other changes (e.g. a password re-hash).
pub fn new_session_op(app: &App, username: &str, agent: bool) -> Result<(TxOp, Issued), ApiError> {
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

/// Creates a session and returns its token.
pub async fn issue(app: &App, username: &str, agent: bool) -> Result<Issued, ApiError> {
    let (op, issued) = new_session_op(app, username, agent)?;
    let TxOp::Put { item, cond } = op else {
        return Err(ApiError::internal());
    };
    app.main.put(item, cond).await?;
    Ok(issued)
}

/// Checks a bearer token against signature, expiry and the stored session.
pub async fn check(app: &App, bearer: &str) -> Result<Claims, ApiError> {
    let now = app.clock.epoch();
    let claims =
        token::verify(&app.config.jwt_secret, bearer, now).ok_or_else(ApiError::unauthorized)?;
    let item = app
        .main
        .get(&keys::session(&claims.user, &claims.sid))
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let session: Session = from_item(&item)?;
    if session.expires_at <= now {
        return Err(ApiError::unauthorized());
    }
    Ok(claims)
}

/// Issues a fresh token for the same session and pushes the session's expiry forward.
pub async fn extend(app: &App, claims: &Claims) -> Result<Issued, ApiError> {
    let now = app.clock.epoch();
    let exp = now + app.config.jwt_ttl_secs;
    let key = keys::session(&claims.user, &claims.sid);
    let update = Update::new()
        .set("expires_at", exp)
        .set("ttl", exp + 86_400);
    match app
        .main
        .update(&key, update, Some(Cond::item_exists()))
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

/// Revokes every session of a user, optionally keeping one (the caller's own).
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
