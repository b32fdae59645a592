//! A fake payment provider: Stripe's `POST /v1/checkout/sessions` (form body, bearer key,
//! `Idempotency-Key`) on port 0, answering `{id, url}` and recording what it was asked, so tests
//! drive the gateway's real HTTP client. A repeated idempotency key returns the first session,
//! as the real API does.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const API_KEY: &str = "sk_test";

#[derive(Debug, Clone)]
pub struct CheckoutCall {
    pub session_id: String,
    pub form: HashMap<String, String>,
}

#[derive(Default)]
struct Ledger {
    calls: Vec<CheckoutCall>,
    by_key: HashMap<String, String>,
}

#[derive(Clone)]
pub struct FakePayments {
    pub url: String,
    ledger: Arc<Mutex<Ledger>>,
}

impl FakePayments {
    pub async fn spawn() -> Self {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let router = Router::new().route("/v1/checkout/sessions", post(create_session)).with_state(ledger.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { url: format!("http://{addr}"), ledger }
    }

    /// Every checkout session request received (repeats included), oldest first.
    pub fn calls(&self) -> Vec<CheckoutCall> {
        self.ledger.lock().unwrap().calls.clone()
    }
}

async fn create_session(
    State(ledger): State<Arc<Mutex<Ledger>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let authorised = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {API_KEY}"));
    if !authorised {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": { "message": "Invalid API Key provided" } })));
    }
    if !form.contains_key("line_items[0][price_data][unit_amount]") || !form.contains_key("client_reference_id") {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": { "message": "missing line item or reference" } })));
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut ledger = ledger.lock().unwrap();
    let fresh = format!("cs_test_{}", ledger.calls.len() + 1);
    let session_id = if key.is_empty() { fresh } else { ledger.by_key.entry(key).or_insert(fresh).clone() };
    ledger.calls.push(CheckoutCall { session_id: session_id.clone(), form });
    (StatusCode::OK, Json(json!({ "id": session_id, "url": format!("https://checkout.example/pay/{session_id}") })))
}
