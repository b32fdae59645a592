//! The marketplace `Vetting` aggregate: one freelancer's vetting (stream
//! `mkt-vetting-{freelancerId}`, stream type `marketplace.vetting`).
//!
//! A vetting collects three kinds of results — identity verification (from the provider's
//! webhook), English proficiency and skill assessments — and ends in an admin's review.
//!
//! # Results are immutable
//!
//! A recorded result is never changed. A correction is a new result naming the one it corrects
//! (`corrects`); the history keeps both. The *current view* shows, per kind (and per skill), the
//! latest result, where a correction takes the place of the result it corrects: if a skill was
//! assessed twice (r1, then r2) and r1 is later corrected (r3), the current result of that skill
//! is still r2, the newer attempt.
//!
//! # Scores
//!
//! Every score is integer *basis points* (0..=10 000 = 0..=100 %) so no float is ever stored or
//! compared; [`score_percent`] turns one into a percentage for display.
//!
//! * English proficiency = grammar 30 % + comprehension 30 % + written response 40 %. With
//!   scores 0..=100 and weights adding up to 100 this is exact in basis points
//!   (`grammar*30 + comprehension*30 + written*40`).
//! * Overall = identity 20 % + English 30 % + skills 50 %, where
//!   * identity = the current identity result's score if its status is `verified` (a verified
//!     result without a provider score counts 100), otherwise 0;
//!   * English = the current English result's score;
//!   * skills = the average of the current score of every assessed skill;
//!   * a missing part counts 0.
//!
//!   It is computed in one exact rational step and rounded half up to whole basis points.
//!
//! # Status
//!
//! `pending` (started) → `in_progress` (first result) → `approved` | `flagged` | `rejected` (an
//! admin's review). A flagged vetting may be reviewed again; an approved or rejected one may not.
//! Results recorded after a review (a new skill, a correction) update the scores but keep the
//! status.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::project::ErrorKind;
use super::{Actor, Role};
use crate::kernel::{Aggregate, DomainEvent};

/// The stream type of vettings.
pub const STREAM_TYPE: &str = "marketplace.vetting";

/// Weight of the identity verification in the overall score, in percent.
pub const IDENTITY_WEIGHT: i64 = 20;
/// Weight of the English proficiency in the overall score, in percent.
pub const ENGLISH_WEIGHT: i64 = 30;
/// Weight of the skill assessments in the overall score, in percent.
pub const SKILLS_WEIGHT: i64 = 50;

/// Weight of the grammar score in the English proficiency score, in percent.
pub const GRAMMAR_WEIGHT: i64 = 30;
/// Weight of the comprehension score in the English proficiency score, in percent.
pub const COMPREHENSION_WEIGHT: i64 = 30;
/// Weight of the written response score in the English proficiency score, in percent.
pub const WRITTEN_RESPONSE_WEIGHT: i64 = 40;

/// The highest score of a single test, and the highest percentage.
pub const MAX_SCORE: u8 = 100;
/// 100 % in basis points.
pub const MAX_BASIS_POINTS: i64 = 10_000;

/// The stream of one freelancer's vetting.
pub fn stream_id(freelancer_id: Uuid) -> String {
    format!("mkt-vetting-{freelancer_id}")
}

/// Basis points as a percentage (`8_125` → `81.25`), for display only.
pub fn score_percent(basis_points: i64) -> f64 {
    basis_points as f64 / 100.0
}

/// The English proficiency score in basis points: grammar 30 %, comprehension 30 %, written
/// response 40 % (exact: no rounding needed).
pub fn english_score_bp(grammar: u8, comprehension: u8, written_response: u8) -> i64 {
    i64::from(grammar) * GRAMMAR_WEIGHT
        + i64::from(comprehension) * COMPREHENSION_WEIGHT
        + i64::from(written_response) * WRITTEN_RESPONSE_WEIGHT
}

/// The overall vetting score in basis points: identity 20 %, English 30 %, skills 50 %.
///
/// `identity_bp` and `english_bp` are 0..=10 000; `skill_scores` are the current scores
/// (0..=100) of every assessed skill, averaged. A missing part is 0 (no skills: the skills part
/// is 0). Computed as one fraction and rounded half up, so there is a single rounding.
pub fn overall_score_bp(identity_bp: i64, english_bp: i64, skill_scores: &[u8]) -> i64 {
    let n = skill_scores.len().max(1) as i64;
    let skills_sum_bp: i64 = skill_scores.iter().map(|&s| i64::from(s) * 100).sum();
    let numerator = IDENTITY_WEIGHT * identity_bp * n + ENGLISH_WEIGHT * english_bp * n + SKILLS_WEIGHT * skills_sum_bp;
    let denominator = 100 * n;
    (numerator + denominator / 2) / denominator
}

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/// Where a vetting is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VettingStatus {
    #[default]
    Pending,
    InProgress,
    Approved,
    Flagged,
    Rejected,
}

impl VettingStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            VettingStatus::Pending => "pending",
            VettingStatus::InProgress => "in_progress",
            VettingStatus::Approved => "approved",
            VettingStatus::Flagged => "flagged",
            VettingStatus::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for VettingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity verification provider.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityProvider {
    SmileIdentity,
    Dojah,
}

/// The provider's verdict on an identity.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStatus {
    Pending,
    Verified,
    Failed,
    Rejected,
}

/// How a skill was assessed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssessmentType {
    Mcq,
    Coding,
    Portfolio,
}

/// An admin's decision on a vetting.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Approve,
    Flag,
    Reject,
}

impl ReviewDecision {
    /// The status the decision leads to.
    pub fn status(&self) -> VettingStatus {
        match self {
            ReviewDecision::Approve => VettingStatus::Approved,
            ReviewDecision::Flag => VettingStatus::Flagged,
            ReviewDecision::Reject => VettingStatus::Rejected,
        }
    }
}

/// The three kinds of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultKind {
    Identity,
    English,
    Skill,
}

impl ResultKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ResultKind::Identity => "identity",
            ResultKind::English => "english",
            ResultKind::Skill => "skill",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands (the payloads double as HTTP bodies)
// ---------------------------------------------------------------------------------------------

/// `start-vetting`: the freelancer themself or an admin, once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartVetting {
    pub freelancer_id: Uuid,
}

/// `record-identity-verification`: the provider's webhook (system) or an admin.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordIdentityVerification {
    pub freelancer_id: Uuid,
    pub result_id: Uuid,
    pub provider: IdentityProvider,
    pub status: IdentityStatus,
    #[serde(default)]
    pub document_type: Option<String>,
    #[serde(default)]
    pub document_number: Option<String>,
    #[serde(default)]
    pub liveness_check: Option<bool>,
    /// 0..=100.
    #[serde(default)]
    pub score: Option<u8>,
    /// The earlier identity result this one corrects.
    #[serde(default)]
    pub corrects: Option<Uuid>,
}

/// `record-english-proficiency`: the system or an admin.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordEnglishProficiency {
    pub freelancer_id: Uuid,
    pub result_id: Uuid,
    pub grammar_score: u8,
    pub comprehension_score: u8,
    pub written_response_score: u8,
    /// The earlier English result this one corrects.
    #[serde(default)]
    pub corrects: Option<Uuid>,
}

/// `record-skill-assessment`: the system or an admin.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordSkillAssessment {
    pub freelancer_id: Uuid,
    pub result_id: Uuid,
    pub skill_id: String,
    pub skill_name: String,
    pub assessment_type: AssessmentType,
    /// 0..=100.
    pub score: u8,
    /// Assessment-specific data, kept as given.
    #[serde(default)]
    pub details: Option<Value>,
    /// The earlier assessment of the same skill this one corrects.
    #[serde(default)]
    pub corrects: Option<Uuid>,
}

/// `review-vetting`: an admin, while the vetting is in progress or flagged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewVetting {
    pub freelancer_id: Uuid,
    pub decision: ReviewDecision,
    #[serde(default)]
    pub notes: Option<String>,
}

/// A command to a vetting. `actor` comes from the session (or the webhook / scheduler); `at`
/// is the handler's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct VettingCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: VettingAction,
}

impl VettingCommand {
    /// The stream the command goes to.
    pub fn stream_id(&self) -> String {
        stream_id(self.action.freelancer_id())
    }
}

/// Every action on a vetting, one variant per payload.
#[derive(Debug, Clone, PartialEq)]
pub enum VettingAction {
    StartVetting(StartVetting),
    RecordIdentityVerification(RecordIdentityVerification),
    RecordEnglishProficiency(RecordEnglishProficiency),
    RecordSkillAssessment(RecordSkillAssessment),
    ReviewVetting(ReviewVetting),
}

macro_rules! vetting_actions {
    ($($variant:ident => $name:literal),* $(,)?) => {
        $(
            impl From<$variant> for VettingAction {
                fn from(payload: $variant) -> Self {
                    VettingAction::$variant(payload)
                }
            }
        )*

        impl VettingAction {
            /// The freelancer (and so the stream) the action addresses.
            pub fn freelancer_id(&self) -> Uuid {
                match self {
                    $(VettingAction::$variant(p) => p.freelancer_id,)*
                }
            }

            /// A stable kebab-case name, for logs and metrics.
            pub fn name(&self) -> &'static str {
                match self {
                    $(VettingAction::$variant(_) => $name,)*
                }
            }
        }
    };
}

vetting_actions! {
    StartVetting => "start-vetting",
    RecordIdentityVerification => "record-identity-verification",
    RecordEnglishProficiency => "record-english-proficiency",
    RecordSkillAssessment => "record-skill-assessment",
    ReviewVetting => "review-vetting",
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What happened to a vetting. Every `*-recorded` event is one immutable result and carries the
/// vetting's new overall score (basis points) and status, so the `vettingResults` projector
/// never reads state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum VettingEvent {
    #[serde(rename_all = "camelCase")]
    VettingStarted {
        freelancer_id: Uuid,
        /// Always `pending`.
        status: VettingStatus,
        started_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    IdentityVerificationRecorded {
        freelancer_id: Uuid,
        result_id: Uuid,
        provider: IdentityProvider,
        /// The provider's verdict.
        status: IdentityStatus,
        document_type: Option<String>,
        document_number: Option<String>,
        liveness_check: Option<bool>,
        score: Option<u8>,
        corrects: Option<Uuid>,
        /// Basis points, after this result.
        overall_score: i64,
        vetting_status: VettingStatus,
        recorded_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    EnglishProficiencyRecorded {
        freelancer_id: Uuid,
        result_id: Uuid,
        grammar_score: u8,
        comprehension_score: u8,
        written_response_score: u8,
        /// The weighted English score (30/30/40) in basis points.
        proficiency_score: i64,
        corrects: Option<Uuid>,
        overall_score: i64,
        vetting_status: VettingStatus,
        recorded_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    SkillAssessmentRecorded {
        freelancer_id: Uuid,
        result_id: Uuid,
        skill_id: String,
        skill_name: String,
        assessment_type: AssessmentType,
        score: u8,
        details: Option<Value>,
        corrects: Option<Uuid>,
        overall_score: i64,
        vetting_status: VettingStatus,
        recorded_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    VettingReviewed {
        freelancer_id: Uuid,
        decision: ReviewDecision,
        /// The status the decision led to.
        status: VettingStatus,
        notes: Option<String>,
        reviewed_by: Uuid,
        overall_score: i64,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for VettingEvent {}

impl VettingEvent {
    /// The freelancer the event belongs to.
    pub fn freelancer_id(&self) -> Uuid {
        match self {
            VettingEvent::VettingStarted { freelancer_id, .. }
            | VettingEvent::IdentityVerificationRecorded { freelancer_id, .. }
            | VettingEvent::EnglishProficiencyRecorded { freelancer_id, .. }
            | VettingEvent::SkillAssessmentRecorded { freelancer_id, .. }
            | VettingEvent::VettingReviewed { freelancer_id, .. } => *freelancer_id,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a vetting command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VettingError {
    #[error("only the freelancer themself or an admin may start a vetting")]
    NotYourVetting,
    #[error("only the system (the provider's webhook) or an admin may record a result")]
    OnlySystemOrAdminRecord,
    #[error("only an admin may review a vetting")]
    OnlyAdminReviews,
    #[error("the freelancer's vetting has not been started")]
    NotStarted,
    #[error("result {result_id} to correct does not exist among the {kind} results")]
    CorrectedResultNotFound { result_id: Uuid, kind: &'static str },
    #[error("the vetting has already been started")]
    AlreadyStarted,
    #[error("result {result_id} has already been recorded")]
    ResultAlreadyRecorded { result_id: Uuid },
    #[error("cannot review the vetting: it is {status}")]
    CannotReview { status: VettingStatus },
    #[error("the identity must be verified before the vetting is approved")]
    IdentityNotVerified,
    #[error("{field} must be between 0 and 100, got {score}")]
    ScoreOutOfRange { field: &'static str, score: u8 },
    #[error("a skill id and a skill name are required")]
    SkillRequired,
    #[error("a correction must be about the same skill ({expected}), got {actual}")]
    CorrectionSkillMismatch { expected: String, actual: String },
}

impl VettingError {
    /// The HTTP class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        use VettingError::*;
        match self {
            NotYourVetting | OnlySystemOrAdminRecord | OnlyAdminReviews => ErrorKind::Forbidden,
            NotStarted | CorrectedResultNotFound { .. } => ErrorKind::NotFound,
            AlreadyStarted | ResultAlreadyRecorded { .. } | CannotReview { .. } | IdentityNotVerified => {
                ErrorKind::Conflict
            }
            ScoreOutOfRange { .. } | SkillRequired | CorrectionSkillMismatch { .. } => ErrorKind::Invalid,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// A recorded identity verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityResult {
    pub result_id: Uuid,
    pub provider: IdentityProvider,
    pub status: IdentityStatus,
    pub document_type: Option<String>,
    pub document_number: Option<String>,
    pub liveness_check: Option<bool>,
    pub score: Option<u8>,
    pub corrects: Option<Uuid>,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
}

impl IdentityResult {
    /// This result's part of the overall score, in basis points: the score if verified (100
    /// without a score), otherwise 0.
    pub fn component_bp(&self) -> i64 {
        match self.status {
            IdentityStatus::Verified => i64::from(self.score.unwrap_or(MAX_SCORE)) * 100,
            _ => 0,
        }
    }
}

/// A recorded English proficiency test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnglishResult {
    pub result_id: Uuid,
    pub grammar_score: u8,
    pub comprehension_score: u8,
    pub written_response_score: u8,
    /// Weighted 30/30/40, basis points.
    pub proficiency_score: i64,
    pub corrects: Option<Uuid>,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
}

impl EnglishResult {
    /// The weighted score as a percentage (`81.25`).
    pub fn score_percent(&self) -> f64 {
        score_percent(self.proficiency_score)
    }
}

/// A recorded skill assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkillResult {
    pub result_id: Uuid,
    pub skill_id: String,
    pub skill_name: String,
    pub assessment_type: AssessmentType,
    pub score: u8,
    pub details: Option<Value>,
    pub corrects: Option<Uuid>,
    pub recorded_by: Uuid,
    pub recorded_at: DateTime<Utc>,
}

/// One immutable recorded result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordedResult {
    Identity(IdentityResult),
    English(EnglishResult),
    Skill(SkillResult),
}

impl RecordedResult {
    pub fn result_id(&self) -> Uuid {
        match self {
            RecordedResult::Identity(r) => r.result_id,
            RecordedResult::English(r) => r.result_id,
            RecordedResult::Skill(r) => r.result_id,
        }
    }
    pub fn corrects(&self) -> Option<Uuid> {
        match self {
            RecordedResult::Identity(r) => r.corrects,
            RecordedResult::English(r) => r.corrects,
            RecordedResult::Skill(r) => r.corrects,
        }
    }
    pub fn kind(&self) -> ResultKind {
        match self {
            RecordedResult::Identity(_) => ResultKind::Identity,
            RecordedResult::English(_) => ResultKind::English,
            RecordedResult::Skill(_) => ResultKind::Skill,
        }
    }
}

/// A freelancer's vetting as its events left it. Fields are private: only `evolve` writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vetting {
    started: bool,
    freelancer_id: Option<Uuid>,
    status: VettingStatus,
    started_by: Option<Uuid>,
    started_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    /// Every result ever recorded, in recording order; never changed.
    results: Vec<RecordedResult>,
    /// The current view: one slot per original result, holding the index (in `results`) of the
    /// result now in force for it (the original or its latest correction), in the order the
    /// originals were recorded.
    slots: Vec<usize>,
    /// Result id → its slot.
    slot_of: BTreeMap<Uuid, usize>,
    /// Basis points.
    overall_score: i64,
    last_decision: Option<ReviewDecision>,
    reviewed_by: Option<Uuid>,
    reviewed_at: Option<DateTime<Utc>>,
    review_notes: Option<String>,
}

impl Vetting {
    pub fn is_started(&self) -> bool {
        self.started
    }
    pub fn freelancer_id(&self) -> Option<Uuid> {
        self.freelancer_id
    }
    pub fn status(&self) -> VettingStatus {
        self.status
    }
    pub fn started_by(&self) -> Option<Uuid> {
        self.started_by
    }
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.started_at
    }
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.updated_at
    }
    /// The overall score in basis points (0..=10 000).
    pub fn overall_score(&self) -> i64 {
        self.overall_score
    }
    /// The overall score as a percentage.
    pub fn overall_score_percent(&self) -> f64 {
        score_percent(self.overall_score)
    }
    pub fn last_decision(&self) -> Option<ReviewDecision> {
        self.last_decision
    }
    pub fn reviewed_by(&self) -> Option<Uuid> {
        self.reviewed_by
    }
    pub fn reviewed_at(&self) -> Option<DateTime<Utc>> {
        self.reviewed_at
    }
    pub fn review_notes(&self) -> Option<&str> {
        self.review_notes.as_deref()
    }

    /// The full history: every result ever recorded, corrected ones included, in order.
    pub fn results(&self) -> &[RecordedResult] {
        &self.results
    }

    /// One recorded result, current or not.
    pub fn result(&self, result_id: Uuid) -> Option<&RecordedResult> {
        self.results.iter().find(|r| r.result_id() == result_id)
    }

    /// The results that directly correct `result_id`, in recording order.
    pub fn corrections_of(&self, result_id: Uuid) -> Vec<&RecordedResult> {
        self.results.iter().filter(|r| r.corrects() == Some(result_id)).collect()
    }

    /// Whether `result_id` is in force (not superseded by a correction).
    pub fn is_current(&self, result_id: Uuid) -> bool {
        self.slot_of
            .get(&result_id)
            .and_then(|&slot| self.slots.get(slot))
            .and_then(|&i| self.results.get(i))
            .is_some_and(|r| r.result_id() == result_id)
    }

    /// The results in force, one per slot, in the order their originals were recorded.
    fn view(&self) -> impl Iterator<Item = &RecordedResult> {
        self.slots.iter().filter_map(|&i| self.results.get(i))
    }

    /// The current identity verification.
    pub fn current_identity(&self) -> Option<&IdentityResult> {
        self.view()
            .filter_map(|r| match r {
                RecordedResult::Identity(r) => Some(r),
                _ => None,
            })
            .last()
    }

    /// The current English proficiency result.
    pub fn current_english(&self) -> Option<&EnglishResult> {
        self.view()
            .filter_map(|r| match r {
                RecordedResult::English(r) => Some(r),
                _ => None,
            })
            .last()
    }

    /// The current assessment of every assessed skill, in the order the skills were first
    /// assessed.
    pub fn current_skills(&self) -> Vec<&SkillResult> {
        let mut current: Vec<&SkillResult> = Vec::new();
        for result in self.view() {
            if let RecordedResult::Skill(skill) = result {
                match current.iter_mut().find(|c| c.skill_id == skill.skill_id) {
                    Some(slot) => *slot = skill,
                    None => current.push(skill),
                }
            }
        }
        current
    }

    /// Whether the current identity result is `verified`.
    pub fn identity_verified(&self) -> bool {
        self.current_identity().is_some_and(|r| r.status == IdentityStatus::Verified)
    }

    /// The overall score (basis points) of the current view.
    pub fn compute_overall_score(&self) -> i64 {
        let identity = self.current_identity().map_or(0, IdentityResult::component_bp);
        let english = self.current_english().map_or(0, |r| r.proficiency_score);
        let skills: Vec<u8> = self.current_skills().iter().map(|s| s.score).collect();
        overall_score_bp(identity, english, &skills)
    }

    /// Adds a result to the history and the current view (no rules: `evolve`'s helper).
    fn push_result(&mut self, result: RecordedResult) {
        let index = self.results.len();
        let id = result.result_id();
        let slot = match result.corrects().and_then(|c| self.slot_of.get(&c).copied()) {
            Some(slot) => {
                self.slots[slot] = index;
                slot
            }
            None => {
                self.slots.push(index);
                self.slots.len() - 1
            }
        };
        self.slot_of.insert(id, slot);
        self.results.push(result);
    }

    /// The vetting the command names, if started (and this stream's).
    fn require_started(&self, freelancer_id: Uuid) -> Result<(), VettingError> {
        if self.started && self.freelancer_id == Some(freelancer_id) {
            Ok(())
        } else {
            Err(VettingError::NotStarted)
        }
    }

    /// The common rules of every `Record*` command.
    fn check_record(
        &self,
        actor: &Actor,
        freelancer_id: Uuid,
        result_id: Uuid,
        scores: &[(&'static str, u8)],
        corrects: Option<Uuid>,
        kind: ResultKind,
    ) -> Result<Option<&RecordedResult>, VettingError> {
        if !matches!(actor.role, Role::System | Role::Admin) {
            return Err(VettingError::OnlySystemOrAdminRecord);
        }
        self.require_started(freelancer_id)?;
        if self.result(result_id).is_some() {
            return Err(VettingError::ResultAlreadyRecorded { result_id });
        }
        if let Some(&(field, score)) = scores.iter().find(|(_, score)| *score > MAX_SCORE) {
            return Err(VettingError::ScoreOutOfRange { field, score });
        }
        let Some(corrected_id) = corrects else { return Ok(None) };
        match self.result(corrected_id) {
            Some(corrected) if corrected.kind() == kind => Ok(Some(corrected)),
            _ => Err(VettingError::CorrectedResultNotFound { result_id: corrected_id, kind: kind.as_str() }),
        }
    }

    /// The overall score and status once `result` is recorded.
    fn after(&self, result: RecordedResult) -> (i64, VettingStatus) {
        let mut next = self.clone();
        next.push_result(result);
        let status = match self.status {
            VettingStatus::Pending => VettingStatus::InProgress,
            other => other,
        };
        (next.compute_overall_score(), status)
    }

    fn decide_identity(
        &self,
        actor: &Actor,
        p: &RecordIdentityVerification,
        at: DateTime<Utc>,
    ) -> Result<Vec<VettingEvent>, VettingError> {
        let scores: Vec<(&'static str, u8)> = p.score.map(|s| ("score", s)).into_iter().collect();
        self.check_record(actor, p.freelancer_id, p.result_id, &scores, p.corrects, ResultKind::Identity)?;
        let result = IdentityResult {
            result_id: p.result_id,
            provider: p.provider,
            status: p.status,
            document_type: non_blank(&p.document_type),
            document_number: non_blank(&p.document_number),
            liveness_check: p.liveness_check,
            score: p.score,
            corrects: p.corrects,
            recorded_by: actor.id,
            recorded_at: at,
        };
        let (overall_score, vetting_status) = self.after(RecordedResult::Identity(result.clone()));
        Ok(vec![VettingEvent::IdentityVerificationRecorded {
            freelancer_id: p.freelancer_id,
            result_id: result.result_id,
            provider: result.provider,
            status: result.status,
            document_type: result.document_type,
            document_number: result.document_number,
            liveness_check: result.liveness_check,
            score: result.score,
            corrects: result.corrects,
            overall_score,
            vetting_status,
            recorded_by: actor.id,
            at,
        }])
    }

    fn decide_english(
        &self,
        actor: &Actor,
        p: &RecordEnglishProficiency,
        at: DateTime<Utc>,
    ) -> Result<Vec<VettingEvent>, VettingError> {
        let scores = [
            ("grammarScore", p.grammar_score),
            ("comprehensionScore", p.comprehension_score),
            ("writtenResponseScore", p.written_response_score),
        ];
        self.check_record(actor, p.freelancer_id, p.result_id, &scores, p.corrects, ResultKind::English)?;
        let proficiency_score = english_score_bp(p.grammar_score, p.comprehension_score, p.written_response_score);
        let result = EnglishResult {
            result_id: p.result_id,
            grammar_score: p.grammar_score,
            comprehension_score: p.comprehension_score,
            written_response_score: p.written_response_score,
            proficiency_score,
            corrects: p.corrects,
            recorded_by: actor.id,
            recorded_at: at,
        };
        let (overall_score, vetting_status) = self.after(RecordedResult::English(result));
        Ok(vec![VettingEvent::EnglishProficiencyRecorded {
            freelancer_id: p.freelancer_id,
            result_id: p.result_id,
            grammar_score: p.grammar_score,
            comprehension_score: p.comprehension_score,
            written_response_score: p.written_response_score,
            proficiency_score,
            corrects: p.corrects,
            overall_score,
            vetting_status,
            recorded_by: actor.id,
            at,
        }])
    }

    fn decide_skill(
        &self,
        actor: &Actor,
        p: &RecordSkillAssessment,
        at: DateTime<Utc>,
    ) -> Result<Vec<VettingEvent>, VettingError> {
        let corrected = self.check_record(
            actor,
            p.freelancer_id,
            p.result_id,
            &[("score", p.score)],
            p.corrects,
            ResultKind::Skill,
        )?;
        let skill_id = p.skill_id.trim();
        let skill_name = p.skill_name.trim();
        if skill_id.is_empty() || skill_name.is_empty() {
            return Err(VettingError::SkillRequired);
        }
        if let Some(RecordedResult::Skill(corrected)) = corrected {
            if corrected.skill_id != skill_id {
                return Err(VettingError::CorrectionSkillMismatch {
                    expected: corrected.skill_id.clone(),
                    actual: skill_id.to_owned(),
                });
            }
        }
        let result = SkillResult {
            result_id: p.result_id,
            skill_id: skill_id.to_owned(),
            skill_name: skill_name.to_owned(),
            assessment_type: p.assessment_type,
            score: p.score,
            details: p.details.clone(),
            corrects: p.corrects,
            recorded_by: actor.id,
            recorded_at: at,
        };
        let (overall_score, vetting_status) = self.after(RecordedResult::Skill(result.clone()));
        Ok(vec![VettingEvent::SkillAssessmentRecorded {
            freelancer_id: p.freelancer_id,
            result_id: result.result_id,
            skill_id: result.skill_id,
            skill_name: result.skill_name,
            assessment_type: result.assessment_type,
            score: result.score,
            details: result.details,
            corrects: result.corrects,
            overall_score,
            vetting_status,
            recorded_by: actor.id,
            at,
        }])
    }

    fn decide_review(
        &self,
        actor: &Actor,
        p: &ReviewVetting,
        at: DateTime<Utc>,
    ) -> Result<Vec<VettingEvent>, VettingError> {
        if actor.role != Role::Admin {
            return Err(VettingError::OnlyAdminReviews);
        }
        self.require_started(p.freelancer_id)?;
        if !matches!(self.status, VettingStatus::InProgress | VettingStatus::Flagged) {
            return Err(VettingError::CannotReview { status: self.status });
        }
        if p.decision == ReviewDecision::Approve && !self.identity_verified() {
            return Err(VettingError::IdentityNotVerified);
        }
        Ok(vec![VettingEvent::VettingReviewed {
            freelancer_id: p.freelancer_id,
            decision: p.decision,
            status: p.decision.status(),
            notes: non_blank(&p.notes),
            reviewed_by: actor.id,
            overall_score: self.overall_score,
            at,
        }])
    }
}

/// Trimmed text, `None` when blank.
fn non_blank(text: &Option<String>) -> Option<String> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned)
}

impl Aggregate for Vetting {
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    type Event = VettingEvent;
    type Command = VettingCommand;
    type Error = VettingError;

    fn decide(&self, command: &VettingCommand) -> Result<Vec<VettingEvent>, VettingError> {
        let VettingCommand { actor, at, action } = command;
        let at = *at;
        match action {
            VettingAction::StartVetting(p) => {
                let is_self = actor.role == Role::Freelancer && actor.id == p.freelancer_id;
                if !is_self && actor.role != Role::Admin {
                    return Err(VettingError::NotYourVetting);
                }
                if self.started {
                    return Err(VettingError::AlreadyStarted);
                }
                Ok(vec![VettingEvent::VettingStarted {
                    freelancer_id: p.freelancer_id,
                    status: VettingStatus::Pending,
                    started_by: actor.id,
                    at,
                }])
            }
            VettingAction::RecordIdentityVerification(p) => self.decide_identity(actor, p, at),
            VettingAction::RecordEnglishProficiency(p) => self.decide_english(actor, p, at),
            VettingAction::RecordSkillAssessment(p) => self.decide_skill(actor, p, at),
            VettingAction::ReviewVetting(p) => self.decide_review(actor, p, at),
        }
    }

    fn evolve(&mut self, event: &VettingEvent) {
        match event {
            VettingEvent::VettingStarted { freelancer_id, status, started_by, at } => {
                self.started = true;
                self.freelancer_id = Some(*freelancer_id);
                self.status = *status;
                self.started_by = Some(*started_by);
                self.started_at = Some(*at);
                self.updated_at = Some(*at);
            }
            VettingEvent::IdentityVerificationRecorded {
                result_id,
                provider,
                status,
                document_type,
                document_number,
                liveness_check,
                score,
                corrects,
                overall_score,
                vetting_status,
                recorded_by,
                at,
                ..
            } => {
                self.push_result(RecordedResult::Identity(IdentityResult {
                    result_id: *result_id,
                    provider: *provider,
                    status: *status,
                    document_type: document_type.clone(),
                    document_number: document_number.clone(),
                    liveness_check: *liveness_check,
                    score: *score,
                    corrects: *corrects,
                    recorded_by: *recorded_by,
                    recorded_at: *at,
                }));
                self.overall_score = *overall_score;
                self.status = *vetting_status;
                self.updated_at = Some(*at);
            }
            VettingEvent::EnglishProficiencyRecorded {
                result_id,
                grammar_score,
                comprehension_score,
                written_response_score,
                proficiency_score,
                corrects,
                overall_score,
                vetting_status,
                recorded_by,
                at,
                ..
            } => {
                self.push_result(RecordedResult::English(EnglishResult {
                    result_id: *result_id,
                    grammar_score: *grammar_score,
                    comprehension_score: *comprehension_score,
                    written_response_score: *written_response_score,
                    proficiency_score: *proficiency_score,
                    corrects: *corrects,
                    recorded_by: *recorded_by,
                    recorded_at: *at,
                }));
                self.overall_score = *overall_score;
                self.status = *vetting_status;
                self.updated_at = Some(*at);
            }
            VettingEvent::SkillAssessmentRecorded {
                result_id,
                skill_id,
                skill_name,
                assessment_type,
                score,
                details,
                corrects,
                overall_score,
                vetting_status,
                recorded_by,
                at,
                ..
            } => {
                self.push_result(RecordedResult::Skill(SkillResult {
                    result_id: *result_id,
                    skill_id: skill_id.clone(),
                    skill_name: skill_name.clone(),
                    assessment_type: *assessment_type,
                    score: *score,
                    details: details.clone(),
                    corrects: *corrects,
                    recorded_by: *recorded_by,
                    recorded_at: *at,
                }));
                self.overall_score = *overall_score;
                self.status = *vetting_status;
                self.updated_at = Some(*at);
            }
            VettingEvent::VettingReviewed { decision, status, notes, reviewed_by, overall_score, at, .. } => {
                self.last_decision = Some(*decision);
                self.status = *status;
                self.review_notes = notes.clone();
                self.reviewed_by = Some(*reviewed_by);
                self.reviewed_at = Some(*at);
                self.overall_score = *overall_score;
                self.updated_at = Some(*at);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{decode_event, encode_event, TestHarness};

    const FREELANCER: Uuid = Uuid::from_u128(0xF1);
    const OTHER_FREELANCER: Uuid = Uuid::from_u128(0xF2);
    const ADMIN: Uuid = Uuid::from_u128(0xAD);
    const MODERATOR: Uuid = Uuid::from_u128(0x30);
    const ID1: Uuid = Uuid::from_u128(0x1001);
    const ID2: Uuid = Uuid::from_u128(0x1002);
    const EN1: Uuid = Uuid::from_u128(0x2001);
    const EN2: Uuid = Uuid::from_u128(0x2002);
    const SK1: Uuid = Uuid::from_u128(0x3001);
    const SK2: Uuid = Uuid::from_u128(0x3002);
    const SK3: Uuid = Uuid::from_u128(0x3003);
    const SK4: Uuid = Uuid::from_u128(0x3004);

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_735_689_600 + minutes * 60, 0).expect("valid time")
    }

    fn freelancer() -> Actor {
        Actor { id: FREELANCER, role: Role::Freelancer }
    }
    fn other_freelancer() -> Actor {
        Actor { id: OTHER_FREELANCER, role: Role::Freelancer }
    }
    fn admin() -> Actor {
        Actor { id: ADMIN, role: Role::Admin }
    }
    fn moderator() -> Actor {
        Actor { id: MODERATOR, role: Role::Moderator }
    }
    fn system() -> Actor {
        Actor::system()
    }

    fn cmd(actor: Actor, at: DateTime<Utc>, action: impl Into<VettingAction>) -> VettingCommand {
        VettingCommand { actor, at, action: action.into() }
    }

    fn started() -> VettingEvent {
        VettingEvent::VettingStarted {
            freelancer_id: FREELANCER,
            status: VettingStatus::Pending,
            started_by: FREELANCER,
            at: t(0),
        }
    }

    fn identity(result_id: Uuid, status: IdentityStatus, score: Option<u8>) -> RecordIdentityVerification {
        RecordIdentityVerification {
            freelancer_id: FREELANCER,
            result_id,
            provider: IdentityProvider::SmileIdentity,
            status,
            document_type: Some("passport".into()),
            document_number: Some("A1234567".into()),
            liveness_check: Some(true),
            score,
            corrects: None,
        }
    }

    fn english(result_id: Uuid, grammar: u8, comprehension: u8, written: u8) -> RecordEnglishProficiency {
        RecordEnglishProficiency {
            freelancer_id: FREELANCER,
            result_id,
            grammar_score: grammar,
            comprehension_score: comprehension,
            written_response_score: written,
            corrects: None,
        }
    }

    fn skill(result_id: Uuid, skill_id: &str, score: u8) -> RecordSkillAssessment {
        RecordSkillAssessment {
            freelancer_id: FREELANCER,
            result_id,
            skill_id: skill_id.into(),
            skill_name: skill_id.to_uppercase(),
            assessment_type: AssessmentType::Coding,
            score,
            details: None,
            corrects: None,
        }
    }

    /// Decides `action` on the state `events` leave and returns `events` plus the new event.
    fn then_record(mut events: Vec<VettingEvent>, action: impl Into<VettingAction>, minute: i64) -> Vec<VettingEvent> {
        let new = TestHarness::<Vetting>::given(events.clone())
            .when(cmd(system(), t(minute), action))
            .events()
            .expect("recorded");
        events.extend(new);
        events
    }

    fn identity_recorded(result_id: Uuid, score: u8, overall_score: i64) -> VettingEvent {
        VettingEvent::IdentityVerificationRecorded {
            freelancer_id: FREELANCER,
            result_id,
            provider: IdentityProvider::SmileIdentity,
            status: IdentityStatus::Verified,
            document_type: Some("passport".into()),
            document_number: Some("A1234567".into()),
            liveness_check: Some(true),
            score: Some(score),
            corrects: None,
            overall_score,
            vetting_status: VettingStatus::InProgress,
            recorded_by: Uuid::nil(),
            at: t(1),
        }
    }

    fn reviewed(decision: ReviewDecision) -> VettingEvent {
        VettingEvent::VettingReviewed {
            freelancer_id: FREELANCER,
            decision,
            status: decision.status(),
            notes: None,
            reviewed_by: ADMIN,
            overall_score: 1_800,
            at: t(10),
        }
    }

    fn review(decision: ReviewDecision) -> ReviewVetting {
        ReviewVetting { freelancer_id: FREELANCER, decision, notes: None }
    }

    // start-vetting

    #[test]
    fn it_should_let_a_freelancer_start_their_vetting() {
        TestHarness::<Vetting>::given([])
            .when(cmd(freelancer(), t(0), StartVetting { freelancer_id: FREELANCER }))
            .then([started()]);
        let vetting = Vetting::fold([started()].iter());
        assert!(vetting.is_started());
        assert_eq!(vetting.status(), VettingStatus::Pending);
        assert_eq!(vetting.overall_score(), 0);
    }

    #[test]
    fn it_should_let_an_admin_start_a_freelancers_vetting() {
        TestHarness::<Vetting>::given([]).when(cmd(admin(), t(0), StartVetting { freelancer_id: FREELANCER })).then([
            VettingEvent::VettingStarted {
                freelancer_id: FREELANCER,
                status: VettingStatus::Pending,
                started_by: ADMIN,
                at: t(0),
            },
        ]);
    }

    #[test]
    fn it_should_not_let_anyone_else_start_a_freelancers_vetting() {
        for actor in [other_freelancer(), moderator(), system(), Actor { id: FREELANCER, role: Role::Client }] {
            TestHarness::<Vetting>::given([])
                .when(cmd(actor, t(0), StartVetting { freelancer_id: FREELANCER }))
                .then_error(VettingError::NotYourVetting);
        }
    }

    #[test]
    fn it_should_not_start_a_vetting_twice() {
        TestHarness::<Vetting>::given([started()])
            .when(cmd(freelancer(), t(1), StartVetting { freelancer_id: FREELANCER }))
            .then_error(VettingError::AlreadyStarted);
    }

    // record-identity-verification

    #[test]
    fn it_should_record_an_identity_verification_from_the_provider_and_move_to_in_progress() {
        let recorded = identity_recorded(ID1, 90, 1_800);
        TestHarness::<Vetting>::given([started()])
            .when(cmd(system(), t(1), identity(ID1, IdentityStatus::Verified, Some(90))))
            .then([recorded.clone()]);
        let vetting = Vetting::fold([started(), recorded].iter());
        assert_eq!(vetting.status(), VettingStatus::InProgress);
        assert!(vetting.identity_verified());
        assert_eq!(vetting.overall_score(), 1_800);
        assert_eq!(vetting.current_identity().map(|r| r.result_id), Some(ID1));
    }

    #[test]
    fn it_should_let_an_admin_record_a_result() {
        let events = TestHarness::<Vetting>::given([started()])
            .when(cmd(admin(), t(1), english(EN1, 80, 80, 80)))
            .events()
            .expect("admins may record");
        assert!(matches!(&events[..], [VettingEvent::EnglishProficiencyRecorded { recorded_by: ADMIN, .. }]));
    }

    #[test]
    fn it_should_not_let_a_freelancer_record_their_own_result() {
        TestHarness::<Vetting>::given([started()])
            .when(cmd(freelancer(), t(1), identity(ID1, IdentityStatus::Verified, Some(100))))
            .then_error(VettingError::OnlySystemOrAdminRecord);
        TestHarness::<Vetting>::given([started()])
            .when(cmd(moderator(), t(1), skill(SK1, "rust", 100)))
            .then_error(VettingError::OnlySystemOrAdminRecord);
    }

    #[test]
    fn it_should_not_record_a_result_before_the_vetting_started() {
        TestHarness::<Vetting>::given([])
            .when(cmd(system(), t(1), english(EN1, 80, 80, 80)))
            .then_error(VettingError::NotStarted);
        let other = RecordSkillAssessment { freelancer_id: OTHER_FREELANCER, ..skill(SK1, "rust", 80) };
        TestHarness::<Vetting>::given([started()])
            .when(cmd(system(), t(1), other))
            .then_error(VettingError::NotStarted);
    }

    #[test]
    fn it_should_refuse_a_score_above_100() {
        TestHarness::<Vetting>::given([started()])
            .when(cmd(system(), t(1), identity(ID1, IdentityStatus::Verified, Some(101))))
            .then_error(VettingError::ScoreOutOfRange { field: "score", score: 101 });
        TestHarness::<Vetting>::given([started()])
            .when(cmd(system(), t(1), english(EN1, 80, 120, 80)))
            .then_error(VettingError::ScoreOutOfRange { field: "comprehensionScore", score: 120 });
        TestHarness::<Vetting>::given([started()])
            .when(cmd(system(), t(1), skill(SK1, "rust", 255)))
            .then_error(VettingError::ScoreOutOfRange { field: "score", score: 255 });
    }

    #[test]
    fn it_should_not_reuse_a_result_id() {
        let events = then_record(vec![started()], identity(ID1, IdentityStatus::Pending, None), 1);
        TestHarness::<Vetting>::given(events)
            .when(cmd(system(), t(2), skill(ID1, "rust", 80)))
            .then_error(VettingError::ResultAlreadyRecorded { result_id: ID1 });
    }

    #[test]
    fn it_should_require_a_skill_id_and_name() {
        let blank = RecordSkillAssessment { skill_name: "  ".into(), ..skill(SK1, "rust", 80) };
        TestHarness::<Vetting>::given([started()])
            .when(cmd(system(), t(1), blank))
            .then_error(VettingError::SkillRequired);
    }

    // scores

    #[test]
    fn it_should_weight_english_proficiency_30_30_40() {
        assert_eq!(english_score_bp(80, 70, 90), 8_100);
        assert_eq!(english_score_bp(100, 100, 100), MAX_BASIS_POINTS);
        assert_eq!(english_score_bp(0, 0, 0), 0);
        assert_eq!(english_score_bp(81, 82, 83), 8_210);
        TestHarness::<Vetting>::given([started()]).when(cmd(system(), t(1), english(EN1, 75, 80, 90))).then([
            VettingEvent::EnglishProficiencyRecorded {
                freelancer_id: FREELANCER,
                result_id: EN1,
                grammar_score: 75,
                comprehension_score: 80,
                written_response_score: 90,
                proficiency_score: 8_250,
                corrects: None,
                overall_score: 2_475,
                vetting_status: VettingStatus::InProgress,
                recorded_by: Uuid::nil(),
                at: t(1),
            },
        ]);
        let events = then_record(vec![started()], english(EN1, 75, 80, 90), 1);
        let vetting = Vetting::fold(events.iter());
        assert_eq!(vetting.current_english().map(EnglishResult::score_percent), Some(82.5));
    }

    #[test]
    fn it_should_weight_the_overall_score_20_30_50() {
        let mut events = then_record(vec![started()], identity(ID1, IdentityStatus::Verified, Some(90)), 1);
        events = then_record(events, english(EN1, 80, 70, 90), 2);
        events = then_record(events, skill(SK1, "rust", 80), 3);
        events = then_record(events, skill(SK2, "sql", 70), 4);
        // 0.2 × 90 % + 0.3 × 81 % + 0.5 × 75 % = 18 + 24.3 + 37.5 = 79.8 %
        let vetting = Vetting::fold(events.iter());
        assert_eq!(vetting.overall_score(), 7_980);
        assert_eq!(vetting.compute_overall_score(), 7_980);
        assert_eq!(vetting.overall_score_percent(), 79.8);
        assert!(matches!(events.last(), Some(VettingEvent::SkillAssessmentRecorded { overall_score: 7_980, .. })));
        assert_eq!(overall_score_bp(10_000, 10_000, &[100]), MAX_BASIS_POINTS);
        assert_eq!(overall_score_bp(0, 0, &[]), 0);
    }

    #[test]
    fn it_should_count_missing_parts_as_zero() {
        assert_eq!(overall_score_bp(0, 0, &[100]), 5_000);
        assert_eq!(overall_score_bp(10_000, 0, &[]), 2_000);
        assert_eq!(overall_score_bp(0, 10_000, &[]), 3_000);
    }

    #[test]
    fn it_should_round_the_overall_score_half_up_once() {
        // skills average 33.333… % → 0.5 × 3 333.33 bp = 1 666.67 bp → 1 667
        assert_eq!(overall_score_bp(0, 0, &[33, 33, 34]), 1_667);
        // 0.5 × 50.5 % = 25.25 % exactly
        assert_eq!(overall_score_bp(0, 0, &[50, 51]), 2_525);
        // skills average 1/3 % = 33.33 bp → 0.5 × 33.33 bp = 16.67 bp → 17
        assert_eq!(overall_score_bp(0, 0, &[1, 0, 0]), 17);
    }

    #[test]
    fn it_should_count_an_identity_that_is_not_verified_as_zero() {
        let events = then_record(vec![started()], identity(ID1, IdentityStatus::Failed, Some(95)), 1);
        let vetting = Vetting::fold(events.iter());
        assert_eq!(vetting.overall_score(), 0);
        assert!(!vetting.identity_verified());
        let events = then_record(vec![started()], identity(ID1, IdentityStatus::Verified, None), 1);
        assert_eq!(Vetting::fold(events.iter()).overall_score(), 2_000, "verified without a score counts 100");
    }

    #[test]
    fn it_should_average_the_current_score_of_each_skill() {
        let mut events = then_record(vec![started()], skill(SK1, "rust", 60), 1);
        events = then_record(events, skill(SK2, "sql", 80), 2);
        events = then_record(events, skill(SK3, "rust", 90), 3); // a new attempt at rust
        let vetting = Vetting::fold(events.iter());
        let current: Vec<(&str, u8)> =
            vetting.current_skills().iter().map(|s| (s.skill_id.as_str(), s.score)).collect();
        assert_eq!(current, vec![("rust", 90), ("sql", 80)]);
        assert_eq!(vetting.overall_score(), 4_250); // 0.5 × 85 %
        assert_eq!(vetting.results().len(), 3, "every attempt stays in the history");
    }

    // corrections

    #[test]
    fn it_should_keep_a_corrected_result_and_show_the_correction() {
        let events = then_record(vec![started()], english(EN1, 50, 50, 50), 1);
        let correction = RecordEnglishProficiency { corrects: Some(EN1), ..english(EN2, 90, 90, 90) };
        let corrected = VettingEvent::EnglishProficiencyRecorded {
            freelancer_id: FREELANCER,
            result_id: EN2,
            grammar_score: 90,
            comprehension_score: 90,
            written_response_score: 90,
            proficiency_score: 9_000,
            corrects: Some(EN1),
            overall_score: 2_700,
            vetting_status: VettingStatus::InProgress,
            recorded_by: ADMIN,
            at: t(5),
        };
        TestHarness::<Vetting>::given(events.clone()).when(cmd(admin(), t(5), correction)).then([corrected.clone()]);
        let mut all = events;
        all.push(corrected);
        let vetting = Vetting::fold(all.iter());
        let Some(RecordedResult::English(original)) = vetting.result(EN1) else { panic!("the original is kept") };
        assert_eq!(original.proficiency_score, 5_000, "the original is never overwritten");
        assert!(!vetting.is_current(EN1));
        assert!(vetting.is_current(EN2));
        assert_eq!(vetting.current_english().map(|r| r.result_id), Some(EN2));
        assert_eq!(vetting.corrections_of(EN1).iter().map(|r| r.result_id()).collect::<Vec<_>>(), vec![EN2]);
        assert_eq!(vetting.results().len(), 2);
        assert_eq!(vetting.overall_score(), 2_700);
    }

    #[test]
    fn it_should_correct_an_identity_verification_with_a_new_result() {
        let events = then_record(vec![started()], identity(ID1, IdentityStatus::Failed, Some(40)), 1);
        let correction =
            RecordIdentityVerification { corrects: Some(ID1), ..identity(ID2, IdentityStatus::Verified, Some(85)) };
        let events = then_record(events, correction, 2);
        let vetting = Vetting::fold(events.iter());
        assert!(vetting.identity_verified());
        assert_eq!(vetting.overall_score(), 1_700);
        assert_eq!(vetting.results().len(), 2);
    }

    #[test]
    fn it_should_keep_a_newer_attempt_current_when_an_older_result_is_corrected() {
        let mut events = then_record(vec![started()], skill(SK1, "rust", 60), 1);
        events = then_record(events, skill(SK2, "rust", 70), 2);
        let correction = RecordSkillAssessment { corrects: Some(SK1), ..skill(SK3, "rust", 65) };
        events = then_record(events, correction, 3);
        let vetting = Vetting::fold(events.iter());
        assert_eq!(vetting.current_skills().iter().map(|s| s.result_id).collect::<Vec<_>>(), vec![SK2]);
        assert!(vetting.is_current(SK3), "the correction replaces the first attempt");
        assert!(!vetting.is_current(SK1));
        // A correction of the correction takes the same place.
        let again = RecordSkillAssessment { corrects: Some(SK3), ..skill(SK4, "rust", 66) };
        let vetting = Vetting::fold(then_record(events, again, 4).iter());
        assert!(vetting.is_current(SK4) && !vetting.is_current(SK3));
        assert_eq!(vetting.current_skills()[0].result_id, SK2);
    }

    #[test]
    fn it_should_not_correct_a_result_that_does_not_exist() {
        let correction = RecordEnglishProficiency { corrects: Some(EN1), ..english(EN2, 90, 90, 90) };
        TestHarness::<Vetting>::given([started()])
            .when(cmd(system(), t(2), correction))
            .then_error(VettingError::CorrectedResultNotFound { result_id: EN1, kind: "english" });
    }

    #[test]
    fn it_should_not_correct_a_result_of_another_kind() {
        let events = then_record(vec![started()], english(EN1, 50, 50, 50), 1);
        let correction = RecordSkillAssessment { corrects: Some(EN1), ..skill(SK1, "rust", 80) };
        TestHarness::<Vetting>::given(events)
            .when(cmd(system(), t(2), correction))
            .then_error(VettingError::CorrectedResultNotFound { result_id: EN1, kind: "skill" });
    }

    #[test]
    fn it_should_not_correct_the_assessment_of_another_skill() {
        let events = then_record(vec![started()], skill(SK1, "rust", 50), 1);
        let correction = RecordSkillAssessment { corrects: Some(SK1), ..skill(SK2, "sql", 80) };
        TestHarness::<Vetting>::given(events)
            .when(cmd(system(), t(2), correction))
            .then_error(VettingError::CorrectionSkillMismatch { expected: "rust".into(), actual: "sql".into() });
    }

    // review-vetting

    #[test]
    fn it_should_let_an_admin_approve_a_vetting_with_a_verified_identity() {
        let events = vec![started(), identity_recorded(ID1, 90, 1_800)];
        let approve = ReviewVetting { notes: Some("  Solid. ".into()), ..review(ReviewDecision::Approve) };
        let approved = VettingEvent::VettingReviewed {
            freelancer_id: FREELANCER,
            decision: ReviewDecision::Approve,
            status: VettingStatus::Approved,
            notes: Some("Solid.".into()),
            reviewed_by: ADMIN,
            overall_score: 1_800,
            at: t(10),
        };
        TestHarness::<Vetting>::given(events.clone()).when(cmd(admin(), t(10), approve)).then([approved.clone()]);
        let mut all = events;
        all.push(approved);
        let vetting = Vetting::fold(all.iter());
        assert_eq!(vetting.status(), VettingStatus::Approved);
        assert_eq!(vetting.reviewed_by(), Some(ADMIN));
        assert_eq!(vetting.review_notes(), Some("Solid."));
    }

    #[test]
    fn it_should_not_approve_a_vetting_without_a_verified_identity() {
        let events = then_record(vec![started()], identity(ID1, IdentityStatus::Pending, None), 1);
        TestHarness::<Vetting>::given(events.clone())
            .when(cmd(admin(), t(10), review(ReviewDecision::Approve)))
            .then_error(VettingError::IdentityNotVerified);
        let events = then_record(vec![started()], skill(SK1, "rust", 100), 1);
        TestHarness::<Vetting>::given(events)
            .when(cmd(admin(), t(10), review(ReviewDecision::Approve)))
            .then_error(VettingError::IdentityNotVerified);
    }

    #[test]
    fn it_should_let_an_admin_reject_a_vetting_without_a_verified_identity() {
        let events = then_record(vec![started()], identity(ID1, IdentityStatus::Rejected, None), 1);
        let events = TestHarness::<Vetting>::given(events)
            .when(cmd(admin(), t(10), review(ReviewDecision::Reject)))
            .events()
            .expect("rejecting needs no verified identity");
        assert!(matches!(&events[..], [VettingEvent::VettingReviewed { status: VettingStatus::Rejected, .. }]));
    }

    #[test]
    fn it_should_only_let_an_admin_review_a_vetting() {
        for actor in [moderator(), system(), freelancer()] {
            TestHarness::<Vetting>::given([started(), identity_recorded(ID1, 90, 1_800)])
                .when(cmd(actor, t(10), review(ReviewDecision::Flag)))
                .then_error(VettingError::OnlyAdminReviews);
        }
    }

    #[test]
    fn it_should_not_review_a_vetting_without_results() {
        TestHarness::<Vetting>::given([started()])
            .when(cmd(admin(), t(10), review(ReviewDecision::Reject)))
            .then_error(VettingError::CannotReview { status: VettingStatus::Pending });
    }

    #[test]
    fn it_should_not_review_a_vetting_that_was_not_started() {
        TestHarness::<Vetting>::given([])
            .when(cmd(admin(), t(10), review(ReviewDecision::Reject)))
            .then_error(VettingError::NotStarted);
    }

    #[test]
    fn it_should_review_a_flagged_vetting_again() {
        TestHarness::<Vetting>::given([started(), identity_recorded(ID1, 90, 1_800), reviewed(ReviewDecision::Flag)])
            .when(cmd(admin(), t(10), review(ReviewDecision::Approve)))
            .then([reviewed(ReviewDecision::Approve)]);
    }

    #[test]
    fn it_should_not_review_an_approved_or_rejected_vetting_again() {
        for (decision, status) in
            [(ReviewDecision::Approve, VettingStatus::Approved), (ReviewDecision::Reject, VettingStatus::Rejected)]
        {
            TestHarness::<Vetting>::given([started(), identity_recorded(ID1, 90, 1_800), reviewed(decision)])
                .when(cmd(admin(), t(11), review(ReviewDecision::Flag)))
                .then_error(VettingError::CannotReview { status });
        }
    }

    #[test]
    fn it_should_keep_the_status_when_a_result_is_recorded_after_the_review() {
        let events = vec![started(), identity_recorded(ID1, 90, 1_800), reviewed(ReviewDecision::Approve)];
        let events = then_record(events, skill(SK1, "rust", 80), 20);
        let vetting = Vetting::fold(events.iter());
        assert_eq!(vetting.status(), VettingStatus::Approved);
        assert_eq!(vetting.overall_score(), 5_800);
        assert!(matches!(
            events.last(),
            Some(VettingEvent::SkillAssessmentRecorded { vetting_status: VettingStatus::Approved, .. })
        ));
    }

    // wire formats

    #[test]
    fn it_should_read_command_bodies_in_camel_case_and_refuse_unknown_fields() {
        let body = serde_json::json!({
            "freelancerId": FREELANCER,
            "resultId": SK1,
            "skillId": "rust",
            "skillName": "Rust",
            "assessmentType": "coding",
            "score": 88,
            "details": { "tests": 12, "passed": 11 }
        });
        let record: RecordSkillAssessment = serde_json::from_value(body).unwrap();
        assert_eq!(record.assessment_type, AssessmentType::Coding);
        assert_eq!(record.details.as_ref().unwrap()["passed"], 11);
        let id: RecordIdentityVerification = serde_json::from_value(serde_json::json!({
            "freelancerId": FREELANCER, "resultId": ID1, "provider": "smile_identity", "status": "verified"
        }))
        .unwrap();
        assert_eq!(id.provider, IdentityProvider::SmileIdentity);
        assert_eq!(id.score, None);
        assert!(
            serde_json::from_value::<StartVetting>(serde_json::json!({ "freelancerId": FREELANCER, "x": 1 })).is_err()
        );
        assert!(serde_json::from_value::<RecordEnglishProficiency>(serde_json::json!({
            "freelancerId": FREELANCER, "resultId": EN1, "grammarScore": 300, "comprehensionScore": 1, "writtenResponseScore": 1
        }))
        .is_err());
    }

    #[test]
    fn it_should_store_events_under_kebab_case_types_with_camel_case_fields() {
        let event = identity_recorded(ID1, 90, 1_800);
        let (event_type, payload) = encode_event(&event).unwrap();
        assert_eq!(event_type, "identity-verification-recorded");
        assert_eq!(payload["provider"], "smile_identity");
        assert_eq!(payload["overallScore"], 1_800);
        assert_eq!(payload["vettingStatus"], "in_progress");
        assert_eq!(payload["recordedBy"], Uuid::nil().to_string());
        assert_eq!(decode_event::<VettingEvent>(&event_type, &payload).unwrap(), event);
        assert_eq!(encode_event(&reviewed(ReviewDecision::Flag)).unwrap().0, "vetting-reviewed");
        assert_eq!(
            cmd(freelancer(), t(0), StartVetting { freelancer_id: FREELANCER }).stream_id(),
            format!("mkt-vetting-{FREELANCER}")
        );
    }

    #[test]
    fn it_should_snapshot_and_restore_the_state() {
        let mut events = then_record(vec![started()], skill(SK1, "rust", 60), 1);
        events = then_record(events, RecordSkillAssessment { corrects: Some(SK1), ..skill(SK2, "rust", 70) }, 2);
        let vetting = Vetting::fold(events.iter());
        let restored: Vetting = serde_json::from_value(serde_json::to_value(&vetting).unwrap()).unwrap();
        assert_eq!(restored, vetting);
    }

    #[test]
    fn it_should_classify_every_error() {
        use VettingError::*;
        for forbidden in [NotYourVetting, OnlySystemOrAdminRecord, OnlyAdminReviews] {
            assert_eq!(forbidden.kind(), ErrorKind::Forbidden, "{forbidden:?}");
        }
        for not_found in [NotStarted, CorrectedResultNotFound { result_id: ID1, kind: "identity" }] {
            assert_eq!(not_found.kind(), ErrorKind::NotFound, "{not_found:?}");
        }
        for conflict in [
            AlreadyStarted,
            ResultAlreadyRecorded { result_id: ID1 },
            CannotReview { status: VettingStatus::Pending },
            IdentityNotVerified,
        ] {
            assert_eq!(conflict.kind(), ErrorKind::Conflict, "{conflict:?}");
        }
        for invalid in [
            ScoreOutOfRange { field: "score", score: 101 },
            SkillRequired,
            CorrectionSkillMismatch { expected: "a".into(), actual: "b".into() },
        ] {
            assert_eq!(invalid.kind(), ErrorKind::Invalid, "{invalid:?}");
        }
    }
}
