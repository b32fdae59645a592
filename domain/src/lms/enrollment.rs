//! The `Enrollment` aggregate of the learning platform: one student in one course (stream
//! `lms-enrollment-{courseId}-{userId}`, stream type `lms.enrollment`).
//!
//! One stream per user and course holds everything that decides access and completion for that
//! pair: the purchases (checkout sessions) opened for the course, the enrolment itself, the
//! progress of every lesson and the certificate. Keeping them together means "only a complete
//! purchase grants access", "one open checkout at a time" and "exactly one certificate" are each
//! checked against one consistent state in one decision.
//!
//! # Purchases
//!
//! A free course enrols at once. A paid course opens a purchase (`open`) with the course price
//! *at that moment* and a checkout expiry; the payment provider's webhook then completes it (and
//! the student is enrolled), or it expires or fails. While a purchase is open and not expired,
//! asking to enrol again is answered with no events (the client re-uses its checkout). Once its
//! expiry has passed it may be replaced: the stale purchase is expired in the same decision, so
//! the read table never shows two open purchases. Webhooks are idempotent on the provider's
//! checkout session id.
//!
//! A completion webhook for a purchase that is still open is accepted even after its expiry time
//! has passed: the provider only completes a session it has taken the money for, and the
//! webhook may simply arrive late. A completion for a purchase already expired or failed is
//! refused: it must not grant access (the handler refunds it).
//!
//! # Ids, time and looked-up values
//!
//! Decisions are pure: the handler puts the time, the course price and publication, the lesson
//! list, the names on the certificate and every id (purchase, certificate, verification code)
//! into the command. The verification code must be globally unique; the handler reserves it,
//! this aggregate only checks its shape.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Actor, ErrorKind};
use crate::kernel::{Aggregate, DomainEvent};
use crate::values::Currency;

/// The stream type of enrolments.
pub const STREAM_TYPE: &str = "lms.enrollment";

/// The certificate design every certificate is issued with for now.
pub const DEFAULT_CERTIFICATE_TEMPLATE: &str = "default";

/// The shortest and longest verification code accepted.
pub const VERIFICATION_CODE_LENGTH: std::ops::RangeInclusive<usize> = 8..=64;

/// The stream of `user_id`'s enrolment in `course_id`.
pub fn stream_id(course_id: Uuid, user_id: Uuid) -> String {
    format!("lms-enrollment-{course_id}-{user_id}")
}

/// Whether `code` has the shape of a verification code: 8 to 64 characters of `A-Z`, `0-9`
/// and `-`. Uniqueness is the handler's business (it reserves the code).
pub fn is_valid_verification_code(code: &str) -> bool {
    VERIFICATION_CODE_LENGTH.contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/// Where a purchase is. Only `complete` grants access.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    Open,
    Complete,
    Expired,
    Failed,
}

impl PurchaseStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PurchaseStatus::Open => "open",
            PurchaseStatus::Complete => "complete",
            PurchaseStatus::Expired => "expired",
            PurchaseStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for PurchaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a checkout session as the payment provider's webhook reports it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutStatus {
    Complete,
    Expired,
    Failed,
}

/// One purchase (checkout) of the course by the student, as its events left it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Purchase {
    pub purchase_id: Uuid,
    /// The course price when the purchase was opened, in minor units.
    pub amount: i64,
    /// Lower-case ISO code.
    pub currency: String,
    pub status: PurchaseStatus,
    pub opened_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The provider's session that closed the purchase, if a webhook did.
    pub checkout_session_id: Option<String>,
    /// When it left `open`.
    pub closed_at: Option<DateTime<Utc>>,
}

/// The student's progress in one lesson.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LessonProgress {
    pub lesson_id: Uuid,
    pub completed: bool,
    pub completed_at: Option<DateTime<Utc>>,
    /// Seconds spent in the lesson over all its completions.
    pub time_spent: u32,
}

/// The certificate issued for the course, with the names as they were at issue time.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    pub certificate_id: Uuid,
    pub user_name: String,
    pub course_name: String,
    pub instructor_id: Uuid,
    pub instructor_name: String,
    pub issue_date: DateTime<Utc>,
    pub expiry_date: Option<DateTime<Utc>>,
    pub verification_code: String,
    pub template_id: String,
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// A command to one enrolment. `actor` comes from the session (or is the system for webhooks
/// and the scheduler), `at` is the handler's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: EnrollmentAction,
}

impl EnrollmentCommand {
    /// The course of the enrolment the command is about.
    pub fn course_id(&self) -> Uuid {
        match &self.action {
            EnrollmentAction::EnrollCourse(p) => p.course_id,
            EnrollmentAction::RecordCheckoutWebhook(p) => p.course_id,
            EnrollmentAction::ExpireCheckout(p) => p.course_id,
            EnrollmentAction::CompleteLesson(p) => p.course_id,
        }
    }

    /// The student: the actor when enrolling or learning, the named user for webhooks and the
    /// scheduler.
    pub fn user_id(&self) -> Uuid {
        match &self.action {
            EnrollmentAction::EnrollCourse(_) | EnrollmentAction::CompleteLesson(_) => self.actor.id,
            EnrollmentAction::RecordCheckoutWebhook(p) => p.user_id,
            EnrollmentAction::ExpireCheckout(p) => p.user_id,
        }
    }

    /// The stream the command goes to.
    pub fn stream_id(&self) -> String {
        stream_id(self.course_id(), self.user_id())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EnrollmentAction {
    EnrollCourse(EnrollCourse),
    RecordCheckoutWebhook(RecordCheckoutWebhook),
    ExpireCheckout(ExpireCheckout),
    CompleteLesson(CompleteLesson),
}

/// The HTTP body of `enroll-course`: the client names the course only; the handler looks up
/// the rest and builds [`EnrollCourse`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollCourseBody {
    pub course_id: Uuid,
}

/// `enroll-course` as decided: the body plus what the handler looked up and generated.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollCourse {
    pub course_id: Uuid,
    /// The course price now, in minor units; 0 is a free course.
    pub course_price: i64,
    /// ISO code of the price.
    pub currency: String,
    /// Whether the course is public (only published courses take students).
    pub course_published: bool,
    /// The id a new purchase gets (unused for a free course or an open checkout).
    pub purchase_id: Uuid,
    /// When a new checkout session expires.
    pub checkout_expires_at: DateTime<Utc>,
}

/// `record-checkout-webhook` (the system, from the payment provider's webhook).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordCheckoutWebhook {
    pub course_id: Uuid,
    pub user_id: Uuid,
    pub purchase_id: Uuid,
    /// The provider's checkout session: a webhook replayed with the same id changes nothing.
    pub checkout_session_id: String,
    pub status: CheckoutStatus,
}

/// `expire-checkout` (the system, from the scheduler).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpireCheckout {
    pub course_id: Uuid,
    pub user_id: Uuid,
    pub purchase_id: Uuid,
}

/// The HTTP body of `complete-lesson`; the handler looks up the rest and builds
/// [`CompleteLesson`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteLessonBody {
    pub course_id: Uuid,
    pub lesson_id: Uuid,
    #[serde(default)]
    pub time_spent_seconds: u32,
}

/// `complete-lesson` as decided (enrolled students). Everything after `time_spent_seconds` is
/// looked up or generated by the handler; the certificate fields are used only when this
/// completion finishes the course.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteLesson {
    pub course_id: Uuid,
    pub lesson_id: Uuid,
    pub time_spent_seconds: u32,
    /// Every lesson of the course now.
    pub course_lesson_ids: Vec<Uuid>,
    pub certificate_enabled: bool,
    pub certificate_id: Uuid,
    /// Generated and reserved (globally unique) by the handler.
    pub verification_code: String,
    pub user_name: String,
    pub course_name: String,
    pub instructor_id: Uuid,
    pub instructor_name: String,
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What happened to an enrolment. The tag (`purchase-opened`, …) is the stored event type; each
/// event carries the course and the student so projectors never read state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EnrollmentEvent {
    #[serde(rename_all = "camelCase")]
    PurchaseOpened {
        purchase_id: Uuid,
        course_id: Uuid,
        user_id: Uuid,
        /// The course price at the moment of enrolment, in minor units.
        amount: i64,
        /// Lower-case ISO code.
        currency: String,
        /// Always `open`.
        status: PurchaseStatus,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    PurchaseCompleted {
        purchase_id: Uuid,
        course_id: Uuid,
        user_id: Uuid,
        amount: i64,
        currency: String,
        checkout_session_id: String,
        /// Always `complete`.
        status: PurchaseStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    PurchaseExpired {
        purchase_id: Uuid,
        course_id: Uuid,
        user_id: Uuid,
        /// The webhook's session; `None` when the scheduler or a new enrolment expired it.
        checkout_session_id: Option<String>,
        /// Always `expired`.
        status: PurchaseStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    PurchaseFailed {
        purchase_id: Uuid,
        course_id: Uuid,
        user_id: Uuid,
        checkout_session_id: String,
        /// Always `failed`.
        status: PurchaseStatus,
        at: DateTime<Utc>,
    },
    /// The student has access: a free course, or a completed purchase.
    #[serde(rename_all = "camelCase")]
    Enrolled { course_id: Uuid, user_id: Uuid, purchase_id: Option<Uuid>, at: DateTime<Utc> },
    /// The first completion of a lesson.
    #[serde(rename_all = "camelCase")]
    LessonCompleted {
        course_id: Uuid,
        user_id: Uuid,
        lesson_id: Uuid,
        /// Seconds spent (the total, as this is the first completion).
        time_spent: u32,
        completed_at: DateTime<Utc>,
    },
    /// Another completion of a lesson already complete: more time, no second completion.
    #[serde(rename_all = "camelCase")]
    LessonProgressed {
        course_id: Uuid,
        user_id: Uuid,
        lesson_id: Uuid,
        /// Seconds this completion added.
        time_added: u32,
        /// Total seconds spent in the lesson after it.
        time_spent: u32,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    CertificateIssued {
        certificate_id: Uuid,
        user_id: Uuid,
        user_name: String,
        course_id: Uuid,
        course_name: String,
        instructor_id: Uuid,
        instructor_name: String,
        issue_date: DateTime<Utc>,
        expiry_date: Option<DateTime<Utc>>,
        verification_code: String,
        template_id: String,
    },
}

impl DomainEvent for EnrollmentEvent {}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why an enrolment command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnrollmentError {
    #[error("only a signed-in user may enrol or complete lessons")]
    SignInRequired,
    #[error("only the system (webhooks and the scheduler) may do this")]
    OnlySystem,
    #[error("only students enrolled in the course may complete its lessons")]
    NotEnrolled,
    #[error("the course is not published")]
    CourseNotPublished,
    #[error("the user is already enrolled in the course")]
    AlreadyEnrolled,
    #[error("no such purchase of this course by this user")]
    PurchaseNotFound,
    #[error("the lesson is not part of the course")]
    LessonNotFound,
    #[error("the purchase is {status}, not open: it cannot be completed")]
    PurchaseNotOpen { status: PurchaseStatus },
    #[error("the purchase is already complete")]
    PurchaseAlreadyCompleted,
    #[error("the checkout has not expired yet")]
    CheckoutNotExpired,
    #[error("the purchase id is already used")]
    PurchaseIdTaken,
    #[error("a course price cannot be negative")]
    NegativePrice,
    #[error("invalid currency: {0}")]
    InvalidCurrency(String),
    #[error("the checkout must expire after now")]
    CheckoutExpiryNotInFuture,
    #[error("a checkout session id is required")]
    CheckoutSessionRequired,
    #[error("a verification code is 8 to 64 characters of A-Z, 0-9 and -")]
    InvalidVerificationCode,
    #[error("a certificate needs the student's, the course's and the instructor's names")]
    CertificateNameRequired,
}

impl EnrollmentError {
    pub fn kind(&self) -> ErrorKind {
        use EnrollmentError::*;
        match self {
            SignInRequired | OnlySystem | NotEnrolled => ErrorKind::Forbidden,
            PurchaseNotFound | LessonNotFound => ErrorKind::NotFound,
            CourseNotPublished
            | AlreadyEnrolled
            | PurchaseNotOpen { .. }
            | PurchaseAlreadyCompleted
            | CheckoutNotExpired
            | PurchaseIdTaken => ErrorKind::Conflict,
            NegativePrice
            | InvalidCurrency(_)
            | CheckoutExpiryNotInFuture
            | CheckoutSessionRequired
            | InvalidVerificationCode
            | CertificateNameRequired => ErrorKind::Invalid,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// One student's enrolment in one course as its events left it. Fields are private: only
/// `evolve` writes them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrollment {
    course_id: Option<Uuid>,
    user_id: Option<Uuid>,
    enrolled: bool,
    enrolled_at: Option<DateTime<Utc>>,
    /// The purchase that granted access (`None` for a free course).
    enrolled_with: Option<Uuid>,
    /// Every purchase, oldest first.
    purchases: Vec<Purchase>,
    /// Checkout sessions whose webhook was recorded (replays change nothing).
    checkout_sessions: BTreeSet<String>,
    lessons: BTreeMap<Uuid, LessonProgress>,
    certificate: Option<Certificate>,
}

impl Enrollment {
    pub fn course_id(&self) -> Option<Uuid> {
        self.course_id
    }
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    /// Whether the student has access (free course or completed purchase).
    pub fn is_enrolled(&self) -> bool {
        self.enrolled
    }
    pub fn enrolled_at(&self) -> Option<DateTime<Utc>> {
        self.enrolled_at
    }
    /// The purchase that granted access, if it was a paid enrolment.
    pub fn enrolled_with(&self) -> Option<Uuid> {
        self.enrolled_with
    }
    /// The lessons completed, in id order.
    pub fn completed_lessons(&self) -> Vec<Uuid> {
        self.lessons.values().filter(|l| l.completed).map(|l| l.lesson_id).collect()
    }
    pub fn lesson_progress(&self, lesson_id: Uuid) -> Option<&LessonProgress> {
        self.lessons.get(&lesson_id)
    }
    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_ref()
    }
    /// The purchase still open (at most one), whether or not its expiry has passed.
    pub fn open_purchase(&self) -> Option<&Purchase> {
        self.purchases.iter().rev().find(|p| p.status == PurchaseStatus::Open)
    }
    pub fn purchase(&self, purchase_id: Uuid) -> Option<&Purchase> {
        self.purchases.iter().find(|p| p.purchase_id == purchase_id)
    }
    pub fn purchases(&self) -> &[Purchase] {
        &self.purchases
    }

    /// The named purchase, if it is this stream's (same course and student).
    fn purchase_of(&self, course_id: Uuid, user_id: Uuid, purchase_id: Uuid) -> Result<&Purchase, EnrollmentError> {
        if self.course_id != Some(course_id) || self.user_id != Some(user_id) {
            return Err(EnrollmentError::PurchaseNotFound);
        }
        self.purchase(purchase_id).ok_or(EnrollmentError::PurchaseNotFound)
    }

    fn decide_enroll(
        &self,
        actor: &Actor,
        p: &EnrollCourse,
        at: DateTime<Utc>,
    ) -> Result<Vec<EnrollmentEvent>, EnrollmentError> {
        if actor.system {
            return Err(EnrollmentError::SignInRequired);
        }
        if self.enrolled {
            return Err(EnrollmentError::AlreadyEnrolled);
        }
        if !p.course_published {
            return Err(EnrollmentError::CourseNotPublished);
        }
        if p.course_price < 0 {
            return Err(EnrollmentError::NegativePrice);
        }
        let (course_id, user_id) = (p.course_id, actor.id);
        if p.course_price == 0 {
            return Ok(vec![EnrollmentEvent::Enrolled { course_id, user_id, purchase_id: None, at }]);
        }
        let mut events = Vec::with_capacity(2);
        if let Some(open) = self.open_purchase() {
            if at < open.expires_at {
                // The student's checkout is still running: they re-use it.
                return Ok(vec![]);
            }
            events.push(EnrollmentEvent::PurchaseExpired {
                purchase_id: open.purchase_id,
                course_id,
                user_id,
                checkout_session_id: None,
                status: PurchaseStatus::Expired,
                at,
            });
        }
        let currency = Currency::parse(p.currency.trim()).map_err(EnrollmentError::InvalidCurrency)?;
        if p.checkout_expires_at <= at {
            return Err(EnrollmentError::CheckoutExpiryNotInFuture);
        }
        if self.purchase(p.purchase_id).is_some() {
            return Err(EnrollmentError::PurchaseIdTaken);
        }
        events.push(EnrollmentEvent::PurchaseOpened {
            purchase_id: p.purchase_id,
            course_id,
            user_id,
            amount: p.course_price,
            currency: currency.to_string(),
            status: PurchaseStatus::Open,
            expires_at: p.checkout_expires_at,
            at,
        });
        Ok(events)
    }

    fn decide_webhook(
        &self,
        actor: &Actor,
        p: &RecordCheckoutWebhook,
        at: DateTime<Utc>,
    ) -> Result<Vec<EnrollmentEvent>, EnrollmentError> {
        if !actor.system {
            return Err(EnrollmentError::OnlySystem);
        }
        let session = p.checkout_session_id.trim();
        if session.is_empty() {
            return Err(EnrollmentError::CheckoutSessionRequired);
        }
        if self.checkout_sessions.contains(session) {
            return Ok(vec![]);
        }
        let purchase = self.purchase_of(p.course_id, p.user_id, p.purchase_id)?;
        let (purchase_id, course_id, user_id) = (p.purchase_id, p.course_id, p.user_id);
        let session = session.to_owned();
        match (p.status, purchase.status) {
            (CheckoutStatus::Complete, PurchaseStatus::Open) => {
                let mut events = vec![EnrollmentEvent::PurchaseCompleted {
                    purchase_id,
                    course_id,
                    user_id,
                    amount: purchase.amount,
                    currency: purchase.currency.clone(),
                    checkout_session_id: session,
                    status: PurchaseStatus::Complete,
                    at,
                }];
                // Already enrolled (the course went free meanwhile): the payment is recorded,
                // the access is not granted twice.
                if !self.enrolled {
                    events.push(EnrollmentEvent::Enrolled { course_id, user_id, purchase_id: Some(purchase_id), at });
                }
                Ok(events)
            }
            (_, PurchaseStatus::Complete) => Err(EnrollmentError::PurchaseAlreadyCompleted),
            (CheckoutStatus::Complete, status) => Err(EnrollmentError::PurchaseNotOpen { status }),
            (CheckoutStatus::Expired, PurchaseStatus::Open) => Ok(vec![EnrollmentEvent::PurchaseExpired {
                purchase_id,
                course_id,
                user_id,
                checkout_session_id: Some(session),
                status: PurchaseStatus::Expired,
                at,
            }]),
            (CheckoutStatus::Failed, PurchaseStatus::Open) => Ok(vec![EnrollmentEvent::PurchaseFailed {
                purchase_id,
                course_id,
                user_id,
                checkout_session_id: session,
                status: PurchaseStatus::Failed,
                at,
            }]),
            // Already closed without payment: nothing changes.
            (CheckoutStatus::Expired | CheckoutStatus::Failed, PurchaseStatus::Expired | PurchaseStatus::Failed) => {
                Ok(vec![])
            }
        }
    }

    fn decide_expire(
        &self,
        actor: &Actor,
        p: &ExpireCheckout,
        at: DateTime<Utc>,
    ) -> Result<Vec<EnrollmentEvent>, EnrollmentError> {
        if !actor.system {
            return Err(EnrollmentError::OnlySystem);
        }
        let purchase = self.purchase_of(p.course_id, p.user_id, p.purchase_id)?;
        if purchase.status != PurchaseStatus::Open {
            // Completed, failed or expired meanwhile (a webhook won the race): nothing to do.
            return Ok(vec![]);
        }
        if at < purchase.expires_at {
            return Err(EnrollmentError::CheckoutNotExpired);
        }
        Ok(vec![EnrollmentEvent::PurchaseExpired {
            purchase_id: p.purchase_id,
            course_id: p.course_id,
            user_id: p.user_id,
            checkout_session_id: None,
            status: PurchaseStatus::Expired,
            at,
        }])
    }

    fn decide_complete_lesson(
        &self,
        actor: &Actor,
        p: &CompleteLesson,
        at: DateTime<Utc>,
    ) -> Result<Vec<EnrollmentEvent>, EnrollmentError> {
        if actor.system {
            return Err(EnrollmentError::SignInRequired);
        }
        if !self.enrolled || self.course_id != Some(p.course_id) || self.user_id != Some(actor.id) {
            return Err(EnrollmentError::NotEnrolled);
        }
        let course_lessons: BTreeSet<Uuid> = p.course_lesson_ids.iter().copied().collect();
        if !course_lessons.contains(&p.lesson_id) {
            return Err(EnrollmentError::LessonNotFound);
        }
        let (course_id, user_id, lesson_id) = (p.course_id, actor.id, p.lesson_id);
        let mut events = Vec::with_capacity(2);
        match self.lessons.get(&lesson_id) {
            Some(progress) if progress.completed => {
                if p.time_spent_seconds > 0 {
                    events.push(EnrollmentEvent::LessonProgressed {
                        course_id,
                        user_id,
                        lesson_id,
                        time_added: p.time_spent_seconds,
                        time_spent: progress.time_spent.saturating_add(p.time_spent_seconds),
                        at,
                    });
                }
            }
            _ => events.push(EnrollmentEvent::LessonCompleted {
                course_id,
                user_id,
                lesson_id,
                time_spent: p.time_spent_seconds,
                completed_at: at,
            }),
        }
        let course_complete =
            course_lessons.iter().all(|id| *id == lesson_id || self.lessons.get(id).is_some_and(|l| l.completed));
        if course_complete && p.certificate_enabled && self.certificate.is_none() {
            if !is_valid_verification_code(&p.verification_code) {
                return Err(EnrollmentError::InvalidVerificationCode);
            }
            let (user_name, course_name, instructor_name) =
                (p.user_name.trim(), p.course_name.trim(), p.instructor_name.trim());
            if user_name.is_empty() || course_name.is_empty() || instructor_name.is_empty() {
                return Err(EnrollmentError::CertificateNameRequired);
            }
            events.push(EnrollmentEvent::CertificateIssued {
                certificate_id: p.certificate_id,
                user_id,
                user_name: user_name.to_owned(),
                course_id,
                course_name: course_name.to_owned(),
                instructor_id: p.instructor_id,
                instructor_name: instructor_name.to_owned(),
                issue_date: at,
                expiry_date: None,
                verification_code: p.verification_code.clone(),
                template_id: DEFAULT_CERTIFICATE_TEMPLATE.to_owned(),
            });
        }
        Ok(events)
    }

    fn close_purchase(
        &mut self,
        purchase_id: Uuid,
        status: PurchaseStatus,
        session: Option<&String>,
        at: DateTime<Utc>,
    ) {
        if let Some(purchase) = self.purchases.iter_mut().find(|p| p.purchase_id == purchase_id) {
            purchase.status = status;
            purchase.closed_at = Some(at);
            if let Some(session) = session {
                purchase.checkout_session_id = Some(session.clone());
            }
        }
        if let Some(session) = session {
            self.checkout_sessions.insert(session.clone());
        }
    }
}

impl Aggregate for Enrollment {
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    type Event = EnrollmentEvent;
    type Command = EnrollmentCommand;
    type Error = EnrollmentError;

    fn decide(&self, command: &EnrollmentCommand) -> Result<Vec<EnrollmentEvent>, EnrollmentError> {
        let EnrollmentCommand { actor, at, action } = command;
        match action {
            EnrollmentAction::EnrollCourse(p) => self.decide_enroll(actor, p, *at),
            EnrollmentAction::RecordCheckoutWebhook(p) => self.decide_webhook(actor, p, *at),
            EnrollmentAction::ExpireCheckout(p) => self.decide_expire(actor, p, *at),
            EnrollmentAction::CompleteLesson(p) => self.decide_complete_lesson(actor, p, *at),
        }
    }

    fn evolve(&mut self, event: &EnrollmentEvent) {
        match event {
            EnrollmentEvent::PurchaseOpened {
                purchase_id,
                course_id,
                user_id,
                amount,
                currency,
                expires_at,
                at,
                ..
            } => {
                self.course_id = Some(*course_id);
                self.user_id = Some(*user_id);
                self.purchases.push(Purchase {
                    purchase_id: *purchase_id,
                    amount: *amount,
                    currency: currency.clone(),
                    status: PurchaseStatus::Open,
                    opened_at: *at,
                    expires_at: *expires_at,
                    checkout_session_id: None,
                    closed_at: None,
                });
            }
            EnrollmentEvent::PurchaseCompleted { purchase_id, checkout_session_id, at, .. } => {
                self.close_purchase(*purchase_id, PurchaseStatus::Complete, Some(checkout_session_id), *at);
            }
            EnrollmentEvent::PurchaseExpired { purchase_id, checkout_session_id, at, .. } => {
                self.close_purchase(*purchase_id, PurchaseStatus::Expired, checkout_session_id.as_ref(), *at);
            }
            EnrollmentEvent::PurchaseFailed { purchase_id, checkout_session_id, at, .. } => {
                self.close_purchase(*purchase_id, PurchaseStatus::Failed, Some(checkout_session_id), *at);
            }
            EnrollmentEvent::Enrolled { course_id, user_id, purchase_id, at } => {
                self.course_id = Some(*course_id);
                self.user_id = Some(*user_id);
                self.enrolled = true;
                self.enrolled_at = Some(*at);
                self.enrolled_with = *purchase_id;
            }
            EnrollmentEvent::LessonCompleted { lesson_id, time_spent, completed_at, .. } => {
                self.lessons.insert(
                    *lesson_id,
                    LessonProgress {
                        lesson_id: *lesson_id,
                        completed: true,
                        completed_at: Some(*completed_at),
                        time_spent: *time_spent,
                    },
                );
            }
            EnrollmentEvent::LessonProgressed { lesson_id, time_spent, .. } => {
                let progress = self.lessons.entry(*lesson_id).or_insert_with(|| LessonProgress {
                    lesson_id: *lesson_id,
                    completed: true,
                    completed_at: None,
                    time_spent: 0,
                });
                progress.time_spent = *time_spent;
            }
            EnrollmentEvent::CertificateIssued {
                certificate_id,
                user_name,
                course_name,
                instructor_id,
                instructor_name,
                issue_date,
                expiry_date,
                verification_code,
                template_id,
                ..
            } => {
                self.certificate = Some(Certificate {
                    certificate_id: *certificate_id,
                    user_name: user_name.clone(),
                    course_name: course_name.clone(),
                    instructor_id: *instructor_id,
                    instructor_name: instructor_name.clone(),
                    issue_date: *issue_date,
                    expiry_date: *expiry_date,
                    verification_code: verification_code.clone(),
                    template_id: template_id.clone(),
                });
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

    fn course_id() -> Uuid {
        Uuid::from_u128(0xC0)
    }
    fn student_id() -> Uuid {
        Uuid::from_u128(0x51)
    }
    fn instructor_id() -> Uuid {
        Uuid::from_u128(0x1A)
    }
    fn purchase_id() -> Uuid {
        Uuid::from_u128(0xB1)
    }
    fn new_purchase_id() -> Uuid {
        Uuid::from_u128(0xB2)
    }
    fn certificate_id() -> Uuid {
        Uuid::from_u128(0xCE)
    }
    fn lesson(n: u128) -> Uuid {
        Uuid::from_u128(0x1E00 + n)
    }
    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap() + chrono::Duration::minutes(i64::from(minute))
    }
    fn student() -> Actor {
        Actor { id: student_id(), is_instructor: false, is_admin: false, system: false }
    }
    fn cmd(actor: Actor, minute: u32, action: EnrollmentAction) -> EnrollmentCommand {
        EnrollmentCommand { actor, at: t(minute), action }
    }

    fn enroll(price: i64) -> EnrollmentAction {
        EnrollmentAction::EnrollCourse(EnrollCourse {
            course_id: course_id(),
            course_price: price,
            currency: "USD".into(),
            course_published: true,
            purchase_id: purchase_id(),
            checkout_expires_at: t(30),
        })
    }
    fn webhook(session: &str, status: CheckoutStatus) -> EnrollmentAction {
        EnrollmentAction::RecordCheckoutWebhook(RecordCheckoutWebhook {
            course_id: course_id(),
            user_id: student_id(),
            purchase_id: purchase_id(),
            checkout_session_id: session.into(),
            status,
        })
    }
    fn expire_checkout() -> EnrollmentAction {
        EnrollmentAction::ExpireCheckout(ExpireCheckout {
            course_id: course_id(),
            user_id: student_id(),
            purchase_id: purchase_id(),
        })
    }
    fn complete(lesson_id: Uuid, seconds: u32) -> CompleteLesson {
        CompleteLesson {
            course_id: course_id(),
            lesson_id,
            time_spent_seconds: seconds,
            course_lesson_ids: vec![lesson(1), lesson(2)],
            certificate_enabled: true,
            certificate_id: certificate_id(),
            verification_code: "DOC-7K2M-9QXA".into(),
            user_name: "Ada Student".into(),
            course_name: "Botox 101".into(),
            instructor_id: instructor_id(),
            instructor_name: "Jane Instructor".into(),
        }
    }

    fn opened(amount: i64) -> EnrollmentEvent {
        EnrollmentEvent::PurchaseOpened {
            purchase_id: purchase_id(),
            course_id: course_id(),
            user_id: student_id(),
            amount,
            currency: "usd".into(),
            status: PurchaseStatus::Open,
            expires_at: t(30),
            at: t(0),
        }
    }
    fn expired(session: Option<&str>) -> EnrollmentEvent {
        EnrollmentEvent::PurchaseExpired {
            purchase_id: purchase_id(),
            course_id: course_id(),
            user_id: student_id(),
            checkout_session_id: session.map(str::to_owned),
            status: PurchaseStatus::Expired,
            at: t(31),
        }
    }
    fn completed(session: &str) -> EnrollmentEvent {
        EnrollmentEvent::PurchaseCompleted {
            purchase_id: purchase_id(),
            course_id: course_id(),
            user_id: student_id(),
            amount: 9999,
            currency: "usd".into(),
            checkout_session_id: session.into(),
            status: PurchaseStatus::Complete,
            at: t(5),
        }
    }
    fn enrolled(purchase: Option<Uuid>) -> EnrollmentEvent {
        EnrollmentEvent::Enrolled { course_id: course_id(), user_id: student_id(), purchase_id: purchase, at: t(5) }
    }
    fn lesson_completed(lesson_id: Uuid, seconds: u32) -> EnrollmentEvent {
        EnrollmentEvent::LessonCompleted {
            course_id: course_id(),
            user_id: student_id(),
            lesson_id,
            time_spent: seconds,
            completed_at: t(10),
        }
    }
    fn certificate_issued(minute: u32) -> EnrollmentEvent {
        EnrollmentEvent::CertificateIssued {
            certificate_id: certificate_id(),
            user_id: student_id(),
            user_name: "Ada Student".into(),
            course_id: course_id(),
            course_name: "Botox 101".into(),
            instructor_id: instructor_id(),
            instructor_name: "Jane Instructor".into(),
            issue_date: t(minute),
            expiry_date: None,
            verification_code: "DOC-7K2M-9QXA".into(),
            template_id: "default".into(),
        }
    }

    // enroll-course

    #[test]
    fn it_should_enrol_at_once_in_a_free_course() {
        TestHarness::<Enrollment>::given([]).when(cmd(student(), 5, enroll(0))).then([enrolled(None)]);
    }

    #[test]
    fn it_should_open_a_purchase_for_a_paid_course() {
        TestHarness::<Enrollment>::given([]).when(cmd(student(), 0, enroll(9999))).then([opened(9999)]);
    }

    #[test]
    fn it_should_take_the_price_at_the_moment_of_enrolment() {
        // The course cost 9 999 when the first checkout opened; it costs 4 999 now.
        let mut action = enroll(4999);
        if let EnrollmentAction::EnrollCourse(p) = &mut action {
            p.purchase_id = new_purchase_id();
            p.checkout_expires_at = t(70);
        }
        TestHarness::<Enrollment>::given([opened(9999), expired(None)]).when(cmd(student(), 40, action)).then([
            EnrollmentEvent::PurchaseOpened {
                purchase_id: new_purchase_id(),
                course_id: course_id(),
                user_id: student_id(),
                amount: 4999,
                currency: "usd".into(),
                status: PurchaseStatus::Open,
                expires_at: t(70),
                at: t(40),
            },
        ]);
    }

    #[test]
    fn it_should_not_enrol_in_an_unpublished_course() {
        let mut action = enroll(0);
        if let EnrollmentAction::EnrollCourse(p) = &mut action {
            p.course_published = false;
        }
        TestHarness::<Enrollment>::given([])
            .when(cmd(student(), 0, action))
            .then_error(EnrollmentError::CourseNotPublished);
    }

    #[test]
    fn it_should_not_enrol_a_student_twice() {
        TestHarness::<Enrollment>::given([enrolled(None)])
            .when(cmd(student(), 6, enroll(0)))
            .then_error(EnrollmentError::AlreadyEnrolled);
    }

    #[test]
    fn it_should_answer_with_no_events_while_a_checkout_is_still_open() {
        TestHarness::<Enrollment>::given([opened(9999)]).when(cmd(student(), 10, enroll(9999))).then([]);
    }

    #[test]
    fn it_should_replace_an_expired_open_checkout_with_a_new_one() {
        let mut action = enroll(9999);
        if let EnrollmentAction::EnrollCourse(p) = &mut action {
            p.purchase_id = new_purchase_id();
            p.checkout_expires_at = t(65);
        }
        TestHarness::<Enrollment>::given([opened(9999)]).when(cmd(student(), 35, action)).then([
            EnrollmentEvent::PurchaseExpired {
                purchase_id: purchase_id(),
                course_id: course_id(),
                user_id: student_id(),
                checkout_session_id: None,
                status: PurchaseStatus::Expired,
                at: t(35),
            },
            EnrollmentEvent::PurchaseOpened {
                purchase_id: new_purchase_id(),
                course_id: course_id(),
                user_id: student_id(),
                amount: 9999,
                currency: "usd".into(),
                status: PurchaseStatus::Open,
                expires_at: t(65),
                at: t(35),
            },
        ]);
    }

    #[test]
    fn it_should_refuse_a_negative_price() {
        TestHarness::<Enrollment>::given([])
            .when(cmd(student(), 0, enroll(-1)))
            .then_error(EnrollmentError::NegativePrice);
    }

    #[test]
    fn it_should_refuse_an_invalid_currency() {
        let mut action = enroll(9999);
        if let EnrollmentAction::EnrollCourse(p) = &mut action {
            p.currency = "dollars".into();
        }
        let result = TestHarness::<Enrollment>::given([]).when(cmd(student(), 0, action)).events();
        assert!(matches!(result, Err(EnrollmentError::InvalidCurrency(_))));
    }

    #[test]
    fn it_should_refuse_a_checkout_that_expires_before_now() {
        TestHarness::<Enrollment>::given([])
            .when(cmd(student(), 30, enroll(9999)))
            .then_error(EnrollmentError::CheckoutExpiryNotInFuture);
    }

    #[test]
    fn it_should_not_reuse_a_purchase_id() {
        // The handler sent the id of the expired purchase again.
        let mut action = enroll(9999);
        if let EnrollmentAction::EnrollCourse(p) = &mut action {
            p.checkout_expires_at = t(90);
        }
        TestHarness::<Enrollment>::given([opened(9999), expired(None)])
            .when(cmd(student(), 40, action))
            .then_error(EnrollmentError::PurchaseIdTaken);
    }

    #[test]
    fn it_should_not_let_the_system_enrol() {
        TestHarness::<Enrollment>::given([])
            .when(cmd(Actor::system(), 0, enroll(0)))
            .then_error(EnrollmentError::SignInRequired);
    }

    // record-checkout-webhook

    #[test]
    fn it_should_enrol_when_the_checkout_completes() {
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(Actor::system(), 5, webhook("cs_1", CheckoutStatus::Complete)))
            .then([completed("cs_1"), enrolled(Some(purchase_id()))]);
    }

    #[test]
    fn it_should_accept_a_late_completion_of_a_purchase_still_open() {
        let result = TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(Actor::system(), 45, webhook("cs_1", CheckoutStatus::Complete)))
            .events()
            .unwrap();
        assert!(matches!(
            result.as_slice(),
            [EnrollmentEvent::PurchaseCompleted { .. }, EnrollmentEvent::Enrolled { .. }]
        ));
    }

    #[test]
    fn it_should_ignore_a_replayed_webhook() {
        TestHarness::<Enrollment>::given([opened(9999), completed("cs_1"), enrolled(Some(purchase_id()))])
            .when(cmd(Actor::system(), 6, webhook("cs_1", CheckoutStatus::Complete)))
            .then([]);
    }

    #[test]
    fn it_should_not_grant_access_for_an_expired_purchase() {
        TestHarness::<Enrollment>::given([opened(9999), expired(None)])
            .when(cmd(Actor::system(), 40, webhook("cs_1", CheckoutStatus::Complete)))
            .then_error(EnrollmentError::PurchaseNotOpen { status: PurchaseStatus::Expired });
    }

    #[test]
    fn it_should_refuse_a_completion_for_an_unknown_purchase() {
        let mut action = webhook("cs_1", CheckoutStatus::Complete);
        if let EnrollmentAction::RecordCheckoutWebhook(p) = &mut action {
            p.purchase_id = new_purchase_id();
        }
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(Actor::system(), 5, action))
            .then_error(EnrollmentError::PurchaseNotFound);
    }

    #[test]
    fn it_should_refuse_a_completion_for_another_students_purchase() {
        let mut action = webhook("cs_1", CheckoutStatus::Complete);
        if let EnrollmentAction::RecordCheckoutWebhook(p) = &mut action {
            p.user_id = Uuid::from_u128(0x99);
        }
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(Actor::system(), 5, action))
            .then_error(EnrollmentError::PurchaseNotFound);
    }

    #[test]
    fn it_should_record_an_expired_checkout_from_the_webhook() {
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(Actor::system(), 31, webhook("cs_1", CheckoutStatus::Expired)))
            .then([expired(Some("cs_1"))]);
    }

    #[test]
    fn it_should_record_a_failed_checkout() {
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(Actor::system(), 8, webhook("cs_1", CheckoutStatus::Failed)))
            .then([EnrollmentEvent::PurchaseFailed {
                purchase_id: purchase_id(),
                course_id: course_id(),
                user_id: student_id(),
                checkout_session_id: "cs_1".into(),
                status: PurchaseStatus::Failed,
                at: t(8),
            }]);
    }

    #[test]
    fn it_should_not_expire_a_completed_purchase_from_the_webhook() {
        TestHarness::<Enrollment>::given([opened(9999), completed("cs_1"), enrolled(Some(purchase_id()))])
            .when(cmd(Actor::system(), 31, webhook("cs_2", CheckoutStatus::Expired)))
            .then_error(EnrollmentError::PurchaseAlreadyCompleted);
    }

    #[test]
    fn it_should_change_nothing_when_an_expired_purchase_is_reported_expired_again() {
        TestHarness::<Enrollment>::given([opened(9999), expired(None)])
            .when(cmd(Actor::system(), 32, webhook("cs_1", CheckoutStatus::Expired)))
            .then([]);
    }

    #[test]
    fn it_should_accept_webhooks_from_the_system_only() {
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(student(), 5, webhook("cs_1", CheckoutStatus::Complete)))
            .then_error(EnrollmentError::OnlySystem);
    }

    #[test]
    fn it_should_require_a_checkout_session_id() {
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(Actor::system(), 5, webhook("  ", CheckoutStatus::Complete)))
            .then_error(EnrollmentError::CheckoutSessionRequired);
    }

    // expire-checkout

    #[test]
    fn it_should_expire_an_open_checkout_once_its_time_has_come() {
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(Actor::system(), 31, expire_checkout()))
            .then([expired(None)]);
    }

    #[test]
    fn it_should_not_expire_a_checkout_before_its_time() {
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(Actor::system(), 29, expire_checkout()))
            .then_error(EnrollmentError::CheckoutNotExpired);
    }

    #[test]
    fn it_should_leave_a_completed_purchase_alone_when_the_scheduler_expires_it() {
        TestHarness::<Enrollment>::given([opened(9999), completed("cs_1"), enrolled(Some(purchase_id()))])
            .when(cmd(Actor::system(), 31, expire_checkout()))
            .then([]);
    }

    #[test]
    fn it_should_let_only_the_scheduler_expire_a_checkout() {
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(student(), 31, expire_checkout()))
            .then_error(EnrollmentError::OnlySystem);
    }

    #[test]
    fn it_should_not_expire_an_unknown_purchase() {
        TestHarness::<Enrollment>::given([])
            .when(cmd(Actor::system(), 31, expire_checkout()))
            .then_error(EnrollmentError::PurchaseNotFound);
    }

    // complete-lesson

    #[test]
    fn it_should_complete_a_lesson_of_an_enrolled_student() {
        TestHarness::<Enrollment>::given([enrolled(None)])
            .when(cmd(student(), 10, EnrollmentAction::CompleteLesson(complete(lesson(1), 300))))
            .then([lesson_completed(lesson(1), 300)]);
    }

    #[test]
    fn it_should_refuse_a_lesson_completion_by_a_student_not_enrolled() {
        TestHarness::<Enrollment>::given([opened(9999)])
            .when(cmd(student(), 10, EnrollmentAction::CompleteLesson(complete(lesson(1), 300))))
            .then_error(EnrollmentError::NotEnrolled);
    }

    #[test]
    fn it_should_refuse_a_lesson_outside_the_course() {
        TestHarness::<Enrollment>::given([enrolled(None)])
            .when(cmd(student(), 10, EnrollmentAction::CompleteLesson(complete(lesson(9), 300))))
            .then_error(EnrollmentError::LessonNotFound);
    }

    #[test]
    fn it_should_add_time_but_not_complete_a_lesson_twice() {
        TestHarness::<Enrollment>::given([enrolled(None), lesson_completed(lesson(1), 300)])
            .when(cmd(student(), 20, EnrollmentAction::CompleteLesson(complete(lesson(1), 120))))
            .then([EnrollmentEvent::LessonProgressed {
                course_id: course_id(),
                user_id: student_id(),
                lesson_id: lesson(1),
                time_added: 120,
                time_spent: 420,
                at: t(20),
            }]);
    }

    #[test]
    fn it_should_issue_a_certificate_when_the_last_lesson_is_completed() {
        TestHarness::<Enrollment>::given([enrolled(None), lesson_completed(lesson(1), 300)])
            .when(cmd(student(), 20, EnrollmentAction::CompleteLesson(complete(lesson(2), 60))))
            .then([
                EnrollmentEvent::LessonCompleted {
                    course_id: course_id(),
                    user_id: student_id(),
                    lesson_id: lesson(2),
                    time_spent: 60,
                    completed_at: t(20),
                },
                certificate_issued(20),
            ]);
    }

    #[test]
    fn it_should_issue_exactly_one_certificate() {
        let mut renamed = complete(lesson(2), 60);
        renamed.user_name = "Ada Renamed".into();
        renamed.certificate_id = Uuid::from_u128(0xCF);
        renamed.verification_code = "OTHER-CODE-1".into();
        let given =
            [enrolled(None), lesson_completed(lesson(1), 300), lesson_completed(lesson(2), 60), certificate_issued(20)];
        TestHarness::<Enrollment>::given(given.clone())
            .when(cmd(student(), 30, EnrollmentAction::CompleteLesson(renamed)))
            .then([EnrollmentEvent::LessonProgressed {
                course_id: course_id(),
                user_id: student_id(),
                lesson_id: lesson(2),
                time_added: 60,
                time_spent: 120,
                at: t(30),
            }]);
        // The names stay as they were at issue time.
        let state = Enrollment::fold(given.iter());
        assert_eq!(state.certificate().map(|c| c.user_name.as_str()), Some("Ada Student"));
    }

    #[test]
    fn it_should_not_issue_a_certificate_when_the_course_has_none() {
        let mut action = complete(lesson(2), 60);
        action.certificate_enabled = false;
        let events = TestHarness::<Enrollment>::given([enrolled(None), lesson_completed(lesson(1), 300)])
            .when(cmd(student(), 20, EnrollmentAction::CompleteLesson(action)))
            .events()
            .unwrap();
        assert_eq!(events.len(), 1);
        assert!(matches!(events[0], EnrollmentEvent::LessonCompleted { .. }));
    }

    #[test]
    fn it_should_not_issue_a_certificate_before_every_lesson_is_complete() {
        TestHarness::<Enrollment>::given([enrolled(None)])
            .when(cmd(student(), 10, EnrollmentAction::CompleteLesson(complete(lesson(2), 60))))
            .then([EnrollmentEvent::LessonCompleted {
                course_id: course_id(),
                user_id: student_id(),
                lesson_id: lesson(2),
                time_spent: 60,
                completed_at: t(10),
            }]);
    }

    #[test]
    fn it_should_refuse_a_malformed_verification_code() {
        for code in ["", "SHORT", "lower-case-code", "WITH SPACE 123", &"A".repeat(65)] {
            let mut action = complete(lesson(2), 60);
            action.verification_code = code.to_owned();
            TestHarness::<Enrollment>::given([enrolled(None), lesson_completed(lesson(1), 300)])
                .when(cmd(student(), 20, EnrollmentAction::CompleteLesson(action)))
                .then_error(EnrollmentError::InvalidVerificationCode);
        }
    }

    #[test]
    fn it_should_require_the_names_on_a_certificate() {
        let mut action = complete(lesson(2), 60);
        action.instructor_name = " ".into();
        TestHarness::<Enrollment>::given([enrolled(None), lesson_completed(lesson(1), 300)])
            .when(cmd(student(), 20, EnrollmentAction::CompleteLesson(action)))
            .then_error(EnrollmentError::CertificateNameRequired);
    }

    // state and storage

    #[test]
    fn it_should_expose_the_enrolment_through_its_helpers() {
        let state = Enrollment::fold(&[
            opened(9999),
            completed("cs_1"),
            enrolled(Some(purchase_id())),
            lesson_completed(lesson(1), 300),
            certificate_issued(20),
        ]);
        assert!(state.is_enrolled());
        assert_eq!(state.enrolled_with(), Some(purchase_id()));
        assert_eq!(state.completed_lessons(), vec![lesson(1)]);
        assert!(state.open_purchase().is_none());
        assert_eq!(state.purchase(purchase_id()).map(|p| p.status), Some(PurchaseStatus::Complete));
        assert_eq!(state.certificate().map(|c| c.verification_code.as_str()), Some("DOC-7K2M-9QXA"));
        let snapshot = serde_json::to_value(&state).unwrap();
        assert_eq!(serde_json::from_value::<Enrollment>(snapshot).unwrap(), state);
    }

    #[test]
    fn it_should_store_events_with_kebab_case_types_and_camel_case_fields() {
        let (event_type, payload) = encode_event(&opened(9999)).unwrap();
        assert_eq!(event_type, "purchase-opened");
        assert_eq!(payload["purchaseId"], serde_json::json!(purchase_id()));
        assert_eq!(payload["expiresAt"], serde_json::json!(t(30)));
        assert_eq!(payload["status"], "open");
        let (event_type, payload) = encode_event(&certificate_issued(20)).unwrap();
        assert_eq!(event_type, "certificate-issued");
        assert_eq!(payload["templateId"], "default");
        assert!(payload["expiryDate"].is_null());
        let back: EnrollmentEvent = decode_event(&event_type, &payload).unwrap();
        assert_eq!(back, certificate_issued(20));
    }

    #[test]
    fn it_should_route_a_command_to_the_stream_of_its_course_and_student() {
        let command = cmd(student(), 0, enroll(0));
        assert_eq!(command.stream_id(), format!("lms-enrollment-{}-{}", course_id(), student_id()));
        let command = cmd(Actor::system(), 0, expire_checkout());
        assert_eq!(command.stream_id(), stream_id(course_id(), student_id()));
    }
}
