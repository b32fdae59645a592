//! Matching freelancers to projects: a pure scoring function ([`score`], [`rank`]) and the
//! `Match` aggregate that records one proposal and the client's answer (stream
//! `mkt-match-{matchId}`, stream type `marketplace.match`).
//!
//! # Scoring
//!
//! Six factors, each scored 0..=100, weighted into a 0..=100 total (rounded half up):
//!
//! | factor                   | weight | how                                                              |
//! |--------------------------|-------:|------------------------------------------------------------------|
//! | skill overlap            |   35 % | share of the required skills the freelancer has (case-insensitive, whitespace-normalised; 100 when nothing is required) |
//! | vetting score            |   20 % | the vetting's overall score (basis points / 100); not vetted = 0 |
//! | ratings                  |   15 % | rating 0..=5 × 20; no rating yet = 50 (neutral)                  |
//! | availability             |   10 % | available 100, busy 40, unavailable 0, unknown 50                |
//! | past performance         |   10 % | 50 + 5 per completed project (up to 10), − 20 per dispute lost, clamped to 0..=100 |
//! | timezone compatibility   |   10 % | 100 − 100 × (hours apart / 12), hours apart measured around the clock (at most 12); 50 when either zone is unknown |
//!
//! Timezones are read as UTC offsets: `UTC`, `GMT`, `Z`, `UTC+02:00`, `GMT-5`, `+0530`,
//! `-03`, or a common IANA name from a small built-in table (standard time, daylight saving is
//! ignored — the score is a heuristic, not a calendar).
//!
//! Confidence reflects how much of the data behind the score is known:
//! `high` with a vetting score, a rating and at least 3 completed projects; `medium` with at
//! least two of (vetting score, rating, at least one completed project); `low` otherwise.
//!
//! Everything is deterministic: no clock, no randomness, integer arithmetic except for reading
//! the rating.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::project::ErrorKind;
use super::{Actor, Role};
use crate::kernel::{Aggregate, DomainEvent};

/// The stream type of matches.
pub const STREAM_TYPE: &str = "marketplace.match";

/// Weight of the skill overlap, in percent.
pub const WEIGHT_SKILL_OVERLAP: u32 = 35;
/// Weight of the vetting score, in percent.
pub const WEIGHT_VETTING_SCORE: u32 = 20;
/// Weight of the ratings, in percent.
pub const WEIGHT_RATINGS: u32 = 15;
/// Weight of the availability, in percent.
pub const WEIGHT_AVAILABILITY: u32 = 10;
/// Weight of the past performance, in percent.
pub const WEIGHT_PAST_PERFORMANCE: u32 = 10;
/// Weight of the timezone compatibility, in percent.
pub const WEIGHT_TIMEZONE_COMPATIBILITY: u32 = 10;

/// The score of a factor whose data is unknown and should neither help nor hurt.
pub const NEUTRAL: u8 = 50;

/// How long a match proposal stays open by default.
pub const DEFAULT_MATCH_TTL_DAYS: i64 = 7;

/// The stream of one match.
pub fn stream_id(match_id: Uuid) -> String {
    format!("mkt-match-{match_id}")
}

/// When a match generated at `at` expires by default (7 days later).
pub fn default_expiry(at: DateTime<Utc>) -> DateTime<Utc> {
    at + TimeDelta::days(DEFAULT_MATCH_TTL_DAYS)
}

// ---------------------------------------------------------------------------------------------
// Scoring inputs and outputs
// ---------------------------------------------------------------------------------------------

/// What the matcher knows about one freelancer (assembled by the handler from the read tables).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub freelancer_id: Uuid,
    #[serde(default)]
    pub skills: Vec<String>,
    /// The vetting's overall score in basis points (0..=10 000), if vetted.
    #[serde(default)]
    pub vetting_score_bp: Option<i64>,
    /// Average rating 0..=5, if rated.
    #[serde(default)]
    pub rating: Option<f64>,
    /// `available`, `busy` or `unavailable`.
    #[serde(default)]
    pub availability: Option<String>,
    #[serde(default)]
    pub completed_projects: u32,
    #[serde(default)]
    pub disputes_lost: u32,
    /// An IANA name (`Africa/Lagos`) or an offset (`UTC+02:00`).
    #[serde(default)]
    pub timezone: Option<String>,
}

/// What the project asks for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Requirements {
    #[serde(default)]
    pub required_skills: Vec<String>,
    #[serde(default)]
    pub client_timezone: Option<String>,
}

/// Each factor's score, 0..=100 (the read table's `scoringBreakdown`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoringBreakdown {
    pub skill_overlap: u8,
    pub vetting_score: u8,
    pub ratings: u8,
    pub availability: u8,
    pub past_performance: u8,
    pub timezone_compatibility: u8,
}

impl ScoringBreakdown {
    /// Every factor with its score, in the order of the table in the module docs.
    pub fn factors(&self) -> [(Factor, u8); 6] {
        [
            (Factor::SkillOverlap, self.skill_overlap),
            (Factor::VettingScore, self.vetting_score),
            (Factor::Ratings, self.ratings),
            (Factor::Availability, self.availability),
            (Factor::PastPerformance, self.past_performance),
            (Factor::TimezoneCompatibility, self.timezone_compatibility),
        ]
    }

    /// The weighted total, 0..=100, rounded half up.
    pub fn weighted_score(&self) -> u8 {
        let sum: u32 = self.factors().iter().map(|(factor, score)| factor.weight() * u32::from(*score)).sum();
        clamp_percent(i64::from((sum + 50) / 100))
    }
}

/// One scoring factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Factor {
    SkillOverlap,
    VettingScore,
    Ratings,
    Availability,
    PastPerformance,
    TimezoneCompatibility,
}

impl Factor {
    /// The factor's weight in percent; the six add up to 100.
    pub fn weight(&self) -> u32 {
        match self {
            Factor::SkillOverlap => WEIGHT_SKILL_OVERLAP,
            Factor::VettingScore => WEIGHT_VETTING_SCORE,
            Factor::Ratings => WEIGHT_RATINGS,
            Factor::Availability => WEIGHT_AVAILABILITY,
            Factor::PastPerformance => WEIGHT_PAST_PERFORMANCE,
            Factor::TimezoneCompatibility => WEIGHT_TIMEZONE_COMPATIBILITY,
        }
    }

    /// The factor's name in an explanation.
    pub fn label(&self) -> &'static str {
        match self {
            Factor::SkillOverlap => "skill overlap",
            Factor::VettingScore => "vetting score",
            Factor::Ratings => "ratings",
            Factor::Availability => "availability",
            Factor::PastPerformance => "past performance",
            Factor::TimezoneCompatibility => "timezone compatibility",
        }
    }
}

/// How much of the data behind a score is known.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(&self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// A candidate's score for a project.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scored {
    pub breakdown: ScoringBreakdown,
    /// 0..=100.
    pub score: u8,
    pub confidence: Confidence,
    /// A readable sentence naming each factor's finding and the strongest and weakest factor.
    pub explanation: String,
}

// ---------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------

/// Scores one candidate against a project's requirements. Pure and deterministic.
pub fn score(req: &Requirements, c: &Candidate) -> Scored {
    let skills = SkillMatch::of(&req.required_skills, &c.skills);
    let distance =
        req.client_timezone.as_deref().zip(c.timezone.as_deref()).and_then(|(a, b)| timezone_distance_minutes(a, b));
    let availability = Availability::parse(c.availability.as_deref());
    let rating = c.rating.filter(|r| r.is_finite()).map(|r| r.clamp(0.0, 5.0));
    let breakdown = ScoringBreakdown {
        skill_overlap: skills.score(),
        vetting_score: vetting_factor(c.vetting_score_bp),
        ratings: rating_factor(rating),
        availability: availability.score(),
        past_performance: past_performance_factor(c.completed_projects, c.disputes_lost),
        timezone_compatibility: timezone_factor(distance),
    };
    let confidence = confidence(c);
    let phrases = [
        skills.phrase(),
        match c.vetting_score_bp {
            Some(_) => format!("vetted {}%", breakdown.vetting_score),
            None => "not vetted".to_owned(),
        },
        match rating {
            Some(r) => format!("rated {r:.1}/5"),
            None => "no ratings yet".to_owned(),
        },
        availability.phrase().to_owned(),
        performance_phrase(c.completed_projects, c.disputes_lost),
        match distance {
            Some(0) => "same timezone as the client".to_owned(),
            Some(d) => format!("{} from the client's timezone", format_distance(d)),
            None => "timezone compatibility unknown".to_owned(),
        },
    ];
    let explanation = format!("{}. {}", capitalise(&phrases.join("; ")), extremes_sentence(&breakdown));
    Scored { score: breakdown.weighted_score(), breakdown, confidence, explanation }
}

/// Scores every candidate and sorts them best first: by score (descending), then by freelancer
/// id (ascending) so equal scores always come out in the same order.
pub fn rank(req: &Requirements, candidates: &[Candidate]) -> Vec<(Uuid, Scored)> {
    let mut ranked: Vec<(Uuid, Scored)> = candidates.iter().map(|c| (c.freelancer_id, score(req, c))).collect();
    ranked.sort_by(|(a_id, a), (b_id, b)| b.score.cmp(&a.score).then_with(|| a_id.cmp(b_id)));
    ranked
}

/// A skill name for comparison: trimmed, lower-case, inner whitespace collapsed.
pub fn normalise_skill(skill: &str) -> String {
    skill.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Which required skills a candidate has.
struct SkillMatch {
    /// The required skills (normalised, without blanks or duplicates).
    required: usize,
    /// The required skills the candidate has, in the order required.
    matched: Vec<String>,
}

impl SkillMatch {
    fn of(required: &[String], have: &[String]) -> Self {
        let have: BTreeSet<String> = have.iter().map(|s| normalise_skill(s)).filter(|s| !s.is_empty()).collect();
        let mut seen = BTreeSet::new();
        let required: Vec<String> =
            required.iter().map(|s| normalise_skill(s)).filter(|s| !s.is_empty() && seen.insert(s.clone())).collect();
        let matched = required.iter().filter(|s| have.contains(*s)).cloned().collect();
        SkillMatch { required: required.len(), matched }
    }

    fn score(&self) -> u8 {
        if self.required == 0 {
            return 100;
        }
        ratio_percent(self.matched.len() as u64, self.required as u64)
    }

    fn phrase(&self) -> String {
        if self.required == 0 {
            return "no specific skills required".to_owned();
        }
        let quality = match self.score() {
            100 => "full skill match",
            60..=99 => "strong skill match",
            30..=59 => "partial skill match",
            1..=29 => "weak skill match",
            _ => "no skill match",
        };
        let count = format!("{}/{} required skills", self.matched.len(), self.required);
        if self.matched.is_empty() {
            return format!("{quality} ({count})");
        }
        let mut listed: Vec<&str> = self.matched.iter().take(3).map(String::as_str).collect();
        if self.matched.len() > 3 {
            listed.push("…");
        }
        format!("{quality} ({count}: {})", listed.join(", "))
    }
}

/// The vetting factor: basis points to percent, rounded half up; not vetted = 0.
fn vetting_factor(bp: Option<i64>) -> u8 {
    bp.map_or(0, |bp| clamp_percent((bp.clamp(0, 10_000) + 50) / 100))
}

/// The ratings factor: 0..=5 stars × 20, rounded; no rating = neutral.
fn rating_factor(rating: Option<f64>) -> u8 {
    // `rating` is finite and within 0..=5 here, so the product is within 0..=100.
    rating.map_or(NEUTRAL, |r| clamp_percent((r * 20.0).round() as i64))
}

/// The past performance factor: 50, plus 5 per completed project (up to 10 projects), minus 20
/// per dispute lost; clamped to 0..=100.
fn past_performance_factor(completed: u32, disputes_lost: u32) -> u8 {
    let base = 50 + 5 * i64::from(completed.min(10));
    clamp_percent(base - 20 * i64::from(disputes_lost.min(10)))
}

/// The timezone factor from the hours apart (0..=12): linear from 100 (same offset) to 0
/// (12 h apart), rounded half up; unknown = neutral.
fn timezone_factor(distance_minutes: Option<i32>) -> u8 {
    match distance_minutes {
        Some(d) => {
            let d = i64::from(d.clamp(0, 720));
            clamp_percent((200 * (720 - d) + 720) / 1440)
        }
        None => NEUTRAL,
    }
}

fn confidence(c: &Candidate) -> Confidence {
    let vetted = c.vetting_score_bp.is_some();
    let rated = c.rating.is_some_and(f64::is_finite);
    if vetted && rated && c.completed_projects >= 3 {
        return Confidence::High;
    }
    let known = [vetted, rated, c.completed_projects >= 1].iter().filter(|k| **k).count();
    if known >= 2 {
        Confidence::Medium
    } else {
        Confidence::Low
    }
}

/// A freelancer's stated availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Availability {
    Available,
    Busy,
    Unavailable,
    Unknown,
}

impl Availability {
    fn parse(text: Option<&str>) -> Self {
        match text.map(|t| t.trim().to_ascii_lowercase()).as_deref() {
            Some("available") => Availability::Available,
            Some("busy") => Availability::Busy,
            Some("unavailable") => Availability::Unavailable,
            _ => Availability::Unknown,
        }
    }

    fn score(&self) -> u8 {
        match self {
            Availability::Available => 100,
            Availability::Busy => 40,
            Availability::Unavailable => 0,
            Availability::Unknown => NEUTRAL,
        }
    }

    fn phrase(&self) -> &'static str {
        match self {
            Availability::Available => "available now",
            Availability::Busy => "currently busy",
            Availability::Unavailable => "unavailable",
            Availability::Unknown => "availability unknown",
        }
    }
}

fn performance_phrase(completed: u32, disputes_lost: u32) -> String {
    let projects = match completed {
        0 => "no completed projects yet".to_owned(),
        1 => "1 completed project".to_owned(),
        n => format!("{n} completed projects"),
    };
    match disputes_lost {
        0 => projects,
        1 => format!("{projects}, 1 dispute lost"),
        n => format!("{projects}, {n} disputes lost"),
    }
}

/// `3h`, `5h30m`, `45m`.
fn format_distance(minutes: i32) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m:02}m"),
    }
}

/// "Strongest factor: …; weakest: …." Ties go to the heavier factor, then the table order.
fn extremes_sentence(breakdown: &ScoringBreakdown) -> String {
    let factors = breakdown.factors();
    let mut strongest = factors[0];
    let mut weakest = factors[0];
    for &(factor, value) in &factors[1..] {
        if value > strongest.1 || (value == strongest.1 && factor.weight() > strongest.0.weight()) {
            strongest = (factor, value);
        }
        if value < weakest.1 || (value == weakest.1 && factor.weight() > weakest.0.weight()) {
            weakest = (factor, value);
        }
    }
    if strongest.1 == weakest.1 {
        return format!("Every factor scores {}/100.", strongest.1);
    }
    format!(
        "Strongest factor: {} ({}/100); weakest: {} ({}/100).",
        strongest.0.label(),
        strongest.1,
        weakest.0.label(),
        weakest.1
    )
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `num / den` as a percentage rounded half up (`den > 0`).
fn ratio_percent(num: u64, den: u64) -> u8 {
    clamp_percent(((num * 200 + den) / (2 * den)) as i64)
}

fn clamp_percent(value: i64) -> u8 {
    value.clamp(0, 100) as u8
}

// ---------------------------------------------------------------------------------------------
// Timezones
// ---------------------------------------------------------------------------------------------

/// Standard-time UTC offsets (minutes) of common IANA zones. Daylight saving is ignored.
const IANA_OFFSETS: &[(&str, i32)] = &[
    ("UTC", 0),
    ("Etc/UTC", 0),
    ("Etc/GMT", 0),
    ("Europe/London", 0),
    ("Europe/Dublin", 0),
    ("Europe/Lisbon", 0),
    ("Africa/Accra", 0),
    ("Africa/Abidjan", 0),
    ("Africa/Dakar", 0),
    ("Africa/Lagos", 60),
    ("Africa/Kinshasa", 60),
    ("Africa/Casablanca", 60),
    ("Africa/Algiers", 60),
    ("Africa/Tunis", 60),
    ("Europe/Berlin", 60),
    ("Europe/Paris", 60),
    ("Europe/Madrid", 60),
    ("Europe/Rome", 60),
    ("Europe/Amsterdam", 60),
    ("Europe/Brussels", 60),
    ("Europe/Vienna", 60),
    ("Europe/Zurich", 60),
    ("Europe/Stockholm", 60),
    ("Europe/Oslo", 60),
    ("Europe/Copenhagen", 60),
    ("Europe/Warsaw", 60),
    ("Europe/Prague", 60),
    ("Europe/Budapest", 60),
    ("Africa/Cairo", 120),
    ("Africa/Johannesburg", 120),
    ("Africa/Kigali", 120),
    ("Africa/Lusaka", 120),
    ("Africa/Harare", 120),
    ("Europe/Athens", 120),
    ("Europe/Bucharest", 120),
    ("Europe/Helsinki", 120),
    ("Europe/Kyiv", 120),
    ("Europe/Kiev", 120),
    ("Asia/Jerusalem", 120),
    ("Asia/Beirut", 120),
    ("Africa/Nairobi", 180),
    ("Africa/Addis_Ababa", 180),
    ("Africa/Dar_es_Salaam", 180),
    ("Africa/Kampala", 180),
    ("Europe/Moscow", 180),
    ("Europe/Istanbul", 180),
    ("Asia/Riyadh", 180),
    ("Asia/Qatar", 180),
    ("Asia/Baghdad", 180),
    ("Asia/Tehran", 210),
    ("Asia/Dubai", 240),
    ("Asia/Baku", 240),
    ("Asia/Kabul", 270),
    ("Asia/Karachi", 300),
    ("Asia/Tashkent", 300),
    ("Asia/Kolkata", 330),
    ("Asia/Calcutta", 330),
    ("Asia/Colombo", 330),
    ("Asia/Kathmandu", 345),
    ("Asia/Dhaka", 360),
    ("Asia/Almaty", 360),
    ("Asia/Yangon", 390),
    ("Asia/Bangkok", 420),
    ("Asia/Jakarta", 420),
    ("Asia/Ho_Chi_Minh", 420),
    ("Asia/Singapore", 480),
    ("Asia/Kuala_Lumpur", 480),
    ("Asia/Shanghai", 480),
    ("Asia/Hong_Kong", 480),
    ("Asia/Taipei", 480),
    ("Asia/Manila", 480),
    ("Australia/Perth", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Australia/Adelaide", 570),
    ("Australia/Darwin", 570),
    ("Australia/Sydney", 600),
    ("Australia/Melbourne", 600),
    ("Australia/Brisbane", 600),
    ("Pacific/Auckland", 720),
    ("Pacific/Fiji", 720),
    ("Atlantic/Azores", -60),
    ("Atlantic/Cape_Verde", -60),
    ("America/Noronha", -120),
    ("America/Sao_Paulo", -180),
    ("America/Argentina/Buenos_Aires", -180),
    ("America/Buenos_Aires", -180),
    ("America/Santiago", -240),
    ("America/Montevideo", -180),
    ("America/St_Johns", -210),
    ("America/Halifax", -240),
    ("America/Caracas", -240),
    ("America/La_Paz", -240),
    ("America/New_York", -300),
    ("America/Toronto", -300),
    ("America/Detroit", -300),
    ("America/Bogota", -300),
    ("America/Lima", -300),
    ("America/Panama", -300),
    ("America/Chicago", -360),
    ("America/Mexico_City", -360),
    ("America/Winnipeg", -360),
    ("America/Denver", -420),
    ("America/Phoenix", -420),
    ("America/Edmonton", -420),
    ("America/Los_Angeles", -480),
    ("America/Vancouver", -480),
    ("America/Tijuana", -480),
    ("America/Anchorage", -540),
    ("Pacific/Honolulu", -600),
];

/// The UTC offset of a timezone, in minutes: `UTC`, `GMT`, `Z`, `UTC+02:00`, `UTC-5`,
/// `GMT+1`, `+0530`, `-03:00`, `+3`, or a common IANA name (case-insensitive). `None` when it
/// cannot be read. Offsets beyond ±14:00 are refused.
pub fn parse_utc_offset(timezone: &str) -> Option<i32> {
    let text = timezone.trim();
    if text.is_empty() {
        return None;
    }
    if let Some((_, offset)) = IANA_OFFSETS.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)) {
        return Some(*offset);
    }
    let upper = text.to_ascii_uppercase();
    if upper == "Z" {
        return Some(0);
    }
    let rest = upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT")).map(str::trim);
    let rest = match rest {
        Some("") => return Some(0),
        Some(rest) => rest,
        None => upper.as_str(),
    };
    let (sign, body) = if let Some(body) = rest.strip_prefix('+') {
        (1, body)
    } else if let Some(body) = rest.strip_prefix('-') {
        (-1, body)
    } else {
        return None;
    };
    let (hours, minutes) = match body.split_once(':') {
        Some((h, m)) => (h, m),
        None if body.len() == 4 || body.len() == 3 => body.split_at(body.len() - 2),
        None => (body, "00"),
    };
    let digits = |s: &str, max_len: usize| !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(hours, 2) || minutes.len() != 2 || !digits(minutes, 2) {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    let total = hours * 60 + minutes;
    if minutes >= 60 || total > 14 * 60 {
        return None;
    }
    Some(sign * total)
}

/// How far apart two timezones are, in minutes, measured around the clock (0..=720); `None`
/// when either cannot be read.
pub fn timezone_distance_minutes(a: &str, b: &str) -> Option<i32> {
    let diff = (parse_utc_offset(a)? - parse_utc_offset(b)?).rem_euclid(24 * 60);
    Some(diff.min(24 * 60 - diff))
}

// ---------------------------------------------------------------------------------------------
// The Match aggregate: statuses, commands
// ---------------------------------------------------------------------------------------------

/// Where a match proposal is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchStatus {
    #[default]
    Pending,
    Accepted,
    Rejected,
    Expired,
}

impl MatchStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchStatus::Pending => "pending",
            MatchStatus::Accepted => "accepted",
            MatchStatus::Rejected => "rejected",
            MatchStatus::Expired => "expired",
        }
    }
}

impl std::fmt::Display for MatchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client's answer to a proposal.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAction {
    Accepted,
    Rejected,
}

/// `record-match`: the system, an admin or the project's client records a scored proposal (the
/// handler ran [`score`] and checked that `client_id` is the project's client).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordMatch {
    pub match_id: Uuid,
    pub project_id: Uuid,
    pub freelancer_id: Uuid,
    pub client_id: Uuid,
    pub scored: Scored,
    pub expires_at: DateTime<Utc>,
}

/// `accept-match`: the client, while the proposal is pending and not yet expired.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcceptMatch {
    pub match_id: Uuid,
}

/// `reject-match`: the client, while the proposal is pending and not yet expired.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejectMatch {
    pub match_id: Uuid,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `expire-match`: the scheduler, once a pending proposal is due.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpireMatch {
    pub match_id: Uuid,
}

/// A command to a match. `actor` comes from the session (or the scheduler); `at` is the
/// handler's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: MatchAction,
}

impl MatchCommand {
    /// The stream the command goes to.
    pub fn stream_id(&self) -> String {
        stream_id(self.action.match_id())
    }
}

/// Every action on a match, one variant per payload.
#[derive(Debug, Clone, PartialEq)]
pub enum MatchAction {
    RecordMatch(RecordMatch),
    AcceptMatch(AcceptMatch),
    RejectMatch(RejectMatch),
    ExpireMatch(ExpireMatch),
}

macro_rules! match_actions {
    ($($variant:ident => $name:literal),* $(,)?) => {
        $(
            impl From<$variant> for MatchAction {
                fn from(payload: $variant) -> Self {
                    MatchAction::$variant(payload)
                }
            }
        )*

        impl MatchAction {
            /// The match (and so the stream) the action addresses.
            pub fn match_id(&self) -> Uuid {
                match self {
                    $(MatchAction::$variant(p) => p.match_id,)*
                }
            }

            /// A stable kebab-case name, for logs and metrics.
            pub fn name(&self) -> &'static str {
                match self {
                    $(MatchAction::$variant(_) => $name,)*
                }
            }
        }
    };
}

match_actions! {
    RecordMatch => "record-match",
    AcceptMatch => "accept-match",
    RejectMatch => "reject-match",
    ExpireMatch => "expire-match",
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What happened to a match. Each event carries what the `matches` read table needs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum MatchEvent {
    #[serde(rename_all = "camelCase")]
    MatchGenerated {
        match_id: Uuid,
        project_id: Uuid,
        freelancer_id: Uuid,
        client_id: Uuid,
        score: u8,
        confidence: Confidence,
        scoring_breakdown: ScoringBreakdown,
        explanation: String,
        /// Always `pending`.
        status: MatchStatus,
        expires_at: DateTime<Utc>,
        generated_by: Uuid,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    MatchAccepted {
        match_id: Uuid,
        project_id: Uuid,
        freelancer_id: Uuid,
        client_id: Uuid,
        /// Always `accepted`.
        status: MatchStatus,
        client_action: ClientAction,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    MatchRejected {
        match_id: Uuid,
        project_id: Uuid,
        freelancer_id: Uuid,
        client_id: Uuid,
        reason: Option<String>,
        /// Always `rejected`.
        status: MatchStatus,
        client_action: ClientAction,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    MatchExpired {
        match_id: Uuid,
        project_id: Uuid,
        freelancer_id: Uuid,
        /// Always `expired`.
        status: MatchStatus,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for MatchEvent {}

impl MatchEvent {
    /// The match the event belongs to.
    pub fn match_id(&self) -> Uuid {
        match self {
            MatchEvent::MatchGenerated { match_id, .. }
            | MatchEvent::MatchAccepted { match_id, .. }
            | MatchEvent::MatchRejected { match_id, .. }
            | MatchEvent::MatchExpired { match_id, .. } => *match_id,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a match command was refused: one variant per rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatchError {
    #[error("only the system, an admin or the project's client may record a match")]
    NotAllowedToRecord,
    #[error("only the project's client may answer a match")]
    NotTheClient,
    #[error("only the system may expire a match")]
    OnlySystemExpires,
    #[error("the match does not exist")]
    MatchNotFound,
    #[error("the match already exists")]
    AlreadyExists,
    #[error("the match is {status}, not pending")]
    NotPending { status: MatchStatus },
    #[error("the match expired at {expires_at}")]
    Expired { expires_at: DateTime<Utc> },
    #[error("the match does not expire before {expires_at}")]
    NotExpiredYet { expires_at: DateTime<Utc> },
    #[error("{field} must be between 0 and 100, got {value}")]
    ScoreOutOfRange { field: &'static str, value: u8 },
    #[error("the expiry must be after the time the match is recorded")]
    ExpiryNotInFuture,
}

impl MatchError {
    /// The HTTP class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        use MatchError::*;
        match self {
            NotAllowedToRecord | NotTheClient | OnlySystemExpires => ErrorKind::Forbidden,
            MatchNotFound => ErrorKind::NotFound,
            AlreadyExists | NotPending { .. } | Expired { .. } | NotExpiredYet { .. } => ErrorKind::Conflict,
            ScoreOutOfRange { .. } | ExpiryNotInFuture => ErrorKind::Invalid,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// A match as its events left it. Fields are private: only `evolve` writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    exists: bool,
    match_id: Option<Uuid>,
    project_id: Option<Uuid>,
    freelancer_id: Option<Uuid>,
    client_id: Option<Uuid>,
    score: u8,
    confidence: Option<Confidence>,
    breakdown: ScoringBreakdown,
    explanation: String,
    status: MatchStatus,
    client_action: Option<ClientAction>,
    rejection_reason: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    generated_by: Option<Uuid>,
    generated_at: Option<DateTime<Utc>>,
    /// When the client answered or the proposal expired.
    closed_at: Option<DateTime<Utc>>,
}

impl Match {
    pub fn exists(&self) -> bool {
        self.exists
    }
    pub fn match_id(&self) -> Option<Uuid> {
        self.match_id
    }
    pub fn project_id(&self) -> Option<Uuid> {
        self.project_id
    }
    pub fn freelancer_id(&self) -> Option<Uuid> {
        self.freelancer_id
    }
    pub fn client_id(&self) -> Option<Uuid> {
        self.client_id
    }
    pub fn score(&self) -> u8 {
        self.score
    }
    pub fn confidence(&self) -> Option<Confidence> {
        self.confidence
    }
    pub fn breakdown(&self) -> ScoringBreakdown {
        self.breakdown
    }
    pub fn explanation(&self) -> &str {
        &self.explanation
    }
    pub fn status(&self) -> MatchStatus {
        self.status
    }
    pub fn client_action(&self) -> Option<ClientAction> {
        self.client_action
    }
    pub fn rejection_reason(&self) -> Option<&str> {
        self.rejection_reason.as_deref()
    }
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }
    pub fn generated_by(&self) -> Option<Uuid> {
        self.generated_by
    }
    pub fn generated_at(&self) -> Option<DateTime<Utc>> {
        self.generated_at
    }
    pub fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.closed_at
    }

    /// The ids of the match the command names, if it exists (and is this stream's).
    fn require_match(&self, match_id: Uuid) -> Result<MatchIds, MatchError> {
        match (self.exists, self.match_id, self.project_id, self.freelancer_id, self.client_id) {
            (true, Some(id), Some(project_id), Some(freelancer_id), Some(client_id)) if id == match_id => {
                Ok(MatchIds { match_id, project_id, freelancer_id, client_id })
            }
            _ => Err(MatchError::MatchNotFound),
        }
    }

    /// The client's answer: only the client, only while pending and before the expiry.
    fn require_answerable(&self, actor: &Actor, match_id: Uuid, at: DateTime<Utc>) -> Result<MatchIds, MatchError> {
        let ids = self.require_match(match_id)?;
        if actor.id != ids.client_id {
            return Err(MatchError::NotTheClient);
        }
        if self.status != MatchStatus::Pending {
            return Err(MatchError::NotPending { status: self.status });
        }
        if let Some(expires_at) = self.expires_at.filter(|expires_at| at >= *expires_at) {
            return Err(MatchError::Expired { expires_at });
        }
        Ok(ids)
    }

    fn decide_record(&self, actor: &Actor, p: &RecordMatch, at: DateTime<Utc>) -> Result<Vec<MatchEvent>, MatchError> {
        let is_client = actor.role == Role::Client && actor.id == p.client_id;
        if !is_client && !matches!(actor.role, Role::System | Role::Admin) {
            return Err(MatchError::NotAllowedToRecord);
        }
        if self.exists {
            return Err(MatchError::AlreadyExists);
        }
        let b = &p.scored.breakdown;
        let values = [
            ("score", p.scored.score),
            ("skillOverlap", b.skill_overlap),
            ("vettingScore", b.vetting_score),
            ("ratings", b.ratings),
            ("availability", b.availability),
            ("pastPerformance", b.past_performance),
            ("timezoneCompatibility", b.timezone_compatibility),
        ];
        if let Some(&(field, value)) = values.iter().find(|(_, value)| *value > 100) {
            return Err(MatchError::ScoreOutOfRange { field, value });
        }
        if p.expires_at <= at {
            return Err(MatchError::ExpiryNotInFuture);
        }
        Ok(vec![MatchEvent::MatchGenerated {
            match_id: p.match_id,
            project_id: p.project_id,
            freelancer_id: p.freelancer_id,
            client_id: p.client_id,
            score: p.scored.score,
            confidence: p.scored.confidence,
            scoring_breakdown: p.scored.breakdown,
            explanation: p.scored.explanation.clone(),
            status: MatchStatus::Pending,
            expires_at: p.expires_at,
            generated_by: actor.id,
            at,
        }])
    }
}

/// The ids every answer event repeats.
struct MatchIds {
    match_id: Uuid,
    project_id: Uuid,
    freelancer_id: Uuid,
    client_id: Uuid,
}

impl Aggregate for Match {
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    type Event = MatchEvent;
    type Command = MatchCommand;
    type Error = MatchError;

    fn decide(&self, command: &MatchCommand) -> Result<Vec<MatchEvent>, MatchError> {
        let MatchCommand { actor, at, action } = command;
        let at = *at;
        match action {
            MatchAction::RecordMatch(p) => self.decide_record(actor, p, at),
            MatchAction::AcceptMatch(p) => {
                let ids = self.require_answerable(actor, p.match_id, at)?;
                Ok(vec![MatchEvent::MatchAccepted {
                    match_id: ids.match_id,
                    project_id: ids.project_id,
                    freelancer_id: ids.freelancer_id,
                    client_id: ids.client_id,
                    status: MatchStatus::Accepted,
                    client_action: ClientAction::Accepted,
                    at,
                }])
            }
            MatchAction::RejectMatch(p) => {
                let ids = self.require_answerable(actor, p.match_id, at)?;
                let reason = p.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned);
                Ok(vec![MatchEvent::MatchRejected {
                    match_id: ids.match_id,
                    project_id: ids.project_id,
                    freelancer_id: ids.freelancer_id,
                    client_id: ids.client_id,
                    reason,
                    status: MatchStatus::Rejected,
                    client_action: ClientAction::Rejected,
                    at,
                }])
            }
            MatchAction::ExpireMatch(p) => {
                if actor.role != Role::System {
                    return Err(MatchError::OnlySystemExpires);
                }
                let ids = self.require_match(p.match_id)?;
                if self.status != MatchStatus::Pending {
                    return Err(MatchError::NotPending { status: self.status });
                }
                if let Some(expires_at) = self.expires_at.filter(|expires_at| at < *expires_at) {
                    return Err(MatchError::NotExpiredYet { expires_at });
                }
                Ok(vec![MatchEvent::MatchExpired {
                    match_id: ids.match_id,
                    project_id: ids.project_id,
                    freelancer_id: ids.freelancer_id,
                    status: MatchStatus::Expired,
                    at,
                }])
            }
        }
    }

    fn evolve(&mut self, event: &MatchEvent) {
        match event {
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
                generated_by,
                at,
            } => {
                self.exists = true;
                self.match_id = Some(*match_id);
                self.project_id = Some(*project_id);
                self.freelancer_id = Some(*freelancer_id);
                self.client_id = Some(*client_id);
                self.score = *score;
                self.confidence = Some(*confidence);
                self.breakdown = *scoring_breakdown;
                self.explanation = explanation.clone();
                self.status = *status;
                self.expires_at = Some(*expires_at);
                self.generated_by = Some(*generated_by);
                self.generated_at = Some(*at);
            }
            MatchEvent::MatchAccepted { status, client_action, at, .. } => {
                self.status = *status;
                self.client_action = Some(*client_action);
                self.closed_at = Some(*at);
            }
            MatchEvent::MatchRejected { status, client_action, reason, at, .. } => {
                self.status = *status;
                self.client_action = Some(*client_action);
                self.rejection_reason = reason.clone();
                self.closed_at = Some(*at);
            }
            MatchEvent::MatchExpired { status, at, .. } => {
                self.status = *status;
                self.closed_at = Some(*at);
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

    const MATCH: Uuid = Uuid::from_u128(0x301);
    const PROJECT: Uuid = Uuid::from_u128(0x1);
    const CLIENT: Uuid = Uuid::from_u128(0xC1);
    const OTHER_CLIENT: Uuid = Uuid::from_u128(0xC2);
    const FREELANCER: Uuid = Uuid::from_u128(0xF1);
    const F2: Uuid = Uuid::from_u128(0xF2);
    const F3: Uuid = Uuid::from_u128(0xF3);
    const ADMIN: Uuid = Uuid::from_u128(0xAD);

    fn t(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_735_689_600 + hours * 3_600, 0).expect("valid time")
    }

    fn skills(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn req(required: &[&str], tz: Option<&str>) -> Requirements {
        Requirements { required_skills: skills(required), client_timezone: tz.map(str::to_owned) }
    }

    /// A candidate with nothing known.
    fn blank(freelancer_id: Uuid) -> Candidate {
        Candidate {
            freelancer_id,
            skills: vec![],
            vetting_score_bp: None,
            rating: None,
            availability: None,
            completed_projects: 0,
            disputes_lost: 0,
            timezone: None,
        }
    }

    fn seasoned() -> Candidate {
        Candidate {
            freelancer_id: FREELANCER,
            skills: skills(&["Rust", "SQL", "Docker", "AWS", "Go"]),
            vetting_score_bp: Some(8_150),
            rating: Some(4.6),
            availability: Some("available".into()),
            completed_projects: 3,
            disputes_lost: 0,
            timezone: Some("Africa/Lagos".into()),
        }
    }

    fn project_req() -> Requirements {
        req(&["rust", "sql", "docker", "aws", "kubernetes"], Some("Europe/Moscow"))
    }

    // weights

    #[test]
    fn it_should_weight_the_factors_35_20_15_10_10_10() {
        let weights: Vec<u32> = ScoringBreakdown::default().factors().iter().map(|(f, _)| f.weight()).collect();
        assert_eq!(weights, vec![35, 20, 15, 10, 10, 10]);
        assert_eq!(weights.iter().sum::<u32>(), 100);
        let only = |i: usize| {
            let mut values = [0u8; 6];
            values[i] = 100;
            ScoringBreakdown {
                skill_overlap: values[0],
                vetting_score: values[1],
                ratings: values[2],
                availability: values[3],
                past_performance: values[4],
                timezone_compatibility: values[5],
            }
            .weighted_score()
        };
        assert_eq!((0..6).map(only).collect::<Vec<_>>(), vec![35, 20, 15, 10, 10, 10]);
    }

    #[test]
    fn it_should_score_a_seasoned_candidate_by_the_weighted_factors() {
        let scored = score(&project_req(), &seasoned());
        assert_eq!(
            scored.breakdown,
            ScoringBreakdown {
                skill_overlap: 80,
                vetting_score: 82,
                ratings: 92,
                availability: 100,
                past_performance: 65,
                timezone_compatibility: 83,
            }
        );
        // 35×80 + 20×82 + 15×92 + 10×100 + 10×65 + 10×83 = 8 300 → 83
        assert_eq!(scored.score, 83);
        assert_eq!(scored.confidence, Confidence::High);
    }

    #[test]
    fn it_should_round_the_weighted_score_half_up() {
        let b = ScoringBreakdown { skill_overlap: 1, ..ScoringBreakdown::default() };
        assert_eq!(b.weighted_score(), 0); // 0.35
        let b = ScoringBreakdown { skill_overlap: 10, ..ScoringBreakdown::default() };
        assert_eq!(b.weighted_score(), 4); // 3.5
        let all = ScoringBreakdown {
            skill_overlap: 100,
            vetting_score: 100,
            ratings: 100,
            availability: 100,
            past_performance: 100,
            timezone_compatibility: 100,
        };
        assert_eq!(all.weighted_score(), 100);
    }

    // skills

    #[test]
    fn it_should_match_skills_case_insensitively() {
        let c = Candidate { skills: skills(&["  RUST ", "PostgreSQL", "machine   learning"]), ..blank(FREELANCER) };
        let scored = score(&req(&["rust", "postgresql", "Machine Learning", "go"], None), &c);
        assert_eq!(scored.breakdown.skill_overlap, 75);
    }

    #[test]
    fn it_should_ignore_duplicate_and_blank_required_skills() {
        let c = Candidate { skills: skills(&["rust"]), ..blank(FREELANCER) };
        let scored = score(&req(&["Rust", "rust", " ", "SQL"], None), &c);
        assert_eq!(scored.breakdown.skill_overlap, 50);
        assert!(
            scored.explanation.starts_with("Partial skill match (1/2 required skills: rust)"),
            "{}",
            scored.explanation
        );
    }

    #[test]
    fn it_should_give_full_skill_overlap_when_no_skills_are_required() {
        let scored = score(&req(&[], None), &blank(FREELANCER));
        assert_eq!(scored.breakdown.skill_overlap, 100);
        assert!(scored.explanation.starts_with("No specific skills required;"), "{}", scored.explanation);
    }

    #[test]
    fn it_should_give_no_skill_overlap_without_a_matching_skill() {
        let c = Candidate { skills: skills(&["cobol"]), ..blank(FREELANCER) };
        let scored = score(&req(&["rust", "go", "sql"], None), &c);
        assert_eq!(scored.breakdown.skill_overlap, 0);
        assert!(scored.explanation.starts_with("No skill match (0/3 required skills);"), "{}", scored.explanation);
    }

    #[test]
    fn it_should_round_the_skill_overlap_half_up() {
        let c = Candidate { skills: skills(&["a", "b"]), ..blank(FREELANCER) };
        assert_eq!(score(&req(&["a", "b", "c"], None), &c).breakdown.skill_overlap, 67);
        let c = Candidate { skills: skills(&["a"]), ..blank(FREELANCER) };
        assert_eq!(score(&req(&["a", "b", "c"], None), &c).breakdown.skill_overlap, 33);
        assert_eq!(score(&req(&["a", "b", "c", "d", "e", "f", "g", "h"], None), &c).breakdown.skill_overlap, 13);
    }

    // vetting, ratings, availability, past performance

    #[test]
    fn it_should_score_vetting_from_basis_points() {
        let with = |bp| score(&req(&[], None), &Candidate { vetting_score_bp: Some(bp), ..blank(FREELANCER) });
        assert_eq!(with(8_150).breakdown.vetting_score, 82);
        assert_eq!(with(8_149).breakdown.vetting_score, 81);
        assert_eq!(with(10_000).breakdown.vetting_score, 100);
        assert_eq!(with(25_000).breakdown.vetting_score, 100);
        assert_eq!(with(-5).breakdown.vetting_score, 0);
    }

    #[test]
    fn it_should_count_a_missing_vetting_as_zero() {
        let scored = score(&req(&[], None), &blank(FREELANCER));
        assert_eq!(scored.breakdown.vetting_score, 0);
        assert!(scored.explanation.contains("; not vetted;"), "{}", scored.explanation);
    }

    #[test]
    fn it_should_score_ratings_out_of_five() {
        let with = |r| score(&req(&[], None), &Candidate { rating: Some(r), ..blank(FREELANCER) }).breakdown.ratings;
        assert_eq!(with(5.0), 100);
        assert_eq!(with(4.6), 92);
        assert_eq!(with(2.5), 50);
        assert_eq!(with(0.0), 0);
        assert_eq!(with(7.0), 100);
        assert_eq!(with(-1.0), 0);
    }

    #[test]
    fn it_should_score_a_missing_or_unreadable_rating_as_neutral() {
        assert_eq!(score(&req(&[], None), &blank(FREELANCER)).breakdown.ratings, 50);
        let nan = Candidate { rating: Some(f64::NAN), ..blank(FREELANCER) };
        let scored = score(&req(&[], None), &nan);
        assert_eq!(scored.breakdown.ratings, 50);
        assert!(scored.explanation.contains("no ratings yet"));
        assert_eq!(scored.confidence, Confidence::Low);
    }

    #[test]
    fn it_should_score_availability() {
        let with = |a: Option<&str>| {
            score(&req(&[], None), &Candidate { availability: a.map(str::to_owned), ..blank(FREELANCER) })
                .breakdown
                .availability
        };
        assert_eq!(with(Some("available")), 100);
        assert_eq!(with(Some(" Available ")), 100);
        assert_eq!(with(Some("busy")), 40);
        assert_eq!(with(Some("unavailable")), 0);
        assert_eq!(with(Some("on holiday")), 50);
        assert_eq!(with(None), 50);
    }

    #[test]
    fn it_should_reward_completed_projects_and_penalise_lost_disputes() {
        assert_eq!(past_performance_factor(0, 0), 50);
        assert_eq!(past_performance_factor(3, 0), 65);
        assert_eq!(past_performance_factor(10, 0), 100);
        assert_eq!(past_performance_factor(50, 0), 100);
        assert_eq!(past_performance_factor(10, 1), 80);
        assert_eq!(past_performance_factor(2, 3), 0);
        assert_eq!(past_performance_factor(u32::MAX, u32::MAX), 0);
    }

    // timezones

    #[test]
    fn it_should_parse_utc_offsets_in_several_forms() {
        for (text, minutes) in [
            ("UTC", 0),
            ("utc", 0),
            ("GMT", 0),
            ("Z", 0),
            ("UTC+02:00", 120),
            ("UTC-05:00", -300),
            ("UTC+2", 120),
            ("UTC -3", -180),
            ("GMT+1", 60),
            ("+0530", 330),
            ("+05:30", 330),
            ("-0330", -210),
            ("+530", 330),
            ("-03", -180),
            ("+14:00", 840),
        ] {
            assert_eq!(parse_utc_offset(text), Some(minutes), "{text}");
        }
    }

    #[test]
    fn it_should_know_common_iana_zones() {
        assert_eq!(parse_utc_offset("Africa/Lagos"), Some(60));
        assert_eq!(parse_utc_offset("africa/nairobi"), Some(180));
        assert_eq!(parse_utc_offset("Asia/Kolkata"), Some(330));
        assert_eq!(parse_utc_offset("America/New_York"), Some(-300));
        assert_eq!(parse_utc_offset("America/Los_Angeles"), Some(-480));
        assert_eq!(parse_utc_offset("Europe/London"), Some(0));
    }

    #[test]
    fn it_should_not_read_unknown_or_malformed_timezones() {
        for text in ["", "  ", "Mars/Olympus", "UTC+15", "+2400", "+05:60", "+5:3", "UTC+", "0530", "Etc/GMT+5", "+1a"]
        {
            assert_eq!(parse_utc_offset(text), None, "{text}");
        }
    }

    #[test]
    fn it_should_measure_timezone_distance_around_the_clock() {
        assert_eq!(timezone_distance_minutes("UTC", "UTC+03:00"), Some(180));
        assert_eq!(timezone_distance_minutes("UTC+03:00", "UTC"), Some(180));
        assert_eq!(timezone_distance_minutes("UTC+12:00", "UTC-11:00"), Some(60));
        assert_eq!(timezone_distance_minutes("Asia/Tokyo", "America/New_York"), Some(600));
        assert_eq!(timezone_distance_minutes("UTC", "Nowhere"), None);
    }

    #[test]
    fn it_should_score_timezone_compatibility_by_hours_apart() {
        assert_eq!(timezone_factor(Some(0)), 100);
        assert_eq!(timezone_factor(Some(180)), 75);
        assert_eq!(timezone_factor(Some(360)), 50);
        assert_eq!(timezone_factor(Some(720)), 0);
        assert_eq!(timezone_factor(Some(60)), 92);
        let scored =
            score(&req(&[], Some("UTC")), &Candidate { timezone: Some("UTC+05:30".into()), ..blank(FREELANCER) });
        assert_eq!(scored.breakdown.timezone_compatibility, 54);
        assert!(scored.explanation.contains("5h30m from the client's timezone"), "{}", scored.explanation);
    }

    #[test]
    fn it_should_score_an_unknown_timezone_50() {
        let c = Candidate { timezone: Some("Somewhere/Else".into()), ..blank(FREELANCER) };
        assert_eq!(score(&req(&[], Some("UTC")), &c).breakdown.timezone_compatibility, 50);
        assert_eq!(score(&req(&[], None), &seasoned()).breakdown.timezone_compatibility, 50);
        let scored = score(&req(&[], Some("UTC")), &blank(FREELANCER));
        assert_eq!(scored.breakdown.timezone_compatibility, 50);
        assert!(scored.explanation.contains("timezone compatibility unknown"));
    }

    // confidence

    #[test]
    fn it_should_be_confident_with_a_vetting_a_rating_and_three_completed_projects() {
        assert_eq!(score(&project_req(), &seasoned()).confidence, Confidence::High);
        let two_projects = Candidate { completed_projects: 2, ..seasoned() };
        assert_eq!(score(&project_req(), &two_projects).confidence, Confidence::Medium);
    }

    #[test]
    fn it_should_be_moderately_confident_with_two_of_vetting_rating_and_track_record() {
        let vetted_and_rated = Candidate { vetting_score_bp: Some(7_000), rating: Some(4.0), ..blank(FREELANCER) };
        assert_eq!(score(&project_req(), &vetted_and_rated).confidence, Confidence::Medium);
        let vetted_with_one_project =
            Candidate { vetting_score_bp: Some(7_000), completed_projects: 1, ..blank(FREELANCER) };
        assert_eq!(score(&project_req(), &vetted_with_one_project).confidence, Confidence::Medium);
    }

    #[test]
    fn it_should_have_low_confidence_with_little_data() {
        assert_eq!(score(&project_req(), &blank(FREELANCER)).confidence, Confidence::Low);
        let vetted_only =
            Candidate { vetting_score_bp: Some(9_000), availability: Some("available".into()), ..blank(FREELANCER) };
        assert_eq!(score(&project_req(), &vetted_only).confidence, Confidence::Low);
    }

    // explanation

    #[test]
    fn it_should_explain_the_score_in_a_sentence() {
        assert_eq!(
            score(&project_req(), &seasoned()).explanation,
            "Strong skill match (4/5 required skills: rust, sql, docker, …); vetted 82%; rated 4.6/5; available now; \
             3 completed projects; 2h from the client's timezone. \
             Strongest factor: availability (100/100); weakest: past performance (65/100)."
        );
    }

    #[test]
    fn it_should_name_the_strongest_and_weakest_factors() {
        let c = Candidate {
            skills: skills(&["rust"]),
            availability: Some("unavailable".into()),
            completed_projects: 1,
            disputes_lost: 2,
            timezone: Some("UTC".into()),
            ..blank(FREELANCER)
        };
        let scored = score(&req(&["rust"], Some("UTC")), &c);
        // skills 100 and timezone 100 tie: the heavier (skills) is the strongest; vetting 0,
        // availability 0 and past performance 15 → vetting (heavier) is the weakest.
        assert!(
            scored.explanation.ends_with("Strongest factor: skill overlap (100/100); weakest: vetting score (0/100)."),
            "{}",
            scored.explanation
        );
        assert!(scored
            .explanation
            .contains("unavailable; 1 completed project, 2 disputes lost; same timezone as the client"));
    }

    #[test]
    fn it_should_say_so_when_every_factor_scores_the_same() {
        let c =
            Candidate { rating: Some(2.5), skills: skills(&["a"]), vetting_score_bp: Some(5_000), ..blank(FREELANCER) };
        let scored = score(&req(&["a", "b"], None), &c);
        assert_eq!(scored.score, 50);
        assert!(scored.explanation.ends_with("Every factor scores 50/100."), "{}", scored.explanation);
    }

    #[test]
    fn it_should_be_deterministic() {
        let a = score(&project_req(), &seasoned());
        let b = score(&project_req(), &seasoned());
        assert_eq!(a, b);
        assert_eq!(rank(&project_req(), &[seasoned(), blank(F2)]), rank(&project_req(), &[seasoned(), blank(F2)]));
    }

    #[test]
    fn it_should_keep_every_factor_and_the_score_within_0_and_100() {
        let extremes = [
            blank(FREELANCER),
            Candidate {
                freelancer_id: FREELANCER,
                skills: skills(&["a", "b"]),
                vetting_score_bp: Some(i64::MAX),
                rating: Some(f64::INFINITY),
                availability: Some("available".into()),
                completed_projects: u32::MAX,
                disputes_lost: 0,
                timezone: Some("UTC".into()),
            },
            Candidate {
                vetting_score_bp: Some(i64::MIN),
                rating: Some(f64::NEG_INFINITY),
                disputes_lost: u32::MAX,
                ..blank(FREELANCER)
            },
        ];
        for c in &extremes {
            let scored = score(&req(&["a", "b"], Some("UTC")), c);
            assert!(scored.score <= 100);
            assert!(scored.breakdown.factors().iter().all(|(_, v)| *v <= 100));
        }
    }

    // rank

    #[test]
    fn it_should_rank_by_score_then_freelancer_id() {
        let strong = Candidate { freelancer_id: F3, ..seasoned() };
        let weak_b = blank(F2);
        let weak_a = blank(FREELANCER);
        let ranked = rank(&project_req(), &[weak_b, strong, weak_a]);
        let order: Vec<Uuid> = ranked.iter().map(|(id, _)| *id).collect();
        assert_eq!(order, vec![F3, FREELANCER, F2]);
        assert!(ranked[0].1.score > ranked[1].1.score);
        assert_eq!(ranked[1].1.score, ranked[2].1.score);
        assert!(rank(&project_req(), &[]).is_empty());
    }

    // the Match aggregate

    fn cmd(actor: Actor, at: DateTime<Utc>, action: impl Into<MatchAction>) -> MatchCommand {
        MatchCommand { actor, at, action: action.into() }
    }

    fn client() -> Actor {
        Actor { id: CLIENT, role: Role::Client }
    }
    fn other_client() -> Actor {
        Actor { id: OTHER_CLIENT, role: Role::Client }
    }
    fn freelancer() -> Actor {
        Actor { id: FREELANCER, role: Role::Freelancer }
    }
    fn admin() -> Actor {
        Actor { id: ADMIN, role: Role::Admin }
    }
    fn system() -> Actor {
        Actor::system()
    }

    fn scored() -> Scored {
        score(&project_req(), &seasoned())
    }

    fn record() -> RecordMatch {
        RecordMatch {
            match_id: MATCH,
            project_id: PROJECT,
            freelancer_id: FREELANCER,
            client_id: CLIENT,
            scored: scored(),
            expires_at: default_expiry(t(0)),
        }
    }

    fn generated_by(by: Uuid) -> MatchEvent {
        let scored = scored();
        MatchEvent::MatchGenerated {
            match_id: MATCH,
            project_id: PROJECT,
            freelancer_id: FREELANCER,
            client_id: CLIENT,
            score: scored.score,
            confidence: scored.confidence,
            scoring_breakdown: scored.breakdown,
            explanation: scored.explanation,
            status: MatchStatus::Pending,
            expires_at: t(7 * 24),
            generated_by: by,
            at: t(0),
        }
    }

    fn generated() -> MatchEvent {
        generated_by(Uuid::nil())
    }

    fn accepted() -> MatchEvent {
        MatchEvent::MatchAccepted {
            match_id: MATCH,
            project_id: PROJECT,
            freelancer_id: FREELANCER,
            client_id: CLIENT,
            status: MatchStatus::Accepted,
            client_action: ClientAction::Accepted,
            at: t(5),
        }
    }

    fn expired() -> MatchEvent {
        MatchEvent::MatchExpired {
            match_id: MATCH,
            project_id: PROJECT,
            freelancer_id: FREELANCER,
            status: MatchStatus::Expired,
            at: t(7 * 24),
        }
    }

    fn accept() -> AcceptMatch {
        AcceptMatch { match_id: MATCH }
    }
    fn reject(reason: Option<&str>) -> RejectMatch {
        RejectMatch { match_id: MATCH, reason: reason.map(str::to_owned) }
    }
    fn expire() -> ExpireMatch {
        ExpireMatch { match_id: MATCH }
    }

    #[test]
    fn it_should_record_a_match_from_the_system() {
        TestHarness::<Match>::given([]).when(cmd(system(), t(0), record())).then([generated()]);
        let m = Match::fold([generated()].iter());
        assert_eq!(m.status(), MatchStatus::Pending);
        assert_eq!(m.client_id(), Some(CLIENT));
        assert_eq!(m.score(), 83);
        assert_eq!(m.expires_at(), Some(t(168)));
    }

    #[test]
    fn it_should_let_an_admin_or_the_projects_client_record_a_match() {
        TestHarness::<Match>::given([]).when(cmd(admin(), t(0), record())).then([generated_by(ADMIN)]);
        TestHarness::<Match>::given([]).when(cmd(client(), t(0), record())).then([generated_by(CLIENT)]);
    }

    #[test]
    fn it_should_not_let_anyone_else_record_a_match() {
        for actor in [other_client(), freelancer(), Actor { id: ADMIN, role: Role::Moderator }] {
            TestHarness::<Match>::given([]).when(cmd(actor, t(0), record())).then_error(MatchError::NotAllowedToRecord);
        }
    }

    #[test]
    fn it_should_not_record_a_match_twice() {
        TestHarness::<Match>::given([generated()])
            .when(cmd(system(), t(1), record()))
            .then_error(MatchError::AlreadyExists);
    }

    #[test]
    fn it_should_not_record_a_match_that_has_already_expired() {
        let past = RecordMatch { expires_at: t(0), ..record() };
        TestHarness::<Match>::given([]).when(cmd(system(), t(0), past)).then_error(MatchError::ExpiryNotInFuture);
    }

    #[test]
    fn it_should_refuse_a_score_above_100() {
        let mut bad = record();
        bad.scored.breakdown.ratings = 101;
        TestHarness::<Match>::given([])
            .when(cmd(system(), t(0), bad))
            .then_error(MatchError::ScoreOutOfRange { field: "ratings", value: 101 });
        let mut bad = record();
        bad.scored.score = 200;
        TestHarness::<Match>::given([])
            .when(cmd(system(), t(0), bad))
            .then_error(MatchError::ScoreOutOfRange { field: "score", value: 200 });
    }

    #[test]
    fn it_should_let_the_client_accept_a_pending_match() {
        TestHarness::<Match>::given([generated()]).when(cmd(client(), t(5), accept())).then([accepted()]);
        let m = Match::fold([generated(), accepted()].iter());
        assert_eq!(m.status(), MatchStatus::Accepted);
        assert_eq!(m.client_action(), Some(ClientAction::Accepted));
        assert_eq!(m.closed_at(), Some(t(5)));
    }

    #[test]
    fn it_should_only_let_the_client_accept_a_match() {
        for actor in [admin(), freelancer(), other_client(), system()] {
            TestHarness::<Match>::given([generated()])
                .when(cmd(actor, t(5), accept()))
                .then_error(MatchError::NotTheClient);
        }
    }

    #[test]
    fn it_should_not_accept_an_expired_match() {
        TestHarness::<Match>::given([generated()])
            .when(cmd(client(), t(7 * 24), accept()))
            .then_error(MatchError::Expired { expires_at: t(168) });
        TestHarness::<Match>::given([generated(), expired()])
            .when(cmd(client(), t(200), accept()))
            .then_error(MatchError::NotPending { status: MatchStatus::Expired });
    }

    #[test]
    fn it_should_not_accept_a_match_that_was_already_answered() {
        TestHarness::<Match>::given([generated(), accepted()])
            .when(cmd(client(), t(6), accept()))
            .then_error(MatchError::NotPending { status: MatchStatus::Accepted });
    }

    #[test]
    fn it_should_let_the_client_reject_a_match_with_a_reason() {
        let rejected = MatchEvent::MatchRejected {
            match_id: MATCH,
            project_id: PROJECT,
            freelancer_id: FREELANCER,
            client_id: CLIENT,
            reason: Some("Rates too high".into()),
            status: MatchStatus::Rejected,
            client_action: ClientAction::Rejected,
            at: t(5),
        };
        TestHarness::<Match>::given([generated()])
            .when(cmd(client(), t(5), reject(Some(" Rates too high "))))
            .then([rejected.clone()]);
        let m = Match::fold([generated(), rejected].iter());
        assert_eq!(m.status(), MatchStatus::Rejected);
        assert_eq!(m.client_action(), Some(ClientAction::Rejected));
        assert_eq!(m.rejection_reason(), Some("Rates too high"));
    }

    #[test]
    fn it_should_record_a_blank_rejection_reason_as_none() {
        let events =
            TestHarness::<Match>::given([generated()]).when(cmd(client(), t(5), reject(Some("  ")))).events().unwrap();
        assert!(matches!(&events[..], [MatchEvent::MatchRejected { reason: None, .. }]));
    }

    #[test]
    fn it_should_only_let_the_client_reject_a_match() {
        TestHarness::<Match>::given([generated()])
            .when(cmd(freelancer(), t(5), reject(None)))
            .then_error(MatchError::NotTheClient);
    }

    #[test]
    fn it_should_not_reject_an_expired_match() {
        TestHarness::<Match>::given([generated()])
            .when(cmd(client(), t(169), reject(None)))
            .then_error(MatchError::Expired { expires_at: t(168) });
    }

    #[test]
    fn it_should_not_reject_an_accepted_match() {
        TestHarness::<Match>::given([generated(), accepted()])
            .when(cmd(client(), t(6), reject(None)))
            .then_error(MatchError::NotPending { status: MatchStatus::Accepted });
    }

    #[test]
    fn it_should_let_the_system_expire_a_pending_match_once_due() {
        TestHarness::<Match>::given([generated()]).when(cmd(system(), t(168), expire())).then([expired()]);
        let m = Match::fold([generated(), expired()].iter());
        assert_eq!(m.status(), MatchStatus::Expired);
        assert_eq!(m.client_action(), None);
    }

    #[test]
    fn it_should_not_expire_a_match_before_it_is_due() {
        TestHarness::<Match>::given([generated()])
            .when(cmd(system(), t(167), expire()))
            .then_error(MatchError::NotExpiredYet { expires_at: t(168) });
    }

    #[test]
    fn it_should_only_let_the_system_expire_a_match() {
        TestHarness::<Match>::given([generated()])
            .when(cmd(admin(), t(200), expire()))
            .then_error(MatchError::OnlySystemExpires);
    }

    #[test]
    fn it_should_not_expire_an_answered_or_expired_match() {
        TestHarness::<Match>::given([generated(), accepted()])
            .when(cmd(system(), t(200), expire()))
            .then_error(MatchError::NotPending { status: MatchStatus::Accepted });
        TestHarness::<Match>::given([generated(), expired()])
            .when(cmd(system(), t(200), expire()))
            .then_error(MatchError::NotPending { status: MatchStatus::Expired });
    }

    #[test]
    fn it_should_not_act_on_a_match_that_does_not_exist() {
        TestHarness::<Match>::given([]).when(cmd(client(), t(5), accept())).then_error(MatchError::MatchNotFound);
        TestHarness::<Match>::given([]).when(cmd(system(), t(500), expire())).then_error(MatchError::MatchNotFound);
        TestHarness::<Match>::given([generated()])
            .when(cmd(client(), t(5), AcceptMatch { match_id: Uuid::from_u128(0xBAD) }))
            .then_error(MatchError::MatchNotFound);
    }

    // wire formats

    #[test]
    fn it_should_read_command_bodies_in_camel_case_and_refuse_unknown_fields() {
        let body = serde_json::json!({
            "matchId": MATCH,
            "projectId": PROJECT,
            "freelancerId": FREELANCER,
            "clientId": CLIENT,
            "scored": {
                "breakdown": {
                    "skillOverlap": 80, "vettingScore": 82, "ratings": 92,
                    "availability": 100, "pastPerformance": 65, "timezoneCompatibility": 83
                },
                "score": 83,
                "confidence": "high",
                "explanation": "…"
            },
            "expiresAt": "2025-01-08T00:00:00Z"
        });
        let record: RecordMatch = serde_json::from_value(body).unwrap();
        assert_eq!(record.scored.breakdown.timezone_compatibility, 83);
        assert_eq!(record.expires_at, t(168));
        let reject: RejectMatch = serde_json::from_value(serde_json::json!({ "matchId": MATCH })).unwrap();
        assert_eq!(reject.reason, None);
        assert!(serde_json::from_value::<AcceptMatch>(serde_json::json!({ "matchId": MATCH, "x": 1 })).is_err());
        let candidate: Candidate = serde_json::from_value(serde_json::json!({
            "freelancerId": FREELANCER, "skills": ["Rust"], "vettingScoreBp": 8150, "completedProjects": 3
        }))
        .unwrap();
        assert_eq!(candidate.vetting_score_bp, Some(8_150));
        assert_eq!(candidate.rating, None);
    }

    #[test]
    fn it_should_store_events_under_kebab_case_types_with_camel_case_fields() {
        let (event_type, payload) = encode_event(&generated()).unwrap();
        assert_eq!(event_type, "match-generated");
        assert_eq!(payload["scoringBreakdown"]["skillOverlap"], 80);
        assert_eq!(payload["confidence"], "high");
        assert_eq!(payload["status"], "pending");
        assert_eq!(decode_event::<MatchEvent>(&event_type, &payload).unwrap(), generated());
        let (event_type, payload) = encode_event(&accepted()).unwrap();
        assert_eq!(event_type, "match-accepted");
        assert_eq!(payload["clientAction"], "accepted");
        assert_eq!(encode_event(&expired()).unwrap().0, "match-expired");
        assert_eq!(cmd(client(), t(0), accept()).stream_id(), format!("mkt-match-{MATCH}"));
    }

    #[test]
    fn it_should_classify_every_error() {
        use MatchError::*;
        for forbidden in [NotAllowedToRecord, NotTheClient, OnlySystemExpires] {
            assert_eq!(forbidden.kind(), ErrorKind::Forbidden, "{forbidden:?}");
        }
        assert_eq!(MatchNotFound.kind(), ErrorKind::NotFound);
        for conflict in [
            AlreadyExists,
            NotPending { status: MatchStatus::Accepted },
            Expired { expires_at: t(0) },
            NotExpiredYet { expires_at: t(0) },
        ] {
            assert_eq!(conflict.kind(), ErrorKind::Conflict, "{conflict:?}");
        }
        for invalid in [ScoreOutOfRange { field: "score", value: 101 }, ExpiryNotInFuture] {
            assert_eq!(invalid.kind(), ErrorKind::Invalid, "{invalid:?}");
        }
    }
}
