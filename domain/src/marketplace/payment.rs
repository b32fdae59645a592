//! The `Payment` aggregate of the freelance escrow marketplace: one stream per payment
//! (`mkt-payment-{paymentId}`, stream type `marketplace.payment`).
//!
//! Payment records are born from project events (a funding, a release, a fee, a refund: see
//! `project.rs`, which derives their ids); the money figures live there. What this aggregate holds
//! is what the payment provider later reports about ONE payment through its webhooks: the
//! provider-side status, the provider's ids and the last error. The webhook signature is checked
//! by the HTTP layer before a command is sent; here only the system (or an admin replaying a
//! webhook by hand) may record one.
//!
//! # Status machine
//!
//! ```text
//! pending ──▶ processing | succeeded | failed | cancelled
//! processing ──▶ succeeded | failed
//! succeeded ──▶ refunded
//! failed ──▶ processing            (a retry)
//! ```
//!
//! A stream without events is a `pending` payment. Providers deliver webhooks at least once, so
//! a webhook whose event id this payment already recorded is accepted and changes nothing (no
//! event); any other move outside the machine is refused as `IllegalTransition`.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::project::ErrorKind;
use super::{Actor, Role};
use crate::kernel::{Aggregate, DomainEvent};

/// The stream type of marketplace payments.
pub const STREAM_TYPE: &str = "marketplace.payment";

/// The stream of one payment.
pub fn stream_id(payment_id: Uuid) -> String {
    format!("mkt-payment-{payment_id}")
}

// ---------------------------------------------------------------------------------------------
// Statuses
// ---------------------------------------------------------------------------------------------

/// A status the payment provider reports in a webhook.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    Processing,
    Succeeded,
    Failed,
    Refunded,
    Cancelled,
}

impl ProviderStatus {
    pub fn as_str(&self) -> &'static str {
        PaymentStatus::from(*self).as_str()
    }
}

/// Where a payment is, as far as the provider told us.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Recorded by the marketplace, nothing heard from the provider yet.
    #[default]
    Pending,
    Processing,
    Succeeded,
    Failed,
    Refunded,
    Cancelled,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Pending,
        PaymentStatus::Processing,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
        PaymentStatus::Refunded,
        PaymentStatus::Cancelled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether the machine allows moving from `self` to `to`.
    pub fn can_move_to(&self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, to),
            (Pending, Processing | Succeeded | Failed | Cancelled)
                | (Processing, Succeeded | Failed)
                | (Succeeded, Refunded)
                | (Failed, Processing)
        )
    }

    /// Whether reaching this status settles the payment for now: the read model stamps
    /// `processed_at` with the webhook's time when a webhook moves a payment here.
    pub fn is_processed(&self) -> bool {
        matches!(
            self,
            PaymentStatus::Succeeded | PaymentStatus::Failed | PaymentStatus::Refunded | PaymentStatus::Cancelled
        )
    }
}

impl From<ProviderStatus> for PaymentStatus {
    fn from(status: ProviderStatus) -> Self {
        match status {
            ProviderStatus::Processing => PaymentStatus::Processing,
            ProviderStatus::Succeeded => PaymentStatus::Succeeded,
            ProviderStatus::Failed => PaymentStatus::Failed,
            ProviderStatus::Refunded => PaymentStatus::Refunded,
            ProviderStatus::Cancelled => PaymentStatus::Cancelled,
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// One provider webhook about one payment, as the HTTP layer passes it on once its signature
/// checked out.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordPaymentWebhook {
    pub payment_id: Uuid,
    /// The provider's id of the webhook event; a second delivery carries the same id.
    pub webhook_event_id: String,
    pub status: ProviderStatus,
    #[serde(default)]
    pub stripe_payment_intent_id: Option<String>,
    #[serde(default)]
    pub stripe_payout_id: Option<String>,
    #[serde(default)]
    pub stripe_transfer_id: Option<String>,
    #[serde(default)]
    pub stripe_customer_id: Option<String>,
    #[serde(default)]
    pub stripe_account_id: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

/// A command to a payment: who sends it (`Actor::system()` for webhooks), when, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentCommand {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    pub action: PaymentAction,
}

/// Every action on a payment, one variant per payload.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentAction {
    RecordWebhook(RecordPaymentWebhook),
}

impl From<RecordPaymentWebhook> for PaymentAction {
    fn from(payload: RecordPaymentWebhook) -> Self {
        PaymentAction::RecordWebhook(payload)
    }
}

impl PaymentAction {
    /// The payment (and so the stream) the action addresses.
    pub fn payment_id(&self) -> Uuid {
        match self {
            PaymentAction::RecordWebhook(p) => p.payment_id,
        }
    }

    /// A stable kebab-case name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            PaymentAction::RecordWebhook(_) => "record-payment-webhook",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// What happened to a payment. Carries everything the payments projector writes: the
/// provider's ids as reported (absent ones leave the row's values alone), the error, and the
/// time (`processed_at` is `at` when `to.is_processed()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PaymentEvent {
    #[serde(rename_all = "camelCase")]
    PaymentWebhookRecorded {
        payment_id: Uuid,
        webhook_event_id: String,
        from: PaymentStatus,
        to: PaymentStatus,
        stripe_payment_intent_id: Option<String>,
        stripe_payout_id: Option<String>,
        stripe_transfer_id: Option<String>,
        stripe_customer_id: Option<String>,
        stripe_account_id: Option<String>,
        error_message: Option<String>,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for PaymentEvent {}

impl PaymentEvent {
    /// The payment the event belongs to.
    pub fn payment_id(&self) -> Uuid {
        match self {
            PaymentEvent::PaymentWebhookRecorded { payment_id, .. } => *payment_id,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Every rule a payment command can break.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaymentError {
    #[error("forbidden: {reason}")]
    Forbidden { reason: &'static str },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The payload names a payment this stream does not hold.
    #[error("payment {payment_id} is not this stream's payment")]
    PaymentNotFound { payment_id: Uuid },
    /// A move the status machine does not allow.
    #[error("a {from} payment cannot become {to}")]
    IllegalTransition { from: PaymentStatus, to: PaymentStatus },
}

impl PaymentError {
    /// The HTTP class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PaymentError::Forbidden { .. } => ErrorKind::Forbidden,
            PaymentError::Invalid { .. } => ErrorKind::Invalid,
            PaymentError::PaymentNotFound { .. } => ErrorKind::NotFound,
            PaymentError::IllegalTransition { .. } => ErrorKind::Conflict,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// The payment aggregate's state, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// Set by the first recorded webhook; before that the stream is empty.
    pub payment_id: Option<Uuid>,
    pub status: PaymentStatus,
    /// Every webhook event id already recorded, so redeliveries are recognised.
    pub seen_webhook_ids: BTreeSet<String>,
    /// The error message of the latest webhook that carried one.
    pub last_error: Option<String>,
    /// The provider's ids, latest reported value of each.
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_payout_id: Option<String>,
    pub stripe_transfer_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub stripe_account_id: Option<String>,
    /// The latest webhook's time.
    pub updated_at: Option<DateTime<Utc>>,
    /// When a webhook last moved the payment into a processed status.
    pub processed_at: Option<DateTime<Utc>>,
}

impl Payment {
    /// The stream of one payment.
    pub fn stream_id(payment_id: Uuid) -> String {
        stream_id(payment_id)
    }

    /// Whether a webhook with this event id was already recorded.
    pub fn has_seen(&self, webhook_event_id: &str) -> bool {
        self.seen_webhook_ids.contains(webhook_event_id)
    }

    fn record_webhook(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        p: &RecordPaymentWebhook,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        if !matches!(actor.role, Role::System | Role::Admin) {
            return Err(PaymentError::Forbidden { reason: "only the system or an admin may record a payment webhook" });
        }
        if p.webhook_event_id.trim().is_empty() {
            return Err(PaymentError::Invalid {
                field: "webhookEventId",
                reason: "a webhook needs the provider's event id".into(),
            });
        }
        if self.payment_id.is_some_and(|id| id != p.payment_id) {
            return Err(PaymentError::PaymentNotFound { payment_id: p.payment_id });
        }
        // At-least-once delivery: a redelivered webhook was applied the first time.
        if self.has_seen(&p.webhook_event_id) {
            return Ok(vec![]);
        }
        let to = PaymentStatus::from(p.status);
        if !self.status.can_move_to(to) {
            return Err(PaymentError::IllegalTransition { from: self.status, to });
        }
        Ok(vec![PaymentEvent::PaymentWebhookRecorded {
            payment_id: p.payment_id,
            webhook_event_id: p.webhook_event_id.clone(),
            from: self.status,
            to,
            stripe_payment_intent_id: p.stripe_payment_intent_id.clone(),
            stripe_payout_id: p.stripe_payout_id.clone(),
            stripe_transfer_id: p.stripe_transfer_id.clone(),
            stripe_customer_id: p.stripe_customer_id.clone(),
            stripe_account_id: p.stripe_account_id.clone(),
            error_message: p.error_message.clone(),
            at,
        }])
    }
}

/// Keeps `current` unless a new value was reported.
fn keep_latest(current: &mut Option<String>, reported: &Option<String>) {
    if let Some(value) = reported {
        *current = Some(value.clone());
    }
}

impl Aggregate for Payment {
    const STREAM_TYPE: &'static str = STREAM_TYPE;

    type Event = PaymentEvent;
    type Command = PaymentCommand;
    type Error = PaymentError;

    fn decide(&self, command: &PaymentCommand) -> Result<Vec<PaymentEvent>, PaymentError> {
        let PaymentCommand { actor, at, action } = command;
        match action {
            PaymentAction::RecordWebhook(p) => self.record_webhook(actor, *at, p),
        }
    }

    fn evolve(&mut self, event: &PaymentEvent) {
        match event {
            PaymentEvent::PaymentWebhookRecorded {
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
            } => {
                self.payment_id = Some(*payment_id);
                self.status = *to;
                self.seen_webhook_ids.insert(webhook_event_id.clone());
                keep_latest(&mut self.last_error, error_message);
                keep_latest(&mut self.stripe_payment_intent_id, stripe_payment_intent_id);
                keep_latest(&mut self.stripe_payout_id, stripe_payout_id);
                keep_latest(&mut self.stripe_transfer_id, stripe_transfer_id);
                keep_latest(&mut self.stripe_customer_id, stripe_customer_id);
                keep_latest(&mut self.stripe_account_id, stripe_account_id);
                self.updated_at = Some(*at);
                if to.is_processed() {
                    self.processed_at = Some(*at);
                }
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

    const PAY: Uuid = Uuid::from_u128(0x9A1);
    const OTHER_PAY: Uuid = Uuid::from_u128(0x9A2);

    fn t(hours: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_735_689_600 + hours * 3_600, 0).expect("valid time")
    }

    fn admin() -> Actor {
        Actor { id: Uuid::from_u128(0xAD), role: Role::Admin }
    }

    fn webhook(id: &str, status: ProviderStatus) -> RecordPaymentWebhook {
        RecordPaymentWebhook {
            payment_id: PAY,
            webhook_event_id: id.into(),
            status,
            stripe_payment_intent_id: Some("pi_1".into()),
            stripe_payout_id: None,
            stripe_transfer_id: None,
            stripe_customer_id: Some("cus_1".into()),
            stripe_account_id: None,
            error_message: None,
        }
    }

    fn cmd(actor: Actor, at: DateTime<Utc>, action: impl Into<PaymentAction>) -> PaymentCommand {
        PaymentCommand { actor, at, action: action.into() }
    }

    fn system(at: DateTime<Utc>, action: impl Into<PaymentAction>) -> PaymentCommand {
        cmd(Actor::system(), at, action)
    }

    fn recorded(id: &str, from: PaymentStatus, to: PaymentStatus, at: DateTime<Utc>) -> PaymentEvent {
        PaymentEvent::PaymentWebhookRecorded {
            payment_id: PAY,
            webhook_event_id: id.into(),
            from,
            to,
            stripe_payment_intent_id: Some("pi_1".into()),
            stripe_payout_id: None,
            stripe_transfer_id: None,
            stripe_customer_id: Some("cus_1".into()),
            stripe_account_id: None,
            error_message: None,
            at,
        }
    }

    fn failed_event(id: &str, from: PaymentStatus, message: &str) -> PaymentEvent {
        let mut event = recorded(id, from, PaymentStatus::Failed, t(2));
        let PaymentEvent::PaymentWebhookRecorded { error_message, .. } = &mut event;
        *error_message = Some(message.into());
        event
    }

    fn provider(status: PaymentStatus) -> Option<ProviderStatus> {
        match status {
            PaymentStatus::Pending => None,
            PaymentStatus::Processing => Some(ProviderStatus::Processing),
            PaymentStatus::Succeeded => Some(ProviderStatus::Succeeded),
            PaymentStatus::Failed => Some(ProviderStatus::Failed),
            PaymentStatus::Refunded => Some(ProviderStatus::Refunded),
            PaymentStatus::Cancelled => Some(ProviderStatus::Cancelled),
        }
    }

    /// A history that leaves the payment in `status` (by the shortest legal path).
    fn history_to(status: PaymentStatus) -> Vec<PaymentEvent> {
        use PaymentStatus::*;
        let path: &[PaymentStatus] = match status {
            Pending => &[],
            Processing => &[Processing],
            Succeeded => &[Succeeded],
            Failed => &[Failed],
            Refunded => &[Succeeded, Refunded],
            Cancelled => &[Cancelled],
        };
        let mut from = Pending;
        path.iter()
            .enumerate()
            .map(|(i, to)| {
                let event = recorded(&format!("evt_h{i}"), from, *to, t(i as i64));
                from = *to;
                event
            })
            .collect()
    }

    // ---- transitions ----------------------------------------------------------------------

    #[test]
    fn it_should_move_a_pending_payment_to_processing() {
        TestHarness::<Payment>::given([])
            .when(system(t(1), webhook("evt_1", ProviderStatus::Processing)))
            .then([recorded("evt_1", PaymentStatus::Pending, PaymentStatus::Processing, t(1))]);
    }

    #[test]
    fn it_should_move_a_pending_payment_straight_to_succeeded_failed_or_cancelled() {
        for status in [ProviderStatus::Succeeded, ProviderStatus::Failed, ProviderStatus::Cancelled] {
            TestHarness::<Payment>::given([]).when(system(t(1), webhook("evt_1", status))).then([recorded(
                "evt_1",
                PaymentStatus::Pending,
                status.into(),
                t(1),
            )]);
        }
    }

    #[test]
    fn it_should_settle_a_processing_payment_as_succeeded_or_failed() {
        for status in [ProviderStatus::Succeeded, ProviderStatus::Failed] {
            TestHarness::<Payment>::given(history_to(PaymentStatus::Processing))
                .when(system(t(5), webhook("evt_2", status)))
                .then([recorded("evt_2", PaymentStatus::Processing, status.into(), t(5))]);
        }
    }

    #[test]
    fn it_should_refund_a_succeeded_payment() {
        TestHarness::<Payment>::given(history_to(PaymentStatus::Succeeded))
            .when(system(t(5), webhook("evt_9", ProviderStatus::Refunded)))
            .then([recorded("evt_9", PaymentStatus::Succeeded, PaymentStatus::Refunded, t(5))]);
    }

    #[test]
    fn it_should_retry_a_failed_payment() {
        TestHarness::<Payment>::given(history_to(PaymentStatus::Failed))
            .when(system(t(5), webhook("evt_retry", ProviderStatus::Processing)))
            .then([recorded("evt_retry", PaymentStatus::Failed, PaymentStatus::Processing, t(5))]);
    }

    #[test]
    fn it_should_not_move_a_failed_payment_to_refunded() {
        TestHarness::<Payment>::given(history_to(PaymentStatus::Failed))
            .when(system(t(5), webhook("evt_9", ProviderStatus::Refunded)))
            .then_error(PaymentError::IllegalTransition { from: PaymentStatus::Failed, to: PaymentStatus::Refunded });
    }

    #[test]
    fn it_should_not_refund_a_payment_that_did_not_succeed() {
        for status in [PaymentStatus::Pending, PaymentStatus::Processing, PaymentStatus::Cancelled] {
            TestHarness::<Payment>::given(history_to(status))
                .when(system(t(5), webhook("evt_9", ProviderStatus::Refunded)))
                .then_error(PaymentError::IllegalTransition { from: status, to: PaymentStatus::Refunded });
        }
    }

    #[test]
    fn it_should_refuse_every_transition_outside_the_machine() {
        use PaymentStatus::*;
        let allowed = [
            (Pending, Processing),
            (Pending, Succeeded),
            (Pending, Failed),
            (Pending, Cancelled),
            (Processing, Succeeded),
            (Processing, Failed),
            (Succeeded, Refunded),
            (Failed, Processing),
        ];
        let mut accepted = 0;
        for from in PaymentStatus::ALL {
            for to in PaymentStatus::ALL {
                assert_eq!(from.can_move_to(to), allowed.contains(&(from, to)), "{from} -> {to}");
                // Nothing moves a payment back to pending: no webhook reports it.
                let Some(reported) = provider(to) else { continue };
                let result = TestHarness::<Payment>::given(history_to(from))
                    .when(system(t(9), webhook("evt_x", reported)))
                    .events();
                if allowed.contains(&(from, to)) {
                    assert_eq!(result, Ok(vec![recorded("evt_x", from, to, t(9))]), "{from} -> {to}");
                    accepted += 1;
                } else {
                    let error = result.unwrap_err();
                    assert_eq!(error, PaymentError::IllegalTransition { from, to });
                    assert_eq!(error.kind(), ErrorKind::Conflict);
                }
            }
        }
        assert_eq!(accepted, allowed.len());
    }

    #[test]
    fn it_should_refuse_a_second_webhook_with_the_same_status_but_another_id() {
        TestHarness::<Payment>::given(history_to(PaymentStatus::Succeeded))
            .when(system(t(5), webhook("evt_other", ProviderStatus::Succeeded)))
            .then_error(PaymentError::IllegalTransition {
                from: PaymentStatus::Succeeded,
                to: PaymentStatus::Succeeded,
            });
    }

    #[test]
    fn it_should_treat_cancelled_and_refunded_payments_as_final() {
        for from in [PaymentStatus::Cancelled, PaymentStatus::Refunded] {
            assert!(PaymentStatus::ALL.iter().all(|to| !from.can_move_to(*to)), "{from}");
        }
    }

    // ---- idempotency ----------------------------------------------------------------------

    #[test]
    fn it_should_ignore_a_replayed_webhook() {
        let history = [
            recorded("evt_1", PaymentStatus::Pending, PaymentStatus::Processing, t(1)),
            recorded("evt_2", PaymentStatus::Processing, PaymentStatus::Succeeded, t(2)),
        ];
        // The very same delivery again, and an old one arriving late: nothing happens.
        TestHarness::<Payment>::given(history.clone())
            .when(system(t(3), webhook("evt_2", ProviderStatus::Succeeded)))
            .then([]);
        TestHarness::<Payment>::given(history)
            .when(system(t(3), webhook("evt_1", ProviderStatus::Processing)))
            .then([]);
    }

    #[test]
    fn it_should_ignore_a_replayed_webhook_whatever_it_now_says() {
        // A replay is recognised by its id alone, even where its status would be illegal now.
        TestHarness::<Payment>::given(history_to(PaymentStatus::Failed))
            .when(system(t(3), webhook("evt_h0", ProviderStatus::Refunded)))
            .then([]);
    }

    #[test]
    fn it_should_record_the_same_webhook_id_on_another_payment() {
        // Ids are remembered per payment: each stream knows only its own.
        let mut p = webhook("evt_h0", ProviderStatus::Processing);
        p.payment_id = OTHER_PAY;
        let events = TestHarness::<Payment>::given([]).when(system(t(1), p)).events().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].payment_id(), OTHER_PAY);
    }

    // ---- who may record -------------------------------------------------------------------

    #[test]
    fn it_should_refuse_a_webhook_from_a_client() {
        TestHarness::<Payment>::given([])
            .when(cmd(
                Actor { id: Uuid::from_u128(0xC1), role: Role::Client },
                t(1),
                webhook("evt_1", ProviderStatus::Succeeded),
            ))
            .then_error(PaymentError::Forbidden { reason: "only the system or an admin may record a payment webhook" });
    }

    #[test]
    fn it_should_refuse_a_webhook_from_a_freelancer_or_moderator() {
        for role in [Role::Freelancer, Role::Moderator] {
            let error = TestHarness::<Payment>::given([])
                .when(cmd(Actor { id: Uuid::from_u128(0x1), role }, t(1), webhook("evt_1", ProviderStatus::Succeeded)))
                .events()
                .unwrap_err();
            assert!(matches!(error, PaymentError::Forbidden { .. }), "{role:?}");
            assert_eq!(error.kind(), ErrorKind::Forbidden);
        }
    }

    #[test]
    fn it_should_let_an_admin_record_a_webhook() {
        TestHarness::<Payment>::given([])
            .when(cmd(admin(), t(1), webhook("evt_1", ProviderStatus::Succeeded)))
            .then([recorded("evt_1", PaymentStatus::Pending, PaymentStatus::Succeeded, t(1))]);
    }

    #[test]
    fn it_should_check_the_sender_before_recognising_a_replay() {
        TestHarness::<Payment>::given(history_to(PaymentStatus::Processing))
            .when(cmd(
                Actor { id: Uuid::from_u128(0xC1), role: Role::Client },
                t(1),
                webhook("evt_h0", ProviderStatus::Processing),
            ))
            .then_error(PaymentError::Forbidden { reason: "only the system or an admin may record a payment webhook" });
    }

    // ---- payload rules --------------------------------------------------------------------

    #[test]
    fn it_should_refuse_a_webhook_without_an_event_id() {
        let error = TestHarness::<Payment>::given([])
            .when(system(t(1), webhook(" ", ProviderStatus::Succeeded)))
            .events()
            .unwrap_err();
        assert!(matches!(error, PaymentError::Invalid { field: "webhookEventId", .. }), "{error}");
        assert_eq!(error.kind(), ErrorKind::Invalid);
    }

    #[test]
    fn it_should_refuse_a_webhook_naming_another_payment() {
        let mut p = webhook("evt_2", ProviderStatus::Succeeded);
        p.payment_id = OTHER_PAY;
        TestHarness::<Payment>::given(history_to(PaymentStatus::Processing))
            .when(system(t(2), p))
            .then_error(PaymentError::PaymentNotFound { payment_id: OTHER_PAY });
    }

    // ---- state ----------------------------------------------------------------------------

    #[test]
    fn it_should_remember_seen_ids_the_last_error_and_the_provider_ids() {
        let mut retried = recorded("evt_3", PaymentStatus::Failed, PaymentStatus::Processing, t(3));
        let PaymentEvent::PaymentWebhookRecorded { stripe_payout_id, stripe_customer_id, .. } = &mut retried;
        *stripe_payout_id = Some("po_1".into());
        *stripe_customer_id = None;
        let history = [
            recorded("evt_1", PaymentStatus::Pending, PaymentStatus::Processing, t(1)),
            failed_event("evt_2", PaymentStatus::Processing, "card declined"),
            retried,
        ];
        let payment = Payment::fold(history.iter());
        assert_eq!(payment.payment_id, Some(PAY));
        assert_eq!(payment.status, PaymentStatus::Processing);
        assert_eq!(
            payment.seen_webhook_ids.iter().map(String::as_str).collect::<Vec<_>>(),
            ["evt_1", "evt_2", "evt_3"]
        );
        assert!(payment.has_seen("evt_2") && !payment.has_seen("evt_4"));
        assert_eq!(payment.last_error.as_deref(), Some("card declined"));
        assert_eq!(payment.stripe_payout_id.as_deref(), Some("po_1"));
        // An id a later webhook leaves out is kept.
        assert_eq!(payment.stripe_customer_id.as_deref(), Some("cus_1"));
        assert_eq!(payment.updated_at, Some(t(3)));
        // The failure processed the payment; the retry did not clear that time.
        assert_eq!(payment.processed_at, Some(t(2)));
    }

    #[test]
    fn it_should_mark_only_settling_statuses_as_processed() {
        use PaymentStatus::*;
        let processed: Vec<PaymentStatus> = PaymentStatus::ALL.into_iter().filter(|s| s.is_processed()).collect();
        assert_eq!(processed, [Succeeded, Failed, Refunded, Cancelled]);
    }

    // ---- stored form ----------------------------------------------------------------------

    #[test]
    fn it_should_store_events_under_kebab_case_types_with_camel_case_payloads() {
        let event = failed_event("evt_2", PaymentStatus::Processing, "card declined");
        let (event_type, payload) = encode_event(&event).unwrap();
        assert_eq!(event_type, "payment-webhook-recorded");
        assert_eq!(payload["paymentId"], serde_json::json!(PAY.to_string()));
        assert_eq!(payload["webhookEventId"], serde_json::json!("evt_2"));
        assert_eq!(payload["from"], serde_json::json!("processing"));
        assert_eq!(payload["to"], serde_json::json!("failed"));
        assert_eq!(payload["stripePaymentIntentId"], serde_json::json!("pi_1"));
        assert_eq!(payload["stripePayoutId"], serde_json::Value::Null);
        assert_eq!(payload["errorMessage"], serde_json::json!("card declined"));
        let back: PaymentEvent = decode_event(&event_type, &payload).unwrap();
        assert_eq!(back, event);
        assert_eq!(Payment::STREAM_TYPE, "marketplace.payment");
        assert_eq!(stream_id(PAY), format!("mkt-payment-{PAY}"));
        assert_eq!(Payment::stream_id(PAY), stream_id(PAY));
    }

    #[test]
    fn it_should_read_the_webhook_payload_from_camel_case_json_and_refuse_unknown_fields() {
        let body = serde_json::json!({
            "paymentId": PAY,
            "webhookEventId": "evt_1",
            "status": "succeeded",
            "stripeTransferId": "tr_1"
        });
        let p: RecordPaymentWebhook = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(p.status, ProviderStatus::Succeeded);
        assert_eq!(p.stripe_transfer_id.as_deref(), Some("tr_1"));
        assert_eq!(p.stripe_payment_intent_id, None);
        assert_eq!(p.error_message, None);

        let mut extra = body.clone();
        extra["amount"] = serde_json::json!(5);
        assert!(serde_json::from_value::<RecordPaymentWebhook>(extra).is_err());

        // The provider reports no `pending`.
        let mut pending = body;
        pending["status"] = serde_json::json!("pending");
        assert!(serde_json::from_value::<RecordPaymentWebhook>(pending).is_err());

        for status in [
            ProviderStatus::Processing,
            ProviderStatus::Succeeded,
            ProviderStatus::Failed,
            ProviderStatus::Refunded,
            ProviderStatus::Cancelled,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.as_str()));
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status.into()));
        }
        assert_eq!(PaymentStatus::parse("pending"), Some(PaymentStatus::Pending));
        assert_eq!(PaymentStatus::parse("paid"), None);
    }

    #[test]
    fn it_should_map_every_error_to_its_http_kind() {
        let cases = [
            (PaymentError::Forbidden { reason: "x" }, ErrorKind::Forbidden),
            (PaymentError::Invalid { field: "webhookEventId", reason: "empty".into() }, ErrorKind::Invalid),
            (PaymentError::PaymentNotFound { payment_id: PAY }, ErrorKind::NotFound),
            (
                PaymentError::IllegalTransition { from: PaymentStatus::Failed, to: PaymentStatus::Refunded },
                ErrorKind::Conflict,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
        assert_eq!(
            PaymentError::IllegalTransition { from: PaymentStatus::Failed, to: PaymentStatus::Refunded }.to_string(),
            "a failed payment cannot become refunded"
        );
        assert_eq!(PaymentAction::from(webhook("e", ProviderStatus::Failed)).name(), "record-payment-webhook");
        assert_eq!(PaymentAction::from(webhook("e", ProviderStatus::Failed)).payment_id(), PAY);
    }
}
