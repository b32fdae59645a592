//! Match proposals expire 7 days after they were generated, by the scheduler under the hand-moved
//! clock; an expired proposal can no longer be accepted.

use super::{ok, position, profile, scene, wait_until};
use serde_json::json;
use std::time::Duration;
use system_tests::app::TestApp;

#[tokio::test]
async fn a_pending_match_expires_after_seven_days() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "expiry").await;
    let p = s.project;
    let (_, admin) = app.admin("admin-expiry@example.com").await;
    profile(&app, &s.freelancer, &s.freelancer_id, &["rust"], "available", &admin).await;
    ok(&app, "fund-project", &s.client, json!({ "projectId": p })).await;
    let generated = ok(&app, "generate-matches", &s.client, json!({ "projectId": p })).await;
    let proposal = generated["result"]["matches"][0]["matchId"].as_str().unwrap().to_owned();
    let m =
        app.get(&format!("/v1/marketplace/matches/{proposal}?after={}", position(&generated)), Some(&s.client)).await;
    assert_eq!(m.body["status"], "pending");

    // The process manager has scheduled the expiry at createdAt + 7 days.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let due: chrono::DateTime<chrono::Utc> = loop {
        let row: Option<chrono::DateTime<chrono::Utc>> =
            sqlx::query_scalar("select due_at from scheduled_commands where command = 'expire-match'")
                .fetch_optional(&app.db.pool)
                .await
                .unwrap();
        if let Some(due) = row {
            break due;
        }
        assert!(tokio::time::Instant::now() < deadline, "the expiry was never scheduled");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let expires_at: chrono::DateTime<chrono::Utc> = m.body["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(due, expires_at);
    let created_at: chrono::DateTime<chrono::Utc> = m.body["createdAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_at - created_at, chrono::Duration::days(7));

    // Six days on, nothing is due.
    let scheduler = app.state.scheduler();
    app.clock.advance(chrono::Duration::days(6));
    assert_eq!(scheduler.run_due().await.unwrap(), 0);
    assert_eq!(
        app.get(&format!("/v1/marketplace/matches/{proposal}"), Some(&s.client)).await.body["status"],
        "pending"
    );

    // Seven days on, the scheduler expires it (whichever scheduler pass gets there first). The
    // client's session has idled out by now too (7 days): a new one reads on. (The old token
    // worked only while the gateway's 5-second session cache still held it: a flake on a slow run.)
    app.clock.advance(chrono::Duration::days(1));
    let client = app.log_in("client-expiry@example.com").await;
    scheduler.run_due().await.unwrap();
    wait_until(&app, &format!("/v1/marketplace/matches/{proposal}"), &client, "match expired", |b| {
        b["status"] == "expired"
    })
    .await;
    let status: String = sqlx::query_scalar("select status from scheduled_commands where command = 'expire-match'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "done");
    let late = app.command("marketplace", "accept-match", Some(&client), json!({ "matchId": proposal })).await;
    assert_eq!(late.status, 409, "{:?}", late.body);
    let project = app.get(&format!("/v1/marketplace/projects/{p}"), Some(&client)).await;
    assert_eq!(project.body["status"], "funded", "an expired proposal matched nobody");
    app.cleanup().await;
}
