//! End-to-end over HTTP (port 0) with real PostgreSQL and NATS: accounts, the escrow money path,
//! the HTTP contract (errors, idempotency, read-your-writes, live updates), audit and admin.

mod chats;
mod contract;
mod full_project;
mod lifecycle;
mod matching;
mod permissions;
mod vetting;
mod webhooks;

use serde_json::{json, Value};
use std::time::Duration;
use system_tests::app::TestApp;
use uuid::Uuid;

/// A client with a funded project of two milestones, and a matched freelancer.
pub struct Scene {
    pub client: String,
    pub client_id: String,
    pub freelancer: String,
    pub freelancer_id: String,
    pub project: Uuid,
    pub m1: Uuid,
    pub m2: Uuid,
}

pub async fn scene(app: &TestApp, tag: &str) -> Scene {
    let (client_id, client) = app.member(&format!("client-{tag}@example.com"), "client").await;
    let (freelancer_id, freelancer) = app.member(&format!("freelancer-{tag}@example.com"), "freelancer").await;
    let project = Uuid::now_v7();
    let r = app
        .command(
            "marketplace",
            "create-project",
            Some(&client),
            json!({
                "projectId": project,
                "intakeForm": {
                    "title": "Landing page", "description": "A fast landing page", "category": "web",
                    "requiredSkills": ["rust", "css"], "budget": 100_000, "timeline": "2 weeks",
                    "deliverables": ["site"]
                },
                "currency": "usd",
                "platformFeePercent": 10
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (m1, m2) = (Uuid::now_v7(), Uuid::now_v7());
    for (m, amount, title) in [(m1, 60_000, "Design"), (m2, 40_000, "Build")] {
        let r = app
            .command(
                "marketplace",
                "add-milestone",
                Some(&client),
                json!({ "projectId": project, "milestoneId": m, "title": title, "description": "work", "amount": amount, "dueDate": "2027-01-01T00:00:00Z" }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    Scene { client, client_id, freelancer, freelancer_id, project, m1, m2 }
}

pub async fn ok(app: &TestApp, name: &str, token: &str, body: Value) -> Value {
    let r = app.command("marketplace", name, Some(token), body).await;
    assert!(r.status.is_success(), "{name}: {} {:?}", r.status, r.body);
    r.body
}

/// Events in the whole log (for "nothing written" checks).
pub async fn event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from events").fetch_one(&app.db.pool).await.unwrap()
}

/// The position a command reply carries (its consistency token).
pub fn position(reply: &Value) -> i64 {
    reply["position"].as_i64().unwrap_or_else(|| panic!("no position in {reply}"))
}

/// GETs `path` (as `token`) until `done` holds for the answer, or fails after a deadline.
pub async fn wait_until(app: &TestApp, path: &str, token: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.get(path, Some(token)).await;
        if r.status == 200 && done(&r.body) {
            return r.body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: never happened; last answer {} {}", r.status, r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A command refused with 403 that wrote nothing.
pub async fn refused(app: &TestApp, name: &str, token: &str, body: Value) {
    let before = event_count(app).await;
    let r = app.command("marketplace", name, Some(token), body).await;
    assert_eq!(r.status, 403, "{name}: {:?}", r.body);
    assert_eq!(r.body["type"], "/problems/forbidden", "{name}");
    assert_eq!(event_count(app).await, before, "{name} wrote nothing");
}

/// A marketplace moderator (a client promoted by `admin`).
pub async fn moderator(app: &TestApp, admin: &str, email: &str) -> (String, String) {
    let (id, token) = app.member(email, "client").await;
    ok(app, "change-role", admin, json!({ "userId": id, "role": "moderator" })).await;
    (id, token)
}

/// Sets a freelancer's skills, availability and timezone, and waits until the users table shows
/// them (generate-matches reads candidates from it).
pub async fn profile(app: &TestApp, token: &str, id: &str, skills: &[&str], availability: &str, admin: &str) {
    let r = ok(
        app,
        "update-freelancer-profile",
        token,
        json!({ "userId": id, "skills": skills, "availability": availability, "timezone": "UTC" }),
    )
    .await;
    let at = position(&r);
    let user = app.get(&format!("/v1/marketplace/users/{id}?after={at}"), Some(admin)).await;
    assert_eq!(user.body["profile"]["skills"], json!(skills), "{:?}", user.body);
}
