//! Who is calling: the bearer token's session (looked up by the token's hash in the session's own
//! stream, so a fresh log-in works at once without waiting for a projection), plus the request's
//! IP, user agent and id. Passwords are hashed with argon2id.

use crate::app::AppState;
use crate::error::ApiError;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::identity::session::{self, Session};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The caller of a request. `account` is set when a valid session token was presented.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: Option<Uuid>,
    /// The scheduler or another internal sender, never an HTTP request.
    pub system: bool,
    pub session_stream: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl Caller {
    pub fn system() -> Self {
        Self {
            account: None,
            system: true,
            session_stream: None,
            ip: None,
            user_agent: Some("scheduler".into()),
            request_id: None,
        }
    }
    pub fn is_system(&self) -> bool {
        self.system
    }
    pub fn require(&self) -> Result<Uuid, ApiError> {
        self.account.ok_or_else(|| ApiError::Unauthenticated("send `Authorization: Bearer <session token>`".into()))
    }
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random session token (256 bits, hex).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(ApiError::internal)
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// Valid sessions seen recently, so a burst of requests does not reload the session each time.
/// Log-out in this process removes the entry at once; other processes see it within the TTL.
#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<String, CachedSession>>,
}

/// The account, the end of the session's validity, and when the entry was cached.
type CachedSession = (Uuid, chrono::DateTime<chrono::Utc>, Instant);

const CACHE_TTL: Duration = Duration::from_secs(5);

impl SessionCache {
    pub fn forget(&self, stream: &str) {
        self.entries.lock().expect("cache").remove(stream);
    }
}

async fn resolve(state: &AppState, token: &str) -> Result<Option<(Uuid, String)>, ApiError> {
    let stream = session::stream_id(&hash_token(token));
    let now = state.clock.now();
    if let Some((account, expires, seen)) = state.sessions.entries.lock().expect("cache").get(&stream).copied() {
        if seen.elapsed() < CACHE_TTL && now < expires {
            return Ok(Some((account, stream)));
        }
    }
    let (session, _) = state.bus.load::<Session>(&stream).await.map_err(ApiError::internal)?;
    if !session.is_valid_at(now) {
        state.sessions.forget(&stream);
        return Ok(None);
    }
    let Some(account) = session.account_id() else { return Ok(None) };
    // Cached until the earlier of expiry and the end of the idle window (the aggregate's own
    // rule), never past what a fresh load would answer.
    let expires = session.valid_until().unwrap_or(now);
    state.sessions.entries.lock().expect("cache").insert(stream.clone(), (account, expires, Instant::now()));
    Ok(Some((account, stream)))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let ip =
            header("x-forwarded-for").and_then(|v| v.split(',').next().map(|s| s.trim().to_owned())).or_else(|| {
                parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string())
            });
        let mut caller = Caller {
            account: None,
            system: false,
            session_stream: None,
            ip,
            user_agent: header("user-agent"),
            request_id: header("x-request-id"),
        };
        if let Some(auth) = header("authorization") {
            let token = auth
                .strip_prefix("Bearer ")
                .ok_or_else(|| ApiError::Unauthenticated("the Authorization header must be `Bearer <token>`".into()))?;
            match resolve(state, token.trim()).await? {
                Some((account, stream)) => {
                    caller.account = Some(account);
                    caller.session_stream = Some(stream);
                }
                None => return Err(ApiError::Unauthenticated("the session is unknown, expired or closed".into())),
            }
        }
        Ok(caller)
    }
}
