//! RFC 8785 (JSON Canonicalization Scheme) and the per-stream hash chain.
//!
//! The hash covers a canonical form, not the bytes PostgreSQL happens to return: jsonb re-encodes
//! documents (key order, number spelling), and the chain must survive that.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Appends the canonical (RFC 8785) form of `value` to `out`.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            // JCS serialises every number as an IEEE double in ECMAScript's shortest form. Integers
            // within 2^53 print the same either way; the double path keeps larger ones faithful to
            // the standard.
            const SAFE: i64 = 1 << 53;
            match n.as_i64() {
                Some(i) if (-SAFE..=SAFE).contains(&i) => out.push_str(&i.to_string()),
                _ => {
                    let f = n.as_f64().unwrap_or(0.0);
                    if f == 0.0 {
                        out.push('0');
                    } else {
                        let mut buf = ryu_js::Buffer::new();
                        out.push_str(buf.format_finite(f));
                    }
                }
            }
        }
        // serde_json escapes exactly what JCS asks: `"`, `\`, and control characters (with the
        // short forms \b \f \n \r \t, lower-case \u00xx otherwise); everything else stays UTF-8.
        Value::String(s) => out.push_str(&serde_json::to_string(s).expect("string serialises")),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Keys are ordered by their UTF-16 code units, as JCS specifies.
            let mut keys: Vec<(&String, Vec<u16>)> = map.keys().map(|k| (k, k.encode_utf16().collect())).collect();
            keys.sort_by(|a, b| a.1.cmp(&b.1));
            out.push('{');
            for (i, (key, _)) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).expect("key serialises"));
                out.push(':');
                write_canonical(&map[key.as_str()], out);
            }
            out.push('}');
        }
    }
}

pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// PostgreSQL keeps microseconds; the hashed time is truncated the same way before storing.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).expect("in range")
}

/// The content of one event that its hash covers.
pub struct HashedContent<'a> {
    pub stream_id: &'a str,
    pub version: i64,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub payload: &'a Value,
    pub metadata: &'a Value,
    pub recorded_at: DateTime<Utc>,
}

/// sha256(previous hash || canonical content). The first event of a stream chains from nothing.
pub fn event_hash(prev: Option<&[u8]>, content: &HashedContent<'_>) -> Vec<u8> {
    let doc = serde_json::json!({
        "stream_id": content.stream_id,
        "version": content.version,
        "event_type": content.event_type,
        "schema_version": content.schema_version,
        "payload": content.payload,
        "metadata": content.metadata,
        "recorded_at": content.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
    });
    let mut hasher = Sha256::new();
    if let Some(prev) = prev {
        hasher.update(prev);
    }
    hasher.update(canonical(&doc).as_bytes());
    hasher.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn it_should_sort_keys_and_print_numbers_as_jcs_does() {
        let v: Value = serde_json::from_str(r#"{"b":1.0,"a":[1e2,0.5,-0,"x\u0001"],"é":true,"A":null}"#).unwrap();
        assert_eq!(canonical(&v), r#"{"A":null,"a":[100,0.5,0,"x\u0001"],"b":1,"é":true}"#);
    }

    #[test]
    fn it_should_hash_the_same_content_the_same_way_whatever_its_encoding() {
        let a: Value = serde_json::from_str(r#"{"x":1,"y":{"b":2,"a":1}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y":{"a":1.0,"b":2},"x":1}"#).unwrap();
        let at = truncate_to_micros(Utc::now());
        let meta = json!({});
        let c = |p| HashedContent {
            stream_id: "s",
            version: 1,
            event_type: "t",
            schema_version: 1,
            payload: p,
            metadata: &meta,
            recorded_at: at,
        };
        assert_eq!(event_hash(None, &c(&a)), event_hash(None, &c(&b)));
        assert_ne!(event_hash(Some(b"x"), &c(&a)), event_hash(None, &c(&a)));
    }
}
