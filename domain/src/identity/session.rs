//! The `Session` aggregate: one bearer-token login of an account (stream `session-{tokenHash}`).
//!
//! The stream is named by the hash of the token (never the token), so a request that presents a
//! token finds its session by hashing it and loading one stream: no read table on the hot path,
//! and nothing that lags. A session ends when it is closed (log-out, revocation, expiry), when its
//! absolute expiry passes, or when it has been idle for [`IDLE_TIMEOUT_HOURS`].
//!
//! Activity is recorded at most every [`TOUCH_INTERVAL_MINUTES`]: a request in between decides
//! nothing, so a busy client does not write an event per request.

use super::account::ErrorKind;
use crate::kernel::{Aggregate, DomainEvent};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream type of sessions.
pub const STREAM_TYPE: &str = "identity.session";

/// A session unused for this long is no longer valid, whatever its absolute expiry.
pub const IDLE_TIMEOUT_HOURS: i64 = 24 * 7;

/// Activity closer than this to the last recorded activity is not recorded again.
pub const TOUCH_INTERVAL_MINUTES: i64 = 5;

/// The stream of the session whose bearer token hashes to `token_hash`.
pub fn stream_id(token_hash: &str) -> String {
    format!("session-{token_hash}")
}

/// [`IDLE_TIMEOUT_HOURS`] as a duration.
pub fn idle_timeout() -> TimeDelta {
    TimeDelta::hours(IDLE_TIMEOUT_HOURS)
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// A command to a session. `at` is the time the handler read from its clock.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCommand {
    pub at: DateTime<Utc>,
    pub action: SessionAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionAction {
    /// Starts the session. The caller generated the token and its id, and hashed the token.
    Open {
        session_id: Uuid,
        account_id: Uuid,
        token_hash: String,
        expires_at: DateTime<Utc>,
        device_info: Option<String>,
    },
    /// The session was used; recorded only if the last activity is older than five minutes.
    Touch,
    /// Ends the session.
    Close { reason: CloseReason },
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The account logged out.
    LoggedOut,
    /// The account or an admin revoked it.
    Revoked,
    /// Its expiry or idle timeout passed (the scheduler closes it).
    Expired,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What happened to a session. The tag (`session-opened`, …) is the stored event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum SessionEvent {
    SessionOpened {
        session_id: Uuid,
        account_id: Uuid,
        token_hash: String,
        expires_at: DateTime<Utc>,
        device_info: Option<String>,
        at: DateTime<Utc>,
    },
    SessionTouched {
        at: DateTime<Utc>,
    },
    SessionClosed {
        reason: CloseReason,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for SessionEvent {}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a session command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    #[error("the session is already open")]
    AlreadyOpened,
    #[error("a session needs the hash of its token")]
    TokenHashRequired,
    #[error("a session must expire after it opens")]
    ExpiryNotInFuture,
    #[error("there is no such session")]
    NotOpened,
    #[error("the session is closed")]
    Closed,
    #[error("the session has expired")]
    Expired,
    #[error("the session has not expired yet")]
    NotYetExpired,
}

impl SessionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SessionError::AlreadyOpened
            | SessionError::Closed
            | SessionError::Expired
            | SessionError::NotYetExpired => ErrorKind::Conflict,
            SessionError::TokenHashRequired | SessionError::ExpiryNotInFuture => ErrorKind::Invalid,
            SessionError::NotOpened => ErrorKind::NotFound,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// A session as its events left it. Fields are private: only `evolve` writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    opened: bool,
    session_id: Option<Uuid>,
    account_id: Option<Uuid>,
    token_hash: String,
    device_info: Option<String>,
    opened_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    last_activity_at: Option<DateTime<Utc>>,
    closed: Option<CloseReason>,
    closed_at: Option<DateTime<Utc>>,
}

impl Session {
    pub fn is_opened(&self) -> bool {
        self.opened
    }
    pub fn session_id(&self) -> Option<Uuid> {
        self.session_id
    }
    /// Whose session this is (`None` before it is opened).
    pub fn account_id(&self) -> Option<Uuid> {
        self.account_id
    }
    pub fn token_hash(&self) -> &str {
        &self.token_hash
    }
    pub fn device_info(&self) -> Option<&str> {
        self.device_info.as_deref()
    }
    pub fn opened_at(&self) -> Option<DateTime<Utc>> {
        self.opened_at
    }
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }
    pub fn last_activity_at(&self) -> Option<DateTime<Utc>> {
        self.last_activity_at
    }
    /// Why it was closed, if it was.
    pub fn closed(&self) -> Option<CloseReason> {
        self.closed
    }
    pub fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.closed_at
    }

    /// The first instant the session is no longer valid unless used again: the earlier of its
    /// absolute expiry and the end of its idle window. `None` if it is not open.
    pub fn valid_until(&self) -> Option<DateTime<Utc>> {
        if !self.opened || self.closed.is_some() {
            return None;
        }
        let expires_at = self.expires_at?;
        let idle_until = self.last_activity_at? + idle_timeout();
        Some(expires_at.min(idle_until))
    }

    /// Whether a request at `now` may use this session: opened, not closed, before its expiry,
    /// and idle for less than the idle timeout.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.valid_until().is_some_and(|until| now < until)
    }
}

impl Aggregate for Session {
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    type Event = SessionEvent;
    type Command = SessionCommand;
    type Error = SessionError;

    fn decide(&self, command: &SessionCommand) -> Result<Vec<SessionEvent>, SessionError> {
        let at = command.at;
        match &command.action {
            SessionAction::Open { session_id, account_id, token_hash, expires_at, device_info } => {
                if self.opened {
                    return Err(SessionError::AlreadyOpened);
                }
                if token_hash.trim().is_empty() {
                    return Err(SessionError::TokenHashRequired);
                }
                if *expires_at <= at {
                    return Err(SessionError::ExpiryNotInFuture);
                }
                Ok(vec![SessionEvent::SessionOpened {
                    session_id: *session_id,
                    account_id: *account_id,
                    token_hash: token_hash.clone(),
                    expires_at: *expires_at,
                    device_info: device_info.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_owned),
                    at,
                }])
            }
            SessionAction::Touch => {
                self.require_open()?;
                if !self.is_valid_at(at) {
                    return Err(SessionError::Expired);
                }
                let recent =
                    self.last_activity_at.is_some_and(|last| at - last <= TimeDelta::minutes(TOUCH_INTERVAL_MINUTES));
                if recent {
                    return Ok(vec![]);
                }
                Ok(vec![SessionEvent::SessionTouched { at }])
            }
            SessionAction::Close { reason } => {
                self.require_open()?;
                // Closing as expired is what the scheduler does when the session's time is up;
                // activity since it was planned may have pushed the idle timeout out again.
                if *reason == CloseReason::Expired && self.is_valid_at(at) {
                    return Err(SessionError::NotYetExpired);
                }
                Ok(vec![SessionEvent::SessionClosed { reason: *reason, at }])
            }
        }
    }

    fn evolve(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::SessionOpened { session_id, account_id, token_hash, expires_at, device_info, at } => {
                self.opened = true;
                self.session_id = Some(*session_id);
                self.account_id = Some(*account_id);
                self.token_hash = token_hash.clone();
                self.expires_at = Some(*expires_at);
                self.device_info = device_info.clone();
                self.opened_at = Some(*at);
                self.last_activity_at = Some(*at);
            }
            SessionEvent::SessionTouched { at } => {
                // Never move activity backwards if events carry clocks that disagree slightly.
                self.last_activity_at = Some(self.last_activity_at.map_or(*at, |last| last.max(*at)));
            }
            SessionEvent::SessionClosed { reason, at } => {
                self.closed = Some(*reason);
                self.closed_at = Some(*at);
            }
        }
    }
}

impl Session {
    fn require_open(&self) -> Result<(), SessionError> {
        if !self.opened {
            return Err(SessionError::NotOpened);
        }
        if self.closed.is_some() {
            return Err(SessionError::Closed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{encode_event, TestHarness};
    use chrono::TimeZone;

    fn session_id() -> Uuid {
        Uuid::from_u128(0x5E)
    }
    fn account_id() -> Uuid {
        Uuid::from_u128(0xA1)
    }
    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 10, 9, 0, 0).unwrap()
    }
    fn after(delta: TimeDelta) -> DateTime<Utc> {
        t0() + delta
    }
    fn expires() -> DateTime<Utc> {
        after(TimeDelta::days(30))
    }
    fn cmd(at: DateTime<Utc>, action: SessionAction) -> SessionCommand {
        SessionCommand { at, action }
    }
    fn open_action() -> SessionAction {
        SessionAction::Open {
            session_id: session_id(),
            account_id: account_id(),
            token_hash: HASH.into(),
            expires_at: expires(),
            device_info: Some(" Firefox on Linux ".into()),
        }
    }
    fn opened() -> SessionEvent {
        SessionEvent::SessionOpened {
            session_id: session_id(),
            account_id: account_id(),
            token_hash: HASH.into(),
            expires_at: expires(),
            device_info: Some("Firefox on Linux".into()),
            at: t0(),
        }
    }
    fn closed(reason: CloseReason) -> SessionEvent {
        SessionEvent::SessionClosed { reason, at: after(TimeDelta::minutes(1)) }
    }

    #[test]
    fn it_should_open_a_session() {
        TestHarness::<Session>::given([]).when(cmd(t0(), open_action())).then([opened()]);
    }

    #[test]
    fn it_should_not_open_a_session_twice() {
        TestHarness::<Session>::given([opened()])
            .when(cmd(t0(), open_action()))
            .then_error(SessionError::AlreadyOpened);
    }

    #[test]
    fn it_should_not_open_a_session_without_a_token_hash() {
        let action = SessionAction::Open {
            session_id: session_id(),
            account_id: account_id(),
            token_hash: " ".into(),
            expires_at: expires(),
            device_info: None,
        };
        TestHarness::<Session>::given([]).when(cmd(t0(), action)).then_error(SessionError::TokenHashRequired);
    }

    #[test]
    fn it_should_not_open_a_session_that_has_already_expired() {
        let action = SessionAction::Open {
            session_id: session_id(),
            account_id: account_id(),
            token_hash: HASH.into(),
            expires_at: t0(),
            device_info: None,
        };
        TestHarness::<Session>::given([]).when(cmd(t0(), action)).then_error(SessionError::ExpiryNotInFuture);
    }

    #[test]
    fn it_should_touch_a_session_after_five_minutes_of_inactivity() {
        let at = after(TimeDelta::minutes(5) + TimeDelta::seconds(1));
        TestHarness::<Session>::given([opened()])
            .when(cmd(at, SessionAction::Touch))
            .then([SessionEvent::SessionTouched { at }]);
    }

    #[test]
    fn it_should_not_touch_a_session_more_than_once_in_five_minutes() {
        let touched = SessionEvent::SessionTouched { at: after(TimeDelta::minutes(10)) };
        TestHarness::<Session>::given([opened(), touched])
            .when(cmd(after(TimeDelta::minutes(15)), SessionAction::Touch))
            .then([]);
    }

    #[test]
    fn it_should_not_touch_a_session_that_was_never_opened() {
        TestHarness::<Session>::given([]).when(cmd(t0(), SessionAction::Touch)).then_error(SessionError::NotOpened);
    }

    #[test]
    fn it_should_not_touch_a_closed_session() {
        TestHarness::<Session>::given([opened(), closed(CloseReason::LoggedOut)])
            .when(cmd(after(TimeDelta::hours(1)), SessionAction::Touch))
            .then_error(SessionError::Closed);
    }

    #[test]
    fn it_should_not_touch_a_session_past_its_expiry() {
        TestHarness::<Session>::given([opened()])
            .when(cmd(expires(), SessionAction::Touch))
            .then_error(SessionError::Expired);
    }

    #[test]
    fn it_should_not_touch_a_session_that_has_idled_out() {
        TestHarness::<Session>::given([opened()])
            .when(cmd(after(idle_timeout()), SessionAction::Touch))
            .then_error(SessionError::Expired);
    }

    #[test]
    fn it_should_close_a_session_when_its_account_logs_out() {
        let at = after(TimeDelta::minutes(1));
        TestHarness::<Session>::given([opened()])
            .when(cmd(at, SessionAction::Close { reason: CloseReason::LoggedOut }))
            .then([SessionEvent::SessionClosed { reason: CloseReason::LoggedOut, at }]);
    }

    #[test]
    fn it_should_not_close_a_closed_session() {
        TestHarness::<Session>::given([opened(), closed(CloseReason::Revoked)])
            .when(cmd(after(TimeDelta::hours(1)), SessionAction::Close { reason: CloseReason::LoggedOut }))
            .then_error(SessionError::Closed);
    }

    #[test]
    fn it_should_not_close_a_session_that_was_never_opened() {
        TestHarness::<Session>::given([])
            .when(cmd(t0(), SessionAction::Close { reason: CloseReason::Revoked }))
            .then_error(SessionError::NotOpened);
    }

    #[test]
    fn it_should_close_an_idle_session_as_expired() {
        let at = after(idle_timeout());
        TestHarness::<Session>::given([opened()])
            .when(cmd(at, SessionAction::Close { reason: CloseReason::Expired }))
            .then([SessionEvent::SessionClosed { reason: CloseReason::Expired, at }]);
    }

    #[test]
    fn it_should_not_close_a_session_as_expired_while_it_is_still_valid() {
        // Planned for the end of the idle window, but used in between.
        let touched = SessionEvent::SessionTouched { at: after(TimeDelta::hours(100)) };
        TestHarness::<Session>::given([opened(), touched])
            .when(cmd(after(idle_timeout()), SessionAction::Close { reason: CloseReason::Expired }))
            .then_error(SessionError::NotYetExpired);
    }

    #[test]
    fn it_should_be_valid_only_while_open_unexpired_and_not_idle() {
        let session = Session::fold([opened()].iter());
        assert_eq!(session.account_id(), Some(account_id()));
        assert!(session.is_valid_at(t0()));
        assert!(session.is_valid_at(after(idle_timeout() - TimeDelta::seconds(1))));
        assert!(!session.is_valid_at(after(idle_timeout())), "idle for the whole timeout");

        let touched = Session::fold([opened(), SessionEvent::SessionTouched { at: after(TimeDelta::days(6)) }].iter());
        assert!(touched.is_valid_at(after(TimeDelta::days(12))), "activity extends the idle window");
        assert_eq!(touched.valid_until(), Some(after(TimeDelta::days(13))));

        let near_expiry =
            Session::fold([opened(), SessionEvent::SessionTouched { at: after(TimeDelta::days(29)) }].iter());
        assert!(!near_expiry.is_valid_at(expires()), "never past the absolute expiry");
        assert_eq!(near_expiry.valid_until(), Some(expires()));

        let ended = Session::fold([opened(), closed(CloseReason::Revoked)].iter());
        assert!(!ended.is_valid_at(after(TimeDelta::minutes(2))));
        assert_eq!(ended.closed(), Some(CloseReason::Revoked));
        assert!(!Session::default().is_valid_at(t0()));
    }

    #[test]
    fn it_should_store_events_under_kebab_case_types_and_reasons_in_snake_case() {
        let (event_type, payload) = encode_event(&closed(CloseReason::LoggedOut)).unwrap();
        assert_eq!(event_type, "session-closed");
        assert_eq!(payload["reason"], "logged_out");
        assert_eq!(encode_event(&opened()).unwrap().0, "session-opened");
        assert_eq!(stream_id(HASH), format!("session-{HASH}"));
    }

    #[test]
    fn it_should_classify_every_error() {
        use SessionError::*;
        assert_eq!(AlreadyOpened.kind(), ErrorKind::Conflict);
        assert_eq!(TokenHashRequired.kind(), ErrorKind::Invalid);
        assert_eq!(ExpiryNotInFuture.kind(), ErrorKind::Invalid);
        assert_eq!(NotOpened.kind(), ErrorKind::NotFound);
        assert_eq!(Closed.kind(), ErrorKind::Conflict);
        assert_eq!(Expired.kind(), ErrorKind::Conflict);
        assert_eq!(NotYetExpired.kind(), ErrorKind::Conflict);
    }
}
