//! `X-Pomerium-Claim-*` headers: which value a claim has for a session, and how that
//! value is written as a header.
//!
//! Values are written as Pomerium writes them: strings as they are, numbers and
//! booleans as JSON text, lists joined with `,`, objects as compact JSON. A missing or
//! `null` claim gives no header at all (Pomerium sends an empty one).
//!
//! Invariant: a value that is not a valid header value — any CR, LF, NUL or other
//! control character — is **dropped**, never emitted raw and never rewritten.
//! Percent-encoding was rejected: an upstream would silently see a different value
//! than the IdP asserted, and could not tell an encoded `%0A` from a literal one. The
//! first drop is logged at warn (once per process, naming neither user nor value); the
//! claim still goes into the signed assertion, where JSON escapes it safely.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderValue;
use serde_json::Value;

use crate::session::Session;

static WARNED: AtomicBool = AtomicBool::new(false);

/// The header text of a claim value, or `None` when there is nothing to send or the
/// value cannot be sent safely.
pub(crate) fn claim_header_value(value: &Value) -> Option<HeaderValue> {
    let text: Cow<'_, str> = match value {
        Value::Null => return None,
        Value::String(s) => Cow::Borrowed(s),
        Value::Array(items) => {
            let mut out = String::new();
            for item in items.iter().filter(|v| !v.is_null()) {
                if !out.is_empty() {
                    out.push(',');
                }
                match item {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
            }
            Cow::Owned(out)
        }
        other => Cow::Owned(other.to_string()),
    };
    match HeaderValue::from_str(&text) {
        Ok(v) => Some(v),
        Err(_) => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "a claim value holds a line break, NUL or other control character; \
                     its X-Pomerium-Claim header is not sent (logged once)"
                );
            }
            None
        }
    }
}

/// The value of claim `name` for a session: `email`, `name`, `sub` / `user`, `groups`
/// (the filtered `groups` given), `sid`; otherwise the session's IdP claims, where a
/// name may reach into nested objects with `.` or `/` (`address.country`). A key that
/// itself holds `.` or `/` (`https://example.com/roles`) is matched whole first.
pub(crate) fn claim_of(session: &Session, groups: &[String], name: &str) -> Option<Value> {
    match name {
        "email" => session.email.clone().map(Value::String),
        "name" => session.name.clone().map(Value::String),
        "sub" | "user" => Some(Value::String(session.sub.clone())),
        "groups" => Some(groups.into()),
        "sid" => Some(Value::String(session.id.clone())),
        _ => lookup(&session.claims, name).cloned(),
    }
}

/// Finds `path` in `map`: the whole path as one key, else the longest-first split at
/// `.` or `/` whose head is a key holding an object that contains the tail.
fn lookup<'a>(map: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = map.get(path) {
        return Some(v);
    }
    path.char_indices()
        .rev()
        .filter(|(_, c)| matches!(c, '.' | '/'))
        .find_map(|(i, _)| match map.get(&path[..i]) {
            Some(Value::Object(inner)) => lookup(inner, &path[i + 1..]),
            _ => None,
        })
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
