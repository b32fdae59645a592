//! The permission matrix of the new commands: each tried by every role that may not send it
//! (the project's client or freelancer where they are not allowed, a moderator, an admin, a
//! client of another project, a signed-up account that never joined): 403 and nothing written.
//! The allowed senders are exercised by the flow tests.

use super::{moderator, ok, profile, refused, scene};
use serde_json::{json, Value};
use system_tests::app::TestApp;
use uuid::Uuid;

#[tokio::test]
async fn every_new_command_refuses_the_roles_that_may_not_send_it() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "matrix").await;
    let p = s.project;
    let (_, admin) = app.admin("admin-matrix@example.com").await;
    let (_, moderator) = moderator(&app, &admin, "mod-matrix@example.com").await;
    let (_, other) = app.member("other-matrix@example.com", "client").await;
    let (_, outsider) = app.sign_up("outsider-matrix@example.com").await;
    let (client, freelancer, fid) = (s.client.clone(), s.freelancer.clone(), s.freelancer_id.clone());
    profile(&app, &freelancer, &fid, &["rust"], "available", &admin).await;
    let funded = ok(&app, "fund-project", &client, json!({ "projectId": p })).await;

    // Matching.
    let generate = json!({ "projectId": p });
    for token in [&freelancer, &moderator, &other, &outsider] {
        refused(&app, "generate-matches", token, generate.clone()).await;
    }
    let generated = ok(&app, "generate-matches", &client, generate).await;
    let proposal = generated["result"]["matches"][0]["matchId"].as_str().unwrap().to_owned();
    for token in [&freelancer, &moderator, &admin, &other, &outsider] {
        refused(&app, "accept-match", token, json!({ "matchId": proposal })).await;
        refused(&app, "reject-match", token, json!({ "matchId": proposal })).await;
    }
    for token in [&client, &freelancer, &moderator, &admin] {
        refused(&app, "expire-match", token, json!({ "matchId": proposal })).await;
    }
    ok(&app, "accept-match", &client, json!({ "matchId": proposal })).await;

    // The project and its disputes.
    let start = json!({ "projectId": p });
    for token in [&moderator, &admin, &other, &outsider] {
        refused(&app, "start-project", token, start.clone()).await;
    }
    ok(&app, "start-milestone", &freelancer, json!({ "projectId": p, "milestoneId": s.m1 })).await;
    let d = Uuid::now_v7();
    ok(&app, "open-dispute", &client, json!({ "projectId": p, "disputeId": d, "milestoneId": s.m1, "disputeType": "communication", "reason": "silent", "description": "no news" })).await;
    let evidence = json!({ "projectId": p, "disputeId": d, "evidence": { "type": "file", "fileId": "f1" } });
    for token in [&moderator, &other, &outsider] {
        refused(&app, "add-dispute-evidence", token, evidence.clone()).await;
    }
    let escalate = json!({ "projectId": p, "disputeId": d, "reason": "urgent" });
    for token in [&admin, &moderator, &other, &outsider] {
        refused(&app, "escalate-dispute", token, escalate.clone()).await;
    }
    let close = json!({ "projectId": p, "disputeId": d });
    for token in [&client, &freelancer, &moderator, &other, &outsider] {
        refused(&app, "close-dispute", token, close.clone()).await;
    }

    // Chats.
    let chat = Uuid::now_v7();
    let (cid, sid) = (s.client_id.clone(), fid.clone());
    for token in [&other, &outsider] {
        refused(
            &app,
            "create-chat",
            token,
            json!({ "chatId": chat, "chatType": "project", "projectId": p, "participants": [cid, sid] }),
        )
        .await;
    }
    refused(&app, "create-chat", &client, json!({ "chatId": chat, "chatType": "system", "participants": [cid] })).await;
    ok(
        &app,
        "create-chat",
        &client,
        json!({ "chatId": chat, "chatType": "project", "projectId": p, "participants": [cid, sid] }),
    )
    .await;
    let message = Uuid::now_v7();
    ok(
        &app,
        "send-message",
        &client,
        json!({ "chatId": chat, "messageId": message, "content": "hello", "contentType": "text" }),
    )
    .await;
    let on_message = |extra: Value| {
        let mut body = json!({ "chatId": chat, "messageId": message });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let chat_tries: Vec<(&str, Value, Vec<&String>)> = vec![
        (
            "send-message",
            json!({ "chatId": chat, "messageId": Uuid::now_v7(), "content": "x", "contentType": "text" }),
            vec![&other, &outsider],
        ),
        ("archive-chat", json!({ "chatId": chat }), vec![&other, &outsider]),
        ("pin-message", on_message(json!({})), vec![&other, &outsider]),
        ("unpin-message", on_message(json!({})), vec![&other, &outsider]),
        ("delete-message", on_message(json!({})), vec![&freelancer, &other, &outsider]),
        (
            "mark-messages-read",
            json!({ "chatId": chat, "upToMessageId": message }),
            vec![&moderator, &admin, &other, &outsider],
        ),
    ];
    for (name, body, tokens) in chat_tries {
        for token in tokens {
            refused(&app, name, token, body.clone()).await;
        }
    }

    // Vetting.
    for token in [&client, &other, &moderator, &outsider] {
        refused(&app, "start-vetting", token, json!({ "freelancerId": fid })).await;
    }
    ok(&app, "start-vetting", &freelancer, json!({ "freelancerId": fid })).await;
    let results = [
        (
            "record-identity-verification",
            json!({ "freelancerId": fid, "resultId": Uuid::now_v7(), "provider": "dojah", "status": "verified" }),
        ),
        (
            "record-english-proficiency",
            json!({ "freelancerId": fid, "resultId": Uuid::now_v7(), "grammarScore": 1, "comprehensionScore": 1, "writtenResponseScore": 1 }),
        ),
        (
            "record-skill-assessment",
            json!({ "freelancerId": fid, "resultId": Uuid::now_v7(), "skillId": "x", "skillName": "X", "assessmentType": "mcq", "score": 1 }),
        ),
        ("review-vetting", json!({ "freelancerId": fid, "decision": "reject" })),
    ];
    for (name, body) in results {
        for token in [&client, &freelancer, &moderator, &outsider] {
            refused(&app, name, token, body.clone()).await;
        }
    }

    // Payments: only the provider's webhook (or an admin) records what the provider reported.
    let payments = app
        .get(&format!("/v1/marketplace/payments?projectId={p}&after={}", super::position(&funded)), Some(&client))
        .await;
    let payment = payments.body["items"][0]["id"].as_str().unwrap().to_owned();
    for token in [&client, &freelancer, &moderator, &outsider] {
        refused(
            &app,
            "record-payment-webhook",
            token,
            json!({ "paymentId": payment, "webhookEventId": "evt_x", "status": "succeeded" }),
        )
        .await;
    }
    app.cleanup().await;
}
