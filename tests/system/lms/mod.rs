//! The learning platform end to end over HTTP (port 0) with real PostgreSQL and NATS and a fake
//! payment provider: the old user shape upcast on read, an instructor's and a student's paths,
//! webhooks (replayed, forged, unknown), checkout expiry, the live-session capacity race and the
//! permission matrix.

mod capacity;
mod journey;
mod permissions;
mod upcast;

use commands::Clock;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};
use system_tests::app::{Reply, TestApp};
use system_tests::payments::FakePayments;
use uuid::Uuid;

/// A test server whose payment provider is the fake one.
pub async fn spawn() -> (TestApp, FakePayments) {
    let payments = FakePayments::spawn().await;
    let url = payments.url.clone();
    let app = TestApp::spawn_with(move |config| config.payment_provider_url = url).await;
    (app, payments)
}

pub async fn send(app: &TestApp, name: &str, token: Option<&str>, body: Value) -> Reply {
    app.command("lms", name, token, body).await
}

/// Sends a command that must be accepted; returns the answer's body.
pub async fn ok(app: &TestApp, name: &str, token: &str, body: Value) -> Value {
    let r = send(app, name, Some(token), body).await;
    assert!(r.status.is_success(), "{name}: {} {:?}", r.status, r.body);
    r.body
}

/// A signed-up account that signed in to the platform (a student), as (id, token).
pub async fn user(app: &TestApp, email: &str, first: &str, last: &str) -> (Uuid, String) {
    let (id, token) = app.sign_up(email).await;
    let r =
        send(app, "ensure-current-user", Some(&token), json!({ "firstName": first, "lastName": last, "email": email }))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (Uuid::parse_str(&id).unwrap(), token)
}

/// A platform user made admin as the operator CLI does (the system actor).
pub async fn admin(app: &TestApp, email: &str) -> (Uuid, String) {
    let (id, token) = user(app, email, "Ada", "Admin").await;
    let ctx = commands::CommandContext::new("grant-admin", app.clock.now()).with_actor("operator", "system");
    gateway::contexts::lms::appoint_admin(&app.state, id, ctx).await.unwrap();
    (id, token)
}

pub fn application(application_id: Uuid) -> Value {
    json!({
        "applicationId": application_id, "licenseNumber": "RN-204331", "licenseState": "CA",
        "licenseExpiry": "2031-06-30", "insuranceProvider": "MedPro",
        "documents": [{ "name": "licence.pdf", "url": "https://files.example/licence.pdf" }]
    })
}

/// A user who applied to teach and was approved by `admin_token`.
pub async fn instructor(app: &TestApp, admin_token: &str, email: &str, first: &str, last: &str) -> (Uuid, String) {
    let (id, token) = user(app, email, first, last).await;
    let application_id = Uuid::now_v7();
    ok(app, "submit-instructor-application", &token, application(application_id)).await;
    ok(app, "approve-instructor-application", admin_token, json!({ "applicationId": application_id })).await;
    (id, token)
}

pub struct CourseIds {
    pub course: Uuid,
    pub module: Uuid,
    pub lessons: Vec<Uuid>,
}

/// A published course of one module with a video lesson and a quiz lesson (with a question).
pub async fn published_course(app: &TestApp, token: &str, price: i64) -> CourseIds {
    let course = Uuid::now_v7();
    let r = send(
        app,
        "create-course",
        Some(token),
        json!({
            "courseId": course, "title": "Botox Foundations", "description": "Safe injection basics",
            "level": "beginner", "price": price, "currency": "usd", "category": "botox",
            "tags": ["injectables", "safety"], "certificateEnabled": true, "discussionEnabled": true
        }),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let module = Uuid::now_v7();
    ok(app, "add-course-module", token, json!({ "courseId": course, "moduleId": module, "title": "Anatomy" })).await;
    let (video, quiz) = (Uuid::now_v7(), Uuid::now_v7());
    ok(app, "add-lesson", token, json!({ "courseId": course, "moduleId": module, "lessonId": video, "title": "Facial muscles", "lessonType": "video", "content": "https://video.example/1", "durationMinutes": 12 })).await;
    ok(app, "add-lesson", token, json!({ "courseId": course, "moduleId": module, "lessonId": quiz, "title": "Check yourself", "lessonType": "quiz" })).await;
    ok(app, "add-quiz-question", token, json!({ "courseId": course, "lessonId": quiz, "questionId": Uuid::now_v7(), "question": "Which muscle?", "options": ["Frontalis", "Masseter"], "correctOption": 0 })).await;
    ok(app, "set-course-visibility", token, json!({ "courseId": course, "visibility": "public" })).await;
    CourseIds { course, module, lessons: vec![video, quiz] }
}

/// A provider event about a checkout session, as Stripe sends it.
pub fn checkout_event(event_id: &str, event_type: &str, session_id: &str, reference: &str) -> String {
    json!({
        "id": event_id, "object": "event", "type": event_type,
        "data": { "object": { "id": session_id, "object": "checkout.session", "client_reference_id": reference, "payment_status": "paid" } }
    })
    .to_string()
}

/// POSTs a webhook body signed with `secret` at the server's clock.
pub async fn post_webhook(app: &TestApp, body: &str, secret: &str) -> Reply {
    let signature = gateway::providers::sign(secret, app.clock.now().timestamp(), body.as_bytes());
    let r = app
        .http
        .post(format!("{}/v1/lms/webhooks/checkout", app.base))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), headers }
}

/// Events stored in one stream.
pub async fn stream_events(app: &TestApp, stream: &str) -> Vec<String> {
    sqlx::query_scalar("select event_type from events where stream_id = $1 order by version")
        .bind(stream)
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

/// Events written by commands of this name (from the events' metadata).
pub async fn events_of_command(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar("select count(*) from events where metadata->>'command_name' = $1")
        .bind(name)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// Polls `check` until it yields, or fails after a deadline (waiting is not the proof: the
/// value is).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
