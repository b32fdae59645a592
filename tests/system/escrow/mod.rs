//! End-to-end over HTTP (port 0) with real PostgreSQL and NATS: accounts, the escrow money path,
//! the HTTP contract (errors, idempotency, read-your-writes, live updates), audit and admin.

mod contract;
mod lifecycle;

use serde_json::{json, Value};
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
