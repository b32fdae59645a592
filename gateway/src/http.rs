//! The HTTP contract (see DESIGN.md): commands, queries, live queries, audit, admin, operations.

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::registry::Access;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use commands::metrics::METRICS;
use commands::store::{EventStore, IdempotencyKey, RecordedEvent};
use commands::CommandContext;
use futures::StreamExt;
use projections::query::{snake_case, ListQuery, Order, Scope};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use uuid::Uuid;

pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let mut router = Router::new();
    for routes in &state.routes {
        router = router.merge(routes());
    }
    router
        .route("/v1/{context}/commands/{name}", post(command))
        .route("/v1/audit/streams/{stream}", get(audit_stream))
        .route("/v1/audit/streams/{stream}/state", get(audit_state))
        .route("/v1/audit/log", get(audit_log))
        .route("/v1/audit/verify", get(audit_verify))
        .route("/v1/admin/projections", get(admin_projections))
        .route("/v1/admin/projections/{name}/rebuild", post(admin_rebuild))
        .route("/v1/admin/projections/{name}/resume", post(admin_resume))
        .route("/v1/{context}/{table}", get(list))
        .route("/v1/{context}/{table}/{id}", get(get_one))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/docs").url("/docs/openapi.json", crate::openapi::document(&state)))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(axum::middleware::from_fn(observe_http))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Request counts and latencies by route, and problem bodies for errors raised by layers
/// (payload too large, unknown method).
async fn observe_http(req: Request<axum::body::Body>, next: axum::middleware::Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let status = response.status();
    METRICS.inc("http_requests_total", &[("method", &method), ("route", &route), ("status", status.as_str())], 1.0);
    METRICS.observe("http_request_duration_seconds", &[("route", &route)], started.elapsed().as_secs_f64());
    let is_problem =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/problem"));
    if !is_problem
        && (status == StatusCode::PAYLOAD_TOO_LARGE
            || status == StatusCode::METHOD_NOT_ALLOWED
            || status == StatusCode::UNSUPPORTED_MEDIA_TYPE)
    {
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "payload-too-large" } else { "malformed-request" };
        let (_, mut body) = crate::error::problem_body(code, None);
        body["status"] = json!(status.as_u16());
        let mut r = (status, body.to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        return r;
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Commands

fn event_json(e: &RecordedEvent) -> Value {
    json!({
        "id": e.event_id, "stream": e.stream_id, "type": e.event_type, "version": e.version,
        "position": e.position, "schemaVersion": e.schema_version, "payload": e.payload,
        "recordedAt": e.recorded_at,
    })
}

async fn command(
    State(state): State<AppState>,
    Path((context, name)): Path<(String, String)>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !state.commands.contains_key(&(context.clone(), name.clone())) {
        return Err(ApiError::NotFound(format!("no command `{name}` in context `{context}`")));
    }
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(format!("the body is not JSON: {e}")))?
    };
    if !body.is_object() {
        return Err(ApiError::Malformed("the body must be a JSON object".into()));
    }
    let mut ctx = CommandContext::new(&name, state.clock.now());
    ctx.client_ip = caller.ip.clone();
    ctx.user_agent = caller.user_agent.clone();
    if let Some(id) = caller.request_id.as_deref().and_then(|r| Uuid::parse_str(r).ok()) {
        ctx.correlation_id = id;
    }
    if let Some(key) = headers.get("idempotency-key") {
        let key = key.to_str().map_err(|_| ApiError::Malformed("Idempotency-Key must be text".into()))?.trim();
        if key.is_empty() || key.len() > 200 {
            return Err(ApiError::Malformed("Idempotency-Key must have 1 to 200 characters".into()));
        }
        let scope = match caller.account {
            Some(a) => a.to_string(),
            None => "anonymous".into(),
        };
        let mut hasher = Sha256::new();
        hasher.update(format!("{context}/{name}\n").as_bytes());
        hasher.update(commands::canonical::canonical(&body).as_bytes());
        ctx.idempotency = Some(IdempotencyKey {
            scope,
            key: key.to_owned(),
            command_name: format!("{context}/{name}"),
            request_hash: hex::encode(hasher.finalize()),
        });
    }
    if let Some(v) = headers.get(header::IF_MATCH) {
        let raw = v.to_str().unwrap_or_default().trim().trim_matches('"');
        ctx.expected_version =
            Some(raw.parse().map_err(|_| ApiError::Malformed("If-Match must be a stream version".into()))?);
    }
    let reply = state.run_command(&context, &name, caller, body, ctx).await?;
    let r = &reply.result;
    let mut out = json!({
        "stream": r.stream,
        "version": r.version,
        "position": r.position,
        "events": r.events.iter().map(event_json).collect::<Vec<_>>(),
    });
    if let Some(extra) = reply.extra {
        out["result"] = extra;
    }
    let status = if reply.created && !r.replayed { StatusCode::CREATED } else { StatusCode::OK };
    let mut response = (status, Json(out)).into_response();
    if r.replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", r.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Queries

/// Resolves what `caller` may see of a table.
async fn scope_for(state: &AppState, context: &str, access: &Access, caller: &Caller) -> Result<Scope, ApiError> {
    match (access, caller.account) {
        (Access::Public, _) => return Ok(Scope::All),
        (Access::PublicWhere(sql), None) => return Ok(Scope::Where { sql: (*sql).to_owned(), caller: String::new() }),
        _ => {}
    }
    let account = caller.require()?;
    let role = state.role_in(context, account).await?;
    let staff = role.as_ref().is_some_and(|r| r.staff) || is_admin(state, account).await?;
    Ok(match access {
        Access::Public | Access::SignedIn => Scope::All,
        _ if staff => Scope::All,
        Access::Staff => return Err(ApiError::Forbidden("only staff may read this table".into())),
        Access::Own(columns) => {
            Scope::Columns { columns: columns.iter().map(|c| (*c).to_owned()).collect(), caller: account.to_string() }
        }
        Access::OwnWhere(sql) | Access::PublicWhere(sql) => {
            Scope::Where { sql: (*sql).to_owned(), caller: account.to_string() }
        }
    })
}

/// Platform admins (granted on the identity account) are auditors and operators everywhere.
pub async fn is_admin(state: &AppState, account: Uuid) -> Result<bool, ApiError> {
    let (acc, _) = state
        .bus
        .load::<domain::identity::account::Account>(&domain::identity::account::stream_id(account))
        .await
        .map_err(ApiError::internal)?;
    Ok(acc.is_admin())
}

async fn require_admin(state: &AppState, caller: &Caller) -> Result<Uuid, ApiError> {
    let account = caller.require()?;
    if is_admin(state, account).await? {
        Ok(account)
    } else {
        Err(ApiError::Forbidden("only administrators may use this endpoint".into()))
    }
}

fn query_error(e: projections::query::QueryError) -> ApiError {
    match e {
        projections::query::QueryError::Unsupported(m) => ApiError::UnsupportedFilter(m),
        projections::query::QueryError::BadParameter(m) => ApiError::Malformed(m),
        projections::query::QueryError::Database(e) => ApiError::from(e),
    }
}

const RESERVED: &[&str] = &["limit", "cursor", "order", "after", "index"];

fn parse_list(params: &HashMap<String, String>) -> Result<ListQuery, ApiError> {
    let limit = match params.get("limit") {
        Some(l) => l.parse().map_err(|_| ApiError::Malformed("limit must be a number".into()))?,
        None => 50,
    };
    let order = match params.get("order").map(String::as_str) {
        None => None,
        Some("asc") => Some(Order::Asc),
        Some("desc") => Some(Order::Desc),
        Some(_) => return Err(ApiError::Malformed("order is asc or desc".into())),
    };
    let mut filters: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
        .map(|(k, v)| (snake_case(k), v.clone()))
        .collect();
    filters.sort();
    Ok(ListQuery { filters, index: params.get("index").cloned(), limit, cursor: params.get("cursor").cloned(), order })
}

/// `?after={position}`: waits (bounded) until the table's projectors have passed the position.
async fn wait_after(state: &AppState, table: &str, params: &HashMap<String, String>) -> Result<bool, ApiError> {
    let Some(after) = params.get("after") else { return Ok(true) };
    let position: i64 = after.parse().map_err(|_| ApiError::Malformed("after must be a log position".into()))?;
    Ok(state.runtime.wait_for_position(&[table], position, state.config.consistency_wait()).await?)
}

fn with_consistency(mut response: Response, reached: bool) -> Response {
    if !reached {
        response.headers_mut().insert("consistency", HeaderValue::from_static("stale; reason=timeout"));
    }
    response
}

async fn list(
    State(state): State<AppState>,
    Path((context, table)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some((spec, def)) = state.tables.get(&(context.clone(), table.clone())) else {
        return Err(ApiError::NotFound(format!("no table `{table}` in context `{context}`")));
    };
    let scope = scope_for(&state, &context, &spec.access, &caller).await?;
    let query = parse_list(&params)?;
    let reached = wait_after(&state, spec.table, &params).await?;
    let page = def.list(&state.pool, &query, &scope).await.map_err(query_error)?;
    let wants_stream =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/event-stream"));
    if wants_stream {
        return Ok(live(state.clone(), context, table, query, scope, serde_json::to_value(&page).expect("page"))
            .into_response());
    }
    Ok(with_consistency(Json(page).into_response(), reached))
}

async fn get_one(
    State(state): State<AppState>,
    Path((context, table, id)): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let Some((spec, def)) = state.tables.get(&(context.clone(), table.clone())) else {
        return Err(ApiError::NotFound(format!("no table `{table}` in context `{context}`")));
    };
    let scope = scope_for(&state, &context, &spec.access, &caller).await?;
    let reached = wait_after(&state, spec.table, &params).await?;
    match def.get(&state.pool, &id, &scope).await.map_err(query_error)? {
        Some(row) => Ok(with_consistency(Json(row).into_response(), reached)),
        None => Err(ApiError::NotFound(format!("no {table} {id} (or not yours to see)"))),
    }
}

/// Live query: the first page at once, then the page again each time an event the table's
/// projectors handle has been applied (events arrive over NATS; the projection is awaited before
/// re-reading, so an update is never older than its event).
fn live(
    state: AppState,
    context: String,
    table: String,
    query: ListQuery,
    scope: Scope,
    first: Value,
) -> Sse<impl futures::Stream<Item = Result<SseEvent, std::convert::Infallible>>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<SseEvent>(16);
    tokio::spawn(async move {
        let mut last = first.clone();
        if tx.send(SseEvent::default().event("snapshot").data(first.to_string())).await.is_err() {
            return;
        }
        let Some((spec, def)) = state.tables.get(&(context.clone(), table.clone())) else { return };
        let owners = state.runtime.owners_of(spec.table);
        let types: Vec<&str> = owners.iter().flat_map(|p| p.event_types().iter().copied()).collect();
        let Some(client) = state.nats.clone() else {
            let _ = tx.send(SseEvent::default().event("error").data("live updates are unavailable (NATS)")).await;
            return;
        };
        let Ok(mut sub) = client.subscribe(format!("{}.{}.>", state.config.nats_subject_prefix, context)).await else {
            return;
        };
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                msg = sub.next() => {
                    let Some(msg) = msg else { return };
                    let Ok(event) = serde_json::from_slice::<RecordedEvent>(&msg.payload) else { continue };
                    if !types.contains(&event.event_type.as_str()) {
                        continue;
                    }
                    let _ = state.runtime.wait_for_position(&[spec.table], event.position, state.config.consistency_wait()).await;
                    let Ok(page) = def.list(&state.pool, &query, &scope).await else { continue };
                    let page = serde_json::to_value(&page).expect("page");
                    if page != last {
                        last = page.clone();
                        let e = SseEvent::default().event("update").id(event.position.to_string()).data(page.to_string());
                        if tx.send(e).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

// ---------------------------------------------------------------------------------------------
// Audit

/// Credentials never leave in a query, not even to auditors: password and token hashes are
/// replaced, at any depth.
fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let secret = k.contains("password")
                        || k.contains("token_hash")
                        || k.contains("tokenHash")
                        || k.contains("totp_secret");
                    (k.clone(), if secret && !v.is_null() { json!("<redacted>") } else { redact(v) })
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

async fn audit_stream(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &caller).await?;
    let events = state.store.read_stream(&stream, 0).await?;
    if events.is_empty() {
        return Err(ApiError::NotFound(format!("no stream {stream}")));
    }
    let history: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut v = event_json(e);
            v["payload"] = redact(&e.payload);
            v["metadata"] = e.metadata.clone();
            v["hash"] = json!(hex::encode(&e.hash));
            v["prevHash"] = json!(e.prev_hash.as_ref().map(hex::encode));
            v
        })
        .collect();
    Ok(Json(
        json!({ "stream": stream, "streamType": events[0].stream_type, "version": events.last().map(|e| e.version), "events": history }),
    ))
}

#[derive(Deserialize)]
struct StateAt {
    version: Option<i64>,
    at: Option<chrono::DateTime<chrono::Utc>>,
}

async fn audit_state(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    Query(q): Query<StateAt>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &caller).await?;
    let events = state.store.read_stream(&stream, 0).await?;
    let Some(first) = events.first() else { return Err(ApiError::NotFound(format!("no stream {stream}"))) };
    let replay = state
        .replayers
        .get(&first.stream_type)
        .ok_or_else(|| ApiError::NotFound(format!("no replayer for {}", first.stream_type)))?;
    let upto: Vec<RecordedEvent> = events
        .iter()
        .filter(|e| q.version.is_none_or(|v| e.version <= v) && q.at.is_none_or(|t| e.recorded_at <= t))
        .cloned()
        .collect();
    let states = replay(&upto, &state.upcasters).map_err(ApiError::internal)?;
    let last = upto.last();
    Ok(Json(json!({
        "stream": stream,
        "version": last.map(|e| e.version).unwrap_or(0),
        "recordedAt": last.map(|e| e.recorded_at),
        "state": states.last().map(redact).unwrap_or(Value::Null),
    })))
}

async fn audit_log(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    require_admin(&state, &caller).await?;
    let Some((spec, def)) = state.tables.get(&("marketplace".to_owned(), "audit_logs".to_owned())) else {
        return Err(ApiError::NotFound("no audit log table".into()));
    };
    let query = parse_list(&params)?;
    let reached = wait_after(&state, spec.table, &params).await?;
    let page = def.list(&state.pool, &query, &Scope::All).await.map_err(query_error)?;
    Ok(with_consistency(Json(page).into_response(), reached))
}

async fn audit_verify(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    require_admin(&state, &caller).await?;
    let report = state.store.verify_all().await?;
    let status = if report.first_broken.is_some() { StatusCode::CONFLICT } else { StatusCode::OK };
    Ok((status, Json(json!({ "ok": report.first_broken.is_none(), "report": report }))).into_response())
}

// ---------------------------------------------------------------------------------------------
// Admin

async fn admin_projections(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &caller).await?;
    Ok(Json(json!({ "projections": state.runtime.status().await? })))
}

async fn admin_rebuild(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    require_admin(&state, &caller).await?;
    if state.runtime.find(&name).is_none() {
        return Err(ApiError::NotFound(format!("no projection {name}")));
    }
    let runtime = state.runtime.clone();
    let n = name.clone();
    tokio::spawn(async move {
        let progress = |done: u64, total: u64| {
            METRICS.set(
                "projection_rebuild_progress",
                &[("projector", "rebuild")],
                if total == 0 { 1.0 } else { done as f64 / total as f64 },
            );
        };
        match runtime.rebuild(&n, &progress).await {
            Ok(count) => tracing::info!(projection = %n, events = count, "rebuild swapped in"),
            Err(error) => tracing::error!(projection = %n, %error, "rebuild failed"),
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "rebuilding": name }))).into_response())
}

async fn admin_resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &caller).await?;
    Ok(Json(json!({ "resumed": state.runtime.resume(&name).await? })))
}

// ---------------------------------------------------------------------------------------------
// Operations

async fn metrics(State(state): State<AppState>) -> Response {
    // Lag gauges are computed when scraped.
    let _ = state.runtime.status().await;
    let _ = commands::relay::NatsRelay::report_lag(&state.pool, &commands::relay::RelayConfig::default().consumer_name)
        .await;
    let mut r = METRICS.render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    sqlx::query("select 1").execute(&state.pool).await.map_err(|e| ApiError::Unavailable(format!("database: {e}")))?;
    let nats = state.nats.as_ref().map(|c| format!("{:?}", c.connection_state()));
    Ok(Json(json!({ "database": "ok", "nats": nats })))
}

async fn openapi(State(state): State<AppState>) -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document(&state))
}
