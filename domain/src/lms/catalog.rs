//! The course catalogue: instructor vetting (`InstructorApplication`, stream
//! `lms-application-{applicationId}`) and courses (`Course`, stream `lms-course-{courseId}`).
//!
//! A user applies to teach with their licence and insurance; an admin approves or rejects a pending
//! application (the approval is what the handler turns into `grant-instructor` on the user). One
//! pending application per user is the handler's rule (it needs a lookup across streams).
//!
//! A course owns its modules, lessons and quiz questions, so the curriculum rules (ids unique in
//! the course, quiz questions only on quiz lessons, reorders are permutations, a public course has
//! at least one lesson) are decided against one state. `lessonCount`, `studentCount`, `rating`
//! and `reviewCount` are projections; events carry what the projectors need (a lesson's `order`
//! and the course's lesson count after it, …).
//!
//! Courses are created as `draft` by instructors; the course's instructor or an admin manages it.
//! Archiving is a soft delete when the course has enrolments (`CourseArchived`) and a delete
//! otherwise (`CourseDeleted`); either way the course takes no more commands.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Actor, ErrorKind};
use crate::kernel::{Aggregate, DomainEvent};
use crate::values::Currency;

/// The stream type of instructor applications.
pub const APPLICATION_STREAM_TYPE: &str = "lms.instructor-application";

/// The stream type of courses.
pub const COURSE_STREAM_TYPE: &str = "lms.course";

/// The stream of one instructor application.
pub fn application_stream_id(application_id: Uuid) -> String {
    format!("lms-application-{application_id}")
}

/// The stream of one course.
pub fn course_stream_id(course_id: Uuid) -> String {
    format!("lms-course-{course_id}")
}

/// The currency of a course created without one.
pub fn default_currency() -> Currency {
    Currency::parse("usd").expect("`usd` is a currency code")
}

// =============================================================================================
// Instructor applications
// =============================================================================================

/// Where an instructor application is in its review.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    #[default]
    Pending,
    Approved,
    Rejected,
}

impl ApplicationStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ApplicationStatus::Pending => "pending",
            ApplicationStatus::Approved => "approved",
            ApplicationStatus::Rejected => "rejected",
        }
    }
}

/// A supporting document of an application (a licence scan, an insurance certificate).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationDocument {
    pub name: String,
    /// An `http://` or `https://` address.
    pub url: String,
}

/// A command to an instructor application. `actor` comes from the session, `at` is the
/// handler's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct InstructorApplicationCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: InstructorApplicationAction,
}

impl InstructorApplicationCommand {
    /// The stream the command goes to.
    pub fn stream_id(&self) -> String {
        application_stream_id(self.action.application_id())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum InstructorApplicationAction {
    SubmitInstructorApplication(SubmitInstructorApplication),
    ApproveInstructorApplication(ApproveInstructorApplication),
    RejectInstructorApplication(RejectInstructorApplication),
}

impl InstructorApplicationAction {
    /// The application (and so the stream) the action addresses.
    pub fn application_id(&self) -> Uuid {
        match self {
            InstructorApplicationAction::SubmitInstructorApplication(p) => p.application_id,
            InstructorApplicationAction::ApproveInstructorApplication(p) => p.application_id,
            InstructorApplicationAction::RejectInstructorApplication(p) => p.application_id,
        }
    }

    /// A stable kebab-case name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            InstructorApplicationAction::SubmitInstructorApplication(_) => "submit-instructor-application",
            InstructorApplicationAction::ApproveInstructorApplication(_) => "approve-instructor-application",
            InstructorApplicationAction::RejectInstructorApplication(_) => "reject-instructor-application",
        }
    }
}

/// `submit-instructor-application`: the actor applies to teach.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitInstructorApplication {
    pub application_id: Uuid,
    pub license_number: String,
    pub license_state: String,
    /// Must be after the day of the submission.
    pub license_expiry: NaiveDate,
    pub insurance_provider: String,
    #[serde(default)]
    pub documents: Vec<ApplicationDocument>,
}

/// `approve-instructor-application` (admins).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveInstructorApplication {
    pub application_id: Uuid,
}

/// `reject-instructor-application` (admins; a reason is required).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejectInstructorApplication {
    pub application_id: Uuid,
    pub reason: String,
}

/// What happened to an instructor application.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum InstructorApplicationEvent {
    #[serde(rename_all = "camelCase")]
    ApplicationSubmitted {
        application_id: Uuid,
        user_id: Uuid,
        license_number: String,
        license_state: String,
        license_expiry: NaiveDate,
        insurance_provider: String,
        documents: Vec<ApplicationDocument>,
        /// Always `pending`.
        status: ApplicationStatus,
        submitted_at: DateTime<Utc>,
    },
    /// The handler follows it with `grant-instructor` for `user_id`.
    #[serde(rename_all = "camelCase")]
    ApplicationApproved { application_id: Uuid, user_id: Uuid, reviewed_by: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    ApplicationRejected { application_id: Uuid, user_id: Uuid, reviewed_by: Uuid, reason: String, at: DateTime<Utc> },
}

impl DomainEvent for InstructorApplicationEvent {}

/// Why an instructor application command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InstructorApplicationError {
    #[error("only a signed-in user can apply to teach")]
    NotAUser,
    #[error("the user is already an instructor")]
    AlreadyInstructor,
    #[error("the application has already been submitted")]
    AlreadySubmitted,
    #[error("{field} is required")]
    FieldRequired { field: &'static str },
    #[error("the licence expired on {expiry}: it must still be valid after today")]
    LicenseExpired { expiry: NaiveDate },
    #[error("document {index} is not acceptable: {reason}")]
    InvalidDocument { index: usize, reason: &'static str },
    #[error("only an admin may review an instructor application")]
    OnlyAdminsReview,
    #[error("the application does not exist")]
    ApplicationNotFound,
    #[error("the application is {status}, not pending")]
    NotPending { status: ApplicationStatus },
    #[error("a reason for the rejection is required")]
    ReasonRequired,
}

impl std::fmt::Display for ApplicationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl InstructorApplicationError {
    pub fn kind(&self) -> ErrorKind {
        use InstructorApplicationError::*;
        match self {
            NotAUser | OnlyAdminsReview => ErrorKind::Forbidden,
            ApplicationNotFound => ErrorKind::NotFound,
            AlreadyInstructor | AlreadySubmitted | NotPending { .. } => ErrorKind::Conflict,
            FieldRequired { .. } | LicenseExpired { .. } | InvalidDocument { .. } | ReasonRequired => {
                ErrorKind::Invalid
            }
        }
    }
}

/// An instructor application as its events left it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstructorApplication {
    exists: bool,
    application_id: Option<Uuid>,
    user_id: Option<Uuid>,
    status: ApplicationStatus,
    license_number: String,
    license_state: String,
    license_expiry: Option<NaiveDate>,
    insurance_provider: String,
    documents: Vec<ApplicationDocument>,
    submitted_at: Option<DateTime<Utc>>,
    reviewed_at: Option<DateTime<Utc>>,
    reviewed_by: Option<Uuid>,
    rejection_reason: Option<String>,
}

impl InstructorApplication {
    /// The stream of one application.
    pub fn stream_id(application_id: Uuid) -> String {
        application_stream_id(application_id)
    }
    pub fn exists(&self) -> bool {
        self.exists
    }
    pub fn application_id(&self) -> Option<Uuid> {
        self.application_id
    }
    /// The applicant.
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    /// The status, once submitted.
    pub fn status(&self) -> Option<ApplicationStatus> {
        self.exists.then_some(self.status)
    }
    pub fn is_pending(&self) -> bool {
        self.exists && self.status == ApplicationStatus::Pending
    }
    pub fn license_number(&self) -> &str {
        &self.license_number
    }
    pub fn license_state(&self) -> &str {
        &self.license_state
    }
    pub fn license_expiry(&self) -> Option<NaiveDate> {
        self.license_expiry
    }
    pub fn insurance_provider(&self) -> &str {
        &self.insurance_provider
    }
    pub fn documents(&self) -> &[ApplicationDocument] {
        &self.documents
    }
    pub fn submitted_at(&self) -> Option<DateTime<Utc>> {
        self.submitted_at
    }
    pub fn reviewed_at(&self) -> Option<DateTime<Utc>> {
        self.reviewed_at
    }
    pub fn reviewed_by(&self) -> Option<Uuid> {
        self.reviewed_by
    }
    pub fn rejection_reason(&self) -> Option<&str> {
        self.rejection_reason.as_deref()
    }

    fn submit(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &SubmitInstructorApplication,
    ) -> Result<Vec<InstructorApplicationEvent>, InstructorApplicationError> {
        use InstructorApplicationError as E;
        if actor.system || actor.id.is_nil() {
            return Err(E::NotAUser);
        }
        if actor.is_instructor {
            return Err(E::AlreadyInstructor);
        }
        if self.exists {
            return Err(E::AlreadySubmitted);
        }
        let license_number =
            required(&p.license_number, "licenseNumber").map_err(|field| E::FieldRequired { field })?;
        let license_state = required(&p.license_state, "licenseState").map_err(|field| E::FieldRequired { field })?;
        let insurance_provider =
            required(&p.insurance_provider, "insuranceProvider").map_err(|field| E::FieldRequired { field })?;
        if p.license_expiry <= at.date_naive() {
            return Err(E::LicenseExpired { expiry: p.license_expiry });
        }
        let mut documents = Vec::with_capacity(p.documents.len());
        for (index, doc) in p.documents.iter().enumerate() {
            let name = doc.name.trim();
            if name.is_empty() {
                return Err(E::InvalidDocument { index, reason: "a name is required" });
            }
            let url = doc.url.trim();
            if !is_http_url(url) {
                return Err(E::InvalidDocument { index, reason: "the url must be an http:// or https:// address" });
            }
            documents.push(ApplicationDocument { name: name.to_owned(), url: url.to_owned() });
        }
        Ok(vec![InstructorApplicationEvent::ApplicationSubmitted {
            application_id: p.application_id,
            user_id: actor.id,
            license_number,
            license_state,
            license_expiry: p.license_expiry,
            insurance_provider,
            documents,
            status: ApplicationStatus::Pending,
            submitted_at: at,
        }])
    }

    /// An admin reviewing this stream's pending application; returns the applicant.
    fn check_review(&self, actor: &Actor, application_id: Uuid) -> Result<Uuid, InstructorApplicationError> {
        if !actor.is_admin {
            return Err(InstructorApplicationError::OnlyAdminsReview);
        }
        let user_id = match (self.exists, self.application_id, self.user_id) {
            (true, Some(id), Some(user_id)) if id == application_id => user_id,
            _ => return Err(InstructorApplicationError::ApplicationNotFound),
        };
        if self.status != ApplicationStatus::Pending {
            return Err(InstructorApplicationError::NotPending { status: self.status });
        }
        Ok(user_id)
    }
}

impl Aggregate for InstructorApplication {
    const STREAM_TYPE: &'static str = APPLICATION_STREAM_TYPE;
    type Event = InstructorApplicationEvent;
    type Command = InstructorApplicationCommand;
    type Error = InstructorApplicationError;

    fn decide(
        &self,
        command: &InstructorApplicationCommand,
    ) -> Result<Vec<InstructorApplicationEvent>, InstructorApplicationError> {
        let InstructorApplicationCommand { actor, at, action } = command;
        let at = *at;
        match action {
            InstructorApplicationAction::SubmitInstructorApplication(p) => self.submit(actor, at, p),
            InstructorApplicationAction::ApproveInstructorApplication(p) => {
                let user_id = self.check_review(actor, p.application_id)?;
                Ok(vec![InstructorApplicationEvent::ApplicationApproved {
                    application_id: p.application_id,
                    user_id,
                    reviewed_by: actor.id,
                    at,
                }])
            }
            InstructorApplicationAction::RejectInstructorApplication(p) => {
                let user_id = self.check_review(actor, p.application_id)?;
                let reason = p.reason.trim();
                if reason.is_empty() {
                    return Err(InstructorApplicationError::ReasonRequired);
                }
                Ok(vec![InstructorApplicationEvent::ApplicationRejected {
                    application_id: p.application_id,
                    user_id,
                    reviewed_by: actor.id,
                    reason: reason.to_owned(),
                    at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &InstructorApplicationEvent) {
        match event {
            InstructorApplicationEvent::ApplicationSubmitted {
                application_id,
                user_id,
                license_number,
                license_state,
                license_expiry,
                insurance_provider,
                documents,
                status,
                submitted_at,
            } => {
                self.exists = true;
                self.application_id = Some(*application_id);
                self.user_id = Some(*user_id);
                self.license_number = license_number.clone();
                self.license_state = license_state.clone();
                self.license_expiry = Some(*license_expiry);
                self.insurance_provider = insurance_provider.clone();
                self.documents = documents.clone();
                self.status = *status;
                self.submitted_at = Some(*submitted_at);
            }
            InstructorApplicationEvent::ApplicationApproved { reviewed_by, at, .. } => {
                self.status = ApplicationStatus::Approved;
                self.reviewed_by = Some(*reviewed_by);
                self.reviewed_at = Some(*at);
            }
            InstructorApplicationEvent::ApplicationRejected { reviewed_by, reason, at, .. } => {
                self.status = ApplicationStatus::Rejected;
                self.reviewed_by = Some(*reviewed_by);
                self.reviewed_at = Some(*at);
                self.rejection_reason = Some(reason.clone());
            }
        }
    }
}

// =============================================================================================
// Courses
// =============================================================================================

/// A course's difficulty.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CourseLevel {
    Beginner,
    Intermediate,
    Advanced,
}

impl CourseLevel {
    pub fn as_str(&self) -> &'static str {
        match self {
            CourseLevel::Beginner => "beginner",
            CourseLevel::Intermediate => "intermediate",
            CourseLevel::Advanced => "advanced",
        }
    }
}

/// Who can see a course: `public` is published in the catalogue.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CourseVisibility {
    Public,
    Private,
    #[default]
    Draft,
}

impl CourseVisibility {
    pub fn as_str(&self) -> &'static str {
        match self {
            CourseVisibility::Public => "public",
            CourseVisibility::Private => "private",
            CourseVisibility::Draft => "draft",
        }
    }
}

/// What a lesson is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LessonType {
    Video,
    Document,
    Quiz,
    Assignment,
}

impl LessonType {
    pub fn as_str(&self) -> &'static str {
        match self {
            LessonType::Video => "video",
            LessonType::Document => "document",
            LessonType::Quiz => "quiz",
            LessonType::Assignment => "assignment",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Course commands (the payloads double as HTTP bodies)
// ---------------------------------------------------------------------------------------------

/// A command to a course. `actor` comes from the session, `at` is the handler's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct CourseCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: CourseAction,
}

impl CourseCommand {
    /// The stream the command goes to.
    pub fn stream_id(&self) -> String {
        course_stream_id(self.action.course_id())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CourseAction {
    CreateCourse(CreateCourse),
    UpdateCourseDetails(UpdateCourseDetails),
    SetCourseVisibility(SetCourseVisibility),
    AddCourseModule(AddCourseModule),
    AddLesson(AddLesson),
    AddQuizQuestion(AddQuizQuestion),
    ReorderModules(ReorderModules),
    ReorderLessons(ReorderLessons),
    ArchiveCourse(ArchiveCourse),
}

impl CourseAction {
    /// The course (and so the stream) the action addresses.
    pub fn course_id(&self) -> Uuid {
        match self {
            CourseAction::CreateCourse(p) => p.course_id,
            CourseAction::UpdateCourseDetails(p) => p.course_id,
            CourseAction::SetCourseVisibility(p) => p.course_id,
            CourseAction::AddCourseModule(p) => p.course_id,
            CourseAction::AddLesson(p) => p.course_id,
            CourseAction::AddQuizQuestion(p) => p.course_id,
            CourseAction::ReorderModules(p) => p.course_id,
            CourseAction::ReorderLessons(p) => p.course_id,
            CourseAction::ArchiveCourse(p) => p.course_id,
        }
    }

    /// A stable kebab-case name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            CourseAction::CreateCourse(_) => "create-course",
            CourseAction::UpdateCourseDetails(_) => "update-course-details",
            CourseAction::SetCourseVisibility(_) => "set-course-visibility",
            CourseAction::AddCourseModule(_) => "add-course-module",
            CourseAction::AddLesson(_) => "add-lesson",
            CourseAction::AddQuizQuestion(_) => "add-quiz-question",
            CourseAction::ReorderModules(_) => "reorder-modules",
            CourseAction::ReorderLessons(_) => "reorder-lessons",
            CourseAction::ArchiveCourse(_) => "archive-course",
        }
    }
}

/// `create-course` (instructors): a new course in `draft`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCourse {
    pub course_id: Uuid,
    pub title: String,
    /// The short description for listings.
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub long_description: Option<String>,
    #[serde(default)]
    pub level: Option<CourseLevel>,
    /// Free text, e.g. "4 hours".
    #[serde(default)]
    pub duration: Option<String>,
    /// Cents, ≥ 0; `None` or 0 is a free course.
    #[serde(default)]
    pub price: Option<i64>,
    #[serde(default = "default_currency")]
    pub currency: Currency,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub certificate_enabled: bool,
    #[serde(default)]
    pub discussion_enabled: bool,
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    #[serde(default)]
    pub what_you_will_learn: Vec<String>,
    #[serde(default)]
    pub requirements: Vec<String>,
}

/// `update-course-details` (the course's instructor or an admin). A field left out (`None`) is
/// left as it is; an empty text clears an optional text (`longDescription`, `duration`,
/// `thumbnailUrl`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateCourseDetails {
    pub course_id: Uuid,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub long_description: Option<String>,
    #[serde(default)]
    pub level: Option<CourseLevel>,
    #[serde(default)]
    pub duration: Option<String>,
    /// Cents, ≥ 0; 0 makes the course free.
    #[serde(default)]
    pub price: Option<i64>,
    #[serde(default)]
    pub currency: Option<Currency>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub certificate_enabled: Option<bool>,
    #[serde(default)]
    pub discussion_enabled: Option<bool>,
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    #[serde(default)]
    pub what_you_will_learn: Option<Vec<String>>,
    #[serde(default)]
    pub requirements: Option<Vec<String>>,
}

/// `set-course-visibility` (the course's instructor or an admin). Going `public` needs a lesson.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetCourseVisibility {
    pub course_id: Uuid,
    pub visibility: CourseVisibility,
}

/// `add-course-module`: a curriculum section, appended at the end.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddCourseModule {
    pub course_id: Uuid,
    pub module_id: Uuid,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `add-lesson`: a lesson appended at the end of a module.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddLesson {
    pub course_id: Uuid,
    pub module_id: Uuid,
    pub lesson_id: Uuid,
    pub title: String,
    pub lesson_type: LessonType,
    /// A video URL, the document's text, …
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub duration_minutes: Option<u32>,
}

/// `add-quiz-question`: a question appended to a quiz lesson.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddQuizQuestion {
    pub course_id: Uuid,
    pub lesson_id: Uuid,
    pub question_id: Uuid,
    pub question: String,
    /// At least two, none blank.
    pub options: Vec<String>,
    /// The index of the correct option.
    pub correct_option: u32,
    #[serde(default)]
    pub explanation: Option<String>,
}

/// `reorder-modules`: every module of the course, in the new order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReorderModules {
    pub course_id: Uuid,
    pub module_ids: Vec<Uuid>,
}

/// `reorder-lessons`: every lesson of one module, in the new order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReorderLessons {
    pub course_id: Uuid,
    pub module_id: Uuid,
    pub lesson_ids: Vec<Uuid>,
}

/// `archive-course` (the course's instructor or an admin).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArchiveCourse {
    pub course_id: Uuid,
    /// Looked up by the handler (never read from the body): whether anyone is enrolled.
    #[serde(skip_deserializing)]
    pub has_enrollments: bool,
}

// ---------------------------------------------------------------------------------------------
// Course events
// ---------------------------------------------------------------------------------------------

/// What happened to a course. Each event carries what a read-table projector needs.
///
/// In `CourseDetailsUpdated` a field that is `None` did not change; `Some("")` clears an optional
/// text (`longDescription`, `duration`, `thumbnailUrl`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CourseEvent {
    #[serde(rename_all = "camelCase")]
    CourseCreated {
        course_id: Uuid,
        instructor_id: Uuid,
        title: String,
        description: String,
        long_description: Option<String>,
        level: Option<CourseLevel>,
        duration: Option<String>,
        price: Option<i64>,
        currency: Currency,
        category: String,
        tags: Vec<String>,
        certificate_enabled: bool,
        discussion_enabled: bool,
        thumbnail_url: Option<String>,
        what_you_will_learn: Vec<String>,
        requirements: Vec<String>,
        /// Always `draft`.
        visibility: CourseVisibility,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    CourseDetailsUpdated {
        course_id: Uuid,
        title: Option<String>,
        description: Option<String>,
        long_description: Option<String>,
        level: Option<CourseLevel>,
        duration: Option<String>,
        price: Option<i64>,
        currency: Option<Currency>,
        category: Option<String>,
        tags: Option<Vec<String>>,
        certificate_enabled: Option<bool>,
        discussion_enabled: Option<bool>,
        thumbnail_url: Option<String>,
        what_you_will_learn: Option<Vec<String>>,
        requirements: Option<Vec<String>>,
        updated_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    CourseVisibilityChanged { course_id: Uuid, visibility: CourseVisibility, changed_by: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    CourseModuleAdded {
        course_id: Uuid,
        module_id: Uuid,
        title: String,
        description: Option<String>,
        /// 1-based position among the course's modules.
        order: u32,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    LessonAdded {
        course_id: Uuid,
        module_id: Uuid,
        lesson_id: Uuid,
        title: String,
        lesson_type: LessonType,
        content: String,
        /// Minutes.
        duration: Option<u32>,
        /// 1-based position within the module.
        order: u32,
        /// The course's number of lessons after this one.
        lesson_count: u32,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    QuizQuestionAdded {
        course_id: Uuid,
        lesson_id: Uuid,
        question_id: Uuid,
        question: String,
        options: Vec<String>,
        correct_option: u32,
        explanation: Option<String>,
        /// 1-based position within the lesson.
        order: u32,
        at: DateTime<Utc>,
    },
    /// The projector sets each module's `order` to its index + 1.
    #[serde(rename_all = "camelCase")]
    ModulesReordered { course_id: Uuid, module_ids: Vec<Uuid>, at: DateTime<Utc> },
    /// The projector sets each lesson's `order` to its index + 1.
    #[serde(rename_all = "camelCase")]
    LessonsReordered { course_id: Uuid, module_id: Uuid, lesson_ids: Vec<Uuid>, at: DateTime<Utc> },
    /// Soft delete: the course had enrolments, so it stays for its students.
    #[serde(rename_all = "camelCase")]
    CourseArchived { course_id: Uuid, archived_by: Uuid, at: DateTime<Utc> },
    /// The course had no enrolments and is gone.
    #[serde(rename_all = "camelCase")]
    CourseDeleted { course_id: Uuid, deleted_by: Uuid, at: DateTime<Utc> },
}

impl DomainEvent for CourseEvent {}

// ---------------------------------------------------------------------------------------------
// Course errors
// ---------------------------------------------------------------------------------------------

/// Why a course command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CourseError {
    #[error("only instructors may create courses")]
    OnlyInstructorsCreateCourses,
    #[error("only the course's instructor or an admin may change it")]
    NotYourCourse,
    #[error("the course does not exist")]
    CourseNotFound,
    #[error("the course already exists")]
    CourseAlreadyExists,
    #[error("the course is archived")]
    CourseArchived,
    #[error("{field} is required")]
    FieldRequired { field: &'static str },
    #[error("the price cannot be negative")]
    NegativePrice,
    #[error("a course needs at least one lesson to be published")]
    NoLessonsToPublish,
    #[error("module {module_id} does not exist in this course")]
    ModuleNotFound { module_id: Uuid },
    #[error("module {module_id} already exists")]
    ModuleAlreadyExists { module_id: Uuid },
    #[error("lesson {lesson_id} does not exist in this course")]
    LessonNotFound { lesson_id: Uuid },
    #[error("lesson {lesson_id} already exists")]
    LessonAlreadyExists { lesson_id: Uuid },
    #[error("quiz question {question_id} already exists")]
    QuestionAlreadyExists { question_id: Uuid },
    #[error("lesson {lesson_id} is not a quiz")]
    NotAQuizLesson { lesson_id: Uuid },
    #[error("a quiz question needs at least two options, not {count}")]
    TooFewOptions { count: usize },
    #[error("option {index} is blank")]
    BlankOption { index: usize },
    #[error("the correct option {correct_option} is not one of the {options} options")]
    CorrectOptionOutOfRange { correct_option: u32, options: usize },
    #[error("the new order must list every current id exactly once")]
    NotAPermutation,
}

impl CourseError {
    pub fn kind(&self) -> ErrorKind {
        use CourseError::*;
        match self {
            OnlyInstructorsCreateCourses | NotYourCourse => ErrorKind::Forbidden,
            CourseNotFound | ModuleNotFound { .. } | LessonNotFound { .. } => ErrorKind::NotFound,
            CourseAlreadyExists
            | CourseArchived
            | NoLessonsToPublish
            | ModuleAlreadyExists { .. }
            | LessonAlreadyExists { .. }
            | QuestionAlreadyExists { .. }
            | NotAQuizLesson { .. } => ErrorKind::Conflict,
            FieldRequired { .. }
            | NegativePrice
            | TooFewOptions { .. }
            | BlankOption { .. }
            | CorrectOptionOutOfRange { .. }
            | NotAPermutation => ErrorKind::Invalid,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Course state
// ---------------------------------------------------------------------------------------------

/// The descriptive fields of a course, as the events left them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseDetails {
    pub title: String,
    pub description: String,
    pub long_description: Option<String>,
    pub level: Option<CourseLevel>,
    pub duration: Option<String>,
    /// Cents; `None` or 0 is free.
    pub price: Option<i64>,
    pub currency: Option<Currency>,
    pub category: String,
    pub tags: Vec<String>,
    pub certificate_enabled: bool,
    pub discussion_enabled: bool,
    pub thumbnail_url: Option<String>,
    pub what_you_will_learn: Vec<String>,
    pub requirements: Vec<String>,
}

/// A module as the course holds it: its lessons in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseModule {
    pub module_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub lesson_ids: Vec<Uuid>,
}

/// A lesson as the course holds it (its content lives in the read table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lesson {
    pub lesson_id: Uuid,
    pub module_id: Uuid,
    pub title: String,
    pub lesson_type: LessonType,
    pub duration: Option<u32>,
    /// Quiz questions in order.
    pub question_ids: Vec<Uuid>,
}

/// A course as its events left it. Fields are private: only `evolve` writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Course {
    exists: bool,
    archived: bool,
    deleted: bool,
    course_id: Option<Uuid>,
    instructor_id: Option<Uuid>,
    details: CourseDetails,
    visibility: CourseVisibility,
    /// In display order.
    modules: Vec<CourseModule>,
    lessons: Vec<Lesson>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

impl Course {
    /// The stream of one course.
    pub fn stream_id(course_id: Uuid) -> String {
        course_stream_id(course_id)
    }
    pub fn exists(&self) -> bool {
        self.exists && !self.deleted
    }
    pub fn course_id(&self) -> Option<Uuid> {
        self.course_id
    }
    pub fn instructor_id(&self) -> Option<Uuid> {
        self.instructor_id
    }
    pub fn title(&self) -> &str {
        &self.details.title
    }
    pub fn details(&self) -> &CourseDetails {
        &self.details
    }
    /// Cents; `None` or `Some(0)` is free.
    pub fn price(&self) -> Option<i64> {
        self.details.price
    }
    pub fn currency(&self) -> Currency {
        self.details.currency.unwrap_or_else(default_currency)
    }
    pub fn is_free(&self) -> bool {
        self.details.price.unwrap_or(0) == 0
    }
    pub fn certificate_enabled(&self) -> bool {
        self.details.certificate_enabled
    }
    pub fn discussion_enabled(&self) -> bool {
        self.details.discussion_enabled
    }
    pub fn visibility(&self) -> CourseVisibility {
        self.visibility
    }
    /// Public, and neither archived nor deleted: open for new enrolments.
    pub fn is_published(&self) -> bool {
        self.exists && !self.archived && !self.deleted && self.visibility == CourseVisibility::Public
    }
    /// Archived (soft-deleted) or deleted: the course takes no more commands.
    pub fn is_archived(&self) -> bool {
        self.archived || self.deleted
    }
    pub fn is_deleted(&self) -> bool {
        self.deleted
    }
    /// Modules in display order.
    pub fn modules(&self) -> &[CourseModule] {
        &self.modules
    }
    pub fn module(&self, module_id: Uuid) -> Option<&CourseModule> {
        self.modules.iter().find(|m| m.module_id == module_id)
    }
    pub fn lesson(&self, lesson_id: Uuid) -> Option<&Lesson> {
        self.lessons.iter().find(|l| l.lesson_id == lesson_id)
    }
    /// Every lesson of the course, module by module, each module's in order.
    pub fn lesson_ids(&self) -> Vec<Uuid> {
        self.modules.iter().flat_map(|m| m.lesson_ids.iter().copied()).collect()
    }
    pub fn lesson_count(&self) -> usize {
        self.lessons.len()
    }
    /// Whether `actor` is the course's instructor or an admin.
    pub fn can_manage(&self, actor: &Actor) -> bool {
        actor.is_admin || (self.instructor_id == Some(actor.id) && !actor.system)
    }
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.created_at
    }
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.updated_at
    }

    fn has_question(&self, question_id: Uuid) -> bool {
        self.lessons.iter().any(|l| l.question_ids.contains(&question_id))
    }

    fn lesson_mut(&mut self, lesson_id: Uuid) -> Option<&mut Lesson> {
        self.lessons.iter_mut().find(|l| l.lesson_id == lesson_id)
    }

    fn module_mut(&mut self, module_id: Uuid) -> Option<&mut CourseModule> {
        self.modules.iter_mut().find(|m| m.module_id == module_id)
    }

    fn create(&self, actor: &Actor, at: DateTime<Utc>, p: &CreateCourse) -> Result<Vec<CourseEvent>, CourseError> {
        if !actor.is_instructor || actor.system {
            return Err(CourseError::OnlyInstructorsCreateCourses);
        }
        if self.exists {
            return Err(CourseError::CourseAlreadyExists);
        }
        let title = p.title.trim();
        if title.is_empty() {
            return Err(CourseError::FieldRequired { field: "title" });
        }
        if p.price.is_some_and(|price| price < 0) {
            return Err(CourseError::NegativePrice);
        }
        Ok(vec![CourseEvent::CourseCreated {
            course_id: p.course_id,
            instructor_id: actor.id,
            title: title.to_owned(),
            description: p.description.trim().to_owned(),
            long_description: non_blank(&p.long_description),
            level: p.level,
            duration: non_blank(&p.duration),
            price: p.price,
            currency: p.currency,
            category: p.category.trim().to_owned(),
            tags: normalise_tags(&p.tags),
            certificate_enabled: p.certificate_enabled,
            discussion_enabled: p.discussion_enabled,
            thumbnail_url: non_blank(&p.thumbnail_url),
            what_you_will_learn: clean_list(&p.what_you_will_learn),
            requirements: clean_list(&p.requirements),
            visibility: CourseVisibility::Draft,
            at,
        }])
    }

    fn update_details(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &UpdateCourseDetails,
    ) -> Result<Vec<CourseEvent>, CourseError> {
        let current = &self.details;
        let title = match p.title.as_deref().map(str::trim) {
            Some("") => return Err(CourseError::FieldRequired { field: "title" }),
            Some(title) => (title != current.title).then(|| title.to_owned()),
            None => None,
        };
        if p.price.is_some_and(|price| price < 0) {
            return Err(CourseError::NegativePrice);
        }
        let description = p.description.as_deref().map(str::trim).filter(|d| *d != current.description);
        let category = p.category.as_deref().map(str::trim).filter(|c| *c != current.category);
        let long_description = text_change(&p.long_description, &current.long_description);
        let duration = text_change(&p.duration, &current.duration);
        let thumbnail_url = text_change(&p.thumbnail_url, &current.thumbnail_url);
        let level = p.level.filter(|l| current.level != Some(*l));
        let price = p.price.filter(|price| current.price != Some(*price));
        let currency = p.currency.filter(|c| *c != self.currency());
        let tags = p.tags.as_deref().map(normalise_tags).filter(|t| *t != current.tags);
        let certificate_enabled = p.certificate_enabled.filter(|c| *c != current.certificate_enabled);
        let discussion_enabled = p.discussion_enabled.filter(|d| *d != current.discussion_enabled);
        let what_you_will_learn =
            p.what_you_will_learn.as_deref().map(clean_list).filter(|w| *w != current.what_you_will_learn);
        let requirements = p.requirements.as_deref().map(clean_list).filter(|r| *r != current.requirements);
        let event = CourseEvent::CourseDetailsUpdated {
            course_id: p.course_id,
            title,
            description: description.map(str::to_owned),
            long_description,
            level,
            duration,
            price,
            currency,
            category: category.map(str::to_owned),
            tags,
            certificate_enabled,
            discussion_enabled,
            thumbnail_url,
            what_you_will_learn,
            requirements,
            updated_by: actor.id,
            at,
        };
        let unchanged = CourseEvent::CourseDetailsUpdated {
            course_id: p.course_id,
            title: None,
            description: None,
            long_description: None,
            level: None,
            duration: None,
            price: None,
            currency: None,
            category: None,
            tags: None,
            certificate_enabled: None,
            discussion_enabled: None,
            thumbnail_url: None,
            what_you_will_learn: None,
            requirements: None,
            updated_by: actor.id,
            at,
        };
        Ok(if event == unchanged { vec![] } else { vec![event] })
    }

    fn add_quiz_question(&self, at: DateTime<Utc>, p: &AddQuizQuestion) -> Result<Vec<CourseEvent>, CourseError> {
        let lesson = self.lesson(p.lesson_id).ok_or(CourseError::LessonNotFound { lesson_id: p.lesson_id })?;
        if lesson.lesson_type != LessonType::Quiz {
            return Err(CourseError::NotAQuizLesson { lesson_id: p.lesson_id });
        }
        if self.has_question(p.question_id) {
            return Err(CourseError::QuestionAlreadyExists { question_id: p.question_id });
        }
        let question = p.question.trim();
        if question.is_empty() {
            return Err(CourseError::FieldRequired { field: "question" });
        }
        if p.options.len() < 2 {
            return Err(CourseError::TooFewOptions { count: p.options.len() });
        }
        let mut options = Vec::with_capacity(p.options.len());
        for (index, option) in p.options.iter().enumerate() {
            let option = option.trim();
            if option.is_empty() {
                return Err(CourseError::BlankOption { index });
            }
            options.push(option.to_owned());
        }
        if usize::try_from(p.correct_option).map_or(true, |i| i >= options.len()) {
            return Err(CourseError::CorrectOptionOutOfRange {
                correct_option: p.correct_option,
                options: options.len(),
            });
        }
        Ok(vec![CourseEvent::QuizQuestionAdded {
            course_id: p.course_id,
            lesson_id: p.lesson_id,
            question_id: p.question_id,
            question: question.to_owned(),
            options,
            correct_option: p.correct_option,
            explanation: non_blank(&p.explanation),
            order: position(lesson.question_ids.len()),
            at,
        }])
    }
}

/// A trimmed required text, or the field's name.
fn required(text: &str, field: &'static str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        Err(field)
    } else {
        Ok(text.to_owned())
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

/// Trimmed entries without blanks, in the order given.
fn clean_list(items: &[String]) -> Vec<String> {
    items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Trimmed tags without blanks or case-insensitive duplicates, in the order given.
fn normalise_tags(tags: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    tags.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && seen.insert(s.to_lowercase()))
        .map(str::to_owned)
        .collect()
}

/// Whether `proposed` lists every id of `current` exactly once.
fn is_permutation(current: &[Uuid], proposed: &[Uuid]) -> bool {
    let mut a = current.to_vec();
    let mut b = proposed.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// The 1-based position after `count` items.
fn position(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX).saturating_add(1)
}

/// An `http://` or `https://` address with something after the scheme.
fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.chars().any(char::is_whitespace))
}

impl Aggregate for Course {
    const STREAM_TYPE: &'static str = COURSE_STREAM_TYPE;
    type Event = CourseEvent;
    type Command = CourseCommand;
    type Error = CourseError;

    fn decide(&self, command: &CourseCommand) -> Result<Vec<CourseEvent>, CourseError> {
        let CourseCommand { actor, at, action } = command;
        let at = *at;
        if let CourseAction::CreateCourse(p) = action {
            return self.create(actor, at, p);
        }
        // The stream is chosen by the payload's course id; another id addresses a course this
        // stream does not hold.
        if !self.exists() || self.course_id != Some(action.course_id()) {
            return Err(CourseError::CourseNotFound);
        }
        if !self.can_manage(actor) {
            return Err(CourseError::NotYourCourse);
        }
        if self.archived {
            return Err(CourseError::CourseArchived);
        }
        match action {
            CourseAction::CreateCourse(_) => unreachable!("handled above"),
            CourseAction::UpdateCourseDetails(p) => self.update_details(actor, at, p),
            CourseAction::SetCourseVisibility(p) => {
                if p.visibility == self.visibility {
                    return Ok(vec![]);
                }
                if p.visibility == CourseVisibility::Public && self.lessons.is_empty() {
                    return Err(CourseError::NoLessonsToPublish);
                }
                Ok(vec![CourseEvent::CourseVisibilityChanged {
                    course_id: p.course_id,
                    visibility: p.visibility,
                    changed_by: actor.id,
                    at,
                }])
            }
            CourseAction::AddCourseModule(p) => {
                if self.module(p.module_id).is_some() {
                    return Err(CourseError::ModuleAlreadyExists { module_id: p.module_id });
                }
                let title = p.title.trim();
                if title.is_empty() {
                    return Err(CourseError::FieldRequired { field: "title" });
                }
                Ok(vec![CourseEvent::CourseModuleAdded {
                    course_id: p.course_id,
                    module_id: p.module_id,
                    title: title.to_owned(),
                    description: non_blank(&p.description),
                    order: position(self.modules.len()),
                    at,
                }])
            }
            CourseAction::AddLesson(p) => {
                let module = self.module(p.module_id).ok_or(CourseError::ModuleNotFound { module_id: p.module_id })?;
                if self.lesson(p.lesson_id).is_some() {
                    return Err(CourseError::LessonAlreadyExists { lesson_id: p.lesson_id });
                }
                let title = p.title.trim();
                if title.is_empty() {
                    return Err(CourseError::FieldRequired { field: "title" });
                }
                Ok(vec![CourseEvent::LessonAdded {
                    course_id: p.course_id,
                    module_id: p.module_id,
                    lesson_id: p.lesson_id,
                    title: title.to_owned(),
                    lesson_type: p.lesson_type,
                    content: p.content.trim().to_owned(),
                    duration: p.duration_minutes,
                    order: position(module.lesson_ids.len()),
                    lesson_count: position(self.lessons.len()),
                    at,
                }])
            }
            CourseAction::AddQuizQuestion(p) => self.add_quiz_question(at, p),
            CourseAction::ReorderModules(p) => {
                let current: Vec<Uuid> = self.modules.iter().map(|m| m.module_id).collect();
                if !is_permutation(&current, &p.module_ids) {
                    return Err(CourseError::NotAPermutation);
                }
                if current == p.module_ids {
                    return Ok(vec![]);
                }
                Ok(vec![CourseEvent::ModulesReordered { course_id: p.course_id, module_ids: p.module_ids.clone(), at }])
            }
            CourseAction::ReorderLessons(p) => {
                let module = self.module(p.module_id).ok_or(CourseError::ModuleNotFound { module_id: p.module_id })?;
                if !is_permutation(&module.lesson_ids, &p.lesson_ids) {
                    return Err(CourseError::NotAPermutation);
                }
                if module.lesson_ids == p.lesson_ids {
                    return Ok(vec![]);
                }
                Ok(vec![CourseEvent::LessonsReordered {
                    course_id: p.course_id,
                    module_id: p.module_id,
                    lesson_ids: p.lesson_ids.clone(),
                    at,
                }])
            }
            CourseAction::ArchiveCourse(p) => {
                if p.has_enrollments {
                    Ok(vec![CourseEvent::CourseArchived { course_id: p.course_id, archived_by: actor.id, at }])
                } else {
                    Ok(vec![CourseEvent::CourseDeleted { course_id: p.course_id, deleted_by: actor.id, at }])
                }
            }
        }
    }

    fn evolve(&mut self, event: &CourseEvent) {
        match event {
            CourseEvent::CourseCreated {
                course_id,
                instructor_id,
                title,
                description,
                long_description,
                level,
                duration,
                price,
                currency,
                category,
                tags,
                certificate_enabled,
                discussion_enabled,
                thumbnail_url,
                what_you_will_learn,
                requirements,
                visibility,
                at,
            } => {
                self.exists = true;
                self.course_id = Some(*course_id);
                self.instructor_id = Some(*instructor_id);
                self.details = CourseDetails {
                    title: title.clone(),
                    description: description.clone(),
                    long_description: long_description.clone(),
                    level: *level,
                    duration: duration.clone(),
                    price: *price,
                    currency: Some(*currency),
                    category: category.clone(),
                    tags: tags.clone(),
                    certificate_enabled: *certificate_enabled,
                    discussion_enabled: *discussion_enabled,
                    thumbnail_url: thumbnail_url.clone(),
                    what_you_will_learn: what_you_will_learn.clone(),
                    requirements: requirements.clone(),
                };
                self.visibility = *visibility;
                self.created_at = Some(*at);
                self.updated_at = Some(*at);
            }
            CourseEvent::CourseDetailsUpdated {
                title,
                description,
                long_description,
                level,
                duration,
                price,
                currency,
                category,
                tags,
                certificate_enabled,
                discussion_enabled,
                thumbnail_url,
                what_you_will_learn,
                requirements,
                at,
                ..
            } => {
                let d = &mut self.details;
                if let Some(title) = title {
                    d.title = title.clone();
                }
                if let Some(description) = description {
                    d.description = description.clone();
                }
                apply_text(&mut d.long_description, long_description);
                if let Some(level) = level {
                    d.level = Some(*level);
                }
                apply_text(&mut d.duration, duration);
                if let Some(price) = price {
                    d.price = Some(*price);
                }
                if let Some(currency) = currency {
                    d.currency = Some(*currency);
                }
                if let Some(category) = category {
                    d.category = category.clone();
                }
                if let Some(tags) = tags {
                    d.tags = tags.clone();
                }
                if let Some(enabled) = certificate_enabled {
                    d.certificate_enabled = *enabled;
                }
                if let Some(enabled) = discussion_enabled {
                    d.discussion_enabled = *enabled;
                }
                apply_text(&mut d.thumbnail_url, thumbnail_url);
                if let Some(items) = what_you_will_learn {
                    d.what_you_will_learn = items.clone();
                }
                if let Some(items) = requirements {
                    d.requirements = items.clone();
                }
                self.updated_at = Some(*at);
            }
            CourseEvent::CourseVisibilityChanged { visibility, at, .. } => {
                self.visibility = *visibility;
                self.updated_at = Some(*at);
            }
            CourseEvent::CourseModuleAdded { module_id, title, description, at, .. } => {
                self.modules.push(CourseModule {
                    module_id: *module_id,
                    title: title.clone(),
                    description: description.clone(),
                    lesson_ids: Vec::new(),
                });
                self.updated_at = Some(*at);
            }
            CourseEvent::LessonAdded { module_id, lesson_id, title, lesson_type, duration, at, .. } => {
                if let Some(module) = self.module_mut(*module_id) {
                    module.lesson_ids.push(*lesson_id);
                }
                self.lessons.push(Lesson {
                    lesson_id: *lesson_id,
                    module_id: *module_id,
                    title: title.clone(),
                    lesson_type: *lesson_type,
                    duration: *duration,
                    question_ids: Vec::new(),
                });
                self.updated_at = Some(*at);
            }
            CourseEvent::QuizQuestionAdded { lesson_id, question_id, at, .. } => {
                if let Some(lesson) = self.lesson_mut(*lesson_id) {
                    lesson.question_ids.push(*question_id);
                }
                self.updated_at = Some(*at);
            }
            CourseEvent::ModulesReordered { module_ids, at, .. } => {
                let mut modules = std::mem::take(&mut self.modules);
                let mut ordered = Vec::with_capacity(modules.len());
                for id in module_ids {
                    if let Some(i) = modules.iter().position(|m| m.module_id == *id) {
                        ordered.push(modules.remove(i));
                    }
                }
                // Anything the event did not name keeps its relative order at the end.
                ordered.append(&mut modules);
                self.modules = ordered;
                self.updated_at = Some(*at);
            }
            CourseEvent::LessonsReordered { module_id, lesson_ids, at, .. } => {
                if let Some(module) = self.module_mut(*module_id) {
                    let mut rest: Vec<Uuid> =
                        module.lesson_ids.iter().copied().filter(|id| !lesson_ids.contains(id)).collect();
                    let mut ordered: Vec<Uuid> =
                        lesson_ids.iter().copied().filter(|id| module.lesson_ids.contains(id)).collect();
                    ordered.append(&mut rest);
                    module.lesson_ids = ordered;
                }
                self.updated_at = Some(*at);
            }
            CourseEvent::CourseArchived { at, .. } => {
                self.archived = true;
                self.updated_at = Some(*at);
            }
            CourseEvent::CourseDeleted { at, .. } => {
                self.deleted = true;
                self.updated_at = Some(*at);
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
    use serde_json::json;

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 9, minute, 0).unwrap()
    }
    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }
    fn usd() -> Currency {
        default_currency()
    }

    fn applicant_id() -> Uuid {
        Uuid::from_u128(0xA1)
    }
    fn instructor_id() -> Uuid {
        Uuid::from_u128(0x1A)
    }
    fn admin_id() -> Uuid {
        Uuid::from_u128(0xAD)
    }
    fn application_id() -> Uuid {
        Uuid::from_u128(0xA99)
    }
    fn course_id() -> Uuid {
        Uuid::from_u128(0xC0)
    }
    fn module_a() -> Uuid {
        Uuid::from_u128(0x3A)
    }
    fn module_b() -> Uuid {
        Uuid::from_u128(0x3B)
    }
    fn lesson_1() -> Uuid {
        Uuid::from_u128(0x11)
    }
    fn lesson_2() -> Uuid {
        Uuid::from_u128(0x12)
    }
    fn quiz_lesson() -> Uuid {
        Uuid::from_u128(0x19)
    }
    fn question_id() -> Uuid {
        Uuid::from_u128(0x9A)
    }

    fn student(id: Uuid) -> Actor {
        Actor { id, is_instructor: false, is_admin: false, system: false }
    }
    fn instructor() -> Actor {
        Actor { id: instructor_id(), is_instructor: true, is_admin: false, system: false }
    }
    fn other_instructor() -> Actor {
        Actor { id: Uuid::from_u128(0x1B), is_instructor: true, is_admin: false, system: false }
    }
    fn admin() -> Actor {
        Actor { id: admin_id(), is_instructor: false, is_admin: true, system: false }
    }

    // ------------------------------------------------------------------ instructor applications

    fn app_cmd(actor: Actor, action: InstructorApplicationAction) -> InstructorApplicationCommand {
        InstructorApplicationCommand { actor, at: t(30), action }
    }
    fn submission() -> SubmitInstructorApplication {
        SubmitInstructorApplication {
            application_id: application_id(),
            license_number: " RN-12345 ".into(),
            license_state: "CA".into(),
            license_expiry: day(2027, 6, 30),
            insurance_provider: "MedPro".into(),
            documents: vec![ApplicationDocument {
                name: "Licence".into(),
                url: "https://files.example.com/l.pdf".into(),
            }],
        }
    }
    fn submitted() -> InstructorApplicationEvent {
        submitted_at(t(1))
    }
    fn submitted_at(at: DateTime<Utc>) -> InstructorApplicationEvent {
        InstructorApplicationEvent::ApplicationSubmitted {
            application_id: application_id(),
            user_id: applicant_id(),
            license_number: "RN-12345".into(),
            license_state: "CA".into(),
            license_expiry: day(2027, 6, 30),
            insurance_provider: "MedPro".into(),
            documents: vec![ApplicationDocument {
                name: "Licence".into(),
                url: "https://files.example.com/l.pdf".into(),
            }],
            status: ApplicationStatus::Pending,
            submitted_at: at,
        }
    }
    fn submit(p: SubmitInstructorApplication) -> InstructorApplicationAction {
        InstructorApplicationAction::SubmitInstructorApplication(p)
    }
    fn approve() -> InstructorApplicationAction {
        InstructorApplicationAction::ApproveInstructorApplication(ApproveInstructorApplication {
            application_id: application_id(),
        })
    }
    fn reject(reason: &str) -> InstructorApplicationAction {
        InstructorApplicationAction::RejectInstructorApplication(RejectInstructorApplication {
            application_id: application_id(),
            reason: reason.into(),
        })
    }

    #[test]
    fn it_should_record_a_submitted_application_as_pending() {
        TestHarness::<InstructorApplication>::given([])
            .when(app_cmd(student(applicant_id()), submit(submission())))
            .then([submitted_at(t(30))]);
        let application = InstructorApplication::fold([submitted()].iter());
        assert!(application.is_pending());
        assert_eq!(application.user_id(), Some(applicant_id()));
    }

    #[test]
    fn it_should_refuse_an_expired_license() {
        for expiry in [day(2025, 3, 1), day(2024, 12, 31)] {
            TestHarness::<InstructorApplication>::given([])
                .when(app_cmd(
                    student(applicant_id()),
                    submit(SubmitInstructorApplication { license_expiry: expiry, ..submission() }),
                ))
                .then_error(InstructorApplicationError::LicenseExpired { expiry });
        }
    }

    #[test]
    fn it_should_require_the_license_and_insurance_fields() {
        TestHarness::<InstructorApplication>::given([])
            .when(app_cmd(
                student(applicant_id()),
                submit(SubmitInstructorApplication { license_state: " ".into(), ..submission() }),
            ))
            .then_error(InstructorApplicationError::FieldRequired { field: "licenseState" });
        TestHarness::<InstructorApplication>::given([])
            .when(app_cmd(
                student(applicant_id()),
                submit(SubmitInstructorApplication { insurance_provider: String::new(), ..submission() }),
            ))
            .then_error(InstructorApplicationError::FieldRequired { field: "insuranceProvider" });
    }

    #[test]
    fn it_should_refuse_a_document_that_is_not_a_web_address() {
        let documents = vec![ApplicationDocument { name: "Licence".into(), url: "javascript:alert(1)".into() }];
        TestHarness::<InstructorApplication>::given([])
            .when(app_cmd(student(applicant_id()), submit(SubmitInstructorApplication { documents, ..submission() })))
            .then_error(InstructorApplicationError::InvalidDocument {
                index: 0,
                reason: "the url must be an http:// or https:// address",
            });
    }

    #[test]
    fn it_should_not_let_an_instructor_apply_again() {
        let already = Actor { is_instructor: true, ..student(applicant_id()) };
        TestHarness::<InstructorApplication>::given([])
            .when(app_cmd(already, submit(submission())))
            .then_error(InstructorApplicationError::AlreadyInstructor);
    }

    #[test]
    fn it_should_not_submit_the_same_application_twice() {
        TestHarness::<InstructorApplication>::given([submitted()])
            .when(app_cmd(student(applicant_id()), submit(submission())))
            .then_error(InstructorApplicationError::AlreadySubmitted);
    }

    #[test]
    fn it_should_not_let_the_system_apply_to_teach() {
        TestHarness::<InstructorApplication>::given([])
            .when(app_cmd(Actor::system(), submit(submission())))
            .then_error(InstructorApplicationError::NotAUser);
    }

    #[test]
    fn it_should_let_an_admin_approve_a_pending_application() {
        let approved = InstructorApplicationEvent::ApplicationApproved {
            application_id: application_id(),
            user_id: applicant_id(),
            reviewed_by: admin_id(),
            at: t(30),
        };
        TestHarness::<InstructorApplication>::given([submitted()])
            .when(app_cmd(admin(), approve()))
            .then([approved.clone()]);
        let application = InstructorApplication::fold([submitted(), approved].iter());
        assert_eq!(application.status(), Some(ApplicationStatus::Approved));
        assert_eq!(application.reviewed_by(), Some(admin_id()));
    }

    #[test]
    fn it_should_let_only_admins_review_applications() {
        TestHarness::<InstructorApplication>::given([submitted()])
            .when(app_cmd(instructor(), approve()))
            .then_error(InstructorApplicationError::OnlyAdminsReview);
        TestHarness::<InstructorApplication>::given([submitted()])
            .when(app_cmd(student(applicant_id()), reject("no")))
            .then_error(InstructorApplicationError::OnlyAdminsReview);
    }

    #[test]
    fn it_should_not_review_an_application_that_does_not_exist() {
        TestHarness::<InstructorApplication>::given([])
            .when(app_cmd(admin(), approve()))
            .then_error(InstructorApplicationError::ApplicationNotFound);
    }

    #[test]
    fn it_should_review_only_pending_applications() {
        let approved = InstructorApplicationEvent::ApplicationApproved {
            application_id: application_id(),
            user_id: applicant_id(),
            reviewed_by: admin_id(),
            at: t(2),
        };
        TestHarness::<InstructorApplication>::given([submitted(), approved])
            .when(app_cmd(admin(), reject("late")))
            .then_error(InstructorApplicationError::NotPending { status: ApplicationStatus::Approved });
    }

    #[test]
    fn it_should_reject_an_application_with_a_reason() {
        let rejected = InstructorApplicationEvent::ApplicationRejected {
            application_id: application_id(),
            user_id: applicant_id(),
            reviewed_by: admin_id(),
            reason: "Licence not verifiable".into(),
            at: t(30),
        };
        TestHarness::<InstructorApplication>::given([submitted()])
            .when(app_cmd(admin(), reject(" Licence not verifiable ")))
            .then([rejected.clone()]);
        let application = InstructorApplication::fold([submitted(), rejected].iter());
        assert_eq!(application.status(), Some(ApplicationStatus::Rejected));
        assert_eq!(application.rejection_reason(), Some("Licence not verifiable"));
    }

    #[test]
    fn it_should_not_reject_an_application_without_a_reason() {
        TestHarness::<InstructorApplication>::given([submitted()])
            .when(app_cmd(admin(), reject("  ")))
            .then_error(InstructorApplicationError::ReasonRequired);
    }

    // ------------------------------------------------------------------ courses

    fn cmd(actor: Actor, action: CourseAction) -> CourseCommand {
        CourseCommand { actor, at: t(30), action }
    }
    fn create() -> CreateCourse {
        CreateCourse {
            course_id: course_id(),
            title: " Botox Fundamentals ".into(),
            description: "Learn the basics".into(),
            long_description: Some("".into()),
            level: Some(CourseLevel::Beginner),
            duration: Some("4 hours".into()),
            price: Some(9_999),
            currency: usd(),
            category: "botox".into(),
            tags: vec!["Botox".into(), " botox ".into(), "".into(), "injectables".into()],
            certificate_enabled: true,
            discussion_enabled: true,
            thumbnail_url: None,
            what_you_will_learn: vec!["Anatomy".into(), " ".into()],
            requirements: vec![],
        }
    }
    fn created_at(at: DateTime<Utc>) -> CourseEvent {
        created_with_price(Some(9_999), at)
    }
    fn created_with_price(price: Option<i64>, at: DateTime<Utc>) -> CourseEvent {
        CourseEvent::CourseCreated {
            course_id: course_id(),
            instructor_id: instructor_id(),
            title: "Botox Fundamentals".into(),
            description: "Learn the basics".into(),
            long_description: None,
            level: Some(CourseLevel::Beginner),
            duration: Some("4 hours".into()),
            price,
            currency: usd(),
            category: "botox".into(),
            tags: vec!["Botox".into(), "injectables".into()],
            certificate_enabled: true,
            discussion_enabled: true,
            thumbnail_url: None,
            what_you_will_learn: vec!["Anatomy".into()],
            requirements: vec![],
            visibility: CourseVisibility::Draft,
            at,
        }
    }
    fn created() -> CourseEvent {
        created_at(t(1))
    }
    fn module_added(module_id: Uuid, order: u32) -> CourseEvent {
        module_added_at(module_id, order, t(2))
    }
    fn module_added_at(module_id: Uuid, order: u32, at: DateTime<Utc>) -> CourseEvent {
        CourseEvent::CourseModuleAdded {
            course_id: course_id(),
            module_id,
            title: format!("Module {order}"),
            description: None,
            order,
            at,
        }
    }
    fn lesson_added(module_id: Uuid, lesson_id: Uuid, lesson_type: LessonType, order: u32, count: u32) -> CourseEvent {
        CourseEvent::LessonAdded {
            course_id: course_id(),
            module_id,
            lesson_id,
            title: "Lesson".into(),
            lesson_type,
            content: "https://video.example.com/1".into(),
            duration: Some(12),
            order,
            lesson_count: count,
            at: t(3),
        }
    }
    /// A draft course with modules A (lessons 1, 2) and B (a quiz lesson).
    fn curriculum() -> Vec<CourseEvent> {
        vec![
            created(),
            module_added(module_a(), 1),
            module_added(module_b(), 2),
            lesson_added(module_a(), lesson_1(), LessonType::Video, 1, 1),
            lesson_added(module_a(), lesson_2(), LessonType::Document, 2, 2),
            lesson_added(module_b(), quiz_lesson(), LessonType::Quiz, 1, 3),
        ]
    }
    fn visibility(v: CourseVisibility) -> CourseAction {
        CourseAction::SetCourseVisibility(SetCourseVisibility { course_id: course_id(), visibility: v })
    }
    fn add_question(lesson_id: Uuid) -> AddQuizQuestion {
        AddQuizQuestion {
            course_id: course_id(),
            lesson_id,
            question_id: question_id(),
            question: "Which muscle?".into(),
            options: vec!["Frontalis".into(), "Masseter".into()],
            correct_option: 0,
            explanation: Some(" ".into()),
        }
    }
    fn archive(has_enrollments: bool) -> CourseAction {
        CourseAction::ArchiveCourse(ArchiveCourse { course_id: course_id(), has_enrollments })
    }

    #[test]
    fn it_should_let_only_instructors_create_courses() {
        TestHarness::<Course>::given([])
            .when(cmd(student(applicant_id()), CourseAction::CreateCourse(create())))
            .then_error(CourseError::OnlyInstructorsCreateCourses);
        TestHarness::<Course>::given([])
            .when(cmd(admin(), CourseAction::CreateCourse(create())))
            .then_error(CourseError::OnlyInstructorsCreateCourses);
    }

    #[test]
    fn it_should_create_a_course_as_a_draft() {
        TestHarness::<Course>::given([])
            .when(cmd(instructor(), CourseAction::CreateCourse(create())))
            .then([created_at(t(30))]);
        let course = Course::fold([created()].iter());
        assert_eq!(course.visibility(), CourseVisibility::Draft);
        assert!(!course.is_published());
        assert_eq!(course.instructor_id(), Some(instructor_id()));
        assert_eq!(course.title(), "Botox Fundamentals");
        assert_eq!(course.price(), Some(9_999));
        assert!(!course.is_free());
        assert!(course.certificate_enabled());
    }

    #[test]
    fn it_should_not_create_a_course_twice() {
        TestHarness::<Course>::given([created()])
            .when(cmd(instructor(), CourseAction::CreateCourse(create())))
            .then_error(CourseError::CourseAlreadyExists);
    }

    #[test]
    fn it_should_require_a_course_title() {
        TestHarness::<Course>::given([])
            .when(cmd(instructor(), CourseAction::CreateCourse(CreateCourse { title: "  ".into(), ..create() })))
            .then_error(CourseError::FieldRequired { field: "title" });
    }

    #[test]
    fn it_should_refuse_a_negative_price() {
        TestHarness::<Course>::given([])
            .when(cmd(instructor(), CourseAction::CreateCourse(CreateCourse { price: Some(-1), ..create() })))
            .then_error(CourseError::NegativePrice);
        let update = UpdateCourseDetails { course_id: course_id(), price: Some(-5), ..Default::default() };
        TestHarness::<Course>::given([created()])
            .when(cmd(instructor(), CourseAction::UpdateCourseDetails(update)))
            .then_error(CourseError::NegativePrice);
    }

    #[test]
    fn it_should_treat_a_course_without_a_price_or_at_zero_as_free() {
        for (price, free) in [(None, true), (Some(0), true), (Some(1), false)] {
            let course = Course::fold([created_with_price(price, t(1))].iter());
            assert_eq!(course.is_free(), free, "{price:?}");
            assert_eq!(course.price(), price);
        }
    }

    #[test]
    fn it_should_record_only_the_course_details_that_change() {
        let update = UpdateCourseDetails {
            course_id: course_id(),
            title: Some("Botox Fundamentals".into()),
            price: Some(0),
            duration: Some("".into()),
            tags: Some(vec!["botox".into(), "Advanced".into()]),
            certificate_enabled: Some(true),
            ..Default::default()
        };
        let updated = CourseEvent::CourseDetailsUpdated {
            course_id: course_id(),
            title: None,
            description: None,
            long_description: None,
            level: None,
            duration: Some(String::new()),
            price: Some(0),
            currency: None,
            category: None,
            tags: Some(vec!["botox".into(), "Advanced".into()]),
            certificate_enabled: None,
            discussion_enabled: None,
            thumbnail_url: None,
            what_you_will_learn: None,
            requirements: None,
            updated_by: instructor_id(),
            at: t(30),
        };
        TestHarness::<Course>::given([created()])
            .when(cmd(instructor(), CourseAction::UpdateCourseDetails(update)))
            .then([updated.clone()]);
        let course = Course::fold([created(), updated].iter());
        assert!(course.is_free());
        assert_eq!(course.details().duration, None);
        assert_eq!(course.details().tags, vec!["botox".to_owned(), "Advanced".to_owned()]);
    }

    #[test]
    fn it_should_record_nothing_when_an_update_changes_nothing() {
        let update = UpdateCourseDetails {
            course_id: course_id(),
            title: Some("Botox Fundamentals".into()),
            ..Default::default()
        };
        TestHarness::<Course>::given([created()])
            .when(cmd(admin(), CourseAction::UpdateCourseDetails(update)))
            .then([]);
    }

    #[test]
    fn it_should_let_only_the_courses_instructor_or_an_admin_change_it() {
        let update =
            UpdateCourseDetails { course_id: course_id(), title: Some("Mine now".into()), ..Default::default() };
        TestHarness::<Course>::given([created()])
            .when(cmd(other_instructor(), CourseAction::UpdateCourseDetails(update.clone())))
            .then_error(CourseError::NotYourCourse);
        let result = TestHarness::<Course>::given([created()])
            .when(cmd(admin(), CourseAction::UpdateCourseDetails(update)))
            .events()
            .unwrap();
        assert!(
            matches!(&result[..], [CourseEvent::CourseDetailsUpdated { updated_by, .. }] if *updated_by == admin_id())
        );
    }

    #[test]
    fn it_should_not_act_on_a_course_that_does_not_exist() {
        TestHarness::<Course>::given([])
            .when(cmd(instructor(), visibility(CourseVisibility::Private)))
            .then_error(CourseError::CourseNotFound);
    }

    #[test]
    fn it_should_not_publish_a_course_without_lessons() {
        TestHarness::<Course>::given([created(), module_added(module_a(), 1)])
            .when(cmd(instructor(), visibility(CourseVisibility::Public)))
            .then_error(CourseError::NoLessonsToPublish);
    }

    #[test]
    fn it_should_publish_a_course_with_a_lesson() {
        let published = CourseEvent::CourseVisibilityChanged {
            course_id: course_id(),
            visibility: CourseVisibility::Public,
            changed_by: instructor_id(),
            at: t(30),
        };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), visibility(CourseVisibility::Public)))
            .then([published.clone()]);
        let mut events = curriculum();
        events.push(published);
        assert!(Course::fold(events.iter()).is_published());
    }

    #[test]
    fn it_should_make_a_course_private_without_lessons() {
        TestHarness::<Course>::given([created()]).when(cmd(admin(), visibility(CourseVisibility::Private))).then([
            CourseEvent::CourseVisibilityChanged {
                course_id: course_id(),
                visibility: CourseVisibility::Private,
                changed_by: admin_id(),
                at: t(30),
            },
        ]);
    }

    #[test]
    fn it_should_record_nothing_when_the_visibility_does_not_change() {
        TestHarness::<Course>::given([created()]).when(cmd(instructor(), visibility(CourseVisibility::Draft))).then([]);
    }

    #[test]
    fn it_should_append_a_module_at_the_next_order() {
        let add = AddCourseModule {
            course_id: course_id(),
            module_id: module_b(),
            title: " Module 2 ".into(),
            description: Some("".into()),
        };
        TestHarness::<Course>::given([created(), module_added(module_a(), 1)])
            .when(cmd(instructor(), CourseAction::AddCourseModule(add)))
            .then([module_added_at(module_b(), 2, t(30))]);
    }

    #[test]
    fn it_should_not_add_a_module_twice() {
        let add =
            AddCourseModule { course_id: course_id(), module_id: module_a(), title: "Again".into(), description: None };
        TestHarness::<Course>::given([created(), module_added(module_a(), 1)])
            .when(cmd(instructor(), CourseAction::AddCourseModule(add)))
            .then_error(CourseError::ModuleAlreadyExists { module_id: module_a() });
    }

    #[test]
    fn it_should_append_a_lesson_with_its_order_and_the_course_lesson_count() {
        let add = AddLesson {
            course_id: course_id(),
            module_id: module_b(),
            lesson_id: Uuid::from_u128(0x20),
            title: "Lesson".into(),
            lesson_type: LessonType::Assignment,
            content: "https://video.example.com/1".into(),
            duration_minutes: Some(12),
        };
        let added = CourseEvent::LessonAdded {
            course_id: course_id(),
            module_id: module_b(),
            lesson_id: Uuid::from_u128(0x20),
            title: "Lesson".into(),
            lesson_type: LessonType::Assignment,
            content: "https://video.example.com/1".into(),
            duration: Some(12),
            order: 2,
            lesson_count: 4,
            at: t(30),
        };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::AddLesson(add)))
            .then([added.clone()]);
        let mut events = curriculum();
        events.push(added);
        let course = Course::fold(events.iter());
        assert_eq!(course.lesson_ids(), vec![lesson_1(), lesson_2(), quiz_lesson(), Uuid::from_u128(0x20)]);
        assert_eq!(course.lesson_count(), 4);
    }

    #[test]
    fn it_should_not_add_a_lesson_to_a_missing_module() {
        let add = AddLesson {
            course_id: course_id(),
            module_id: Uuid::from_u128(0x3F),
            lesson_id: Uuid::from_u128(0x20),
            title: "Lesson".into(),
            lesson_type: LessonType::Video,
            content: String::new(),
            duration_minutes: None,
        };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::AddLesson(add)))
            .then_error(CourseError::ModuleNotFound { module_id: Uuid::from_u128(0x3F) });
    }

    #[test]
    fn it_should_not_reuse_a_lesson_id_in_the_course() {
        let add = AddLesson {
            course_id: course_id(),
            module_id: module_b(),
            lesson_id: lesson_1(),
            title: "Lesson".into(),
            lesson_type: LessonType::Video,
            content: String::new(),
            duration_minutes: None,
        };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::AddLesson(add)))
            .then_error(CourseError::LessonAlreadyExists { lesson_id: lesson_1() });
    }

    #[test]
    fn it_should_add_a_quiz_question_to_a_quiz_lesson() {
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::AddQuizQuestion(add_question(quiz_lesson()))))
            .then([CourseEvent::QuizQuestionAdded {
                course_id: course_id(),
                lesson_id: quiz_lesson(),
                question_id: question_id(),
                question: "Which muscle?".into(),
                options: vec!["Frontalis".into(), "Masseter".into()],
                correct_option: 0,
                explanation: None,
                order: 1,
                at: t(30),
            }]);
    }

    #[test]
    fn it_should_add_quiz_questions_only_to_quiz_lessons() {
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::AddQuizQuestion(add_question(lesson_1()))))
            .then_error(CourseError::NotAQuizLesson { lesson_id: lesson_1() });
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::AddQuizQuestion(add_question(Uuid::from_u128(0x77)))))
            .then_error(CourseError::LessonNotFound { lesson_id: Uuid::from_u128(0x77) });
    }

    #[test]
    fn it_should_require_at_least_two_options() {
        let q = AddQuizQuestion { options: vec!["Only".into()], ..add_question(quiz_lesson()) };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::AddQuizQuestion(q)))
            .then_error(CourseError::TooFewOptions { count: 1 });
        let q = AddQuizQuestion { options: vec!["A".into(), " ".into()], ..add_question(quiz_lesson()) };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::AddQuizQuestion(q)))
            .then_error(CourseError::BlankOption { index: 1 });
    }

    #[test]
    fn it_should_require_the_correct_option_to_be_one_of_the_options() {
        let q = AddQuizQuestion { correct_option: 2, ..add_question(quiz_lesson()) };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::AddQuizQuestion(q)))
            .then_error(CourseError::CorrectOptionOutOfRange { correct_option: 2, options: 2 });
    }

    #[test]
    fn it_should_not_add_a_quiz_question_twice() {
        let mut events = curriculum();
        events.push(CourseEvent::QuizQuestionAdded {
            course_id: course_id(),
            lesson_id: quiz_lesson(),
            question_id: question_id(),
            question: "Which muscle?".into(),
            options: vec!["A".into(), "B".into()],
            correct_option: 1,
            explanation: None,
            order: 1,
            at: t(4),
        });
        TestHarness::<Course>::given(events)
            .when(cmd(instructor(), CourseAction::AddQuizQuestion(add_question(quiz_lesson()))))
            .then_error(CourseError::QuestionAlreadyExists { question_id: question_id() });
    }

    #[test]
    fn it_should_reorder_modules_by_a_permutation_of_their_ids() {
        let reorder = ReorderModules { course_id: course_id(), module_ids: vec![module_b(), module_a()] };
        let reordered = CourseEvent::ModulesReordered {
            course_id: course_id(),
            module_ids: vec![module_b(), module_a()],
            at: t(30),
        };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::ReorderModules(reorder)))
            .then([reordered.clone()]);
        let mut events = curriculum();
        events.push(reordered);
        assert_eq!(Course::fold(events.iter()).lesson_ids(), vec![quiz_lesson(), lesson_1(), lesson_2()]);
    }

    #[test]
    fn it_should_refuse_a_module_order_that_is_not_a_permutation() {
        for ids in [vec![module_a()], vec![module_a(), module_a()], vec![module_a(), module_b(), Uuid::from_u128(0x3F)]]
        {
            TestHarness::<Course>::given(curriculum())
                .when(cmd(
                    instructor(),
                    CourseAction::ReorderModules(ReorderModules { course_id: course_id(), module_ids: ids }),
                ))
                .then_error(CourseError::NotAPermutation);
        }
    }

    #[test]
    fn it_should_reorder_the_lessons_of_a_module() {
        let reorder =
            ReorderLessons { course_id: course_id(), module_id: module_a(), lesson_ids: vec![lesson_2(), lesson_1()] };
        let reordered = CourseEvent::LessonsReordered {
            course_id: course_id(),
            module_id: module_a(),
            lesson_ids: vec![lesson_2(), lesson_1()],
            at: t(30),
        };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::ReorderLessons(reorder)))
            .then([reordered.clone()]);
        let mut events = curriculum();
        events.push(reordered);
        assert_eq!(Course::fold(events.iter()).lesson_ids(), vec![lesson_2(), lesson_1(), quiz_lesson()]);
    }

    #[test]
    fn it_should_refuse_a_lesson_order_that_is_not_a_permutation() {
        let reorder = ReorderLessons {
            course_id: course_id(),
            module_id: module_a(),
            lesson_ids: vec![lesson_1(), quiz_lesson()],
        };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::ReorderLessons(reorder)))
            .then_error(CourseError::NotAPermutation);
    }

    #[test]
    fn it_should_record_nothing_when_the_order_does_not_change() {
        let reorder = ReorderModules { course_id: course_id(), module_ids: vec![module_a(), module_b()] };
        TestHarness::<Course>::given(curriculum())
            .when(cmd(instructor(), CourseAction::ReorderModules(reorder)))
            .then([]);
    }

    #[test]
    fn it_should_archive_a_course_with_enrolments() {
        let archived = CourseEvent::CourseArchived { course_id: course_id(), archived_by: instructor_id(), at: t(30) };
        TestHarness::<Course>::given(curriculum()).when(cmd(instructor(), archive(true))).then([archived.clone()]);
        let mut events = curriculum();
        events.push(archived);
        let course = Course::fold(events.iter());
        assert!(course.is_archived());
        assert!(course.exists(), "an archived course is still readable");
        assert_eq!(course.lesson_ids().len(), 3);
    }

    #[test]
    fn it_should_delete_a_course_without_enrolments() {
        let deleted = CourseEvent::CourseDeleted { course_id: course_id(), deleted_by: admin_id(), at: t(30) };
        TestHarness::<Course>::given(curriculum()).when(cmd(admin(), archive(false))).then([deleted.clone()]);
        let mut events = curriculum();
        events.push(deleted.clone());
        assert!(Course::fold(events.iter()).is_archived());
        TestHarness::<Course>::given([created(), deleted])
            .when(cmd(instructor(), visibility(CourseVisibility::Private)))
            .then_error(CourseError::CourseNotFound);
    }

    #[test]
    fn it_should_refuse_every_change_to_an_archived_course() {
        let archived = CourseEvent::CourseArchived { course_id: course_id(), archived_by: instructor_id(), at: t(5) };
        let mut events = curriculum();
        events.push(archived);
        for action in [
            visibility(CourseVisibility::Public),
            archive(true),
            CourseAction::AddQuizQuestion(add_question(quiz_lesson())),
            CourseAction::UpdateCourseDetails(UpdateCourseDetails {
                course_id: course_id(),
                title: Some("New".into()),
                ..Default::default()
            }),
        ] {
            TestHarness::<Course>::given(events.clone())
                .when(cmd(instructor(), action))
                .then_error(CourseError::CourseArchived);
        }
        assert!(!Course::fold(events.iter()).is_published());
    }

    // ------------------------------------------------------------------ wire formats

    #[test]
    fn it_should_read_command_bodies_in_camel_case_and_refuse_unknown_fields() {
        let body = json!({
            "courseId": course_id(),
            "title": "Fillers",
            "level": "advanced",
            "price": 4900,
            "certificateEnabled": true,
            "whatYouWillLearn": ["Safety"]
        });
        let p: CreateCourse = serde_json::from_value(body).unwrap();
        assert_eq!(p.level, Some(CourseLevel::Advanced));
        assert_eq!(p.currency, usd());
        assert!(p.certificate_enabled && !p.discussion_enabled);
        let p: AddLesson = serde_json::from_value(json!({
            "courseId": course_id(), "moduleId": module_a(), "lessonId": lesson_1(),
            "title": "Intro", "lessonType": "quiz", "durationMinutes": 5
        }))
        .unwrap();
        assert_eq!(p.lesson_type, LessonType::Quiz);
        let p: SubmitInstructorApplication = serde_json::from_value(json!({
            "applicationId": application_id(), "licenseNumber": "1", "licenseState": "CA",
            "licenseExpiry": "2027-01-31", "insuranceProvider": "X",
            "documents": [{ "name": "Licence", "url": "https://x.io/l.pdf" }]
        }))
        .unwrap();
        assert_eq!(p.license_expiry, day(2027, 1, 31));
        let archive: ArchiveCourse = serde_json::from_value(json!({ "courseId": course_id() })).unwrap();
        assert!(!archive.has_enrollments);
        assert!(
            serde_json::from_value::<ArchiveCourse>(json!({ "courseId": course_id(), "hasEnrollments": true }))
                .is_err(),
            "the enrolment fact is the handler's, never the body's"
        );
        assert!(serde_json::from_value::<SetCourseVisibility>(
            json!({ "courseId": course_id(), "visibility": "hidden" })
        )
        .is_err());
    }

    #[test]
    fn it_should_store_events_under_kebab_case_types_with_camel_case_fields() {
        let (event_type, payload) =
            encode_event(&lesson_added(module_a(), lesson_1(), LessonType::Video, 1, 1)).unwrap();
        assert_eq!(event_type, "lesson-added");
        assert_eq!(payload["lessonType"], "video");
        assert_eq!(payload["lessonCount"], 1);
        assert_eq!(payload["moduleId"], json!(module_a()));
        let (event_type, payload) = encode_event(&submitted()).unwrap();
        assert_eq!(event_type, "application-submitted");
        assert_eq!(payload["status"], "pending");
        assert_eq!(payload["licenseExpiry"], "2027-06-30");
        assert_eq!(payload["submittedAt"], json!(t(1)));
        assert_eq!(encode_event(&created()).unwrap().1["visibility"], "draft");
        let c = cmd(instructor(), visibility(CourseVisibility::Public));
        assert_eq!(c.stream_id(), format!("lms-course-{}", course_id()));
        assert_eq!(app_cmd(admin(), approve()).stream_id(), format!("lms-application-{}", application_id()));
    }

    #[test]
    fn it_should_classify_every_error() {
        use InstructorApplicationError as A;
        for e in [A::NotAUser, A::OnlyAdminsReview] {
            assert_eq!(e.kind(), ErrorKind::Forbidden, "{e:?}");
        }
        assert_eq!(A::ApplicationNotFound.kind(), ErrorKind::NotFound);
        for e in [A::AlreadyInstructor, A::AlreadySubmitted, A::NotPending { status: ApplicationStatus::Rejected }] {
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}");
        }
        for e in [
            A::FieldRequired { field: "x" },
            A::LicenseExpired { expiry: day(2020, 1, 1) },
            A::InvalidDocument { index: 0, reason: "x" },
            A::ReasonRequired,
        ] {
            assert_eq!(e.kind(), ErrorKind::Invalid, "{e:?}");
        }
        use CourseError as C;
        let id = Uuid::nil();
        for e in [C::OnlyInstructorsCreateCourses, C::NotYourCourse] {
            assert_eq!(e.kind(), ErrorKind::Forbidden, "{e:?}");
        }
        for e in [C::CourseNotFound, C::ModuleNotFound { module_id: id }, C::LessonNotFound { lesson_id: id }] {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}");
        }
        for e in [
            C::CourseAlreadyExists,
            C::CourseArchived,
            C::NoLessonsToPublish,
            C::ModuleAlreadyExists { module_id: id },
            C::LessonAlreadyExists { lesson_id: id },
            C::QuestionAlreadyExists { question_id: id },
            C::NotAQuizLesson { lesson_id: id },
        ] {
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e:?}");
        }
        for e in [
            C::FieldRequired { field: "title" },
            C::NegativePrice,
            C::TooFewOptions { count: 0 },
            C::BlankOption { index: 0 },
            C::CorrectOptionOutOfRange { correct_option: 3, options: 2 },
            C::NotAPermutation,
        ] {
            assert_eq!(e.kind(), ErrorKind::Invalid, "{e:?}");
        }
    }
}
