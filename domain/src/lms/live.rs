//! The small aggregates of the learning platform's community features: live sessions, resources,
//! favorites and notifications.
//!
//! * `LiveSession` (stream `lms-live-{sessionId}`, type `lms.live-session`): an instructor's
//!   session, its status (scheduled → live → completed, or scheduled → cancelled) and its
//!   participants. Every join of a session goes through this one stream, so the engine
//!   serialises them and `maxParticipants` holds however many users join at once.
//! * `Resource` (stream `lms-resource-{resourceId}`, type `lms.resource`): a supplementary
//!   material, whether it is featured, and its download count. A restricted resource is
//!   downloaded only by students enrolled in its course (the handler looks the enrolment up).
//! * `Favorite` (stream `lms-favorite-{userId}-{resourceId}`, type `lms.favorite`): one stream per
//!   user and resource, so there is at most one favorite per pair; toggling adds and removes it.
//! * `Notification` (stream `lms-notification-{notificationId}`, type `lms.notification`): one
//!   notification for one user and whether it was read.
//!
//! Decisions are pure: the time, ids and anything looked up come in the command.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Actor, ErrorKind};
use crate::kernel::{Aggregate, DomainEvent};

/// The stream type of live sessions.
pub const LIVE_SESSION_STREAM_TYPE: &str = "lms.live-session";
/// The stream type of resources.
pub const RESOURCE_STREAM_TYPE: &str = "lms.resource";
/// The stream type of favorites.
pub const FAVORITE_STREAM_TYPE: &str = "lms.favorite";
/// The stream type of notifications.
pub const NOTIFICATION_STREAM_TYPE: &str = "lms.notification";

/// The stream of one live session.
pub fn live_session_stream_id(session_id: Uuid) -> String {
    format!("lms-live-{session_id}")
}

/// The stream of one resource.
pub fn resource_stream_id(resource_id: Uuid) -> String {
    format!("lms-resource-{resource_id}")
}

/// The stream of `user_id`'s favorite of `resource_id`.
pub fn favorite_stream_id(user_id: Uuid, resource_id: Uuid) -> String {
    format!("lms-favorite-{user_id}-{resource_id}")
}

/// The stream of one notification.
pub fn notification_stream_id(notification_id: Uuid) -> String {
    format!("lms-notification-{notification_id}")
}

/// Trimmed text, `None` when blank.
fn non_blank(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Trimmed optional text, `None` when absent or blank.
fn optional_text(text: &Option<String>) -> Option<String> {
    text.as_deref().and_then(non_blank)
}

/// An `http://` or `https://` address with something after the scheme and no spaces.
fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.chars().any(char::is_whitespace))
}

// =============================================================================================
// Live sessions
// =============================================================================================

/// Where a live session is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveSessionStatus {
    Scheduled,
    Live,
    Completed,
    Cancelled,
}

impl LiveSessionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            LiveSessionStatus::Scheduled => "scheduled",
            LiveSessionStatus::Live => "live",
            LiveSessionStatus::Completed => "completed",
            LiveSessionStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for LiveSessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command to a live session. `actor` comes from the session, `at` is the handler's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSessionCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: LiveSessionAction,
}

impl LiveSessionCommand {
    pub fn session_id(&self) -> Uuid {
        match &self.action {
            LiveSessionAction::ScheduleLiveSession(p) => p.session_id,
            LiveSessionAction::StartLiveSession(p) => p.session_id,
            LiveSessionAction::CompleteLiveSession(p) => p.session_id,
            LiveSessionAction::CancelLiveSession(p) => p.session_id,
            LiveSessionAction::JoinLiveSession(p) => p.session_id,
        }
    }
    pub fn stream_id(&self) -> String {
        live_session_stream_id(self.session_id())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum LiveSessionAction {
    ScheduleLiveSession(ScheduleLiveSession),
    StartLiveSession(StartLiveSession),
    CompleteLiveSession(CompleteLiveSession),
    CancelLiveSession(CancelLiveSession),
    JoinLiveSession(JoinLiveSession),
}

/// `schedule-live-session` (instructors): a session at a future time.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleLiveSession {
    pub session_id: Uuid,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub scheduled_for: DateTime<Utc>,
    pub duration_minutes: u32,
    #[serde(default)]
    pub is_recorded: bool,
    /// At least 1.
    pub max_participants: u32,
}

/// `start-live-session` (its instructor): scheduled → live.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartLiveSession {
    pub session_id: Uuid,
}

/// `complete-live-session` (its instructor): live → completed, with the recording when the
/// session is recorded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteLiveSession {
    pub session_id: Uuid,
    #[serde(default)]
    pub recording_url: Option<String>,
}

/// `cancel-live-session` (its instructor or an admin): scheduled → cancelled.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelLiveSession {
    pub session_id: Uuid,
    pub reason: String,
}

/// `join-live-session` (a signed-in user): while scheduled or live, up to `maxParticipants`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinLiveSession {
    pub session_id: Uuid,
}

/// What happened to a live session. Each event names the session and, where it changes, the
/// new status.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LiveSessionEvent {
    #[serde(rename_all = "camelCase")]
    LiveSessionScheduled {
        session_id: Uuid,
        instructor_id: Uuid,
        title: String,
        description: String,
        scheduled_for: DateTime<Utc>,
        duration_minutes: u32,
        is_recorded: bool,
        max_participants: u32,
        /// Always `scheduled`.
        status: LiveSessionStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    LiveSessionStarted { session_id: Uuid, instructor_id: Uuid, status: LiveSessionStatus, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    LiveSessionCompleted {
        session_id: Uuid,
        instructor_id: Uuid,
        recording_url: Option<String>,
        status: LiveSessionStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    LiveSessionCancelled {
        session_id: Uuid,
        instructor_id: Uuid,
        reason: String,
        cancelled_by: Uuid,
        status: LiveSessionStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    ParticipantJoined {
        session_id: Uuid,
        user_id: Uuid,
        joined_at: DateTime<Utc>,
        /// Participants after this join.
        participant_count: u32,
    },
}

impl DomainEvent for LiveSessionEvent {}

/// Why a live-session command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LiveSessionError {
    #[error("only instructors may schedule live sessions")]
    OnlyInstructorsSchedule,
    #[error("only the session's instructor may do this")]
    NotTheInstructor,
    #[error("only a signed-in user may join a session")]
    SignInRequired,
    #[error("no such live session")]
    SessionNotFound,
    #[error("the live session is already scheduled")]
    SessionAlreadyScheduled,
    #[error("the session is {status}, not scheduled")]
    NotScheduled { status: LiveSessionStatus },
    #[error("the session is {status}, not live")]
    NotLive { status: LiveSessionStatus },
    #[error("the session is {status}: it can no longer be joined")]
    SessionClosed { status: LiveSessionStatus },
    #[error("the session is full ({max_participants} participants)")]
    SessionFull { max_participants: u32 },
    #[error("a title is required")]
    TitleRequired,
    #[error("a session lasts at least one minute")]
    DurationRequired,
    #[error("a session takes at least one participant")]
    MaxParticipantsRequired,
    #[error("a session must be scheduled in the future")]
    NotInTheFuture,
    #[error("a recorded session needs its recording URL to complete")]
    RecordingRequired,
    #[error("the recording URL must be an http:// or https:// address")]
    InvalidRecordingUrl,
    #[error("a reason for the cancellation is required")]
    ReasonRequired,
}

impl LiveSessionError {
    pub fn kind(&self) -> ErrorKind {
        use LiveSessionError::*;
        match self {
            OnlyInstructorsSchedule | NotTheInstructor | SignInRequired => ErrorKind::Forbidden,
            SessionNotFound => ErrorKind::NotFound,
            SessionAlreadyScheduled
            | NotScheduled { .. }
            | NotLive { .. }
            | SessionClosed { .. }
            | SessionFull { .. } => ErrorKind::Conflict,
            TitleRequired
            | DurationRequired
            | MaxParticipantsRequired
            | NotInTheFuture
            | RecordingRequired
            | InvalidRecordingUrl
            | ReasonRequired => ErrorKind::Invalid,
        }
    }
}

/// A live session as its events left it. Fields are private: only `evolve` writes them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSession {
    session_id: Option<Uuid>,
    instructor_id: Option<Uuid>,
    title: String,
    description: String,
    scheduled_for: Option<DateTime<Utc>>,
    duration_minutes: u32,
    is_recorded: bool,
    max_participants: u32,
    status: Option<LiveSessionStatus>,
    recording_url: Option<String>,
    cancellation_reason: Option<String>,
    /// Who joined, and when.
    participants: BTreeMap<Uuid, DateTime<Utc>>,
}

impl LiveSession {
    pub fn session_id(&self) -> Option<Uuid> {
        self.session_id
    }
    pub fn instructor_id(&self) -> Option<Uuid> {
        self.instructor_id
    }
    pub fn title(&self) -> &str {
        &self.title
    }
    pub fn description(&self) -> &str {
        &self.description
    }
    pub fn scheduled_for(&self) -> Option<DateTime<Utc>> {
        self.scheduled_for
    }
    pub fn duration_minutes(&self) -> u32 {
        self.duration_minutes
    }
    pub fn is_recorded(&self) -> bool {
        self.is_recorded
    }
    pub fn max_participants(&self) -> u32 {
        self.max_participants
    }
    /// The status, once scheduled.
    pub fn status(&self) -> Option<LiveSessionStatus> {
        self.status
    }
    pub fn recording_url(&self) -> Option<&str> {
        self.recording_url.as_deref()
    }
    pub fn cancellation_reason(&self) -> Option<&str> {
        self.cancellation_reason.as_deref()
    }
    pub fn participant_count(&self) -> u32 {
        u32::try_from(self.participants.len()).unwrap_or(u32::MAX)
    }
    pub fn has_joined(&self, user_id: Uuid) -> bool {
        self.participants.contains_key(&user_id)
    }
    pub fn participants(&self) -> impl Iterator<Item = (Uuid, DateTime<Utc>)> + '_ {
        self.participants.iter().map(|(id, at)| (*id, *at))
    }

    /// The session's status and instructor, once scheduled (and if it is the one named).
    fn existing(&self, session_id: Uuid) -> Result<(LiveSessionStatus, Uuid), LiveSessionError> {
        match (self.session_id, self.status, self.instructor_id) {
            (Some(id), Some(status), Some(instructor)) if id == session_id => Ok((status, instructor)),
            _ => Err(LiveSessionError::SessionNotFound),
        }
    }

    fn decide_schedule(
        &self,
        actor: &Actor,
        p: &ScheduleLiveSession,
        at: DateTime<Utc>,
    ) -> Result<Vec<LiveSessionEvent>, LiveSessionError> {
        if !actor.is_instructor {
            return Err(LiveSessionError::OnlyInstructorsSchedule);
        }
        if self.status.is_some() {
            return Err(LiveSessionError::SessionAlreadyScheduled);
        }
        let title = non_blank(&p.title).ok_or(LiveSessionError::TitleRequired)?;
        if p.duration_minutes == 0 {
            return Err(LiveSessionError::DurationRequired);
        }
        if p.max_participants == 0 {
            return Err(LiveSessionError::MaxParticipantsRequired);
        }
        if p.scheduled_for <= at {
            return Err(LiveSessionError::NotInTheFuture);
        }
        Ok(vec![LiveSessionEvent::LiveSessionScheduled {
            session_id: p.session_id,
            instructor_id: actor.id,
            title,
            description: p.description.trim().to_owned(),
            scheduled_for: p.scheduled_for,
            duration_minutes: p.duration_minutes,
            is_recorded: p.is_recorded,
            max_participants: p.max_participants,
            status: LiveSessionStatus::Scheduled,
            at,
        }])
    }

    fn decide_complete(
        &self,
        actor: &Actor,
        p: &CompleteLiveSession,
        at: DateTime<Utc>,
    ) -> Result<Vec<LiveSessionEvent>, LiveSessionError> {
        let (status, instructor_id) = self.existing(p.session_id)?;
        if actor.id != instructor_id {
            return Err(LiveSessionError::NotTheInstructor);
        }
        if status != LiveSessionStatus::Live {
            return Err(LiveSessionError::NotLive { status });
        }
        let recording_url = optional_text(&p.recording_url);
        match &recording_url {
            None if self.is_recorded => return Err(LiveSessionError::RecordingRequired),
            Some(url) if !is_http_url(url) => return Err(LiveSessionError::InvalidRecordingUrl),
            _ => {}
        }
        Ok(vec![LiveSessionEvent::LiveSessionCompleted {
            session_id: p.session_id,
            instructor_id,
            recording_url,
            status: LiveSessionStatus::Completed,
            at,
        }])
    }

    fn decide_join(
        &self,
        actor: &Actor,
        p: &JoinLiveSession,
        at: DateTime<Utc>,
    ) -> Result<Vec<LiveSessionEvent>, LiveSessionError> {
        if actor.system {
            return Err(LiveSessionError::SignInRequired);
        }
        let (status, _) = self.existing(p.session_id)?;
        if !matches!(status, LiveSessionStatus::Scheduled | LiveSessionStatus::Live) {
            return Err(LiveSessionError::SessionClosed { status });
        }
        if self.has_joined(actor.id) {
            return Ok(vec![]);
        }
        let count = self.participant_count();
        if count >= self.max_participants {
            return Err(LiveSessionError::SessionFull { max_participants: self.max_participants });
        }
        Ok(vec![LiveSessionEvent::ParticipantJoined {
            session_id: p.session_id,
            user_id: actor.id,
            joined_at: at,
            participant_count: count + 1,
        }])
    }
}

impl Aggregate for LiveSession {
    const STREAM_TYPE: &'static str = LIVE_SESSION_STREAM_TYPE;
    type Event = LiveSessionEvent;
    type Command = LiveSessionCommand;
    type Error = LiveSessionError;

    fn decide(&self, command: &LiveSessionCommand) -> Result<Vec<LiveSessionEvent>, LiveSessionError> {
        let LiveSessionCommand { actor, at, action } = command;
        let at = *at;
        match action {
            LiveSessionAction::ScheduleLiveSession(p) => self.decide_schedule(actor, p, at),
            LiveSessionAction::StartLiveSession(p) => {
                let (status, instructor_id) = self.existing(p.session_id)?;
                if actor.id != instructor_id {
                    return Err(LiveSessionError::NotTheInstructor);
                }
                if status != LiveSessionStatus::Scheduled {
                    return Err(LiveSessionError::NotScheduled { status });
                }
                Ok(vec![LiveSessionEvent::LiveSessionStarted {
                    session_id: p.session_id,
                    instructor_id,
                    status: LiveSessionStatus::Live,
                    at,
                }])
            }
            LiveSessionAction::CompleteLiveSession(p) => self.decide_complete(actor, p, at),
            LiveSessionAction::CancelLiveSession(p) => {
                let (status, instructor_id) = self.existing(p.session_id)?;
                if actor.id != instructor_id && !actor.is_admin {
                    return Err(LiveSessionError::NotTheInstructor);
                }
                if status != LiveSessionStatus::Scheduled {
                    return Err(LiveSessionError::NotScheduled { status });
                }
                let reason = non_blank(&p.reason).ok_or(LiveSessionError::ReasonRequired)?;
                Ok(vec![LiveSessionEvent::LiveSessionCancelled {
                    session_id: p.session_id,
                    instructor_id,
                    reason,
                    cancelled_by: actor.id,
                    status: LiveSessionStatus::Cancelled,
                    at,
                }])
            }
            LiveSessionAction::JoinLiveSession(p) => self.decide_join(actor, p, at),
        }
    }

    fn evolve(&mut self, event: &LiveSessionEvent) {
        match event {
            LiveSessionEvent::LiveSessionScheduled {
                session_id,
                instructor_id,
                title,
                description,
                scheduled_for,
                duration_minutes,
                is_recorded,
                max_participants,
                status,
                ..
            } => {
                self.session_id = Some(*session_id);
                self.instructor_id = Some(*instructor_id);
                self.title = title.clone();
                self.description = description.clone();
                self.scheduled_for = Some(*scheduled_for);
                self.duration_minutes = *duration_minutes;
                self.is_recorded = *is_recorded;
                self.max_participants = *max_participants;
                self.status = Some(*status);
            }
            LiveSessionEvent::LiveSessionStarted { status, .. } => self.status = Some(*status),
            LiveSessionEvent::LiveSessionCompleted { recording_url, status, .. } => {
                self.status = Some(*status);
                self.recording_url = recording_url.clone();
            }
            LiveSessionEvent::LiveSessionCancelled { reason, status, .. } => {
                self.status = Some(*status);
                self.cancellation_reason = Some(reason.clone());
            }
            LiveSessionEvent::ParticipantJoined { user_id, joined_at, .. } => {
                self.participants.insert(*user_id, *joined_at);
            }
        }
    }
}

// =============================================================================================
// Resources
// =============================================================================================

/// How demanding a resource is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Difficulty {
    Beginner,
    Intermediate,
    Advanced,
}

/// A command to a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: ResourceAction,
}

impl ResourceCommand {
    pub fn resource_id(&self) -> Uuid {
        match &self.action {
            ResourceAction::AddResource(p) => p.resource_id,
            ResourceAction::FeatureResource(p) => p.resource_id,
            ResourceAction::RecordResourceDownload(p) => p.resource_id,
        }
    }
    pub fn stream_id(&self) -> String {
        resource_stream_id(self.resource_id())
    }
}

// A command lives for one decision; boxing `AddResource` would only make it noisier to build.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceAction {
    AddResource(AddResource),
    FeatureResource(FeatureResource),
    RecordResourceDownload(RecordResourceDownload),
}

/// `add-resource` (instructors and admins).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddResource {
    pub resource_id: Uuid,
    pub title: String,
    pub description: String,
    /// e.g. `pdf`, `video`, `template`.
    pub resource_type: String,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// A file-storage or external address.
    pub url: String,
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    pub author: String,
    pub difficulty: Difficulty,
    #[serde(default)]
    pub duration: Option<String>,
    /// e.g. `2.5 MB`.
    #[serde(default)]
    pub file_size: Option<String>,
    /// The course the resource belongs to, if any.
    #[serde(default)]
    pub course_id: Option<Uuid>,
    /// Only students enrolled in `course_id` may download it.
    #[serde(default)]
    pub restricted: bool,
}

/// `feature-resource` (admins).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeatureResource {
    pub resource_id: Uuid,
    pub featured: bool,
}

/// `record-resource-download` (signed-in users). `enrolled_in_course` is looked up by the
/// handler (whether the actor is enrolled in the resource's course), never taken from a body.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordResourceDownload {
    pub resource_id: Uuid,
    /// Looked up by the handler, never read from the body (a body naming it is refused).
    #[serde(skip_deserializing)]
    pub enrolled_in_course: bool,
}

/// What happened to a resource.
// `ResourceAdded` carries the whole resource for its projector; events are decided and folded
// one at a time, so their size does not matter and boxed fields would only obscure the payload.
#[allow(clippy::large_enum_variant)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ResourceEvent {
    #[serde(rename_all = "camelCase")]
    ResourceAdded {
        resource_id: Uuid,
        title: String,
        description: String,
        resource_type: String,
        categories: Vec<String>,
        tags: Vec<String>,
        url: String,
        thumbnail_url: Option<String>,
        author: String,
        difficulty: Difficulty,
        duration: Option<String>,
        file_size: Option<String>,
        course_id: Option<Uuid>,
        restricted: bool,
        /// Always false: featuring is a separate admin decision.
        featured: bool,
        added_by: Uuid,
        /// The seed's `dateAdded`.
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    ResourceFeatured { resource_id: Uuid, featured: bool, by: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    ResourceDownloaded {
        resource_id: Uuid,
        user_id: Uuid,
        /// Downloads after this one.
        download_count: u64,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ResourceEvent {}

/// Why a resource command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    #[error("only instructors and admins may add resources")]
    OnlyInstructorsOrAdminsAdd,
    #[error("only admins may feature resources")]
    OnlyAdminsFeature,
    #[error("only a signed-in user may download a resource")]
    SignInRequired,
    #[error("this resource is for students enrolled in its course")]
    EnrolmentRequired,
    #[error("no such resource")]
    ResourceNotFound,
    #[error("the resource already exists")]
    ResourceAlreadyExists,
    #[error("a title is required")]
    TitleRequired,
    #[error("a description is required")]
    DescriptionRequired,
    #[error("a resource type is required")]
    TypeRequired,
    #[error("a URL is required")]
    UrlRequired,
    #[error("an author is required")]
    AuthorRequired,
    #[error("a restricted resource must belong to a course")]
    RestrictedWithoutCourse,
}

impl ResourceError {
    pub fn kind(&self) -> ErrorKind {
        use ResourceError::*;
        match self {
            OnlyInstructorsOrAdminsAdd | OnlyAdminsFeature | SignInRequired | EnrolmentRequired => ErrorKind::Forbidden,
            ResourceNotFound => ErrorKind::NotFound,
            ResourceAlreadyExists => ErrorKind::Conflict,
            TitleRequired
            | DescriptionRequired
            | TypeRequired
            | UrlRequired
            | AuthorRequired
            | RestrictedWithoutCourse => ErrorKind::Invalid,
        }
    }
}

/// A resource as its events left it (what its rules need).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    resource_id: Option<Uuid>,
    title: String,
    course_id: Option<Uuid>,
    restricted: bool,
    featured: bool,
    download_count: u64,
    added_by: Option<Uuid>,
}

impl Resource {
    pub fn resource_id(&self) -> Option<Uuid> {
        self.resource_id
    }
    pub fn title(&self) -> &str {
        &self.title
    }
    pub fn course_id(&self) -> Option<Uuid> {
        self.course_id
    }
    pub fn is_restricted(&self) -> bool {
        self.restricted
    }
    pub fn is_featured(&self) -> bool {
        self.featured
    }
    pub fn download_count(&self) -> u64 {
        self.download_count
    }
    pub fn added_by(&self) -> Option<Uuid> {
        self.added_by
    }

    fn existing(&self, resource_id: Uuid) -> Result<(), ResourceError> {
        match self.resource_id {
            Some(id) if id == resource_id => Ok(()),
            _ => Err(ResourceError::ResourceNotFound),
        }
    }

    fn decide_add(
        &self,
        actor: &Actor,
        p: &AddResource,
        at: DateTime<Utc>,
    ) -> Result<Vec<ResourceEvent>, ResourceError> {
        if !(actor.is_instructor || actor.is_admin) {
            return Err(ResourceError::OnlyInstructorsOrAdminsAdd);
        }
        if self.resource_id.is_some() {
            return Err(ResourceError::ResourceAlreadyExists);
        }
        let title = non_blank(&p.title).ok_or(ResourceError::TitleRequired)?;
        let description = non_blank(&p.description).ok_or(ResourceError::DescriptionRequired)?;
        let resource_type = non_blank(&p.resource_type).ok_or(ResourceError::TypeRequired)?;
        let url = non_blank(&p.url).ok_or(ResourceError::UrlRequired)?;
        let author = non_blank(&p.author).ok_or(ResourceError::AuthorRequired)?;
        if p.restricted && p.course_id.is_none() {
            return Err(ResourceError::RestrictedWithoutCourse);
        }
        Ok(vec![ResourceEvent::ResourceAdded {
            resource_id: p.resource_id,
            title,
            description,
            resource_type,
            categories: normalise_labels(&p.categories),
            tags: normalise_labels(&p.tags),
            url,
            thumbnail_url: optional_text(&p.thumbnail_url),
            author,
            difficulty: p.difficulty,
            duration: optional_text(&p.duration),
            file_size: optional_text(&p.file_size),
            course_id: p.course_id,
            restricted: p.restricted,
            featured: false,
            added_by: actor.id,
            at,
        }])
    }
}

/// Trimmed labels without blanks or case-insensitive duplicates, in the order given.
fn normalise_labels(labels: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    labels
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && seen.insert(s.to_lowercase()))
        .map(str::to_owned)
        .collect()
}

impl Aggregate for Resource {
    const STREAM_TYPE: &'static str = RESOURCE_STREAM_TYPE;
    type Event = ResourceEvent;
    type Command = ResourceCommand;
    type Error = ResourceError;

    fn decide(&self, command: &ResourceCommand) -> Result<Vec<ResourceEvent>, ResourceError> {
        let ResourceCommand { actor, at, action } = command;
        let at = *at;
        match action {
            ResourceAction::AddResource(p) => self.decide_add(actor, p, at),
            ResourceAction::FeatureResource(p) => {
                if !actor.is_admin {
                    return Err(ResourceError::OnlyAdminsFeature);
                }
                self.existing(p.resource_id)?;
                if self.featured == p.featured {
                    return Ok(vec![]);
                }
                Ok(vec![ResourceEvent::ResourceFeatured {
                    resource_id: p.resource_id,
                    featured: p.featured,
                    by: actor.id,
                    at,
                }])
            }
            ResourceAction::RecordResourceDownload(p) => {
                if actor.system {
                    return Err(ResourceError::SignInRequired);
                }
                self.existing(p.resource_id)?;
                // Admins and the resource's own author (the instructor who added it) need no
                // enrolment to get at it.
                let privileged = actor.is_admin || self.added_by == Some(actor.id);
                if self.restricted && !p.enrolled_in_course && !privileged {
                    return Err(ResourceError::EnrolmentRequired);
                }
                Ok(vec![ResourceEvent::ResourceDownloaded {
                    resource_id: p.resource_id,
                    user_id: actor.id,
                    download_count: self.download_count.saturating_add(1),
                    at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &ResourceEvent) {
        match event {
            ResourceEvent::ResourceAdded { resource_id, title, course_id, restricted, featured, added_by, .. } => {
                self.resource_id = Some(*resource_id);
                self.title = title.clone();
                self.course_id = *course_id;
                self.restricted = *restricted;
                self.featured = *featured;
                self.added_by = Some(*added_by);
            }
            ResourceEvent::ResourceFeatured { featured, .. } => self.featured = *featured,
            ResourceEvent::ResourceDownloaded { download_count, .. } => self.download_count = *download_count,
        }
    }
}

// =============================================================================================
// Favorites
// =============================================================================================

/// A command to a user's favorite of a resource. The user is always the actor.
#[derive(Debug, Clone, PartialEq)]
pub struct FavoriteCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: FavoriteAction,
}

impl FavoriteCommand {
    pub fn resource_id(&self) -> Uuid {
        match &self.action {
            FavoriteAction::ToggleFavorite(p) => p.resource_id,
        }
    }
    pub fn stream_id(&self) -> String {
        favorite_stream_id(self.actor.id, self.resource_id())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FavoriteAction {
    ToggleFavorite(ToggleFavorite),
}

/// `toggle-favorite` (signed-in users): adds the favorite, or removes it if it is there.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToggleFavorite {
    pub resource_id: Uuid,
}

/// What happened to a favorite.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FavoriteEvent {
    #[serde(rename_all = "camelCase")]
    FavoriteAdded { user_id: Uuid, resource_id: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    FavoriteRemoved { user_id: Uuid, resource_id: Uuid, at: DateTime<Utc> },
}

impl DomainEvent for FavoriteEvent {}

/// Why a favorite command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FavoriteError {
    #[error("only a signed-in user may keep favorites")]
    SignInRequired,
    #[error("this favorite is another user's")]
    NotYourFavorite,
}

impl FavoriteError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            FavoriteError::SignInRequired | FavoriteError::NotYourFavorite => ErrorKind::Forbidden,
        }
    }
}

/// One user's favorite of one resource.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Favorite {
    user_id: Option<Uuid>,
    resource_id: Option<Uuid>,
    favorited: bool,
    /// When it was last added.
    since: Option<DateTime<Utc>>,
}

impl Favorite {
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    pub fn resource_id(&self) -> Option<Uuid> {
        self.resource_id
    }
    pub fn is_favorite(&self) -> bool {
        self.favorited
    }
    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.favorited.then_some(self.since).flatten()
    }
}

impl Aggregate for Favorite {
    const STREAM_TYPE: &'static str = FAVORITE_STREAM_TYPE;
    type Event = FavoriteEvent;
    type Command = FavoriteCommand;
    type Error = FavoriteError;

    fn decide(&self, command: &FavoriteCommand) -> Result<Vec<FavoriteEvent>, FavoriteError> {
        let FavoriteCommand { actor, at, action } = command;
        let FavoriteAction::ToggleFavorite(p) = action;
        if actor.system {
            return Err(FavoriteError::SignInRequired);
        }
        // The stream is the actor's own for this resource; anything else is a routing mistake.
        if self.user_id.is_some_and(|id| id != actor.id) || self.resource_id.is_some_and(|id| id != p.resource_id) {
            return Err(FavoriteError::NotYourFavorite);
        }
        let (user_id, resource_id, at) = (actor.id, p.resource_id, *at);
        Ok(vec![if self.favorited {
            FavoriteEvent::FavoriteRemoved { user_id, resource_id, at }
        } else {
            FavoriteEvent::FavoriteAdded { user_id, resource_id, at }
        }])
    }

    fn evolve(&mut self, event: &FavoriteEvent) {
        match event {
            FavoriteEvent::FavoriteAdded { user_id, resource_id, at } => {
                self.user_id = Some(*user_id);
                self.resource_id = Some(*resource_id);
                self.favorited = true;
                self.since = Some(*at);
            }
            FavoriteEvent::FavoriteRemoved { user_id, resource_id, .. } => {
                self.user_id = Some(*user_id);
                self.resource_id = Some(*resource_id);
                self.favorited = false;
                self.since = None;
            }
        }
    }
}

// =============================================================================================
// Notifications
// =============================================================================================

/// The kinds of notification the platform sends.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationType {
    CourseUpdate,
    Message,
    Announcement,
    Community,
    LiveSession,
    Certificate,
    Milestone,
}

/// A command to a notification.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: NotificationAction,
}

impl NotificationCommand {
    pub fn notification_id(&self) -> Uuid {
        match &self.action {
            NotificationAction::NotifyUser(p) => p.notification_id,
            NotificationAction::MarkNotificationRead(p) => p.notification_id,
        }
    }
    pub fn stream_id(&self) -> String {
        notification_stream_id(self.notification_id())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotificationAction {
    NotifyUser(NotifyUser),
    MarkNotificationRead(MarkNotificationRead),
}

/// `notify-user` (the system or an admin).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyUser {
    pub notification_id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub notification_type: NotificationType,
    /// Where a click on the notification leads.
    #[serde(default)]
    pub link: Option<String>,
    /// Free-form context.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// `mark-notification-read` (the notification's owner).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarkNotificationRead {
    pub notification_id: Uuid,
}

/// What happened to a notification.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum NotificationEvent {
    #[serde(rename_all = "camelCase")]
    NotificationCreated {
        notification_id: Uuid,
        user_id: Uuid,
        title: String,
        description: String,
        notification_type: NotificationType,
        /// Always false.
        read: bool,
        link: Option<String>,
        metadata: Option<serde_json::Value>,
        created_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    NotificationRead { notification_id: Uuid, user_id: Uuid, at: DateTime<Utc> },
}

impl DomainEvent for NotificationEvent {}

/// Why a notification command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotificationError {
    #[error("only the system or an admin may notify users")]
    OnlySystemOrAdminsNotify,
    #[error("only its recipient may mark a notification read")]
    NotYourNotification,
    #[error("no such notification")]
    NotificationNotFound,
    #[error("the notification already exists")]
    NotificationAlreadyExists,
    #[error("a title is required")]
    TitleRequired,
}

impl NotificationError {
    pub fn kind(&self) -> ErrorKind {
        use NotificationError::*;
        match self {
            OnlySystemOrAdminsNotify | NotYourNotification => ErrorKind::Forbidden,
            NotificationNotFound => ErrorKind::NotFound,
            NotificationAlreadyExists => ErrorKind::Conflict,
            TitleRequired => ErrorKind::Invalid,
        }
    }
}

/// A notification as its events left it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    notification_id: Option<Uuid>,
    user_id: Option<Uuid>,
    notification_type: Option<NotificationType>,
    read: bool,
    created_at: Option<DateTime<Utc>>,
    read_at: Option<DateTime<Utc>>,
}

impl Notification {
    pub fn notification_id(&self) -> Option<Uuid> {
        self.notification_id
    }
    /// The recipient.
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    pub fn notification_type(&self) -> Option<NotificationType> {
        self.notification_type
    }
    pub fn is_read(&self) -> bool {
        self.read
    }
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }
    pub fn read_at(&self) -> Option<DateTime<Utc>> {
        self.read_at
    }
}

impl Aggregate for Notification {
    const STREAM_TYPE: &'static str = NOTIFICATION_STREAM_TYPE;
    type Event = NotificationEvent;
    type Command = NotificationCommand;
    type Error = NotificationError;

    fn decide(&self, command: &NotificationCommand) -> Result<Vec<NotificationEvent>, NotificationError> {
        let NotificationCommand { actor, at, action } = command;
        let at = *at;
        match action {
            NotificationAction::NotifyUser(p) => {
                if !(actor.system || actor.is_admin) {
                    return Err(NotificationError::OnlySystemOrAdminsNotify);
                }
                if self.notification_id.is_some() {
                    return Err(NotificationError::NotificationAlreadyExists);
                }
                let title = non_blank(&p.title).ok_or(NotificationError::TitleRequired)?;
                Ok(vec![NotificationEvent::NotificationCreated {
                    notification_id: p.notification_id,
                    user_id: p.user_id,
                    title,
                    description: p.description.trim().to_owned(),
                    notification_type: p.notification_type,
                    read: false,
                    link: optional_text(&p.link),
                    metadata: p.metadata.clone().filter(|m| !m.is_null()),
                    created_by: actor.id,
                    at,
                }])
            }
            NotificationAction::MarkNotificationRead(p) => {
                let (Some(id), Some(user_id)) = (self.notification_id, self.user_id) else {
                    return Err(NotificationError::NotificationNotFound);
                };
                if id != p.notification_id {
                    return Err(NotificationError::NotificationNotFound);
                }
                if actor.id != user_id || actor.system {
                    return Err(NotificationError::NotYourNotification);
                }
                if self.read {
                    return Ok(vec![]);
                }
                Ok(vec![NotificationEvent::NotificationRead { notification_id: id, user_id, at }])
            }
        }
    }

    fn evolve(&mut self, event: &NotificationEvent) {
        match event {
            NotificationEvent::NotificationCreated {
                notification_id, user_id, notification_type, read, at, ..
            } => {
                self.notification_id = Some(*notification_id);
                self.user_id = Some(*user_id);
                self.notification_type = Some(*notification_type);
                self.read = *read;
                self.created_at = Some(*at);
            }
            NotificationEvent::NotificationRead { at, .. } => {
                self.read = true;
                self.read_at = Some(*at);
            }
        }
    }
}

// =============================================================================================
// Tests
// =============================================================================================

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{encode_event, TestHarness};
    use chrono::TimeZone;

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap() + chrono::Duration::minutes(i64::from(minute))
    }
    fn instructor_id() -> Uuid {
        Uuid::from_u128(0x1A)
    }
    fn admin_id() -> Uuid {
        Uuid::from_u128(0xAD)
    }
    fn user_id(n: u128) -> Uuid {
        Uuid::from_u128(0x5000 + n)
    }
    fn instructor() -> Actor {
        Actor { id: instructor_id(), is_instructor: true, is_admin: false, system: false }
    }
    fn admin() -> Actor {
        Actor { id: admin_id(), is_instructor: false, is_admin: true, system: false }
    }
    fn student(n: u128) -> Actor {
        Actor { id: user_id(n), is_instructor: false, is_admin: false, system: false }
    }

    mod live_sessions {
        use super::*;

        fn session_id() -> Uuid {
            Uuid::from_u128(0x5E55)
        }
        fn cmd(actor: Actor, minute: u32, action: LiveSessionAction) -> LiveSessionCommand {
            LiveSessionCommand { actor, at: t(minute), action }
        }
        fn schedule(max_participants: u32) -> ScheduleLiveSession {
            ScheduleLiveSession {
                session_id: session_id(),
                title: " Filler techniques Q&A ".into(),
                description: "Live questions".into(),
                scheduled_for: t(60),
                duration_minutes: 45,
                is_recorded: true,
                max_participants,
            }
        }
        fn scheduled(max_participants: u32) -> LiveSessionEvent {
            LiveSessionEvent::LiveSessionScheduled {
                session_id: session_id(),
                instructor_id: instructor_id(),
                title: "Filler techniques Q&A".into(),
                description: "Live questions".into(),
                scheduled_for: t(60),
                duration_minutes: 45,
                is_recorded: true,
                max_participants,
                status: LiveSessionStatus::Scheduled,
                at: t(0),
            }
        }
        fn started() -> LiveSessionEvent {
            LiveSessionEvent::LiveSessionStarted {
                session_id: session_id(),
                instructor_id: instructor_id(),
                status: LiveSessionStatus::Live,
                at: t(60),
            }
        }
        fn joined(n: u128, count: u32) -> LiveSessionEvent {
            LiveSessionEvent::ParticipantJoined {
                session_id: session_id(),
                user_id: user_id(n),
                joined_at: t(10),
                participant_count: count,
            }
        }
        fn join() -> LiveSessionAction {
            LiveSessionAction::JoinLiveSession(JoinLiveSession { session_id: session_id() })
        }
        fn start() -> LiveSessionAction {
            LiveSessionAction::StartLiveSession(StartLiveSession { session_id: session_id() })
        }
        fn complete_with(recording_url: Option<&str>) -> LiveSessionAction {
            LiveSessionAction::CompleteLiveSession(CompleteLiveSession {
                session_id: session_id(),
                recording_url: recording_url.map(str::to_owned),
            })
        }
        fn cancel(reason: &str) -> LiveSessionAction {
            LiveSessionAction::CancelLiveSession(CancelLiveSession { session_id: session_id(), reason: reason.into() })
        }

        #[test]
        fn it_should_schedule_a_live_session_in_the_future() {
            TestHarness::<LiveSession>::given([])
                .when(cmd(instructor(), 0, LiveSessionAction::ScheduleLiveSession(schedule(2))))
                .then([scheduled(2)]);
        }

        #[test]
        fn it_should_let_only_instructors_schedule_a_session() {
            TestHarness::<LiveSession>::given([])
                .when(cmd(student(1), 0, LiveSessionAction::ScheduleLiveSession(schedule(2))))
                .then_error(LiveSessionError::OnlyInstructorsSchedule);
        }

        #[test]
        fn it_should_refuse_a_session_scheduled_in_the_past() {
            TestHarness::<LiveSession>::given([])
                .when(cmd(instructor(), 60, LiveSessionAction::ScheduleLiveSession(schedule(2))))
                .then_error(LiveSessionError::NotInTheFuture);
        }

        #[test]
        fn it_should_refuse_a_session_without_room_for_a_participant() {
            TestHarness::<LiveSession>::given([])
                .when(cmd(instructor(), 0, LiveSessionAction::ScheduleLiveSession(schedule(0))))
                .then_error(LiveSessionError::MaxParticipantsRequired);
        }

        #[test]
        fn it_should_refuse_a_session_without_a_duration() {
            let mut p = schedule(2);
            p.duration_minutes = 0;
            TestHarness::<LiveSession>::given([])
                .when(cmd(instructor(), 0, LiveSessionAction::ScheduleLiveSession(p)))
                .then_error(LiveSessionError::DurationRequired);
        }

        #[test]
        fn it_should_refuse_a_session_without_a_title() {
            let mut p = schedule(2);
            p.title = "  ".into();
            TestHarness::<LiveSession>::given([])
                .when(cmd(instructor(), 0, LiveSessionAction::ScheduleLiveSession(p)))
                .then_error(LiveSessionError::TitleRequired);
        }

        #[test]
        fn it_should_not_schedule_a_session_twice() {
            TestHarness::<LiveSession>::given([scheduled(2)])
                .when(cmd(instructor(), 0, LiveSessionAction::ScheduleLiveSession(schedule(2))))
                .then_error(LiveSessionError::SessionAlreadyScheduled);
        }

        #[test]
        fn it_should_let_its_instructor_start_a_scheduled_session() {
            TestHarness::<LiveSession>::given([scheduled(2)]).when(cmd(instructor(), 60, start())).then([started()]);
        }

        #[test]
        fn it_should_not_let_another_user_start_the_session() {
            let other_instructor = Actor { id: Uuid::from_u128(0x1B), ..instructor() };
            TestHarness::<LiveSession>::given([scheduled(2)])
                .when(cmd(other_instructor, 60, start()))
                .then_error(LiveSessionError::NotTheInstructor);
        }

        #[test]
        fn it_should_not_start_a_session_that_is_already_live() {
            TestHarness::<LiveSession>::given([scheduled(2), started()])
                .when(cmd(instructor(), 61, start()))
                .then_error(LiveSessionError::NotScheduled { status: LiveSessionStatus::Live });
        }

        #[test]
        fn it_should_not_start_an_unknown_session() {
            TestHarness::<LiveSession>::given([])
                .when(cmd(instructor(), 60, start()))
                .then_error(LiveSessionError::SessionNotFound);
        }

        #[test]
        fn it_should_complete_a_live_session_with_its_recording() {
            TestHarness::<LiveSession>::given([scheduled(2), started()])
                .when(cmd(instructor(), 105, complete_with(Some("https://cdn.example.com/rec.mp4"))))
                .then([LiveSessionEvent::LiveSessionCompleted {
                    session_id: session_id(),
                    instructor_id: instructor_id(),
                    recording_url: Some("https://cdn.example.com/rec.mp4".into()),
                    status: LiveSessionStatus::Completed,
                    at: t(105),
                }]);
        }

        #[test]
        fn it_should_require_the_recording_of_a_recorded_session() {
            TestHarness::<LiveSession>::given([scheduled(2), started()])
                .when(cmd(instructor(), 105, complete_with(Some(" "))))
                .then_error(LiveSessionError::RecordingRequired);
        }

        #[test]
        fn it_should_refuse_a_recording_url_that_is_not_http() {
            TestHarness::<LiveSession>::given([scheduled(2), started()])
                .when(cmd(instructor(), 105, complete_with(Some("ftp://rec"))))
                .then_error(LiveSessionError::InvalidRecordingUrl);
        }

        #[test]
        fn it_should_not_complete_a_session_that_never_went_live() {
            TestHarness::<LiveSession>::given([scheduled(2)])
                .when(cmd(instructor(), 105, complete_with(Some("https://cdn.example.com/rec.mp4"))))
                .then_error(LiveSessionError::NotLive { status: LiveSessionStatus::Scheduled });
        }

        #[test]
        fn it_should_cancel_a_scheduled_session_with_a_reason() {
            TestHarness::<LiveSession>::given([scheduled(2)]).when(cmd(instructor(), 5, cancel(" Ill "))).then([
                LiveSessionEvent::LiveSessionCancelled {
                    session_id: session_id(),
                    instructor_id: instructor_id(),
                    reason: "Ill".into(),
                    cancelled_by: instructor_id(),
                    status: LiveSessionStatus::Cancelled,
                    at: t(5),
                },
            ]);
        }

        #[test]
        fn it_should_let_an_admin_cancel_a_session() {
            let events = TestHarness::<LiveSession>::given([scheduled(2)])
                .when(cmd(admin(), 5, cancel("Policy")))
                .events()
                .unwrap();
            assert!(matches!(
                events.as_slice(),
                [LiveSessionEvent::LiveSessionCancelled { cancelled_by, .. }] if *cancelled_by == admin_id()
            ));
        }

        #[test]
        fn it_should_not_cancel_a_live_session() {
            TestHarness::<LiveSession>::given([scheduled(2), started()])
                .when(cmd(instructor(), 61, cancel("Ill")))
                .then_error(LiveSessionError::NotScheduled { status: LiveSessionStatus::Live });
        }

        #[test]
        fn it_should_not_cancel_a_session_without_a_reason() {
            TestHarness::<LiveSession>::given([scheduled(2)])
                .when(cmd(instructor(), 5, cancel("")))
                .then_error(LiveSessionError::ReasonRequired);
        }

        #[test]
        fn it_should_not_let_a_student_cancel_a_session() {
            TestHarness::<LiveSession>::given([scheduled(2)])
                .when(cmd(student(1), 5, cancel("No")))
                .then_error(LiveSessionError::NotTheInstructor);
        }

        #[test]
        fn it_should_let_a_user_join_and_count_the_participants() {
            TestHarness::<LiveSession>::given([scheduled(2), joined(1, 1)])
                .when(cmd(student(2), 10, join()))
                .then([joined(2, 2)]);
        }

        #[test]
        fn it_should_let_a_user_join_a_live_session() {
            TestHarness::<LiveSession>::given([scheduled(2), started()])
                .when(cmd(student(1), 10, join()))
                .then([joined(1, 1)]);
        }

        #[test]
        fn it_should_ignore_a_second_join_by_the_same_user() {
            TestHarness::<LiveSession>::given([scheduled(1), joined(1, 1)]).when(cmd(student(1), 11, join())).then([]);
        }

        #[test]
        fn it_should_refuse_a_join_when_the_session_is_full() {
            TestHarness::<LiveSession>::given([scheduled(2), joined(1, 1), joined(2, 2)])
                .when(cmd(student(3), 12, join()))
                .then_error(LiveSessionError::SessionFull { max_participants: 2 });
        }

        #[test]
        fn it_should_refuse_a_join_to_a_cancelled_session() {
            let cancelled = LiveSessionEvent::LiveSessionCancelled {
                session_id: session_id(),
                instructor_id: instructor_id(),
                reason: "Ill".into(),
                cancelled_by: instructor_id(),
                status: LiveSessionStatus::Cancelled,
                at: t(5),
            };
            TestHarness::<LiveSession>::given([scheduled(2), cancelled])
                .when(cmd(student(1), 12, join()))
                .then_error(LiveSessionError::SessionClosed { status: LiveSessionStatus::Cancelled });
        }

        #[test]
        fn it_should_not_let_the_system_join_a_session() {
            TestHarness::<LiveSession>::given([scheduled(2)])
                .when(cmd(Actor::system(), 12, join()))
                .then_error(LiveSessionError::SignInRequired);
        }

        #[test]
        fn it_should_snapshot_the_participants_and_route_to_the_session_stream() {
            let state = LiveSession::fold(&[scheduled(2), joined(1, 1)]);
            assert_eq!(state.participant_count(), 1);
            assert!(state.has_joined(user_id(1)));
            let snapshot = serde_json::to_value(&state).unwrap();
            assert_eq!(serde_json::from_value::<LiveSession>(snapshot).unwrap(), state);
            assert_eq!(cmd(student(1), 0, join()).stream_id(), format!("lms-live-{}", session_id()));
            let (event_type, payload) = encode_event(&joined(1, 1)).unwrap();
            assert_eq!(event_type, "participant-joined");
            assert_eq!(payload["participantCount"], 1);
        }
    }

    mod resources {
        use super::*;

        fn resource_id() -> Uuid {
            Uuid::from_u128(0x2E5)
        }
        fn course_id() -> Uuid {
            Uuid::from_u128(0xC0)
        }
        fn cmd(actor: Actor, minute: u32, action: ResourceAction) -> ResourceCommand {
            ResourceCommand { actor, at: t(minute), action }
        }
        fn add(restricted: bool) -> AddResource {
            AddResource {
                resource_id: resource_id(),
                title: "Facial anatomy chart".into(),
                description: "A printable chart".into(),
                resource_type: "pdf".into(),
                categories: vec!["anatomy".into(), " Anatomy ".into(), "".into()],
                tags: vec!["chart".into()],
                url: "https://files.example.com/chart.pdf".into(),
                thumbnail_url: None,
                author: "Jane Instructor".into(),
                difficulty: Difficulty::Beginner,
                duration: None,
                file_size: Some("2.5 MB".into()),
                course_id: Some(course_id()),
                restricted,
            }
        }
        fn added(restricted: bool) -> ResourceEvent {
            ResourceEvent::ResourceAdded {
                resource_id: resource_id(),
                title: "Facial anatomy chart".into(),
                description: "A printable chart".into(),
                resource_type: "pdf".into(),
                categories: vec!["anatomy".into()],
                tags: vec!["chart".into()],
                url: "https://files.example.com/chart.pdf".into(),
                thumbnail_url: None,
                author: "Jane Instructor".into(),
                difficulty: Difficulty::Beginner,
                duration: None,
                file_size: Some("2.5 MB".into()),
                course_id: Some(course_id()),
                restricted,
                featured: false,
                added_by: instructor_id(),
                at: t(0),
            }
        }
        fn download(enrolled_in_course: bool) -> ResourceAction {
            ResourceAction::RecordResourceDownload(RecordResourceDownload {
                resource_id: resource_id(),
                enrolled_in_course,
            })
        }
        fn downloaded(n: u128, count: u64) -> ResourceEvent {
            ResourceEvent::ResourceDownloaded {
                resource_id: resource_id(),
                user_id: user_id(n),
                download_count: count,
                at: t(5),
            }
        }
        fn feature(featured: bool) -> ResourceAction {
            ResourceAction::FeatureResource(FeatureResource { resource_id: resource_id(), featured })
        }

        #[test]
        fn it_should_let_an_instructor_add_a_resource() {
            TestHarness::<Resource>::given([])
                .when(cmd(instructor(), 0, ResourceAction::AddResource(add(true))))
                .then([added(true)]);
        }

        #[test]
        fn it_should_not_let_a_student_add_a_resource() {
            TestHarness::<Resource>::given([])
                .when(cmd(student(1), 0, ResourceAction::AddResource(add(false))))
                .then_error(ResourceError::OnlyInstructorsOrAdminsAdd);
        }

        #[test]
        fn it_should_not_add_a_resource_twice() {
            TestHarness::<Resource>::given([added(false)])
                .when(cmd(admin(), 0, ResourceAction::AddResource(add(false))))
                .then_error(ResourceError::ResourceAlreadyExists);
        }

        #[test]
        fn it_should_require_a_title_for_a_resource() {
            let mut p = add(false);
            p.title = " ".into();
            TestHarness::<Resource>::given([])
                .when(cmd(instructor(), 0, ResourceAction::AddResource(p)))
                .then_error(ResourceError::TitleRequired);
        }

        #[test]
        fn it_should_not_restrict_a_resource_that_belongs_to_no_course() {
            let mut p = add(true);
            p.course_id = None;
            TestHarness::<Resource>::given([])
                .when(cmd(instructor(), 0, ResourceAction::AddResource(p)))
                .then_error(ResourceError::RestrictedWithoutCourse);
        }

        #[test]
        fn it_should_let_an_admin_feature_a_resource() {
            TestHarness::<Resource>::given([added(false)]).when(cmd(admin(), 3, feature(true))).then([
                ResourceEvent::ResourceFeatured {
                    resource_id: resource_id(),
                    featured: true,
                    by: admin_id(),
                    at: t(3),
                },
            ]);
        }

        #[test]
        fn it_should_let_only_admins_feature_a_resource() {
            TestHarness::<Resource>::given([added(false)])
                .when(cmd(instructor(), 3, feature(true)))
                .then_error(ResourceError::OnlyAdminsFeature);
        }

        #[test]
        fn it_should_change_nothing_when_featuring_a_featured_resource_again() {
            let featured = ResourceEvent::ResourceFeatured {
                resource_id: resource_id(),
                featured: true,
                by: admin_id(),
                at: t(3),
            };
            TestHarness::<Resource>::given([added(false), featured]).when(cmd(admin(), 4, feature(true))).then([]);
        }

        #[test]
        fn it_should_not_feature_an_unknown_resource() {
            TestHarness::<Resource>::given([])
                .when(cmd(admin(), 3, feature(true)))
                .then_error(ResourceError::ResourceNotFound);
        }

        #[test]
        fn it_should_count_the_downloads_of_an_open_resource() {
            TestHarness::<Resource>::given([added(false), downloaded(1, 1)])
                .when(cmd(student(2), 5, download(false)))
                .then([downloaded(2, 2)]);
        }

        #[test]
        fn it_should_let_an_enrolled_student_download_a_restricted_resource() {
            TestHarness::<Resource>::given([added(true)])
                .when(cmd(student(1), 5, download(true)))
                .then([downloaded(1, 1)]);
        }

        #[test]
        fn it_should_refuse_a_restricted_download_without_an_enrolment() {
            TestHarness::<Resource>::given([added(true)])
                .when(cmd(student(1), 5, download(false)))
                .then_error(ResourceError::EnrolmentRequired);
        }

        #[test]
        fn it_should_let_the_author_of_a_restricted_resource_download_it() {
            let events = TestHarness::<Resource>::given([added(true)])
                .when(cmd(instructor(), 5, download(false)))
                .events()
                .unwrap();
            assert!(matches!(events.as_slice(), [ResourceEvent::ResourceDownloaded { download_count: 1, .. }]));
        }

        #[test]
        fn it_should_not_download_an_unknown_resource() {
            TestHarness::<Resource>::given([])
                .when(cmd(student(1), 5, download(true)))
                .then_error(ResourceError::ResourceNotFound);
        }
    }

    mod favorites {
        use super::*;

        fn resource_id() -> Uuid {
            Uuid::from_u128(0x2E5)
        }
        fn toggle(actor: Actor, minute: u32) -> FavoriteCommand {
            FavoriteCommand {
                actor,
                at: t(minute),
                action: FavoriteAction::ToggleFavorite(ToggleFavorite { resource_id: resource_id() }),
            }
        }
        fn added() -> FavoriteEvent {
            FavoriteEvent::FavoriteAdded { user_id: user_id(1), resource_id: resource_id(), at: t(1) }
        }
        fn removed() -> FavoriteEvent {
            FavoriteEvent::FavoriteRemoved { user_id: user_id(1), resource_id: resource_id(), at: t(2) }
        }

        #[test]
        fn it_should_add_a_favorite_on_the_first_toggle() {
            TestHarness::<Favorite>::given([]).when(toggle(student(1), 1)).then([added()]);
        }

        #[test]
        fn it_should_remove_the_favorite_on_the_second_toggle() {
            TestHarness::<Favorite>::given([added()]).when(toggle(student(1), 2)).then([removed()]);
        }

        #[test]
        fn it_should_add_the_favorite_again_on_the_third_toggle() {
            TestHarness::<Favorite>::given([added(), removed()])
                .when(toggle(student(1), 3))
                .then([FavoriteEvent::FavoriteAdded { user_id: user_id(1), resource_id: resource_id(), at: t(3) }]);
        }

        #[test]
        fn it_should_not_toggle_another_users_favorite() {
            TestHarness::<Favorite>::given([added()])
                .when(toggle(student(2), 2))
                .then_error(FavoriteError::NotYourFavorite);
        }

        #[test]
        fn it_should_not_let_the_system_keep_favorites() {
            TestHarness::<Favorite>::given([])
                .when(toggle(Actor::system(), 1))
                .then_error(FavoriteError::SignInRequired);
        }

        #[test]
        fn it_should_keep_one_favorite_stream_per_user_and_resource() {
            assert_eq!(toggle(student(1), 1).stream_id(), format!("lms-favorite-{}-{}", user_id(1), resource_id()));
        }
    }

    mod notifications {
        use super::*;

        fn notification_id() -> Uuid {
            Uuid::from_u128(0x0071)
        }
        fn cmd(actor: Actor, minute: u32, action: NotificationAction) -> NotificationCommand {
            NotificationCommand { actor, at: t(minute), action }
        }
        fn notify() -> NotifyUser {
            NotifyUser {
                notification_id: notification_id(),
                user_id: user_id(1),
                title: "Certificate ready".into(),
                description: "Your certificate for Botox 101 is ready".into(),
                notification_type: NotificationType::Certificate,
                link: Some("/certificates/DOC-7K2M".into()),
                metadata: Some(serde_json::json!({ "courseId": "c0" })),
            }
        }
        fn created() -> NotificationEvent {
            NotificationEvent::NotificationCreated {
                notification_id: notification_id(),
                user_id: user_id(1),
                title: "Certificate ready".into(),
                description: "Your certificate for Botox 101 is ready".into(),
                notification_type: NotificationType::Certificate,
                read: false,
                link: Some("/certificates/DOC-7K2M".into()),
                metadata: Some(serde_json::json!({ "courseId": "c0" })),
                created_by: Uuid::nil(),
                at: t(0),
            }
        }
        fn mark_read() -> NotificationAction {
            NotificationAction::MarkNotificationRead(MarkNotificationRead { notification_id: notification_id() })
        }
        fn read() -> NotificationEvent {
            NotificationEvent::NotificationRead { notification_id: notification_id(), user_id: user_id(1), at: t(4) }
        }

        #[test]
        fn it_should_let_the_system_notify_a_user() {
            TestHarness::<Notification>::given([])
                .when(cmd(Actor::system(), 0, NotificationAction::NotifyUser(notify())))
                .then([created()]);
        }

        #[test]
        fn it_should_let_an_admin_notify_a_user() {
            let events = TestHarness::<Notification>::given([])
                .when(cmd(admin(), 0, NotificationAction::NotifyUser(notify())))
                .events()
                .unwrap();
            assert!(matches!(
                events.as_slice(),
                [NotificationEvent::NotificationCreated { created_by, read: false, .. }] if *created_by == admin_id()
            ));
        }

        #[test]
        fn it_should_not_let_a_student_notify_a_user() {
            TestHarness::<Notification>::given([])
                .when(cmd(student(2), 0, NotificationAction::NotifyUser(notify())))
                .then_error(NotificationError::OnlySystemOrAdminsNotify);
        }

        #[test]
        fn it_should_require_a_title_for_a_notification() {
            let mut p = notify();
            p.title = "".into();
            TestHarness::<Notification>::given([])
                .when(cmd(Actor::system(), 0, NotificationAction::NotifyUser(p)))
                .then_error(NotificationError::TitleRequired);
        }

        #[test]
        fn it_should_not_create_a_notification_twice() {
            TestHarness::<Notification>::given([created()])
                .when(cmd(Actor::system(), 1, NotificationAction::NotifyUser(notify())))
                .then_error(NotificationError::NotificationAlreadyExists);
        }

        #[test]
        fn it_should_let_its_owner_mark_a_notification_read() {
            TestHarness::<Notification>::given([created()]).when(cmd(student(1), 4, mark_read())).then([read()]);
        }

        #[test]
        fn it_should_change_nothing_when_a_read_notification_is_marked_read_again() {
            TestHarness::<Notification>::given([created(), read()]).when(cmd(student(1), 5, mark_read())).then([]);
        }

        #[test]
        fn it_should_not_let_another_user_mark_a_notification_read() {
            TestHarness::<Notification>::given([created()])
                .when(cmd(student(2), 4, mark_read()))
                .then_error(NotificationError::NotYourNotification);
        }

        #[test]
        fn it_should_not_mark_an_unknown_notification_read() {
            TestHarness::<Notification>::given([])
                .when(cmd(student(1), 4, mark_read()))
                .then_error(NotificationError::NotificationNotFound);
        }

        #[test]
        fn it_should_store_the_notification_type_in_snake_case() {
            let (event_type, payload) = encode_event(&created()).unwrap();
            assert_eq!(event_type, "notification-created");
            assert_eq!(payload["notificationType"], "certificate");
            assert_eq!(payload["metadata"]["courseId"], "c0");
        }
    }

    #[test]
    fn it_should_never_take_the_enrolment_of_a_download_from_the_body() {
        let body = serde_json::json!({ "resourceId": Uuid::from_u128(1), "enrolledInCourse": true });
        assert!(
            serde_json::from_value::<RecordResourceDownload>(body).is_err(),
            "the client cannot claim an enrolment"
        );
        let p: RecordResourceDownload =
            serde_json::from_value(serde_json::json!({ "resourceId": Uuid::from_u128(1) })).unwrap();
        assert!(!p.enrolled_in_course);
    }
}
