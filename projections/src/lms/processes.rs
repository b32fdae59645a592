//! Process managers of the learning platform. Each reaction is a command scheduled through
//! `scheduled_commands` in the projector's transaction (so exactly once per event) and run by
//! the scheduler as the system actor:
//!
//! * an approved instructor application grants the instructor flag on the user's stream (the
//!   approval handler also does it at once; whichever runs second decides nothing, as the user
//!   aggregate ignores a grant for the same application);
//! * an opened purchase expires when its checkout does, unless a webhook closed it first (the
//!   aggregate then decides nothing);
//! * reviews of applications, enrolments and certificates notify the user: notifications are
//!   events of their own stream, created by `notify-user` with an id derived from the event.

use crate::{ProjectionError, Projector, Tables};
use chrono::{DateTime, Utc};
use commands::scheduler::{schedule, ScheduledCommand};
use commands::RecordedEvent;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use sqlx::PgConnection;

pub struct LmsProcesses;

fn field<'a>(e: &'a RecordedEvent, name: &str) -> Result<&'a Value, ProjectionError> {
    e.payload.get(name).filter(|v| !v.is_null()).ok_or_else(|| ProjectionError::Event {
        position: e.position,
        event_type: e.event_type.clone(),
        message: format!("the payload has no `{name}`"),
    })
}

fn time(e: &RecordedEvent, name: &str) -> Result<DateTime<Utc>, ProjectionError> {
    serde_json::from_value(field(e, name)?.clone()).map_err(|err| ProjectionError::Event {
        position: e.position,
        event_type: e.event_type.clone(),
        message: format!("`{name}` is not a time: {err}"),
    })
}

/// A `notify-user` command for `user`, due when the event happened.
fn notify(
    e: &RecordedEvent,
    at: DateTime<Utc>,
    kind: &str,
    title: &str,
    description: String,
    link: Option<String>,
) -> Result<ScheduledCommand, ProjectionError> {
    let id = ScheduledCommand::id_for(e.event_id, "notify");
    Ok(ScheduledCommand {
        id,
        context: "lms".into(),
        command: "notify-user".into(),
        payload: json!({
            "notificationId": id,
            "userId": field(e, "userId")?,
            "title": title,
            "description": description,
            "notificationType": kind,
            "link": link,
            "metadata": { "event": e.event_type, "stream": e.stream_id },
        }),
        due_at: at,
        source_event: Some(e.event_id),
    })
}

fn reactions(e: &RecordedEvent) -> Result<Vec<ScheduledCommand>, ProjectionError> {
    let text = |name: &str| field(e, name).map(|v| v.as_str().unwrap_or_default().to_owned());
    Ok(match e.event_type.as_str() {
        "application-approved" => {
            let at = time(e, "at")?;
            vec![
                ScheduledCommand {
                    id: ScheduledCommand::id_for(e.event_id, "grant-instructor"),
                    context: "lms".into(),
                    command: "grant-instructor".into(),
                    payload: json!({ "userId": field(e, "userId")?, "applicationId": field(e, "applicationId")? }),
                    due_at: at,
                    source_event: Some(e.event_id),
                },
                notify(
                    e,
                    at,
                    "announcement",
                    "Your instructor application was approved",
                    "You can now create courses.".into(),
                    None,
                )?,
            ]
        }
        "application-rejected" => {
            vec![notify(
                e,
                time(e, "at")?,
                "announcement",
                "Your instructor application was rejected",
                text("reason")?,
                None,
            )?]
        }
        "purchase-opened" => vec![ScheduledCommand {
            id: ScheduledCommand::id_for(e.event_id, "expire-checkout"),
            context: "lms".into(),
            command: "expire-checkout".into(),
            payload: json!({ "courseId": field(e, "courseId")?, "userId": field(e, "userId")?, "purchaseId": field(e, "purchaseId")? }),
            due_at: time(e, "expiresAt")?,
            source_event: Some(e.event_id),
        }],
        "enrolled" => {
            let course = text("courseId")?;
            vec![notify(
                e,
                time(e, "at")?,
                "course_update",
                "You are enrolled",
                "Your course is ready.".into(),
                Some(format!("/courses/{course}")),
            )?]
        }
        "certificate-issued" => {
            let description = format!(
                "Congratulations on completing {}. Verification code {}.",
                text("courseName")?,
                text("verificationCode")?
            );
            let link = Some(format!("/v1/lms/certificates/verify/{}", text("verificationCode")?));
            vec![notify(e, time(e, "issueDate")?, "certificate", "Your certificate is ready", description, link)?]
        }
        _ => Vec::new(),
    })
}

impl Projector for LmsProcesses {
    fn name(&self) -> &'static str {
        "lms-processes"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["application-approved", "application-rejected", "purchase-opened", "enrolled", "certificate-issued"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }
    fn reads_metadata(&self) -> bool {
        false
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        _tables: &'a Tables,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            for e in events.iter().filter(|e| e.stream_type.starts_with("lms.")) {
                for command in reactions(e)? {
                    schedule(conn, &command).await?;
                }
            }
            Ok(())
        })
    }
}
