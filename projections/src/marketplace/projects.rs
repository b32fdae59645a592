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
        ProjectEvent::ProjectCreated { .. } | ProjectEvent::MilestoneAdded { .. } => {
            // Plain inserts: `apply` hands them to `Inserts` in runs; one alone goes the same way.
            let mut one = Inserts::default();
            one.take(e)?;
            one.flush(conn, tables).await?;
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

/// Rows of insert-only events, written set-based: one statement per run of them, its columns
/// sent as typed arrays (binary uuids, integers and timestamps; no JSON text to build and parse).
#[derive(Default)]
struct Inserts {
    projects: ProjectRows,
    milestones: MilestoneRows,
}

#[derive(Default)]
struct ProjectRows {
    id: Vec<Uuid>,
    client_id: Vec<Uuid>,
    intake_form: Vec<serde_json::Value>,
    status: Vec<&'static str>,
    total_amount: Vec<i64>,
    platform_fee: Vec<i32>,
    currency: Vec<String>,
    at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct MilestoneRows {
    id: Vec<Uuid>,
    project_id: Vec<Uuid>,
    title: Vec<String>,
    description: Vec<String>,
    sort_order: Vec<i32>,
    amount: Vec<i64>,
    currency: Vec<String>,
    funded: Vec<bool>,
    due_date: Vec<DateTime<Utc>>,
    at: Vec<DateTime<Utc>>,
}

impl Inserts {
    fn is_empty(&self) -> bool {
        self.projects.id.is_empty() && self.milestones.id.is_empty()
    }

    /// Takes the event when it is a plain insert; otherwise hands it back.
    fn take(&mut self, e: &RecordedEvent) -> Result<bool, ProjectionError> {
        if !matches!(e.event_type.as_str(), "project-created" | "milestone-added") || !super::is_marketplace(e) {
            return Ok(false);
        }
        match super::decode::<ProjectEvent>(e)? {
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
                let p = &mut self.projects;
                p.id.push(project_id);
                p.client_id.push(client_id);
                p.intake_form.push(serde_json::to_value(&intake_form).expect("intake form"));
                p.status.push(status.as_str());
                p.total_amount.push(total_amount);
                p.platform_fee.push(platform_fee_percent as i32);
                p.currency.push(currency.as_str().to_owned());
                p.at.push(at);
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
                let m = &mut self.milestones;
                m.id.push(milestone_id);
                m.project_id.push(project_id);
                m.title.push(title);
                m.description.push(description);
                m.sort_order.push(order as i32);
                m.amount.push(amount);
                m.currency.push(currency.as_str().to_owned());
                m.funded.push(funded);
                m.due_date.push(due_date);
                m.at.push(at);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    async fn flush(&mut self, conn: &mut PgConnection, tables: &Tables) -> Result<(), sqlx::Error> {
        if !self.projects.id.is_empty() {
            let p = std::mem::take(&mut self.projects);
            let t = tables.get("marketplace.projects");
            sqlx::query(&format!(
                "insert into {t} (id, client_id, intake_form, status, total_amount, platform_fee, currency, created_at, updated_at)
                 select id, client_id, intake_form, status, total_amount, platform_fee, currency, at, at
                 from unnest($1::uuid[], $2::uuid[], $3::jsonb[], $4::text[], $5::int8[], $6::int4[], $7::text[], $8::timestamptz[])
                      as r(id, client_id, intake_form, status, total_amount, platform_fee, currency, at)
                 on conflict (id) do nothing"
            ))
            .bind(p.id)
            .bind(p.client_id)
            .bind(p.intake_form)
            .bind(p.status)
            .bind(p.total_amount)
            .bind(p.platform_fee)
            .bind(p.currency)
            .bind(p.at)
            .execute(&mut *conn)
            .await?;
        }
        if !self.milestones.id.is_empty() {
            let m = std::mem::take(&mut self.milestones);
            let t = tables.get("marketplace.milestones");
            sqlx::query(&format!(
                "insert into {t} (id, project_id, title, description, sort_order, amount, currency, status, funded, due_date, created_at, updated_at)
                 select id, project_id, title, description, sort_order, amount, currency, 'pending', funded, due_date, at, at
                 from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int4[], $6::int8[], $7::text[], $8::bool[],
                             $9::timestamptz[], $10::timestamptz[])
                      as r(id, project_id, title, description, sort_order, amount, currency, funded, due_date, at)
                 on conflict (id) do nothing"
            ))
            .bind(m.id)
            .bind(m.project_id)
            .bind(m.title)
            .bind(m.description)
            .bind(m.sort_order)
            .bind(m.amount)
            .bind(m.currency)
            .bind(m.funded)
            .bind(m.due_date)
            .bind(m.at)
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
            // Inserts accumulate; any other event first flushes them, so rows change in log order.
            let mut inserts = Inserts::default();
            for e in events {
                if inserts.take(e)? {
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
