//! `marketplace.projects`, `milestones`, `disputes` and `payments`: all from the project stream
//! (the project aggregate owns its milestones, disputes and escrow). Events are decoded into the
//! domain's own types, so a payload that no longer fits fails loudly instead of projecting
//! nonsense.

use crate::{ProjectionError, Projector, Tables};
use chrono::{DateTime, Utc};
use commands::RecordedEvent;
use domain::kernel::decode_event;
use domain::marketplace::payment::PaymentEvent;
use domain::marketplace::project::ProjectEvent;
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

pub struct ProjectsProjector;

pub const EVENT_TYPES: &[&str] = &[
    "project-created",
    "milestone-added",
    "project-funded",
    "milestone-funded",
    "freelancer-matched",
    "milestone-started",
    "project-started",
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
    "payment-webhook-recorded",
];

struct Payment<'a> {
    id: Uuid,
    project_id: Uuid,
    milestone_id: Option<Uuid>,
    dispute_id: Option<Uuid>,
    kind: &'a str,
    amount: i64,
    platform_fee: Option<i64>,
    net_amount: i64,
    at: DateTime<Utc>,
}

async fn insert_payment(conn: &mut PgConnection, tables: &Tables, p: Payment<'_>) -> Result<(), sqlx::Error> {
    let payments = tables.get("marketplace.payments");
    let projects = tables.get("marketplace.projects");
    // Money movements start `pending`; the provider's webhook moves them on.
    sqlx::query(&format!(
        "insert into {payments} (id, project_id, milestone_id, dispute_id, type, amount, currency, platform_fee, net_amount,
                                 status, created_at, updated_at)
         select $1, $2, $3, $4, $5, $6, p.currency, $7, $8, 'pending', $9, $9 from {projects} p where p.id = $2
         on conflict (id) do nothing"
    ))
    .bind(p.id)
    .bind(p.project_id)
    .bind(p.milestone_id)
    .bind(p.dispute_id)
    .bind(p.kind)
    .bind(p.amount)
    .bind(p.platform_fee)
    .bind(p.net_amount)
    .bind(p.at)
    .execute(conn)
    .await?;
    Ok(())
}

async fn milestone_status(
    conn: &mut PgConnection,
    tables: &Tables,
    id: Uuid,
    status: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    super::set_status(conn, tables.get("marketplace.milestones"), id, status, at).await
}

async fn apply_one(conn: &mut PgConnection, tables: &Tables, e: &RecordedEvent) -> Result<(), ProjectionError> {
    let event: ProjectEvent = decode_event(&e.event_type, &e.payload).map_err(|err| ProjectionError::Event {
        position: e.position,
        event_type: e.event_type.clone(),
        message: err.to_string(),
    })?;
    let projects = tables.get("marketplace.projects");
    let milestones = tables.get("marketplace.milestones");
    let disputes = tables.get("marketplace.disputes");
    match event {
        ProjectEvent::ProjectCreated {
            project_id,
            client_id,
            intake_form,
            total_amount,
            currency,
            platform_fee_percent,
            status,
            at,
        } => {
            sqlx::query(&format!(
                "insert into {projects} (id, client_id, intake_form, status, total_amount, platform_fee, currency, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $8) on conflict (id) do nothing"
            ))
            .bind(project_id)
            .bind(client_id)
            .bind(serde_json::to_value(&intake_form).expect("intake form"))
            .bind(status.as_str())
            .bind(total_amount)
            .bind(platform_fee_percent as i32)
            .bind(currency.as_str())
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        ProjectEvent::MilestoneAdded {
            project_id,
            milestone_id,
            title,
            description,
            order,
            amount,
            currency,
            due_date,
            funded,
            at,
        } => {
            sqlx::query(&format!(
                "insert into {milestones} (id, project_id, title, description, sort_order, amount, currency, status, funded, due_date, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10, $10) on conflict (id) do nothing"
            ))
            .bind(milestone_id)
            .bind(project_id)
            .bind(title)
            .bind(description)
            .bind(order as i32)
            .bind(amount)
            .bind(currency.as_str())
            .bind(funded)
            .bind(due_date)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        ProjectEvent::ProjectFunded {
            project_id,
            amount,
            escrowed_amount,
            funded_milestones,
            payment_id,
            status,
            at,
            ..
        } => {
            sqlx::query(&format!(
                "update {projects} set escrowed_amount = $2, funded_amount = funded_amount + $3, status = $4, updated_at = $5 where id = $1"
            ))
            .bind(project_id)
            .bind(escrowed_amount)
            .bind(amount)
            .bind(status.as_str())
            .bind(at)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!("update {milestones} set funded = true, updated_at = $2 where id = any($1)"))
                .bind(&funded_milestones)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            insert_payment(
                conn,
                tables,
                Payment {
                    id: payment_id,
                    project_id,
                    milestone_id: None,
                    dispute_id: None,
                    kind: "pre_funding",
                    amount,
                    platform_fee: None,
                    net_amount: amount,
                    at,
                },
            )
            .await?;
        }
        ProjectEvent::MilestoneFunded {
            project_id,
            milestone_id,
            amount,
            escrowed_amount,
            payment_id,
            status,
            at,
            ..
        } => {
            sqlx::query(&format!(
                "update {projects} set escrowed_amount = $2, funded_amount = funded_amount + $3, status = $4, updated_at = $5 where id = $1"
            ))
            .bind(project_id)
            .bind(escrowed_amount)
            .bind(amount)
            .bind(status.as_str())
            .bind(at)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!("update {milestones} set funded = true, updated_at = $2 where id = $1"))
                .bind(milestone_id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            insert_payment(
                conn,
                tables,
                Payment {
                    id: payment_id,
                    project_id,
                    milestone_id: Some(milestone_id),
                    dispute_id: None,
                    kind: "pre_funding",
                    amount,
                    platform_fee: None,
                    net_amount: amount,
                    at,
                },
            )
            .await?;
        }
        ProjectEvent::FreelancerMatched { project_id, freelancer_id, status, at, .. } => {
            sqlx::query(&format!("update {projects} set matched_freelancer_id = $2, matched_at = $3, status = $4, updated_at = $3 where id = $1"))
                .bind(project_id)
                .bind(freelancer_id)
                .bind(at)
                .bind(status.as_str())
                .execute(&mut *conn)
                .await?;
        }
        ProjectEvent::MilestoneStarted { milestone_id, at, .. } => {
            milestone_status(conn, tables, milestone_id, "in_progress", at).await?
        }
        ProjectEvent::ProjectStarted { project_id, status, at } => {
            sqlx::query(&format!("update {projects} set status = $2, started_at = coalesce(started_at, $3), updated_at = $3 where id = $1"))
                .bind(project_id)
                .bind(status.as_str())
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        ProjectEvent::MilestoneSubmitted { milestone_id, deliverables, at, .. } => {
            sqlx::query(&format!("update {milestones} set status = 'submitted', deliverables = $2, submitted_at = $3, updated_at = $3 where id = $1"))
                .bind(milestone_id)
                .bind(serde_json::to_value(&deliverables).expect("deliverables"))
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        ProjectEvent::MilestoneApproved { milestone_id, approved_by, at, auto_release_at, .. } => {
            sqlx::query(&format!(
                "update {milestones} set status = 'approved', approved_by = $2, approved_at = $3, auto_release_at = $4,
                        rejection_reason = null, updated_at = $3 where id = $1"
            ))
            .bind(milestone_id)
            .bind(approved_by)
            .bind(at)
            .bind(auto_release_at)
            .execute(&mut *conn)
            .await?;
        }
        ProjectEvent::MilestoneRejected { milestone_id, reason, at, .. } => {
            sqlx::query(&format!(
                "update {milestones} set status = 'rejected', rejection_reason = $2, updated_at = $3 where id = $1"
            ))
            .bind(milestone_id)
            .bind(reason)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        ProjectEvent::MilestonePaymentReleased {
            project_id,
            milestone_id,
            amount,
            platform_fee,
            net_amount,
            escrowed_amount,
            payment_id,
            fee_payment_id,
            at,
            ..
        } => {
            sqlx::query(&format!(
                "update {milestones} set status = 'paid', paid_at = $2, updated_at = $2 where id = $1"
            ))
            .bind(milestone_id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!(
                "update {projects} set escrowed_amount = $2, released_amount = released_amount + $3, fees_amount = fees_amount + $4, updated_at = $5 where id = $1"
            ))
            .bind(project_id)
            .bind(escrowed_amount)
            .bind(amount)
            .bind(platform_fee)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            insert_payment(
                conn,
                tables,
                Payment {
                    id: payment_id,
                    project_id,
                    milestone_id: Some(milestone_id),
                    dispute_id: None,
                    kind: "milestone_release",
                    amount,
                    platform_fee: Some(platform_fee),
                    net_amount,
                    at,
                },
            )
            .await?;
            insert_payment(
                conn,
                tables,
                Payment {
                    id: fee_payment_id,
                    project_id,
                    milestone_id: Some(milestone_id),
                    dispute_id: None,
                    kind: "platform_fee",
                    amount: platform_fee,
                    platform_fee: Some(platform_fee),
                    net_amount: platform_fee,
                    at,
                },
            )
            .await?;
        }
        ProjectEvent::DisputeOpened {
            project_id,
            dispute_id,
            milestone_id,
            initiator_id,
            initiator_role,
            dispute_type,
            reason,
            description,
            locked_amount,
            status,
            at,
        } => {
            sqlx::query(&format!(
                "insert into {disputes} (id, project_id, milestone_id, initiator_id, initiator_role, type, reason, description, status, locked_amount, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $10, $10) on conflict (id) do nothing"
            ))
            .bind(dispute_id)
            .bind(project_id)
            .bind(milestone_id)
            .bind(initiator_id)
            .bind(initiator_role.as_str())
            .bind(serde_json::to_value(dispute_type).expect("type").as_str().unwrap_or_default().to_owned())
            .bind(reason)
            .bind(description)
            .bind(locked_amount)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if let Some(m) = milestone_id {
                milestone_status(conn, tables, m, "disputed", at).await?;
            }
            sqlx::query(&format!("update {projects} set status = $2, updated_at = $3 where id = $1"))
                .bind(project_id)
                .bind(status.as_str())
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        ProjectEvent::ModeratorAssigned { dispute_id, moderator_id, at, .. } => {
            sqlx::query(&format!("update {disputes} set assigned_moderator_id = $2, assigned_at = $3,
                        status = case when status = 'escalated' then status else 'under_review' end, updated_at = $3 where id = $1"))
                .bind(dispute_id)
                .bind(moderator_id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        ProjectEvent::DisputeResolved {
            project_id,
            dispute_id,
            milestone_id,
            decision,
            resolution_amount,
            notes,
            resolved_by,
            released_amount,
            refunded_amount,
            platform_fee,
            net_released,
            escrowed_amount,
            release_payment_id,
            refund_payment_id,
            fee_payment_id,
            milestone_status: ms,
            project_status,
            at,
        } => {
            let resolution = json!({
                "decision": decision, "resolutionAmount": resolution_amount, "notes": notes, "resolvedBy": resolved_by, "resolvedAt": at,
                "releasedAmount": released_amount, "refundedAmount": refunded_amount, "platformFee": platform_fee,
            });
            sqlx::query(&format!("update {disputes} set status = 'resolved', resolution = $2, resolved_at = $3, updated_at = $3 where id = $1"))
                .bind(dispute_id)
                .bind(resolution)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            if let (Some(m), Some(s)) = (milestone_id, ms) {
                let paid = s.as_str() == "paid";
                sqlx::query(&format!(
                    "update {milestones} set status = $2, funded = case when $2 = 'pending' then false else funded end,
                            paid_at = case when $3 then $4 else paid_at end, updated_at = $4 where id = $1"
                ))
                .bind(m)
                .bind(s.as_str())
                .bind(paid)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query(&format!(
                "update {projects} set status = $2, escrowed_amount = $3, released_amount = released_amount + $4,
                        refunded_amount = refunded_amount + $5, fees_amount = fees_amount + $6, updated_at = $7 where id = $1"
            ))
            .bind(project_id)
            .bind(project_status.as_str())
            .bind(escrowed_amount)
            .bind(released_amount)
            .bind(refunded_amount)
            .bind(platform_fee)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if let Some(id) = release_payment_id {
                insert_payment(
                    conn,
                    tables,
                    Payment {
                        id,
                        project_id,
                        milestone_id,
                        dispute_id: Some(dispute_id),
                        kind: "milestone_release",
                        amount: released_amount,
                        platform_fee: Some(platform_fee),
                        net_amount: net_released,
                        at,
                    },
                )
                .await?;
            }
            if let Some(id) = refund_payment_id {
                insert_payment(
                    conn,
                    tables,
                    Payment {
                        id,
                        project_id,
                        milestone_id,
                        dispute_id: Some(dispute_id),
                        kind: "refund",
                        amount: refunded_amount,
                        platform_fee: None,
                        net_amount: refunded_amount,
                        at,
                    },
                )
                .await?;
            }
            if let Some(id) = fee_payment_id {
                insert_payment(
                    conn,
                    tables,
                    Payment {
                        id,
                        project_id,
                        milestone_id,
                        dispute_id: Some(dispute_id),
                        kind: "platform_fee",
                        amount: platform_fee,
                        platform_fee: Some(platform_fee),
                        net_amount: platform_fee,
                        at,
                    },
                )
                .await?;
            }
        }
        ProjectEvent::IntakeFormUpdated { project_id, intake_form, total_amount, at } => {
            sqlx::query(&format!(
                "update {projects} set intake_form = $2, total_amount = $3, updated_at = $4 where id = $1"
            ))
            .bind(project_id)
            .bind(serde_json::to_value(&intake_form).expect("intake form"))
            .bind(total_amount)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        ProjectEvent::ProjectSubmittedForFunding { project_id, status, at }
        | ProjectEvent::MatchingStarted { project_id, status, at } => {
            sqlx::query(&format!("update {projects} set status = $2, updated_at = $3 where id = $1"))
                .bind(project_id)
                .bind(status.as_str())
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        ProjectEvent::ProjectCompleted {
            project_id,
            status,
            at,
            refunded_amount,
            escrowed_amount,
            refund_payment_id,
        }
        | ProjectEvent::ProjectCancelled {
            project_id,
            status,
            at,
            refunded_amount,
            escrowed_amount,
            refund_payment_id,
            ..
        } => {
            let completed = e.event_type == "project-completed";
            sqlx::query(&format!(
                "update {projects} set status = $2, escrowed_amount = $3, refunded_amount = refunded_amount + $4,
                        completed_at = case when $5 then $6 else completed_at end, updated_at = $6 where id = $1"
            ))
            .bind(project_id)
            .bind(status.as_str())
            .bind(escrowed_amount)
            .bind(refunded_amount)
            .bind(completed)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            if let Some(id) = refund_payment_id {
                insert_payment(
                    conn,
                    tables,
                    Payment {
                        id,
                        project_id,
                        milestone_id: None,
                        dispute_id: None,
                        kind: "refund",
                        amount: refunded_amount,
                        platform_fee: None,
                        net_amount: refunded_amount,
                        at,
                    },
                )
                .await?;
            }
        }
        ProjectEvent::DisputeEvidenceAdded { dispute_id, evidence, at, .. } => {
            sqlx::query(&format!("update {disputes} set evidence = evidence || jsonb_build_array($2::jsonb), updated_at = $3 where id = $1"))
                .bind(dispute_id)
                .bind(serde_json::to_value(&evidence).expect("evidence"))
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        ProjectEvent::DisputeEscalated { dispute_id, status, at, .. }
        | ProjectEvent::DisputeClosed { dispute_id, status, at, .. } => {
            super::set_status(conn, disputes, dispute_id, status.as_str(), at).await?;
        }
    }
    Ok(())
}

/// A provider webhook moves a payment row (born from a project event, so it exists already).
async fn apply_webhook(conn: &mut PgConnection, tables: &Tables, e: &RecordedEvent) -> Result<(), ProjectionError> {
    let PaymentEvent::PaymentWebhookRecorded {
        payment_id,
        webhook_event_id,
        to,
        stripe_payment_intent_id,
        stripe_payout_id,
        stripe_transfer_id,
        stripe_customer_id,
        stripe_account_id,
        error_message,
        at,
        ..
    } = super::decode::<PaymentEvent>(e)?;
    let payments = tables.get("marketplace.payments");
    sqlx::query(&format!(
        "update {payments} set status = $2, webhook_received = true, webhook_received_at = $3, webhook_event_id = $4,
                stripe_payment_intent_id = coalesce($5, stripe_payment_intent_id), stripe_payout_id = coalesce($6, stripe_payout_id),
                stripe_transfer_id = coalesce($7, stripe_transfer_id), stripe_customer_id = coalesce($8, stripe_customer_id),
                stripe_account_id = coalesce($9, stripe_account_id), error_message = coalesce($10, error_message),
                processed_at = case when $11 then $3 else processed_at end, updated_at = $3
         where id = $1"
    ))
    .bind(payment_id)
    .bind(to.as_str())
    .bind(at)
    .bind(webhook_event_id)
    .bind(stripe_payment_intent_id)
    .bind(stripe_payout_id)
    .bind(stripe_transfer_id)
    .bind(stripe_customer_id)
    .bind(stripe_account_id)
    .bind(error_message)
    .bind(to.is_processed())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Rows of insert-only events, written set-based: one statement per run of them.
#[derive(Default)]
struct Inserts {
    projects: Vec<serde_json::Value>,
    milestones: Vec<serde_json::Value>,
}

impl Inserts {
    fn is_empty(&self) -> bool {
        self.projects.is_empty() && self.milestones.is_empty()
    }

    /// Takes the event when it is a plain insert; otherwise hands it back.
    fn take(&mut self, e: &RecordedEvent) -> bool {
        match e.event_type.as_str() {
            "project-created" => {
                let p = &e.payload;
                self.projects.push(json!({
                    "id": p["projectId"], "client_id": p["clientId"], "intake_form": p["intakeForm"], "status": p["status"],
                    "total_amount": p["totalAmount"], "platform_fee": p["platformFeePercent"], "currency": p["currency"], "at": p["at"],
                }));
                true
            }
            "milestone-added" => {
                let p = &e.payload;
                self.milestones.push(json!({
                    "id": p["milestoneId"], "project_id": p["projectId"], "title": p["title"], "description": p["description"],
                    "sort_order": p["order"], "amount": p["amount"], "currency": p["currency"], "funded": p["funded"],
                    "due_date": p["dueDate"], "at": p["at"],
                }));
                true
            }
            _ => false,
        }
    }

    async fn flush(&mut self, conn: &mut PgConnection, tables: &Tables) -> Result<(), sqlx::Error> {
        if !self.projects.is_empty() {
            let t = tables.get("marketplace.projects");
            sqlx::query(&format!(
                "insert into {t} (id, client_id, intake_form, status, total_amount, platform_fee, currency, created_at, updated_at)
                 select id, client_id, intake_form, status, total_amount, platform_fee, currency, at, at
                 from jsonb_to_recordset($1) as r(id uuid, client_id uuid, intake_form jsonb, status text, total_amount bigint,
                      platform_fee int, currency text, at timestamptz)
                 on conflict (id) do nothing"
            ))
            .bind(serde_json::Value::Array(std::mem::take(&mut self.projects)))
            .execute(&mut *conn)
            .await?;
        }
        if !self.milestones.is_empty() {
            let t = tables.get("marketplace.milestones");
            sqlx::query(&format!(
                "insert into {t} (id, project_id, title, description, sort_order, amount, currency, status, funded, due_date, created_at, updated_at)
                 select id, project_id, title, description, sort_order, amount, currency, 'pending', funded, due_date, at, at
                 from jsonb_to_recordset($1) as r(id uuid, project_id uuid, title text, description text, sort_order int, amount bigint,
                      currency text, funded boolean, due_date timestamptz, at timestamptz)
                 on conflict (id) do nothing"
            ))
            .bind(serde_json::Value::Array(std::mem::take(&mut self.milestones)))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

impl Projector for ProjectsProjector {
    fn name(&self) -> &'static str {
        "marketplace-projects"
    }
    fn event_types(&self) -> &'static [&'static str] {
        EVENT_TYPES
    }
    fn tables(&self) -> &'static [&'static str] {
        &["marketplace.projects", "marketplace.milestones", "marketplace.disputes", "marketplace.payments"]
    }
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        tables: &'a Tables,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            // Inserts accumulate; any other event first flushes them, so rows change in log order.
            let mut inserts = Inserts::default();
            for e in events {
                if inserts.take(e) {
                    continue;
                }
                if !inserts.is_empty() {
                    inserts.flush(conn, tables).await?;
                }
                if !super::is_marketplace(e) {
                    continue;
                }
                if e.event_type == "payment-webhook-recorded" {
                    apply_webhook(conn, tables, e).await?;
                } else {
                    apply_one(conn, tables, e).await?;
                }
            }
            inserts.flush(conn, tables).await?;
            Ok(())
        })
    }
}
