//! A whole project over HTTP: intake → funding → matching (generate-matches, accept) →
//! milestones → an escalated dispute → completion, then the ledger and the audit log.

use super::{moderator, ok, position, profile, scene, wait_until};
use serde_json::json;
use system_tests::app::TestApp;
use uuid::Uuid;

#[tokio::test]
async fn a_project_goes_from_intake_through_matching_and_a_dispute_to_completion() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "full").await;
    let p = s.project;
    let (_, admin) = app.admin("admin-full@example.com").await;
    let (f2_id, f2) = app.member("second-full@example.com", "freelancer").await;
    profile(&app, &s.freelancer, &s.freelancer_id, &["rust", "css"], "available", &admin).await;
    profile(&app, &f2, &f2_id, &["java"], "busy", &admin).await;

    // Intake and funding.
    ok(&app, "submit-project-for-funding", &s.client, json!({ "projectId": p })).await;
    ok(&app, "fund-project", &s.client, json!({ "projectId": p })).await;
    ok(&app, "start-matching", &s.client, json!({ "projectId": p })).await;

    // Matching: both freelancers are scored, the one with the skills first.
    let generated = app.command("marketplace", "generate-matches", Some(&s.client), json!({ "projectId": p })).await;
    assert_eq!(generated.status, 201, "{:?}", generated.body);
    let proposals = generated.body["result"]["matches"].as_array().unwrap().clone();
    assert_eq!(proposals.len(), 2, "{proposals:?}");
    assert_eq!(proposals[0]["freelancerId"], s.freelancer_id.as_str());
    assert!(proposals[0]["score"].as_u64() > proposals[1]["score"].as_u64());
    let best = proposals[0]["matchId"].as_str().unwrap().to_owned();
    let other = proposals[1]["matchId"].as_str().unwrap().to_owned();
    let at = position(&generated.body);
    let listed =
        app.get(&format!("/v1/marketplace/matches?projectId={p}&order=desc&after={at}"), Some(&s.client)).await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{:?}", listed.body);
    assert_eq!(items[0]["id"], best.as_str(), "by (project, score), best first");
    assert_eq!(items[0]["status"], "pending");
    assert_eq!(items[0]["scoringBreakdown"]["skillOverlap"], 100);
    assert!(items[0]["explanation"].as_str().unwrap().to_lowercase().contains("full skill match"), "{:?}", items[0]);
    assert!(items[0]["expiresAt"].is_string() && items[0]["confidence"].is_string());

    // Accepting the best proposal matches the project with that freelancer; the other is rejected.
    let accepted = ok(&app, "accept-match", &s.client, json!({ "matchId": best })).await;
    ok(&app, "reject-match", &s.client, json!({ "matchId": other, "reason": "skills" })).await;
    let project = wait_until(
        &app,
        &format!("/v1/marketplace/projects/{p}?after={}", position(&accepted)),
        &s.client,
        "project matched",
        |b| b["status"] == "matched",
    )
    .await;
    assert_eq!(project["matchedFreelancerId"], s.freelancer_id.as_str());
    // The process manager sends the project's accept-match as well: the project already follows
    // the proposal, so it is done without writing anything.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status: Option<String> =
            sqlx::query_scalar("select status from scheduled_commands where command = 'accept-match'")
                .fetch_optional(&app.db.pool)
                .await
                .unwrap();
        if status.as_deref() == Some("done") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the follow-up was not done: {status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let matched: i64 = sqlx::query_scalar("select count(*) from events where event_type = 'freelancer-matched'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(matched, 1, "matched once");
    let m = app.get(&format!("/v1/marketplace/matches/{best}"), Some(&s.freelancer)).await;
    assert_eq!(
        (m.body["status"].as_str(), m.body["clientAction"].as_str()),
        (Some("accepted"), Some("accepted")),
        "{:?}",
        m.body
    );

    // Work: the project starts, milestone 1 is delivered and paid.
    let started = app
        .command_with(
            "marketplace",
            "start-project",
            Some(&s.freelancer),
            json!({ "projectId": p }),
            &[("user-agent", "escrow-tests/1")],
        )
        .await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    let started = started.body;
    let project = app.get(&format!("/v1/marketplace/projects/{p}?after={}", position(&started)), Some(&s.client)).await;
    assert_eq!(project.body["status"], "in_progress");
    let again = app.command("marketplace", "start-project", Some(&s.client), json!({ "projectId": p })).await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert!(
        again.body["detail"].as_str().unwrap().contains("in_progress"),
        "names the current status: {:?}",
        again.body
    );
    for (name, token) in [
        ("start-milestone", &s.freelancer),
        ("submit-milestone", &s.freelancer),
        ("approve-milestone", &s.client),
        ("release-milestone-payment", &s.client),
    ] {
        let mut body = json!({ "projectId": p, "milestoneId": s.m1 });
        if name == "submit-milestone" {
            body["deliverables"] = json!([{ "name": "mockups" }]);
        }
        ok(&app, name, token, body).await;
    }

    // Milestone 2 is disputed, escalated, and settled by an admin.
    ok(&app, "start-milestone", &s.freelancer, json!({ "projectId": p, "milestoneId": s.m2 })).await;
    ok(
        &app,
        "submit-milestone",
        &s.freelancer,
        json!({ "projectId": p, "milestoneId": s.m2, "deliverables": [{ "name": "site" }] }),
    )
    .await;
    let d = Uuid::now_v7();
    ok(&app, "open-dispute", &s.client, json!({ "projectId": p, "disputeId": d, "milestoneId": s.m2, "disputeType": "milestone_quality", "reason": "broken", "description": "the build fails" })).await;
    ok(&app, "add-dispute-evidence", &s.freelancer, json!({ "projectId": p, "disputeId": d, "evidence": { "type": "milestone_deliverable", "milestoneId": s.m2, "description": "it builds here" } })).await;
    let (mod_id, moderator) = moderator(&app, &admin, "mod-full@example.com").await;
    ok(&app, "assign-moderator", &admin, json!({ "projectId": p, "disputeId": d, "moderatorId": mod_id })).await;
    ok(&app, "escalate-dispute", &s.freelancer, json!({ "projectId": p, "disputeId": d, "reason": "needs an admin" }))
        .await;
    let by_mod = app
        .command(
            "marketplace",
            "resolve-dispute",
            Some(&moderator),
            json!({ "projectId": p, "disputeId": d, "decision": "client_favor", "notes": "x" }),
        )
        .await;
    assert_eq!(by_mod.status, 403, "an escalated dispute is the admins': {:?}", by_mod.body);
    ok(
        &app,
        "resolve-dispute",
        &admin,
        json!({ "projectId": p, "disputeId": d, "decision": "partial", "resolutionAmount": 20_000, "notes": "half" }),
    )
    .await;
    let closed = ok(&app, "close-dispute", &admin, json!({ "projectId": p, "disputeId": d })).await;
    let dispute = app.get(&format!("/v1/marketplace/disputes/{d}?after={}", position(&closed)), Some(&s.client)).await;
    assert_eq!(dispute.body["status"], "closed");
    assert_eq!(dispute.body["evidence"][0]["type"], "milestone_deliverable");

    // Completion, and the ledger balances.
    let completed = ok(&app, "complete-project", &s.client, json!({ "projectId": p })).await;
    let project =
        app.get(&format!("/v1/marketplace/projects/{p}?after={}", position(&completed)), Some(&s.client)).await;
    assert_eq!(project.body["status"], "completed");
    let ledger = app.get(&format!("/v1/marketplace/projects/{p}/ledger"), Some(&s.freelancer)).await;
    assert_eq!(ledger.status, 200, "{:?}", ledger.body);
    let l = &ledger.body;
    assert_eq!(
        (
            l["funded"].as_i64(),
            l["escrowed"].as_i64(),
            l["released"].as_i64(),
            l["refunded"].as_i64(),
            l["fees"].as_i64()
        ),
        (Some(100_000), Some(0), Some(80_000), Some(20_000), Some(8_000)),
        "{l}"
    );
    assert_eq!(l["releasedNet"], 72_000);
    assert_eq!(l["balanced"], true);
    let mut kinds: Vec<(String, i64)> = l["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["type"].as_str().unwrap().to_owned(), p["netAmount"].as_i64().unwrap()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ("milestone_release".into(), 18_000),
            ("milestone_release".into(), 54_000),
            ("platform_fee".into(), 2_000),
            ("platform_fee".into(), 6_000),
            ("pre_funding".into(), 100_000),
            ("refund".into(), 20_000)
        ]
    );
    let (_, stranger) = app.member("stranger-full@example.com", "client").await;
    assert_eq!(app.get(&format!("/v1/marketplace/projects/{p}/ledger"), Some(&stranger)).await.status, 404);

    // The audit log has the new events, with the actor and role.
    let at = position(&completed);
    for (action, role) in [
        ("match_accepted", "client"),
        ("dispute_escalated", "freelancer"),
        ("dispute_closed", "admin"),
        ("project_started", "freelancer"),
    ] {
        let log = app.get(&format!("/v1/audit/log?action={action}&after={at}"), Some(&admin)).await;
        let row = &log.body["items"][0];
        assert_eq!(row["actorRole"], role, "{action}: {:?}", log.body);
        assert!(row["ipAddress"].is_string() && row["targetId"].is_string() && row["targetType"].is_string(), "{row}");
    }
    let started = app.get(&format!("/v1/audit/log?action=project_started&after={at}"), Some(&admin)).await;
    assert_eq!(started.body["items"][0]["userAgent"], "escrow-tests/1");
    let escalated = app.get(&format!("/v1/audit/log?action=dispute_escalated&after={at}"), Some(&admin)).await;
    assert_eq!(escalated.body["items"][0]["actionType"], "dispute");
    app.cleanup().await;
}
