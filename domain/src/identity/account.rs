//! The `Account` aggregate: one login identity shared by every app (stream `account-{accountId}`).
//!
//! It holds who the account is (email, name), its credential (an argon2id hash computed by the
//! caller: this module never sees a password, a clock or a random number), whether it is an
//! operator admin, and whether it is suspended. Sessions live in their own streams
//! (`identity::session`); a login is recorded here so the account knows its last login.
//!
//! Email uniqueness spans accounts, so no single account stream can guard it. The command handler
//! appends an [`EmailReservationEvent`] to [`email_reservation_stream`] with "no stream" in the
//! same transaction as the registration: a second account with the same case-folded email makes
//! that append conflict, and nothing of either write is kept. A read table is never consulted,
//! because it may lag.

use crate::kernel::{Aggregate, DomainEvent};
use crate::values::Email;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The stream type of accounts.
pub const STREAM_TYPE: &str = "identity.account";

/// The stream type of email reservations (`email-{casefolded}`).
pub const EMAIL_RESERVATION_STREAM_TYPE: &str = "identity.email";

/// The PHC prefix every stored password hash must carry. Checking it is cheap and keeps a caller
/// that forgot to hash from writing a plain password into the immutable log.
pub const PASSWORD_HASH_PREFIX: &str = "$argon2id$";

/// The stream of one account.
pub fn stream_id(account_id: Uuid) -> String {
    format!("account-{account_id}")
}

/// The reservation stream of one email address, keyed by its case-folded form so that
/// `Ann@Example.com` and `ann@example.com` collide.
pub fn email_reservation_stream(email: &Email) -> String {
    format!("email-{}", email.casefolded())
}

/// How a refused command maps onto the HTTP problem types (403, 404, 409, 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller may not do this (403).
    Forbidden,
    /// The thing the command is about does not exist (404).
    NotFound,
    /// The command does not fit the current state (409).
    Conflict,
    /// A field of the command is not acceptable (422).
    Invalid,
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// A command to an account. `at` is the time the handler read from its clock.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountCommand {
    pub at: DateTime<Utc>,
    pub action: AccountAction,
}

/// What an account command asks for.
#[derive(Clone, PartialEq)]
pub enum AccountAction {
    /// Creates the account. `password_hash` is an argon2id PHC string computed by the caller.
    Register { account_id: Uuid, email: Email, name: String, password_hash: String },
    /// Records a successful login (the caller checked the password and opened `session_id`).
    RecordLogin { session_id: Uuid },
    /// Makes the account an operator admin. `by` is `None` when the operator CLI does it.
    GrantAdmin { by: Option<Uuid> },
    /// Suspends the account: it can no longer log in.
    Suspend { by: Uuid, reason: String },
    /// Lifts a suspension.
    Reactivate { by: Uuid },
}

/// Shown in `Debug` output instead of a password hash, so that logging a command, an event or a
/// state never writes the credential into the logs.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for AccountAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountAction::Register { account_id, email, name, password_hash: _ } => f
                .debug_struct("Register")
                .field("account_id", account_id)
                .field("email", email)
                .field("name", name)
                .field("password_hash", &Redacted)
                .finish(),
            AccountAction::RecordLogin { session_id } => {
                f.debug_struct("RecordLogin").field("session_id", session_id).finish()
            }
            AccountAction::GrantAdmin { by } => f.debug_struct("GrantAdmin").field("by", by).finish(),
            AccountAction::Suspend { by, reason } => {
                f.debug_struct("Suspend").field("by", by).field("reason", reason).finish()
            }
            AccountAction::Reactivate { by } => f.debug_struct("Reactivate").field("by", by).finish(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What happened to an account. The tag (`account-registered`, …) is the stored event type.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum AccountEvent {
    /// The account exists. Carries no credential: read models can take every field.
    AccountRegistered {
        account_id: Uuid,
        email: Email,
        name: String,
        at: DateTime<Utc>,
    },
    /// The account's password hash, in an event of its own so that projectors that build
    /// public read tables can skip it by type.
    PasswordSet {
        account_id: Uuid,
        password_hash: String,
        at: DateTime<Utc>,
    },
    LoggedIn {
        account_id: Uuid,
        session_id: Uuid,
        at: DateTime<Utc>,
    },
    /// `by` is `None` when the operator CLI granted it.
    AdminGranted {
        account_id: Uuid,
        by: Option<Uuid>,
        at: DateTime<Utc>,
    },
    AccountSuspended {
        account_id: Uuid,
        by: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    AccountReactivated {
        account_id: Uuid,
        by: Uuid,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AccountEvent {}

impl fmt::Debug for AccountEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountEvent::AccountRegistered { account_id, email, name, at } => f
                .debug_struct("AccountRegistered")
                .field("account_id", account_id)
                .field("email", email)
                .field("name", name)
                .field("at", at)
                .finish(),
            AccountEvent::PasswordSet { account_id, password_hash: _, at } => f
                .debug_struct("PasswordSet")
                .field("account_id", account_id)
                .field("password_hash", &Redacted)
                .field("at", at)
                .finish(),
            AccountEvent::LoggedIn { account_id, session_id, at } => f
                .debug_struct("LoggedIn")
                .field("account_id", account_id)
                .field("session_id", session_id)
                .field("at", at)
                .finish(),
            AccountEvent::AdminGranted { account_id, by, at } => {
                f.debug_struct("AdminGranted").field("account_id", account_id).field("by", by).field("at", at).finish()
            }
            AccountEvent::AccountSuspended { account_id, by, reason, at } => f
                .debug_struct("AccountSuspended")
                .field("account_id", account_id)
                .field("by", by)
                .field("reason", reason)
                .field("at", at)
                .finish(),
            AccountEvent::AccountReactivated { account_id, by, at } => f
                .debug_struct("AccountReactivated")
                .field("account_id", account_id)
                .field("by", by)
                .field("at", at)
                .finish(),
        }
    }
}

/// The only event of an `email-{casefolded}` stream: the address belongs to `account_id`.
/// The stream's existence is the reservation; the event says whose it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EmailReservationEvent {
    /// `email` is the case-folded form, the key the stream is named by.
    EmailReserved { email: String, account_id: Uuid, at: DateTime<Utc> },
}

impl DomainEvent for EmailReservationEvent {}

impl EmailReservationEvent {
    /// The reservation of `email` for `account_id`.
    pub fn reserve(email: &Email, account_id: Uuid, at: DateTime<Utc>) -> Self {
        EmailReservationEvent::EmailReserved { email: email.casefolded(), account_id, at }
    }
}

/// The reservation (stream id and event) that the events of a decision need, if they register an
/// account. The command handler appends it with "no stream" next to the account's own events.
pub fn email_reservation(events: &[AccountEvent]) -> Option<(String, EmailReservationEvent)> {
    events.iter().find_map(|event| match event {
        AccountEvent::AccountRegistered { account_id, email, at, .. } => {
            Some((email_reservation_stream(email), EmailReservationEvent::reserve(email, *account_id, *at)))
        }
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why an account command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is already registered")]
    AlreadyRegistered,
    /// Not returned by `decide`: the handler returns it when the email reservation stream already
    /// exists (its "no stream" append conflicted).
    #[error("the email address {email} is already taken")]
    EmailTaken { email: String },
    #[error("a name is required")]
    NameRequired,
    #[error("the password must be given as an argon2id hash")]
    PasswordNotHashed,
    #[error("the account is not registered")]
    NotRegistered,
    #[error("the account is suspended")]
    Suspended,
    #[error("the account is already an admin")]
    AlreadyAdmin,
    #[error("the account is already suspended")]
    AlreadySuspended,
    #[error("a reason for the suspension is required")]
    ReasonRequired,
    #[error("the account is not suspended")]
    NotSuspended,
    #[error("an account cannot lift a suspension that someone else imposed")]
    CannotLiftOthersSuspension,
}

impl AccountError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AccountError::AlreadyRegistered
            | AccountError::EmailTaken { .. }
            | AccountError::AlreadyAdmin
            | AccountError::AlreadySuspended
            | AccountError::NotSuspended => ErrorKind::Conflict,
            AccountError::NameRequired | AccountError::PasswordNotHashed | AccountError::ReasonRequired => {
                ErrorKind::Invalid
            }
            AccountError::NotRegistered => ErrorKind::NotFound,
            AccountError::Suspended | AccountError::CannotLiftOthersSuspension => ErrorKind::Forbidden,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// An account as its events left it. Fields are private: only `evolve` writes them.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    registered: bool,
    account_id: Option<Uuid>,
    email: Option<Email>,
    name: String,
    password_hash: Option<String>,
    is_admin: bool,
    suspended: bool,
    /// Who imposed the current suspension: the account itself may lift only its own.
    suspended_by: Option<Uuid>,
    registered_at: Option<DateTime<Utc>>,
    last_login_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("registered", &self.registered)
            .field("account_id", &self.account_id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("password_hash", &self.password_hash.as_ref().map(|_| Redacted))
            .field("is_admin", &self.is_admin)
            .field("suspended", &self.suspended)
            .field("suspended_by", &self.suspended_by)
            .field("registered_at", &self.registered_at)
            .field("last_login_at", &self.last_login_at)
            .finish()
    }
}

impl Account {
    pub fn is_registered(&self) -> bool {
        self.registered
    }
    pub fn account_id(&self) -> Option<Uuid> {
        self.account_id
    }
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The argon2id hash to verify a login against.
    pub fn password_hash(&self) -> Option<&str> {
        self.password_hash.as_deref()
    }
    pub fn is_admin(&self) -> bool {
        self.is_admin
    }
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }
    /// Registered and not suspended: may log in and act.
    pub fn is_active(&self) -> bool {
        self.registered && !self.suspended
    }
    pub fn registered_at(&self) -> Option<DateTime<Utc>> {
        self.registered_at
    }
    pub fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.last_login_at
    }

    /// The account id of a registered account.
    fn registered_id(&self) -> Result<Uuid, AccountError> {
        match (self.registered, self.account_id) {
            (true, Some(id)) => Ok(id),
            _ => Err(AccountError::NotRegistered),
        }
    }
}

impl Aggregate for Account {
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = AccountError;

    fn decide(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        let at = command.at;
        match &command.action {
            AccountAction::Register { account_id, email, name, password_hash } => {
                if self.registered {
                    return Err(AccountError::AlreadyRegistered);
                }
                let name = name.trim();
                if name.is_empty() {
                    return Err(AccountError::NameRequired);
                }
                if !password_hash.starts_with(PASSWORD_HASH_PREFIX) {
                    return Err(AccountError::PasswordNotHashed);
                }
                Ok(vec![
                    AccountEvent::AccountRegistered {
                        account_id: *account_id,
                        email: email.clone(),
                        name: name.to_owned(),
                        at,
                    },
                    AccountEvent::PasswordSet { account_id: *account_id, password_hash: password_hash.clone(), at },
                ])
            }
            AccountAction::RecordLogin { session_id } => {
                let account_id = self.registered_id()?;
                if self.suspended {
                    return Err(AccountError::Suspended);
                }
                Ok(vec![AccountEvent::LoggedIn { account_id, session_id: *session_id, at }])
            }
            AccountAction::GrantAdmin { by } => {
                let account_id = self.registered_id()?;
                if self.is_admin {
                    return Err(AccountError::AlreadyAdmin);
                }
                Ok(vec![AccountEvent::AdminGranted { account_id, by: *by, at }])
            }
            AccountAction::Suspend { by, reason } => {
                let account_id = self.registered_id()?;
                if self.suspended {
                    return Err(AccountError::AlreadySuspended);
                }
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(AccountError::ReasonRequired);
                }
                Ok(vec![AccountEvent::AccountSuspended { account_id, by: *by, reason: reason.to_owned(), at }])
            }
            AccountAction::Reactivate { by } => {
                let account_id = self.registered_id()?;
                if !self.suspended {
                    return Err(AccountError::NotSuspended);
                }
                // Who else may reactivate (an admin) is the gateway's call; what the account
                // alone can tell is that a suspension imposed by someone else is not its own to lift.
                if *by == account_id && self.suspended_by != Some(account_id) {
                    return Err(AccountError::CannotLiftOthersSuspension);
                }
                Ok(vec![AccountEvent::AccountReactivated { account_id, by: *by, at }])
            }
        }
    }

    fn evolve(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::AccountRegistered { account_id, email, name, at } => {
                self.registered = true;
                self.account_id = Some(*account_id);
                self.email = Some(email.clone());
                self.name = name.clone();
                self.registered_at = Some(*at);
            }
            AccountEvent::PasswordSet { password_hash, .. } => {
                self.password_hash = Some(password_hash.clone());
            }
            AccountEvent::LoggedIn { at, .. } => {
                self.last_login_at = Some(*at);
            }
            AccountEvent::AdminGranted { .. } => {
                self.is_admin = true;
            }
            AccountEvent::AccountSuspended { by, .. } => {
                self.suspended = true;
                self.suspended_by = Some(*by);
            }
            AccountEvent::AccountReactivated { .. } => {
                self.suspended = false;
                self.suspended_by = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{decode_event, encode_event, TestHarness};
    use chrono::TimeZone;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    fn id() -> Uuid {
        Uuid::from_u128(0xA1)
    }
    fn admin() -> Uuid {
        Uuid::from_u128(0xAD)
    }
    fn session() -> Uuid {
        Uuid::from_u128(0x5E)
    }
    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 10, 9, minute, 0).unwrap()
    }
    fn email() -> Email {
        Email::parse("Ann@Example.com").unwrap()
    }
    fn cmd(action: AccountAction) -> AccountCommand {
        AccountCommand { at: t(30), action }
    }
    fn register() -> AccountAction {
        AccountAction::Register {
            account_id: id(),
            email: email(),
            name: "  Ann Lee ".into(),
            password_hash: HASH.into(),
        }
    }
    fn registered() -> Vec<AccountEvent> {
        vec![
            AccountEvent::AccountRegistered { account_id: id(), email: email(), name: "Ann Lee".into(), at: t(0) },
            AccountEvent::PasswordSet { account_id: id(), password_hash: HASH.into(), at: t(0) },
        ]
    }
    fn suspended_by(by: Uuid) -> Vec<AccountEvent> {
        let mut events = registered();
        events.push(AccountEvent::AccountSuspended { account_id: id(), by, reason: "spam".into(), at: t(1) });
        events
    }

    #[test]
    fn it_should_register_an_account_with_its_password_hash_in_a_separate_event() {
        TestHarness::<Account>::given([]).when(cmd(register())).then([
            AccountEvent::AccountRegistered { account_id: id(), email: email(), name: "Ann Lee".into(), at: t(30) },
            AccountEvent::PasswordSet { account_id: id(), password_hash: HASH.into(), at: t(30) },
        ]);
    }

    #[test]
    fn it_should_not_register_an_account_twice() {
        TestHarness::<Account>::given(registered()).when(cmd(register())).then_error(AccountError::AlreadyRegistered);
    }

    #[test]
    fn it_should_not_register_an_account_without_a_name() {
        let action = AccountAction::Register {
            account_id: id(),
            email: email(),
            name: "   ".into(),
            password_hash: HASH.into(),
        };
        TestHarness::<Account>::given([]).when(cmd(action)).then_error(AccountError::NameRequired);
    }

    #[test]
    fn it_should_not_register_an_account_with_an_unhashed_password() {
        let action = AccountAction::Register {
            account_id: id(),
            email: email(),
            name: "Ann".into(),
            password_hash: "hunter2".into(),
        };
        TestHarness::<Account>::given([]).when(cmd(action)).then_error(AccountError::PasswordNotHashed);
    }

    #[test]
    fn it_should_record_a_login() {
        TestHarness::<Account>::given(registered())
            .when(cmd(AccountAction::RecordLogin { session_id: session() }))
            .then([AccountEvent::LoggedIn { account_id: id(), session_id: session(), at: t(30) }]);
    }

    #[test]
    fn it_should_not_record_a_login_for_an_unregistered_account() {
        TestHarness::<Account>::given([])
            .when(cmd(AccountAction::RecordLogin { session_id: session() }))
            .then_error(AccountError::NotRegistered);
    }

    #[test]
    fn it_should_not_record_a_login_for_a_suspended_account() {
        TestHarness::<Account>::given(suspended_by(admin()))
            .when(cmd(AccountAction::RecordLogin { session_id: session() }))
            .then_error(AccountError::Suspended);
    }

    #[test]
    fn it_should_grant_admin_from_the_operator_cli() {
        TestHarness::<Account>::given(registered())
            .when(cmd(AccountAction::GrantAdmin { by: None }))
            .then([AccountEvent::AdminGranted { account_id: id(), by: None, at: t(30) }]);
    }

    #[test]
    fn it_should_not_grant_admin_twice() {
        let mut events = registered();
        events.push(AccountEvent::AdminGranted { account_id: id(), by: Some(admin()), at: t(1) });
        TestHarness::<Account>::given(events)
            .when(cmd(AccountAction::GrantAdmin { by: None }))
            .then_error(AccountError::AlreadyAdmin);
    }

    #[test]
    fn it_should_not_grant_admin_to_an_unregistered_account() {
        TestHarness::<Account>::given([])
            .when(cmd(AccountAction::GrantAdmin { by: None }))
            .then_error(AccountError::NotRegistered);
    }

    #[test]
    fn it_should_suspend_an_active_account() {
        TestHarness::<Account>::given(registered())
            .when(cmd(AccountAction::Suspend { by: admin(), reason: " spam ".into() }))
            .then([AccountEvent::AccountSuspended { account_id: id(), by: admin(), reason: "spam".into(), at: t(30) }]);
    }

    #[test]
    fn it_should_not_suspend_an_account_twice() {
        TestHarness::<Account>::given(suspended_by(admin()))
            .when(cmd(AccountAction::Suspend { by: admin(), reason: "again".into() }))
            .then_error(AccountError::AlreadySuspended);
    }

    #[test]
    fn it_should_not_suspend_an_account_without_a_reason() {
        TestHarness::<Account>::given(registered())
            .when(cmd(AccountAction::Suspend { by: admin(), reason: "  ".into() }))
            .then_error(AccountError::ReasonRequired);
    }

    #[test]
    fn it_should_not_suspend_an_unregistered_account() {
        TestHarness::<Account>::given([])
            .when(cmd(AccountAction::Suspend { by: admin(), reason: "spam".into() }))
            .then_error(AccountError::NotRegistered);
    }

    #[test]
    fn it_should_reactivate_a_suspended_account() {
        TestHarness::<Account>::given(suspended_by(admin()))
            .when(cmd(AccountAction::Reactivate { by: admin() }))
            .then([AccountEvent::AccountReactivated { account_id: id(), by: admin(), at: t(30) }]);
    }

    #[test]
    fn it_should_not_reactivate_an_active_account() {
        TestHarness::<Account>::given(registered())
            .when(cmd(AccountAction::Reactivate { by: admin() }))
            .then_error(AccountError::NotSuspended);
    }

    #[test]
    fn it_should_not_let_an_account_lift_a_suspension_imposed_by_someone_else() {
        TestHarness::<Account>::given(suspended_by(admin()))
            .when(cmd(AccountAction::Reactivate { by: id() }))
            .then_error(AccountError::CannotLiftOthersSuspension);
    }

    #[test]
    fn it_should_let_an_account_lift_its_own_suspension() {
        TestHarness::<Account>::given(suspended_by(id()))
            .when(cmd(AccountAction::Reactivate { by: id() }))
            .then([AccountEvent::AccountReactivated { account_id: id(), by: id(), at: t(30) }]);
    }

    #[test]
    fn it_should_fold_the_credential_the_admin_flag_and_the_last_login() {
        let mut events = registered();
        events.push(AccountEvent::AdminGranted { account_id: id(), by: None, at: t(1) });
        events.push(AccountEvent::LoggedIn { account_id: id(), session_id: session(), at: t(2) });
        let account = Account::fold(events.iter());
        assert_eq!(account.password_hash(), Some(HASH));
        assert_eq!(account.account_id(), Some(id()));
        assert_eq!(account.email(), Some(&email()));
        assert_eq!(account.name(), "Ann Lee");
        assert!(account.is_admin());
        assert!(account.is_active());
        assert_eq!(account.last_login_at(), Some(t(2)));
        assert!(!Account::fold(suspended_by(admin()).iter()).is_active());
        assert!(!Account::default().is_active());
    }

    #[test]
    fn it_should_keep_the_password_hash_out_of_debug_output() {
        let events = registered();
        let shown = format!("{:?} {:?} {:?}", cmd(register()), events, Account::fold(events.iter()));
        assert!(!shown.contains("argon2id"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn it_should_reserve_the_casefolded_email_of_a_registration() {
        let events = Account::default().decide(&cmd(register())).unwrap();
        let (stream, event) = email_reservation(&events).expect("a registration reserves its email");
        assert_eq!(stream, "email-ann@example.com");
        assert_eq!(
            event,
            EmailReservationEvent::EmailReserved { email: "ann@example.com".into(), account_id: id(), at: t(30) }
        );
        let (event_type, payload) = encode_event(&event).unwrap();
        assert_eq!(event_type, "email-reserved");
        assert_eq!(decode_event::<EmailReservationEvent>(&event_type, &payload).unwrap(), event);
        assert!(email_reservation(&[AccountEvent::LoggedIn { account_id: id(), session_id: session(), at: t(1) }])
            .is_none());
        assert_eq!(stream_id(id()), format!("account-{}", id()));
    }

    #[test]
    fn it_should_store_events_under_kebab_case_types() {
        let (event_type, payload) = encode_event(&registered()[1]).unwrap();
        assert_eq!(event_type, "password-set");
        assert_eq!(payload["password_hash"], HASH);
        let (event_type, _) = encode_event(&registered()[0]).unwrap();
        assert_eq!(event_type, "account-registered");
    }

    #[test]
    fn it_should_classify_every_error() {
        use AccountError::*;
        assert_eq!(AlreadyRegistered.kind(), ErrorKind::Conflict);
        assert_eq!(EmailTaken { email: "a@b.c".into() }.kind(), ErrorKind::Conflict);
        assert_eq!(NameRequired.kind(), ErrorKind::Invalid);
        assert_eq!(PasswordNotHashed.kind(), ErrorKind::Invalid);
        assert_eq!(NotRegistered.kind(), ErrorKind::NotFound);
        assert_eq!(Suspended.kind(), ErrorKind::Forbidden);
        assert_eq!(AlreadyAdmin.kind(), ErrorKind::Conflict);
        assert_eq!(AlreadySuspended.kind(), ErrorKind::Conflict);
        assert_eq!(ReasonRequired.kind(), ErrorKind::Invalid);
        assert_eq!(NotSuspended.kind(), ErrorKind::Conflict);
        assert_eq!(CannotLiftOthersSuspension.kind(), ErrorKind::Forbidden);
    }
}
