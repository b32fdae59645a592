//! The LMS `LmsUser` aggregate: one account's profile and flags on the learning platform (stream
//! `lms-user-{accountId}`, stream type `lms.user`, so the user id is the identity account id).
//!
//! A user is created as a student by `ensure-current-user` on their first sign-in; later sign-ins
//! record only the profile fields that changed (or nothing). Admins grant the admin flag and, when
//! an instructor application is approved, the instructor flag.
//!
//! # The role migration
//!
//! The seed's user table moved from `role: "admin" | "instructor" | "student"` to two booleans,
//! `isInstructor` and `isAdmin`. Stored `user-ensured` events of schema version 1 carry `role`;
//! version 2 (the current one) carries the flags. [`upcast_user_ensured_v1`] turns a v1 payload
//! into a v2 one; the engine registers it for (`user-ensured`, 1).
//!
//! # Profile patches
//!
//! `first_name`, `last_name` and `email` are always sent and replace the stored values when they
//! differ. `image`, `phone` and `external_id` are patches: `None` leaves a field as it is, an empty
//! text clears it. `UserProfileUpdated` names only the fields that change (`None` = unchanged,
//! `Some("")` = cleared), and a sign-in that changes nothing decides no events.

use super::{Actor, ErrorKind};
use crate::kernel::{Aggregate, DomainEvent};
use crate::values::Email;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The stream type of LMS users.
pub const STREAM_TYPE: &str = "lms.user";

/// The stored type of the event that creates a user.
pub const USER_ENSURED: &str = "user-ensured";

/// The current schema version of `user-ensured` (v1 carried the old `role` enum).
pub const USER_ENSURED_VERSION: i32 = 2;

/// The stream of the LMS user of `account_id`.
pub fn stream_id(account_id: Uuid) -> String {
    format!("lms-user-{account_id}")
}

// ---------------------------------------------------------------------------------------------
// The migration
// ---------------------------------------------------------------------------------------------

/// Upcasts a stored `user-ensured` payload of schema version 1 to version 2.
///
/// `role: "admin"` becomes `isAdmin: true, isInstructor: false`, `"instructor"` becomes
/// `isInstructor: true, isAdmin: false`, `"student"` (and any other or missing role) becomes both
/// `false`. `role` is removed; every other field is kept as it is. A payload that is not an object
/// is returned unchanged (decoding will then report it).
pub fn upcast_user_ensured_v1(payload: Value) -> Value {
    let Value::Object(mut map) = payload else { return payload };
    let role = map.remove("role");
    let role = role.as_ref().and_then(Value::as_str);
    match role {
        Some(role) => {
            map.insert("isAdmin".into(), Value::Bool(role == "admin"));
            map.insert("isInstructor".into(), Value::Bool(role == "instructor"));
        }
        None => {
            map.entry("isAdmin").or_insert(Value::Bool(false));
            map.entry("isInstructor").or_insert(Value::Bool(false));
        }
    }
    Value::Object(map)
}

// ---------------------------------------------------------------------------------------------
// Commands (the payloads double as HTTP bodies)
// ---------------------------------------------------------------------------------------------

/// A command to an LMS user. `actor` comes from the session (or the operator CLI / a reactor),
/// never from the body; `at` is the handler's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct LmsUserCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: LmsUserAction,
}

impl LmsUserCommand {
    /// The user the command is about: the actor when signing in, the named user otherwise.
    pub fn user_id(&self) -> Uuid {
        match &self.action {
            LmsUserAction::EnsureCurrentUser(_) => self.actor.id,
            LmsUserAction::GrantAdmin(p) => p.user_id,
            LmsUserAction::GrantInstructor(p) => p.user_id,
        }
    }

    /// The stream the command goes to.
    pub fn stream_id(&self) -> String {
        stream_id(self.user_id())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum LmsUserAction {
    EnsureCurrentUser(EnsureCurrentUser),
    GrantAdmin(GrantAdmin),
    GrantInstructor(GrantInstructor),
}

impl LmsUserAction {
    /// A stable kebab-case name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            LmsUserAction::EnsureCurrentUser(_) => "ensure-current-user",
            LmsUserAction::GrantAdmin(_) => "grant-admin",
            LmsUserAction::GrantInstructor(_) => "grant-instructor",
        }
    }
}

/// `ensure-current-user`: the signed-in actor's profile, sent on every sign-in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnsureCurrentUser {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// The identity provider's user id (Clerk in the seed).
    #[serde(default)]
    pub external_id: Option<String>,
}

/// `grant-admin` (admins; the operator CLI as the system actor appoints the first admin).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantAdmin {
    pub user_id: Uuid,
}

/// `grant-instructor` (admins, or the system reacting to an approved application).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantInstructor {
    pub user_id: Uuid,
    /// The approved application the flag comes from.
    pub application_id: Uuid,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What happened to an LMS user. The tag (`user-ensured`, …) is the stored event type.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LmsUserEvent {
    /// Schema version 2: the flags replaced v1's `role` (see [`upcast_user_ensured_v1`]).
    #[serde(rename_all = "camelCase")]
    UserEnsured {
        user_id: Uuid,
        first_name: String,
        last_name: String,
        email: String,
        image: Option<String>,
        phone: Option<String>,
        external_id: Option<String>,
        is_instructor: bool,
        is_admin: bool,
        at: DateTime<Utc>,
    },
    /// Only the fields that changed: `None` = unchanged, `Some("")` = cleared.
    #[serde(rename_all = "camelCase")]
    UserProfileUpdated {
        user_id: Uuid,
        first_name: Option<String>,
        last_name: Option<String>,
        email: Option<String>,
        image: Option<String>,
        phone: Option<String>,
        external_id: Option<String>,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    AdminGranted { user_id: Uuid, granted_by: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    InstructorGranted { user_id: Uuid, application_id: Uuid, granted_by: Uuid, at: DateTime<Utc> },
}

impl DomainEvent for LmsUserEvent {
    fn schema_version(event_type: &str) -> i32 {
        match event_type {
            USER_ENSURED => USER_ENSURED_VERSION,
            _ => 1,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why an LMS user command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LmsUserError {
    #[error("only a signed-in user can ensure their own profile")]
    NotAUser,
    #[error("invalid email: {0}")]
    InvalidEmail(String),
    #[error("only an admin may grant the admin flag")]
    OnlyAdminsGrantAdmin,
    #[error("only an admin may grant the instructor flag")]
    OnlyAdminsGrantInstructor,
    #[error("the user has not signed in to the platform yet")]
    UserNotFound,
    #[error("the user is already an admin")]
    AlreadyAdmin,
    #[error("the user is already an instructor")]
    AlreadyInstructor,
}

impl LmsUserError {
    pub fn kind(&self) -> ErrorKind {
        use LmsUserError::*;
        match self {
            NotAUser | OnlyAdminsGrantAdmin | OnlyAdminsGrantInstructor => ErrorKind::Forbidden,
            UserNotFound => ErrorKind::NotFound,
            AlreadyAdmin | AlreadyInstructor => ErrorKind::Conflict,
            InvalidEmail(_) => ErrorKind::Invalid,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// An LMS user as its events left it. Fields are private: only `evolve` writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LmsUser {
    exists: bool,
    user_id: Option<Uuid>,
    first_name: String,
    last_name: String,
    email: String,
    image: Option<String>,
    phone: Option<String>,
    external_id: Option<String>,
    is_instructor: bool,
    is_admin: bool,
    /// The application the instructor flag was granted for.
    instructor_application_id: Option<Uuid>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl LmsUser {
    pub fn exists(&self) -> bool {
        self.exists
    }
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    pub fn first_name(&self) -> &str {
        &self.first_name
    }
    pub fn last_name(&self) -> &str {
        &self.last_name
    }
    /// `first_name last_name`, trimmed (the name reviews and discussions denormalise).
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_owned()
    }
    pub fn email(&self) -> &str {
        &self.email
    }
    pub fn image(&self) -> Option<&str> {
        self.image.as_deref()
    }
    pub fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }
    pub fn external_id(&self) -> Option<&str> {
        self.external_id.as_deref()
    }
    pub fn is_instructor(&self) -> bool {
        self.is_instructor
    }
    pub fn is_admin(&self) -> bool {
        self.is_admin
    }
    pub fn instructor_application_id(&self) -> Option<Uuid> {
        self.instructor_application_id
    }
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.updated_at
    }

    /// The user the command names, if it exists (and is this stream's).
    fn target(&self, user_id: Uuid) -> Result<(), LmsUserError> {
        if self.exists && self.user_id == Some(user_id) {
            Ok(())
        } else {
            Err(LmsUserError::UserNotFound)
        }
    }

    fn ensure(
        &self,
        actor: &Actor,
        p: &EnsureCurrentUser,
        at: DateTime<Utc>,
    ) -> Result<Vec<LmsUserEvent>, LmsUserError> {
        if actor.system || actor.id.is_nil() {
            return Err(LmsUserError::NotAUser);
        }
        let email = Email::parse(&p.email).map_err(LmsUserError::InvalidEmail)?.as_str().to_owned();
        let first_name = p.first_name.trim().to_owned();
        let last_name = p.last_name.trim().to_owned();
        if !self.exists {
            return Ok(vec![LmsUserEvent::UserEnsured {
                user_id: actor.id,
                first_name,
                last_name,
                email,
                image: non_blank(&p.image),
                phone: non_blank(&p.phone),
                external_id: non_blank(&p.external_id),
                is_instructor: false,
                is_admin: false,
                at,
            }]);
        }
        let first_name = (first_name != self.first_name).then_some(first_name);
        let last_name = (last_name != self.last_name).then_some(last_name);
        let email = (email != self.email).then_some(email);
        let image = text_change(&p.image, &self.image);
        let phone = text_change(&p.phone, &self.phone);
        let external_id = text_change(&p.external_id, &self.external_id);
        if first_name.is_none()
            && last_name.is_none()
            && email.is_none()
            && image.is_none()
            && phone.is_none()
            && external_id.is_none()
        {
            return Ok(vec![]);
        }
        Ok(vec![LmsUserEvent::UserProfileUpdated {
            user_id: actor.id,
            first_name,
            last_name,
            email,
            image,
            phone,
            external_id,
            at,
        }])
    }
}

/// A trimmed optional text, `None` when absent or blank.
fn non_blank(text: &Option<String>) -> Option<String> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned)
}

/// The change a text patch makes: `None` if it leaves the field as it is, else the trimmed text
/// (empty to clear).
fn text_change(patch: &Option<String>, current: &Option<String>) -> Option<String> {
    let text = patch.as_deref()?.trim();
    let target = (!text.is_empty()).then_some(text);
    (target != current.as_deref()).then(|| text.to_owned())
}

/// Applies a text change recorded by [`text_change`].
fn apply_text(field: &mut Option<String>, change: &Option<String>) {
    if let Some(text) = change {
        *field = (!text.is_empty()).then(|| text.clone());
    }
}

impl Aggregate for LmsUser {
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    type Event = LmsUserEvent;
    type Command = LmsUserCommand;
    type Error = LmsUserError;

    fn decide(&self, command: &LmsUserCommand) -> Result<Vec<LmsUserEvent>, LmsUserError> {
        let LmsUserCommand { actor, at, action } = command;
        let at = *at;
        match action {
            LmsUserAction::EnsureCurrentUser(p) => self.ensure(actor, p, at),
            LmsUserAction::GrantAdmin(p) => {
                if !(actor.is_admin || actor.system) {
                    return Err(LmsUserError::OnlyAdminsGrantAdmin);
                }
                self.target(p.user_id)?;
                if self.is_admin {
                    return Err(LmsUserError::AlreadyAdmin);
                }
                Ok(vec![LmsUserEvent::AdminGranted { user_id: p.user_id, granted_by: actor.id, at }])
            }
            LmsUserAction::GrantInstructor(p) => {
                if !(actor.is_admin || actor.system) {
                    return Err(LmsUserError::OnlyAdminsGrantInstructor);
                }
                self.target(p.user_id)?;
                if self.is_instructor {
                    // A redelivered grant for the same application changes nothing.
                    if self.instructor_application_id == Some(p.application_id) {
                        return Ok(vec![]);
                    }
                    return Err(LmsUserError::AlreadyInstructor);
                }
                Ok(vec![LmsUserEvent::InstructorGranted {
                    user_id: p.user_id,
                    application_id: p.application_id,
                    granted_by: actor.id,
                    at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &LmsUserEvent) {
        match event {
            LmsUserEvent::UserEnsured {
                user_id,
                first_name,
                last_name,
                email,
                image,
                phone,
                external_id,
                is_instructor,
                is_admin,
                at,
            } => {
                self.exists = true;
                self.user_id = Some(*user_id);
                self.first_name = first_name.clone();
                self.last_name = last_name.clone();
                self.email = email.clone();
                self.image = image.clone();
                self.phone = phone.clone();
                self.external_id = external_id.clone();
                self.is_instructor = *is_instructor;
                self.is_admin = *is_admin;
                self.created_at = Some(*at);
                self.updated_at = Some(*at);
            }
            LmsUserEvent::UserProfileUpdated {
                first_name, last_name, email, image, phone, external_id, at, ..
            } => {
                if let Some(first_name) = first_name {
                    self.first_name = first_name.clone();
                }
                if let Some(last_name) = last_name {
                    self.last_name = last_name.clone();
                }
                if let Some(email) = email {
                    self.email = email.clone();
                }
                apply_text(&mut self.image, image);
                apply_text(&mut self.phone, phone);
                apply_text(&mut self.external_id, external_id);
                self.updated_at = Some(*at);
            }
            LmsUserEvent::AdminGranted { at, .. } => {
                self.is_admin = true;
                self.updated_at = Some(*at);
            }
            LmsUserEvent::InstructorGranted { application_id, at, .. } => {
                self.is_instructor = true;
                self.instructor_application_id = Some(*application_id);
                self.updated_at = Some(*at);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{decode_event, encode_event, TestHarness};
    use chrono::TimeZone;
    use serde_json::json;

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 9, minute, 0).unwrap()
    }
    fn ann_id() -> Uuid {
        Uuid::from_u128(0xA11)
    }
    fn admin_id() -> Uuid {
        Uuid::from_u128(0xAD)
    }
    fn application_id() -> Uuid {
        Uuid::from_u128(0xA0)
    }
    fn student(id: Uuid) -> Actor {
        Actor { id, is_instructor: false, is_admin: false, system: false }
    }
    fn admin() -> Actor {
        Actor { id: admin_id(), is_instructor: false, is_admin: true, system: false }
    }
    fn cmd(actor: Actor, action: LmsUserAction) -> LmsUserCommand {
        LmsUserCommand { actor, at: t(30), action }
    }
    fn sign_in() -> EnsureCurrentUser {
        EnsureCurrentUser {
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            email: "ann@example.com".into(),
            image: Some("https://img.example.com/ann.png".into()),
            phone: None,
            external_id: Some("user_2abc".into()),
        }
    }
    fn ensured() -> LmsUserEvent {
        ensured_at(t(1))
    }
    fn ensured_at(at: DateTime<Utc>) -> LmsUserEvent {
        LmsUserEvent::UserEnsured {
            user_id: ann_id(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            email: "ann@example.com".into(),
            image: Some("https://img.example.com/ann.png".into()),
            phone: None,
            external_id: Some("user_2abc".into()),
            is_instructor: false,
            is_admin: false,
            at,
        }
    }
    fn grant_admin(user_id: Uuid) -> LmsUserAction {
        LmsUserAction::GrantAdmin(GrantAdmin { user_id })
    }
    fn grant_instructor(user_id: Uuid) -> LmsUserAction {
        LmsUserAction::GrantInstructor(GrantInstructor { user_id, application_id: application_id() })
    }

    // ensure-current-user

    #[test]
    fn it_should_create_a_student_on_first_sign_in() {
        TestHarness::<LmsUser>::given([])
            .when(cmd(student(ann_id()), LmsUserAction::EnsureCurrentUser(sign_in())))
            .then([ensured_at(t(30))]);
        let user = LmsUser::fold([ensured()].iter());
        assert!(user.exists());
        assert!(!user.is_instructor());
        assert!(!user.is_admin());
        assert_eq!(user.full_name(), "Ann Lee");
    }

    #[test]
    fn it_should_record_nothing_when_a_later_sign_in_changes_nothing() {
        TestHarness::<LmsUser>::given([ensured()])
            .when(cmd(student(ann_id()), LmsUserAction::EnsureCurrentUser(sign_in())))
            .then([]);
    }

    #[test]
    fn it_should_record_only_the_profile_fields_a_later_sign_in_changes() {
        let changed = EnsureCurrentUser {
            last_name: "Park".into(),
            phone: Some(" +1 555 0100 ".into()),
            image: Some("".into()),
            external_id: None,
            ..sign_in()
        };
        let updated = LmsUserEvent::UserProfileUpdated {
            user_id: ann_id(),
            first_name: None,
            last_name: Some("Park".into()),
            email: None,
            image: Some(String::new()),
            phone: Some("+1 555 0100".into()),
            external_id: None,
            at: t(30),
        };
        TestHarness::<LmsUser>::given([ensured()])
            .when(cmd(student(ann_id()), LmsUserAction::EnsureCurrentUser(changed)))
            .then([updated.clone()]);
        let user = LmsUser::fold([ensured(), updated].iter());
        assert_eq!(user.last_name(), "Park");
        assert_eq!(user.image(), None);
        assert_eq!(user.phone(), Some("+1 555 0100"));
        assert_eq!(user.external_id(), Some("user_2abc"));
    }

    #[test]
    fn it_should_refuse_an_invalid_email_on_sign_in() {
        let bad = EnsureCurrentUser { email: "not-an-email".into(), ..sign_in() };
        let result = TestHarness::<LmsUser>::given([])
            .when(cmd(student(ann_id()), LmsUserAction::EnsureCurrentUser(bad)))
            .events();
        assert!(matches!(result, Err(LmsUserError::InvalidEmail(_))));
    }

    #[test]
    fn it_should_not_let_the_system_sign_in() {
        TestHarness::<LmsUser>::given([])
            .when(cmd(Actor::system(), LmsUserAction::EnsureCurrentUser(sign_in())))
            .then_error(LmsUserError::NotAUser);
    }

    // grant-admin

    #[test]
    fn it_should_let_an_admin_grant_the_admin_flag() {
        let granted = LmsUserEvent::AdminGranted { user_id: ann_id(), granted_by: admin_id(), at: t(30) };
        TestHarness::<LmsUser>::given([ensured()]).when(cmd(admin(), grant_admin(ann_id()))).then([granted.clone()]);
        assert!(LmsUser::fold([ensured(), granted].iter()).is_admin());
    }

    #[test]
    fn it_should_let_the_operator_appoint_the_first_admin() {
        TestHarness::<LmsUser>::given([ensured()])
            .when(cmd(Actor::system(), grant_admin(ann_id())))
            .then([LmsUserEvent::AdminGranted { user_id: ann_id(), granted_by: Uuid::nil(), at: t(30) }]);
    }

    #[test]
    fn it_should_refuse_an_admin_grant_by_a_non_admin() {
        let instructor = Actor { id: Uuid::from_u128(0x1), is_instructor: true, is_admin: false, system: false };
        TestHarness::<LmsUser>::given([ensured()])
            .when(cmd(instructor, grant_admin(ann_id())))
            .then_error(LmsUserError::OnlyAdminsGrantAdmin);
    }

    #[test]
    fn it_should_not_grant_a_flag_to_a_user_who_never_signed_in() {
        TestHarness::<LmsUser>::given([])
            .when(cmd(admin(), grant_admin(ann_id())))
            .then_error(LmsUserError::UserNotFound);
    }

    #[test]
    fn it_should_not_grant_the_admin_flag_twice() {
        let granted = LmsUserEvent::AdminGranted { user_id: ann_id(), granted_by: admin_id(), at: t(2) };
        TestHarness::<LmsUser>::given([ensured(), granted])
            .when(cmd(admin(), grant_admin(ann_id())))
            .then_error(LmsUserError::AlreadyAdmin);
    }

    // grant-instructor

    #[test]
    fn it_should_let_an_admin_grant_the_instructor_flag_for_an_approved_application() {
        let granted = LmsUserEvent::InstructorGranted {
            user_id: ann_id(),
            application_id: application_id(),
            granted_by: admin_id(),
            at: t(30),
        };
        TestHarness::<LmsUser>::given([ensured()])
            .when(cmd(admin(), grant_instructor(ann_id())))
            .then([granted.clone()]);
        let user = LmsUser::fold([ensured(), granted].iter());
        assert!(user.is_instructor());
        assert!(!user.is_admin());
        assert_eq!(user.instructor_application_id(), Some(application_id()));
    }

    #[test]
    fn it_should_refuse_an_instructor_grant_by_a_non_admin() {
        TestHarness::<LmsUser>::given([ensured()])
            .when(cmd(student(ann_id()), grant_instructor(ann_id())))
            .then_error(LmsUserError::OnlyAdminsGrantInstructor);
    }

    #[test]
    fn it_should_ignore_a_redelivered_instructor_grant_for_the_same_application() {
        let granted = LmsUserEvent::InstructorGranted {
            user_id: ann_id(),
            application_id: application_id(),
            granted_by: admin_id(),
            at: t(2),
        };
        TestHarness::<LmsUser>::given([ensured(), granted]).when(cmd(admin(), grant_instructor(ann_id()))).then([]);
    }

    #[test]
    fn it_should_not_grant_the_instructor_flag_to_an_instructor_again() {
        let granted = LmsUserEvent::InstructorGranted {
            user_id: ann_id(),
            application_id: Uuid::from_u128(0xB0B),
            granted_by: admin_id(),
            at: t(2),
        };
        TestHarness::<LmsUser>::given([ensured(), granted])
            .when(cmd(admin(), grant_instructor(ann_id())))
            .then_error(LmsUserError::AlreadyInstructor);
    }

    // the migration

    #[test]
    fn it_should_upcast_an_old_role_enum_into_flags() {
        // A `user-ensured` payload of schema version 1, exactly as stored (the role is filled in).
        const V1: &str = r#"{
            "userId": "00000000-0000-0000-0000-000000000a11",
            "firstName": "Ann",
            "lastName": "Lee",
            "email": "ann@example.com",
            "image": null,
            "phone": "+1 555 0100",
            "externalId": "user_2abc",
            "role": "ROLE",
            "at": "2024-11-02T10:00:00Z"
        }"#;
        let stored = |role: &str| -> Value { serde_json::from_str(&V1.replace("ROLE", role)).unwrap() };
        for (role, is_instructor, is_admin) in
            [("admin", false, true), ("instructor", true, false), ("student", false, false)]
        {
            let upcast = upcast_user_ensured_v1(stored(role));
            assert!(upcast.get("role").is_none(), "role is removed");
            assert_eq!(upcast["isInstructor"], json!(is_instructor));
            assert_eq!(upcast["isAdmin"], json!(is_admin));
            assert_eq!(upcast["phone"], "+1 555 0100", "other fields are kept");

            let event: LmsUserEvent = decode_event(USER_ENSURED, &upcast).expect("the upcast payload decodes");
            let user = LmsUser::fold([event].iter());
            assert!(user.exists());
            assert_eq!(user.is_instructor(), is_instructor, "{role}");
            assert_eq!(user.is_admin(), is_admin, "{role}");
            assert_eq!(user.phone(), Some("+1 555 0100"));
            assert_eq!(user.external_id(), Some("user_2abc"));
            assert_eq!(user.user_id(), Some(ann_id()));
        }
        // Older v1 payloads left the optional fields out; they still decode.
        let minimal = json!({
            "userId": ann_id(), "firstName": "Jane", "lastName": "Instructor",
            "email": "jane@example.com", "role": "instructor", "at": "2024-01-01T00:00:00Z"
        });
        let event: LmsUserEvent = decode_event(USER_ENSURED, &upcast_user_ensured_v1(minimal)).unwrap();
        let user = LmsUser::fold([event].iter());
        assert!(user.is_instructor() && !user.is_admin());
        assert_eq!(user.image(), None);
        assert!(decode_event::<LmsUserEvent>(USER_ENSURED, &stored("admin")).is_err(), "v1 does not decode as is");
    }

    #[test]
    fn it_should_version_user_ensured_at_two() {
        assert_eq!(LmsUserEvent::schema_version("user-ensured"), 2);
        assert_eq!(LmsUserEvent::schema_version("admin-granted"), 1);
        let (event_type, payload) = encode_event(&ensured()).unwrap();
        assert_eq!(event_type, USER_ENSURED);
        assert_eq!(payload["isInstructor"], false);
        assert_eq!(payload["externalId"], "user_2abc");
        assert!(payload.get("role").is_none());
        // A current payload passes through the upcaster unchanged.
        assert_eq!(upcast_user_ensured_v1(payload.clone()), payload);
    }

    // wire formats

    #[test]
    fn it_should_read_command_bodies_in_camel_case_and_refuse_unknown_fields() {
        let body = json!({ "firstName": "Ann", "lastName": "Lee", "email": "ann@example.com", "externalId": "u1" });
        let p: EnsureCurrentUser = serde_json::from_value(body).unwrap();
        assert_eq!(p.external_id.as_deref(), Some("u1"));
        assert_eq!(p.image, None);
        assert!(serde_json::from_value::<EnsureCurrentUser>(
            json!({ "firstName": "A", "lastName": "B", "email": "a@b.co", "isAdmin": true })
        )
        .is_err());
        let c = cmd(admin(), grant_admin(ann_id()));
        assert_eq!(c.stream_id(), format!("lms-user-{}", ann_id()));
        assert_eq!(cmd(student(ann_id()), LmsUserAction::EnsureCurrentUser(sign_in())).user_id(), ann_id());
        assert_eq!(LmsUser::STREAM_TYPE, "lms.user");
    }

    #[test]
    fn it_should_classify_every_error() {
        use LmsUserError::*;
        for e in [NotAUser, OnlyAdminsGrantAdmin, OnlyAdminsGrantInstructor] {
            assert_eq!(e.kind(), ErrorKind::Forbidden, "{e:?}");
        }
        assert_eq!(UserNotFound.kind(), ErrorKind::NotFound);
        for e in [AlreadyAdmin, AlreadyInstructor] {
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}");
        }
        assert_eq!(InvalidEmail(String::new()).kind(), ErrorKind::Invalid);
    }
}
