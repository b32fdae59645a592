//! `marketplace.matches` (one row per proposal, listed per project by score), and the matching
//! process manager: a proposal expires 7 days after it was generated (the scheduler sends
//! `expire-match`, cancelled when the client answers first), and an accepted proposal moves the
//! project to `matched` (the scheduler sends the project's `accept-match` as the system; it is
//! retried on transient failures and idempotent on the project, so an accepted match cannot be
//! left with its project unmatched because a process died in between).

use super::decode;
use crate::{ProjectionError, Tables};
use commands::scheduler::{cancel, schedule, ScheduledCommand};
use commands::RecordedEvent;
use domain::marketplace::matching::MatchEvent;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

pub struct MatchesProjector;

async fn apply_one(conn: &mut PgConnection, tables: &Tables, e: &RecordedEvent) -> Result<(), ProjectionError> {
    let t = tables.get("marketplace.matches");
    match decode::<MatchEvent>(e)? {
        MatchEvent::MatchGenerated {
            match_id,
            project_id,
            freelancer_id,
            client_id,
            score,
            confidence,
            scoring_breakdown,
            explanation,
            status,
            expires_at,
            at,
            ..
        } => {
            sqlx::query(&format!(
                "insert into {t} (id, project_id, freelancer_id, client_id, score, confidence, scoring_breakdown, explanation, status,
                                  created_at, updated_at, expires_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) on conflict (id) do nothing"
            ))
            .bind(match_id)
            .bind(project_id)
            .bind(freelancer_id)
            .bind(client_id)
            .bind(i32::from(score))
            .bind(confidence.as_str())
            .bind(json!(scoring_breakdown))
            .bind(explanation)
            .bind(status.as_str())
            .bind(at)
            .bind(expires_at)
            .execute(&mut *conn)
            .await?;
        }
        MatchEvent::MatchAccepted { match_id, status, client_action, at, .. } => {
            answer(conn, t, match_id, status.as_str(), client_action, None, at).await?
        }
        MatchEvent::MatchRejected { match_id, status, client_action, reason, at, .. } => {
            answer(conn, t, match_id, status.as_str(), client_action, reason, at).await?
        }
        MatchEvent::MatchExpired { match_id, status, at, .. } => {
            super::set_status(conn, t, match_id, status.as_str(), at).await?;
        }
    }
    Ok(())
}

async fn answer(
    conn: &mut PgConnection,
    t: &str,
    match_id: Uuid,
    status: &str,
    action: domain::marketplace::matching::ClientAction,
    reason: Option<String>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    let action = json!(action);
    sqlx::query(&format!(
        "update {t} set status = $2, client_action = $3, client_action_at = $4, rejection_reason = $5, updated_at = $4 where id = $1"
    ))
    .bind(match_id)
    .bind(status)
    .bind(action.as_str())
    .bind(at)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

const MATCH_EVENTS: &[&str] = &["match-generated", "match-accepted", "match-rejected", "match-expired"];

/// The scheduled `expire-match` of a proposal: derived from the match, so answering it can cancel it.
pub fn expiry_command_id(match_id: Uuid) -> Uuid {
    Uuid::new_v5(&match_id, b"expire-match")
}

pub struct MatchProcess;

/// What the process manager does about one match event: schedule or cancel commands, in the
/// projector's transaction (so exactly once).
async fn follow_up(conn: &mut PgConnection, _tables: &Tables, e: &RecordedEvent) -> Result<(), ProjectionError> {
    match decode::<MatchEvent>(e)? {
        MatchEvent::MatchGenerated { match_id, expires_at, .. } => {
            let command = ScheduledCommand {
                id: expiry_command_id(match_id),
                context: "marketplace".into(),
                command: "expire-match".into(),
                payload: json!({ "matchId": match_id }),
                due_at: expires_at,
                source_event: Some(e.event_id),
            };
            schedule(conn, &command).await?;
        }
        MatchEvent::MatchAccepted { match_id, project_id, freelancer_id, at, .. } => {
            cancel(conn, expiry_command_id(match_id)).await?;
            let command = ScheduledCommand {
                id: ScheduledCommand::id_for(e.event_id, "match-accepted-project"),
                context: "marketplace".into(),
                command: "accept-match".into(),
                payload: json!({ "projectId": project_id, "freelancerId": freelancer_id, "matchId": match_id }),
                due_at: at,
                source_event: Some(e.event_id),
            };
            schedule(conn, &command).await?;
        }
        MatchEvent::MatchRejected { match_id, .. } => {
            cancel(conn, expiry_command_id(match_id)).await?;
        }
        MatchEvent::MatchExpired { .. } => {}
    }
    Ok(())
}

super::per_event_projector!(MatchesProjector, "marketplace-matches", MATCH_EVENTS, &["marketplace.matches"], apply_one);
super::per_event_projector!(MatchProcess, "marketplace-match-process", MATCH_EVENTS, &[], follow_up);
