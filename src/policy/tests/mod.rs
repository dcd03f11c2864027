//! Tests for stage 4: every criterion with every matcher, how operators and rules combine,
//! compiled facts and the legacy fields checked against evaluation, explanations, and the
//! example files in `policies/` deciding as they say.
//!
//! Policies are written as PPL (YAML) and compiled with the policy language's own test
//! helpers (`config::policy`'s `ppl` and `route`); the requests and users are built here.

mod compiled;
mod criteria;
mod examples;
mod explain;
mod logic;

use std::net::IpAddr;

use http::Method;
use serde_json::json;

use super::eval::{Decision, Input, Outcome};
use crate::config::access::Access;
use crate::config::policy::CompiledPolicy;
use crate::config::policy::matcher::parse_timestamp;
use crate::config::policy::tests::{ppl, route};
use crate::session::Session;

use Outcome::{Allow, Deny, SignIn};

/// Unix seconds of an RFC 3339 timestamp.
fn at(text: &str) -> u64 {
    let t = parse_timestamp(text).expect("test timestamp");
    u64::try_from(t.unix_seconds).expect("after 1970")
}

/// Wednesday 2024-05-15 10:30:00 UTC (12:30 in Berlin, CEST).
const NOW: &str = "2024-05-15T10:30:00Z";

/// A session for `sub` with `email`, `groups` (sorted here, as sign-in does) and `claims`.
fn session(sub: &str, email: Option<&str>, groups: &[&str], claims: serde_json::Value) -> Session {
    let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    groups.sort();
    let serde_json::Value::Object(claims) = claims else {
        panic!("claims must be an object");
    };
    Session::hypothetical(sub.into(), email.map(str::to_owned), groups, claims)
}

/// The standard test user.
fn alice() -> Session {
    session(
        "00u1",
        Some("Alice@Example.COM"),
        &["engineering", "admins", "g-100"],
        json!({
            "groups": ["eng", "ops"],
            "single": "x",
            "org": {"team": {"name": "core"}},
            "level": 3,
            "ratio": 1.5,
            "verified": true,
            "nothing": null,
            "mixed": [1, "a", true, null, {"k": "v"}, [2]],
        }),
    )
}

/// One request: who, how, from where, when.
#[derive(Clone)]
struct Case {
    user: Option<Session>,
    method: Method,
    path: &'static str,
    ip: IpAddr,
    cors: bool,
    now: u64,
}

impl Case {
    /// Alice, `GET /api/items` from 10.1.2.3 at [`NOW`].
    fn standard() -> Case {
        Case {
            user: Some(alice()),
            method: Method::GET,
            path: "/api/items",
            ip: "10.1.2.3".parse().expect("ip"),
            cors: false,
            now: at(NOW),
        }
    }

    fn decide(&self, policy: &CompiledPolicy) -> Decision {
        policy.evaluate(&Input {
            user: self.user.as_ref(),
            method: &self.method,
            path: self.path,
            client_ip: self.ip,
            cors_preflight: self.cors,
            now: self.now,
        })
    }
}

/// The second test user: another domain's email in upper case, one group id.
fn bob() -> Session {
    session(
        "00u2",
        Some("BOB@example.com"),
        &["00g1"],
        json!({"level": 3}),
    )
}

/// `allow: {and: [cond]}`: Allow when the criterion is true, Deny when false, SignIn when
/// unknown.
fn one(cond: &str) -> CompiledPolicy {
    ppl(&format!("allow:\n  and:\n    - {cond}\n"))
}

fn s(v: &str) -> String {
    v.to_owned()
}
