//! Tests for the policy language: the parser criterion by criterion (each file parses,
//! rejects with exact paths and renders one family), the structure of rules and operators,
//! problems that are not about one criterion, and compilation's static facts.
//!
//! YAML test input goes through the crate's own reader (`config::yaml`), so map order and
//! scalars are exactly what a configuration file gives. The helpers here are also used by
//! the evaluation tests of stage 4.

mod calendar;
mod claims;
mod client;
mod compile;
mod errors;
mod groups;
mod http;
mod props;
mod structure;
mod users;

use std::path::Path;

use ipnet::IpNet;

use super::compile::CompiledPolicy;
use super::ppl::*;
use crate::config::access::Access;
use crate::config::env::MapEnv;
use crate::config::node::Node;
use crate::config::problem::Problems;

/// YAML test input as a config [`Node`], read by the configuration's YAML reader.
fn node(yaml: &str) -> Node {
    crate::config::yaml::parse(yaml).expect("test YAML parses")
}

/// Parses `node` as a policy at path `policy`; returns the AST, errors and warnings as text.
fn parse_node(node: &Node) -> (Option<Policy>, Vec<String>, Vec<String>) {
    let mut problems = Problems::new();
    let policy = parse_policy(node, "policy", &mut problems);
    let errors: Vec<String> = problems.errors().iter().map(ToString::to_string).collect();
    let warnings = problems
        .warnings()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        policy.is_none(),
        !errors.is_empty(),
        "None exactly when problems were found: {errors:?}"
    );
    (policy, errors, warnings)
}

fn parse(yaml: &str) -> (Option<Policy>, Vec<String>) {
    let (policy, errors, _) = parse_node(&node(yaml));
    (policy, errors)
}

fn ok(yaml: &str) -> Policy {
    let (policy, errors) = parse(yaml);
    assert!(errors.is_empty(), "{yaml}: unexpected problems {errors:?}");
    policy.expect("no problems means a policy")
}

/// Wraps one condition as `allow: {and: [cond]}`; its problems are at `policy.allow.and[0]`.
fn wrap(cond: &str) -> Node {
    Node::Map(vec![(
        "allow".into(),
        Node::Map(vec![("and".into(), Node::List(vec![node(cond)]))]),
    )])
}

/// Parses one criterion condition; Ok(criterion) or Err(problems).
fn criterion(cond: &str) -> Result<Criterion, Vec<String>> {
    match parse_node(&wrap(cond)) {
        (Some(policy), _, _) => match &policy.rules[0].body.ops[0].1[0] {
            Condition::Criterion(c) => Ok(c.clone()),
            other => panic!("{cond}: expected a criterion, got {other:?}"),
        },
        (None, errors, _) => Err(errors),
    }
}

/// Each condition parses into the criterion beside it.
fn assert_parses(cases: Vec<(&str, Criterion)>) {
    for (cond, want) in cases {
        assert_eq!(criterion(cond), Ok(want), "{cond}");
    }
}

/// Each condition is rejected with exactly these problems. A problem is written relative to
/// the condition: `email.in: …` stands for `policy.allow.and[0].email.in: …`, and one that
/// starts with `:` is about the condition itself.
fn assert_problems(cases: Vec<(&str, Vec<String>)>) {
    for (cond, want) in cases {
        let want: Vec<String> = want
            .into_iter()
            .map(|w| match w.strip_prefix(':') {
                Some(rest) => format!("policy.allow.and[0]:{rest}"),
                None => format!("policy.allow.and[0].{w}"),
            })
            .collect();
        assert_eq!(criterion(cond), Err(want), "{cond}");
    }
}

/// Each condition renders as this PPL text.
fn assert_renders(cases: &[(&str, &str)]) {
    for (cond, want) in cases {
        assert_eq!(
            criterion(cond).map(|c| c.to_string()),
            Ok((*want).to_owned()),
            "{cond}"
        );
    }
}

fn s(v: &str) -> String {
    v.to_owned()
}
fn sm(checks: Vec<StringCheck>) -> StringMatcher {
    StringMatcher { checks }
}
fn lm(checks: Vec<ListCheck>) -> ListMatcher {
    ListMatcher { checks }
}
fn is(v: &str) -> StringMatcher {
    sm(vec![StringCheck::Is(s(v))])
}
fn has(v: &str) -> ListMatcher {
    lm(vec![ListCheck::Has(s(v))])
}
fn net(v: &str) -> IpNet {
    v.parse().expect("test network")
}
fn ts(text: &str, unix_seconds: i64, nanos: u32) -> Timestamp {
    Timestamp {
        text: s(text),
        unix_seconds,
        nanos,
    }
}
fn days(bits: u8) -> Weekdays {
    Weekdays {
        days: DaySet { bits },
        timezone: None,
    }
}
fn crit(c: Criterion) -> Condition {
    Condition::Criterion(c)
}

/// Parses a PPL document (YAML) into an [`Access`] holding it as the embedded `policy`.
fn ppl_access(yaml: &str) -> Access {
    let mut problems = Problems::new();
    let policy = parse_policy(&node(yaml), "policy", &mut problems);
    assert!(problems.is_empty(), "{yaml}: {:?}", problems.errors());
    Access {
        policy,
        ..Access::default()
    }
}

/// A PPL document (YAML), compiled.
pub(crate) fn ppl(yaml: &str) -> CompiledPolicy {
    CompiledPolicy::compile(&ppl_access(yaml))
}

/// The access settings of one route whose extra YAML lines are `extra`, loaded through the
/// real config loader; `policy_files` resolve against the crate root.
pub(crate) fn route(extra: &str) -> Access {
    let mut text = String::from(
        "insecure_server: true\nroutes:\n  - from: https://a.example.com\n    to: http://127.0.0.1:1\n",
    );
    for line in extra.lines() {
        text.push_str(&format!("    {line}\n"));
    }
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    let loaded = crate::config::load_str(&text, Some(&base), &MapEnv::default())
        .unwrap_or_else(|e| panic!("{text}\n{e}"));
    loaded.config.routes[0].access.clone()
}
