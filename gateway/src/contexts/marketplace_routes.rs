//! Marketplace endpoints outside the command/query contract: the payment and identity providers'
//! signed webhooks (verified, then run as the system actor through the command registry, so they
//! are audited and idempotent like any command), and a project's money ledger.

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::providers::verify_signature;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use commands::store::IdempotencyKey;
use commands::CommandContext;
use domain::marketplace::payment::ProviderStatus;
use domain::marketplace::project::{self, Project};
use domain::marketplace::vetting::IdentityProvider;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const ROUTE_DOCS: &[crate::registry::RouteDoc] = &[
    crate::registry::RouteDoc {
        method: utoipa::openapi::HttpMethod::Post,
        path: "/v1/marketplace/webhooks/payments",
        summary: "Payment provider webhook (record-payment-webhook)",
        description: "The provider only: raw JSON body signed with `Stripe-Signature: t=…,v1=HMAC-SHA256` \
            (PAYMENT_WEBHOOK_SECRET). Idempotent on the event id; bad signature 401, unknown payment 400.",
    },
    crate::registry::RouteDoc {
        method: utoipa::openapi::HttpMethod::Post,
        path: "/v1/marketplace/webhooks/identity",
        summary: "Identity-check provider webhook (record-identity-verification)",
        description: "The provider only: signed like the payment webhook, with IDENTITY_WEBHOOK_SECRET.",
    },
    crate::registry::RouteDoc {
        method: utoipa::openapi::HttpMethod::Get,
        path: "/v1/marketplace/projects/{id}/ledger",
        summary: "A project's ledger: escrowed, released, refunded, fees, held; always balances",
        description: "The project's client and freelancer, and staff.",
    },
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/marketplace/webhooks/payments", post(payment_webhook))
        .route("/v1/marketplace/webhooks/identity", post(identity_webhook))
        .route("/v1/marketplace/projects/{id}/ledger", get(ledger))
}

/// Checks the `Stripe-Signature` header against `secret`; a failure is logged and refused.
fn verify(state: &AppState, secret: &str, headers: &HeaderMap, body: &[u8], route: &str) -> Result<(), ApiError> {
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    verify_signature(secret, header, body, state.clock.now()).map_err(|error| {
        tracing::warn!(%error, route, "webhook refused: bad signature");
        ApiError::InvalidSignature(error.to_string())
    })
}

/// The context of a webhook's command: the system actor, with the idempotency key
/// `webhook:{provider event id}` (a redelivery answers with the first delivery's result).
fn webhook_context(state: &AppState, caller: &Caller, name: &str, event_id: &str, body: &[u8]) -> CommandContext {
    let mut ctx = CommandContext::new(name, state.clock.now()).with_actor("system", "system");
    ctx.client_ip = caller.ip.clone();
    ctx.user_agent = caller.user_agent.clone();
    ctx.idempotency = Some(IdempotencyKey {
        scope: "webhook".into(),
        key: format!("webhook:{event_id}"),
        command_name: format!("marketplace/{name}"),
        request_hash: hex::encode(Sha256::digest(body)),
    });
    ctx
}

async fn run_webhook(
    state: &AppState,
    caller: Caller,
    name: &str,
    command: Value,
    ctx: CommandContext,
) -> Result<Json<Value>, ApiError> {
    let system = Caller { system: true, account: None, session_stream: None, ..caller };
    let reply = state.run_command("marketplace", name, system, command, ctx).await.inspect_err(|error| {
        tracing::warn!(%error, command = name, "webhook not applied");
    })?;
    let r = reply.result;
    Ok(Json(
        json!({ "received": true, "replayed": r.replayed, "stream": r.stream, "version": r.version, "position": r.position }),
    ))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        tracing::warn!(error = %e, "webhook refused: unreadable body");
        ApiError::Malformed(format!("the webhook body is not the expected JSON: {e}"))
    })
}

/// A Stripe-style event: `{"id":"evt_…","type":"payment_intent.succeeded","data":{"object":{…}}}`.
#[derive(Debug, Deserialize)]
struct ProviderEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: ProviderEventData,
}

#[derive(Debug, Deserialize)]
struct ProviderEventData {
    object: Value,
}

/// The provider event types we act on, and the payment status each reports. Other types are
/// acknowledged and ignored (the provider would otherwise retry them forever).
pub fn provider_status(event_type: &str) -> Option<ProviderStatus> {
    Some(match event_type {
        "payment_intent.processing" => ProviderStatus::Processing,
        "payment_intent.succeeded" | "charge.succeeded" | "transfer.paid" | "payout.paid" => ProviderStatus::Succeeded,
        "payment_intent.payment_failed" | "charge.failed" | "transfer.failed" | "payout.failed" => {
            ProviderStatus::Failed
        }
        "payment_intent.canceled" | "payout.canceled" => ProviderStatus::Cancelled,
        "charge.refunded" => ProviderStatus::Refunded,
        _ => return None,
    })
}

/// The provider's object id goes to the column of its kind (`pi_`, `po_`, `tr_`); a charge names
/// its payment intent.
fn provider_ids(object: &Value) -> Value {
    let id = object["id"].as_str().unwrap_or_default();
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let intent = if id.starts_with("pi_") { Some(id.to_owned()) } else { text(&object["payment_intent"]) };
    json!({
        "stripePaymentIntentId": intent,
        "stripePayoutId": id.starts_with("po_").then(|| id.to_owned()),
        "stripeTransferId": id.starts_with("tr_").then(|| id.to_owned()),
        "stripeCustomerId": text(&object["customer"]),
        "stripeAccountId": text(&object["destination"]).filter(|d| d.starts_with("acct_")),
        "errorMessage": text(&object["last_payment_error"]["message"]).or_else(|| text(&object["failure_message"])),
    })
}

async fn payment_webhook(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    verify(&state, state.config.payment_webhook_secret.expose_secret(), &headers, &body, "payments")?;
    let event: ProviderEvent = parse(&body)?;
    let Some(status) = provider_status(&event.event_type) else {
        tracing::info!(event_id = %event.id, event_type = %event.event_type, "payment webhook of a type we do not act on: ignored");
        return Ok(Json(json!({ "received": true, "ignored": event.event_type })));
    };
    let object = &event.data.object;
    let payment_id =
        object["metadata"]["paymentId"].as_str().and_then(|s| Uuid::parse_str(s).ok()).ok_or_else(|| {
            tracing::warn!(event_id = %event.id, "payment webhook refused: no metadata.paymentId");
            ApiError::WebhookRefused("data.object.metadata.paymentId is missing or not a UUID".into())
        })?;
    let mut command = provider_ids(object);
    command["paymentId"] = json!(payment_id);
    command["webhookEventId"] = json!(event.id);
    command["status"] = json!(status);
    let ctx = webhook_context(&state, &caller, "record-payment-webhook", &event.id, &body);
    run_webhook(&state, caller, "record-payment-webhook", command, ctx).await
}

/// The identity provider's verdict on one freelancer (smile_identity / dojah, normalised).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityEvent {
    id: String,
    provider: IdentityProvider,
    data: IdentityData,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityData {
    freelancer_id: Uuid,
    status: Value,
    #[serde(default)]
    document_type: Option<String>,
    #[serde(default)]
    document_number: Option<String>,
    #[serde(default)]
    liveness_check: Option<bool>,
    #[serde(default)]
    score: Option<u8>,
    /// The earlier result this verdict corrects (a re-check).
    #[serde(default)]
    corrects: Option<Uuid>,
}

async fn identity_webhook(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    verify(&state, state.config.identity_webhook_secret.expose_secret(), &headers, &body, "identity")?;
    let event: IdentityEvent = parse(&body)?;
    let d = event.data;
    // The result id is derived from the provider's event id: a redelivery is the same result.
    let result_id = Uuid::new_v5(&d.freelancer_id, event.id.as_bytes());
    let command = json!({
        "freelancerId": d.freelancer_id, "resultId": result_id, "provider": event.provider, "status": d.status,
        "documentType": d.document_type, "documentNumber": d.document_number, "livenessCheck": d.liveness_check,
        "score": d.score, "corrects": d.corrects,
    });
    let ctx = webhook_context(&state, &caller, "record-identity-verification", &event.id, &body);
    run_webhook(&state, caller, "record-identity-verification", command, ctx).await
}

/// A project's money, from the project aggregate itself (never a lagging table): paid in,
/// held, released (gross, and net of fees), refunded, fees; `balanced` checks
/// funded = escrowed + released + refunded. The payment rows are listed beside it.
async fn ledger(State(state): State<AppState>, Path(id): Path<Uuid>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let account = caller.require()?;
    let (p, _) = state.bus.load::<Project>(&project::stream_id(id)).await.map_err(ApiError::internal)?;
    let role = state.role_in("marketplace", account).await?;
    let staff = role.is_some_and(|r| r.staff) || crate::http::is_admin(&state, account).await?;
    let party = p.client_id() == Some(account) || p.matched_freelancer_id() == Some(account);
    if p.client_id().is_none() || !(party || staff) {
        return Err(ApiError::NotFound(format!("no project {id} (or not yours to see)")));
    }
    let l = p.ledger();
    let payments: Vec<Value> = sqlx::query_scalar(
        "select to_jsonb(t) from marketplace.payments t where t.project_id = $1 order by t.created_at, t.id",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    let payments: Vec<Value> = payments
        .into_iter()
        .map(|row| match row {
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (projections::query::camel_case(&k), v)).collect())
            }
            other => other,
        })
        .collect();
    Ok(Json(json!({
        "projectId": id,
        "currency": p.currency,
        "funded": l.funded,
        "escrowed": l.escrowed,
        "locked": p.locked_amount(),
        "released": l.released,
        "releasedNet": l.net_released(),
        "refunded": l.refunded,
        "fees": l.fees,
        "balanced": l.is_balanced(),
        "payments": payments,
    })))
}
