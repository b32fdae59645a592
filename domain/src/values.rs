//! Value objects shared by the contexts: parsed once at the edge, valid by construction.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of money in integer minor units (cents) of an ISO 4217 currency. Never a float.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

/// A three-letter ISO currency code, stored lower-case as the payment providers use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, String> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(format!("`{code}` is not a three-letter currency code"));
        }
        let mut out = [0u8; 3];
        for (o, b) in out.iter_mut().zip(bytes) {
            *o = b.to_ascii_lowercase();
        }
        Ok(Self(out))
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ascii")
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.as_str().to_owned()
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An e-mail address, trimmed, with its case-folded form used for uniqueness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let (local, domain) = s.split_once('@').ok_or_else(|| format!("`{s}` is not an e-mail address"))?;
        let ok = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && !domain.contains('@');
        if !ok {
            return Err(format!("`{s}` is not an e-mail address"));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The form uniqueness is decided on.
    pub fn casefolded(&self) -> String {
        self.0.to_lowercase()
    }
}
impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_fold_email_case_for_uniqueness() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().casefolded(), "ann@example.com");
        assert!(Email::parse("no-at-sign").is_err());
        assert!(Email::parse("a@b").is_err());
    }

    #[test]
    fn it_should_accept_only_three_letter_currencies() {
        assert_eq!(Currency::parse("USD").unwrap().as_str(), "usd");
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("U$D").is_err());
    }
}

#[cfg(feature = "openapi")]
mod schemas {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::RefOr;

    fn string(description: &str, format: Option<&str>) -> RefOr<Schema> {
        let mut b = ObjectBuilder::new().schema_type(Type::String).description(Some(description));
        if let Some(f) = format {
            b = b.format(Some(utoipa::openapi::SchemaFormat::Custom(f.into())));
        }
        RefOr::T(Schema::Object(b.build()))
    }

    impl utoipa::PartialSchema for super::Currency {
        fn schema() -> RefOr<Schema> {
            string("ISO 4217 code, e.g. usd", None)
        }
    }
    impl utoipa::ToSchema for super::Currency {}

    impl utoipa::PartialSchema for super::Email {
        fn schema() -> RefOr<Schema> {
            string("An e-mail address", Some("email"))
        }
    }
    impl utoipa::ToSchema for super::Email {}
}
