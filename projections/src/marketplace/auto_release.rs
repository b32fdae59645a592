//! Process manager: 48 hours after a milestone is approved, release its payment. Scheduled in
//! the projector's transaction (so exactly once per approval); if the client released it by hand
//! meanwhile, the scheduled command is refused by the aggregate and recorded as such.

use crate::{ProjectionError, Projector, Tables};
use commands::scheduler::{schedule, ScheduledCommand};
use commands::RecordedEvent;
use domain::kernel::decode_event;
use domain::marketplace::project::ProjectEvent;
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::PgConnection;

pub struct AutoRelease;

impl Projector for AutoRelease {
    fn name(&self) -> &'static str {
        "marketplace-auto-release"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["milestone-approved"]
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
            for e in events {
                let event: ProjectEvent =
                    decode_event(&e.event_type, &e.payload).map_err(|err| ProjectionError::Event {
                        position: e.position,
                        event_type: e.event_type.clone(),
                        message: err.to_string(),
                    })?;
                if let ProjectEvent::MilestoneApproved { project_id, milestone_id, auto_release_at, .. } = event {
                    schedule(
                        conn,
                        &ScheduledCommand {
                            id: ScheduledCommand::id_for(e.event_id, "auto-release"),
                            context: "marketplace".into(),
                            command: "release-milestone-payment".into(),
                            payload: json!({ "projectId": project_id, "milestoneId": milestone_id }),
                            due_at: auto_release_at,
                            source_event: Some(e.event_id),
                        },
                    )
                    .await?;
                }
            }
            Ok(())
        })
    }
}
