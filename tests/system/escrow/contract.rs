//! The HTTP contract: accounts, idempotency, the 403s, bad input, read-your-writes, live updates,
//! OpenAPI, metrics, audit and admin endpoints.

use super::{event_count, ok, scene};
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use system_tests::app::TestApp;
use uuid::Uuid;

#[tokio::test]
async fn accounts_register_log_in_and_out_with_unique_case_insensitive_emails() {
    let app = TestApp::spawn().await;
    let (_, token) = app.sign_up("Ann@Example.com").await;
    let dup = app
        .command(
            "identity",
            "register-account",
            None,
            json!({ "email": "ann@EXAMPLE.com", "password": "another long one", "name": "Ann 2" }),
        )
        .await;
    assert_eq!(dup.status, 409, "{:?}", dup.body);
    let bad = app
        .command("identity", "log-in", None, json!({ "email": "ann@example.com", "password": "wrong password!" }))
        .await;
    assert_eq!(bad.status, 401);
    let short = app
        .command(
            "identity",
            "register-account",
            None,
            json!({ "email": "b@example.com", "password": "short", "name": "B" }),
        )
        .await;
    assert_eq!(short.status, 422);
    // A session works, then is gone after log-out.
    let joined = app.command("marketplace", "join-marketplace", Some(&token), json!({ "role": "client" })).await;
    assert_eq!(joined.status, 201);
    let out = app.command("identity", "log-out", Some(&token), json!({})).await;
    assert_eq!(out.status, 200, "{:?}", out.body);
    let after = app
        .command(
            "marketplace",
            "update-client-profile",
            Some(&token),
            json!({ "userId": Uuid::nil(), "companyName": "x" }),
        )
        .await;
    assert_eq!(after.status, 401);
    let anonymous = app.command("marketplace", "create-project", None, json!({})).await;
    assert_eq!(anonymous.status, 401);
    // The password hash never leaves, not even to an auditor.
    let (_, admin) = app.admin("root@example.com").await;
    let acc: String =
        sqlx::query_scalar("select stream_id from streams where stream_type = 'identity.account' limit 1")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let state = app.get(&format!("/v1/audit/streams/{acc}/state"), Some(&admin)).await;
    assert!(!state.body.to_string().contains("$argon2id$"), "{}", state.body);
    let history = app.get(&format!("/v1/audit/streams/{acc}"), Some(&admin)).await;
    assert!(!history.body.to_string().contains("$argon2id$"));
    app.cleanup().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "idem").await;
    let body = json!({ "projectId": s.project, "milestoneId": s.m1 });
    let first = app
        .command_with("marketplace", "fund-milestone", Some(&s.client), body.clone(), &[("Idempotency-Key", "fund-1")])
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let count = event_count(&app).await;
    let again = app
        .command_with("marketplace", "fund-milestone", Some(&s.client), body, &[("Idempotency-Key", "fund-1")])
        .await;
    assert_eq!(again.status, 200, "a replay is not refused as funding twice: {:?}", again.body);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(event_count(&app).await, count, "a replay writes nothing");
    let other = app
        .command_with(
            "marketplace",
            "fund-milestone",
            Some(&s.client),
            json!({ "projectId": s.project, "milestoneId": s.m2 }),
            &[("Idempotency-Key", "fund-1")],
        )
        .await;
    assert_eq!(other.status, 422);
    assert_eq!(other.body["type"], "/problems/idempotency-key-reused");
    app.cleanup().await;
}

/// Each money command tried by someone who may not: 403 and nothing written.
#[tokio::test]
async fn the_wrong_people_get_403_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "perm").await;
    let (_, other_client) = app.member("other@example.com", "client").await;
    let p = s.project;
    let tries = [
        ("fund-milestone", s.freelancer.clone(), json!({ "projectId": p, "milestoneId": s.m1 })),
        ("fund-milestone", other_client.clone(), json!({ "projectId": p, "milestoneId": s.m1 })),
        ("fund-project", s.freelancer.clone(), json!({ "projectId": p })),
        (
            "add-milestone",
            other_client.clone(),
            json!({ "projectId": p, "milestoneId": Uuid::now_v7(), "title": "x", "description": "x", "amount": 1, "dueDate": "2027-01-01T00:00:00Z" }),
        ),
        ("accept-match", s.freelancer.clone(), json!({ "projectId": p, "freelancerId": s.freelancer_id })),
    ];
    for (name, token, body) in tries {
        let before = event_count(&app).await;
        let r = app.command("marketplace", name, Some(&token), body).await;
        assert_eq!(r.status, 403, "{name}: {:?}", r.body);
        assert_eq!(r.body["type"], "/problems/forbidden");
        assert_eq!(event_count(&app).await, before, "{name} wrote nothing");
    }
    ok(&app, "fund-milestone", &s.client, json!({ "projectId": p, "milestoneId": s.m1 })).await;
    ok(&app, "accept-match", &s.client, json!({ "projectId": p, "freelancerId": s.freelancer_id })).await;
    ok(&app, "start-milestone", &s.freelancer, json!({ "projectId": p, "milestoneId": s.m1 })).await;
    ok(
        &app,
        "submit-milestone",
        &s.freelancer,
        json!({ "projectId": p, "milestoneId": s.m1, "deliverables": [{ "name": "a" }] }),
    )
    .await;
    let dispute = Uuid::now_v7();
    for (name, token, body) in [
        ("approve-milestone", s.freelancer.clone(), json!({ "projectId": p, "milestoneId": s.m1 })),
        ("approve-milestone", other_client.clone(), json!({ "projectId": p, "milestoneId": s.m1 })),
        ("release-milestone-payment", s.freelancer.clone(), json!({ "projectId": p, "milestoneId": s.m1 })),
        (
            "open-dispute",
            other_client.clone(),
            json!({ "projectId": p, "disputeId": dispute, "milestoneId": s.m1, "disputeType": "payment", "reason": "x", "description": "x" }),
        ),
        ("change-role", s.client.clone(), json!({ "userId": s.freelancer_id, "role": "admin" })),
    ] {
        let before = event_count(&app).await;
        let r = app.command("marketplace", name, Some(&token), body).await;
        assert_eq!(r.status, 403, "{name}: {:?}", r.body);
        assert_eq!(event_count(&app).await, before, "{name} wrote nothing");
    }
    ok(&app, "open-dispute", &s.client, json!({ "projectId": p, "disputeId": dispute, "milestoneId": s.m1, "disputeType": "milestone_quality", "reason": "x", "description": "x" })).await;
    for (name, token, body) in [
        (
            "assign-moderator",
            s.client.clone(),
            json!({ "projectId": p, "disputeId": dispute, "moderatorId": s.client_id }),
        ),
        (
            "resolve-dispute",
            s.client.clone(),
            json!({ "projectId": p, "disputeId": dispute, "decision": "client_favor", "notes": "mine" }),
        ),
        (
            "resolve-dispute",
            s.freelancer.clone(),
            json!({ "projectId": p, "disputeId": dispute, "decision": "freelancer_favor", "notes": "mine" }),
        ),
    ] {
        let before = event_count(&app).await;
        let r = app.command("marketplace", name, Some(&token), body).await;
        assert_eq!(r.status, 403, "{name}: {:?}", r.body);
        assert_eq!(event_count(&app).await, before, "{name} wrote nothing");
    }
    // Reading: a stranger does not see the project.
    let hidden = app.get(&format!("/v1/marketplace/projects/{p}"), Some(&other_client)).await;
    assert_eq!(hidden.status, 404);
    app.cleanup().await;
}

#[tokio::test]
async fn malformed_json_and_unknown_fields_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "bad").await;
    let before = event_count(&app).await;
    let r = app.raw_command("marketplace", "fund-milestone", Some(&s.client), "{\"projectId\": ").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["type"], "/problems/malformed-request");
    let r = app
        .command(
            "marketplace",
            "fund-milestone",
            Some(&s.client),
            json!({ "projectId": s.project, "milestoneId": s.m1, "amount": 5 }),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("amount"), "{:?}", r.body);
    let r = app
        .command(
            "marketplace",
            "fund-milestone",
            Some(&s.client),
            json!({ "projectId": "not-a-uuid", "milestoneId": s.m1 }),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app.command("marketplace", "no-such-command", Some(&s.client), json!({})).await;
    assert_eq!(r.status, 404);
    let r = app.command("marketplace", "add-milestone", Some(&s.client), json!({ "projectId": s.project, "milestoneId": Uuid::now_v7(), "title": "", "description": "x", "amount": -5, "dueDate": "2027-01-01T00:00:00Z" })).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let big = "x".repeat(100 * 1024);
    let r = app.command("marketplace", "create-project", Some(&s.client), json!({ "padding": big })).await;
    assert_eq!(r.status, 413);
    assert_eq!(event_count(&app).await, before);
    app.cleanup().await;
}

#[tokio::test]
async fn a_query_sees_its_own_write_with_after_and_refuses_unindexed_filters() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "after").await;
    let r = ok(&app, "fund-milestone", &s.client, json!({ "projectId": s.project, "milestoneId": s.m1 })).await;
    let position = r["position"].as_i64().unwrap();
    let page =
        app.get(&format!("/v1/marketplace/milestones?projectId={}&after={position}", s.project), Some(&s.client)).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    let m1 = page.body["items"].as_array().unwrap().iter().find(|m| m["id"] == s.m1.to_string()).cloned().unwrap();
    assert_eq!(m1["funded"], true, "the funding is visible right after the command");
    let page = app.get(&format!("/v1/marketplace/milestones?projectId={}&limit=1", s.project), Some(&s.client)).await;
    assert_eq!(page.body["items"][0]["sortOrder"], 1);
    let cursor = page.body["nextCursor"].as_str().unwrap().to_owned();
    let next = app
        .get(&format!("/v1/marketplace/milestones?projectId={}&limit=1&cursor={cursor}", s.project), Some(&s.client))
        .await;
    assert_eq!(next.body["items"][0]["sortOrder"], 2);
    assert!(next.body["nextCursor"].is_null());
    let refused = app.get("/v1/marketplace/milestones?title=Design", Some(&s.client)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["type"], "/problems/unsupported-filter");
    app.cleanup().await;
}

#[tokio::test]
async fn a_live_query_receives_the_update() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "sse").await;
    let url = format!("{}/v1/marketplace/milestones?projectId={}", app.base, s.project);
    let response = app.http.get(url).bearer_auth(&s.client).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    // First the snapshot, then (after funding) an update with the funded milestone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut funded = false;
    while tokio::time::Instant::now() < deadline {
        let chunk =
            tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("sse data").unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains("event: snapshot") && !funded {
            funded = true;
            ok(&app, "fund-milestone", &s.client, json!({ "projectId": s.project, "milestoneId": s.m1 })).await;
        }
        if seen.contains("event: update") && seen.contains("\"funded\":true") {
            app.cleanup().await;
            return;
        }
    }
    panic!("no live update arrived: {seen}");
}

#[tokio::test]
async fn openapi_metrics_health_audit_and_admin_endpoints_work() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "ops").await;
    let r = ok(&app, "fund-milestone", &s.client, json!({ "projectId": s.project, "milestoneId": s.m1 })).await;
    let position = r["position"].as_i64().unwrap();

    let doc = app.get("/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    for path in [
        "/v1/marketplace/commands/fund-milestone",
        "/v1/marketplace/commands/resolve-dispute",
        "/v1/identity/commands/log-in",
        "/v1/marketplace/milestones",
        "/v1/marketplace/webhooks/payments",
        "/v1/marketplace/projects/{id}/ledger",
        "/v1/lms/webhooks/checkout",
        "/v1/lms/certificates/verify/{code}",
        "/v1/lms/commands/enroll-course",
    ] {
        assert!(doc.body["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc.body["components"]["schemas"]["FundMilestone"].is_object());
    let docs = app.http.get(format!("{}/docs/", app.base)).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert_eq!(app.get("/healthz", None).await.status, 200);
    assert_eq!(app.get("/readyz", None).await.status, 200);
    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    for series in [
        "commands_total{command=\"fund-milestone\",outcome=\"accepted\"}",
        "command_duration_seconds_bucket",
        "projector_lag_events{projector=\"marketplace-projects\"}",
        "http_requests_total",
    ] {
        assert!(metrics.contains(series), "{series} in /metrics");
    }

    // Audit and admin are for admins.
    assert_eq!(app.get("/v1/audit/verify", Some(&s.client)).await.status, 403);
    let (_, admin) = app.admin("auditor@example.com").await;
    let verify = app.get("/v1/audit/verify", Some(&admin)).await;
    assert_eq!((verify.status.as_u16(), verify.body["ok"].as_bool()), (200, Some(true)), "{:?}", verify.body);
    let stream = format!("mkt-project-{}", s.project);
    let history = app.get(&format!("/v1/audit/streams/{stream}"), Some(&admin)).await;
    let events = history.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[3]["metadata"]["command_name"], "fund-milestone");
    assert_eq!(events[3]["metadata"]["actor_id"], s.client_id);
    assert!(events[3]["metadata"]["user_agent"].is_string() || events[3]["metadata"]["client_ip"].is_string());
    let at_two = app.get(&format!("/v1/audit/streams/{stream}/state?version=2"), Some(&admin)).await;
    assert_eq!(at_two.body["version"], 2);
    assert_eq!(
        at_two.body["state"]["milestones"]
            .as_object()
            .map(|m| m.len())
            .or(at_two.body["state"]["milestones"].as_array().map(|m| m.len())),
        Some(1)
    );
    let log = app.get(&format!("/v1/audit/log?action=milestone_funded&after={position}"), Some(&admin)).await;
    assert_eq!(log.status, 200, "{:?}", log.body);
    let entry = &log.body["items"][0];
    assert_eq!(
        (entry["actionType"].as_str(), entry["actorRole"].as_str(), entry["targetType"].as_str()),
        (Some("payment"), Some("client"), Some("project"))
    );
    let projections = app.get("/v1/admin/projections", Some(&admin)).await;
    let names: Vec<&str> =
        projections.body["projections"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"marketplace-projects") && names.contains(&"marketplace-audit-log"));
    let rebuild = app
        .http
        .post(format!("{}/v1/admin/projections/marketplace-projects/rebuild", app.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(rebuild.status(), 202);
    app.cleanup().await;
}
