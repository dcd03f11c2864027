//! The Pomerium Policy Language (PPL): syntax → AST.
//!
//! This module owns the grammar of a route's `policy` value — rules, `allow`/`deny` actions,
//! the `and`/`or`/`not`/`nor` operators (plus the clearer aliases `none_of` and `not_all`),
//! nested bodies and criterion names — and turns a loaded config [`Node`] into a [`Policy`].
//! Criterion data (matchers, networks, dates, days, times) is parsed by
//! [`super::matcher`]. Part of reading the configuration: [`crate::config::access`] parses
//! each route's policies once at load, [`super::compile`] turns them into a tree, and stage 4
//! evaluates that tree; nothing here evaluates a request.
//!
//! Invariants: unknown names (actions, operators, criteria, matcher keys) are errors, never
//! ignored; parsing never stops at the first mistake — every problem is recorded with its
//! dotted path — and a policy with any problem yields no AST at all.

use std::fmt;

use ipnet::IpNet;

pub use super::matcher::{
    Case, DateRange, DaySet, ListCheck, ListMatcher, StringCheck, StringMatcher, TimeWindow,
    Timestamp, Weekdays,
};
use super::matcher::{
    expected, parse_date, parse_day_of_week, parse_list_matcher, parse_source_ip,
    parse_string_matcher, parse_time_of_day,
};
use crate::config::node::Node;
use crate::config::problem::{Problems, did_you_mean, index, join};

/// The keys of a rule object.
pub const ACTIONS: [&str; 2] = ["allow", "deny"];
/// The keys of a body, aliases included.
pub const OPERATORS: [&str; 6] = ["and", "or", "not", "nor", "none_of", "not_all"];
/// The criterion names Portcullis understands.
pub const CRITERIA: [&str; 15] = [
    "accept",
    "reject",
    "authenticated_user",
    "user",
    "email",
    "domain",
    "http_method",
    "http_path",
    "groups",
    "claim",
    "cors_preflight",
    "source_ip",
    "date",
    "day_of_week",
    "time_of_day",
];
/// Pomerium criteria that exist but are deliberately not supported.
const UNSUPPORTED: [&str; 6] = [
    "client_certificate",
    "invalid_client_certificate",
    "device",
    "pomerium_routes",
    "record",
    "mcp_tool",
];
/// Longest allowed `claim/…` path, in segments.
pub const MAX_CLAIM_DEPTH: usize = 5;

/// A whole policy document: one or more rules. Rules are OR-ed within their action, and
/// any matching `deny` overrides every `allow`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The rules in file order; a rule object holding both `allow` and `deny` gives two.
    pub rules: Vec<Rule>,
}

/// One action with the body that triggers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// What happens when the body is true.
    pub action: Action,
    /// The condition tree.
    pub body: Body,
}

/// The effect of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Let the request through (unless denied).
    Allow,
    /// Refuse the request; wins over allow.
    Deny,
}

/// A body: operator groups that are OR-ed together (true if any group is true).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    /// Each operator with its non-empty list of conditions, in file order.
    pub ops: Vec<(Operator, Vec<Condition>)>,
}

/// How an operator combines its conditions (Pomerium's names, which swap textbook meanings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// `and`: all true.
    And,
    /// `or`: at least one true.
    Or,
    /// `not` / `none_of`: none true (NOR).
    Not,
    /// `nor` / `not_all`: not all true (NAND).
    Nor,
}

/// One entry of an operator's list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// A single test, `{email: …}`.
    Criterion(Criterion),
    /// A nested body, `{or: [...]}`.
    Body(Body),
}

/// A single test with its typed data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Always true.
    Accept,
    /// Always false.
    Reject,
    /// A session with a user id exists.
    AuthenticatedUser,
    /// The request is a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
    CorsPreflight,
    /// The session's user id (IdP `sub`).
    User(StringMatcher),
    /// The user's email; values lowercased, compared case-insensitively.
    Email(StringMatcher),
    /// The part of the email after `@`; values lowercased, compared case-insensitively.
    Domain(StringMatcher),
    /// The request method; values uppercased.
    HttpMethod(StringMatcher),
    /// The request path.
    HttpPath(StringMatcher),
    /// The user's groups.
    Groups(ListMatcher),
    /// A (possibly nested) claim of the session or user.
    Claim {
        /// Path segments, 1 to [`MAX_CLAIM_DEPTH`] long, none empty.
        path: Vec<String>,
        /// The test on the claim's values.
        matcher: ListMatcher,
    },
    /// The client address is in one of these networks (non-empty).
    SourceIp(Vec<IpNet>),
    /// The request time is within a date range.
    Date(DateRange),
    /// The request's day of the week (in a timezone, UTC by default) is in the set.
    DayOfWeek(Weekdays),
    /// The local time of day in a timezone is within a window.
    TimeOfDay(TimeWindow),
}

/// Parses the policy value at `path` (e.g. `routes[3].policy`), recording every problem.
/// Returns `None` if any problem was found inside it.
pub fn parse_policy(node: &Node, path: &str, problems: &mut Problems) -> Option<Policy> {
    let start = problems.errors().len();
    let mut rules = Vec::new();
    match node {
        Node::List(items) if items.is_empty() => {
            problems.push(path, "empty list; expected at least one rule")
        }
        Node::List(items) => {
            for (i, item) in items.iter().enumerate() {
                parse_rules(item, &index(path, i), problems, &mut rules);
            }
        }
        _ => parse_rules(node, path, problems, &mut rules),
    }
    (problems.errors().len() == start).then_some(Policy { rules })
}

/// Parses one rule object (`{allow: …, deny: …}`), appending a [`Rule`] per action.
fn parse_rules(node: &Node, path: &str, problems: &mut Problems, rules: &mut Vec<Rule>) {
    let Node::Map(entries) = node else {
        return expected(
            problems,
            path,
            "a map of `allow`/`deny` rules (or a list of them)",
            node,
        );
    };
    if entries.is_empty() {
        problems.push(path, "empty rule; expected `allow` and/or `deny`");
    }
    for (key, value) in entries {
        let action = match key.as_str() {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            _ => {
                problems.unknown_key(path, key, &ACTIONS);
                continue;
            }
        };
        if let Some(body) = parse_body(value, &join(path, key), problems) {
            rules.push(Rule { action, body });
        }
    }
}

/// The operator an operator key (or alias) names.
pub fn operator(key: &str) -> Option<Operator> {
    match key {
        "and" => Some(Operator::And),
        "or" => Some(Operator::Or),
        "not" | "none_of" => Some(Operator::Not),
        "nor" | "not_all" => Some(Operator::Nor),
        _ => None,
    }
}

/// Parses a body: a non-empty map of operators to condition lists.
fn parse_body(node: &Node, path: &str, problems: &mut Problems) -> Option<Body> {
    let Node::Map(entries) = node else {
        expected(
            problems,
            path,
            "a map of `and`/`or`/`not`/`nor` lists",
            node,
        );
        return None;
    };
    if entries.is_empty() {
        problems.push(path, "empty map; expected `and`, `or`, `not` or `nor`");
        return None;
    }
    let mut ops = Vec::new();
    for (key, value) in entries {
        let Some(op) = operator(key) else {
            problems.unknown_key(path, key, &OPERATORS);
            continue;
        };
        ops.extend(parse_conditions(value, &join(path, key), problems).map(|c| (op, c)));
    }
    (ops.len() == entries.len()).then_some(Body { ops })
}

/// Parses an operator's non-empty list of conditions.
fn parse_conditions(node: &Node, path: &str, problems: &mut Problems) -> Option<Vec<Condition>> {
    let Node::List(items) = node else {
        expected(problems, path, "a list of conditions", node);
        return None;
    };
    if items.is_empty() {
        problems.push(path, "empty list; expected at least one condition");
        return None;
    }
    let conditions: Vec<_> = (items.iter().enumerate())
        .filter_map(|(i, item)| parse_condition(item, &index(path, i), problems))
        .collect();
    (conditions.len() == items.len()).then_some(conditions)
}

/// Parses a condition: a nested body (every key an operator) or a one-key criterion.
fn parse_condition(node: &Node, path: &str, problems: &mut Problems) -> Option<Condition> {
    let Node::Map(entries) = node else {
        expected(problems, path, "a one-key map such as `email: …`", node);
        return None;
    };
    if entries.is_empty() {
        problems.push(path, "empty map; expected a criterion such as `email: …`");
        return None;
    }
    if entries.iter().all(|(k, _)| operator(k).is_some()) {
        return parse_body(node, path, problems).map(Condition::Body);
    }
    let [(key, data)] = entries.as_slice() else {
        let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str()).collect();
        problems.push(
            path,
            format!(
                "a condition has exactly one key, found {} ({})",
                keys.len(),
                keys.join(", ")
            ),
        );
        return None;
    };
    parse_criterion(key, data, path, problems).map(Condition::Criterion)
}

/// Parses one criterion `{key: data}` found at `path`.
fn parse_criterion(
    key: &str,
    data: &Node,
    path: &str,
    problems: &mut Problems,
) -> Option<Criterion> {
    let p = &join(path, key);
    let (name, sub) = match key.split_once('/') {
        Some((name, sub)) => (name, Some(sub)),
        None => (key, None),
    };
    if name == "claim" {
        return parse_claim(sub, data, p, problems);
    }
    if !CRITERIA.contains(&name) {
        let known: Vec<&str> = CRITERIA.iter().chain(&OPERATORS).copied().collect();
        if UNSUPPORTED.contains(&name) || name.starts_with("ssh_") {
            problems.push(p, format!("criterion `{name}` is not supported"));
        } else if sub.is_none() {
            problems.unknown_key(path, key, &known);
        } else if let Some(best) = did_you_mean(name, &known) {
            problems.push(p, format!("unknown key; did you mean `{best}`?"));
        } else {
            problems.push(p, "unknown key");
        }
        return None;
    }
    if sub.is_some() {
        problems.push(p, format!("`{name}` takes no sub-path"));
        return None;
    }
    let ignored = |criterion, problems: &mut Problems| {
        if *data == Node::Bool(false) {
            problems.warn(
                p,
                format!("the value of `{name}` is ignored; `false` does not negate it"),
            );
        }
        Some(criterion)
    };
    match name {
        "accept" => ignored(Criterion::Accept, problems),
        "reject" => ignored(Criterion::Reject, problems),
        "authenticated_user" => ignored(Criterion::AuthenticatedUser, problems),
        "cors_preflight" => ignored(Criterion::CorsPreflight, problems),
        "user" => parse_string_matcher(data, p, Case::Keep, problems).map(Criterion::User),
        "email" => parse_string_matcher(data, p, Case::Lower, problems).map(Criterion::Email),
        "domain" => parse_string_matcher(data, p, Case::Lower, problems).map(Criterion::Domain),
        "http_method" => {
            parse_string_matcher(data, p, Case::Upper, problems).map(Criterion::HttpMethod)
        }
        "http_path" => parse_string_matcher(data, p, Case::Keep, problems).map(Criterion::HttpPath),
        "groups" => parse_list_matcher(data, p, problems).map(Criterion::Groups),
        "source_ip" => parse_source_ip(data, p, problems).map(Criterion::SourceIp),
        "date" => parse_date(data, p, problems).map(Criterion::Date),
        "day_of_week" => parse_day_of_week(data, p, problems).map(Criterion::DayOfWeek),
        _ => parse_time_of_day(data, p, problems).map(Criterion::TimeOfDay),
    }
}

/// Parses `claim/<path>`: the path nests with `/` or `.`, at most [`MAX_CLAIM_DEPTH`] levels.
fn parse_claim(
    sub: Option<&str>,
    data: &Node,
    path: &str,
    problems: &mut Problems,
) -> Option<Criterion> {
    let segments: Vec<String> = sub
        .unwrap_or("")
        .split(['/', '.'])
        .map(str::to_owned)
        .collect();
    let path_ok = if sub.is_none_or(str::is_empty) {
        problems.push(path, "`claim` needs a claim name: `claim/<name>`");
        false
    } else if segments.iter().any(String::is_empty) {
        problems.push(path, "the claim path has an empty segment");
        false
    } else if segments.len() > MAX_CLAIM_DEPTH {
        problems.push(
            path,
            format!("the claim path is nested more than {MAX_CLAIM_DEPTH} levels"),
        );
        false
    } else {
        true
    };
    let matcher = parse_list_matcher(data, path, problems)?;
    path_ok.then_some(Criterion::Claim {
        path: segments,
        matcher,
    })
}

impl Criterion {
    /// The criterion's PPL name (`claim` without its path).
    pub fn name(&self) -> &'static str {
        match self {
            Criterion::Accept => "accept",
            Criterion::Reject => "reject",
            Criterion::AuthenticatedUser => "authenticated_user",
            Criterion::CorsPreflight => "cors_preflight",
            Criterion::User(_) => "user",
            Criterion::Email(_) => "email",
            Criterion::Domain(_) => "domain",
            Criterion::HttpMethod(_) => "http_method",
            Criterion::HttpPath(_) => "http_path",
            Criterion::Groups(_) => "groups",
            Criterion::Claim { .. } => "claim",
            Criterion::SourceIp(_) => "source_ip",
            Criterion::Date(_) => "date",
            Criterion::DayOfWeek(_) => "day_of_week",
            Criterion::TimeOfDay(_) => "time_of_day",
        }
    }
}

impl fmt::Display for Criterion {
    /// PPL-like text for decision explanations: `email ends_with "@example.com"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Criterion::Accept
            | Criterion::Reject
            | Criterion::AuthenticatedUser
            | Criterion::CorsPreflight => f.write_str(name),
            Criterion::User(m)
            | Criterion::Email(m)
            | Criterion::Domain(m)
            | Criterion::HttpMethod(m)
            | Criterion::HttpPath(m) => write!(f, "{name} {m}"),
            Criterion::Groups(m) => write!(f, "{name} {m}"),
            Criterion::Claim { path, matcher } => write!(f, "claim/{} {matcher}", path.join("/")),
            Criterion::SourceIp(nets) => {
                let nets: Vec<_> = nets.iter().map(ToString::to_string).collect();
                write!(f, "{name} in [{}]", nets.join(", "))
            }
            Criterion::Date(range) => write!(f, "{name} {range}"),
            Criterion::DayOfWeek(days) => write!(f, "{name} {days}"),
            Criterion::TimeOfDay(window) => write!(f, "{name} {window}"),
        }
    }
}

impl fmt::Display for Action {
    /// `allow` or `deny`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        })
    }
}

impl fmt::Display for Operator {
    /// The canonical Pomerium name: `and`, `or`, `not`, `nor`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::And => "and",
            Operator::Or => "or",
            Operator::Not => "not",
            Operator::Nor => "nor",
        })
    }
}
