//! The learning platform (seed 004, Doctrina LMS): users and instructor vetting, the course
//! catalogue, enrolment with paid checkouts, progress and certificates, reviews, resources, live
//! sessions, discussions, wishlists and notifications.
//!
//! The actor and its flags always come from the session's `LmsUser` stream (never from a body).
//! Handlers look up what a decision needs (a course's price and lessons, whether the actor is
//! enrolled, names for a certificate) from the write side (aggregate streams and the log, never a
//! read table that may lag) and put it into the command; the aggregates stay pure.
//!
//! Two endpoints sit outside the command contract: the payment provider's signed checkout
//! webhook (`POST /v1/lms/webhooks/checkout`) and the public certificate verification
//! (`GET /v1/lms/certificates/verify/{code}`).

use crate::app::AppState;
use crate::auth::Caller;
use crate::contexts::{map_exec, Kind};
use crate::error::ApiError;
use crate::providers::{verify_signature, CheckoutRequest};
use crate::registry::{
    command, replay_states, Access, Auth, CommandReply, CommandSpec, ContextModule, ContextRole, TableSpec,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use commands::pipeline::ExtraWrites;
use commands::store::{EventStore, ExpectedVersion, IdempotencyKey, NewEvent, StreamWrite};
use commands::{CommandContext, CommandResult, ExecuteError};
use domain::kernel::Aggregate;
use domain::lms::catalog::{
    self, Course, CourseAction, CourseCommand, CourseError, InstructorApplication, InstructorApplicationAction,
    InstructorApplicationCommand, InstructorApplicationError,
};
use domain::lms::community::{
    self, Discussion, DiscussionAction, DiscussionCommand, DiscussionError, Review, ReviewAction, ReviewCommand,
    ReviewError, Wishlist, WishlistAction, WishlistCommand, WishlistError,
};
use domain::lms::enrollment::{
    self, CompleteLesson, CompleteLessonBody, EnrollCourse, EnrollCourseBody, Enrollment, EnrollmentAction,
    EnrollmentCommand, EnrollmentError, EnrollmentEvent,
};
use domain::lms::live::{
    self, Favorite, FavoriteAction, FavoriteCommand, FavoriteError, LiveSession, LiveSessionAction, LiveSessionCommand,
    LiveSessionError, Notification, NotificationAction, NotificationCommand, NotificationError, Resource,
    ResourceAction, ResourceCommand, ResourceError,
};
use domain::lms::user::{self, LmsUser, LmsUserAction, LmsUserCommand, LmsUserError};
use domain::lms::{Actor, ErrorKind};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const CONTEXT: &str = "lms";

/// How long a checkout session stays open (the provider's minimum is 30 minutes).
pub const CHECKOUT_MINUTES: i64 = 30;

/// The stream type of verification-code reservations (one stream per code, written with "no
/// stream", so a code can be issued once in the whole platform).
pub const CERTIFICATE_CODE_STREAM_TYPE: &str = "lms.certificate-code";

pub fn certificate_code_stream(code: &str) -> String {
    format!("lms-certificate-code-{code}")
}

// ---------------------------------------------------------------------------------------------
// Running commands

/// The LMS aggregates, each with how its refusals read over HTTP.
trait LmsAggregate: Aggregate {
    fn error_kind(e: &Self::Error) -> ErrorKind;
}

macro_rules! lms_aggregate {
    ($($agg:ty => $err:ty),* $(,)?) => {
        $(impl LmsAggregate for $agg {
            fn error_kind(e: &$err) -> ErrorKind {
                e.kind()
            }
        })*
    };
}

lms_aggregate!(
    LmsUser => LmsUserError,
    InstructorApplication => InstructorApplicationError,
    Course => CourseError,
    Enrollment => EnrollmentError,
    Review => ReviewError,
    Discussion => DiscussionError,
    Wishlist => WishlistError,
    LiveSession => LiveSessionError,
    Resource => ResourceError,
    Favorite => FavoriteError,
    Notification => NotificationError,
);

fn http_kind(kind: ErrorKind) -> Kind {
    match kind {
        ErrorKind::Forbidden => Kind::Forbidden,
        ErrorKind::NotFound => Kind::NotFound,
        ErrorKind::Conflict => Kind::Conflict,
        ErrorKind::Invalid => Kind::Invalid,
    }
}

fn exec_error<A: LmsAggregate>(e: ExecuteError<A::Error>) -> ApiError {
    map_exec(e, |e| http_kind(A::error_kind(e)))
}

fn role_name(actor: &Actor) -> &'static str {
    match actor {
        a if a.system => "system",
        a if a.is_admin => "admin",
        a if a.is_instructor => "instructor",
        _ => "student",
    }
}

fn stamp(ctx: CommandContext, actor: &Actor) -> CommandContext {
    let id = if actor.system { "system".to_owned() } else { actor.id.to_string() };
    CommandContext { actor_id: Some(id), actor_role: Some(role_name(actor).to_owned()), ..ctx }
}

async fn exec<A: LmsAggregate>(
    state: &AppState,
    stream: String,
    command: A::Command,
    actor: &Actor,
    ctx: CommandContext,
) -> Result<CommandResult, ApiError> {
    state.bus.execute::<A>(stream, command, stamp(ctx, actor)).await.map_err(exec_error::<A>)
}

async fn load<A: LmsAggregate>(state: &AppState, stream: &str) -> Result<A, ApiError> {
    state.bus.load::<A>(stream).await.map(|(a, _)| a).map_err(exec_error::<A>)
}

async fn load_user(state: &AppState, id: Uuid) -> Result<LmsUser, ApiError> {
    load::<LmsUser>(state, &user::stream_id(id)).await
}

/// A course that exists (not deleted), or 404.
async fn existing_course(state: &AppState, course_id: Uuid) -> Result<Course, ApiError> {
    let course = load::<Course>(state, &catalog::course_stream_id(course_id)).await?;
    if course.exists() {
        Ok(course)
    } else {
        Err(ApiError::NotFound(format!("no course {course_id}")))
    }
}

async fn is_enrolled(state: &AppState, course_id: Uuid, user_id: Uuid) -> Result<bool, ApiError> {
    Ok(load::<Enrollment>(state, &enrollment::stream_id(course_id, user_id)).await?.is_enrolled())
}

/// The LMS actor behind a request: the scheduler / webhooks, or the session's account with its
/// flags. Every command but `ensure-current-user` needs the user to have signed in to the
/// platform once.
pub async fn actor(state: &AppState, caller: &Caller) -> Result<Actor, ApiError> {
    if caller.is_system() {
        return Ok(Actor::system());
    }
    let id = caller.require()?;
    let u = load_user(state, id).await?;
    if !u.exists() {
        return Err(ApiError::Forbidden("sign in to the learning platform first (ensure-current-user)".into()));
    }
    Ok(Actor { id, is_instructor: u.is_instructor(), is_admin: u.is_admin(), system: false })
}

/// The operator CLI's first admin (as the system actor): the user must have signed in once.
pub async fn appoint_admin(state: &AppState, account: Uuid, ctx: CommandContext) -> Result<CommandResult, ApiError> {
    let actor = Actor::system();
    let command =
        LmsUserCommand { actor, at: ctx.at, action: LmsUserAction::GrantAdmin(user::GrantAdmin { user_id: account }) };
    exec::<LmsUser>(state, command.stream_id(), command, &actor, ctx).await
}

/// The operator CLI's first admin (`escrowd create-admin`): the account's lms user, ensured as on
/// its first sign-in, then made admin by the system. Without it a fresh platform has nobody who may
/// approve instructors or grant admin.
pub async fn appoint_first_admin(
    state: &AppState,
    account: Uuid,
    email: &str,
    name: &str,
    ctx: CommandContext,
) -> Result<(), ApiError> {
    let (first, last) = name.trim().split_once(' ').unwrap_or((name.trim(), ""));
    let body = user::EnsureCurrentUser {
        first_name: first.to_owned(),
        last_name: last.trim().to_owned(),
        email: email.to_owned(),
        image: None,
        phone: None,
        external_id: None,
    };
    let actor = Actor { id: account, is_instructor: false, is_admin: false, system: false };
    let command = LmsUserCommand { actor, at: ctx.at, action: LmsUserAction::EnsureCurrentUser(body) };
    exec::<LmsUser>(state, command.stream_id(), command, &actor, ctx.clone()).await?;
    appoint_admin(state, account, ctx).await.map(|_| ())
}

/// A command whose body is the domain payload, sent by the session's actor to the stream the
/// command names.
macro_rules! plain {
    ($name:literal, $who:literal, $payload:ty, $agg:ty, $cmd:ident, $action:path) => {
        command::<$payload, _, _>(CONTEXT, $name, $who, Auth::SignedIn, |state, caller, body, ctx| async move {
            let actor = actor(&state, &caller).await?;
            let command = $cmd { actor, at: ctx.at, action: $action(body) };
            let stream = command.stream_id();
            exec::<$agg>(&state, stream, command, &actor, ctx).await.map(CommandReply::ok)
        })
    };
}

// ---------------------------------------------------------------------------------------------
// Users and instructor vetting

async fn ensure_current_user(
    state: AppState,
    caller: Caller,
    body: user::EnsureCurrentUser,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let id = caller.require()?;
    let u = load_user(&state, id).await?;
    let actor = Actor { id, is_instructor: u.is_instructor(), is_admin: u.is_admin(), system: false };
    let command = LmsUserCommand { actor, at: ctx.at, action: LmsUserAction::EnsureCurrentUser(body) };
    let result = exec::<LmsUser>(&state, command.stream_id(), command, &actor, ctx).await?;
    let created = result.events.iter().any(|e| e.event_type == user::USER_ENSURED) && !result.replayed;
    let reply = if created { CommandReply::created(result) } else { CommandReply::ok(result) };
    Ok(reply.with(json!({ "userId": id })))
}

/// Whether `user_id` has an application still pending, read from the log (no read-table lag).
async fn has_pending_application(state: &AppState, user_id: Uuid) -> Result<bool, ApiError> {
    let pending: i64 = sqlx::query_scalar(
        "select count(*) filter (where event_type = 'application-submitted')
              - count(*) filter (where event_type in ('application-approved', 'application-rejected'))
         from events where stream_type = $1 and payload->>'userId' = $2",
    )
    .bind(catalog::APPLICATION_STREAM_TYPE)
    .bind(user_id.to_string())
    .fetch_one(&state.pool)
    .await?;
    Ok(pending > 0)
}

async fn submit_application(
    state: AppState,
    caller: Caller,
    body: catalog::SubmitInstructorApplication,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let actor = actor(&state, &caller).await?;
    if !actor.is_instructor && has_pending_application(&state, actor.id).await? {
        return Err(ApiError::Conflict("you already have an instructor application pending".into()));
    }
    let application_id = body.application_id;
    let command = InstructorApplicationCommand {
        actor,
        at: ctx.at,
        action: InstructorApplicationAction::SubmitInstructorApplication(body),
    };
    let result = exec::<InstructorApplication>(&state, command.stream_id(), command, &actor, ctx).await?;
    Ok(CommandReply::created(result).with(json!({ "applicationId": application_id })))
}

/// Approving makes the applicant an instructor: the grant is sent here at once, and the process
/// manager schedules it again from the `application-approved` event, so a crash in between
/// cannot lose it. The user aggregate ignores a second grant for the same application.
async fn approve_application(
    state: AppState,
    caller: Caller,
    body: catalog::ApproveInstructorApplication,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let actor = actor(&state, &caller).await?;
    let application_id = body.application_id;
    let command = InstructorApplicationCommand {
        actor,
        at: ctx.at,
        action: InstructorApplicationAction::ApproveInstructorApplication(body),
    };
    let result = exec::<InstructorApplication>(&state, command.stream_id(), command, &actor, ctx.clone()).await?;
    let approved = result.events.iter().filter(|e| e.event_type == "application-approved");
    for user_id in approved.filter_map(|e| e.payload["userId"].as_str().and_then(|s| Uuid::parse_str(s).ok())) {
        let grant = user::GrantInstructor { user_id, application_id };
        let command = LmsUserCommand { actor, at: ctx.at, action: LmsUserAction::GrantInstructor(grant) };
        let mut grant_ctx = CommandContext::new("grant-instructor", ctx.at);
        grant_ctx.correlation_id = ctx.correlation_id;
        grant_ctx.causation_id = Some(ctx.command_id);
        if let Err(error) = exec::<LmsUser>(&state, command.stream_id(), command, &actor, grant_ctx).await {
            // The scheduled grant of the process manager retries it.
            tracing::warn!(%user_id, %application_id, %error, "instructor grant after approval failed; left to the process manager");
        }
    }
    Ok(CommandReply::ok(result))
}

fn user_commands() -> Vec<CommandSpec> {
    vec![
        command::<user::EnsureCurrentUser, _, _>(
            CONTEXT,
            "ensure-current-user",
            "any signed-in account (first sign-in creates a student)",
            Auth::SignedIn,
            ensure_current_user,
        ),
        plain!("grant-admin", "admins", user::GrantAdmin, LmsUser, LmsUserCommand, LmsUserAction::GrantAdmin),
        plain!(
            "grant-instructor",
            "admins, or the system after an approved application",
            user::GrantInstructor,
            LmsUser,
            LmsUserCommand,
            LmsUserAction::GrantInstructor
        ),
        command::<catalog::SubmitInstructorApplication, _, _>(
            CONTEXT,
            "submit-instructor-application",
            "signed-in users who are not instructors (one pending application each)",
            Auth::SignedIn,
            submit_application,
        ),
        command::<catalog::ApproveInstructorApplication, _, _>(
            CONTEXT,
            "approve-instructor-application",
            "admins (makes the applicant an instructor)",
            Auth::SignedIn,
            approve_application,
        ),
        plain!(
            "reject-instructor-application",
            "admins (with a reason)",
            catalog::RejectInstructorApplication,
            InstructorApplication,
            InstructorApplicationCommand,
            InstructorApplicationAction::RejectInstructorApplication
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Courses

/// Whether anyone ever enrolled in the course, read from the log (so archiving never deletes a
/// course a student just enrolled in, whatever the read tables' lag).
async fn has_enrollments(state: &AppState, course_id: Uuid) -> Result<bool, ApiError> {
    Ok(sqlx::query_scalar("select exists(select 1 from events where stream_type = $1 and event_type = 'enrolled' and payload->>'courseId' = $2)")
        .bind(enrollment::STREAM_TYPE)
        .bind(course_id.to_string())
        .fetch_one(&state.pool)
        .await?)
}

fn course_commands() -> Vec<CommandSpec> {
    vec![
        command::<catalog::CreateCourse, _, _>(
            CONTEXT,
            "create-course",
            "instructors (the course starts as a draft)",
            Auth::SignedIn,
            |state, caller, body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                let course_id = body.course_id;
                let command = CourseCommand { actor, at: ctx.at, action: CourseAction::CreateCourse(body) };
                let result = exec::<Course>(&state, command.stream_id(), command, &actor, ctx).await?;
                Ok(CommandReply::created(result).with(json!({ "courseId": course_id })))
            },
        ),
        plain!(
            "update-course-details",
            "the course's instructor or an admin",
            catalog::UpdateCourseDetails,
            Course,
            CourseCommand,
            CourseAction::UpdateCourseDetails
        ),
        plain!(
            "set-course-visibility",
            "the course's instructor or an admin (public needs a lesson)",
            catalog::SetCourseVisibility,
            Course,
            CourseCommand,
            CourseAction::SetCourseVisibility
        ),
        plain!(
            "add-course-module",
            "the course's instructor or an admin",
            catalog::AddCourseModule,
            Course,
            CourseCommand,
            CourseAction::AddCourseModule
        ),
        plain!(
            "add-lesson",
            "the course's instructor or an admin (video, document, quiz or assignment)",
            catalog::AddLesson,
            Course,
            CourseCommand,
            CourseAction::AddLesson
        ),
        plain!(
            "add-quiz-question",
            "the course's instructor or an admin (quiz lessons only)",
            catalog::AddQuizQuestion,
            Course,
            CourseCommand,
            CourseAction::AddQuizQuestion
        ),
        plain!(
            "reorder-modules",
            "the course's instructor or an admin",
            catalog::ReorderModules,
            Course,
            CourseCommand,
            CourseAction::ReorderModules
        ),
        plain!(
            "reorder-lessons",
            "the course's instructor or an admin",
            catalog::ReorderLessons,
            Course,
            CourseCommand,
            CourseAction::ReorderLessons
        ),
        command::<catalog::ArchiveCourse, _, _>(
            CONTEXT,
            "archive-course",
            "the course's instructor or an admin (a soft delete when students enrolled)",
            Auth::SignedIn,
            |state, caller, mut body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                body.has_enrollments = has_enrollments(&state, body.course_id).await?;
                let command = CourseCommand { actor, at: ctx.at, action: CourseAction::ArchiveCourse(body) };
                exec::<Course>(&state, command.stream_id(), command, &actor, ctx).await.map(CommandReply::ok)
            },
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Enrolment, checkout and progress

/// Our reference of a checkout at the provider: enough to find the purchase's stream again from
/// a webhook without reading a read table.
fn checkout_reference(course_id: Uuid, user_id: Uuid, purchase_id: Uuid) -> String {
    format!("lms:{course_id}:{user_id}:{purchase_id}")
}

fn parse_reference(reference: &str) -> Option<(Uuid, Uuid, Uuid)> {
    let mut parts = reference.strip_prefix("lms:")?.split(':');
    let mut next = || parts.next().and_then(|p| Uuid::parse_str(p).ok());
    let ids = (next()?, next()?, next()?);
    parts.next().is_none().then_some(ids)
}

/// `enroll-course`: a free course enrols at once; a paid one opens a purchase at the course's
/// price now and answers with a checkout session at the provider (the same one again while the
/// purchase stays open, as the provider call is idempotent on our reference).
async fn enroll(
    state: AppState,
    caller: Caller,
    body: EnrollCourseBody,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let actor = actor(&state, &caller).await?;
    let course = existing_course(&state, body.course_id).await?;
    let at = ctx.at;
    let decided = EnrollCourse {
        course_id: body.course_id,
        course_price: course.price().unwrap_or(0),
        currency: course.currency().to_string(),
        course_published: course.is_published(),
        purchase_id: Uuid::now_v7(),
        checkout_expires_at: at + chrono::Duration::minutes(CHECKOUT_MINUTES),
    };
    let command = EnrollmentCommand { actor, at, action: EnrollmentAction::EnrollCourse(decided) };
    let stream = command.stream_id();
    let result = exec::<Enrollment>(&state, stream.clone(), command, &actor, ctx).await?;
    let enrollment = load::<Enrollment>(&state, &stream).await?;
    if enrollment.is_enrolled() {
        return Ok(CommandReply::created(result).with(json!({ "courseId": body.course_id, "enrolled": true })));
    }
    let purchase = enrollment
        .open_purchase()
        .ok_or_else(|| ApiError::Internal(format!("{stream}: no open purchase after enrolling")))?;
    let request = CheckoutRequest {
        reference: checkout_reference(body.course_id, actor.id, purchase.purchase_id),
        amount_minor: purchase.amount,
        currency: purchase.currency.clone(),
        description: course.title().to_owned(),
        expires_at: purchase.expires_at,
    };
    let session = state.payments.create_checkout_session(&request).await.map_err(|e| {
        tracing::warn!(%stream, error = %e, "checkout session not created");
        ApiError::Unavailable("the payment provider is not available; enrol again to retry the checkout".into())
    })?;
    Ok(CommandReply::created(result).with(json!({
        "courseId": body.course_id,
        "enrolled": false,
        "purchaseId": purchase.purchase_id,
        "amount": purchase.amount,
        "currency": purchase.currency,
        "expiresAt": purchase.expires_at,
        "checkoutSessionId": session.id,
        "checkoutUrl": session.url,
    })))
}

/// A verification code: `DOC-` and 16 characters of A-Z0-9 (about 82 bits).
fn new_verification_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    let body: String = (0..16).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("DOC-{body}")
}

/// Reserves the code of a certificate the decision issues, in the same transaction.
fn reserve_code(metadata: Value) -> ExtraWrites<Enrollment> {
    Box::new(move |_state, events| {
        events
            .iter()
            .filter_map(|e| match e {
                EnrollmentEvent::CertificateIssued { certificate_id, user_id, course_id, verification_code, .. } => Some(StreamWrite {
                    stream_id: certificate_code_stream(verification_code),
                    stream_type: CERTIFICATE_CODE_STREAM_TYPE.to_owned(),
                    expected: ExpectedVersion::NoStream,
                    events: vec![NewEvent {
                        event_id: Uuid::now_v7(),
                        event_type: "verification-code-reserved".into(),
                        schema_version: 1,
                        payload: json!({ "verificationCode": verification_code, "certificateId": certificate_id, "courseId": course_id, "userId": user_id }),
                        metadata: metadata.clone(),
                    }],
                }),
                _ => None,
            })
            .collect()
    })
}

/// `complete-lesson`: the handler adds the course's lessons, whether it issues certificates, the
/// names as they are now and a fresh verification code (reserved with the certificate).
async fn complete_lesson(
    state: AppState,
    caller: Caller,
    body: CompleteLessonBody,
    ctx: CommandContext,
) -> Result<CommandReply, ApiError> {
    let actor = actor(&state, &caller).await?;
    let course = existing_course(&state, body.course_id).await?;
    let student = load_user(&state, actor.id).await?;
    let instructor_id =
        course.instructor_id().ok_or_else(|| ApiError::Internal("a course without an instructor".into()))?;
    let instructor = load_user(&state, instructor_id).await?;
    let ctx = stamp(ctx, &actor);
    // A code already taken (astronomically unlikely) is replaced by a new one.
    for _ in 0..3 {
        let decided = CompleteLesson {
            course_id: body.course_id,
            lesson_id: body.lesson_id,
            time_spent_seconds: body.time_spent_seconds,
            course_lesson_ids: course.lesson_ids(),
            certificate_enabled: course.certificate_enabled(),
            certificate_id: Uuid::now_v7(),
            verification_code: new_verification_code(),
            user_name: student.full_name(),
            course_name: course.title().to_owned(),
            instructor_id,
            instructor_name: instructor.full_name(),
        };
        let command = EnrollmentCommand { actor, at: ctx.at, action: EnrollmentAction::CompleteLesson(decided) };
        let reserve = reserve_code(ctx.metadata());
        match state.bus.execute_with::<Enrollment>(command.stream_id(), command, ctx.clone(), Some(reserve)).await {
            Ok(result) => return Ok(CommandReply::ok(result)),
            Err(ExecuteError::Conflict { stream_id, .. }) if stream_id.starts_with("lms-certificate-code-") => continue,
            Err(e) => return Err(exec_error::<Enrollment>(e)),
        }
    }
    Err(ApiError::ConcurrencyConflict("no free verification code; try again".into()))
}

fn enrollment_commands() -> Vec<CommandSpec> {
    vec![
        command::<EnrollCourseBody, _, _>(
            CONTEXT,
            "enroll-course",
            "signed-in users (free: enrolled at once; paid: a checkout session)",
            Auth::SignedIn,
            enroll,
        ),
        plain!(
            "record-checkout-webhook",
            "the system (the payment provider's signed webhook)",
            enrollment::RecordCheckoutWebhook,
            Enrollment,
            EnrollmentCommand,
            EnrollmentAction::RecordCheckoutWebhook
        ),
        plain!(
            "expire-checkout",
            "the system (the scheduler, when a checkout expires)",
            enrollment::ExpireCheckout,
            Enrollment,
            EnrollmentCommand,
            EnrollmentAction::ExpireCheckout
        ),
        command::<CompleteLessonBody, _, _>(
            CONTEXT,
            "complete-lesson",
            "enrolled students",
            Auth::SignedIn,
            complete_lesson,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Reviews, discussions, wishlists

fn community_commands() -> Vec<CommandSpec> {
    vec![
        command::<community::SubmitCourseReview, _, _>(
            CONTEXT,
            "submit-course-review",
            "enrolled students (one review per course, 1-5 stars)",
            Auth::SignedIn,
            |state, caller, mut body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                existing_course(&state, body.course_id).await?;
                let reviewer = load_user(&state, actor.id).await?;
                body.user_name = reviewer.full_name();
                body.user_image = reviewer.image().map(str::to_owned);
                body.enrolled = is_enrolled(&state, body.course_id, actor.id).await?;
                let command = ReviewCommand { actor, at: ctx.at, action: ReviewAction::SubmitCourseReview(body) };
                exec::<Review>(&state, command.stream_id(), command, &actor, ctx).await.map(CommandReply::created)
            },
        ),
        command::<community::PostDiscussion, _, _>(
            CONTEXT,
            "post-discussion",
            "the course's students and instructor, admins",
            Auth::SignedIn,
            |state, caller, mut body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                (body.discussion_enabled, body.enrolled_or_instructor) =
                    participation(&state, body.course_id, &actor).await?;
                let command = DiscussionCommand { actor, at: ctx.at, action: DiscussionAction::PostDiscussion(body) };
                exec::<Discussion>(&state, command.stream_id(), command, &actor, ctx).await.map(CommandReply::created)
            },
        ),
        command::<community::ReplyToDiscussion, _, _>(
            CONTEXT,
            "reply-to-discussion",
            "the course's students and instructor, admins (parentId: a post or reply of the course)",
            Auth::SignedIn,
            |state, caller, mut body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                (body.discussion_enabled, body.enrolled_or_instructor) =
                    participation(&state, body.course_id, &actor).await?;
                let command =
                    DiscussionCommand { actor, at: ctx.at, action: DiscussionAction::ReplyToDiscussion(body) };
                exec::<Discussion>(&state, command.stream_id(), command, &actor, ctx).await.map(CommandReply::created)
            },
        ),
        command::<community::AddToWishlist, _, _>(
            CONTEXT,
            "add-to-wishlist",
            "signed-in users (their own wishlist)",
            Auth::SignedIn,
            |state, caller, body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                existing_course(&state, body.course_id).await?;
                let command = WishlistCommand { actor, at: ctx.at, action: WishlistAction::AddToWishlist(body) };
                exec::<Wishlist>(&state, command.stream_id(), command, &actor, ctx).await.map(CommandReply::ok)
            },
        ),
        plain!(
            "remove-from-wishlist",
            "signed-in users (their own wishlist)",
            community::RemoveFromWishlist,
            Wishlist,
            WishlistCommand,
            WishlistAction::RemoveFromWishlist
        ),
    ]
}

/// Whether the course has its discussion enabled, and whether the actor teaches or studies it.
async fn participation(state: &AppState, course_id: Uuid, actor: &Actor) -> Result<(bool, bool), ApiError> {
    let course = existing_course(state, course_id).await?;
    let teaches = course.instructor_id() == Some(actor.id);
    let member = teaches || is_enrolled(state, course_id, actor.id).await?;
    Ok((course.discussion_enabled(), member))
}

// ---------------------------------------------------------------------------------------------
// Resources, favourites, live sessions, notifications

async fn existing_resource(state: &AppState, resource_id: Uuid) -> Result<Resource, ApiError> {
    let resource = load::<Resource>(state, &live::resource_stream_id(resource_id)).await?;
    match resource.resource_id() {
        Some(_) => Ok(resource),
        None => Err(ApiError::NotFound(format!("no resource {resource_id}"))),
    }
}

fn live_commands() -> Vec<CommandSpec> {
    vec![
        plain!(
            "add-resource",
            "instructors and admins (restricted resources belong to a course)",
            live::AddResource,
            Resource,
            ResourceCommand,
            ResourceAction::AddResource
        ),
        plain!(
            "feature-resource",
            "admins",
            live::FeatureResource,
            Resource,
            ResourceCommand,
            ResourceAction::FeatureResource
        ),
        command::<live::RecordResourceDownload, _, _>(
            CONTEXT,
            "record-resource-download",
            "signed-in users (restricted resources: students enrolled in its course)",
            Auth::SignedIn,
            |state, caller, mut body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                let resource = existing_resource(&state, body.resource_id).await?;
                body.enrolled_in_course = match resource.course_id() {
                    Some(course_id) => is_enrolled(&state, course_id, actor.id).await?,
                    None => false,
                };
                let command =
                    ResourceCommand { actor, at: ctx.at, action: ResourceAction::RecordResourceDownload(body) };
                exec::<Resource>(&state, command.stream_id(), command, &actor, ctx).await.map(CommandReply::ok)
            },
        ),
        command::<live::ToggleFavorite, _, _>(
            CONTEXT,
            "toggle-favorite",
            "signed-in users (adds or removes their favourite)",
            Auth::SignedIn,
            |state, caller, body, ctx| async move {
                let actor = actor(&state, &caller).await?;
                existing_resource(&state, body.resource_id).await?;
                let command = FavoriteCommand { actor, at: ctx.at, action: FavoriteAction::ToggleFavorite(body) };
                exec::<Favorite>(&state, command.stream_id(), command, &actor, ctx).await.map(CommandReply::ok)
            },
        ),
        plain!(
            "schedule-live-session",
            "instructors (a future time)",
            live::ScheduleLiveSession,
            LiveSession,
            LiveSessionCommand,
            LiveSessionAction::ScheduleLiveSession
        ),
        plain!(
            "start-live-session",
            "the session's instructor",
            live::StartLiveSession,
            LiveSession,
            LiveSessionCommand,
            LiveSessionAction::StartLiveSession
        ),
        plain!(
            "complete-live-session",
            "the session's instructor (recordingUrl when recorded)",
            live::CompleteLiveSession,
            LiveSession,
            LiveSessionCommand,
            LiveSessionAction::CompleteLiveSession
        ),
        plain!(
            "cancel-live-session",
            "the session's instructor or an admin",
            live::CancelLiveSession,
            LiveSession,
            LiveSessionCommand,
            LiveSessionAction::CancelLiveSession
        ),
        plain!(
            "join-live-session",
            "signed-in users (once, up to maxParticipants)",
            live::JoinLiveSession,
            LiveSession,
            LiveSessionCommand,
            LiveSessionAction::JoinLiveSession
        ),
        plain!(
            "notify-user",
            "admins and the system",
            live::NotifyUser,
            Notification,
            NotificationCommand,
            NotificationAction::NotifyUser
        ),
        plain!(
            "mark-notification-read",
            "the notification's recipient",
            live::MarkNotificationRead,
            Notification,
            NotificationCommand,
            NotificationAction::MarkNotificationRead
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Routes outside the command contract

/// The provider's checkout events we act on, as the aggregate's checkout outcome.
fn checkout_status(event_type: &str, payment_status: Option<&str>) -> Option<enrollment::CheckoutStatus> {
    use enrollment::CheckoutStatus::*;
    match event_type {
        // A completed session of a delayed payment method is not paid yet: its
        // `async_payment_succeeded` event follows.
        "checkout.session.completed" if matches!(payment_status, None | Some("paid") | Some("no_payment_required")) => {
            Some(Complete)
        }
        "checkout.session.async_payment_succeeded" => Some(Complete),
        "checkout.session.expired" => Some(Expired),
        "checkout.session.async_payment_failed" => Some(Failed),
        _ => None,
    }
}

/// `POST /v1/lms/webhooks/checkout`: the payment provider's signed event (raw body and
/// `Stripe-Signature`). A bad signature or an unknown purchase is refused and logged, never
/// applied; a replayed event id answers as the first delivery did (idempotency key = event id).
async fn checkout_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let secret = state.config.payment_webhook_secret.expose_secret();
    if let Err(error) = verify_signature(secret, signature, &body, state.clock.now()) {
        tracing::warn!(%error, "checkout webhook refused: signature");
        return Err(ApiError::Malformed(format!("webhook signature: {error}")));
    }
    let event: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(format!("the webhook body is not JSON: {e}")))?;
    let event_id = event["id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::Malformed("the webhook event has no id".into()))?;
    let event_type = event["type"].as_str().unwrap_or_default();
    let object = &event["data"]["object"];
    let Some(status) = checkout_status(event_type, object["payment_status"].as_str()) else {
        return Ok(Json(json!({ "received": event_id, "ignored": event_type })));
    };
    let session_id = object["id"].as_str().unwrap_or_default();
    let reference =
        object["client_reference_id"].as_str().or_else(|| object["metadata"]["reference"].as_str()).unwrap_or_default();
    let Some((course_id, user_id, purchase_id)) = parse_reference(reference) else {
        tracing::warn!(event_id, reference, "checkout webhook refused: not one of our purchases");
        return Err(ApiError::NotFound(format!("no purchase for reference `{reference}`")));
    };
    let payload = json!({ "courseId": course_id, "userId": user_id, "purchaseId": purchase_id, "checkoutSessionId": session_id, "status": status });
    let mut ctx =
        CommandContext::new("record-checkout-webhook", state.clock.now()).with_actor("system", "payment-webhook");
    ctx.idempotency = Some(IdempotencyKey {
        scope: "payment-webhook".into(),
        key: event_id.to_owned(),
        command_name: format!("{CONTEXT}/record-checkout-webhook"),
        request_hash: hex::encode(Sha256::digest(&body)),
    });
    match state.run_command(CONTEXT, "record-checkout-webhook", Caller::system(), payload, ctx).await {
        Ok(reply) => Ok(Json(json!({
            "received": event_id,
            "stream": reply.result.stream,
            "version": reply.result.version,
            "position": reply.result.position,
            "replayed": reply.result.replayed,
        }))),
        Err(error) => {
            tracing::warn!(event_id, %purchase_id, %error, "checkout webhook refused");
            Err(error)
        }
    }
}

/// `GET /v1/lms/certificates/verify/{code}`: public, no sign-in. The code's reservation stream
/// names the enrolment; the certificate is read from it (the write side: valid at once).
async fn verify_certificate(State(state): State<AppState>, Path(code): Path<String>) -> Result<Json<Value>, ApiError> {
    let unknown = || ApiError::NotFound("no certificate has this verification code".into());
    if !enrollment::is_valid_verification_code(&code) {
        return Err(unknown());
    }
    let reserved = state.store.read_stream(&certificate_code_stream(&code), 0).await?;
    let first = reserved.first().ok_or_else(unknown)?;
    let id = |name: &str| first.payload[name].as_str().and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(unknown);
    let enrollment = load::<Enrollment>(&state, &enrollment::stream_id(id("courseId")?, id("userId")?)).await?;
    let certificate = enrollment.certificate().filter(|c| c.verification_code == code).ok_or_else(unknown)?;
    Ok(Json(json!({
        "valid": true,
        "verificationCode": certificate.verification_code,
        "certificateId": certificate.certificate_id,
        "userName": certificate.user_name,
        "courseId": enrollment.course_id(),
        "courseName": certificate.course_name,
        "instructorName": certificate.instructor_name,
        "issueDate": certificate.issue_date,
        "expiryDate": certificate.expiry_date,
        "templateId": certificate.template_id,
    })))
}

const ROUTE_DOCS: &[crate::registry::RouteDoc] = &[
    crate::registry::RouteDoc {
        method: utoipa::openapi::HttpMethod::Post,
        path: "/v1/lms/webhooks/checkout",
        summary: "Checkout webhook (record-checkout-webhook)",
        description: "The payment provider only: raw JSON body signed with `Stripe-Signature` \
            (PAYMENT_WEBHOOK_SECRET). Idempotent on the event id; completes the purchase, then enrols.",
    },
    crate::registry::RouteDoc {
        method: utoipa::openapi::HttpMethod::Get,
        path: "/v1/lms/certificates/verify/{code}",
        summary: "Verify a certificate by its code",
        description: "Public: no sign-in. Names as they were when the certificate was issued.",
    },
];

fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/lms/webhooks/checkout", post(checkout_webhook))
        .route("/v1/lms/certificates/verify/{code}", get(verify_certificate))
}

// ---------------------------------------------------------------------------------------------
// The module

async fn role_of(state: AppState, account: Uuid) -> Result<Option<ContextRole>, ApiError> {
    let u = load_user(&state, account).await?;
    Ok(u.exists().then(|| {
        let actor = Actor { id: account, is_instructor: u.is_instructor(), is_admin: u.is_admin(), system: false };
        ContextRole { role: role_name(&actor).to_owned(), staff: u.is_admin(), suspended: false }
    }))
}

/// Rows of a course the caller studies or teaches.
const COURSE_MEMBER: &str =
    "t.course_id in (select e.course_id from lms.course_enrollments e where e.user_id::text = {caller})
    or t.course_id in (select c.id from lms.courses c where c.instructor_id::text = {caller})";

/// The public catalogue: published courses, plus the caller's own.
const CATALOGUE: &str = "(t.visibility = 'public' and t.archived_at is null) or t.instructor_id::text = {caller}";

/// Curriculum outlines of catalogue courses.
const CATALOGUE_CHILD: &str = "t.course_id in (select c.id from lms.courses c
    where (c.visibility = 'public' and c.archived_at is null) or c.instructor_id::text = {caller})";

/// Quiz questions (with their answers): only for the course's students and instructor.
const QUIZ_MEMBER: &str = "t.lesson_id in (select l.id from lms.lessons l where l.course_id in (
        select e.course_id from lms.course_enrollments e where e.user_id::text = {caller}
        union select c.id from lms.courses c where c.instructor_id::text = {caller}))";

/// Unrestricted resources for all; restricted ones for the course's students and instructor.
const RESOURCE_VISIBLE: &str = "not t.restricted or t.course_id in (select e.course_id from lms.course_enrollments e where e.user_id::text = {caller})
    or t.course_id in (select c.id from lms.courses c where c.instructor_id::text = {caller})";

/// Participants of a session: the participant and the session's instructor.
const SESSION_PARTY: &str =
    "t.user_id::text = {caller} or t.session_id in (select s.id from lms.live_sessions s where s.instructor_id::text = {caller})";

fn table(name: &'static str, table: &'static str, access: Access) -> TableSpec {
    TableSpec { context: CONTEXT, name, table, access, hidden: &[], extra_indexes: &[] }
}

pub fn module() -> ContextModule {
    let mut commands = user_commands();
    commands.extend(course_commands());
    commands.extend(enrollment_commands());
    commands.extend(community_commands());
    commands.extend(live_commands());
    ContextModule {
        name: CONTEXT,
        commands,
        tables: vec![
            table("users", "lms.users", Access::Own(&["id"])),
            table("courses", "lms.courses", Access::PublicWhere(CATALOGUE)),
            table("course_modules", "lms.course_modules", Access::PublicWhere(CATALOGUE_CHILD)),
            table("lessons", "lms.lessons", Access::OwnWhere(COURSE_MEMBER)),
            table("quiz_questions", "lms.quiz_questions", Access::OwnWhere(QUIZ_MEMBER)),
            table("course_reviews", "lms.course_reviews", Access::Public),
            table("resources", "lms.resources", Access::PublicWhere(RESOURCE_VISIBLE)),
            table("favorites", "lms.favorites", Access::Own(&["user_id"])),
            table("notifications", "lms.notifications", Access::Own(&["user_id"])),
            table("live_sessions", "lms.live_sessions", Access::Public),
            table("session_participants", "lms.session_participants", Access::OwnWhere(SESSION_PARTY)),
            table("certificates", "lms.certificates", Access::Own(&["user_id"])),
            table("purchases", "lms.purchases", Access::Own(&["user_id"])),
            table("lesson_progress", "lms.lesson_progress", Access::Own(&["user_id"])),
            table("instructor_applications", "lms.instructor_applications", Access::Own(&["user_id"])),
            table("course_discussions", "lms.course_discussions", Access::OwnWhere(COURSE_MEMBER)),
            table("wishlist", "lms.wishlist", Access::Own(&["user_id"])),
            table("course_enrollments", "lms.course_enrollments", Access::Own(&["user_id"])),
        ],
        projectors: projections::lms::projectors(),
        replayers: vec![
            (user::STREAM_TYPE, replay_states::<LmsUser>),
            (catalog::APPLICATION_STREAM_TYPE, replay_states::<InstructorApplication>),
            (catalog::COURSE_STREAM_TYPE, replay_states::<Course>),
            (enrollment::STREAM_TYPE, replay_states::<Enrollment>),
            (community::REVIEW_STREAM_TYPE, replay_states::<Review>),
            (community::DISCUSSION_STREAM_TYPE, replay_states::<Discussion>),
            (community::WISHLIST_STREAM_TYPE, replay_states::<Wishlist>),
            (live::LIVE_SESSION_STREAM_TYPE, replay_states::<LiveSession>),
            (live::RESOURCE_STREAM_TYPE, replay_states::<Resource>),
            (live::FAVORITE_STREAM_TYPE, replay_states::<Favorite>),
            (live::NOTIFICATION_STREAM_TYPE, replay_states::<Notification>),
        ],
        upcasters: |u| {
            u.register(user::USER_ENSURED, 1, user::upcast_user_ensured_v1);
        },
        role_of: Some(|state, account| Box::pin(role_of(state, account))),
        routes: Some(routes),
        route_docs: ROUTE_DOCS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_reference_names_its_purchase_stream() {
        let (c, u, p) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(parse_reference(&checkout_reference(c, u, p)), Some((c, u, p)));
        assert_eq!(parse_reference("lms:x:y:z"), None);
        assert_eq!(parse_reference(&format!("{}:extra", checkout_reference(c, u, p))), None);
        assert_eq!(parse_reference(&p.to_string()), None);
    }

    #[test]
    fn verification_codes_have_the_shape_the_aggregate_accepts() {
        for _ in 0..100 {
            assert!(enrollment::is_valid_verification_code(&new_verification_code()));
        }
    }

    #[test]
    fn only_paid_checkout_events_complete_a_purchase() {
        use enrollment::CheckoutStatus::*;
        assert_eq!(checkout_status("checkout.session.completed", Some("paid")), Some(Complete));
        assert_eq!(checkout_status("checkout.session.completed", Some("unpaid")), None);
        assert_eq!(checkout_status("checkout.session.expired", None), Some(Expired));
        assert_eq!(checkout_status("checkout.session.async_payment_failed", None), Some(Failed));
        assert_eq!(checkout_status("invoice.paid", None), None);
    }
}
