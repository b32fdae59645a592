//! `marketplace.audit_logs`: one row per marketplace and identity event, from the event's own
//! metadata (command, actor and role, client IP, user agent). Written set-based: one statement
//! per batch.

use crate::{ProjectionError, Projector, Tables};
use commands::RecordedEvent;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use sqlx::PgConnection;

pub struct AuditLogProjector;

/// Every event type the audit log records.
pub const AUDITED: &[&str] = &[
    // identity
    "account-registered",
    "password-set",
    "logged-in",
    "admin-granted",
    "account-suspended",
    "account-reactivated",
    "session-opened",
    "session-closed",
    // marketplace users
    "user-joined",
    "role-changed",
    "client-profile-updated",
    "freelancer-profile-updated",
    "user-suspended",
    "user-reinstated",
    // projects, milestones, disputes, payments
    "project-created",
    "milestone-added",
    "project-funded",
    "milestone-funded",
    "freelancer-matched",
    "project-started",
    "milestone-started",
    "milestone-submitted",
    "milestone-approved",
    "milestone-rejected",
    "milestone-payment-released",
    "dispute-opened",
    "moderator-assigned",
    "dispute-resolved",
    "intake-form-updated",
    "project-submitted-for-funding",
    "matching-started",
    "project-completed",
    "project-cancelled",
    "dispute-evidence-added",
    "dispute-escalated",
    "dispute-closed",
    // payments (provider webhooks)
    "payment-webhook-recorded",
    // chats
    "chat-created",
    "chat-archived",
    "message-sent",
    "message-pinned",
    "message-unpinned",
    "message-deleted",
    "messages-read",
    // vetting
    "vetting-started",
    "identity-verification-recorded",
    "english-proficiency-recorded",
    "skill-assessment-recorded",
    "vetting-reviewed",
    // matching
    "match-generated",
    "match-accepted",
    "match-rejected",
    "match-expired",
];

/// The seed's action types: auth, payment, dispute, admin, system.
pub fn action_type(event_type: &str, actor_role: &str) -> &'static str {
    match event_type {
        "account-registered" | "password-set" | "logged-in" | "session-opened" | "session-closed" => "auth",
        "project-funded" | "milestone-funded" | "milestone-payment-released" | "project-cancelled" => "payment",
        t if t.starts_with("payment-") => "payment",
        "dispute-opened"
        | "moderator-assigned"
        | "dispute-resolved"
        | "dispute-evidence-added"
        | "dispute-escalated"
        | "dispute-closed" => "dispute",
        "vetting-reviewed" => "admin",
        "role-changed"
        | "admin-granted"
        | "user-suspended"
        | "user-reinstated"
        | "account-suspended"
        | "account-reactivated" => "admin",
        _ if actor_role == "system" => "system",
        _ => "system",
    }
}

/// `project`, `user`, … from the stream type `{context}.{type}`; the id is the stream's UUID.
fn target(e: &RecordedEvent) -> (String, String) {
    let kind = e.stream_type.split_once('.').map(|(_, t)| t).unwrap_or(&e.stream_type).to_owned();
    let id = if e.stream_id.len() >= 36 && uuid::Uuid::parse_str(&e.stream_id[e.stream_id.len() - 36..]).is_ok() {
        e.stream_id[e.stream_id.len() - 36..].to_owned()
    } else {
        e.stream_id.clone()
    };
    (kind, id)
}

/// The payload without credentials or token hashes.
fn details(payload: &Value) -> Value {
    match payload {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.contains("hash") && !k.contains("password"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Projector for AuditLogProjector {
    fn name(&self) -> &'static str {
        "marketplace-audit-log"
    }
    fn event_types(&self) -> &'static [&'static str] {
        AUDITED
    }
    fn tables(&self) -> &'static [&'static str] {
        &["marketplace.audit_logs"]
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        tables: &'a Tables,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let rows: Vec<Value> = events
                .iter()
                .map(|e| {
                    let m = &e.metadata;
                    let role = m["actor_role"].as_str().unwrap_or("system");
                    let (target_type, target_id) = target(e);
                    json!({
                        "id": e.event_id,
                        "action": e.event_type.replace('-', "_"),
                        "action_type": action_type(&e.event_type, role),
                        "actor_id": m["actor_id"].as_str().unwrap_or("anonymous"),
                        "actor_role": role,
                        "target_type": target_type,
                        "target_id": target_id,
                        "details": json!({ "command": m["command_name"], "commandId": m["command_id"], "correlationId": m["correlation_id"], "payload": details(&e.payload) }),
                        "ip_address": m["client_ip"],
                        "user_agent": m["user_agent"],
                        "stream_id": e.stream_id,
                        "position": e.position,
                        "created_at": e.recorded_at,
                    })
                })
                .collect();
            let t = tables.get("marketplace.audit_logs");
            sqlx::query(&format!(
                "insert into {t} (id, action, action_type, actor_id, actor_role, target_type, target_id, details, ip_address, user_agent, stream_id, position, created_at)
                 select id, action, action_type, actor_id, actor_role, target_type, target_id, details, ip_address, user_agent, stream_id, position, created_at
                 from jsonb_to_recordset($1) as r(id uuid, action text, action_type text, actor_id text, actor_role text, target_type text,
                      target_id text, details jsonb, ip_address text, user_agent text, stream_id text, position bigint, created_at timestamptz)
                 on conflict (id) do nothing"
            ))
            .bind(Value::Array(rows))
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }
}
