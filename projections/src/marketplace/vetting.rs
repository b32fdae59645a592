//! `marketplace.vetting_results`: the current view of each freelancer's vetting. Results are
//! immutable events (a correction is a new one); which result is current is the aggregate's rule,
//! so the row is written from the `Vetting` aggregate folded over its stream up to the event —
//! the same fold the write side uses, never a second copy of the rule in SQL.

use crate::{ProjectionError, Tables};
use commands::RecordedEvent;
use domain::kernel::{decode_event, Aggregate};
use domain::marketplace::vetting::{Vetting, VettingEvent};
use serde_json::{json, Value};
use sqlx::{PgConnection, Row};

pub struct VettingProjector;

/// The vetting as it was right after `e`: its stream folded up to `e`'s version.
async fn fold_until(conn: &mut PgConnection, e: &RecordedEvent) -> Result<Vetting, ProjectionError> {
    let rows =
        sqlx::query("select event_type, payload from events where stream_id = $1 and version <= $2 order by version")
            .bind(&e.stream_id)
            .bind(e.version)
            .fetch_all(&mut *conn)
            .await?;
    let mut vetting = Vetting::default();
    for row in rows {
        let event_type: String = row.try_get("event_type")?;
        let payload: Value = row.try_get("payload")?;
        let event: VettingEvent = decode_event(&event_type, &payload).map_err(|err| ProjectionError::Event {
            position: e.position,
            event_type: event_type.clone(),
            message: err.to_string(),
        })?;
        vetting.evolve(&event);
    }
    Ok(vetting)
}

async fn write_row(conn: &mut PgConnection, tables: &Tables, e: &RecordedEvent) -> Result<(), ProjectionError> {
    let v = fold_until(conn, e).await?;
    let Some(freelancer_id) = v.freelancer_id() else { return Ok(()) };
    let identity = v.current_identity().map(|r| {
        json!({
            "resultId": r.result_id, "provider": r.provider, "status": r.status, "verifiedAt": (r.status == domain::marketplace::vetting::IdentityStatus::Verified).then_some(r.recorded_at),
            "documentType": r.document_type, "documentNumber": r.document_number, "livenessCheck": r.liveness_check, "score": r.score,
            "corrects": r.corrects,
        })
    });
    let english = v.current_english().map(|r| {
        json!({
            "resultId": r.result_id, "grammarScore": r.grammar_score, "comprehensionScore": r.comprehension_score,
            "writtenResponseScore": r.written_response_score, "overallScore": r.score_percent(), "completedAt": r.recorded_at,
            "corrects": r.corrects,
        })
    });
    let skills: Vec<Value> = v
        .current_skills()
        .iter()
        .map(|s| {
            json!({
                "resultId": s.result_id, "skillId": s.skill_id, "skillName": s.skill_name, "assessmentType": s.assessment_type,
                "score": s.score, "completedAt": s.recorded_at, "details": s.details, "corrects": s.corrects,
            })
        })
        .collect();
    let t = tables.get("marketplace.vetting_results");
    let created = v.started_at().unwrap_or(e.recorded_at);
    let updated = v.updated_at().unwrap_or(created);
    sqlx::query(&format!(
        "insert into {t} (id, freelancer_id, identity_verification, english_proficiency, skill_assessments, overall_score, status,
                          reviewed_by, reviewed_at, review_notes, created_at, updated_at)
         values ($1, $1, $2, $3, $4, $5::numeric / 100, $6, $7, $8, $9, $10, $11)
         on conflict (id) do update set identity_verification = excluded.identity_verification,
             english_proficiency = excluded.english_proficiency, skill_assessments = excluded.skill_assessments,
             overall_score = excluded.overall_score, status = excluded.status, reviewed_by = excluded.reviewed_by,
             reviewed_at = excluded.reviewed_at, review_notes = excluded.review_notes, updated_at = excluded.updated_at"
    ))
    .bind(freelancer_id)
    .bind(identity)
    .bind(english)
    .bind(Value::Array(skills))
    .bind(v.overall_score())
    .bind(v.status().as_str())
    .bind(v.reviewed_by())
    .bind(v.reviewed_at())
    .bind(v.review_notes())
    .bind(created)
    .bind(updated)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

super::per_event_projector!(
    VettingProjector,
    "marketplace-vetting",
    &[
        "vetting-started",
        "identity-verification-recorded",
        "english-proficiency-recorded",
        "skill-assessment-recorded",
        "vetting-reviewed",
    ],
    &["marketplace.vetting_results"],
    write_row
);
