//! The money path: lifecycle with the scheduled auto-release, double funding, concurrent dispute
//! resolution.

use super::{event_count, ok, scene};
use serde_json::json;
use std::time::Duration;
use system_tests::app::TestApp;
use uuid::Uuid;

#[tokio::test]
async fn the_whole_escrow_lifecycle_with_the_scheduled_auto_release() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "life").await;
    let p = s.project;
    ok(&app, "fund-milestone", &s.client, json!({ "projectId": p, "milestoneId": s.m1 })).await;
    ok(&app, "accept-match", &s.client, json!({ "projectId": p, "freelancerId": s.freelancer_id })).await;
    ok(&app, "start-milestone", &s.freelancer, json!({ "projectId": p, "milestoneId": s.m1 })).await;
    ok(&app, "submit-milestone", &s.freelancer, json!({ "projectId": p, "milestoneId": s.m1, "deliverables": [{ "name": "mockups", "url": "https://example.com/m" }] })).await;
    let approved = ok(&app, "approve-milestone", &s.client, json!({ "projectId": p, "milestoneId": s.m1 })).await;
    let position = approved["position"].as_i64().unwrap();

    // The milestone as the client sees it right after approval.
    let m = app.get(&format!("/v1/marketplace/milestones/{}?after={position}", s.m1), Some(&s.client)).await;
    assert_eq!(m.status, 200, "{:?}", m.body);
    assert_eq!(m.body["status"], "approved");
    assert!(m.body["autoReleaseAt"].is_string());

    // Nothing is released before 48 hours; at 48 hours the scheduler releases it once.
    let scheduler = app.state.scheduler();
    wait_scheduled(&app).await;
    app.clock.advance(chrono::Duration::hours(47));
    assert_eq!(scheduler.run_due().await.unwrap(), 0);
    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(scheduler.run_due().await.unwrap(), 1);
    let (status, result, error): (String, Option<serde_json::Value>, Option<String>) =
        sqlx::query_as("select status, result, last_error from scheduled_commands")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "done", "{error:?}");
    let result = result.unwrap();
    let released_at = result["position"].as_i64().unwrap();

    let m = app.get(&format!("/v1/marketplace/milestones/{}?after={released_at}", s.m1), Some(&s.client)).await;
    assert_eq!(m.body["status"], "paid");
    let pay = app.get(&format!("/v1/marketplace/payments?projectId={p}&after={released_at}"), Some(&s.client)).await;
    let kinds: Vec<(String, i64, i64)> = pay.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (i["type"].as_str().unwrap().to_owned(), i["amount"].as_i64().unwrap(), i["netAmount"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(kinds[0], ("pre_funding".into(), 60_000, 60_000), "payments come in time order");
    let mut kinds = kinds;
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("milestone_release".into(), 60_000, 54_000),
            ("platform_fee".into(), 6_000, 6_000),
            ("pre_funding".into(), 60_000, 60_000)
        ]
    );
    let project = app.get(&format!("/v1/marketplace/projects/{p}?after={released_at}"), Some(&s.client)).await;
    assert_eq!(
        (
            project.body["escrowedAmount"].as_i64(),
            project.body["releasedAmount"].as_i64(),
            project.body["feesAmount"].as_i64()
        ),
        (Some(0), Some(60_000), Some(6_000))
    );
    assert_eq!(project.body["status"], "in_progress");

    // Who did it: the scheduler, as the system actor, recorded in the audit trail.
    let history = app.get(&format!("/v1/audit/streams/mkt-project-{p}"), Some(&admin_token(&app).await)).await;
    let last = history.body["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "milestone-payment-released");
    assert_eq!(last["metadata"]["actor_role"], "system");
    // Released by hand after the fact: refused, recorded, nothing doubled.
    let again = app
        .command(
            "marketplace",
            "release-milestone-payment",
            Some(&s.client),
            json!({ "projectId": p, "milestoneId": s.m1 }),
        )
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    app.cleanup().await;
}

async fn admin_token(app: &TestApp) -> String {
    app.admin(&format!("admin-{}@example.com", Uuid::now_v7().simple())).await.1
}

async fn wait_scheduled(app: &TestApp) {
    for _ in 0..200 {
        let n: i64 =
            sqlx::query_scalar("select count(*) from scheduled_commands").fetch_one(&app.db.pool).await.unwrap();
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the auto-release was never scheduled");
}

#[tokio::test]
async fn funding_a_milestone_twice_is_refused_with_409_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "twice").await;
    ok(&app, "fund-milestone", &s.client, json!({ "projectId": s.project, "milestoneId": s.m1 })).await;
    let before = event_count(&app).await;
    let r = app
        .command(
            "marketplace",
            "fund-milestone",
            Some(&s.client),
            json!({ "projectId": s.project, "milestoneId": s.m1 }),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.body["type"], "/problems/conflict");
    assert_eq!(event_count(&app).await, before);
    app.cleanup().await;
}

/// The assigned moderator and an admin resolve the same dispute at the same moment: one wins,
/// the other is told 409; the money adds up to the locked amount exactly once.
#[tokio::test]
async fn two_moderators_resolving_one_dispute_at_once_one_wins_and_money_adds_up() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "dispute").await;
    let p = s.project;
    ok(&app, "fund-project", &s.client, json!({ "projectId": p })).await;
    ok(&app, "accept-match", &s.client, json!({ "projectId": p, "freelancerId": s.freelancer_id })).await;
    ok(&app, "start-milestone", &s.freelancer, json!({ "projectId": p, "milestoneId": s.m2 })).await;
    let dispute = Uuid::now_v7();
    ok(&app, "open-dispute", &s.freelancer, json!({ "projectId": p, "disputeId": dispute, "milestoneId": s.m2, "disputeType": "payment", "reason": "late", "description": "client silent" })).await;

    let (admin_id, admin) = app.admin("admin-dispute@example.com").await;
    let (mod_id, moderator) = app.member("mod@example.com", "client").await;
    ok(&app, "change-role", &admin, json!({ "userId": mod_id, "role": "moderator" })).await;
    let _ = admin_id;
    ok(&app, "assign-moderator", &admin, json!({ "projectId": p, "disputeId": dispute, "moderatorId": mod_id })).await;

    let a = app.command("marketplace", "resolve-dispute", Some(&moderator), json!({ "projectId": p, "disputeId": dispute, "decision": "partial", "resolutionAmount": 15_000, "notes": "half done" }));
    let b = app.command(
        "marketplace",
        "resolve-dispute",
        Some(&admin),
        json!({ "projectId": p, "disputeId": dispute, "decision": "client_favor", "notes": "refund" }),
    );
    let (a, b) = tokio::join!(a, b);
    let mut statuses = vec![a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, vec![200, 409], "{:?} / {:?}", a.body, b.body);
    let winner = if a.status == 200 { &a } else { &b };
    let position = winner.body["position"].as_i64().unwrap();

    let d = app.get(&format!("/v1/marketplace/disputes/{dispute}?after={position}"), Some(&admin)).await;
    assert_eq!(d.body["status"], "resolved");
    let locked = d.body["lockedAmount"].as_i64().unwrap();
    let released = d.body["resolution"]["releasedAmount"].as_i64().unwrap();
    let refunded = d.body["resolution"]["refundedAmount"].as_i64().unwrap();
    assert_eq!(locked, 40_000);
    assert_eq!(released + refunded, locked, "refund plus release is the locked amount");
    let project = app.get(&format!("/v1/marketplace/projects/{p}?after={position}"), Some(&admin)).await.body;
    let funded = project["fundedAmount"].as_i64().unwrap();
    let ledger = project["escrowedAmount"].as_i64().unwrap()
        + project["releasedAmount"].as_i64().unwrap()
        + project["refundedAmount"].as_i64().unwrap();
    assert_eq!(funded, ledger, "the ledger balances: {project}");
    assert!(project["escrowedAmount"].as_i64().unwrap() >= 0);
    let resolved_events: i64 = sqlx::query_scalar("select count(*) from events where event_type = 'dispute-resolved'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(resolved_events, 1);
    app.cleanup().await;
}
