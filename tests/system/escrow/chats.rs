//! Project chats: only participants send and read; pins, soft deletes and read receipts; the
//! chat row's last message; a message arriving over the live query.

use super::{event_count, moderator, ok, position, refused, scene};
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;
use system_tests::app::TestApp;
use uuid::Uuid;

#[tokio::test]
async fn only_participants_use_a_project_chat_with_pins_deletes_and_read_receipts() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "chat").await;
    let p = s.project;
    let (_, admin) = app.admin("admin-chat@example.com").await;
    let (_, stranger) = app.member("stranger-chat@example.com", "client").await;
    let chat = Uuid::now_v7();
    let created = app
        .command("marketplace", "create-chat", Some(&s.client), json!({ "chatId": chat, "chatType": "project", "projectId": p, "participants": [s.client_id, s.freelancer_id], "title": "Landing page" }))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // A stranger can neither open a chat on the project nor write in this one.
    refused(
        &app,
        "create-chat",
        &stranger,
        json!({ "chatId": Uuid::now_v7(), "chatType": "project", "projectId": p, "participants": [s.client_id] }),
    )
    .await;
    refused(
        &app,
        "send-message",
        &stranger,
        json!({ "chatId": chat, "messageId": Uuid::now_v7(), "content": "hi", "contentType": "text" }),
    )
    .await;
    refused(
        &app,
        "send-message",
        &s.client,
        json!({ "chatId": chat, "messageId": Uuid::now_v7(), "content": "I am the system", "contentType": "system" }),
    )
    .await;

    // The freelancer watches the chat's messages live; the client's message arrives.
    let url = format!("{}/v1/marketplace/messages?chatId={chat}", app.base);
    let response =
        app.http.get(url).bearer_auth(&s.freelancer).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut seen = String::new();
    let first = Uuid::now_v7();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut sent = None;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no live update arrived: {seen}");
        let chunk =
            tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("sse data").unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains("event: snapshot") && sent.is_none() {
            sent = Some(ok(&app, "send-message", &s.client, json!({ "chatId": chat, "messageId": first, "content": "Hello   there,\nthe mockups are ready", "contentType": "text" })).await);
        }
        if seen.contains("event: update") && seen.contains("the mockups are ready") {
            break;
        }
    }
    drop(stream);
    let at = position(sent.as_ref().unwrap());
    let row = app.get(&format!("/v1/marketplace/chats/{chat}?after={at}"), Some(&s.freelancer)).await;
    assert_eq!(row.body["lastMessagePreview"], "Hello there, the mockups are ready");
    assert!(row.body["lastMessageAt"].is_string());

    // A file message with its attachment's metadata.
    let file = Uuid::now_v7();
    ok(&app, "send-message", &s.freelancer, json!({ "chatId": chat, "messageId": file, "contentType": "file", "attachments": [{ "fileId": "f1", "fileName": "spec.pdf", "fileSize": 2048, "mimeType": "application/pdf", "url": "https://files.example.com/f1" }] })).await;

    // Read receipts, pins, soft deletes.
    let read = ok(&app, "mark-messages-read", &s.freelancer, json!({ "chatId": chat, "upToMessageId": first })).await;
    let m = app.get(&format!("/v1/marketplace/messages/{first}?after={}", position(&read)), Some(&s.client)).await;
    assert_eq!(m.body["readBy"][0]["userId"], s.freelancer_id.as_str(), "{:?}", m.body);
    let pinned = ok(&app, "pin-message", &s.freelancer, json!({ "chatId": chat, "messageId": first })).await;
    let pins = app
        .get(
            &format!("/v1/marketplace/messages?chatId={chat}&isPinned=true&after={}", position(&pinned)),
            Some(&s.client),
        )
        .await;
    assert_eq!(pins.body["items"].as_array().unwrap().len(), 1, "{:?}", pins.body);
    refused(&app, "delete-message", &s.freelancer, json!({ "chatId": chat, "messageId": first })).await;
    let deleted = ok(&app, "delete-message", &s.client, json!({ "chatId": chat, "messageId": first })).await;
    let m = app.get(&format!("/v1/marketplace/messages/{first}?after={}", position(&deleted)), Some(&s.client)).await;
    assert_eq!(
        (m.body["isDeleted"].as_bool(), m.body["isPinned"].as_bool()),
        (Some(true), Some(false)),
        "{:?}",
        m.body
    );
    assert!(m.body["deletedAt"].is_string());
    let (_, moderator) = moderator(&app, &admin, "mod-chat@example.com").await;
    ok(&app, "delete-message", &moderator, json!({ "chatId": chat, "messageId": file })).await;
    let before = event_count(&app).await;
    let twice = app
        .command("marketplace", "delete-message", Some(&s.client), json!({ "chatId": chat, "messageId": first }))
        .await;
    assert_eq!(twice.status, 409, "{:?}", twice.body);
    assert_eq!(event_count(&app).await, before);

    // Reading: participants and staff see the chat; a stranger sees nothing of it.
    let archived = ok(&app, "archive-chat", &s.client, json!({ "chatId": chat })).await;
    let at = position(&archived);
    assert_eq!(app.get(&format!("/v1/marketplace/chats/{chat}?after={at}"), Some(&stranger)).await.status, 404);
    let theirs = app.get(&format!("/v1/marketplace/messages?chatId={chat}"), Some(&stranger)).await;
    assert_eq!(theirs.body["items"].as_array().map(Vec::len), Some(0), "{:?}", theirs.body);
    let mine = app.get(&format!("/v1/marketplace/chats?participants={}", s.freelancer_id), Some(&s.freelancer)).await;
    assert_eq!(mine.body["items"][0]["status"], "archived", "{:?}", mine.body);
    assert_eq!(
        app.get(&format!("/v1/marketplace/messages?chatId={chat}"), Some(&admin)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.cleanup().await;
}
