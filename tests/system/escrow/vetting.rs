//! Vetting: the identity provider's signed webhook, English and skill results, the 20/30/50
//! overall score, and a correction that changes the current view but keeps the history.

use super::{ok, position, refused};
use commands::Clock;
use gateway::providers::sign;
use serde_json::{json, Value};
use system_tests::app::TestApp;
use uuid::Uuid;

async fn identity_webhook(app: &TestApp, secret: &str, body: &Value) -> (u16, Value) {
    let raw = body.to_string();
    let r = app
        .http
        .post(format!("{}/v1/marketplace/webhooks/identity", app.base))
        .header("stripe-signature", sign(secret, app.clock.now().timestamp(), raw.as_bytes()))
        .body(raw)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_vetting_scores_20_30_50_and_a_correction_keeps_the_history() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("admin-vet@example.com").await;
    let (fid, freelancer) = app.member("vetted@example.com", "freelancer").await;
    let (_, client) = app.member("client-vet@example.com", "client").await;
    refused(&app, "start-vetting", &client, json!({ "freelancerId": fid })).await;
    let started = app.command("marketplace", "start-vetting", Some(&freelancer), json!({ "freelancerId": fid })).await;
    assert_eq!(started.status, 201, "{:?}", started.body);

    // Identity from the provider: 90, verified. A forged delivery is refused.
    let verdict = json!({ "id": "idv_1", "provider": "smile_identity", "data": { "freelancerId": fid, "status": "verified", "score": 90, "documentType": "passport", "livenessCheck": true } });
    assert_eq!(identity_webhook(&app, "whsec_wrong", &verdict).await.0, 401);
    let (status, body) = identity_webhook(&app, "whsec_identity_test", &verdict).await;
    assert_eq!(status, 200, "{body}");
    let (status, again) = identity_webhook(&app, "whsec_identity_test", &verdict).await;
    assert_eq!((status, again["replayed"].as_bool()), (200, Some(true)), "a redelivery is the same result");

    // English 80/70/90 → 81 %; a skill at 60.
    for (who, name) in [(&freelancer, "record-english-proficiency"), (&client, "record-english-proficiency")] {
        refused(&app, name, who, json!({ "freelancerId": fid, "resultId": Uuid::now_v7(), "grammarScore": 100, "comprehensionScore": 100, "writtenResponseScore": 100 })).await;
    }
    ok(&app, "record-english-proficiency", &admin, json!({ "freelancerId": fid, "resultId": Uuid::now_v7(), "grammarScore": 80, "comprehensionScore": 70, "writtenResponseScore": 90 })).await;
    let skill = Uuid::now_v7();
    let r = ok(&app, "record-skill-assessment", &admin, json!({ "freelancerId": fid, "resultId": skill, "skillId": "rust", "skillName": "Rust", "assessmentType": "coding", "score": 60, "details": { "tasks": 3 } })).await;
    let row =
        app.get(&format!("/v1/marketplace/vetting_results/{fid}?after={}", position(&r)), Some(&freelancer)).await.body;
    // 0.2 × 90 + 0.3 × 81 + 0.5 × 60 = 72.3
    assert_eq!(row["overallScore"].as_f64(), Some(72.3), "{row}");
    assert_eq!(row["identityVerification"]["status"], "verified");
    assert_eq!(row["englishProficiency"]["overallScore"].as_f64(), Some(81.0));
    assert_eq!(row["status"], "in_progress");

    // The skill result is corrected to 80: a new result; the current view shows it.
    let r = ok(&app, "record-skill-assessment", &admin, json!({ "freelancerId": fid, "resultId": Uuid::now_v7(), "skillId": "rust", "skillName": "Rust", "assessmentType": "coding", "score": 80, "corrects": skill })).await;
    let row =
        app.get(&format!("/v1/marketplace/vetting_results/{fid}?after={}", position(&r)), Some(&freelancer)).await.body;
    assert_eq!(row["overallScore"].as_f64(), Some(82.3), "{row}");
    let skills = row["skillAssessments"].as_array().unwrap();
    assert_eq!((skills.len(), skills[0]["score"].as_u64()), (1, Some(80)), "{row}");

    // Review by an admin only.
    refused(&app, "review-vetting", &freelancer, json!({ "freelancerId": fid, "decision": "approve" })).await;
    let r = ok(&app, "review-vetting", &admin, json!({ "freelancerId": fid, "decision": "approve", "notes": "solid" }))
        .await;
    let row =
        app.get(&format!("/v1/marketplace/vetting_results/{fid}?after={}", position(&r)), Some(&admin)).await.body;
    assert_eq!((row["status"].as_str(), row["reviewNotes"].as_str()), (Some("approved"), Some("solid")));
    assert!(row["reviewedAt"].is_string() && row["reviewedBy"].is_string());

    // Every version stays in the history: both skill results, the first one unchanged.
    let history = app.get(&format!("/v1/audit/streams/mkt-vetting-{fid}"), Some(&admin)).await.body;
    let scores: Vec<u64> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "skill-assessment-recorded")
        .map(|e| e["payload"]["score"].as_u64().unwrap())
        .collect();
    assert_eq!(scores, vec![60, 80]);
    let before = app.get(&format!("/v1/audit/streams/mkt-vetting-{fid}/state?version=4"), Some(&admin)).await.body;
    assert_eq!(before["state"]["overallScore"], 7230, "the state as of the first skill result: {before}");
    // Nobody else reads a freelancer's vetting.
    assert_eq!(app.get(&format!("/v1/marketplace/vetting_results/{fid}"), Some(&client)).await.status, 404);
    app.cleanup().await;
}
