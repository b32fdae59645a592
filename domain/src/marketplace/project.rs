//! The `Project` aggregate of the freelance escrow marketplace: one stream per project
//! (`mkt-project-{projectId}`, stream type `marketplace.project`).
//!
//! The project owns its milestones, its disputes and its escrow balance. Every money rule
//! (budget, funding, release, dispute lock and settlement) is therefore decided against one
//! consistent state in one decision, never across streams.
//!
//! # Money model
//!
//! All amounts are `i64` minor units (cents) of the project currency. Four figures matter:
//!
//! * `total_amount` — the budget from the intake form; milestone amounts never add up to more.
//! * `funded_amount` — the part of the budget currently counted as paid in by the client. It grows
//!   with every pre-funding payment and shrinks only when a dispute refund hands money back for
//!   work that is therefore no longer paid for (a refunded milestone, a project-level refund).
//!   `FundProject` tops it up to `total_amount`.
//! * `escrowed_amount` — the money held right now. Releases and dispute settlements take from
//!   it; a rule (not a panic) keeps it from ever going negative.
//! * `Ledger` — cumulative totals kept by `evolve`; `funded == escrowed + released + refunded`
//!   holds after every event (platform fees are part of `released`).
//!
//! An open dispute *locks* money in escrow (a milestone's amount, or for a project-level dispute
//! the whole unlocked balance). Locked money can only leave escrow through the dispute's own
//! resolution, whose release and refund always add up to exactly the locked amount.
//!
//! Money leaves escrow back to the client outside a dispute in two places only: cancelling a
//! project refunds everything still held, and completing one refunds what no milestone claimed
//! (a budget surplus `FundProject` paid in). Both lower `funded_amount` by the refund.
//!
//! # Status machine
//!
//! ```text
//! draft ──submit──▶ pending_funding ──fund──▶ funded ──start matching──▶ matching
//!   └──────────────────fund──────────────────▶  │                           │
//!                                               └──accept match──▶ matched ◀┘
//! matched ──start milestone──▶ in_progress ──complete (every milestone paid)──▶ completed
//! matched ──complete (every milestone paid)──▶ completed
//! any open status ──open dispute──▶ disputed ──last dispute resolved──▶ the status before
//! draft..matched ──cancel (client or admin)──▶ cancelled; in_progress ──cancel (admin)──▶ cancelled
//! ```
//!
//! `completed` and `cancelled` are terminal: every command on such a project is refused with
//! `InvalidStatus` naming it. A project with an open dispute can be neither completed nor
//! cancelled.
//!
//! # Ids and time
//!
//! Decisions are pure: the command carries the time (`at`) and every id the caller chose. The
//! payment ids the events carry are derived deterministically (UUID v5 in the project's
//! namespace, from the payment kind, its subject and the number of payments recorded so far), so
//! deciding the same command on the same state always yields the same events.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Actor, Role};
use crate::kernel::{Aggregate, DomainEvent};
use crate::values::Currency;

/// The highest platform fee a project may be created with.
pub const MAX_PLATFORM_FEE_PERCENT: u8 = 50;

/// How long after approval the scheduler may release a milestone payment on its own.
pub const AUTO_RELEASE_AFTER_HOURS: i64 = 48;

/// The stream of one project.
pub fn stream_id(project_id: Uuid) -> String {
    format!("mkt-project-{project_id}")
}

/// The platform's cut of a released amount: `amount * percent / 100`, rounded down.
///
/// Computed in `i128` so the multiplication cannot overflow. With `percent <= 50` (a creation
/// rule) the fee is at most half the amount, so it always fits back into `i64`; the saturation
/// only guards against a corrupt state.
pub fn platform_fee(amount: i64, percent: u8) -> i64 {
    let fee = i128::from(amount) * i128::from(percent) / 100;
    i64::try_from(fee).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Statuses and enumerations
// ---------------------------------------------------------------------------------------------

/// Where a project is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    #[default]
    Draft,
    PendingFunding,
    Funded,
    Matching,
    Matched,
    InProgress,
    Completed,
    Cancelled,
    Disputed,
}

impl ProjectStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProjectStatus::Draft => "draft",
            ProjectStatus::PendingFunding => "pending_funding",
            ProjectStatus::Funded => "funded",
            ProjectStatus::Matching => "matching",
            ProjectStatus::Matched => "matched",
            ProjectStatus::InProgress => "in_progress",
            ProjectStatus::Completed => "completed",
            ProjectStatus::Cancelled => "cancelled",
            ProjectStatus::Disputed => "disputed",
        }
    }
}

impl ProjectStatus {
    /// `completed` and `cancelled`: no command changes such a project any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, ProjectStatus::Completed | ProjectStatus::Cancelled)
    }
}

impl fmt::Display for ProjectStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a milestone is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneStatus {
    #[default]
    Pending,
    InProgress,
    Submitted,
    Approved,
    Rejected,
    Paid,
    Disputed,
}

impl MilestoneStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MilestoneStatus::Pending => "pending",
            MilestoneStatus::InProgress => "in_progress",
            MilestoneStatus::Submitted => "submitted",
            MilestoneStatus::Approved => "approved",
            MilestoneStatus::Rejected => "rejected",
            MilestoneStatus::Paid => "paid",
            MilestoneStatus::Disputed => "disputed",
        }
    }
}

impl fmt::Display for MilestoneStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a dispute is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    #[default]
    Open,
    UnderReview,
    Resolved,
    Escalated,
    Closed,
}

impl DisputeStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DisputeStatus::Open => "open",
            DisputeStatus::UnderReview => "under_review",
            DisputeStatus::Resolved => "resolved",
            DisputeStatus::Escalated => "escalated",
            DisputeStatus::Closed => "closed",
        }
    }

    /// Whether the dispute still holds its locked money.
    pub fn is_open(&self) -> bool {
        !matches!(self, DisputeStatus::Resolved | DisputeStatus::Closed)
    }
}

impl fmt::Display for DisputeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a dispute is about.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeType {
    MilestoneQuality,
    Payment,
    Communication,
    FreelancerReplacement,
}

impl DisputeType {
    pub fn as_str(&self) -> &'static str {
        match self {
            DisputeType::MilestoneQuality => "milestone_quality",
            DisputeType::Payment => "payment",
            DisputeType::Communication => "communication",
            DisputeType::FreelancerReplacement => "freelancer_replacement",
        }
    }
}

/// A moderator's ruling on a dispute.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeDecision {
    /// Everything locked goes back to the client.
    ClientFavor,
    /// Everything locked goes to the freelancer (net of the platform fee).
    FreelancerFavor,
    /// `resolution_amount` goes to the freelancer, the rest back to the client.
    Partial,
    /// The freelancer is replaced: everything locked goes back to the client.
    Replacement,
}

impl DisputeDecision {
    pub fn as_str(&self) -> &'static str {
        match self {
            DisputeDecision::ClientFavor => "client_favor",
            DisputeDecision::FreelancerFavor => "freelancer_favor",
            DisputeDecision::Partial => "partial",
            DisputeDecision::Replacement => "replacement",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands (the payload structs are also the HTTP request bodies)
// ---------------------------------------------------------------------------------------------

/// The client's description of the work, captured when the project is created.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntakeForm {
    pub title: String,
    pub description: String,
    pub category: String,
    pub required_skills: Vec<String>,
    /// The total budget in minor units; becomes the project's `total_amount`.
    pub budget: i64,
    pub timeline: String,
    pub deliverables: Vec<String>,
    #[serde(default)]
    pub additional_requirements: Option<String>,
}

/// Opens a project. Only a client may; the sender becomes the project's client.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProject {
    pub project_id: Uuid,
    pub intake_form: IntakeForm,
    pub currency: Currency,
    pub platform_fee_percent: u8,
}

/// Adds a milestone; the client only, while the project is not closed or disputed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMilestone {
    pub project_id: Uuid,
    pub milestone_id: Uuid,
    pub title: String,
    pub description: String,
    pub amount: i64,
    pub due_date: DateTime<Utc>,
}

/// Pays the not-yet-funded remainder of the budget into escrow.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FundProject {
    pub project_id: Uuid,
}

/// Pays one milestone's amount into escrow.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FundMilestone {
    pub project_id: Uuid,
    pub milestone_id: Uuid,
}

/// The client accepts a freelancer (from a match proposal or directly).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcceptMatch {
    pub project_id: Uuid,
    pub freelancer_id: Uuid,
    #[serde(default)]
    pub match_id: Option<Uuid>,
}

/// Work on a funded milestone begins (or begins again after a rejection).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartMilestone {
    pub project_id: Uuid,
    pub milestone_id: Uuid,
}

/// One delivered item as the freelancer submits it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deliverable {
    pub name: String,
    #[serde(default)]
    pub file_id: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// The matched freelancer hands in a milestone's deliverables.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitMilestone {
    pub project_id: Uuid,
    pub milestone_id: Uuid,
    pub deliverables: Vec<Deliverable>,
}

/// The client accepts a submitted milestone; its payment becomes releasable.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveMilestone {
    pub project_id: Uuid,
    pub milestone_id: Uuid,
}

/// The client sends a submitted milestone back for rework.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejectMilestone {
    pub project_id: Uuid,
    pub milestone_id: Uuid,
    pub reason: String,
}

/// Pays an approved milestone out of escrow (client any time, the scheduler once due).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseMilestonePayment {
    pub project_id: Uuid,
    pub milestone_id: Uuid,
}

/// The client or the matched freelancer contests a milestone or the whole project.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenDispute {
    pub project_id: Uuid,
    pub dispute_id: Uuid,
    #[serde(default)]
    pub milestone_id: Option<Uuid>,
    pub dispute_type: DisputeType,
    pub reason: String,
    pub description: String,
}

/// An admin puts a moderator on a dispute. The handler has checked that `moderator_id` is a
/// moderator (that is another stream's fact).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignModerator {
    pub project_id: Uuid,
    pub dispute_id: Uuid,
    pub moderator_id: Uuid,
}

/// The assigned moderator (or any admin) settles a dispute.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolveDispute {
    pub project_id: Uuid,
    pub dispute_id: Uuid,
    pub decision: DisputeDecision,
    /// For a `partial` decision only: the amount released to the freelancer (gross).
    #[serde(default)]
    pub resolution_amount: Option<i64>,
    pub notes: String,
}

/// The client rewrites the intake form while the project is still a draft. The budget must still
/// cover the milestones already added; it becomes the new `total_amount`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateIntakeForm {
    pub project_id: Uuid,
    pub intake_form: IntakeForm,
}

/// The client declares the draft complete: it now waits for its funding.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitProjectForFunding {
    pub project_id: Uuid,
}

/// The client (or an admin) opens a funded project to freelancer matching.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartMatching {
    pub project_id: Uuid,
}

/// The client (or an admin) closes a project whose every milestone is paid.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompleteProject {
    pub project_id: Uuid,
}

/// The client (before work starts) or an admin (any time before the end) calls the project off;
/// every cent still in escrow goes back to the client.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelProject {
    pub project_id: Uuid,
    pub reason: String,
}

/// The client or the matched freelancer starts work on a matched project (without starting a
/// milestone yet): `matched` → `in_progress`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartProject {
    pub project_id: Uuid,
}

/// What a piece of dispute evidence points at.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceType {
    Message,
    File,
    MilestoneDeliverable,
}

/// One piece of evidence (the seed's `evidence[]` item): a chat message, a file, or a
/// milestone's deliverable, with an optional description.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Evidence {
    #[serde(rename = "type")]
    pub evidence_type: EvidenceType,
    #[serde(default)]
    pub message_id: Option<Uuid>,
    #[serde(default)]
    pub file_id: Option<String>,
    #[serde(default)]
    pub milestone_id: Option<Uuid>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A party of the project (or the assigned moderator, or an admin) adds evidence to a dispute
/// that is not settled yet.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddDisputeEvidence {
    pub project_id: Uuid,
    pub dispute_id: Uuid,
    pub evidence: Evidence,
}

/// A party of the project or the assigned moderator hands an unsettled dispute to the admins;
/// from then on only an admin may resolve it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EscalateDispute {
    pub project_id: Uuid,
    pub dispute_id: Uuid,
    pub reason: String,
}

/// The assigned moderator or an admin files a resolved dispute away: `resolved` → `closed`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloseDispute {
    pub project_id: Uuid,
    pub dispute_id: Uuid,
}

/// A command to the project: who sends it, when, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: ProjectAction,
}

/// Every action on a project, one variant per payload.
#[derive(Debug, Clone, PartialEq)]
pub enum ProjectAction {
    Create(CreateProject),
    AddMilestone(AddMilestone),
    FundProject(FundProject),
    FundMilestone(FundMilestone),
    AcceptMatch(AcceptMatch),
    StartMilestone(StartMilestone),
    SubmitMilestone(SubmitMilestone),
    ApproveMilestone(ApproveMilestone),
    RejectMilestone(RejectMilestone),
    ReleaseMilestonePayment(ReleaseMilestonePayment),
    OpenDispute(OpenDispute),
    AssignModerator(AssignModerator),
    ResolveDispute(ResolveDispute),
    UpdateIntakeForm(UpdateIntakeForm),
    SubmitProjectForFunding(SubmitProjectForFunding),
    StartMatching(StartMatching),
    CompleteProject(CompleteProject),
    CancelProject(CancelProject),
    StartProject(StartProject),
    AddDisputeEvidence(AddDisputeEvidence),
    EscalateDispute(EscalateDispute),
    CloseDispute(CloseDispute),
}

/// `impl From<Payload> for ProjectAction` and the per-variant accessors, written once.
macro_rules! project_actions {
    ($($variant:ident($payload:ident) => $name:literal, $phrase:literal),* $(,)?) => {
        $(
            impl From<$payload> for ProjectAction {
                fn from(payload: $payload) -> Self {
                    ProjectAction::$variant(payload)
                }
            }
        )*

        impl ProjectAction {
            /// The project (and so the stream) the action addresses.
            pub fn project_id(&self) -> Uuid {
                match self {
                    $(ProjectAction::$variant(p) => p.project_id,)*
                }
            }

            /// A stable kebab-case name, for logs and metrics.
            pub fn name(&self) -> &'static str {
                match self {
                    $(ProjectAction::$variant(_) => $name,)*
                }
            }

            /// What the action does, as the `InvalidStatus` message phrases it
            /// ("cannot {phrase}: the project is {status}").
            pub fn phrase(&self) -> &'static str {
                match self {
                    $(ProjectAction::$variant(_) => $phrase,)*
                }
            }
        }
    };
}

project_actions! {
    Create(CreateProject) => "create-project", "create the project",
    AddMilestone(AddMilestone) => "add-milestone", "add a milestone",
    FundProject(FundProject) => "fund-project", "fund the project",
    FundMilestone(FundMilestone) => "fund-milestone", "fund a milestone",
    AcceptMatch(AcceptMatch) => "accept-match", "accept a match",
    StartMilestone(StartMilestone) => "start-milestone", "start a milestone",
    SubmitMilestone(SubmitMilestone) => "submit-milestone", "submit a milestone",
    ApproveMilestone(ApproveMilestone) => "approve-milestone", "approve a milestone",
    RejectMilestone(RejectMilestone) => "reject-milestone", "reject a milestone",
    ReleaseMilestonePayment(ReleaseMilestonePayment) => "release-milestone-payment", "release a milestone payment",
    OpenDispute(OpenDispute) => "open-dispute", "open a dispute",
    AssignModerator(AssignModerator) => "assign-moderator", "assign a moderator",
    ResolveDispute(ResolveDispute) => "resolve-dispute", "resolve a dispute",
    UpdateIntakeForm(UpdateIntakeForm) => "update-intake-form", "update the intake form",
    SubmitProjectForFunding(SubmitProjectForFunding) => "submit-project-for-funding", "submit the project for funding",
    StartMatching(StartMatching) => "start-matching", "start matching",
    CompleteProject(CompleteProject) => "complete-project", "complete the project",
    CancelProject(CancelProject) => "cancel-project", "cancel the project",
    StartProject(StartProject) => "start-project", "start the project",
    AddDisputeEvidence(AddDisputeEvidence) => "add-dispute-evidence", "add dispute evidence",
    EscalateDispute(EscalateDispute) => "escalate-dispute", "escalate a dispute",
    CloseDispute(CloseDispute) => "close-dispute", "close a dispute",
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// A deliverable as recorded: stamped with the time of the submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedDeliverable {
    pub name: String,
    pub file_id: Option<String>,
    pub url: Option<String>,
    pub submitted_at: DateTime<Utc>,
}

/// What happened to a project. Each event carries everything a read-table projector needs
/// (ids, amounts, balances after the event, the actor, the time, and the new status wherever a
/// status changes in a way the event type does not imply), so projectors never read state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ProjectEvent {
    #[serde(rename_all = "camelCase")]
    ProjectCreated {
        project_id: Uuid,
        client_id: Uuid,
        intake_form: IntakeForm,
        total_amount: i64,
        currency: Currency,
        platform_fee_percent: u8,
        /// Always `draft`; carried so every status-setting event names its status.
        status: ProjectStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    MilestoneAdded {
        project_id: Uuid,
        milestone_id: Uuid,
        title: String,
        description: String,
        order: u32,
        amount: i64,
        currency: Currency,
        due_date: DateTime<Utc>,
        /// True when the project's already-funded budget covers the milestone (it was added
        /// after `FundProject`), so it must not be funded a second time.
        funded: bool,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    ProjectFunded {
        project_id: Uuid,
        amount: i64,
        /// Escrow balance after the payment.
        escrowed_amount: i64,
        /// The milestones this payment funded (those not funded before), in order.
        funded_milestones: Vec<Uuid>,
        payment_id: Uuid,
        funded_by: Uuid,
        status: ProjectStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    MilestoneFunded {
        project_id: Uuid,
        milestone_id: Uuid,
        amount: i64,
        escrowed_amount: i64,
        payment_id: Uuid,
        funded_by: Uuid,
        status: ProjectStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    FreelancerMatched {
        project_id: Uuid,
        freelancer_id: Uuid,
        match_id: Option<Uuid>,
        accepted_by: Uuid,
        status: ProjectStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    MilestoneStarted { project_id: Uuid, milestone_id: Uuid, started_by: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    ProjectStarted { project_id: Uuid, status: ProjectStatus, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    MilestoneSubmitted {
        project_id: Uuid,
        milestone_id: Uuid,
        deliverables: Vec<SubmittedDeliverable>,
        submitted_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    MilestoneApproved {
        project_id: Uuid,
        milestone_id: Uuid,
        approved_by: Uuid,
        at: DateTime<Utc>,
        auto_release_at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    MilestoneRejected { project_id: Uuid, milestone_id: Uuid, reason: String, rejected_by: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    MilestonePaymentReleased {
        project_id: Uuid,
        milestone_id: Uuid,
        /// Gross amount leaving escrow.
        amount: i64,
        platform_fee: i64,
        /// What the freelancer receives: `amount - platform_fee`.
        net_amount: i64,
        escrowed_amount: i64,
        payment_id: Uuid,
        fee_payment_id: Uuid,
        released_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    DisputeOpened {
        project_id: Uuid,
        dispute_id: Uuid,
        milestone_id: Option<Uuid>,
        initiator_id: Uuid,
        initiator_role: Role,
        dispute_type: DisputeType,
        reason: String,
        description: String,
        locked_amount: i64,
        /// Always `disputed`.
        status: ProjectStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    ModeratorAssigned { project_id: Uuid, dispute_id: Uuid, moderator_id: Uuid, assigned_by: Uuid, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    DisputeResolved {
        project_id: Uuid,
        dispute_id: Uuid,
        milestone_id: Option<Uuid>,
        decision: DisputeDecision,
        resolution_amount: Option<i64>,
        notes: String,
        resolved_by: Uuid,
        /// Gross amount paid to the freelancer; `released_amount + refunded_amount` is the
        /// dispute's locked amount.
        released_amount: i64,
        refunded_amount: i64,
        platform_fee: i64,
        net_released: i64,
        escrowed_amount: i64,
        release_payment_id: Option<Uuid>,
        refund_payment_id: Option<Uuid>,
        fee_payment_id: Option<Uuid>,
        /// The disputed milestone's new status: `paid` when anything was released, otherwise
        /// `pending` and no longer funded (its money went back to the client).
        milestone_status: Option<MilestoneStatus>,
        project_status: ProjectStatus,
        at: DateTime<Utc>,
    },
    /// The draft's intake form was rewritten; `total_amount` is its (possibly new) budget.
    #[serde(rename_all = "camelCase")]
    IntakeFormUpdated { project_id: Uuid, intake_form: IntakeForm, total_amount: i64, at: DateTime<Utc> },
    /// Always `pending_funding`.
    #[serde(rename_all = "camelCase")]
    ProjectSubmittedForFunding { project_id: Uuid, status: ProjectStatus, at: DateTime<Utc> },
    /// Always `matching`.
    #[serde(rename_all = "camelCase")]
    MatchingStarted { project_id: Uuid, status: ProjectStatus, at: DateTime<Utc> },
    /// Always `completed`; `at` is the project's `completed_at`.
    #[serde(rename_all = "camelCase")]
    ProjectCompleted {
        project_id: Uuid,
        status: ProjectStatus,
        at: DateTime<Utc>,
        /// Escrow no milestone claimed (a funded budget surplus), handed back to the client on
        /// completion; 0 when nothing was left.
        #[serde(default)]
        refunded_amount: i64,
        /// Escrow balance after the event: always 0.
        #[serde(default)]
        escrowed_amount: i64,
        /// The refund's payment record, present only when `refunded_amount > 0`.
        #[serde(default)]
        refund_payment_id: Option<Uuid>,
    },
    /// Always `cancelled`. Every cent still in escrow went back to the client; the milestones
    /// keep their statuses.
    #[serde(rename_all = "camelCase")]
    ProjectCancelled {
        project_id: Uuid,
        reason: String,
        refunded_amount: i64,
        /// Escrow balance after the event: always 0.
        escrowed_amount: i64,
        /// The refund's payment record, present only when `refunded_amount > 0`.
        refund_payment_id: Option<Uuid>,
        cancelled_by: Uuid,
        status: ProjectStatus,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    DisputeEvidenceAdded { project_id: Uuid, dispute_id: Uuid, evidence: Evidence, added_by: Uuid, at: DateTime<Utc> },
    /// Always `escalated`.
    #[serde(rename_all = "camelCase")]
    DisputeEscalated {
        project_id: Uuid,
        dispute_id: Uuid,
        reason: String,
        escalated_by: Uuid,
        status: DisputeStatus,
        at: DateTime<Utc>,
    },
    /// Always `closed`.
    #[serde(rename_all = "camelCase")]
    DisputeClosed { project_id: Uuid, dispute_id: Uuid, closed_by: Uuid, status: DisputeStatus, at: DateTime<Utc> },
}

impl DomainEvent for ProjectEvent {}

impl ProjectEvent {
    /// The project the event belongs to.
    pub fn project_id(&self) -> Uuid {
        match self {
            ProjectEvent::ProjectCreated { project_id, .. }
            | ProjectEvent::MilestoneAdded { project_id, .. }
            | ProjectEvent::ProjectFunded { project_id, .. }
            | ProjectEvent::MilestoneFunded { project_id, .. }
            | ProjectEvent::FreelancerMatched { project_id, .. }
            | ProjectEvent::MilestoneStarted { project_id, .. }
            | ProjectEvent::ProjectStarted { project_id, .. }
            | ProjectEvent::MilestoneSubmitted { project_id, .. }
            | ProjectEvent::MilestoneApproved { project_id, .. }
            | ProjectEvent::MilestoneRejected { project_id, .. }
            | ProjectEvent::MilestonePaymentReleased { project_id, .. }
            | ProjectEvent::DisputeOpened { project_id, .. }
            | ProjectEvent::ModeratorAssigned { project_id, .. }
            | ProjectEvent::DisputeResolved { project_id, .. }
            | ProjectEvent::IntakeFormUpdated { project_id, .. }
            | ProjectEvent::ProjectSubmittedForFunding { project_id, .. }
            | ProjectEvent::MatchingStarted { project_id, .. }
            | ProjectEvent::ProjectCompleted { project_id, .. }
            | ProjectEvent::ProjectCancelled { project_id, .. }
            | ProjectEvent::DisputeEvidenceAdded { project_id, .. }
            | ProjectEvent::DisputeEscalated { project_id, .. }
            | ProjectEvent::DisputeClosed { project_id, .. } => *project_id,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// How the gateway answers a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 403: the sender may not do this; nothing is written.
    Forbidden,
    /// 404: the project, milestone or dispute does not exist.
    NotFound,
    /// 409: the request is well-formed but the project's current state refuses it.
    Conflict,
    /// 422: a field value is unacceptable whatever the state.
    Invalid,
}

impl ErrorKind {
    pub fn http_status(&self) -> u16 {
        match self {
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Invalid => 422,
        }
    }
}

/// Every rule a project command can break. Closed: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectError {
    /// Every "who may send this" failure.
    #[error("forbidden: {reason}")]
    Forbidden { reason: &'static str },
    #[error("the project does not exist")]
    ProjectNotFound,
    #[error("milestone {milestone_id} does not exist in this project")]
    MilestoneNotFound { milestone_id: Uuid },
    #[error("dispute {dispute_id} does not exist in this project")]
    DisputeNotFound { dispute_id: Uuid },
    #[error("the project already exists")]
    AlreadyExists,
    #[error("milestone {milestone_id} already exists")]
    MilestoneAlreadyExists { milestone_id: Uuid },
    #[error("dispute {dispute_id} already exists")]
    DisputeAlreadyExists { dispute_id: Uuid },
    /// An illegal project transition; names the current status.
    #[error("cannot {action}: the project is {status}")]
    InvalidStatus { status: String, action: &'static str },
    /// An illegal milestone transition; names the milestone's current status.
    #[error("cannot {action}: milestone {milestone_id} is {status}")]
    InvalidMilestoneStatus { milestone_id: Uuid, status: String, action: &'static str },
    #[error("the project's budget is already fully funded")]
    AlreadyFunded,
    #[error("milestone {milestone_id} is already funded: a milestone cannot be funded twice")]
    MilestoneAlreadyFunded { milestone_id: Uuid },
    #[error("milestone {milestone_id} is not funded")]
    MilestoneNotFunded { milestone_id: Uuid },
    #[error("freelancer {freelancer_id} is already matched to this project")]
    AlreadyMatched { freelancer_id: Uuid },
    #[error("{total} would exceed the budget of {budget}")]
    BudgetExceeded { total: i64, budget: i64 },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("amount {amount} is outside the allowed range 0..={max}")]
    AmountOutOfRange { amount: i64, max: i64 },
    #[error("dispute {dispute_id} is already resolved")]
    AlreadyResolved { dispute_id: Uuid },
    /// An illegal dispute transition; names the dispute's current status.
    #[error("cannot {action}: dispute {dispute_id} is {status}")]
    InvalidDisputeStatus { dispute_id: Uuid, status: String, action: &'static str },
    #[error("the automatic release is not due before {auto_release_at}")]
    NotDueYet { auto_release_at: DateTime<Utc> },
    #[error("escrow holds {available} unlocked, {needed} is needed")]
    InsufficientEscrow { needed: i64, available: i64 },
    #[error("there is no unlocked money in escrow to dispute")]
    NothingInEscrow,
    /// Submitting for funding or completing needs at least one milestone.
    #[error("the project has no milestone")]
    NoMilestones,
    /// A project completes only once every milestone is paid; names the first one that is not.
    #[error("milestone {milestone_id} is {status}: every milestone must be paid first")]
    UnpaidMilestone { milestone_id: Uuid, status: String },
}

impl ProjectError {
    /// The HTTP class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProjectError::Forbidden { .. } => ErrorKind::Forbidden,
            ProjectError::ProjectNotFound
            | ProjectError::MilestoneNotFound { .. }
            | ProjectError::DisputeNotFound { .. } => ErrorKind::NotFound,
            ProjectError::Invalid { .. } | ProjectError::AmountOutOfRange { .. } => ErrorKind::Invalid,
            ProjectError::AlreadyExists
            | ProjectError::MilestoneAlreadyExists { .. }
            | ProjectError::DisputeAlreadyExists { .. }
            | ProjectError::InvalidStatus { .. }
            | ProjectError::InvalidMilestoneStatus { .. }
            | ProjectError::AlreadyFunded
            | ProjectError::MilestoneAlreadyFunded { .. }
            | ProjectError::MilestoneNotFunded { .. }
            | ProjectError::AlreadyMatched { .. }
            | ProjectError::BudgetExceeded { .. }
            | ProjectError::AlreadyResolved { .. }
            | ProjectError::InvalidDisputeStatus { .. }
            | ProjectError::NotDueYet { .. }
            | ProjectError::InsufficientEscrow { .. }
            | ProjectError::NothingInEscrow
            | ProjectError::NoMilestones
            | ProjectError::UnpaidMilestone { .. } => ErrorKind::Conflict,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ProjectError {
    ProjectError::Invalid { field, reason: reason.into() }
}

/// Checked addition of amounts: an overflow is an unacceptable amount, never a panic.
fn add(a: i64, b: i64) -> Result<i64, ProjectError> {
    a.checked_add(b).ok_or_else(|| invalid("amount", "the amount is too large"))
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// Cumulative money totals of a project, kept by `evolve`.
/// Invariant: `funded == escrowed + released + refunded`; `fees` is the part of `released` the
/// platform kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    /// Paid in by the client, ever.
    pub funded: i64,
    /// Held in escrow now.
    pub escrowed: i64,
    /// Paid out of escrow to the freelancer, gross (fees included).
    pub released: i64,
    /// Paid back out of escrow to the client.
    pub refunded: i64,
    /// Platform fees taken from releases.
    pub fees: i64,
}

impl Ledger {
    /// Whether every cent paid in is accounted for.
    pub fn is_balanced(&self) -> bool {
        self.funded == self.escrowed + self.released + self.refunded
    }

    /// What the freelancer actually received.
    pub fn net_released(&self) -> i64 {
        self.released - self.fees
    }
}

/// A milestone as the project holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Milestone {
    pub milestone_id: Uuid,
    pub title: String,
    pub description: String,
    pub order: u32,
    pub amount: i64,
    pub due_date: DateTime<Utc>,
    pub status: MilestoneStatus,
    /// Its amount has been paid into escrow (and not refunded since).
    pub funded: bool,
    pub deliverables: Vec<SubmittedDeliverable>,
    pub started_at: Option<DateTime<Utc>>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub approved_by: Option<Uuid>,
    pub approved_at: Option<DateTime<Utc>>,
    pub auto_release_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// A moderator's settlement of a dispute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolution {
    pub decision: DisputeDecision,
    pub resolution_amount: Option<i64>,
    pub notes: String,
    pub resolved_by: Uuid,
    pub resolved_at: DateTime<Utc>,
    pub released_amount: i64,
    pub refunded_amount: i64,
    pub platform_fee: i64,
}

/// A dispute as the project holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dispute {
    pub dispute_id: Uuid,
    pub milestone_id: Option<Uuid>,
    pub initiator_id: Uuid,
    pub initiator_role: Role,
    pub dispute_type: DisputeType,
    pub reason: String,
    pub description: String,
    /// Escrow money held for this dispute until it is resolved.
    pub locked_amount: i64,
    pub status: DisputeStatus,
    pub opened_at: DateTime<Utc>,
    pub assigned_moderator_id: Option<Uuid>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub resolution: Option<Resolution>,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    #[serde(default)]
    pub escalated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub closed_at: Option<DateTime<Utc>>,
}

/// The project aggregate's state, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub exists: bool,
    pub project_id: Uuid,
    pub client_id: Option<Uuid>,
    pub intake_form: IntakeForm,
    pub matched_freelancer_id: Option<Uuid>,
    pub match_id: Option<Uuid>,
    pub status: ProjectStatus,
    /// The budget.
    pub total_amount: i64,
    /// Held in escrow now; never negative.
    pub escrowed_amount: i64,
    /// The part of the budget currently counted as paid in (see the module docs).
    pub funded_amount: i64,
    pub platform_fee_percent: u8,
    pub currency: Option<Currency>,
    pub milestones: BTreeMap<Uuid, Milestone>,
    pub disputes: BTreeMap<Uuid, Dispute>,
    /// The status to return to when the last open dispute is resolved.
    pub status_before_dispute: Option<ProjectStatus>,
    /// How many payment records the events carried so far; feeds the payment id derivation.
    pub payments_recorded: u32,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ledger: Ledger,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cancelled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cancellation_reason: Option<String>,
}

/// Project statuses before work starts: the client may still cancel.
const BEFORE_WORK: [ProjectStatus; 5] = [
    ProjectStatus::Draft,
    ProjectStatus::PendingFunding,
    ProjectStatus::Funded,
    ProjectStatus::Matching,
    ProjectStatus::Matched,
];

/// Project statuses in which the scope and the funding may still change.
const OPEN_FOR_WORK: [ProjectStatus; 6] = [
    ProjectStatus::Draft,
    ProjectStatus::PendingFunding,
    ProjectStatus::Funded,
    ProjectStatus::Matching,
    ProjectStatus::Matched,
    ProjectStatus::InProgress,
];

impl Project {
    /// The stream of one project.
    pub fn stream_id(project_id: Uuid) -> String {
        stream_id(project_id)
    }

    /// The project's client, if the project exists.
    pub fn client_id(&self) -> Option<Uuid> {
        self.client_id.filter(|_| self.exists)
    }

    /// The freelancer working on the project, if one was matched.
    pub fn matched_freelancer_id(&self) -> Option<Uuid> {
        self.matched_freelancer_id
    }

    /// Cumulative money totals.
    pub fn ledger(&self) -> Ledger {
        self.ledger
    }

    /// Whether `actor` is the project's client or its matched freelancer (may read it).
    pub fn is_participant(&self, actor: &Actor) -> bool {
        self.is_client(actor) || self.is_freelancer(actor)
    }

    pub fn milestone(&self, milestone_id: Uuid) -> Option<&Milestone> {
        self.milestones.get(&milestone_id)
    }

    pub fn dispute(&self, dispute_id: Uuid) -> Option<&Dispute> {
        self.disputes.get(&dispute_id)
    }

    /// Milestones in their `order`.
    pub fn milestones_in_order(&self) -> Vec<&Milestone> {
        let mut list: Vec<&Milestone> = self.milestones.values().collect();
        list.sort_by_key(|m| m.order);
        list
    }

    /// The sum of all milestone amounts.
    pub fn allocated_amount(&self) -> i64 {
        self.milestones.values().map(|m| m.amount).sum()
    }

    /// Escrow money held by open disputes.
    pub fn locked_amount(&self) -> i64 {
        self.disputes.values().filter(|d| d.status.is_open()).map(|d| d.locked_amount).sum()
    }

    /// Escrow money not held by any open dispute: what releases and new disputes may use.
    pub fn unlocked_escrow(&self) -> i64 {
        self.escrowed_amount - self.locked_amount()
    }

    /// Funded budget not attributed to a funded milestone (the surplus `FundProject` paid in
    /// for budget no milestone claimed yet). A milestone added later that fits in it is born
    /// funded.
    fn unallocated_funding(&self) -> i64 {
        let funded_milestones: i64 = self.milestones.values().filter(|m| m.funded).map(|m| m.amount).sum();
        self.funded_amount - funded_milestones
    }

    /// Whether any dispute still holds money (the project is then `disputed`).
    pub fn has_open_dispute(&self) -> bool {
        self.disputes.values().any(|d| d.status.is_open())
    }

    fn is_client(&self, actor: &Actor) -> bool {
        self.exists && self.client_id == Some(actor.id)
    }

    fn is_freelancer(&self, actor: &Actor) -> bool {
        self.matched_freelancer_id == Some(actor.id)
    }

    fn require_client(&self, actor: &Actor, reason: &'static str) -> Result<(), ProjectError> {
        if self.is_client(actor) {
            Ok(())
        } else {
            Err(ProjectError::Forbidden { reason })
        }
    }

    fn require_status(&self, allowed: &[ProjectStatus], action: &'static str) -> Result<(), ProjectError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(ProjectError::InvalidStatus { status: self.status.as_str().to_owned(), action })
        }
    }

    fn require_not_closed(&self, action: &'static str) -> Result<(), ProjectError> {
        if matches!(self.status, ProjectStatus::Completed | ProjectStatus::Cancelled) {
            Err(ProjectError::InvalidStatus { status: self.status.as_str().to_owned(), action })
        } else {
            Ok(())
        }
    }

    fn find_milestone(&self, milestone_id: Uuid) -> Result<&Milestone, ProjectError> {
        self.milestones.get(&milestone_id).ok_or(ProjectError::MilestoneNotFound { milestone_id })
    }

    fn find_dispute(&self, dispute_id: Uuid) -> Result<&Dispute, ProjectError> {
        self.disputes.get(&dispute_id).ok_or(ProjectError::DisputeNotFound { dispute_id })
    }

    fn currency_or_default(&self) -> Currency {
        // Set by `ProjectCreated`; every other decision runs only on an existing project.
        self.currency.unwrap_or_else(|| Currency::parse("usd").expect("valid code"))
    }

    /// A payment id unique within the project and reproducible from the state: `offset` numbers
    /// the payments recorded by the same event.
    fn payment_id(&self, kind: &str, subject: Uuid, offset: u32) -> Uuid {
        let n = self.payments_recorded + offset;
        Uuid::new_v5(&self.project_id, format!("{kind}:{subject}:{n}").as_bytes())
    }

    /// The status a funding payment leaves: a project waiting for money becomes funded.
    fn status_after_funding(&self) -> ProjectStatus {
        match self.status {
            ProjectStatus::Draft | ProjectStatus::PendingFunding => ProjectStatus::Funded,
            other => other,
        }
    }

    /// Money may come in whenever the project is not closed (also during a dispute: funding
    /// another milestone does not touch the disputed money).
    fn require_fundable(&self, action: &'static str) -> Result<(), ProjectError> {
        if OPEN_FOR_WORK.contains(&self.status) || self.status == ProjectStatus::Disputed {
            Ok(())
        } else {
            Err(ProjectError::InvalidStatus { status: self.status.as_str().to_owned(), action })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

impl Project {
    fn create(&self, actor: &Actor, at: DateTime<Utc>, p: &CreateProject) -> Result<Vec<ProjectEvent>, ProjectError> {
        if actor.role != Role::Client {
            return Err(ProjectError::Forbidden { reason: "only a client may create a project" });
        }
        if self.exists {
            return Err(ProjectError::AlreadyExists);
        }
        validate_intake_form(&p.intake_form)?;
        if p.platform_fee_percent > MAX_PLATFORM_FEE_PERCENT {
            return Err(invalid(
                "platformFeePercent",
                format!("must be at most {MAX_PLATFORM_FEE_PERCENT}, got {}", p.platform_fee_percent),
            ));
        }
        Ok(vec![ProjectEvent::ProjectCreated {
            project_id: p.project_id,
            client_id: actor.id,
            intake_form: p.intake_form.clone(),
            total_amount: p.intake_form.budget,
            currency: p.currency,
            platform_fee_percent: p.platform_fee_percent,
            status: ProjectStatus::Draft,
            at,
        }])
    }

    fn add_milestone(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &AddMilestone,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        self.require_client(actor, "only the project's client may add a milestone")?;
        if p.title.trim().is_empty() {
            return Err(invalid("title", "must not be empty"));
        }
        if p.amount <= 0 {
            return Err(invalid("amount", format!("must be positive, got {}", p.amount)));
        }
        self.require_status(&OPEN_FOR_WORK, "add a milestone")?;
        if self.milestones.contains_key(&p.milestone_id) {
            return Err(ProjectError::MilestoneAlreadyExists { milestone_id: p.milestone_id });
        }
        let total = add(self.allocated_amount(), p.amount)?;
        if total > self.total_amount {
            return Err(ProjectError::BudgetExceeded { total, budget: self.total_amount });
        }
        let order = self.milestones.values().map(|m| m.order).max().unwrap_or(0) + 1;
        Ok(vec![ProjectEvent::MilestoneAdded {
            project_id: self.project_id,
            milestone_id: p.milestone_id,
            title: p.title.clone(),
            description: p.description.clone(),
            order,
            amount: p.amount,
            currency: self.currency_or_default(),
            due_date: p.due_date,
            funded: p.amount <= self.unallocated_funding(),
            at,
        }])
    }

    fn fund_project(&self, actor: &Actor, at: DateTime<Utc>) -> Result<Vec<ProjectEvent>, ProjectError> {
        self.require_client(actor, "only the project's client may fund it")?;
        self.require_fundable("fund the project")?;
        let amount = self.total_amount - self.funded_amount;
        if amount <= 0 {
            return Err(ProjectError::AlreadyFunded);
        }
        let escrowed_amount = add(self.escrowed_amount, amount)?;
        let funded_milestones =
            self.milestones_in_order().into_iter().filter(|m| !m.funded).map(|m| m.milestone_id).collect();
        Ok(vec![ProjectEvent::ProjectFunded {
            project_id: self.project_id,
            amount,
            escrowed_amount,
            funded_milestones,
            payment_id: self.payment_id("pre_funding", self.project_id, 0),
            funded_by: actor.id,
            status: self.status_after_funding(),
            at,
        }])
    }

    fn fund_milestone(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &FundMilestone,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        self.require_client(actor, "only the project's client may fund a milestone")?;
        let milestone = self.find_milestone(p.milestone_id)?;
        self.require_fundable("fund a milestone")?;
        if milestone.funded {
            return Err(ProjectError::MilestoneAlreadyFunded { milestone_id: p.milestone_id });
        }
        // Cannot happen while milestones stay within the budget; kept so the budget is never
        // overfunded whatever the history.
        let total = add(self.funded_amount, milestone.amount)?;
        if total > self.total_amount {
            return Err(ProjectError::BudgetExceeded { total, budget: self.total_amount });
        }
        Ok(vec![ProjectEvent::MilestoneFunded {
            project_id: self.project_id,
            milestone_id: p.milestone_id,
            amount: milestone.amount,
            escrowed_amount: add(self.escrowed_amount, milestone.amount)?,
            payment_id: self.payment_id("pre_funding", p.milestone_id, 0),
            funded_by: actor.id,
            status: self.status_after_funding(),
            at,
        }])
    }

    fn accept_match(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &AcceptMatch,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        // The system sends it for an accepted match proposal (the match stream checked that the
        // client answered); anyone else must be the client.
        if !(actor.role == Role::System && p.match_id.is_some()) {
            self.require_client(actor, "only the project's client may accept a match")?;
        }
        if self.client_id == Some(p.freelancer_id) {
            return Err(invalid("freelancerId", "the client cannot work on their own project"));
        }
        if let Some(freelancer_id) = self.matched_freelancer_id {
            // The same proposal delivered again (the handler, then the process manager): done.
            if freelancer_id == p.freelancer_id && p.match_id.is_some() && self.match_id == p.match_id {
                return Ok(vec![]);
            }
            return Err(ProjectError::AlreadyMatched { freelancer_id });
        }
        self.require_status(&[ProjectStatus::Funded, ProjectStatus::Matching], "accept a match")?;
        Ok(vec![ProjectEvent::FreelancerMatched {
            project_id: self.project_id,
            freelancer_id: p.freelancer_id,
            match_id: p.match_id,
            accepted_by: actor.id,
            status: ProjectStatus::Matched,
            at,
        }])
    }

    fn start_milestone(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &StartMilestone,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        if !self.is_participant(actor) {
            return Err(ProjectError::Forbidden {
                reason: "only the matched freelancer or the client may start a milestone",
            });
        }
        let milestone = self.find_milestone(p.milestone_id)?;
        // Work needs a freelancer: only a matched (or already running) project can start one.
        // A dispute freezes the start of new work; work already under way may still be
        // submitted, reviewed and paid from the escrow the dispute does not lock.
        self.require_status(&[ProjectStatus::Matched, ProjectStatus::InProgress], "start a milestone")?;
        if !matches!(milestone.status, MilestoneStatus::Pending | MilestoneStatus::Rejected) {
            return Err(ProjectError::InvalidMilestoneStatus {
                milestone_id: p.milestone_id,
                status: milestone.status.as_str().to_owned(),
                action: "start",
            });
        }
        if !milestone.funded {
            return Err(ProjectError::MilestoneNotFunded { milestone_id: p.milestone_id });
        }
        let mut events = vec![ProjectEvent::MilestoneStarted {
            project_id: self.project_id,
            milestone_id: p.milestone_id,
            started_by: actor.id,
            at,
        }];
        if self.status == ProjectStatus::Matched {
            events.push(ProjectEvent::ProjectStarted {
                project_id: self.project_id,
                status: ProjectStatus::InProgress,
                at,
            });
        }
        Ok(events)
    }

    fn submit_milestone(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &SubmitMilestone,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        if !self.is_freelancer(actor) {
            return Err(ProjectError::Forbidden { reason: "only the matched freelancer may submit a milestone" });
        }
        let milestone = self.find_milestone(p.milestone_id)?;
        if p.deliverables.is_empty() {
            return Err(invalid("deliverables", "at least one deliverable is required"));
        }
        if p.deliverables.iter().any(|d| d.name.trim().is_empty()) {
            return Err(invalid("deliverables.name", "every deliverable needs a name"));
        }
        self.require_not_closed("submit a milestone")?;
        if milestone.status != MilestoneStatus::InProgress {
            return Err(ProjectError::InvalidMilestoneStatus {
                milestone_id: p.milestone_id,
                status: milestone.status.as_str().to_owned(),
                action: "submit",
            });
        }
        let deliverables = p
            .deliverables
            .iter()
            .map(|d| SubmittedDeliverable {
                name: d.name.clone(),
                file_id: d.file_id.clone(),
                url: d.url.clone(),
                submitted_at: at,
            })
            .collect();
        Ok(vec![ProjectEvent::MilestoneSubmitted {
            project_id: self.project_id,
            milestone_id: p.milestone_id,
            deliverables,
            submitted_by: actor.id,
            at,
        }])
    }

    fn require_submitted(&self, milestone: &Milestone, action: &'static str) -> Result<(), ProjectError> {
        self.require_not_closed(action)?;
        if milestone.status == MilestoneStatus::Submitted {
            Ok(())
        } else {
            Err(ProjectError::InvalidMilestoneStatus {
                milestone_id: milestone.milestone_id,
                status: milestone.status.as_str().to_owned(),
                action,
            })
        }
    }

    fn approve_milestone(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &ApproveMilestone,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        self.require_client(actor, "only the project's client may approve a milestone")?;
        let milestone = self.find_milestone(p.milestone_id)?;
        self.require_submitted(milestone, "approve")?;
        let auto_release_at = at
            .checked_add_signed(TimeDelta::hours(AUTO_RELEASE_AFTER_HOURS))
            .ok_or_else(|| invalid("at", "the time is out of range"))?;
        Ok(vec![ProjectEvent::MilestoneApproved {
            project_id: self.project_id,
            milestone_id: p.milestone_id,
            approved_by: actor.id,
            at,
            auto_release_at,
        }])
    }

    fn reject_milestone(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &RejectMilestone,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        self.require_client(actor, "only the project's client may reject a milestone")?;
        let milestone = self.find_milestone(p.milestone_id)?;
        if p.reason.trim().is_empty() {
            return Err(invalid("reason", "a rejection needs a reason"));
        }
        self.require_submitted(milestone, "reject")?;
        Ok(vec![ProjectEvent::MilestoneRejected {
            project_id: self.project_id,
            milestone_id: p.milestone_id,
            reason: p.reason.clone(),
            rejected_by: actor.id,
            at,
        }])
    }

    fn release_payment(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &ReleaseMilestonePayment,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        let by_client = self.is_client(actor);
        let by_scheduler = actor.role == Role::System;
        if !by_client && !by_scheduler {
            return Err(ProjectError::Forbidden {
                reason: "only the client or the scheduler may release a milestone payment",
            });
        }
        let milestone = self.find_milestone(p.milestone_id)?;
        self.require_not_closed("release a milestone payment")?;
        if milestone.status != MilestoneStatus::Approved {
            return Err(ProjectError::InvalidMilestoneStatus {
                milestone_id: p.milestone_id,
                status: milestone.status.as_str().to_owned(),
                action: "release the payment of",
            });
        }
        if !milestone.funded {
            return Err(ProjectError::MilestoneNotFunded { milestone_id: p.milestone_id });
        }
        // The client may release early; the scheduler only once the approval window elapsed.
        if !by_client {
            if let Some(auto_release_at) = milestone.auto_release_at {
                if at < auto_release_at {
                    return Err(ProjectError::NotDueYet { auto_release_at });
                }
            }
        }
        // Escrow never goes negative, and money a dispute holds cannot leave through a release.
        let available = self.unlocked_escrow();
        if milestone.amount > available {
            return Err(ProjectError::InsufficientEscrow { needed: milestone.amount, available });
        }
        let fee = platform_fee(milestone.amount, self.platform_fee_percent);
        Ok(vec![ProjectEvent::MilestonePaymentReleased {
            project_id: self.project_id,
            milestone_id: p.milestone_id,
            amount: milestone.amount,
            platform_fee: fee,
            net_amount: milestone.amount - fee,
            escrowed_amount: self.escrowed_amount - milestone.amount,
            payment_id: self.payment_id("release", p.milestone_id, 0),
            fee_payment_id: self.payment_id("platform_fee", p.milestone_id, 1),
            released_by: actor.id,
            at,
        }])
    }

    fn open_dispute(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &OpenDispute,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        let initiator_role = if self.is_client(actor) {
            Role::Client
        } else if self.is_freelancer(actor) {
            Role::Freelancer
        } else {
            return Err(ProjectError::Forbidden {
                reason: "only the project's client or matched freelancer may open a dispute",
            });
        };
        if p.reason.trim().is_empty() {
            return Err(invalid("reason", "a dispute needs a reason"));
        }
        let milestone = p.milestone_id.map(|id| self.find_milestone(id)).transpose()?;
        self.require_not_closed("open a dispute")?;
        if self.disputes.contains_key(&p.dispute_id) {
            return Err(ProjectError::DisputeAlreadyExists { dispute_id: p.dispute_id });
        }
        let available = self.unlocked_escrow();
        let locked_amount = match milestone {
            Some(m) => {
                // One open dispute per milestone; a paid milestone is settled.
                if matches!(m.status, MilestoneStatus::Paid | MilestoneStatus::Disputed) {
                    return Err(ProjectError::InvalidMilestoneStatus {
                        milestone_id: m.milestone_id,
                        status: m.status.as_str().to_owned(),
                        action: "dispute",
                    });
                }
                if !m.funded {
                    return Err(ProjectError::MilestoneNotFunded { milestone_id: m.milestone_id });
                }
                if m.amount > available {
                    return Err(ProjectError::InsufficientEscrow { needed: m.amount, available });
                }
                m.amount
            }
            None => {
                if available <= 0 {
                    return Err(ProjectError::NothingInEscrow);
                }
                available
            }
        };
        Ok(vec![ProjectEvent::DisputeOpened {
            project_id: self.project_id,
            dispute_id: p.dispute_id,
            milestone_id: p.milestone_id,
            initiator_id: actor.id,
            initiator_role,
            dispute_type: p.dispute_type,
            reason: p.reason.clone(),
            description: p.description.clone(),
            locked_amount,
            status: ProjectStatus::Disputed,
            at,
        }])
    }

    fn assign_moderator(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &AssignModerator,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        if actor.role != Role::Admin {
            return Err(ProjectError::Forbidden { reason: "only an admin may assign a moderator" });
        }
        let dispute = self.find_dispute(p.dispute_id)?;
        if !dispute.status.is_open() {
            return Err(ProjectError::AlreadyResolved { dispute_id: p.dispute_id });
        }
        Ok(vec![ProjectEvent::ModeratorAssigned {
            project_id: self.project_id,
            dispute_id: p.dispute_id,
            moderator_id: p.moderator_id,
            assigned_by: actor.id,
            at,
        }])
    }

    fn resolve_dispute(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &ResolveDispute,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        if !matches!(actor.role, Role::Admin | Role::Moderator) {
            return Err(ProjectError::Forbidden {
                reason: "only the assigned moderator or an admin may resolve a dispute",
            });
        }
        let dispute = self.find_dispute(p.dispute_id)?;
        if actor.role == Role::Moderator && dispute.assigned_moderator_id != Some(actor.id) {
            return Err(ProjectError::Forbidden {
                reason: "only the assigned moderator or an admin may resolve a dispute",
            });
        }
        if !dispute.status.is_open() {
            return Err(ProjectError::AlreadyResolved { dispute_id: p.dispute_id });
        }
        if dispute.status == DisputeStatus::Escalated && actor.role != Role::Admin {
            return Err(ProjectError::Forbidden { reason: "an escalated dispute is resolved by an admin" });
        }
        let locked = dispute.locked_amount;
        let (released, refunded) = match p.decision {
            DisputeDecision::Partial => {
                let amount = p
                    .resolution_amount
                    .ok_or_else(|| invalid("resolutionAmount", "a partial decision needs the amount released"))?;
                if !(0..=locked).contains(&amount) {
                    return Err(ProjectError::AmountOutOfRange { amount, max: locked });
                }
                (amount, locked - amount)
            }
            decision => {
                if p.resolution_amount.is_some() {
                    return Err(invalid("resolutionAmount", "only a partial decision takes an amount"));
                }
                match decision {
                    DisputeDecision::FreelancerFavor => (locked, 0),
                    _ => (0, locked),
                }
            }
        };
        // By construction release + refund == locked; the escrow must still hold it all.
        if locked > self.escrowed_amount {
            return Err(ProjectError::InsufficientEscrow { needed: locked, available: self.escrowed_amount });
        }
        let fee = platform_fee(released, self.platform_fee_percent);

        // Payment records in a fixed order; each present one takes the next number.
        let mut offset = 0;
        let mut next_payment = |kind: &str, present: bool| {
            present.then(|| {
                let id = self.payment_id(kind, p.dispute_id, offset);
                offset += 1;
                id
            })
        };
        let release_payment_id = next_payment("release", released > 0);
        let fee_payment_id = next_payment("platform_fee", fee > 0);
        let refund_payment_id = next_payment("refund", refunded > 0);

        let milestone_status =
            dispute.milestone_id.map(|_| if released > 0 { MilestoneStatus::Paid } else { MilestoneStatus::Pending });
        let other_open = self.disputes.values().any(|d| d.dispute_id != p.dispute_id && d.status.is_open());
        let project_status =
            if other_open { ProjectStatus::Disputed } else { self.status_before_dispute.unwrap_or(self.status) };
        Ok(vec![ProjectEvent::DisputeResolved {
            project_id: self.project_id,
            dispute_id: p.dispute_id,
            milestone_id: dispute.milestone_id,
            decision: p.decision,
            resolution_amount: p.resolution_amount,
            notes: p.notes.clone(),
            resolved_by: actor.id,
            released_amount: released,
            refunded_amount: refunded,
            platform_fee: fee,
            net_released: released - fee,
            escrowed_amount: self.escrowed_amount - locked,
            release_payment_id,
            refund_payment_id,
            fee_payment_id,
            milestone_status,
            project_status,
            at,
        }])
    }

    fn update_intake_form(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &UpdateIntakeForm,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        self.require_client(actor, "only the project's client may update the intake form")?;
        validate_intake_form(&p.intake_form)?;
        self.require_status(&[ProjectStatus::Draft], "update the intake form")?;
        // The budget must still cover every milestone (and, defensively, what is paid in).
        let committed = self.allocated_amount().max(self.funded_amount);
        if committed > p.intake_form.budget {
            return Err(ProjectError::BudgetExceeded { total: committed, budget: p.intake_form.budget });
        }
        Ok(vec![ProjectEvent::IntakeFormUpdated {
            project_id: self.project_id,
            intake_form: p.intake_form.clone(),
            total_amount: p.intake_form.budget,
            at,
        }])
    }

    fn submit_for_funding(&self, actor: &Actor, at: DateTime<Utc>) -> Result<Vec<ProjectEvent>, ProjectError> {
        self.require_client(actor, "only the project's client may submit it for funding")?;
        self.require_status(&[ProjectStatus::Draft], "submit the project for funding")?;
        if self.milestones.is_empty() {
            return Err(ProjectError::NoMilestones);
        }
        Ok(vec![ProjectEvent::ProjectSubmittedForFunding {
            project_id: self.project_id,
            status: ProjectStatus::PendingFunding,
            at,
        }])
    }

    fn start_matching(&self, actor: &Actor, at: DateTime<Utc>) -> Result<Vec<ProjectEvent>, ProjectError> {
        if !self.is_client(actor) && actor.role != Role::Admin {
            return Err(ProjectError::Forbidden { reason: "only the project's client or an admin may start matching" });
        }
        self.require_status(&[ProjectStatus::Funded], "start matching")?;
        Ok(vec![ProjectEvent::MatchingStarted { project_id: self.project_id, status: ProjectStatus::Matching, at }])
    }

    fn complete(&self, actor: &Actor, at: DateTime<Utc>) -> Result<Vec<ProjectEvent>, ProjectError> {
        if !self.is_client(actor) && actor.role != Role::Admin {
            return Err(ProjectError::Forbidden {
                reason: "only the project's client or an admin may complete the project",
            });
        }
        self.require_status(&[ProjectStatus::InProgress, ProjectStatus::Matched], "complete the project")?;
        // Implied by the status (an open dispute makes the project `disputed`); kept explicit.
        if self.has_open_dispute() {
            return Err(ProjectError::InvalidStatus {
                status: ProjectStatus::Disputed.as_str().to_owned(),
                action: "complete the project",
            });
        }
        if self.milestones.is_empty() {
            return Err(ProjectError::NoMilestones);
        }
        if let Some(m) = self.milestones_in_order().into_iter().find(|m| m.status != MilestoneStatus::Paid) {
            return Err(ProjectError::UnpaidMilestone {
                milestone_id: m.milestone_id,
                status: m.status.as_str().to_owned(),
            });
        }
        // Every milestone is paid and nothing is locked: what escrow still holds was never
        // claimed by a milestone and goes back to the client.
        let refunded_amount = self.escrowed_amount;
        Ok(vec![ProjectEvent::ProjectCompleted {
            project_id: self.project_id,
            status: ProjectStatus::Completed,
            at,
            refunded_amount,
            escrowed_amount: 0,
            refund_payment_id: (refunded_amount > 0).then(|| self.payment_id("refund", self.project_id, 0)),
        }])
    }

    fn cancel(&self, actor: &Actor, at: DateTime<Utc>, p: &CancelProject) -> Result<Vec<ProjectEvent>, ProjectError> {
        let by_client = self.is_client(actor);
        if !by_client && actor.role != Role::Admin {
            return Err(ProjectError::Forbidden { reason: "only the project's client or an admin may cancel it" });
        }
        if p.reason.trim().is_empty() {
            return Err(invalid("reason", "a cancellation needs a reason"));
        }
        // The client may call the project off until work starts; an admin until it ends. A
        // dispute must be settled first: its locked money belongs to its resolution.
        let allowed: &[ProjectStatus] = if by_client { &BEFORE_WORK } else { &OPEN_FOR_WORK };
        self.require_status(allowed, "cancel the project")?;
        if self.has_open_dispute() {
            return Err(ProjectError::InvalidStatus {
                status: ProjectStatus::Disputed.as_str().to_owned(),
                action: "cancel the project",
            });
        }
        let refunded_amount = self.escrowed_amount;
        Ok(vec![ProjectEvent::ProjectCancelled {
            project_id: self.project_id,
            reason: p.reason.clone(),
            refunded_amount,
            escrowed_amount: 0,
            refund_payment_id: (refunded_amount > 0).then(|| self.payment_id("refund", self.project_id, 0)),
            cancelled_by: actor.id,
            status: ProjectStatus::Cancelled,
            at,
        }])
    }
}

/// The intake form rules shared by creation and update.
impl Project {
    fn start_project(&self, actor: &Actor, at: DateTime<Utc>) -> Result<Vec<ProjectEvent>, ProjectError> {
        if !self.is_participant(actor) {
            return Err(ProjectError::Forbidden {
                reason: "only the project's client or matched freelancer may start it",
            });
        }
        self.require_status(&[ProjectStatus::Matched], "start the project")?;
        Ok(vec![ProjectEvent::ProjectStarted { project_id: self.project_id, status: ProjectStatus::InProgress, at }])
    }

    /// Whether `actor` is the moderator assigned to `dispute`.
    fn is_assigned_moderator(actor: &Actor, dispute: &Dispute) -> bool {
        actor.role == Role::Moderator && dispute.assigned_moderator_id == Some(actor.id)
    }

    /// The dispute, if it still holds its money (open, under review or escalated).
    fn find_unsettled_dispute(&self, dispute_id: Uuid, action: &'static str) -> Result<&Dispute, ProjectError> {
        let dispute = self.find_dispute(dispute_id)?;
        if !dispute.status.is_open() {
            return Err(ProjectError::InvalidDisputeStatus {
                dispute_id,
                status: dispute.status.as_str().to_owned(),
                action,
            });
        }
        Ok(dispute)
    }

    fn add_dispute_evidence(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &AddDisputeEvidence,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        let dispute = self.find_dispute(p.dispute_id)?;
        if !(self.is_participant(actor) || Self::is_assigned_moderator(actor, dispute) || actor.role == Role::Admin) {
            return Err(ProjectError::Forbidden {
                reason: "only the project's parties, the assigned moderator or an admin may add evidence",
            });
        }
        self.find_unsettled_dispute(p.dispute_id, "add evidence")?;
        let e = &p.evidence;
        match e.evidence_type {
            EvidenceType::Message if e.message_id.is_none() => {
                return Err(invalid("evidence.messageId", "message evidence names the message"))
            }
            EvidenceType::File if e.file_id.as_deref().is_none_or(|f| f.trim().is_empty()) => {
                return Err(invalid("evidence.fileId", "file evidence names the file"))
            }
            EvidenceType::MilestoneDeliverable => {
                let id = e
                    .milestone_id
                    .ok_or_else(|| invalid("evidence.milestoneId", "deliverable evidence names the milestone"))?;
                self.find_milestone(id)?;
            }
            _ => {}
        }
        Ok(vec![ProjectEvent::DisputeEvidenceAdded {
            project_id: self.project_id,
            dispute_id: p.dispute_id,
            evidence: e.clone(),
            added_by: actor.id,
            at,
        }])
    }

    fn escalate_dispute(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &EscalateDispute,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        let dispute = self.find_dispute(p.dispute_id)?;
        if !(self.is_participant(actor) || Self::is_assigned_moderator(actor, dispute)) {
            return Err(ProjectError::Forbidden {
                reason: "only the project's parties or the assigned moderator may escalate a dispute",
            });
        }
        if p.reason.trim().is_empty() {
            return Err(invalid("reason", "an escalation needs a reason"));
        }
        if !matches!(dispute.status, DisputeStatus::Open | DisputeStatus::UnderReview) {
            return Err(ProjectError::InvalidDisputeStatus {
                dispute_id: p.dispute_id,
                status: dispute.status.as_str().to_owned(),
                action: "escalate",
            });
        }
        Ok(vec![ProjectEvent::DisputeEscalated {
            project_id: self.project_id,
            dispute_id: p.dispute_id,
            reason: p.reason.trim().to_owned(),
            escalated_by: actor.id,
            status: DisputeStatus::Escalated,
            at,
        }])
    }

    fn close_dispute(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &CloseDispute,
    ) -> Result<Vec<ProjectEvent>, ProjectError> {
        let dispute = self.find_dispute(p.dispute_id)?;
        if !(Self::is_assigned_moderator(actor, dispute) || actor.role == Role::Admin) {
            return Err(ProjectError::Forbidden {
                reason: "only the assigned moderator or an admin may close a dispute",
            });
        }
        if dispute.status != DisputeStatus::Resolved {
            return Err(ProjectError::InvalidDisputeStatus {
                dispute_id: p.dispute_id,
                status: dispute.status.as_str().to_owned(),
                action: "close",
            });
        }
        Ok(vec![ProjectEvent::DisputeClosed {
            project_id: self.project_id,
            dispute_id: p.dispute_id,
            closed_by: actor.id,
            status: DisputeStatus::Closed,
            at,
        }])
    }
}

fn validate_intake_form(form: &IntakeForm) -> Result<(), ProjectError> {
    if form.title.trim().is_empty() {
        return Err(invalid("intakeForm.title", "must not be empty"));
    }
    if form.budget <= 0 {
        return Err(invalid("intakeForm.budget", format!("must be positive, got {}", form.budget)));
    }
    Ok(())
}

impl Aggregate for Project {
    const STREAM_TYPE: &'static str = "marketplace.project";
    /// 2: the state gained `completedAt`, `cancelledAt` and `cancellationReason`.
    const STATE_VERSION: i32 = 2;

    type Event = ProjectEvent;
    type Command = ProjectCommand;
    type Error = ProjectError;

    fn decide(&self, command: &ProjectCommand) -> Result<Vec<ProjectEvent>, ProjectError> {
        let ProjectCommand { actor, at, action } = command;
        let at = *at;
        if let ProjectAction::Create(p) = action {
            return self.create(actor, at, p);
        }
        // The stream is chosen by the payload's project id; a payload naming another project
        // addresses a project this stream does not hold.
        if !self.exists || self.project_id != action.project_id() {
            return Err(ProjectError::ProjectNotFound);
        }
        // A completed or cancelled project is closed for good: nothing changes it any more.
        if self.status.is_terminal() {
            return Err(ProjectError::InvalidStatus {
                status: self.status.as_str().to_owned(),
                action: action.phrase(),
            });
        }
        match action {
            ProjectAction::Create(_) => unreachable!("handled above"),
            ProjectAction::AddMilestone(p) => self.add_milestone(actor, at, p),
            ProjectAction::FundProject(_) => self.fund_project(actor, at),
            ProjectAction::FundMilestone(p) => self.fund_milestone(actor, at, p),
            ProjectAction::AcceptMatch(p) => self.accept_match(actor, at, p),
            ProjectAction::StartMilestone(p) => self.start_milestone(actor, at, p),
            ProjectAction::SubmitMilestone(p) => self.submit_milestone(actor, at, p),
            ProjectAction::ApproveMilestone(p) => self.approve_milestone(actor, at, p),
            ProjectAction::RejectMilestone(p) => self.reject_milestone(actor, at, p),
            ProjectAction::ReleaseMilestonePayment(p) => self.release_payment(actor, at, p),
            ProjectAction::OpenDispute(p) => self.open_dispute(actor, at, p),
            ProjectAction::AssignModerator(p) => self.assign_moderator(actor, at, p),
            ProjectAction::ResolveDispute(p) => self.resolve_dispute(actor, at, p),
            ProjectAction::UpdateIntakeForm(p) => self.update_intake_form(actor, at, p),
            ProjectAction::SubmitProjectForFunding(_) => self.submit_for_funding(actor, at),
            ProjectAction::StartMatching(_) => self.start_matching(actor, at),
            ProjectAction::CompleteProject(_) => self.complete(actor, at),
            ProjectAction::CancelProject(p) => self.cancel(actor, at, p),
            ProjectAction::StartProject(_) => self.start_project(actor, at),
            ProjectAction::AddDisputeEvidence(p) => self.add_dispute_evidence(actor, at, p),
            ProjectAction::EscalateDispute(p) => self.escalate_dispute(actor, at, p),
            ProjectAction::CloseDispute(p) => self.close_dispute(actor, at, p),
        }
    }

    fn evolve(&mut self, event: &ProjectEvent) {
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
                self.exists = true;
                self.project_id = *project_id;
                self.client_id = Some(*client_id);
                self.intake_form = intake_form.clone();
                self.total_amount = *total_amount;
                self.currency = Some(*currency);
                self.platform_fee_percent = *platform_fee_percent;
                self.status = *status;
                self.created_at = Some(*at);
            }
            ProjectEvent::MilestoneAdded {
                milestone_id, title, description, order, amount, due_date, funded, ..
            } => {
                self.milestones.insert(
                    *milestone_id,
                    Milestone {
                        milestone_id: *milestone_id,
                        title: title.clone(),
                        description: description.clone(),
                        order: *order,
                        amount: *amount,
                        due_date: *due_date,
                        status: MilestoneStatus::Pending,
                        funded: *funded,
                        deliverables: Vec::new(),
                        started_at: None,
                        submitted_at: None,
                        approved_by: None,
                        approved_at: None,
                        auto_release_at: None,
                        rejection_reason: None,
                        paid_at: None,
                    },
                );
            }
            ProjectEvent::ProjectFunded { amount, escrowed_amount, funded_milestones, status, .. } => {
                for id in funded_milestones {
                    if let Some(m) = self.milestones.get_mut(id) {
                        m.funded = true;
                    }
                }
                self.record_funding(*amount, *escrowed_amount, *status);
            }
            ProjectEvent::MilestoneFunded { milestone_id, amount, escrowed_amount, status, .. } => {
                if let Some(m) = self.milestones.get_mut(milestone_id) {
                    m.funded = true;
                }
                self.record_funding(*amount, *escrowed_amount, *status);
            }
            ProjectEvent::FreelancerMatched { freelancer_id, match_id, status, .. } => {
                self.matched_freelancer_id = Some(*freelancer_id);
                self.match_id = *match_id;
                self.status = *status;
            }
            ProjectEvent::MilestoneStarted { milestone_id, at, .. } => {
                if let Some(m) = self.milestones.get_mut(milestone_id) {
                    m.status = MilestoneStatus::InProgress;
                    m.started_at.get_or_insert(*at);
                }
            }
            ProjectEvent::ProjectStarted { status, at, .. } => {
                self.status = *status;
                self.started_at.get_or_insert(*at);
            }
            ProjectEvent::MilestoneSubmitted { milestone_id, deliverables, at, .. } => {
                if let Some(m) = self.milestones.get_mut(milestone_id) {
                    m.status = MilestoneStatus::Submitted;
                    m.deliverables = deliverables.clone();
                    m.submitted_at = Some(*at);
                }
            }
            ProjectEvent::MilestoneApproved { milestone_id, approved_by, at, auto_release_at, .. } => {
                if let Some(m) = self.milestones.get_mut(milestone_id) {
                    m.status = MilestoneStatus::Approved;
                    m.approved_by = Some(*approved_by);
                    m.approved_at = Some(*at);
                    m.auto_release_at = Some(*auto_release_at);
                }
            }
            ProjectEvent::MilestoneRejected { milestone_id, reason, .. } => {
                if let Some(m) = self.milestones.get_mut(milestone_id) {
                    m.status = MilestoneStatus::Rejected;
                    m.rejection_reason = Some(reason.clone());
                }
            }
            ProjectEvent::MilestonePaymentReleased {
                milestone_id, amount, platform_fee, escrowed_amount, at, ..
            } => {
                if let Some(m) = self.milestones.get_mut(milestone_id) {
                    m.status = MilestoneStatus::Paid;
                    m.paid_at = Some(*at);
                }
                self.escrowed_amount = *escrowed_amount;
                self.ledger.escrowed = *escrowed_amount;
                self.ledger.released += amount;
                self.ledger.fees += platform_fee;
                // A release and its fee record.
                self.payments_recorded += 2;
            }
            ProjectEvent::DisputeOpened {
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
                ..
            } => {
                if let Some(m) = milestone_id.and_then(|id| self.milestones.get_mut(&id)) {
                    m.status = MilestoneStatus::Disputed;
                }
                // Only the first of overlapping disputes remembers where the project was.
                if self.status != ProjectStatus::Disputed {
                    self.status_before_dispute = Some(self.status);
                }
                self.status = *status;
                self.disputes.insert(
                    *dispute_id,
                    Dispute {
                        dispute_id: *dispute_id,
                        milestone_id: *milestone_id,
                        initiator_id: *initiator_id,
                        initiator_role: *initiator_role,
                        dispute_type: *dispute_type,
                        reason: reason.clone(),
                        description: description.clone(),
                        locked_amount: *locked_amount,
                        status: DisputeStatus::Open,
                        opened_at: *at,
                        assigned_moderator_id: None,
                        assigned_at: None,
                        resolution: None,
                        evidence: Vec::new(),
                        escalated_at: None,
                        closed_at: None,
                    },
                );
            }
            ProjectEvent::ModeratorAssigned { dispute_id, moderator_id, at, .. } => {
                if let Some(d) = self.disputes.get_mut(dispute_id) {
                    // An escalated dispute stays with the admins when a moderator is (re)assigned.
                    if d.status != DisputeStatus::Escalated {
                        d.status = DisputeStatus::UnderReview;
                    }
                    d.assigned_moderator_id = Some(*moderator_id);
                    d.assigned_at = Some(*at);
                }
            }
            ProjectEvent::DisputeResolved {
                dispute_id,
                milestone_id,
                decision,
                resolution_amount,
                notes,
                resolved_by,
                released_amount,
                refunded_amount,
                platform_fee,
                escrowed_amount,
                release_payment_id,
                refund_payment_id,
                fee_payment_id,
                milestone_status,
                project_status,
                at,
                ..
            } => {
                if let Some(d) = self.disputes.get_mut(dispute_id) {
                    d.status = DisputeStatus::Resolved;
                    d.resolution = Some(Resolution {
                        decision: *decision,
                        resolution_amount: *resolution_amount,
                        notes: notes.clone(),
                        resolved_by: *resolved_by,
                        resolved_at: *at,
                        released_amount: *released_amount,
                        refunded_amount: *refunded_amount,
                        platform_fee: *platform_fee,
                    });
                }
                // A refund hands budget back to the client, which the client may fund again;
                // except when the milestone was paid: then the refund is a settled discount.
                if *milestone_status != Some(MilestoneStatus::Paid) {
                    self.funded_amount -= refunded_amount;
                }
                if let (Some(id), Some(new_status)) = (milestone_id, milestone_status) {
                    if let Some(m) = self.milestones.get_mut(id) {
                        m.status = *new_status;
                        match new_status {
                            MilestoneStatus::Paid => m.paid_at = Some(*at),
                            MilestoneStatus::Pending => m.funded = false,
                            _ => {}
                        }
                    }
                }
                self.escrowed_amount = *escrowed_amount;
                self.ledger.escrowed = *escrowed_amount;
                self.ledger.released += released_amount;
                self.ledger.refunded += refunded_amount;
                self.ledger.fees += platform_fee;
                let recorded =
                    [release_payment_id, refund_payment_id, fee_payment_id].iter().filter(|id| id.is_some()).count();
                self.payments_recorded += recorded as u32;
                self.status = *project_status;
                if *project_status != ProjectStatus::Disputed {
                    self.status_before_dispute = None;
                }
            }
            ProjectEvent::IntakeFormUpdated { intake_form, total_amount, .. } => {
                self.intake_form = intake_form.clone();
                self.total_amount = *total_amount;
            }
            ProjectEvent::ProjectSubmittedForFunding { status, .. } | ProjectEvent::MatchingStarted { status, .. } => {
                self.status = *status;
            }
            ProjectEvent::ProjectCompleted {
                status, at, refunded_amount, escrowed_amount, refund_payment_id, ..
            } => {
                self.record_refund(*refunded_amount, *escrowed_amount, refund_payment_id.is_some());
                self.status = *status;
                self.completed_at = Some(*at);
            }
            ProjectEvent::ProjectCancelled {
                reason,
                refunded_amount,
                escrowed_amount,
                refund_payment_id,
                status,
                at,
                ..
            } => {
                self.record_refund(*refunded_amount, *escrowed_amount, refund_payment_id.is_some());
                self.status = *status;
                self.cancelled_at = Some(*at);
                self.cancellation_reason = Some(reason.clone());
            }
            ProjectEvent::DisputeEvidenceAdded { dispute_id, evidence, .. } => {
                if let Some(d) = self.disputes.get_mut(dispute_id) {
                    d.evidence.push(evidence.clone());
                }
            }
            ProjectEvent::DisputeEscalated { dispute_id, status, at, .. } => {
                if let Some(d) = self.disputes.get_mut(dispute_id) {
                    d.status = *status;
                    d.escalated_at = Some(*at);
                }
            }
            ProjectEvent::DisputeClosed { dispute_id, status, at, .. } => {
                if let Some(d) = self.disputes.get_mut(dispute_id) {
                    d.status = *status;
                    d.closed_at = Some(*at);
                }
            }
        }
    }
}

impl Project {
    /// Folds an escrow refund outside a dispute (cancellation, completion surplus): the money
    /// is no longer counted as paid in.
    fn record_refund(&mut self, refunded_amount: i64, escrowed_amount: i64, recorded: bool) {
        self.funded_amount -= refunded_amount;
        self.escrowed_amount = escrowed_amount;
        self.ledger.escrowed = escrowed_amount;
        self.ledger.refunded += refunded_amount;
        if recorded {
            self.payments_recorded += 1;
        }
    }

    /// Folds one pre-funding payment.
    fn record_funding(&mut self, amount: i64, escrowed_amount: i64, status: ProjectStatus) {
        self.funded_amount += amount;
        self.escrowed_amount = escrowed_amount;
        self.ledger.funded += amount;
        self.ledger.escrowed = escrowed_amount;
        self.payments_recorded += 1;
        self.status = status;
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{decode_event, encode_event, TestHarness};

    const P: Uuid = Uuid::from_u128(0x1);
    const OTHER_PROJECT: Uuid = Uuid::from_u128(0x2);
    const CLIENT: Uuid = Uuid::from_u128(0xC1);
    const FREELANCER: Uuid = Uuid::from_u128(0xF1);
    const FREELANCER_2: Uuid = Uuid::from_u128(0xF2);
    const STRANGER: Uuid = Uuid::from_u128(0x57);
    const ADMIN: Uuid = Uuid::from_u128(0xAD);
    const MODERATOR: Uuid = Uuid::from_u128(0x30);
    const OTHER_MODERATOR: Uuid = Uuid::from_u128(0x31);
    const M1: Uuid = Uuid::from_u128(0x101);
    const M2: Uuid = Uuid::from_u128(0x102);
    const M3: Uuid = Uuid::from_u128(0x103);
    const D1: Uuid = Uuid::from_u128(0x201);
    const D2: Uuid = Uuid::from_u128(0x202);
    const MATCH: Uuid = Uuid::from_u128(0x301);

    const BUDGET: i64 = 1_000;
    const M1_AMOUNT: i64 = 600;
    const M2_AMOUNT: i64 = 400;
    const FEE: u8 = 10;

    fn t(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_735_689_600 + hours * 3_600, 0).expect("valid time")
    }

    fn usd() -> Currency {
        Currency::parse("usd").unwrap()
    }

    fn as_(id: Uuid, role: Role) -> Actor {
        Actor { id, role }
    }
    fn client() -> Actor {
        as_(CLIENT, Role::Client)
    }
    fn freelancer() -> Actor {
        as_(FREELANCER, Role::Freelancer)
    }
    fn stranger() -> Actor {
        as_(STRANGER, Role::Client)
    }
    fn admin() -> Actor {
        as_(ADMIN, Role::Admin)
    }
    fn moderator() -> Actor {
        as_(MODERATOR, Role::Moderator)
    }
    fn system() -> Actor {
        Actor::system()
    }

    fn cmd(actor: Actor, at: DateTime<Utc>, action: impl Into<ProjectAction>) -> ProjectCommand {
        ProjectCommand { actor, at, action: action.into() }
    }

    fn pay_id(kind: &str, subject: Uuid, n: u32) -> Uuid {
        Uuid::new_v5(&P, format!("{kind}:{subject}:{n}").as_bytes())
    }

    fn forbidden<T>(result: Result<T, ProjectError>) -> bool {
        matches!(result, Err(ProjectError::Forbidden { .. }))
    }

    fn state(events: &[ProjectEvent]) -> Project {
        Project::fold(events.iter())
    }

    // ---- payloads ------------------------------------------------------------------------

    fn intake(budget: i64) -> IntakeForm {
        IntakeForm {
            title: "Landing page".into(),
            description: "A landing page for the launch".into(),
            category: "web".into(),
            required_skills: vec!["html".into(), "css".into()],
            budget,
            timeline: "2 weeks".into(),
            deliverables: vec!["source".into()],
            additional_requirements: None,
        }
    }

    fn create_payload() -> CreateProject {
        CreateProject { project_id: P, intake_form: intake(BUDGET), currency: usd(), platform_fee_percent: FEE }
    }

    fn add_payload(milestone_id: Uuid, amount: i64) -> AddMilestone {
        AddMilestone {
            project_id: P,
            milestone_id,
            title: format!("Milestone {amount}"),
            description: "work".into(),
            amount,
            due_date: t(24 * 7),
        }
    }

    fn start(milestone_id: Uuid) -> StartMilestone {
        StartMilestone { project_id: P, milestone_id }
    }
    fn submit(milestone_id: Uuid) -> SubmitMilestone {
        SubmitMilestone {
            project_id: P,
            milestone_id,
            deliverables: vec![Deliverable { name: "site.zip".into(), file_id: Some("file-1".into()), url: None }],
        }
    }
    fn approve(milestone_id: Uuid) -> ApproveMilestone {
        ApproveMilestone { project_id: P, milestone_id }
    }
    fn reject(milestone_id: Uuid, reason: &str) -> RejectMilestone {
        RejectMilestone { project_id: P, milestone_id, reason: reason.into() }
    }
    fn release(milestone_id: Uuid) -> ReleaseMilestonePayment {
        ReleaseMilestonePayment { project_id: P, milestone_id }
    }
    fn fund_ms(milestone_id: Uuid) -> FundMilestone {
        FundMilestone { project_id: P, milestone_id }
    }
    fn fund_project() -> FundProject {
        FundProject { project_id: P }
    }
    fn accept(freelancer_id: Uuid) -> AcceptMatch {
        AcceptMatch { project_id: P, freelancer_id, match_id: Some(MATCH) }
    }
    fn open(dispute_id: Uuid, milestone_id: Option<Uuid>) -> OpenDispute {
        OpenDispute {
            project_id: P,
            dispute_id,
            milestone_id,
            dispute_type: DisputeType::MilestoneQuality,
            reason: "not as agreed".into(),
            description: "the page does not match the design".into(),
        }
    }
    fn assign(dispute_id: Uuid, moderator_id: Uuid) -> AssignModerator {
        AssignModerator { project_id: P, dispute_id, moderator_id }
    }
    fn resolve(dispute_id: Uuid, decision: DisputeDecision, amount: Option<i64>) -> ResolveDispute {
        ResolveDispute { project_id: P, dispute_id, decision, resolution_amount: amount, notes: "ruled".into() }
    }
    fn update_intake(budget: i64) -> UpdateIntakeForm {
        let mut intake_form = intake(budget);
        intake_form.title = "Landing page, revised".into();
        UpdateIntakeForm { project_id: P, intake_form }
    }
    fn submit_for_funding() -> SubmitProjectForFunding {
        SubmitProjectForFunding { project_id: P }
    }
    fn start_matching() -> StartMatching {
        StartMatching { project_id: P }
    }
    fn complete() -> CompleteProject {
        CompleteProject { project_id: P }
    }
    fn cancel(reason: &str) -> CancelProject {
        CancelProject { project_id: P, reason: reason.into() }
    }

    // ---- events --------------------------------------------------------------------------

    fn created_with(budget: i64, fee: u8) -> ProjectEvent {
        ProjectEvent::ProjectCreated {
            project_id: P,
            client_id: CLIENT,
            intake_form: intake(budget),
            total_amount: budget,
            currency: usd(),
            platform_fee_percent: fee,
            status: ProjectStatus::Draft,
            at: t(0),
        }
    }
    fn created() -> ProjectEvent {
        created_with(BUDGET, FEE)
    }
    fn added(milestone_id: Uuid, order: u32, amount: i64, funded: bool) -> ProjectEvent {
        ProjectEvent::MilestoneAdded {
            project_id: P,
            milestone_id,
            title: format!("Milestone {amount}"),
            description: "work".into(),
            order,
            amount,
            currency: usd(),
            due_date: t(24 * 7),
            funded,
            at: t(1),
        }
    }
    fn project_funded(
        amount: i64,
        escrowed: i64,
        milestones: Vec<Uuid>,
        n: u32,
        status: ProjectStatus,
    ) -> ProjectEvent {
        ProjectEvent::ProjectFunded {
            project_id: P,
            amount,
            escrowed_amount: escrowed,
            funded_milestones: milestones,
            payment_id: pay_id("pre_funding", P, n),
            funded_by: CLIENT,
            status,
            at: t(2),
        }
    }
    fn milestone_funded(milestone_id: Uuid, amount: i64, escrowed: i64, n: u32, status: ProjectStatus) -> ProjectEvent {
        ProjectEvent::MilestoneFunded {
            project_id: P,
            milestone_id,
            amount,
            escrowed_amount: escrowed,
            payment_id: pay_id("pre_funding", milestone_id, n),
            funded_by: CLIENT,
            status,
            at: t(2),
        }
    }
    fn matched() -> ProjectEvent {
        ProjectEvent::FreelancerMatched {
            project_id: P,
            freelancer_id: FREELANCER,
            match_id: Some(MATCH),
            accepted_by: CLIENT,
            status: ProjectStatus::Matched,
            at: t(3),
        }
    }
    fn started(milestone_id: Uuid) -> ProjectEvent {
        ProjectEvent::MilestoneStarted { project_id: P, milestone_id, started_by: FREELANCER, at: t(4) }
    }
    fn project_started() -> ProjectEvent {
        ProjectEvent::ProjectStarted { project_id: P, status: ProjectStatus::InProgress, at: t(4) }
    }
    fn submitted(milestone_id: Uuid) -> ProjectEvent {
        ProjectEvent::MilestoneSubmitted {
            project_id: P,
            milestone_id,
            deliverables: vec![SubmittedDeliverable {
                name: "site.zip".into(),
                file_id: Some("file-1".into()),
                url: None,
                submitted_at: t(5),
            }],
            submitted_by: FREELANCER,
            at: t(5),
        }
    }
    fn approved(milestone_id: Uuid) -> ProjectEvent {
        ProjectEvent::MilestoneApproved {
            project_id: P,
            milestone_id,
            approved_by: CLIENT,
            at: t(10),
            auto_release_at: t(58),
        }
    }
    fn rejected(milestone_id: Uuid) -> ProjectEvent {
        ProjectEvent::MilestoneRejected {
            project_id: P,
            milestone_id,
            reason: "missing pages".into(),
            rejected_by: CLIENT,
            at: t(6),
        }
    }
    fn dispute_opened(dispute_id: Uuid, milestone_id: Option<Uuid>, by: Actor, locked: i64) -> ProjectEvent {
        ProjectEvent::DisputeOpened {
            project_id: P,
            dispute_id,
            milestone_id,
            initiator_id: by.id,
            initiator_role: by.role,
            dispute_type: DisputeType::MilestoneQuality,
            reason: "not as agreed".into(),
            description: "the page does not match the design".into(),
            locked_amount: locked,
            status: ProjectStatus::Disputed,
            at: t(7),
        }
    }
    fn moderator_assigned(dispute_id: Uuid, moderator_id: Uuid) -> ProjectEvent {
        ProjectEvent::ModeratorAssigned { project_id: P, dispute_id, moderator_id, assigned_by: ADMIN, at: t(8) }
    }

    // ---- histories -----------------------------------------------------------------------

    /// Budget 1000, fee 10%, M1 = 600 and M2 = 400, nothing funded.
    fn with_milestones() -> Vec<ProjectEvent> {
        vec![created(), added(M1, 1, M1_AMOUNT, false), added(M2, 2, M2_AMOUNT, false)]
    }
    /// Fully funded by `FundProject`: escrow 1000.
    fn funded() -> Vec<ProjectEvent> {
        let mut h = with_milestones();
        h.push(project_funded(BUDGET, BUDGET, vec![M1, M2], 0, ProjectStatus::Funded));
        h
    }
    fn matched_project() -> Vec<ProjectEvent> {
        let mut h = funded();
        h.push(matched());
        h
    }
    fn m1_in_progress() -> Vec<ProjectEvent> {
        let mut h = matched_project();
        h.extend([started(M1), project_started()]);
        h
    }
    fn m1_submitted() -> Vec<ProjectEvent> {
        let mut h = m1_in_progress();
        h.push(submitted(M1));
        h
    }
    fn m1_approved() -> Vec<ProjectEvent> {
        let mut h = m1_submitted();
        h.push(approved(M1));
        h
    }
    /// The client disputes M2 (400 locked) while M1 is in progress.
    fn m2_disputed() -> Vec<ProjectEvent> {
        let mut h = m1_in_progress();
        h.push(dispute_opened(D1, Some(M2), client(), M2_AMOUNT));
        h
    }
    fn m2_disputed_under_review() -> Vec<ProjectEvent> {
        let mut h = m2_disputed();
        h.push(moderator_assigned(D1, MODERATOR));
        h
    }

    /// `history` followed by what the given commands decide, each on the state before it.
    fn after(history: Vec<ProjectEvent>, steps: Vec<(Actor, ProjectAction)>) -> Vec<ProjectEvent> {
        let mut project = state(&history);
        let mut history = history;
        for (i, (actor, action)) in steps.into_iter().enumerate() {
            let name = action.name();
            let events =
                project.decide(&cmd(actor, t(20 + i as i64), action)).unwrap_or_else(|e| panic!("{name} refused: {e}"));
            events.iter().for_each(|e| project.evolve(e));
            history.extend(events);
        }
        history
    }
    /// M1 released (escrow 400), M2 pending.
    fn m1_paid() -> Vec<ProjectEvent> {
        after(m1_approved(), vec![(client(), release(M1).into())])
    }
    /// Both milestones paid: escrow 0, the project still in progress.
    fn all_paid() -> Vec<ProjectEvent> {
        after(
            m1_paid(),
            vec![
                (freelancer(), start(M2).into()),
                (freelancer(), submit(M2).into()),
                (client(), approve(M2).into()),
                (client(), release(M2).into()),
            ],
        )
    }
    fn submitted_for_funding() -> ProjectEvent {
        ProjectEvent::ProjectSubmittedForFunding { project_id: P, status: ProjectStatus::PendingFunding, at: t(2) }
    }
    fn matching_started() -> ProjectEvent {
        ProjectEvent::MatchingStarted { project_id: P, status: ProjectStatus::Matching, at: t(3) }
    }
    fn cancelled(refunded: i64, n: u32, by: Uuid) -> ProjectEvent {
        ProjectEvent::ProjectCancelled {
            project_id: P,
            reason: "plans changed".into(),
            refunded_amount: refunded,
            escrowed_amount: 0,
            refund_payment_id: (refunded > 0).then(|| pay_id("refund", P, n)),
            cancelled_by: by,
            status: ProjectStatus::Cancelled,
            at: t(30),
        }
    }

    fn resolved_event(events: Result<Vec<ProjectEvent>, ProjectError>) -> ProjectEvent {
        let events = events.expect("the resolution is accepted");
        assert_eq!(events.len(), 1);
        events.into_iter().next().unwrap()
    }

    // ---- CreateProject --------------------------------------------------------------------

    #[test]
    fn it_should_create_a_draft_project_for_a_client() {
        TestHarness::<Project>::given([]).when(cmd(client(), t(0), create_payload())).then([created()]);
    }

    #[test]
    fn it_should_forbid_anyone_but_a_client_to_create_a_project() {
        for role in [Role::Freelancer, Role::Moderator, Role::Admin, Role::System] {
            TestHarness::<Project>::given([])
                .when(cmd(as_(CLIENT, role), t(0), create_payload()))
                .then_error(ProjectError::Forbidden { reason: "only a client may create a project" });
        }
    }

    #[test]
    fn it_should_refuse_a_project_without_a_title() {
        let mut p = create_payload();
        p.intake_form.title = "  ".into();
        TestHarness::<Project>::given([])
            .when(cmd(client(), t(0), p))
            .then_error(invalid("intakeForm.title", "must not be empty"));
    }

    #[test]
    fn it_should_refuse_a_budget_that_is_not_positive() {
        for budget in [0, -5] {
            let mut p = create_payload();
            p.intake_form.budget = budget;
            let error = TestHarness::<Project>::given([]).when(cmd(client(), t(0), p)).events().unwrap_err();
            assert!(matches!(error, ProjectError::Invalid { field: "intakeForm.budget", .. }), "{error}");
            assert_eq!(error.kind(), ErrorKind::Invalid);
        }
    }

    #[test]
    fn it_should_refuse_a_platform_fee_above_fifty_percent() {
        let mut p = create_payload();
        p.platform_fee_percent = 51;
        let error = TestHarness::<Project>::given([]).when(cmd(client(), t(0), p.clone())).events().unwrap_err();
        assert!(matches!(error, ProjectError::Invalid { field: "platformFeePercent", .. }));
        p.platform_fee_percent = 50;
        assert!(TestHarness::<Project>::given([]).when(cmd(client(), t(0), p)).events().is_ok());
    }

    #[test]
    fn it_should_not_create_a_project_twice() {
        TestHarness::<Project>::given([created()])
            .when(cmd(client(), t(1), create_payload()))
            .then_error(ProjectError::AlreadyExists);
        assert_eq!(ProjectError::AlreadyExists.kind(), ErrorKind::Conflict);
    }

    #[test]
    fn it_should_report_not_found_for_every_command_on_a_missing_project() {
        let actions: Vec<ProjectAction> = vec![
            add_payload(M1, 100).into(),
            fund_project().into(),
            fund_ms(M1).into(),
            accept(FREELANCER).into(),
            start(M1).into(),
            submit(M1).into(),
            approve(M1).into(),
            reject(M1, "no").into(),
            release(M1).into(),
            open(D1, None).into(),
            assign(D1, MODERATOR).into(),
            resolve(D1, DisputeDecision::ClientFavor, None).into(),
            update_intake(BUDGET).into(),
            submit_for_funding().into(),
            start_matching().into(),
            complete().into(),
            cancel("gone").into(),
        ];
        for action in actions {
            let name = action.name();
            let error = TestHarness::<Project>::given([])
                .when(ProjectCommand { actor: client(), at: t(1), action })
                .events()
                .unwrap_err();
            assert_eq!(error, ProjectError::ProjectNotFound, "{name}");
            assert_eq!(error.kind(), ErrorKind::NotFound);
        }
    }

    #[test]
    fn it_should_report_not_found_for_a_payload_naming_another_project() {
        let mut p = add_payload(M1, 100);
        p.project_id = OTHER_PROJECT;
        TestHarness::<Project>::given([created()])
            .when(cmd(client(), t(1), p))
            .then_error(ProjectError::ProjectNotFound);
    }

    // ---- AddMilestone ---------------------------------------------------------------------

    #[test]
    fn it_should_add_milestones_in_sequential_order() {
        TestHarness::<Project>::given([created(), added(M1, 1, M1_AMOUNT, false)])
            .when(cmd(client(), t(1), add_payload(M2, M2_AMOUNT)))
            .then([added(M2, 2, M2_AMOUNT, false)]);
    }

    #[test]
    fn it_should_forbid_anyone_but_the_client_to_add_a_milestone() {
        for actor in [freelancer(), stranger(), admin(), system()] {
            let result =
                TestHarness::<Project>::given(matched_project()).when(cmd(actor, t(9), add_payload(M3, 1))).events();
            assert!(forbidden(result), "{actor:?}");
        }
    }

    #[test]
    fn it_should_refuse_milestones_that_exceed_the_budget() {
        TestHarness::<Project>::given([created(), added(M1, 1, M1_AMOUNT, false)])
            .when(cmd(client(), t(1), add_payload(M2, M2_AMOUNT + 1)))
            .then_error(ProjectError::BudgetExceeded { total: BUDGET + 1, budget: BUDGET });
    }

    #[test]
    fn it_should_refuse_a_milestone_amount_that_is_not_positive() {
        for amount in [0, -1] {
            let error = TestHarness::<Project>::given([created()])
                .when(cmd(client(), t(1), add_payload(M1, amount)))
                .events()
                .unwrap_err();
            assert!(matches!(error, ProjectError::Invalid { field: "amount", .. }), "{error}");
        }
    }

    #[test]
    fn it_should_not_overflow_when_a_milestone_amount_is_huge() {
        let error = TestHarness::<Project>::given([created(), added(M1, 1, 1, false)])
            .when(cmd(client(), t(1), add_payload(M2, i64::MAX)))
            .events()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn it_should_not_add_the_same_milestone_twice() {
        TestHarness::<Project>::given([created(), added(M1, 1, 100, false)])
            .when(cmd(client(), t(1), add_payload(M1, 100)))
            .then_error(ProjectError::MilestoneAlreadyExists { milestone_id: M1 });
    }

    #[test]
    fn it_should_not_add_a_milestone_to_a_disputed_project() {
        TestHarness::<Project>::given(m2_disputed())
            .when(cmd(client(), t(9), add_payload(M3, 1)))
            .then_error(ProjectError::InvalidStatus { status: "disputed".into(), action: "add a milestone" });
    }

    #[test]
    fn it_should_add_a_milestone_already_funded_when_the_budget_was_funded() {
        // Budget 1000, M1 = 600 funded with the whole budget: 400 of funded budget is free.
        let history = vec![
            created(),
            added(M1, 1, M1_AMOUNT, false),
            project_funded(BUDGET, BUDGET, vec![M1], 0, ProjectStatus::Funded),
        ];
        TestHarness::<Project>::given(history.clone())
            .when(cmd(client(), t(1), add_payload(M2, M2_AMOUNT)))
            .then([added(M2, 2, M2_AMOUNT, true)]);
        // ... and so it cannot be funded a second time.
        let mut history = history;
        history.push(added(M2, 2, M2_AMOUNT, true));
        TestHarness::<Project>::given(history)
            .when(cmd(client(), t(3), fund_ms(M2)))
            .then_error(ProjectError::MilestoneAlreadyFunded { milestone_id: M2 });
    }

    // ---- FundProject / FundMilestone ------------------------------------------------------

    #[test]
    fn it_should_fund_the_whole_budget_into_escrow() {
        TestHarness::<Project>::given(with_milestones())
            .when(cmd(client(), t(2), fund_project()))
            .then([project_funded(BUDGET, BUDGET, vec![M1, M2], 0, ProjectStatus::Funded)]);
    }

    #[test]
    fn it_should_fund_only_the_remainder_after_a_milestone_was_funded() {
        let mut history = with_milestones();
        history.push(milestone_funded(M1, M1_AMOUNT, M1_AMOUNT, 0, ProjectStatus::Funded));
        TestHarness::<Project>::given(history).when(cmd(client(), t(2), fund_project())).then([project_funded(
            M2_AMOUNT,
            BUDGET,
            vec![M2],
            1,
            ProjectStatus::Funded,
        )]);
    }

    #[test]
    fn it_should_not_fund_a_fully_funded_project() {
        TestHarness::<Project>::given(funded())
            .when(cmd(client(), t(3), fund_project()))
            .then_error(ProjectError::AlreadyFunded);
    }

    #[test]
    fn it_should_forbid_anyone_but_the_client_to_fund() {
        for actor in [freelancer(), stranger(), admin(), system()] {
            assert!(forbidden(
                TestHarness::<Project>::given(with_milestones()).when(cmd(actor, t(2), fund_project())).events()
            ));
            assert!(forbidden(
                TestHarness::<Project>::given(with_milestones()).when(cmd(actor, t(2), fund_ms(M1))).events()
            ));
        }
    }

    #[test]
    fn it_should_fund_a_milestone_and_mark_the_draft_project_funded() {
        TestHarness::<Project>::given(with_milestones())
            .when(cmd(client(), t(2), fund_ms(M2)))
            .then([milestone_funded(M2, M2_AMOUNT, M2_AMOUNT, 0, ProjectStatus::Funded)]);
    }

    #[test]
    fn it_should_not_fund_a_milestone_twice() {
        let mut history = with_milestones();
        history.push(milestone_funded(M1, M1_AMOUNT, M1_AMOUNT, 0, ProjectStatus::Funded));
        TestHarness::<Project>::given(history)
            .when(cmd(client(), t(3), fund_ms(M1)))
            .then_error(ProjectError::MilestoneAlreadyFunded { milestone_id: M1 });
    }

    #[test]
    fn it_should_not_fund_an_unknown_milestone() {
        TestHarness::<Project>::given(with_milestones())
            .when(cmd(client(), t(2), fund_ms(M3)))
            .then_error(ProjectError::MilestoneNotFound { milestone_id: M3 });
    }

    #[test]
    fn it_should_let_the_client_fund_a_refunded_milestone_again() {
        let mut history = m2_disputed_under_review();
        let mut project = state(&history);
        let resolution =
            resolved_event(project.decide(&cmd(moderator(), t(9), resolve(D1, DisputeDecision::ClientFavor, None))));
        project.evolve(&resolution);
        history.push(resolution);
        assert!(!project.milestones[&M2].funded);
        assert_eq!(project.milestones[&M2].status, MilestoneStatus::Pending);
        assert_eq!(project.funded_amount, M1_AMOUNT);

        let events = TestHarness::<Project>::given(history).when(cmd(client(), t(10), fund_ms(M2))).events().unwrap();
        assert!(matches!(
            events.as_slice(),
            [ProjectEvent::MilestoneFunded {
                amount: M2_AMOUNT,
                escrowed_amount: BUDGET,
                status: ProjectStatus::InProgress,
                ..
            }]
        ));
    }

    // ---- AcceptMatch ----------------------------------------------------------------------

    #[test]
    fn it_should_match_a_freelancer_on_a_funded_project() {
        TestHarness::<Project>::given(funded()).when(cmd(client(), t(3), accept(FREELANCER))).then([matched()]);
    }

    #[test]
    fn it_should_not_match_a_second_freelancer() {
        TestHarness::<Project>::given(matched_project())
            .when(cmd(client(), t(4), accept(FREELANCER_2)))
            .then_error(ProjectError::AlreadyMatched { freelancer_id: FREELANCER });
    }

    #[test]
    fn it_should_not_match_before_funding() {
        TestHarness::<Project>::given(with_milestones())
            .when(cmd(client(), t(3), accept(FREELANCER)))
            .then_error(ProjectError::InvalidStatus { status: "draft".into(), action: "accept a match" });
    }

    #[test]
    fn it_should_forbid_a_freelancer_to_accept_a_match() {
        assert!(forbidden(
            TestHarness::<Project>::given(funded()).when(cmd(freelancer(), t(3), accept(FREELANCER))).events()
        ));
    }

    #[test]
    fn it_should_refuse_to_match_the_client_with_their_own_project() {
        let error =
            TestHarness::<Project>::given(funded()).when(cmd(client(), t(3), accept(CLIENT))).events().unwrap_err();
        assert!(matches!(error, ProjectError::Invalid { field: "freelancerId", .. }));
    }

    // ---- StartMilestone -------------------------------------------------------------------

    #[test]
    fn it_should_start_the_project_with_its_first_milestone() {
        TestHarness::<Project>::given(matched_project())
            .when(cmd(freelancer(), t(4), start(M1)))
            .then([started(M1), project_started()]);
    }

    #[test]
    fn it_should_start_later_milestones_without_restarting_the_project() {
        TestHarness::<Project>::given(m1_in_progress()).when(cmd(freelancer(), t(4), start(M2))).then([started(M2)]);
    }

    #[test]
    fn it_should_let_the_client_start_a_milestone() {
        let events =
            TestHarness::<Project>::given(matched_project()).when(cmd(client(), t(4), start(M1))).events().unwrap();
        assert!(matches!(events[0], ProjectEvent::MilestoneStarted { started_by: CLIENT, .. }));
    }

    #[test]
    fn it_should_forbid_anyone_else_to_start_a_milestone() {
        for actor in [stranger(), as_(FREELANCER_2, Role::Freelancer), admin(), system()] {
            assert!(forbidden(
                TestHarness::<Project>::given(matched_project()).when(cmd(actor, t(4), start(M1))).events()
            ));
        }
    }

    #[test]
    fn it_should_not_start_an_unfunded_milestone() {
        let history = vec![
            created(),
            added(M1, 1, M1_AMOUNT, false),
            added(M2, 2, M2_AMOUNT, false),
            milestone_funded(M1, M1_AMOUNT, M1_AMOUNT, 0, ProjectStatus::Funded),
            matched(),
        ];
        TestHarness::<Project>::given(history)
            .when(cmd(freelancer(), t(4), start(M2)))
            .then_error(ProjectError::MilestoneNotFunded { milestone_id: M2 });
    }

    #[test]
    fn it_should_not_start_a_milestone_that_is_already_in_progress() {
        TestHarness::<Project>::given(m1_in_progress()).when(cmd(freelancer(), t(4), start(M1))).then_error(
            ProjectError::InvalidMilestoneStatus { milestone_id: M1, status: "in_progress".into(), action: "start" },
        );
    }

    #[test]
    fn it_should_restart_a_rejected_milestone_for_rework() {
        let mut history = m1_submitted();
        history.push(rejected(M1));
        TestHarness::<Project>::given(history).when(cmd(freelancer(), t(4), start(M1))).then([started(M1)]);
    }

    // ---- SubmitMilestone ------------------------------------------------------------------

    #[test]
    fn it_should_submit_deliverables_stamped_with_the_command_time() {
        TestHarness::<Project>::given(m1_in_progress()).when(cmd(freelancer(), t(5), submit(M1))).then([submitted(M1)]);
    }

    #[test]
    fn it_should_refuse_a_submission_without_deliverables() {
        let mut p = submit(M1);
        p.deliverables.clear();
        TestHarness::<Project>::given(m1_in_progress())
            .when(cmd(freelancer(), t(5), p))
            .then_error(invalid("deliverables", "at least one deliverable is required"));
    }

    #[test]
    fn it_should_forbid_anyone_but_the_matched_freelancer_to_submit() {
        for actor in [client(), as_(FREELANCER_2, Role::Freelancer), admin()] {
            assert!(forbidden(
                TestHarness::<Project>::given(m1_in_progress()).when(cmd(actor, t(5), submit(M1))).events()
            ));
        }
    }

    #[test]
    fn it_should_not_submit_a_milestone_that_is_not_in_progress() {
        TestHarness::<Project>::given(m1_in_progress()).when(cmd(freelancer(), t(5), submit(M2))).then_error(
            ProjectError::InvalidMilestoneStatus { milestone_id: M2, status: "pending".into(), action: "submit" },
        );
    }

    // ---- ApproveMilestone / RejectMilestone -----------------------------------------------

    #[test]
    fn it_should_approve_with_an_auto_release_time_48_hours_later() {
        TestHarness::<Project>::given(m1_submitted()).when(cmd(client(), t(10), approve(M1))).then([approved(M1)]);
    }

    #[test]
    fn it_should_forbid_a_freelancer_to_approve() {
        TestHarness::<Project>::given(m1_submitted())
            .when(cmd(freelancer(), t(10), approve(M1)))
            .then_error(ProjectError::Forbidden { reason: "only the project's client may approve a milestone" });
    }

    #[test]
    fn it_should_not_approve_a_milestone_that_was_not_submitted() {
        TestHarness::<Project>::given(m1_in_progress()).when(cmd(client(), t(10), approve(M1))).then_error(
            ProjectError::InvalidMilestoneStatus { milestone_id: M1, status: "in_progress".into(), action: "approve" },
        );
    }

    #[test]
    fn it_should_reject_a_submission_with_a_reason() {
        TestHarness::<Project>::given(m1_submitted())
            .when(cmd(client(), t(6), reject(M1, "missing pages")))
            .then([rejected(M1)]);
    }

    #[test]
    fn it_should_refuse_a_rejection_without_a_reason() {
        TestHarness::<Project>::given(m1_submitted())
            .when(cmd(client(), t(6), reject(M1, " ")))
            .then_error(invalid("reason", "a rejection needs a reason"));
    }

    #[test]
    fn it_should_forbid_a_freelancer_to_reject() {
        assert!(forbidden(
            TestHarness::<Project>::given(m1_submitted()).when(cmd(freelancer(), t(6), reject(M1, "x"))).events()
        ));
    }

    #[test]
    fn it_should_not_reject_a_milestone_that_was_not_submitted() {
        TestHarness::<Project>::given(m1_approved()).when(cmd(client(), t(11), reject(M1, "late change"))).then_error(
            ProjectError::InvalidMilestoneStatus { milestone_id: M1, status: "approved".into(), action: "reject" },
        );
    }

    // ---- ReleaseMilestonePayment ----------------------------------------------------------

    #[test]
    fn it_should_release_an_approved_milestone_net_of_the_platform_fee() {
        TestHarness::<Project>::given(m1_approved()).when(cmd(client(), t(11), release(M1))).then([
            ProjectEvent::MilestonePaymentReleased {
                project_id: P,
                milestone_id: M1,
                amount: 600,
                platform_fee: 60,
                net_amount: 540,
                escrowed_amount: 400,
                payment_id: pay_id("release", M1, 1),
                fee_payment_id: pay_id("platform_fee", M1, 2),
                released_by: CLIENT,
                at: t(11),
            },
        ]);
    }

    #[test]
    fn it_should_round_the_platform_fee_down() {
        // 333 at 15% is 49.95: the platform takes 49, the freelancer 284.
        let history = vec![
            created_with(333, 15),
            added(M1, 1, 333, false),
            project_funded(333, 333, vec![M1], 0, ProjectStatus::Funded),
            matched(),
            started(M1),
            project_started(),
            submitted(M1),
            approved(M1),
        ];
        let events = TestHarness::<Project>::given(history).when(cmd(client(), t(11), release(M1))).events().unwrap();
        assert!(matches!(
            events.as_slice(),
            [ProjectEvent::MilestonePaymentReleased {
                amount: 333,
                platform_fee: 49,
                net_amount: 284,
                escrowed_amount: 0,
                ..
            }]
        ));
        assert_eq!(platform_fee(99, 1), 0);
        assert_eq!(platform_fee(i64::MAX, 50), i64::MAX / 2);
    }

    #[test]
    fn it_should_not_release_before_auto_release_time_for_the_scheduler() {
        TestHarness::<Project>::given(m1_approved())
            .when(cmd(system(), t(57), release(M1)))
            .then_error(ProjectError::NotDueYet { auto_release_at: t(58) });
    }

    #[test]
    fn it_should_let_the_scheduler_release_once_due() {
        let events =
            TestHarness::<Project>::given(m1_approved()).when(cmd(system(), t(58), release(M1))).events().unwrap();
        assert!(
            matches!(events.as_slice(), [ProjectEvent::MilestonePaymentReleased { released_by, .. }] if *released_by == Uuid::nil())
        );
    }

    #[test]
    fn it_should_let_the_client_release_before_the_auto_release_time() {
        assert!(TestHarness::<Project>::given(m1_approved()).when(cmd(client(), t(11), release(M1))).events().is_ok());
    }

    #[test]
    fn it_should_forbid_the_freelancer_or_staff_to_release() {
        for actor in [freelancer(), admin(), moderator(), stranger()] {
            assert!(forbidden(
                TestHarness::<Project>::given(m1_approved()).when(cmd(actor, t(60), release(M1))).events()
            ));
        }
    }

    #[test]
    fn it_should_not_release_an_unapproved_milestone() {
        TestHarness::<Project>::given(m1_submitted()).when(cmd(client(), t(11), release(M1))).then_error(
            ProjectError::InvalidMilestoneStatus {
                milestone_id: M1,
                status: "submitted".into(),
                action: "release the payment of",
            },
        );
    }

    #[test]
    fn it_should_not_release_a_milestone_twice() {
        let mut history = m1_approved();
        let mut project = state(&history);
        let events = project.decide(&cmd(client(), t(11), release(M1))).unwrap();
        events.iter().for_each(|e| project.evolve(e));
        history.extend(events);
        TestHarness::<Project>::given(history).when(cmd(client(), t(12), release(M1))).then_error(
            ProjectError::InvalidMilestoneStatus {
                milestone_id: M1,
                status: "paid".into(),
                action: "release the payment of",
            },
        );
    }

    #[test]
    fn it_should_not_release_money_locked_by_a_project_dispute() {
        // The freelancer disputes the whole project: all 1000 are locked; M1 cannot leave.
        let mut history = m1_approved();
        history.push(dispute_opened(D1, None, freelancer(), BUDGET));
        TestHarness::<Project>::given(history)
            .when(cmd(client(), t(11), release(M1)))
            .then_error(ProjectError::InsufficientEscrow { needed: M1_AMOUNT, available: 0 });
    }

    // ---- OpenDispute ----------------------------------------------------------------------

    #[test]
    fn it_should_open_a_milestone_dispute_locking_its_amount() {
        TestHarness::<Project>::given(m1_in_progress())
            .when(cmd(client(), t(7), open(D1, Some(M2))))
            .then([dispute_opened(D1, Some(M2), client(), M2_AMOUNT)]);
        let project = state(&m2_disputed());
        assert_eq!(project.status, ProjectStatus::Disputed);
        assert_eq!(project.status_before_dispute, Some(ProjectStatus::InProgress));
        assert_eq!(project.milestones[&M2].status, MilestoneStatus::Disputed);
        assert_eq!(project.unlocked_escrow(), BUDGET - M2_AMOUNT);
    }

    #[test]
    fn it_should_lock_the_whole_unlocked_escrow_for_a_project_dispute() {
        let mut history = m2_disputed();
        // A second, project-wide dispute takes what the first one left unlocked.
        TestHarness::<Project>::given(history.clone())
            .when(cmd(freelancer(), t(7), open(D2, None)))
            .then([dispute_opened(D2, None, freelancer(), BUDGET - M2_AMOUNT)]);
        history.push(dispute_opened(D2, None, freelancer(), BUDGET - M2_AMOUNT));
        let project = state(&history);
        assert_eq!(project.unlocked_escrow(), 0);
        assert_eq!(project.status_before_dispute, Some(ProjectStatus::InProgress));
    }

    #[test]
    fn it_should_record_the_freelancer_as_the_initiator_role() {
        let events = TestHarness::<Project>::given(m1_in_progress())
            .when(cmd(freelancer(), t(7), open(D1, Some(M1))))
            .events()
            .unwrap();
        assert!(matches!(
            events.as_slice(),
            [ProjectEvent::DisputeOpened {
                initiator_id: FREELANCER,
                initiator_role: Role::Freelancer,
                locked_amount: M1_AMOUNT,
                ..
            }]
        ));
    }

    #[test]
    fn it_should_forbid_anyone_but_the_client_or_matched_freelancer_to_open_a_dispute() {
        for actor in [stranger(), as_(FREELANCER_2, Role::Freelancer), admin(), moderator(), system()] {
            assert!(forbidden(
                TestHarness::<Project>::given(m1_in_progress()).when(cmd(actor, t(7), open(D1, Some(M1)))).events()
            ));
        }
    }

    #[test]
    fn it_should_not_dispute_an_unfunded_milestone() {
        let history = vec![
            created(),
            added(M1, 1, M1_AMOUNT, false),
            added(M2, 2, M2_AMOUNT, false),
            milestone_funded(M1, M1_AMOUNT, M1_AMOUNT, 0, ProjectStatus::Funded),
        ];
        TestHarness::<Project>::given(history)
            .when(cmd(client(), t(7), open(D1, Some(M2))))
            .then_error(ProjectError::MilestoneNotFunded { milestone_id: M2 });
    }

    #[test]
    fn it_should_not_dispute_a_milestone_twice() {
        TestHarness::<Project>::given(m2_disputed()).when(cmd(freelancer(), t(8), open(D2, Some(M2)))).then_error(
            ProjectError::InvalidMilestoneStatus { milestone_id: M2, status: "disputed".into(), action: "dispute" },
        );
    }

    #[test]
    fn it_should_not_reuse_a_dispute_id() {
        TestHarness::<Project>::given(m2_disputed())
            .when(cmd(client(), t(8), open(D1, Some(M1))))
            .then_error(ProjectError::DisputeAlreadyExists { dispute_id: D1 });
    }

    #[test]
    fn it_should_not_dispute_a_paid_milestone() {
        let mut history = m1_approved();
        let mut project = state(&history);
        let events = project.decide(&cmd(client(), t(11), release(M1))).unwrap();
        events.iter().for_each(|e| project.evolve(e));
        history.extend(events);
        TestHarness::<Project>::given(history).when(cmd(client(), t(12), open(D1, Some(M1)))).then_error(
            ProjectError::InvalidMilestoneStatus { milestone_id: M1, status: "paid".into(), action: "dispute" },
        );
    }

    #[test]
    fn it_should_not_open_a_project_dispute_on_an_empty_escrow() {
        TestHarness::<Project>::given(with_milestones())
            .when(cmd(client(), t(7), open(D1, None)))
            .then_error(ProjectError::NothingInEscrow);
    }

    #[test]
    fn it_should_refuse_a_dispute_without_a_reason() {
        let mut p = open(D1, Some(M1));
        p.reason = String::new();
        TestHarness::<Project>::given(m1_in_progress())
            .when(cmd(client(), t(7), p))
            .then_error(invalid("reason", "a dispute needs a reason"));
    }

    // ---- AssignModerator ------------------------------------------------------------------

    #[test]
    fn it_should_let_an_admin_assign_a_moderator() {
        TestHarness::<Project>::given(m2_disputed())
            .when(cmd(admin(), t(8), assign(D1, MODERATOR)))
            .then([moderator_assigned(D1, MODERATOR)]);
        let project = state(&m2_disputed_under_review());
        assert_eq!(project.disputes[&D1].status, DisputeStatus::UnderReview);
    }

    #[test]
    fn it_should_let_an_admin_reassign_a_dispute_under_review() {
        TestHarness::<Project>::given(m2_disputed_under_review())
            .when(cmd(admin(), t(8), assign(D1, OTHER_MODERATOR)))
            .then([moderator_assigned(D1, OTHER_MODERATOR)]);
    }

    #[test]
    fn it_should_forbid_anyone_but_an_admin_to_assign_a_moderator() {
        for actor in [moderator(), client(), freelancer(), system()] {
            TestHarness::<Project>::given(m2_disputed())
                .when(cmd(actor, t(8), assign(D1, MODERATOR)))
                .then_error(ProjectError::Forbidden { reason: "only an admin may assign a moderator" });
        }
    }

    #[test]
    fn it_should_not_assign_a_moderator_to_an_unknown_dispute() {
        TestHarness::<Project>::given(m2_disputed())
            .when(cmd(admin(), t(8), assign(D2, MODERATOR)))
            .then_error(ProjectError::DisputeNotFound { dispute_id: D2 });
    }

    // ---- ResolveDispute -------------------------------------------------------------------

    #[test]
    fn it_should_refund_the_client_in_full_on_a_client_favor_decision() {
        let history = m2_disputed_under_review();
        TestHarness::<Project>::given(history.clone())
            .when(cmd(moderator(), t(9), resolve(D1, DisputeDecision::ClientFavor, None)))
            .then([ProjectEvent::DisputeResolved {
                project_id: P,
                dispute_id: D1,
                milestone_id: Some(M2),
                decision: DisputeDecision::ClientFavor,
                resolution_amount: None,
                notes: "ruled".into(),
                resolved_by: MODERATOR,
                released_amount: 0,
                refunded_amount: M2_AMOUNT,
                platform_fee: 0,
                net_released: 0,
                escrowed_amount: BUDGET - M2_AMOUNT,
                release_payment_id: None,
                refund_payment_id: Some(pay_id("refund", D1, 1)),
                fee_payment_id: None,
                milestone_status: Some(MilestoneStatus::Pending),
                project_status: ProjectStatus::InProgress,
                at: t(9),
            }]);
    }

    #[test]
    fn it_should_pay_the_freelancer_net_of_the_fee_on_a_freelancer_favor_decision() {
        let event = resolved_event(
            TestHarness::<Project>::given(m2_disputed_under_review())
                .when(cmd(moderator(), t(9), resolve(D1, DisputeDecision::FreelancerFavor, None)))
                .events(),
        );
        let ProjectEvent::DisputeResolved {
            released_amount,
            refunded_amount,
            platform_fee,
            net_released,
            release_payment_id,
            fee_payment_id,
            refund_payment_id,
            milestone_status,
            ..
        } = event
        else {
            panic!("not a resolution")
        };
        assert_eq!((released_amount, refunded_amount, platform_fee, net_released), (400, 0, 40, 360));
        assert_eq!(release_payment_id, Some(pay_id("release", D1, 1)));
        assert_eq!(fee_payment_id, Some(pay_id("platform_fee", D1, 2)));
        assert_eq!(refund_payment_id, None);
        assert_eq!(milestone_status, Some(MilestoneStatus::Paid));
    }

    #[test]
    fn it_should_refund_a_replacement_decision_in_full() {
        let event = resolved_event(
            TestHarness::<Project>::given(m2_disputed_under_review())
                .when(cmd(admin(), t(9), resolve(D1, DisputeDecision::Replacement, None)))
                .events(),
        );
        assert!(matches!(event, ProjectEvent::DisputeResolved { released_amount: 0, refunded_amount: M2_AMOUNT, .. }));
    }

    #[test]
    fn it_should_split_a_partial_resolution_so_refund_plus_release_equals_the_locked_amount() {
        for x in [0, 1, 99, 150, 399, 400] {
            let history = m2_disputed_under_review();
            let mut project = state(&history);
            let event =
                resolved_event(project.decide(&cmd(moderator(), t(9), resolve(D1, DisputeDecision::Partial, Some(x)))));
            let ProjectEvent::DisputeResolved {
                released_amount,
                refunded_amount,
                platform_fee,
                net_released,
                escrowed_amount,
                ..
            } = event.clone()
            else {
                panic!("not a resolution")
            };
            assert_eq!(released_amount, x);
            assert_eq!(refunded_amount + released_amount, M2_AMOUNT, "x = {x}");
            assert_eq!(platform_fee, x * i64::from(FEE) / 100);
            assert_eq!(net_released + platform_fee, released_amount);
            assert_eq!(escrowed_amount, BUDGET - M2_AMOUNT);
            project.evolve(&event);
            assert!(project.ledger().is_balanced(), "x = {x}: {:?}", project.ledger());
            let expected = if x > 0 { MilestoneStatus::Paid } else { MilestoneStatus::Pending };
            assert_eq!(project.milestones[&M2].status, expected);
        }
    }

    #[test]
    fn it_should_require_an_amount_for_a_partial_decision() {
        TestHarness::<Project>::given(m2_disputed_under_review())
            .when(cmd(moderator(), t(9), resolve(D1, DisputeDecision::Partial, None)))
            .then_error(invalid("resolutionAmount", "a partial decision needs the amount released"));
    }

    #[test]
    fn it_should_refuse_a_partial_amount_outside_the_locked_amount() {
        for x in [-1, M2_AMOUNT + 1] {
            TestHarness::<Project>::given(m2_disputed_under_review())
                .when(cmd(moderator(), t(9), resolve(D1, DisputeDecision::Partial, Some(x))))
                .then_error(ProjectError::AmountOutOfRange { amount: x, max: M2_AMOUNT });
        }
        assert_eq!(ProjectError::AmountOutOfRange { amount: -1, max: 0 }.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn it_should_refuse_an_amount_on_a_decision_that_is_not_partial() {
        TestHarness::<Project>::given(m2_disputed_under_review())
            .when(cmd(moderator(), t(9), resolve(D1, DisputeDecision::ClientFavor, Some(10))))
            .then_error(invalid("resolutionAmount", "only a partial decision takes an amount"));
    }

    #[test]
    fn it_should_not_resolve_a_dispute_twice() {
        let mut history = m2_disputed_under_review();
        let project = state(&history);
        history.push(resolved_event(project.decide(&cmd(
            moderator(),
            t(9),
            resolve(D1, DisputeDecision::ClientFavor, None),
        ))));
        TestHarness::<Project>::given(history.clone())
            .when(cmd(admin(), t(10), resolve(D1, DisputeDecision::FreelancerFavor, None)))
            .then_error(ProjectError::AlreadyResolved { dispute_id: D1 });
        // Nor reassign it.
        TestHarness::<Project>::given(history)
            .when(cmd(admin(), t(10), assign(D1, OTHER_MODERATOR)))
            .then_error(ProjectError::AlreadyResolved { dispute_id: D1 });
    }

    #[test]
    fn it_should_forbid_a_moderator_who_is_not_assigned_to_resolve() {
        for actor in [as_(OTHER_MODERATOR, Role::Moderator), client(), freelancer(), system()] {
            assert!(forbidden(
                TestHarness::<Project>::given(m2_disputed_under_review())
                    .when(cmd(actor, t(9), resolve(D1, DisputeDecision::ClientFavor, None)))
                    .events()
            ));
        }
        // Unassigned: no moderator may resolve it yet.
        assert!(forbidden(
            TestHarness::<Project>::given(m2_disputed())
                .when(cmd(moderator(), t(9), resolve(D1, DisputeDecision::ClientFavor, None)))
                .events()
        ));
    }

    #[test]
    fn it_should_let_any_admin_resolve() {
        let event = resolved_event(
            TestHarness::<Project>::given(m2_disputed())
                .when(cmd(admin(), t(9), resolve(D1, DisputeDecision::ClientFavor, None)))
                .events(),
        );
        assert!(matches!(event, ProjectEvent::DisputeResolved { resolved_by: ADMIN, .. }));
    }

    #[test]
    fn it_should_stay_disputed_while_another_dispute_is_open() {
        let mut history = m2_disputed();
        history.push(dispute_opened(D2, Some(M1), freelancer(), M1_AMOUNT));
        let mut project = state(&history);
        let first =
            resolved_event(project.decide(&cmd(admin(), t(9), resolve(D1, DisputeDecision::ClientFavor, None))));
        assert!(matches!(first, ProjectEvent::DisputeResolved { project_status: ProjectStatus::Disputed, .. }));
        project.evolve(&first);
        let second =
            resolved_event(project.decide(&cmd(admin(), t(9), resolve(D2, DisputeDecision::FreelancerFavor, None))));
        assert!(matches!(second, ProjectEvent::DisputeResolved { project_status: ProjectStatus::InProgress, .. }));
        project.evolve(&second);
        assert_eq!(project.status, ProjectStatus::InProgress);
        assert_eq!(project.status_before_dispute, None);
        assert_eq!(project.escrowed_amount, 0);
        assert!(project.ledger().is_balanced());
    }

    #[test]
    fn it_should_settle_a_project_dispute_and_return_the_refund_to_the_unfunded_budget() {
        let mut history = funded();
        history.push(dispute_opened(D1, None, client(), BUDGET));
        let mut project = state(&history);
        let event =
            resolved_event(project.decide(&cmd(admin(), t(9), resolve(D1, DisputeDecision::Partial, Some(300)))));
        assert!(matches!(
            event,
            ProjectEvent::DisputeResolved {
                milestone_id: None,
                released_amount: 300,
                refunded_amount: 700,
                milestone_status: None,
                project_status: ProjectStatus::Funded,
                escrowed_amount: 0,
                ..
            }
        ));
        project.evolve(&event);
        assert_eq!(project.funded_amount, 300);
        assert!(project.ledger().is_balanced());
        // The client may pay the refunded part in again.
        let refund = project.decide(&cmd(client(), t(10), fund_project())).unwrap();
        assert!(matches!(refund.as_slice(), [ProjectEvent::ProjectFunded { amount: 700, escrowed_amount: 700, .. }]));
    }

    // ---- UpdateIntakeForm -----------------------------------------------------------------

    #[test]
    fn it_should_update_the_intake_form_of_a_draft_and_its_budget() {
        let p = update_intake(2_000);
        TestHarness::<Project>::given(with_milestones()).when(cmd(client(), t(2), p.clone())).then([
            ProjectEvent::IntakeFormUpdated {
                project_id: P,
                intake_form: p.intake_form.clone(),
                total_amount: 2_000,
                at: t(2),
            },
        ]);
        let mut history = with_milestones();
        history.push(ProjectEvent::IntakeFormUpdated {
            project_id: P,
            intake_form: p.intake_form.clone(),
            total_amount: 2_000,
            at: t(2),
        });
        let project = state(&history);
        assert_eq!(project.total_amount, 2_000);
        assert_eq!(project.intake_form, p.intake_form);
        // The larger budget funds in full.
        let events = project.decide(&cmd(client(), t(3), fund_project())).unwrap();
        assert!(matches!(events.as_slice(), [ProjectEvent::ProjectFunded { amount: 2_000, .. }]));
    }

    #[test]
    fn it_should_refuse_an_intake_form_budget_below_the_milestones() {
        TestHarness::<Project>::given(with_milestones())
            .when(cmd(client(), t(2), update_intake(BUDGET - 1)))
            .then_error(ProjectError::BudgetExceeded { total: BUDGET, budget: BUDGET - 1 });
        // Exactly the milestones' sum is enough.
        assert!(TestHarness::<Project>::given(with_milestones())
            .when(cmd(client(), t(2), update_intake(BUDGET)))
            .events()
            .is_ok());
    }

    #[test]
    fn it_should_refuse_an_intake_form_without_a_title_or_a_positive_budget() {
        let mut p = update_intake(BUDGET);
        p.intake_form.title = " ".into();
        TestHarness::<Project>::given([created()])
            .when(cmd(client(), t(2), p))
            .then_error(invalid("intakeForm.title", "must not be empty"));
        for budget in [0, -1] {
            let error = TestHarness::<Project>::given([created()])
                .when(cmd(client(), t(2), update_intake(budget)))
                .events()
                .unwrap_err();
            assert!(matches!(error, ProjectError::Invalid { field: "intakeForm.budget", .. }), "{error}");
        }
    }

    #[test]
    fn it_should_forbid_anyone_but_the_client_to_update_the_intake_form() {
        for actor in [freelancer(), stranger(), admin(), moderator(), system()] {
            TestHarness::<Project>::given([created()])
                .when(cmd(actor, t(2), update_intake(BUDGET)))
                .then_error(ProjectError::Forbidden { reason: "only the project's client may update the intake form" });
        }
    }

    #[test]
    fn it_should_refuse_to_update_the_intake_form_once_the_draft_is_submitted() {
        let mut history = with_milestones();
        history.push(submitted_for_funding());
        TestHarness::<Project>::given(history).when(cmd(client(), t(3), update_intake(BUDGET))).then_error(
            ProjectError::InvalidStatus { status: "pending_funding".into(), action: "update the intake form" },
        );
        TestHarness::<Project>::given(funded())
            .when(cmd(client(), t(3), update_intake(BUDGET)))
            .then_error(ProjectError::InvalidStatus { status: "funded".into(), action: "update the intake form" });
    }

    // ---- SubmitProjectForFunding ----------------------------------------------------------

    #[test]
    fn it_should_submit_a_draft_with_milestones_for_funding() {
        TestHarness::<Project>::given(with_milestones())
            .when(cmd(client(), t(2), submit_for_funding()))
            .then([submitted_for_funding()]);
        let mut history = with_milestones();
        history.push(submitted_for_funding());
        assert_eq!(state(&history).status, ProjectStatus::PendingFunding);
    }

    #[test]
    fn it_should_refuse_to_submit_a_project_without_milestones_for_funding() {
        TestHarness::<Project>::given([created()])
            .when(cmd(client(), t(2), submit_for_funding()))
            .then_error(ProjectError::NoMilestones);
    }

    #[test]
    fn it_should_forbid_anyone_but_the_client_to_submit_for_funding() {
        for actor in [freelancer(), stranger(), admin(), system()] {
            assert!(forbidden(
                TestHarness::<Project>::given(with_milestones()).when(cmd(actor, t(2), submit_for_funding())).events()
            ));
        }
    }

    #[test]
    fn it_should_refuse_to_submit_a_project_for_funding_that_is_not_a_draft() {
        let mut history = with_milestones();
        history.push(submitted_for_funding());
        TestHarness::<Project>::given(history).when(cmd(client(), t(3), submit_for_funding())).then_error(
            ProjectError::InvalidStatus { status: "pending_funding".into(), action: "submit the project for funding" },
        );
        TestHarness::<Project>::given(funded()).when(cmd(client(), t(3), submit_for_funding())).then_error(
            ProjectError::InvalidStatus { status: "funded".into(), action: "submit the project for funding" },
        );
    }

    #[test]
    fn it_should_mark_a_project_pending_funding_funded_once_paid() {
        let mut history = with_milestones();
        history.push(submitted_for_funding());
        TestHarness::<Project>::given(history).when(cmd(client(), t(2), fund_project())).then([project_funded(
            BUDGET,
            BUDGET,
            vec![M1, M2],
            0,
            ProjectStatus::Funded,
        )]);
    }

    // ---- StartMatching --------------------------------------------------------------------

    #[test]
    fn it_should_start_matching_on_a_funded_project() {
        TestHarness::<Project>::given(funded()).when(cmd(client(), t(3), start_matching())).then([matching_started()]);
        TestHarness::<Project>::given(funded()).when(cmd(admin(), t(3), start_matching())).then([matching_started()]);
    }

    #[test]
    fn it_should_refuse_to_start_matching_on_a_project_that_is_not_funded() {
        TestHarness::<Project>::given(with_milestones())
            .when(cmd(client(), t(3), start_matching()))
            .then_error(ProjectError::InvalidStatus { status: "draft".into(), action: "start matching" });
        TestHarness::<Project>::given(matched_project())
            .when(cmd(client(), t(4), start_matching()))
            .then_error(ProjectError::InvalidStatus { status: "matched".into(), action: "start matching" });
        let mut history = funded();
        history.push(matching_started());
        TestHarness::<Project>::given(history)
            .when(cmd(admin(), t(4), start_matching()))
            .then_error(ProjectError::InvalidStatus { status: "matching".into(), action: "start matching" });
    }

    #[test]
    fn it_should_forbid_anyone_but_the_client_or_an_admin_to_start_matching() {
        for actor in [freelancer(), stranger(), moderator(), system()] {
            TestHarness::<Project>::given(funded()).when(cmd(actor, t(3), start_matching())).then_error(
                ProjectError::Forbidden { reason: "only the project's client or an admin may start matching" },
            );
        }
    }

    #[test]
    fn it_should_accept_a_match_while_matching() {
        let mut history = funded();
        history.push(matching_started());
        TestHarness::<Project>::given(history).when(cmd(client(), t(3), accept(FREELANCER))).then([matched()]);
    }

    // ---- CompleteProject ------------------------------------------------------------------

    #[test]
    fn it_should_complete_a_project_whose_milestones_are_all_paid() {
        let history = all_paid();
        TestHarness::<Project>::given(history.clone()).when(cmd(client(), t(40), complete())).then([
            ProjectEvent::ProjectCompleted {
                project_id: P,
                status: ProjectStatus::Completed,
                at: t(40),
                refunded_amount: 0,
                escrowed_amount: 0,
                refund_payment_id: None,
            },
        ]);
        // An admin may too; the fold records the completion time.
        let mut project = state(&history);
        let events = project.decide(&cmd(admin(), t(41), complete())).unwrap();
        events.iter().for_each(|e| project.evolve(e));
        assert_eq!(project.status, ProjectStatus::Completed);
        assert_eq!(project.completed_at, Some(t(41)));
        assert!(project.ledger().is_balanced());
    }

    #[test]
    fn it_should_refuse_to_complete_a_project_with_an_unpaid_milestone() {
        TestHarness::<Project>::given(m1_paid())
            .when(cmd(client(), t(40), complete()))
            .then_error(ProjectError::UnpaidMilestone { milestone_id: M2, status: "pending".into() });
        // Approved is not paid.
        TestHarness::<Project>::given(m1_approved())
            .when(cmd(client(), t(40), complete()))
            .then_error(ProjectError::UnpaidMilestone { milestone_id: M1, status: "approved".into() });
    }

    #[test]
    fn it_should_refuse_to_complete_a_project_without_milestones() {
        let history = vec![created(), project_funded(BUDGET, BUDGET, vec![], 0, ProjectStatus::Funded), matched()];
        TestHarness::<Project>::given(history)
            .when(cmd(client(), t(40), complete()))
            .then_error(ProjectError::NoMilestones);
    }

    #[test]
    fn it_should_refuse_to_complete_a_disputed_project() {
        // M1 paid, then the client disputes the rest of the escrow.
        let history = after(m1_paid(), vec![(client(), open(D1, None).into())]);
        TestHarness::<Project>::given(history)
            .when(cmd(client(), t(40), complete()))
            .then_error(ProjectError::InvalidStatus { status: "disputed".into(), action: "complete the project" });
    }

    #[test]
    fn it_should_refuse_to_complete_a_project_before_it_is_matched() {
        TestHarness::<Project>::given(funded())
            .when(cmd(client(), t(40), complete()))
            .then_error(ProjectError::InvalidStatus { status: "funded".into(), action: "complete the project" });
    }

    #[test]
    fn it_should_complete_a_matched_project_whose_milestones_were_paid_through_a_dispute() {
        // M1 = 1000 is the only milestone; a dispute rules it in the freelancer's favour.
        let history = after(
            vec![
                created(),
                added(M1, 1, BUDGET, false),
                project_funded(BUDGET, BUDGET, vec![M1], 0, ProjectStatus::Funded),
                matched(),
            ],
            vec![
                (client(), open(D1, Some(M1)).into()),
                (admin(), resolve(D1, DisputeDecision::FreelancerFavor, None).into()),
            ],
        );
        assert_eq!(state(&history).status, ProjectStatus::Matched);
        let events = TestHarness::<Project>::given(history).when(cmd(client(), t(40), complete())).events().unwrap();
        assert!(matches!(
            events.as_slice(),
            [ProjectEvent::ProjectCompleted { status: ProjectStatus::Completed, refunded_amount: 0, .. }]
        ));
    }

    #[test]
    fn it_should_refund_the_unclaimed_surplus_when_a_project_completes() {
        // Budget 1000 funded in full, one milestone of 600 paid: 400 no milestone claimed.
        let history = after(
            vec![
                created(),
                added(M1, 1, M1_AMOUNT, false),
                project_funded(BUDGET, BUDGET, vec![M1], 0, ProjectStatus::Funded),
                matched(),
                started(M1),
                project_started(),
                submitted(M1),
                approved(M1),
            ],
            vec![(client(), release(M1).into())],
        );
        let mut project = state(&history);
        let events = project.decide(&cmd(client(), t(40), complete())).unwrap();
        assert_eq!(
            events,
            vec![ProjectEvent::ProjectCompleted {
                project_id: P,
                status: ProjectStatus::Completed,
                at: t(40),
                refunded_amount: BUDGET - M1_AMOUNT,
                escrowed_amount: 0,
                refund_payment_id: Some(pay_id("refund", P, 3)),
            }]
        );
        events.iter().for_each(|e| project.evolve(e));
        assert_eq!(project.ledger(), Ledger { funded: 1000, escrowed: 0, released: 600, refunded: 400, fees: 60 });
        assert!(project.ledger().is_balanced());
    }

    #[test]
    fn it_should_forbid_anyone_but_the_client_or_an_admin_to_complete_a_project() {
        for actor in [freelancer(), stranger(), moderator(), system()] {
            TestHarness::<Project>::given(all_paid()).when(cmd(actor, t(40), complete())).then_error(
                ProjectError::Forbidden { reason: "only the project's client or an admin may complete the project" },
            );
        }
    }

    // ---- CancelProject --------------------------------------------------------------------

    #[test]
    fn it_should_refund_unreleased_escrow_when_a_project_is_cancelled() {
        TestHarness::<Project>::given(funded())
            .when(cmd(client(), t(30), cancel("plans changed")))
            .then([cancelled(BUDGET, 1, CLIENT)]);
        let mut history = funded();
        history.push(cancelled(BUDGET, 1, CLIENT));
        let project = state(&history);
        assert_eq!(project.status, ProjectStatus::Cancelled);
        assert_eq!(project.ledger(), Ledger { funded: 1000, escrowed: 0, released: 0, refunded: 1000, fees: 0 });
        assert!(project.ledger().is_balanced());
        assert_eq!(project.cancelled_at, Some(t(30)));
        assert_eq!(project.cancellation_reason.as_deref(), Some("plans changed"));
        // The milestones keep their statuses.
        assert_eq!(project.milestones[&M1].status, MilestoneStatus::Pending);
    }

    #[test]
    fn it_should_cancel_a_draft_without_a_refund() {
        TestHarness::<Project>::given(with_milestones())
            .when(cmd(client(), t(30), cancel("plans changed")))
            .then([cancelled(0, 0, CLIENT)]);
    }

    #[test]
    fn it_should_let_an_admin_cancel_a_project_in_progress_refunding_only_what_was_not_released() {
        // M1 released (600 out), 400 still escrowed; three payments recorded so far.
        let history = m1_paid();
        TestHarness::<Project>::given(history.clone())
            .when(cmd(admin(), t(30), cancel("plans changed")))
            .then([cancelled(M2_AMOUNT, 3, ADMIN)]);
        let mut history = history;
        history.push(cancelled(M2_AMOUNT, 3, ADMIN));
        let project = state(&history);
        assert_eq!(project.ledger(), Ledger { funded: 1000, escrowed: 0, released: 600, refunded: 400, fees: 60 });
        assert_eq!(project.milestones[&M1].status, MilestoneStatus::Paid);
    }

    #[test]
    fn it_should_refuse_a_client_cancellation_once_work_started() {
        TestHarness::<Project>::given(m1_in_progress())
            .when(cmd(client(), t(30), cancel("plans changed")))
            .then_error(ProjectError::InvalidStatus { status: "in_progress".into(), action: "cancel the project" });
    }

    #[test]
    fn it_should_let_the_client_cancel_until_work_starts() {
        let mut matching = funded();
        matching.push(matching_started());
        let mut pending = with_milestones();
        pending.push(submitted_for_funding());
        for history in [with_milestones(), pending, funded(), matching, matched_project()] {
            let status = state(&history).status;
            let events =
                TestHarness::<Project>::given(history).when(cmd(client(), t(30), cancel("x"))).events().unwrap();
            assert!(matches!(events.as_slice(), [ProjectEvent::ProjectCancelled { .. }]), "{status}");
        }
    }

    #[test]
    fn it_should_refuse_to_cancel_a_disputed_project() {
        for actor in [client(), admin()] {
            TestHarness::<Project>::given(m2_disputed())
                .when(cmd(actor, t(30), cancel("plans changed")))
                .then_error(ProjectError::InvalidStatus { status: "disputed".into(), action: "cancel the project" });
        }
    }

    #[test]
    fn it_should_refuse_a_cancellation_without_a_reason() {
        TestHarness::<Project>::given(funded())
            .when(cmd(client(), t(30), cancel("  ")))
            .then_error(invalid("reason", "a cancellation needs a reason"));
    }

    #[test]
    fn it_should_forbid_anyone_but_the_client_or_an_admin_to_cancel() {
        for actor in [freelancer(), stranger(), moderator(), system()] {
            TestHarness::<Project>::given(matched_project())
                .when(cmd(actor, t(30), cancel("x")))
                .then_error(ProjectError::Forbidden { reason: "only the project's client or an admin may cancel it" });
        }
    }

    fn every_command_but_create() -> Vec<ProjectAction> {
        vec![
            add_payload(M3, 1).into(),
            fund_project().into(),
            fund_ms(M1).into(),
            accept(FREELANCER_2).into(),
            start(M2).into(),
            submit(M2).into(),
            approve(M2).into(),
            reject(M2, "no").into(),
            release(M2).into(),
            open(D2, None).into(),
            assign(D1, MODERATOR).into(),
            resolve(D1, DisputeDecision::ClientFavor, None).into(),
            update_intake(BUDGET).into(),
            submit_for_funding().into(),
            start_matching().into(),
            complete().into(),
            cancel("again").into(),
        ]
    }

    #[test]
    fn it_should_refuse_every_command_on_a_cancelled_project() {
        let mut history = matched_project();
        history.push(cancelled(BUDGET, 1, CLIENT));
        for action in every_command_but_create() {
            let phrase = action.phrase();
            for actor in [client(), admin(), freelancer()] {
                TestHarness::<Project>::given(history.clone())
                    .when(ProjectCommand { actor, at: t(31), action: action.clone() })
                    .then_error(ProjectError::InvalidStatus { status: "cancelled".into(), action: phrase });
            }
        }
        TestHarness::<Project>::given(history)
            .when(cmd(client(), t(31), create_payload()))
            .then_error(ProjectError::AlreadyExists);
    }

    #[test]
    fn it_should_refuse_every_command_on_a_completed_project() {
        let history = after(all_paid(), vec![(client(), complete().into())]);
        for action in every_command_but_create() {
            let phrase = action.phrase();
            let error = TestHarness::<Project>::given(history.clone())
                .when(ProjectCommand { actor: admin(), at: t(50), action })
                .events()
                .unwrap_err();
            assert_eq!(error, ProjectError::InvalidStatus { status: "completed".into(), action: phrase });
            assert_eq!(error.to_string(), format!("cannot {phrase}: the project is completed"));
        }
    }

    #[test]
    fn it_should_store_the_new_status_events_with_camel_case_payloads() {
        let (event_type, payload) = encode_event(&cancelled(BUDGET, 1, CLIENT)).unwrap();
        assert_eq!(event_type, "project-cancelled");
        assert_eq!(payload["refundedAmount"], serde_json::json!(BUDGET));
        assert_eq!(payload["escrowedAmount"], serde_json::json!(0));
        assert_eq!(payload["refundPaymentId"], serde_json::json!(pay_id("refund", P, 1).to_string()));
        assert_eq!(payload["cancelledBy"], serde_json::json!(CLIENT.to_string()));
        assert_eq!(payload["status"], serde_json::json!("cancelled"));
        let (event_type, payload) = encode_event(&submitted_for_funding()).unwrap();
        assert_eq!(event_type, "project-submitted-for-funding");
        assert_eq!(payload["status"], serde_json::json!("pending_funding"));
        assert_eq!(encode_event(&matching_started()).unwrap().0, "matching-started");
        let updated =
            ProjectEvent::IntakeFormUpdated { project_id: P, intake_form: intake(5), total_amount: 5, at: t(1) };
        let (event_type, payload) = encode_event(&updated).unwrap();
        assert_eq!(event_type, "intake-form-updated");
        assert_eq!(payload["totalAmount"], serde_json::json!(5));
        assert_eq!(payload["intakeForm"]["budget"], serde_json::json!(5));
        // A completion stored with only its required fields reads with no refund.
        let completed: ProjectEvent = decode_event(
            "project-completed",
            &serde_json::json!({ "projectId": P, "status": "completed", "at": t(9) }),
        )
        .unwrap();
        assert_eq!(
            completed,
            ProjectEvent::ProjectCompleted {
                project_id: P,
                status: ProjectStatus::Completed,
                at: t(9),
                refunded_amount: 0,
                escrowed_amount: 0,
                refund_payment_id: None,
            }
        );
        // The new payloads read camelCase and refuse unknown fields.
        let c: CancelProject = serde_json::from_value(serde_json::json!({ "projectId": P, "reason": "r" })).unwrap();
        assert_eq!(c, CancelProject { project_id: P, reason: "r".into() });
        assert!(serde_json::from_value::<CompleteProject>(serde_json::json!({ "projectId": P, "x": 1 })).is_err());
        assert!(serde_json::from_value::<StartMatching>(serde_json::json!({ "projectId": P })).is_ok());
        assert!(serde_json::from_value::<SubmitProjectForFunding>(serde_json::json!({ "projectId": P })).is_ok());
        let u: UpdateIntakeForm = serde_json::from_value(serde_json::json!({
            "projectId": P,
            "intakeForm": {
                "title": "t", "description": "d", "category": "c", "requiredSkills": [],
                "budget": 10, "timeline": "1w", "deliverables": []
            }
        }))
        .unwrap();
        assert_eq!(u.intake_form.budget, 10);
    }

    #[test]
    fn it_should_name_every_action_in_kebab_case() {
        let names: Vec<&str> = every_command_but_create().iter().map(|a| a.name()).collect();
        assert_eq!(
            &names[12..],
            [
                "update-intake-form",
                "submit-project-for-funding",
                "start-matching",
                "complete-project",
                "cancel-project"
            ]
        );
        assert_eq!(ProjectAction::from(cancel("x")).project_id(), P);
        assert_eq!(Project::STATE_VERSION, 2);
    }

    // ---- cross-cutting ---------------------------------------------------------------------

    #[test]
    fn it_should_name_the_current_status_on_an_illegal_transition() {
        // Through `then_error`: the variant carries the current status ...
        TestHarness::<Project>::given(funded())
            .when(cmd(client(), t(5), start(M1)))
            .then_error(ProjectError::InvalidStatus { status: "funded".into(), action: "start a milestone" });

        // ... and the message a client reads names it.
        let error = TestHarness::<Project>::given(m2_disputed())
            .when(cmd(client(), t(9), add_payload(M3, 1)))
            .events()
            .unwrap_err();
        assert_eq!(error.to_string(), "cannot add a milestone: the project is disputed");
        assert_eq!(error.kind(), ErrorKind::Conflict);

        let error =
            TestHarness::<Project>::given(m2_disputed()).when(cmd(freelancer(), t(9), start(M2))).events().unwrap_err();
        assert_eq!(error.to_string(), "cannot start a milestone: the project is disputed");

        let error = TestHarness::<Project>::given(m1_in_progress())
            .when(cmd(client(), t(9), approve(M1)))
            .events()
            .unwrap_err();
        assert_eq!(error.to_string(), format!("cannot approve: milestone {M1} is in_progress"));
    }

    #[test]
    fn it_should_map_every_error_to_its_http_kind() {
        let cases = [
            (ProjectError::Forbidden { reason: "x" }, ErrorKind::Forbidden),
            (ProjectError::ProjectNotFound, ErrorKind::NotFound),
            (ProjectError::MilestoneNotFound { milestone_id: M1 }, ErrorKind::NotFound),
            (ProjectError::DisputeNotFound { dispute_id: D1 }, ErrorKind::NotFound),
            (ProjectError::AlreadyExists, ErrorKind::Conflict),
            (ProjectError::MilestoneAlreadyExists { milestone_id: M1 }, ErrorKind::Conflict),
            (ProjectError::DisputeAlreadyExists { dispute_id: D1 }, ErrorKind::Conflict),
            (ProjectError::InvalidStatus { status: "draft".into(), action: "x" }, ErrorKind::Conflict),
            (
                ProjectError::InvalidMilestoneStatus { milestone_id: M1, status: "paid".into(), action: "x" },
                ErrorKind::Conflict,
            ),
            (ProjectError::AlreadyFunded, ErrorKind::Conflict),
            (ProjectError::MilestoneAlreadyFunded { milestone_id: M1 }, ErrorKind::Conflict),
            (ProjectError::MilestoneNotFunded { milestone_id: M1 }, ErrorKind::Conflict),
            (ProjectError::AlreadyMatched { freelancer_id: FREELANCER }, ErrorKind::Conflict),
            (ProjectError::BudgetExceeded { total: 2, budget: 1 }, ErrorKind::Conflict),
            (invalid("title", "empty"), ErrorKind::Invalid),
            (ProjectError::AmountOutOfRange { amount: 5, max: 1 }, ErrorKind::Invalid),
            (ProjectError::AlreadyResolved { dispute_id: D1 }, ErrorKind::Conflict),
            (ProjectError::NotDueYet { auto_release_at: t(1) }, ErrorKind::Conflict),
            (ProjectError::InsufficientEscrow { needed: 2, available: 1 }, ErrorKind::Conflict),
            (ProjectError::NothingInEscrow, ErrorKind::Conflict),
            (ProjectError::NoMilestones, ErrorKind::Conflict),
            (ProjectError::UnpaidMilestone { milestone_id: M1, status: "approved".into() }, ErrorKind::Conflict),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
        assert_eq!(ErrorKind::Forbidden.http_status(), 403);
        assert_eq!(ErrorKind::NotFound.http_status(), 404);
        assert_eq!(ErrorKind::Conflict.http_status(), 409);
        assert_eq!(ErrorKind::Invalid.http_status(), 422);
    }

    #[test]
    fn it_should_store_events_under_kebab_case_types_with_camel_case_payloads() {
        let (event_type, payload) = encode_event(&created()).unwrap();
        assert_eq!(event_type, "project-created");
        assert_eq!(payload["clientId"], serde_json::json!(CLIENT.to_string()));
        assert_eq!(payload["totalAmount"], serde_json::json!(BUDGET));
        assert_eq!(payload["intakeForm"]["requiredSkills"], serde_json::json!(["html", "css"]));
        assert_eq!(payload["currency"], serde_json::json!("usd"));
        assert_eq!(payload["status"], serde_json::json!("draft"));

        let (event_type, payload) = encode_event(&m2_disputed()[7]).unwrap();
        assert_eq!(event_type, "dispute-opened");
        assert_eq!(payload["initiatorRole"], serde_json::json!("client"));
        assert_eq!(payload["disputeType"], serde_json::json!("milestone_quality"));
        assert_eq!(payload["lockedAmount"], serde_json::json!(M2_AMOUNT));

        let (event_type, _) = encode_event(&approved(M1)).unwrap();
        assert_eq!(event_type, "milestone-approved");
        assert_eq!(Project::STREAM_TYPE, "marketplace.project");
        assert_eq!(stream_id(P), format!("mkt-project-{P}"));
        assert_eq!(Project::stream_id(P), stream_id(P));
    }

    #[test]
    fn it_should_read_payloads_from_camel_case_json_and_refuse_unknown_fields() {
        let body = serde_json::json!({
            "projectId": P,
            "intakeForm": {
                "title": "t", "description": "d", "category": "c", "requiredSkills": [],
                "budget": 10, "timeline": "1w", "deliverables": []
            },
            "currency": "EUR",
            "platformFeePercent": 5
        });
        let p: CreateProject = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(p.currency.as_str(), "eur");
        assert_eq!(p.intake_form.additional_requirements, None);

        let mut extra = body;
        extra["clientId"] = serde_json::json!(CLIENT);
        assert!(serde_json::from_value::<CreateProject>(extra).is_err());

        let resolve: ResolveDispute = serde_json::from_value(serde_json::json!({
            "projectId": P, "disputeId": D1, "decision": "freelancer_favor", "notes": ""
        }))
        .unwrap();
        assert_eq!(resolve.decision, DisputeDecision::FreelancerFavor);
        assert_eq!(resolve.resolution_amount, None);

        let dispute: OpenDispute = serde_json::from_value(serde_json::json!({
            "projectId": P, "disputeId": D1, "disputeType": "freelancer_replacement",
            "reason": "r", "description": "d"
        }))
        .unwrap();
        assert_eq!(dispute.milestone_id, None);
        assert_eq!(dispute.dispute_type.as_str(), "freelancer_replacement");
    }

    #[test]
    fn it_should_derive_deterministic_and_distinct_payment_ids() {
        let history = m2_disputed_under_review();
        let project = state(&history);
        let a = project.decide(&cmd(moderator(), t(9), resolve(D1, DisputeDecision::Partial, Some(200)))).unwrap();
        let b = project.decide(&cmd(moderator(), t(9), resolve(D1, DisputeDecision::Partial, Some(200)))).unwrap();
        assert_eq!(a, b, "the same command on the same state decides the same events");
        let ProjectEvent::DisputeResolved { release_payment_id, fee_payment_id, refund_payment_id, .. } = &a[0] else {
            panic!("not a resolution")
        };
        let ids = [
            release_payment_id.unwrap(),
            fee_payment_id.unwrap(),
            refund_payment_id.unwrap(),
            pay_id("pre_funding", P, 0),
        ];
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn it_should_keep_the_ledger_balanced_through_a_full_lifecycle() {
        // Budget 1000 at 10%: M1 = 600, M2 = 300 (100 of the budget stays unallocated).
        struct Step {
            actor: Actor,
            action: ProjectAction,
            ledger: Ledger,
            status: ProjectStatus,
        }
        let l = |funded, escrowed, released, refunded, fees| Ledger { funded, escrowed, released, refunded, fees };
        let steps = vec![
            Step {
                actor: client(),
                action: create_payload().into(),
                ledger: l(0, 0, 0, 0, 0),
                status: ProjectStatus::Draft,
            },
            Step {
                actor: client(),
                action: add_payload(M1, 600).into(),
                ledger: l(0, 0, 0, 0, 0),
                status: ProjectStatus::Draft,
            },
            Step {
                actor: client(),
                action: add_payload(M2, 300).into(),
                ledger: l(0, 0, 0, 0, 0),
                status: ProjectStatus::Draft,
            },
            Step {
                actor: client(),
                action: fund_ms(M1).into(),
                ledger: l(600, 600, 0, 0, 0),
                status: ProjectStatus::Funded,
            },
            Step {
                actor: client(),
                action: fund_project().into(),
                ledger: l(1000, 1000, 0, 0, 0),
                status: ProjectStatus::Funded,
            },
            Step {
                actor: client(),
                action: accept(FREELANCER).into(),
                ledger: l(1000, 1000, 0, 0, 0),
                status: ProjectStatus::Matched,
            },
            Step {
                actor: freelancer(),
                action: start(M1).into(),
                ledger: l(1000, 1000, 0, 0, 0),
                status: ProjectStatus::InProgress,
            },
            Step {
                actor: freelancer(),
                action: submit(M1).into(),
                ledger: l(1000, 1000, 0, 0, 0),
                status: ProjectStatus::InProgress,
            },
            Step {
                actor: client(),
                action: approve(M1).into(),
                ledger: l(1000, 1000, 0, 0, 0),
                status: ProjectStatus::InProgress,
            },
            Step {
                actor: client(),
                action: release(M1).into(),
                ledger: l(1000, 400, 600, 0, 60),
                status: ProjectStatus::InProgress,
            },
            Step {
                actor: freelancer(),
                action: open(D1, Some(M2)).into(),
                ledger: l(1000, 400, 600, 0, 60),
                status: ProjectStatus::Disputed,
            },
            Step {
                actor: admin(),
                action: assign(D1, MODERATOR).into(),
                ledger: l(1000, 400, 600, 0, 60),
                status: ProjectStatus::Disputed,
            },
            Step {
                actor: moderator(),
                action: resolve(D1, DisputeDecision::Partial, Some(120)).into(),
                ledger: l(1000, 100, 720, 180, 72),
                status: ProjectStatus::InProgress,
            },
        ];
        let mut project = Project::default();
        let mut log = Vec::new();
        for (i, step) in steps.into_iter().enumerate() {
            let name = step.action.name();
            let events = project
                .decide(&cmd(step.actor, t(i as i64), step.action))
                .unwrap_or_else(|e| panic!("step {i} ({name}) refused: {e}"));
            for event in &events {
                project.evolve(event);
            }
            log.extend(events);
            let ledger = project.ledger();
            assert_eq!(ledger, step.ledger, "step {i} ({name})");
            assert!(ledger.is_balanced(), "step {i} ({name}): {ledger:?}");
            assert_eq!(project.escrowed_amount, ledger.escrowed);
            assert_eq!(project.status, step.status, "step {i} ({name})");
        }
        assert_eq!(project.ledger().net_released(), 648);
        assert_eq!(project.milestones[&M1].status, MilestoneStatus::Paid);
        assert_eq!(project.milestones[&M2].status, MilestoneStatus::Paid);
        assert_eq!(project.milestones_in_order().iter().map(|m| m.order).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(project.client_id(), Some(CLIENT));
        // The same history, replayed from its stored form, folds to the same state.
        let replayed: Vec<ProjectEvent> = log
            .iter()
            .map(|e| {
                let (event_type, payload) = encode_event(e).unwrap();
                decode_event(&event_type, &payload).unwrap()
            })
            .collect();
        assert_eq!(state(&replayed), project);
    }

    /// A small deterministic generator, so the property run is reproducible without a crate.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[(self.next() % items.len() as u64) as usize]
        }
        /// True about once in `n` draws.
        fn one_in(&mut self, n: u64) -> bool {
            self.next() % n < 1
        }
    }

    fn check_invariants(project: &Project, context: &str) {
        let ledger = project.ledger();
        assert!(ledger.is_balanced(), "{context}: {ledger:?}");
        assert!(project.escrowed_amount >= 0, "{context}: negative escrow");
        assert_eq!(project.escrowed_amount, ledger.escrowed, "{context}");
        assert!(project.locked_amount() <= project.escrowed_amount, "{context}: locks exceed escrow");
        assert!(ledger.fees <= ledger.released, "{context}");
        assert!(project.allocated_amount() <= project.total_amount, "{context}: over budget");
        assert!(project.funded_amount <= project.total_amount, "{context}: overfunded");
        assert!(project.funded_amount >= project.escrowed_amount, "{context}: escrow beyond the funded budget");
        for dispute in project.disputes.values() {
            if let Some(r) = &dispute.resolution {
                assert_eq!(r.released_amount + r.refunded_amount, dispute.locked_amount, "{context}");
            }
        }
        assert_eq!(project.status == ProjectStatus::Disputed, project.has_open_dispute(), "{context}");
        assert_eq!(project.total_amount, project.intake_form.budget, "{context}: budget and intake form disagree");
        if project.status.is_terminal() {
            // Closing a project empties its escrow and leaves no dispute behind.
            assert_eq!(project.escrowed_amount, 0, "{context}: escrow left in a closed project");
            assert!(!project.has_open_dispute(), "{context}");
        }
        if project.status == ProjectStatus::Completed {
            assert!(!project.milestones.is_empty(), "{context}");
            assert!(project.milestones.values().all(|m| m.status == MilestoneStatus::Paid), "{context}");
            assert!(project.completed_at.is_some(), "{context}");
        }
        if project.status == ProjectStatus::Cancelled {
            assert!(project.cancelled_at.is_some(), "{context}");
        }
    }

    #[test]
    fn it_should_keep_every_money_invariant_over_generated_command_sequences() {
        let everyone = [client(), freelancer(), admin(), moderator(), system(), stranger()];
        let milestones = [M1, M2, M3];
        let disputes = [D1, D2, Uuid::from_u128(0x203), Uuid::from_u128(0x204)];
        let decisions = [
            DisputeDecision::ClientFavor,
            DisputeDecision::FreelancerFavor,
            DisputeDecision::Partial,
            DisputeDecision::Replacement,
        ];
        let mut accepted = 0;
        let mut seen = std::collections::BTreeSet::new();
        let mut closed_runs = (0, 0);
        for seed in 0..100u64 {
            let mut rng = Lcg(seed);
            let mut project = Project::default();
            project.evolve(&created_with(1_000 + (seed as i64) * 37, (seed % 51) as u8));
            for step in 0..300 {
                let at = t(step);
                let m = rng.pick(&milestones);
                let d = rng.pick(&disputes);
                // Mostly the actor the rule expects, so sequences get far; sometimes anyone.
                let (action, expected): (ProjectAction, Actor) = match rng.next() % 18 {
                    0 => (add_payload(m, (rng.next() % 500) as i64).into(), client()),
                    1 => (fund_project().into(), client()),
                    2 => (fund_ms(m).into(), client()),
                    3 => (accept(FREELANCER).into(), client()),
                    4 => (start(m).into(), freelancer()),
                    5 => (submit(m).into(), freelancer()),
                    6 => (approve(m).into(), client()),
                    7 => (reject(m, "redo").into(), client()),
                    8 => (release(m).into(), rng.pick(&[client(), system()])),
                    9 => {
                        let milestone = if rng.one_in(4) { None } else { Some(m) };
                        (open(d, milestone).into(), rng.pick(&[client(), freelancer()]))
                    }
                    10 => (assign(d, MODERATOR).into(), admin()),
                    11 | 12 => {
                        let decision = rng.pick(&decisions);
                        let amount = (decision == DisputeDecision::Partial).then(|| (rng.next() % 700) as i64);
                        (resolve(d, decision, amount).into(), rng.pick(&[moderator(), admin()]))
                    }
                    13 => (update_intake((rng.next() % 2_000) as i64).into(), client()),
                    14 => (submit_for_funding().into(), client()),
                    15 => (start_matching().into(), rng.pick(&[client(), admin()])),
                    16 => (complete().into(), rng.pick(&[client(), admin()])),
                    // Cancelling ends a run, so it is tried rarely; otherwise one more completion.
                    17 if rng.one_in(20) => (cancel("called off").into(), rng.pick(&[client(), admin()])),
                    17 => (complete().into(), rng.pick(&[client(), admin()])),
                    _ => unreachable!(),
                };
                let actor = if rng.one_in(8) { rng.pick(&everyone) } else { expected };
                let context = format!("seed {seed} step {step} {} by {:?}", action.name(), actor.role);
                let before = project.clone();
                let closed = project.status;
                match project.decide(&cmd(actor, at, action)) {
                    Ok(events) => {
                        assert!(!closed.is_terminal(), "{context}: a {closed} project accepted a command");
                        accepted += 1;
                        for event in &events {
                            let (event_type, payload) = encode_event(event).unwrap();
                            let back: ProjectEvent = decode_event(&event_type, &payload).unwrap();
                            assert_eq!(&back, event, "{context}");
                            seen.insert(event_type);
                            project.evolve(event);
                        }
                    }
                    Err(error) => {
                        // A refusal has an HTTP class and, decide being pure, changed nothing.
                        let _ = error.kind();
                        assert_eq!(project, before, "{context}");
                        if closed.is_terminal() {
                            assert!(
                                matches!(&error, ProjectError::InvalidStatus { status, .. } if status == closed.as_str()),
                                "{context}: {error}"
                            );
                        }
                    }
                }
                check_invariants(&project, &context);
            }
            match project.status {
                ProjectStatus::Completed => closed_runs.0 += 1,
                ProjectStatus::Cancelled => closed_runs.1 += 1,
                _ => {}
            }
        }
        assert!(accepted > 1_000, "the generator should exercise the rules, accepted {accepted}");
        // Every event type but the creation (folded directly above) came out of a decision.
        assert_eq!(seen.len(), 18, "{seen:?}");
        assert!(closed_runs.0 > 0 && closed_runs.1 > 0, "completed and cancelled runs: {closed_runs:?}");
    }

    // ---- StartProject, dispute evidence, escalation and closing -------------------------------

    fn evidence_msg(message_id: Option<Uuid>) -> AddDisputeEvidence {
        AddDisputeEvidence {
            project_id: P,
            dispute_id: D1,
            evidence: Evidence {
                evidence_type: EvidenceType::Message,
                message_id,
                file_id: None,
                milestone_id: None,
                description: Some("the client agreed here".into()),
            },
        }
    }
    fn escalate() -> EscalateDispute {
        EscalateDispute { project_id: P, dispute_id: D1, reason: "no answer from the moderator".into() }
    }
    fn escalated(by: Uuid) -> ProjectEvent {
        ProjectEvent::DisputeEscalated {
            project_id: P,
            dispute_id: D1,
            reason: "no answer from the moderator".into(),
            escalated_by: by,
            status: DisputeStatus::Escalated,
            at: t(9),
        }
    }
    fn close_d1() -> CloseDispute {
        CloseDispute { project_id: P, dispute_id: D1 }
    }
    /// M2's dispute under review, resolved by the assigned moderator in the client's favour.
    fn d1_resolved() -> Vec<ProjectEvent> {
        after(
            m2_disputed_under_review(),
            vec![(as_(MODERATOR, Role::Moderator), resolve(D1, DisputeDecision::ClientFavor, None).into())],
        )
    }

    #[test]
    fn it_should_start_a_matched_project() {
        TestHarness::<Project>::given(matched_project())
            .when(cmd(client(), t(4), StartProject { project_id: P }))
            .then([project_started()]);
    }

    #[test]
    fn it_should_forbid_anyone_but_the_parties_to_start_the_project() {
        for actor in [stranger(), admin(), moderator()] {
            assert!(forbidden(
                TestHarness::<Project>::given(matched_project())
                    .when(cmd(actor, t(4), StartProject { project_id: P }))
                    .events()
            ));
        }
    }

    #[test]
    fn it_should_not_start_a_project_that_is_not_matched() {
        TestHarness::<Project>::given(funded())
            .when(cmd(client(), t(4), StartProject { project_id: P }))
            .then_error(ProjectError::InvalidStatus { status: "funded".into(), action: "start the project" });
        TestHarness::<Project>::given(m1_in_progress())
            .when(cmd(client(), t(5), StartProject { project_id: P }))
            .then_error(ProjectError::InvalidStatus { status: "in_progress".into(), action: "start the project" });
    }

    #[test]
    fn it_should_add_evidence_to_an_unsettled_dispute() {
        let message = Uuid::from_u128(0x401);
        let p = evidence_msg(Some(message));
        TestHarness::<Project>::given(m2_disputed()).when(cmd(freelancer(), t(8), p.clone())).then([
            ProjectEvent::DisputeEvidenceAdded {
                project_id: P,
                dispute_id: D1,
                evidence: p.evidence,
                added_by: FREELANCER,
                at: t(8),
            },
        ]);
    }

    #[test]
    fn it_should_forbid_a_stranger_or_an_unassigned_moderator_to_add_evidence() {
        for actor in [stranger(), as_(OTHER_MODERATOR, Role::Moderator)] {
            assert!(forbidden(
                TestHarness::<Project>::given(m2_disputed_under_review())
                    .when(cmd(actor, t(8), evidence_msg(Some(Uuid::from_u128(0x401)))))
                    .events()
            ));
        }
    }

    #[test]
    fn it_should_refuse_evidence_that_does_not_name_what_it_points_at() {
        let error = TestHarness::<Project>::given(m2_disputed())
            .when(cmd(client(), t(8), evidence_msg(None)))
            .events()
            .unwrap_err();
        assert!(matches!(error, ProjectError::Invalid { field: "evidence.messageId", .. }));
    }

    #[test]
    fn it_should_not_add_evidence_to_a_resolved_dispute() {
        TestHarness::<Project>::given(d1_resolved())
            .when(cmd(client(), t(30), evidence_msg(Some(Uuid::from_u128(0x401)))))
            .then_error(ProjectError::InvalidDisputeStatus {
                dispute_id: D1,
                status: "resolved".into(),
                action: "add evidence",
            });
    }

    #[test]
    fn it_should_escalate_an_open_dispute() {
        TestHarness::<Project>::given(m2_disputed()).when(cmd(client(), t(9), escalate())).then([escalated(CLIENT)]);
    }

    #[test]
    fn it_should_forbid_a_stranger_or_an_admin_to_escalate() {
        for actor in [stranger(), admin()] {
            assert!(forbidden(
                TestHarness::<Project>::given(m2_disputed()).when(cmd(actor, t(9), escalate())).events()
            ));
        }
    }

    #[test]
    fn it_should_not_escalate_a_dispute_twice() {
        let mut history = m2_disputed();
        history.push(escalated(CLIENT));
        TestHarness::<Project>::given(history).when(cmd(freelancer(), t(10), escalate())).then_error(
            ProjectError::InvalidDisputeStatus { dispute_id: D1, status: "escalated".into(), action: "escalate" },
        );
    }

    #[test]
    fn it_should_let_only_an_admin_resolve_an_escalated_dispute() {
        let mut history = m2_disputed_under_review();
        history.push(escalated(MODERATOR));
        assert!(forbidden(
            TestHarness::<Project>::given(history.clone())
                .when(cmd(as_(MODERATOR, Role::Moderator), t(10), resolve(D1, DisputeDecision::ClientFavor, None)))
                .events()
        ));
        let events = TestHarness::<Project>::given(history)
            .when(cmd(admin(), t(10), resolve(D1, DisputeDecision::ClientFavor, None)))
            .events()
            .unwrap();
        assert!(matches!(events[0], ProjectEvent::DisputeResolved { refunded_amount: M2_AMOUNT, .. }));
    }

    #[test]
    fn it_should_keep_an_escalated_dispute_escalated_when_a_moderator_is_assigned() {
        let mut history = m2_disputed();
        history.extend([escalated(CLIENT), moderator_assigned(D1, MODERATOR)]);
        assert_eq!(state(&history).dispute(D1).unwrap().status, DisputeStatus::Escalated);
    }

    #[test]
    fn it_should_close_a_resolved_dispute() {
        TestHarness::<Project>::given(d1_resolved())
            .when(cmd(as_(MODERATOR, Role::Moderator), t(30), close_d1()))
            .then([ProjectEvent::DisputeClosed {
                project_id: P,
                dispute_id: D1,
                closed_by: MODERATOR,
                status: DisputeStatus::Closed,
                at: t(30),
            }]);
    }

    #[test]
    fn it_should_not_close_a_dispute_that_is_not_resolved() {
        TestHarness::<Project>::given(m2_disputed_under_review()).when(cmd(admin(), t(9), close_d1())).then_error(
            ProjectError::InvalidDisputeStatus { dispute_id: D1, status: "under_review".into(), action: "close" },
        );
    }

    #[test]
    fn it_should_forbid_the_parties_to_close_a_dispute() {
        for actor in [client(), freelancer(), as_(OTHER_MODERATOR, Role::Moderator)] {
            assert!(forbidden(
                TestHarness::<Project>::given(d1_resolved()).when(cmd(actor, t(30), close_d1())).events()
            ));
        }
    }

    #[test]
    fn it_should_let_the_system_accept_a_match_proposal() {
        let events =
            TestHarness::<Project>::given(funded()).when(cmd(system(), t(3), accept(FREELANCER))).events().unwrap();
        assert!(matches!(
            events[..],
            [ProjectEvent::FreelancerMatched { freelancer_id: FREELANCER, match_id: Some(MATCH), .. }]
        ));
    }

    #[test]
    fn it_should_forbid_the_system_to_match_without_a_proposal() {
        let direct = AcceptMatch { project_id: P, freelancer_id: FREELANCER, match_id: None };
        assert!(forbidden(TestHarness::<Project>::given(funded()).when(cmd(system(), t(3), direct)).events()));
    }

    #[test]
    fn it_should_accept_the_same_proposal_again_without_new_events() {
        TestHarness::<Project>::given(matched_project()).when(cmd(system(), t(4), accept(FREELANCER))).then([]);
    }
}
