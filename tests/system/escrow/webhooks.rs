//! The payment provider's signed webhooks: a good one moves the payment row, a redelivery changes
//! nothing, a forged or stale signature and an unknown payment are refused and write nothing.

use super::{event_count, ok, position, scene};
use commands::Clock;
use gateway::providers::sign;
use serde_json::{json, Value};
use system_tests::app::{Reply, TestApp};
use uuid::Uuid;

async fn deliver(app: &TestApp, secret: &str, signed_at: i64, body: &Value) -> Reply {
    let raw = body.to_string();
    let signature = sign(secret, signed_at, raw.as_bytes());
    let r = app
        .http
        .post(format!("{}/v1/marketplace/webhooks/payments", app.base))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(raw)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

fn event(id: &str, kind: &str, payment: impl ToString) -> Value {
    json!({ "id": id, "type": kind, "data": { "object": { "id": "pi_123", "customer": "cus_9", "metadata": { "paymentId": payment.to_string() } } } })
}

#[tokio::test]
async fn payment_webhooks_are_verified_idempotent_and_refused_for_unknown_payments() {
    let app = TestApp::spawn().await;
    let s = scene(&app, "hook").await;
    let funded = ok(&app, "fund-milestone", &s.client, json!({ "projectId": s.project, "milestoneId": s.m1 })).await;
    let payments = app
        .get(&format!("/v1/marketplace/payments?projectId={}&after={}", s.project, position(&funded)), Some(&s.client))
        .await;
    let payment = payments.body["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(payments.body["items"][0]["status"], "pending");
    let now = app.clock.now().timestamp();

    // A good delivery moves the row.
    let good = event("evt_1", "payment_intent.succeeded", &payment);
    let r = deliver(&app, "whsec_test", now, &good).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let row =
        app.get(&format!("/v1/marketplace/payments/{payment}?after={}", position(&r.body)), Some(&s.client)).await.body;
    assert_eq!(row["status"], "succeeded");
    assert_eq!(row["webhookReceived"], true);
    assert_eq!(row["webhookEventId"], "evt_1");
    assert_eq!(row["stripePaymentIntentId"], "pi_123");
    assert_eq!(row["stripeCustomerId"], "cus_9");
    assert!(row["processedAt"].is_string() && row["webhookReceivedAt"].is_string(), "{row}");

    // The same delivery again: accepted, nothing new written.
    let before = event_count(&app).await;
    let again = deliver(&app, "whsec_test", now, &good).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["replayed"], true);
    assert_eq!(event_count(&app).await, before);

    // Forged, stale, missing signature; unknown payment; a move the status machine refuses;
    // a type we do not act on: nothing is written by any of them.
    let forged = deliver(&app, "whsec_wrong", now, &event("evt_2", "charge.refunded", &payment)).await;
    assert_eq!(
        (forged.status.as_u16(), forged.body["type"].as_str()),
        (401, Some("/problems/invalid-signature")),
        "{:?}",
        forged.body
    );
    assert_eq!(forged.headers["content-type"], "application/problem+json");
    let stale = deliver(&app, "whsec_test", now - 3600, &event("evt_3", "charge.refunded", &payment)).await;
    assert_eq!(stale.status, 401, "{:?}", stale.body);
    let unsigned = app
        .http
        .post(format!("{}/v1/marketplace/webhooks/payments", app.base))
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let unknown = deliver(&app, "whsec_test", now, &event("evt_4", "payment_intent.succeeded", Uuid::now_v7())).await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.body["type"].as_str()),
        (400, Some("/problems/webhook-refused")),
        "{:?}",
        unknown.body
    );
    let backwards = deliver(&app, "whsec_test", now, &event("evt_5", "payment_intent.processing", &payment)).await;
    assert_eq!(backwards.status, 409, "succeeded cannot go back to processing: {:?}", backwards.body);
    let ignored = deliver(&app, "whsec_test", now, &event("evt_6", "customer.created", &payment)).await;
    assert_eq!((ignored.status.as_u16(), ignored.body["ignored"].as_str()), (200, Some("customer.created")));
    assert_eq!(event_count(&app).await, before, "refused webhooks write nothing");

    // A refund later is a legal move.
    let refund = deliver(&app, "whsec_test", now, &event("evt_7", "charge.refunded", &payment)).await;
    assert_eq!(refund.status, 200, "{:?}", refund.body);
    let row = app
        .get(&format!("/v1/marketplace/payments/{payment}?after={}", position(&refund.body)), Some(&s.client))
        .await
        .body;
    assert_eq!((row["status"].as_str(), row["webhookEventId"].as_str()), (Some("refunded"), Some("evt_7")));

    // The payment's stream history keeps both deliveries; clients cannot record webhooks by hand.
    let (_, admin) = app.admin("admin-hook@example.com").await;
    let history = app.get(&format!("/v1/audit/streams/mkt-payment-{payment}"), Some(&admin)).await;
    assert_eq!(history.body["events"].as_array().unwrap().len(), 2, "{:?}", history.body);
    assert_eq!(history.body["events"][0]["metadata"]["actor_role"], "system");
    super::refused(
        &app,
        "record-payment-webhook",
        &s.client,
        json!({ "paymentId": payment, "webhookEventId": "evt_8", "status": "failed" }),
    )
    .await;
    app.cleanup().await;
}
