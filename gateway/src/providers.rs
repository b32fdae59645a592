//! External providers we cannot reach from tests: the payment provider's API (checkout
//! sessions) behind `PaymentProvider`, with a real HTTP client; and the signature scheme of its
//! webhooks (`Stripe-Signature: t=…,v1=…`), which every signed webhook route checks before a
//! command is sent. Tests drive the client through a local fake server.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use std::time::Duration;

type HmacSha256 = Hmac<Sha256>;

/// How far a webhook's signed timestamp may be from our clock (replay window).
pub const SIGNATURE_TOLERANCE: chrono::Duration = chrono::Duration::minutes(5);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed (expected t=<unix time>,v1=<hex hmac>)")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerated window")]
    Stale,
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// The `Stripe-Signature` value for `body` signed with `secret` at unix time `t`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a `Stripe-Signature` header: `t` within `SIGNATURE_TOLERANCE` of `now`, and one of the
/// `v1` values equal (in constant time) to HMAC-SHA256(secret, "{t}.{body}").
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<i64> = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match k {
            "t" => t = Some(v.parse().map_err(|_| SignatureError::Malformed)?),
            "v1" => candidates.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {} // other schemes (v0) are ignored, as Stripe's libraries do
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let signed_at = DateTime::<Utc>::from_timestamp(t, 0).ok_or(SignatureError::Malformed)?;
    if (now - signed_at).abs() > SIGNATURE_TOLERANCE {
        return Err(SignatureError::Stale);
    }
    for candidate in candidates {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&candidate).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// What we ask the provider for: a hosted checkout for one purchase.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutRequest {
    /// Our id of the purchase; sent as `client_reference_id` and as the idempotency key.
    pub reference: String,
    pub amount_minor: i64,
    /// ISO 4217, lower case on the wire.
    pub currency: String,
    pub description: String,
    pub expires_at: DateTime<Utc>,
}

/// The provider's answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    pub url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the payment provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the payment provider refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
}

pub trait PaymentProvider: Send + Sync {
    fn create_checkout_session<'a>(
        &'a self,
        request: &'a CheckoutRequest,
    ) -> BoxFuture<'a, Result<CheckoutSession, ProviderError>>;
}

/// Stripe's Checkout Sessions API over HTTP (form-encoded, bearer key, idempotency key).
pub struct HttpPaymentProvider {
    base: String,
    key: SecretString,
    http: reqwest::Client,
}

impl HttpPaymentProvider {
    pub fn new(base: &str, key: SecretString) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), key, http })
    }
}

impl PaymentProvider for HttpPaymentProvider {
    fn create_checkout_session<'a>(
        &'a self,
        r: &'a CheckoutRequest,
    ) -> BoxFuture<'a, Result<CheckoutSession, ProviderError>> {
        Box::pin(async move {
            let form = [
                ("mode", "payment".to_owned()),
                ("client_reference_id", r.reference.clone()),
                ("metadata[reference]", r.reference.clone()),
                ("expires_at", r.expires_at.timestamp().to_string()),
                ("line_items[0][quantity]", "1".to_owned()),
                ("line_items[0][price_data][currency]", r.currency.to_lowercase()),
                ("line_items[0][price_data][unit_amount]", r.amount_minor.to_string()),
                ("line_items[0][price_data][product_data][name]", r.description.clone()),
            ];
            let response = self
                .http
                .post(format!("{}/v1/checkout/sessions", self.base))
                .bearer_auth(self.key.expose_secret())
                .header("Idempotency-Key", &r.reference)
                .form(&form)
                .send()
                .await
                .map_err(|e| ProviderError::Unreachable(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                let message = response.text().await.unwrap_or_default();
                return Err(ProviderError::Refused { status: status.as_u16(), message });
            }
            response
                .json::<CheckoutSession>()
                .await
                .map_err(|e| ProviderError::Unreachable(format!("unreadable answer: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1"}"#;

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let now = Utc::now();
        let header = sign("whsec", now.timestamp(), BODY);
        assert_eq!(verify_signature("whsec", Some(&header), BODY, now), Ok(()));
    }

    #[test]
    fn another_secret_a_changed_body_or_an_old_timestamp_is_refused() {
        let now = Utc::now();
        let header = sign("other", now.timestamp(), BODY);
        assert_eq!(verify_signature("whsec", Some(&header), BODY, now), Err(SignatureError::Mismatch));
        let header = sign("whsec", now.timestamp(), BODY);
        assert_eq!(verify_signature("whsec", Some(&header), b"{}", now), Err(SignatureError::Mismatch));
        let old = sign("whsec", (now - chrono::Duration::minutes(6)).timestamp(), BODY);
        assert_eq!(verify_signature("whsec", Some(&old), BODY, now), Err(SignatureError::Stale));
        assert_eq!(verify_signature("whsec", None, BODY, now), Err(SignatureError::Missing));
        assert_eq!(verify_signature("whsec", Some("v1=zz"), BODY, now), Err(SignatureError::Malformed));
        assert_eq!(
            verify_signature("whsec", Some(&format!("t={}", now.timestamp())), BODY, now),
            Err(SignatureError::Malformed)
        );
    }
}
