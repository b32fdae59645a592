//! Aggregates for the benchmarks (`make bench`): a milestone with exactly the five steps of the
//! escrow lifecycle (create → fund → submit → approve → release) and a counter for contention.
//! Real rules, small state, so the figures measure the engine.

use crate::kernel::{Aggregate, DomainEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    #[default]
    None,
    Created,
    Funded,
    Submitted,
    Approved,
    Released,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchMilestone {
    pub step: Step,
    pub amount: i64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BenchCommand {
    pub milestone_id: Uuid,
    pub step: BenchStep,
    /// Only for `create`: the milestone's details (about 400 bytes of payload).
    #[serde(default)]
    pub details: Option<BenchDetails>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchStep {
    Create,
    Fund,
    Submit,
    Approve,
    Release,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BenchDetails {
    pub project_id: Uuid,
    pub client_id: Uuid,
    pub freelancer_id: Uuid,
    pub title: String,
    pub description: String,
    pub amount: i64,
    pub currency: String,
    pub due_date: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum BenchEvent {
    #[serde(rename_all = "camelCase")]
    BenchMilestoneCreated { milestone_id: Uuid, details: BenchDetails },
    #[serde(rename_all = "camelCase")]
    BenchMilestoneFunded { milestone_id: Uuid, amount: i64 },
    #[serde(rename_all = "camelCase")]
    BenchMilestoneSubmitted { milestone_id: Uuid },
    #[serde(rename_all = "camelCase")]
    BenchMilestoneApproved { milestone_id: Uuid },
    #[serde(rename_all = "camelCase")]
    BenchMilestoneReleased { milestone_id: Uuid, amount: i64, fee: i64, net: i64 },
}

impl DomainEvent for BenchEvent {}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BenchError {
    #[error("cannot {attempted:?} a milestone that is {at:?}")]
    OutOfOrder { at: Step, attempted: BenchStep },
    #[error("create needs details")]
    MissingDetails,
}

impl Aggregate for BenchMilestone {
    const STREAM_TYPE: &'static str = "bench.milestone";
    type Event = BenchEvent;
    type Command = BenchCommand;
    type Error = BenchError;

    fn decide(&self, c: &BenchCommand) -> Result<Vec<BenchEvent>, BenchError> {
        let expected = match c.step {
            BenchStep::Create => Step::None,
            BenchStep::Fund => Step::Created,
            BenchStep::Submit => Step::Funded,
            BenchStep::Approve => Step::Submitted,
            BenchStep::Release => Step::Approved,
        };
        if self.step != expected {
            return Err(BenchError::OutOfOrder { at: self.step, attempted: c.step });
        }
        let id = c.milestone_id;
        Ok(vec![match c.step {
            BenchStep::Create => BenchEvent::BenchMilestoneCreated {
                milestone_id: id,
                details: c.details.clone().ok_or(BenchError::MissingDetails)?,
            },
            BenchStep::Fund => BenchEvent::BenchMilestoneFunded { milestone_id: id, amount: self.amount },
            BenchStep::Submit => BenchEvent::BenchMilestoneSubmitted { milestone_id: id },
            BenchStep::Approve => BenchEvent::BenchMilestoneApproved { milestone_id: id },
            BenchStep::Release => {
                let fee = self.amount / 10;
                BenchEvent::BenchMilestoneReleased {
                    milestone_id: id,
                    amount: self.amount,
                    fee,
                    net: self.amount - fee,
                }
            }
        }])
    }

    fn evolve(&mut self, e: &BenchEvent) {
        match e {
            BenchEvent::BenchMilestoneCreated { details, .. } => {
                self.step = Step::Created;
                self.amount = details.amount;
            }
            BenchEvent::BenchMilestoneFunded { .. } => self.step = Step::Funded,
            BenchEvent::BenchMilestoneSubmitted { .. } => self.step = Step::Submitted,
            BenchEvent::BenchMilestoneApproved { .. } => self.step = Step::Approved,
            BenchEvent::BenchMilestoneReleased { .. } => self.step = Step::Released,
        }
    }
}

/// A counter for the contention benchmark: every increment is a decision on the current value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub value: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CounterEvent {
    Incremented { value: i64 },
}

impl DomainEvent for CounterEvent {}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("counter overflow")]
pub struct CounterError;

impl Aggregate for Counter {
    const STREAM_TYPE: &'static str = "bench.counter";
    type Event = CounterEvent;
    type Command = ();
    type Error = CounterError;

    fn decide(&self, _: &()) -> Result<Vec<CounterEvent>, CounterError> {
        Ok(vec![CounterEvent::Incremented { value: self.value.checked_add(1).ok_or(CounterError)? }])
    }
    fn evolve(&mut self, e: &CounterEvent) {
        let CounterEvent::Incremented { value } = e;
        self.value = *value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::TestHarness;

    fn cmd(step: BenchStep) -> BenchCommand {
        BenchCommand { milestone_id: Uuid::nil(), step, details: None }
    }

    #[test]
    fn it_should_refuse_steps_out_of_order() {
        TestHarness::<BenchMilestone>::given([])
            .when(cmd(BenchStep::Fund))
            .then_error(BenchError::OutOfOrder { at: Step::None, attempted: BenchStep::Fund });
    }

    #[test]
    fn it_should_release_net_of_a_ten_percent_fee() {
        let details = BenchDetails {
            project_id: Uuid::nil(),
            client_id: Uuid::nil(),
            freelancer_id: Uuid::nil(),
            title: "t".into(),
            description: "d".into(),
            amount: 1000,
            currency: "usd".into(),
            due_date: DateTime::<Utc>::MIN_UTC,
        };
        TestHarness::<BenchMilestone>::given([
            BenchEvent::BenchMilestoneCreated { milestone_id: Uuid::nil(), details },
            BenchEvent::BenchMilestoneFunded { milestone_id: Uuid::nil(), amount: 1000 },
            BenchEvent::BenchMilestoneSubmitted { milestone_id: Uuid::nil() },
            BenchEvent::BenchMilestoneApproved { milestone_id: Uuid::nil() },
        ])
        .when(cmd(BenchStep::Release))
        .then([BenchEvent::BenchMilestoneReleased {
            milestone_id: Uuid::nil(),
            amount: 1000,
            fee: 100,
            net: 900,
        }]);
    }

    #[test]
    fn it_should_count_up_from_the_current_value() {
        TestHarness::<Counter>::given([CounterEvent::Incremented { value: 41 }])
            .when(())
            .then([CounterEvent::Incremented { value: 42 }]);
    }
}
