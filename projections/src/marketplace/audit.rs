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
            // One statement per batch, its columns sent as typed arrays.
            let n = events.len();
            let mut id = Vec::with_capacity(n);
            let mut action = Vec::with_capacity(n);
            let mut kind = Vec::with_capacity(n);
            let mut actor_id = Vec::with_capacity(n);
            let mut actor_role = Vec::with_capacity(n);
            let mut target_type = Vec::with_capacity(n);
            let mut target_id = Vec::with_capacity(n);
            let mut detail = Vec::with_capacity(n);
            let mut ip = Vec::with_capacity(n);
            let mut agent = Vec::with_capacity(n);
            let mut stream = Vec::with_capacity(n);
            let mut position = Vec::with_capacity(n);
            let mut at = Vec::with_capacity(n);
            for e in events {
                let m = &e.metadata;
                let role = m["actor_role"].as_str().unwrap_or("system");
                let (ty, target) = target(e);
                id.push(e.event_id);
                action.push(e.event_type.replace('-', "_"));
                kind.push(action_type(&e.event_type, role));
                actor_id.push(m["actor_id"].as_str().unwrap_or("anonymous"));
                actor_role.push(role);
                target_type.push(ty);
                target_id.push(target);
                detail.push(json!({ "command": m["command_name"], "commandId": m["command_id"], "correlationId": m["correlation_id"], "payload": details(&e.payload) }));
                ip.push(m["client_ip"].as_str());
                agent.push(m["user_agent"].as_str());
                stream.push(e.stream_id.as_str());
                position.push(e.position);
                at.push(e.recorded_at);
            }
            let t = tables.get("marketplace.audit_logs");
            sqlx::query(&format!(
                "insert into {t} (id, action, action_type, actor_id, actor_role, target_type, target_id, details, ip_address, user_agent, stream_id, position, created_at)
                 select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[],
                                      $9::text[], $10::text[], $11::text[], $12::int8[], $13::timestamptz[])
                 on conflict (id) do nothing"
            ))
            .bind(id)
            .bind(action)
            .bind(kind)
            .bind(actor_id)
            .bind(actor_role)
            .bind(target_type)
            .bind(target_id)
            .bind(detail)
            .bind(ip)
            .bind(agent)
            .bind(stream)
            .bind(position)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }
}
