//! The marketplace `User` aggregate: one account's profile and role in the marketplace (stream
//! `mkt-user-{accountId}`, so the user id is the identity account id).
//!
//! It guards who may change a role (admins), who may edit a profile (the user or an admin), which
//! profile a role has (client or freelancer), and suspension by staff. The account itself (email
//! uniqueness, password, sessions) is the `identity` context's; a user joins the marketplace with
//! a client or freelancer role, and the operator CLI appoints the first admin.
//!
//! Profile updates are patches: a field left out (`None`) is left as it is, an empty text clears
//! it, and the event records only the fields that actually change, so an update that changes
//! nothing decides no events.

use super::{Actor, Role};
use crate::kernel::{Aggregate, DomainEvent};
use crate::values::Email;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stream type of marketplace users.
pub const STREAM_TYPE: &str = "marketplace.user";

/// The stream of the marketplace profile of `account_id`.
pub fn stream_id(account_id: Uuid) -> String {
    format!("mkt-user-{account_id}")
}

/// How a refused command maps onto the HTTP problem types (403, 404, 409, 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The actor may not do this (403).
    Forbidden,
    /// The user the command is about has not joined (404).
    NotFound,
    /// The command does not fit the user's current state (409).
    Conflict,
    /// A field of the command is not acceptable (422).
    Invalid,
}

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/// The roles a user may choose when joining; staff roles are appointed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinRole {
    Client,
    Freelancer,
}

impl From<JoinRole> for Role {
    fn from(role: JoinRole) -> Self {
        match role {
            JoinRole::Client => Role::Client,
            JoinRole::Freelancer => Role::Freelancer,
        }
    }
}

/// A freelancer's availability for new work.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    Available,
    Busy,
    Unavailable,
}

/// A user's standing in the marketplace.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    #[default]
    Active,
    Suspended,
    /// Kept for parity with the read table; no marketplace event sets it yet (account deletion
    /// belongs to the identity context).
    Deleted,
}

impl UserStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
            UserStatus::Deleted => "deleted",
        }
    }
}

/// The role-specific profile, in the shape of the read table's `profile` column.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub company_name: Option<String>,
    pub company_size: Option<String>,
    pub industry: Option<String>,
    pub bio: Option<String>,
    pub skills: Option<Vec<String>>,
    /// Cents per hour.
    pub hourly_rate: Option<i64>,
    pub availability: Option<Availability>,
    pub timezone: Option<String>,
    pub portfolio_url: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Commands (the payloads double as HTTP bodies)
// ---------------------------------------------------------------------------------------------

/// A command to a marketplace user. `actor` comes from the session (or the operator CLI), never
/// from the body; `at` is the handler's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct UserCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: UserAction,
}

impl UserCommand {
    /// The user the command is about: the actor when joining, the named user otherwise.
    pub fn user_id(&self) -> Uuid {
        match &self.action {
            UserAction::JoinMarketplace(_) => self.actor.id,
            UserAction::Appoint(p) => p.user_id,
            UserAction::ChangeRole(p) => p.user_id,
            UserAction::UpdateClientProfile(p) => p.user_id,
            UserAction::UpdateFreelancerProfile(p) => p.user_id,
            UserAction::SuspendUser(p) => p.user_id,
            UserAction::ReinstateUser(p) => p.user_id,
        }
    }

    /// The stream the command goes to.
    pub fn stream_id(&self) -> String {
        stream_id(self.user_id())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserAction {
    JoinMarketplace(JoinMarketplace),
    Appoint(Appoint),
    ChangeRole(ChangeRole),
    UpdateClientProfile(UpdateClientProfile),
    UpdateFreelancerProfile(UpdateFreelancerProfile),
    SuspendUser(SuspendUser),
    ReinstateUser(ReinstateUser),
}

/// `join-marketplace`: the actor joins as a client or a freelancer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinMarketplace {
    pub role: JoinRole,
    pub name: String,
    pub email: String,
}

/// `appoint-user` (operator CLI, admins): creates a user's profile with any role but `system`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Appoint {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// `change-role` (admins).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeRole {
    pub user_id: Uuid,
    pub role: Role,
}

/// `update-client-profile` (the user or an admin). `None` leaves a field, `""` clears it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateClientProfile {
    pub user_id: Uuid,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub company_size: Option<String>,
    #[serde(default)]
    pub industry: Option<String>,
}

/// `update-freelancer-profile` (the user or an admin). `None` leaves a field, `""` (or an empty
/// skill list) clears it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateFreelancerProfile {
    pub user_id: Uuid,
    #[serde(default)]
    pub bio: Option<String>,
    #[serde(default)]
    pub skills: Option<Vec<String>>,
    /// Cents per hour.
    #[serde(default)]
    pub hourly_rate: Option<i64>,
    #[serde(default)]
    pub availability: Option<Availability>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub portfolio_url: Option<String>,
}

/// `suspend-user` (admins and moderators).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuspendUser {
    pub user_id: Uuid,
    pub reason: String,
}

/// `reinstate-user` (admins and moderators).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReinstateUser {
    pub user_id: Uuid,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What happened to a marketplace user. The tag (`user-joined`, …) is the stored event type.
///
/// In the profile events a field that is `None` did not change, and `Some("")` (or an empty skill
/// list) means it was cleared.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum UserEvent {
    UserJoined {
        user_id: Uuid,
        email: String,
        name: String,
        role: Role,
        at: DateTime<Utc>,
    },
    RoleChanged {
        user_id: Uuid,
        from: Role,
        to: Role,
        changed_by: Uuid,
        at: DateTime<Utc>,
    },
    ClientProfileUpdated {
        user_id: Uuid,
        company_name: Option<String>,
        company_size: Option<String>,
        industry: Option<String>,
        at: DateTime<Utc>,
    },
    FreelancerProfileUpdated {
        user_id: Uuid,
        bio: Option<String>,
        skills: Option<Vec<String>>,
        hourly_rate: Option<i64>,
        availability: Option<Availability>,
        timezone: Option<String>,
        portfolio_url: Option<String>,
        at: DateTime<Utc>,
    },
    UserSuspended {
        user_id: Uuid,
        reason: String,
        by: Uuid,
        at: DateTime<Utc>,
    },
    UserReinstated {
        user_id: Uuid,
        by: Uuid,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for UserEvent {}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a user command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserError {
    #[error("the user has already joined the marketplace")]
    AlreadyJoined,
    #[error("a name is required")]
    NameRequired,
    #[error("invalid email: {0}")]
    InvalidEmail(String),
    #[error("the user has not joined the marketplace")]
    NotJoined,
    #[error("only an admin may change a role")]
    OnlyAdminsChangeRoles,
    #[error("only the operator or an admin may appoint a user")]
    OnlyAdminsAppoint,
    #[error("the system role cannot be given to a user")]
    SystemRoleNotAssignable,
    #[error("the user already has that role")]
    RoleUnchanged,
    #[error("only the user or an admin may change this profile")]
    NotYourProfile,
    #[error("a suspended user cannot change their profile")]
    Suspended,
    #[error("the user is not a client")]
    NotAClient,
    #[error("the user is not a freelancer")]
    NotAFreelancer,
    #[error("the hourly rate cannot be negative")]
    NegativeHourlyRate,
    #[error("the portfolio URL must be an http:// or https:// address")]
    InvalidPortfolioUrl,
    #[error("only an admin or a moderator may suspend or reinstate a user")]
    OnlyStaffModerate,
    #[error("a moderator may only suspend or reinstate clients and freelancers")]
    ModeratorCannotActOnStaff,
    #[error("staff cannot suspend themselves")]
    CannotSuspendSelf,
    #[error("a reason for the suspension is required")]
    ReasonRequired,
    #[error("the user is already suspended")]
    AlreadySuspended,
    #[error("the user is not suspended")]
    NotSuspended,
}

impl UserError {
    pub fn kind(&self) -> ErrorKind {
        use UserError::*;
        match self {
            OnlyAdminsChangeRoles
            | OnlyAdminsAppoint
            | NotYourProfile
            | Suspended
            | OnlyStaffModerate
            | ModeratorCannotActOnStaff
            | CannotSuspendSelf => ErrorKind::Forbidden,
            NotJoined => ErrorKind::NotFound,
            AlreadyJoined | RoleUnchanged | NotAClient | NotAFreelancer | AlreadySuspended | NotSuspended => {
                ErrorKind::Conflict
            }
            NameRequired
            | InvalidEmail(_)
            | SystemRoleNotAssignable
            | NegativeHourlyRate
            | InvalidPortfolioUrl
            | ReasonRequired => ErrorKind::Invalid,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// A marketplace user as its events left it. Fields are private: only `evolve` writes them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    joined: bool,
    user_id: Option<Uuid>,
    email: String,
    name: String,
    role: Option<Role>,
    status: UserStatus,
    joined_at: Option<DateTime<Utc>>,
    role_changed_at: Option<DateTime<Utc>>,
    role_changed_by: Option<Uuid>,
    suspension_reason: Option<String>,
    profile: Profile,
}

impl User {
    pub fn is_joined(&self) -> bool {
        self.joined
    }
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    pub fn email(&self) -> &str {
        &self.email
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The user's role, once joined.
    pub fn role(&self) -> Option<Role> {
        self.role
    }
    /// The user's status, once joined.
    pub fn status(&self) -> Option<UserStatus> {
        self.joined.then_some(self.status)
    }
    /// Whether the user is suspended: the HTTP layer refuses every command such a user sends.
    pub fn is_suspended(&self) -> bool {
        self.joined && self.status == UserStatus::Suspended
    }
    pub fn joined_at(&self) -> Option<DateTime<Utc>> {
        self.joined_at
    }
    pub fn role_changed_at(&self) -> Option<DateTime<Utc>> {
        self.role_changed_at
    }
    pub fn role_changed_by(&self) -> Option<Uuid> {
        self.role_changed_by
    }
    pub fn suspension_reason(&self) -> Option<&str> {
        self.suspension_reason.as_deref()
    }
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The role of the user the command names, if that user has joined (and is this stream's).
    fn target(&self, user_id: Uuid) -> Result<Role, UserError> {
        match (self.joined, self.user_id, self.role, self.status) {
            (true, Some(id), Some(role), status) if id == user_id && status != UserStatus::Deleted => Ok(role),
            _ => Err(UserError::NotJoined),
        }
    }

    /// The user themself or an admin may edit a profile; the user not while suspended.
    fn check_profile_editor(&self, actor: &Actor, user_id: Uuid) -> Result<Role, UserError> {
        let is_self = actor.id == user_id;
        if !is_self && actor.role != Role::Admin {
            return Err(UserError::NotYourProfile);
        }
        let role = self.target(user_id)?;
        if is_self && self.status == UserStatus::Suspended {
            return Err(UserError::Suspended);
        }
        Ok(role)
    }

    /// Staff may suspend and reinstate; moderators only clients and freelancers.
    fn check_moderator(&self, actor: &Actor, user_id: Uuid) -> Result<(), UserError> {
        if !actor.is_staff() {
            return Err(UserError::OnlyStaffModerate);
        }
        let role = self.target(user_id)?;
        if actor.role == Role::Moderator && matches!(role, Role::Moderator | Role::Admin | Role::System) {
            return Err(UserError::ModeratorCannotActOnStaff);
        }
        Ok(())
    }

    fn decide_update_freelancer(
        &self,
        actor: &Actor,
        p: &UpdateFreelancerProfile,
        at: DateTime<Utc>,
    ) -> Result<Vec<UserEvent>, UserError> {
        if self.check_profile_editor(actor, p.user_id)? != Role::Freelancer {
            return Err(UserError::NotAFreelancer);
        }
        if p.hourly_rate.is_some_and(|rate| rate < 0) {
            return Err(UserError::NegativeHourlyRate);
        }
        if let Some(url) = p.portfolio_url.as_deref().map(str::trim) {
            if !url.is_empty() && !is_http_url(url) {
                return Err(UserError::InvalidPortfolioUrl);
            }
        }
        let current = &self.profile;
        let skills = p.skills.as_deref().map(normalise_skills).and_then(|skills| {
            let target = (!skills.is_empty()).then(|| skills.clone());
            (target != current.skills).then_some(skills)
        });
        let bio = text_change(&p.bio, &current.bio);
        let hourly_rate = p.hourly_rate.filter(|rate| current.hourly_rate != Some(*rate));
        let availability = p.availability.filter(|a| current.availability != Some(*a));
        let timezone = text_change(&p.timezone, &current.timezone);
        let portfolio_url = text_change(&p.portfolio_url, &current.portfolio_url);
        if bio.is_none()
            && skills.is_none()
            && hourly_rate.is_none()
            && availability.is_none()
            && timezone.is_none()
            && portfolio_url.is_none()
        {
            return Ok(vec![]);
        }
        Ok(vec![UserEvent::FreelancerProfileUpdated {
            user_id: p.user_id,
            bio,
            skills,
            hourly_rate,
            availability,
            timezone,
            portfolio_url,
            at,
        }])
    }
}

/// A parsed email and a trimmed, non-empty name for a new user.
fn check_identity(email: &str, name: &str) -> Result<(String, String), UserError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(UserError::NameRequired);
    }
    let email = Email::parse(email).map_err(UserError::InvalidEmail)?;
    Ok((email.as_str().to_owned(), name.to_owned()))
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

/// Trimmed skills without blanks or case-insensitive duplicates, in the order given.
fn normalise_skills(skills: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    skills
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && seen.insert(s.to_lowercase()))
        .map(str::to_owned)
        .collect()
}

/// An `http://` or `https://` address with something after the scheme.
fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.chars().any(char::is_whitespace))
}

impl Aggregate for User {
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    type Event = UserEvent;
    type Command = UserCommand;
    type Error = UserError;

    fn decide(&self, command: &UserCommand) -> Result<Vec<UserEvent>, UserError> {
        let UserCommand { actor, at, action } = command;
        let at = *at;
        match action {
            UserAction::JoinMarketplace(p) => {
                if self.joined {
                    return Err(UserError::AlreadyJoined);
                }
                let (email, name) = check_identity(&p.email, &p.name)?;
                Ok(vec![UserEvent::UserJoined { user_id: actor.id, email, name, role: p.role.into(), at }])
            }
            UserAction::Appoint(p) => {
                if !matches!(actor.role, Role::System | Role::Admin) {
                    return Err(UserError::OnlyAdminsAppoint);
                }
                if p.role == Role::System {
                    return Err(UserError::SystemRoleNotAssignable);
                }
                if self.joined {
                    return Err(UserError::AlreadyJoined);
                }
                let (email, name) = check_identity(&p.email, &p.name)?;
                Ok(vec![UserEvent::UserJoined { user_id: p.user_id, email, name, role: p.role, at }])
            }
            UserAction::ChangeRole(p) => {
                if actor.role != Role::Admin {
                    return Err(UserError::OnlyAdminsChangeRoles);
                }
                let from = self.target(p.user_id)?;
                if p.role == Role::System {
                    return Err(UserError::SystemRoleNotAssignable);
                }
                if p.role == from {
                    return Err(UserError::RoleUnchanged);
                }
                Ok(vec![UserEvent::RoleChanged { user_id: p.user_id, from, to: p.role, changed_by: actor.id, at }])
            }
            UserAction::UpdateClientProfile(p) => {
                if self.check_profile_editor(actor, p.user_id)? != Role::Client {
                    return Err(UserError::NotAClient);
                }
                let current = &self.profile;
                let company_name = text_change(&p.company_name, &current.company_name);
                let company_size = text_change(&p.company_size, &current.company_size);
                let industry = text_change(&p.industry, &current.industry);
                if company_name.is_none() && company_size.is_none() && industry.is_none() {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::ClientProfileUpdated {
                    user_id: p.user_id,
                    company_name,
                    company_size,
                    industry,
                    at,
                }])
            }
            UserAction::UpdateFreelancerProfile(p) => self.decide_update_freelancer(actor, p, at),
            UserAction::SuspendUser(p) => {
                self.check_moderator(actor, p.user_id)?;
                if actor.id == p.user_id {
                    return Err(UserError::CannotSuspendSelf);
                }
                if self.status == UserStatus::Suspended {
                    return Err(UserError::AlreadySuspended);
                }
                let reason = p.reason.trim();
                if reason.is_empty() {
                    return Err(UserError::ReasonRequired);
                }
                Ok(vec![UserEvent::UserSuspended { user_id: p.user_id, reason: reason.to_owned(), by: actor.id, at }])
            }
            UserAction::ReinstateUser(p) => {
                self.check_moderator(actor, p.user_id)?;
                if self.status != UserStatus::Suspended {
                    return Err(UserError::NotSuspended);
                }
                Ok(vec![UserEvent::UserReinstated { user_id: p.user_id, by: actor.id, at }])
            }
        }
    }

    fn evolve(&mut self, event: &UserEvent) {
        match event {
            UserEvent::UserJoined { user_id, email, name, role, at } => {
                self.joined = true;
                self.user_id = Some(*user_id);
                self.email = email.clone();
                self.name = name.clone();
                self.role = Some(*role);
                self.status = UserStatus::Active;
                self.joined_at = Some(*at);
            }
            UserEvent::RoleChanged { to, changed_by, at, .. } => {
                self.role = Some(*to);
                self.role_changed_at = Some(*at);
                self.role_changed_by = Some(*changed_by);
            }
            UserEvent::ClientProfileUpdated { company_name, company_size, industry, .. } => {
                apply_text(&mut self.profile.company_name, company_name);
                apply_text(&mut self.profile.company_size, company_size);
                apply_text(&mut self.profile.industry, industry);
            }
            UserEvent::FreelancerProfileUpdated {
                bio,
                skills,
                hourly_rate,
                availability,
                timezone,
                portfolio_url,
                ..
            } => {
                let profile = &mut self.profile;
                apply_text(&mut profile.bio, bio);
                if let Some(skills) = skills {
                    profile.skills = (!skills.is_empty()).then(|| skills.clone());
                }
                if let Some(rate) = hourly_rate {
                    profile.hourly_rate = Some(*rate);
                }
                if let Some(availability) = availability {
                    profile.availability = Some(*availability);
                }
                apply_text(&mut profile.timezone, timezone);
                apply_text(&mut profile.portfolio_url, portfolio_url);
            }
            UserEvent::UserSuspended { reason, .. } => {
                self.status = UserStatus::Suspended;
                self.suspension_reason = Some(reason.clone());
            }
            UserEvent::UserReinstated { .. } => {
                self.status = UserStatus::Active;
                self.suspension_reason = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{encode_event, TestHarness};
    use chrono::TimeZone;

    fn client_id() -> Uuid {
        Uuid::from_u128(0xC1)
    }
    fn freelancer_id() -> Uuid {
        Uuid::from_u128(0xF1)
    }
    fn moderator_id() -> Uuid {
        Uuid::from_u128(0x30)
    }
    fn admin_id() -> Uuid {
        Uuid::from_u128(0xAD)
    }
    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 10, 9, minute, 0).unwrap()
    }
    fn actor(id: Uuid, role: Role) -> Actor {
        Actor { id, role }
    }
    fn client() -> Actor {
        actor(client_id(), Role::Client)
    }
    fn freelancer() -> Actor {
        actor(freelancer_id(), Role::Freelancer)
    }
    fn moderator() -> Actor {
        actor(moderator_id(), Role::Moderator)
    }
    fn admin() -> Actor {
        actor(admin_id(), Role::Admin)
    }
    fn cmd(actor: Actor, action: UserAction) -> UserCommand {
        UserCommand { actor, at: t(30), action }
    }
    fn joined(user_id: Uuid, role: Role) -> UserEvent {
        UserEvent::UserJoined { user_id, email: "user@example.com".into(), name: "User".into(), role, at: t(0) }
    }
    fn suspended(user_id: Uuid) -> UserEvent {
        UserEvent::UserSuspended { user_id, reason: "spam".into(), by: admin_id(), at: t(1) }
    }
    fn change_role(user_id: Uuid, role: Role) -> UserAction {
        UserAction::ChangeRole(ChangeRole { user_id, role })
    }
    fn client_update(user_id: Uuid) -> UserAction {
        UserAction::UpdateClientProfile(UpdateClientProfile {
            user_id,
            company_name: Some(" Acme ".into()),
            company_size: Some("11-50".into()),
            industry: None,
        })
    }
    fn freelancer_update() -> UpdateFreelancerProfile {
        UpdateFreelancerProfile {
            user_id: freelancer_id(),
            bio: None,
            skills: None,
            hourly_rate: None,
            availability: None,
            timezone: None,
            portfolio_url: None,
        }
    }
    fn suspend(user_id: Uuid) -> UserAction {
        UserAction::SuspendUser(SuspendUser { user_id, reason: "Spam".into() })
    }
    fn reinstate(user_id: Uuid) -> UserAction {
        UserAction::ReinstateUser(ReinstateUser { user_id })
    }
    fn appoint(role: Role) -> UserAction {
        UserAction::Appoint(Appoint { user_id: admin_id(), email: "Ops@Example.com".into(), name: "Ops".into(), role })
    }

    // join-marketplace

    #[test]
    fn it_should_let_a_user_join_as_a_freelancer() {
        let join =
            JoinMarketplace { role: JoinRole::Freelancer, name: " Bo ".into(), email: " bo@example.com ".into() };
        TestHarness::<User>::given([]).when(cmd(freelancer(), UserAction::JoinMarketplace(join))).then([
            UserEvent::UserJoined {
                user_id: freelancer_id(),
                email: "bo@example.com".into(),
                name: "Bo".into(),
                role: Role::Freelancer,
                at: t(30),
            },
        ]);
    }

    #[test]
    fn it_should_not_let_a_user_join_twice() {
        let join = JoinMarketplace { role: JoinRole::Client, name: "Cy".into(), email: "cy@example.com".into() };
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(client(), UserAction::JoinMarketplace(join)))
            .then_error(UserError::AlreadyJoined);
    }

    #[test]
    fn it_should_not_let_a_user_join_without_a_name() {
        let join = JoinMarketplace { role: JoinRole::Client, name: "  ".into(), email: "cy@example.com".into() };
        TestHarness::<User>::given([])
            .when(cmd(client(), UserAction::JoinMarketplace(join)))
            .then_error(UserError::NameRequired);
    }

    #[test]
    fn it_should_not_let_a_user_join_with_an_invalid_email() {
        let join = JoinMarketplace { role: JoinRole::Client, name: "Cy".into(), email: "cy-at-example".into() };
        TestHarness::<User>::given([])
            .when(cmd(client(), UserAction::JoinMarketplace(join)))
            .then_error(UserError::InvalidEmail("`cy-at-example` is not an e-mail address".into()));
    }

    // appoint (operator CLI)

    #[test]
    fn it_should_appoint_the_first_admin_from_the_operator_cli() {
        TestHarness::<User>::given([]).when(cmd(Actor::system(), appoint(Role::Admin))).then([UserEvent::UserJoined {
            user_id: admin_id(),
            email: "Ops@Example.com".into(),
            name: "Ops".into(),
            role: Role::Admin,
            at: t(30),
        }]);
    }

    #[test]
    fn it_should_refuse_an_appointment_by_a_non_admin() {
        TestHarness::<User>::given([])
            .when(cmd(moderator(), appoint(Role::Moderator)))
            .then_error(UserError::OnlyAdminsAppoint);
    }

    #[test]
    fn it_should_not_appoint_a_user_to_the_system_role() {
        TestHarness::<User>::given([])
            .when(cmd(Actor::system(), appoint(Role::System)))
            .then_error(UserError::SystemRoleNotAssignable);
    }

    #[test]
    fn it_should_not_appoint_a_user_who_has_already_joined() {
        TestHarness::<User>::given([joined(admin_id(), Role::Client)])
            .when(cmd(Actor::system(), appoint(Role::Admin)))
            .then_error(UserError::AlreadyJoined);
    }

    // change-role

    #[test]
    fn it_should_let_an_admin_change_a_role_and_record_who_and_when() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(admin(), change_role(client_id(), Role::Moderator)))
            .then([UserEvent::RoleChanged {
                user_id: client_id(),
                from: Role::Client,
                to: Role::Moderator,
                changed_by: admin_id(),
                at: t(30),
            }]);
        let user = User::fold(
            [
                joined(client_id(), Role::Client),
                UserEvent::RoleChanged {
                    user_id: client_id(),
                    from: Role::Client,
                    to: Role::Moderator,
                    changed_by: admin_id(),
                    at: t(5),
                },
            ]
            .iter(),
        );
        assert_eq!(user.role(), Some(Role::Moderator));
        assert_eq!(user.role_changed_at(), Some(t(5)));
        assert_eq!(user.role_changed_by(), Some(admin_id()));
    }

    #[test]
    fn it_should_refuse_a_role_change_by_a_non_admin() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(moderator(), change_role(client_id(), Role::Freelancer)))
            .then_error(UserError::OnlyAdminsChangeRoles);
    }

    #[test]
    fn it_should_not_give_a_user_the_system_role() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(admin(), change_role(client_id(), Role::System)))
            .then_error(UserError::SystemRoleNotAssignable);
    }

    #[test]
    fn it_should_not_change_a_role_to_the_same_role() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(admin(), change_role(client_id(), Role::Client)))
            .then_error(UserError::RoleUnchanged);
    }

    #[test]
    fn it_should_not_change_the_role_of_a_user_who_has_not_joined() {
        TestHarness::<User>::given([])
            .when(cmd(admin(), change_role(client_id(), Role::Freelancer)))
            .then_error(UserError::NotJoined);
    }

    #[test]
    fn it_should_not_act_on_another_user_than_the_streams() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(admin(), change_role(freelancer_id(), Role::Moderator)))
            .then_error(UserError::NotJoined);
    }

    // update-client-profile

    #[test]
    fn it_should_let_a_client_update_their_own_profile() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(client(), client_update(client_id())))
            .then([UserEvent::ClientProfileUpdated {
                user_id: client_id(),
                company_name: Some("Acme".into()),
                company_size: Some("11-50".into()),
                industry: None,
                at: t(30),
            }]);
    }

    #[test]
    fn it_should_let_an_admin_update_a_client_profile() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(admin(), client_update(client_id())))
            .then([UserEvent::ClientProfileUpdated {
                user_id: client_id(),
                company_name: Some("Acme".into()),
                company_size: Some("11-50".into()),
                industry: None,
                at: t(30),
            }]);
    }

    #[test]
    fn it_should_refuse_a_profile_update_by_another_user() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(moderator(), client_update(client_id())))
            .then_error(UserError::NotYourProfile);
    }

    #[test]
    fn it_should_not_update_the_client_profile_of_a_freelancer() {
        TestHarness::<User>::given([joined(freelancer_id(), Role::Freelancer)])
            .when(cmd(freelancer(), client_update(freelancer_id())))
            .then_error(UserError::NotAClient);
    }

    #[test]
    fn it_should_refuse_a_suspended_users_own_profile_update() {
        TestHarness::<User>::given([joined(client_id(), Role::Client), suspended(client_id())])
            .when(cmd(client(), client_update(client_id())))
            .then_error(UserError::Suspended);
    }

    #[test]
    fn it_should_not_record_a_profile_update_that_changes_nothing() {
        let earlier = UserEvent::ClientProfileUpdated {
            user_id: client_id(),
            company_name: Some("Acme".into()),
            company_size: Some("11-50".into()),
            industry: None,
            at: t(1),
        };
        TestHarness::<User>::given([joined(client_id(), Role::Client), earlier])
            .when(cmd(client(), client_update(client_id())))
            .then([]);
    }

    #[test]
    fn it_should_clear_a_profile_field_given_as_empty_text() {
        let earlier = UserEvent::ClientProfileUpdated {
            user_id: client_id(),
            company_name: Some("Acme".into()),
            company_size: None,
            industry: Some("Retail".into()),
            at: t(1),
        };
        let clear = UserAction::UpdateClientProfile(UpdateClientProfile {
            user_id: client_id(),
            company_name: None,
            company_size: None,
            industry: Some(" ".into()),
        });
        let cleared = UserEvent::ClientProfileUpdated {
            user_id: client_id(),
            company_name: None,
            company_size: None,
            industry: Some(String::new()),
            at: t(30),
        };
        TestHarness::<User>::given([joined(client_id(), Role::Client), earlier.clone()])
            .when(cmd(client(), clear))
            .then([cleared.clone()]);
        let user = User::fold([joined(client_id(), Role::Client), earlier, cleared].iter());
        assert_eq!(user.profile().company_name.as_deref(), Some("Acme"));
        assert_eq!(user.profile().industry, None);
    }

    // update-freelancer-profile

    #[test]
    fn it_should_let_a_freelancer_update_their_profile() {
        let update = UpdateFreelancerProfile {
            bio: Some("Rust backends".into()),
            skills: Some(vec![" Rust ".into(), "rust".into(), "".into(), "PostgreSQL".into()]),
            hourly_rate: Some(9_500),
            availability: Some(Availability::Busy),
            timezone: Some("Europe/Berlin".into()),
            portfolio_url: Some("https://bo.example.com".into()),
            ..freelancer_update()
        };
        let updated = UserEvent::FreelancerProfileUpdated {
            user_id: freelancer_id(),
            bio: Some("Rust backends".into()),
            skills: Some(vec!["Rust".into(), "PostgreSQL".into()]),
            hourly_rate: Some(9_500),
            availability: Some(Availability::Busy),
            timezone: Some("Europe/Berlin".into()),
            portfolio_url: Some("https://bo.example.com".into()),
            at: t(30),
        };
        TestHarness::<User>::given([joined(freelancer_id(), Role::Freelancer)])
            .when(cmd(freelancer(), UserAction::UpdateFreelancerProfile(update)))
            .then([updated.clone()]);
        let user = User::fold([joined(freelancer_id(), Role::Freelancer), updated].iter());
        assert_eq!(user.profile().hourly_rate, Some(9_500));
        assert_eq!(user.profile().skills.as_deref(), Some(&["Rust".to_owned(), "PostgreSQL".to_owned()][..]));
        assert_eq!(user.profile().availability, Some(Availability::Busy));
    }

    #[test]
    fn it_should_not_update_the_freelancer_profile_of_a_client() {
        let update = UpdateFreelancerProfile { user_id: client_id(), bio: Some("hi".into()), ..freelancer_update() };
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(client(), UserAction::UpdateFreelancerProfile(update)))
            .then_error(UserError::NotAFreelancer);
    }

    #[test]
    fn it_should_refuse_a_freelancer_profile_update_by_another_user() {
        let update = UpdateFreelancerProfile { bio: Some("hi".into()), ..freelancer_update() };
        TestHarness::<User>::given([joined(freelancer_id(), Role::Freelancer)])
            .when(cmd(client(), UserAction::UpdateFreelancerProfile(update)))
            .then_error(UserError::NotYourProfile);
    }

    #[test]
    fn it_should_refuse_a_negative_hourly_rate() {
        let update = UpdateFreelancerProfile { hourly_rate: Some(-1), ..freelancer_update() };
        TestHarness::<User>::given([joined(freelancer_id(), Role::Freelancer)])
            .when(cmd(freelancer(), UserAction::UpdateFreelancerProfile(update)))
            .then_error(UserError::NegativeHourlyRate);
    }

    #[test]
    fn it_should_refuse_a_portfolio_url_that_is_not_http() {
        for url in ["javascript:alert(1)", "ftp://bo.example.com", "https://", "bo.example.com"] {
            let update = UpdateFreelancerProfile { portfolio_url: Some(url.into()), ..freelancer_update() };
            TestHarness::<User>::given([joined(freelancer_id(), Role::Freelancer)])
                .when(cmd(freelancer(), UserAction::UpdateFreelancerProfile(update)))
                .then_error(UserError::InvalidPortfolioUrl);
        }
    }

    // suspend-user / reinstate-user

    #[test]
    fn it_should_let_a_moderator_suspend_a_user() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(moderator(), suspend(client_id())))
            .then([UserEvent::UserSuspended {
                user_id: client_id(),
                reason: "Spam".into(),
                by: moderator_id(),
                at: t(30),
            }]);
        let user = User::fold([joined(client_id(), Role::Client), suspended(client_id())].iter());
        assert!(user.is_suspended());
        assert_eq!(user.status(), Some(UserStatus::Suspended));
    }

    #[test]
    fn it_should_refuse_a_suspension_by_a_non_staff_actor() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(freelancer(), suspend(client_id())))
            .then_error(UserError::OnlyStaffModerate);
    }

    #[test]
    fn it_should_not_let_a_moderator_suspend_an_admin() {
        TestHarness::<User>::given([joined(admin_id(), Role::Admin)])
            .when(cmd(moderator(), suspend(admin_id())))
            .then_error(UserError::ModeratorCannotActOnStaff);
    }

    #[test]
    fn it_should_not_let_staff_suspend_themselves() {
        TestHarness::<User>::given([joined(admin_id(), Role::Admin)])
            .when(cmd(admin(), suspend(admin_id())))
            .then_error(UserError::CannotSuspendSelf);
    }

    #[test]
    fn it_should_not_suspend_a_user_twice() {
        TestHarness::<User>::given([joined(client_id(), Role::Client), suspended(client_id())])
            .when(cmd(admin(), suspend(client_id())))
            .then_error(UserError::AlreadySuspended);
    }

    #[test]
    fn it_should_not_suspend_a_user_without_a_reason() {
        let action = UserAction::SuspendUser(SuspendUser { user_id: client_id(), reason: " ".into() });
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(admin(), action))
            .then_error(UserError::ReasonRequired);
    }

    #[test]
    fn it_should_not_suspend_a_user_who_has_not_joined() {
        TestHarness::<User>::given([]).when(cmd(admin(), suspend(client_id()))).then_error(UserError::NotJoined);
    }

    #[test]
    fn it_should_reinstate_a_suspended_user() {
        TestHarness::<User>::given([joined(client_id(), Role::Client), suspended(client_id())])
            .when(cmd(admin(), reinstate(client_id())))
            .then([UserEvent::UserReinstated { user_id: client_id(), by: admin_id(), at: t(30) }]);
        let user = User::fold(
            [
                joined(client_id(), Role::Client),
                suspended(client_id()),
                UserEvent::UserReinstated { user_id: client_id(), by: admin_id(), at: t(2) },
            ]
            .iter(),
        );
        assert!(!user.is_suspended());
        assert_eq!(user.suspension_reason(), None);
    }

    #[test]
    fn it_should_not_reinstate_an_active_user() {
        TestHarness::<User>::given([joined(client_id(), Role::Client)])
            .when(cmd(moderator(), reinstate(client_id())))
            .then_error(UserError::NotSuspended);
    }

    #[test]
    fn it_should_refuse_a_reinstatement_by_a_non_staff_actor() {
        TestHarness::<User>::given([joined(client_id(), Role::Client), suspended(client_id())])
            .when(cmd(client(), reinstate(client_id())))
            .then_error(UserError::OnlyStaffModerate);
    }

    #[test]
    fn it_should_not_let_a_moderator_reinstate_another_moderator() {
        let other = Uuid::from_u128(0x31);
        TestHarness::<User>::given([joined(other, Role::Moderator), suspended(other)])
            .when(cmd(moderator(), reinstate(other)))
            .then_error(UserError::ModeratorCannotActOnStaff);
    }

    // wire formats

    #[test]
    fn it_should_read_command_bodies_in_camel_case_and_refuse_unknown_fields() {
        let body = serde_json::json!({ "userId": freelancer_id(), "hourlyRate": 5000, "portfolioUrl": "https://x.io" });
        let update: UpdateFreelancerProfile = serde_json::from_value(body).unwrap();
        assert_eq!(update.hourly_rate, Some(5000));
        assert_eq!(update.bio, None);
        let join: JoinMarketplace =
            serde_json::from_value(serde_json::json!({ "role": "client", "name": "Cy", "email": "cy@x.io" })).unwrap();
        assert_eq!(join.role, JoinRole::Client);
        assert!(
            serde_json::from_value::<JoinMarketplace>(
                serde_json::json!({ "role": "admin", "name": "Cy", "email": "cy@x.io" })
            )
            .is_err(),
            "staff roles cannot be chosen when joining"
        );
        assert!(
            serde_json::from_value::<ReinstateUser>(serde_json::json!({ "userId": client_id(), "role": "admin" }))
                .is_err(),
            "unknown fields are refused"
        );
    }

    #[test]
    fn it_should_store_events_under_kebab_case_types() {
        let (event_type, payload) = encode_event(&joined(client_id(), Role::Client)).unwrap();
        assert_eq!(event_type, "user-joined");
        assert_eq!(payload["role"], "client");
        assert_eq!(encode_event(&suspended(client_id())).unwrap().0, "user-suspended");
        let join = cmd(
            client(),
            UserAction::JoinMarketplace(JoinMarketplace {
                role: JoinRole::Client,
                name: "Cy".into(),
                email: "cy@x.io".into(),
            }),
        );
        assert_eq!(join.stream_id(), format!("mkt-user-{}", client_id()));
    }

    #[test]
    fn it_should_classify_every_error() {
        use UserError::*;
        for forbidden in [
            OnlyAdminsChangeRoles,
            OnlyAdminsAppoint,
            NotYourProfile,
            Suspended,
            OnlyStaffModerate,
            ModeratorCannotActOnStaff,
            CannotSuspendSelf,
        ] {
            assert_eq!(forbidden.kind(), ErrorKind::Forbidden, "{forbidden:?}");
        }
        assert_eq!(NotJoined.kind(), ErrorKind::NotFound);
        for conflict in [AlreadyJoined, RoleUnchanged, NotAClient, NotAFreelancer, AlreadySuspended, NotSuspended] {
            assert_eq!(conflict.kind(), ErrorKind::Conflict, "{conflict:?}");
        }
        for invalid in [
            NameRequired,
            InvalidEmail(String::new()),
            SystemRoleNotAssignable,
            NegativeHourlyRate,
            InvalidPortfolioUrl,
            ReasonRequired,
        ] {
            assert_eq!(invalid.kind(), ErrorKind::Invalid, "{invalid:?}");
        }
    }
}
