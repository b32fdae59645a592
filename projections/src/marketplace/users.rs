//! `marketplace.users`: marketplace profiles (user stream events) and last log-in (identity).

use crate::{ProjectionError, Projector, Tables};
use commands::RecordedEvent;
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use sqlx::PgConnection;

pub struct UsersProjector;

const PROFILE_FIELDS: &[(&str, &str)] = &[
    ("company_name", "companyName"),
    ("company_size", "companySize"),
    ("industry", "industry"),
    ("bio", "bio"),
    ("skills", "skills"),
    ("hourly_rate", "hourlyRate"),
    ("availability", "availability"),
    ("timezone", "timezone"),
    ("portfolio_url", "portfolioUrl"),
];

/// The profile change an update event carries: fields set, and fields cleared (`""` or `[]`).
fn profile_patch(payload: &Value) -> (Value, Vec<String>) {
    let mut set = Map::new();
    let mut cleared = Vec::new();
    for (from, to) in PROFILE_FIELDS {
        match payload.get(*from) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => cleared.push((*to).to_owned()),
            Some(Value::Array(a)) if a.is_empty() => cleared.push((*to).to_owned()),
            Some(v) => {
                set.insert((*to).to_owned(), v.clone());
            }
        }
    }
    (Value::Object(set), cleared)
}

impl Projector for UsersProjector {
    fn name(&self) -> &'static str {
        "marketplace-users"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &[
            "user-joined",
            "role-changed",
            "client-profile-updated",
            "freelancer-profile-updated",
            "user-suspended",
            "user-reinstated",
            "logged-in",
        ]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["marketplace.users"]
    }
    fn reads_metadata(&self) -> bool {
        false
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        tables: &'a Tables,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            let t = tables.get("marketplace.users");
            for e in events {
                let p = &e.payload;
                let at = p.get("at").cloned().unwrap_or(Value::Null);
                let id = p
                    .get("user_id")
                    .or_else(|| p.get("account_id"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                match e.event_type.as_str() {
                    "user-joined" => {
                        sqlx::query(&format!(
                            "insert into {t} (id, email, name, role, created_at, updated_at)
                             values ($1::uuid, $2, $3, $4, ($5::jsonb #>> '{{}}')::timestamptz, ($5::jsonb #>> '{{}}')::timestamptz)
                             on conflict (id) do nothing"
                        ))
                        .bind(&id)
                        .bind(p["email"].as_str())
                        .bind(p["name"].as_str())
                        .bind(p["role"].as_str())
                        .bind(&at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    "role-changed" => {
                        sqlx::query(&format!(
                            "update {t} set role = $2, role_changed_at = ($3::jsonb #>> '{{}}')::timestamptz,
                                    role_changed_by = $4::uuid, updated_at = ($3::jsonb #>> '{{}}')::timestamptz where id = $1::uuid"
                        ))
                        .bind(&id)
                        .bind(p["to"].as_str())
                        .bind(&at)
                        .bind(p["changed_by"].as_str())
                        .execute(&mut *conn)
                        .await?;
                    }
                    "client-profile-updated" | "freelancer-profile-updated" => {
                        let (set, cleared) = profile_patch(p);
                        sqlx::query(&format!(
                            "update {t} set profile = (profile || $2) - $3::text[], updated_at = ($4::jsonb #>> '{{}}')::timestamptz where id = $1::uuid"
                        ))
                        .bind(&id)
                        .bind(&set)
                        .bind(&cleared)
                        .bind(&at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    "user-suspended" | "user-reinstated" => {
                        let status = if e.event_type == "user-suspended" { "suspended" } else { "active" };
                        sqlx::query(&format!("update {t} set status = $2, updated_at = ($3::jsonb #>> '{{}}')::timestamptz where id = $1::uuid"))
                            .bind(&id)
                            .bind(status)
                            .bind(&at)
                            .execute(&mut *conn)
                            .await?;
                    }
                    "logged-in" => {
                        sqlx::query(&format!(
                            "update {t} set last_login_at = ($2::jsonb #>> '{{}}')::timestamptz where id = $1::uuid"
                        ))
                        .bind(&id)
                        .bind(&at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }
}
