//! Stage 4, **authorize**: deciding one request against a [`CompiledPolicy`], the tree the
//! policy language (`crate::config::policy`) compiled at load. Evaluation is a method of
//! that type, added here.
//!
//! Every criterion is true, false or **unknown** — unknown only for criteria about the user
//! when there is none. Operators combine them with Kleene logic (`not` = none true,
//! `nor` = not all true, as Pomerium names them). The decision: a true deny side denies; an
//! unknown deny side asks to sign in; then a true allow side allows; an unknown allow side
//! asks to sign in; anything else denies.
//!
//! Invariant: [`CompiledPolicy::evaluate`] does not allocate — matcher values were prepared
//! at compile time, emails are compared case-insensitively char by char, claim numbers are
//! formatted into a stack buffer.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;
use serde_json::Value;

use crate::config::policy::caseless;
use crate::config::policy::compile::{CompiledPolicy, Node, Test};
use crate::config::policy::ppl::{ListCheck, Operator, StringCheck};
use crate::session::Session;

/// What a decision is made from.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The signed-in user; None when anonymous.
    pub user: Option<&'a Session>,
    /// The request method.
    pub method: &'a http::Method,
    /// The canonical request path.
    pub path: &'a str,
    /// The client address (after trusted-proxy handling).
    pub client_ip: IpAddr,
    /// `OPTIONS` with both `Origin` and `Access-Control-Request-Method`.
    pub cors_preflight: bool,
    /// Now, in Unix seconds.
    pub now: u64,
}

/// What happens to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forward it.
    Allow,
    /// Refuse it (403).
    Deny,
    /// A user is needed to decide and there is none: sign in (or 401 for API clients).
    SignIn,
}

/// An outcome and the rule and criterion that decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub outcome: Outcome,
    /// Why: the deciding rule and criterion. For a deny because no allow rule held, the
    /// first allow rule and the criterion that failed it. None only for a deny by a
    /// policy without allow rules.
    pub reason: Option<Reason>,
}

/// Which rule decided, and which criterion (or operator group) inside it.
/// Turn it into text with [`CompiledPolicy::explain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason {
    rule: u32,
    criterion: u32,
}

impl Reason {
    /// Index of the rule among all of the policy's rules, in source order.
    pub fn rule(self) -> usize {
        self.rule as usize
    }

    /// Index of the deciding node in the compiled tree.
    pub fn criterion(self) -> usize {
        self.criterion as usize
    }
}

/// A three-valued truth value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tri {
    True,
    False,
    Unknown,
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }
}

/// The request facts, with the email split once.
struct Cx<'a> {
    input: &'a Input<'a>,
    /// The email and its domain, when the user has a well-formed one.
    email: Option<(&'a str, &'a str)>,
}

/// `local@domain` with exactly one `@` and both sides non-empty.
fn split_email(email: &str) -> Option<(&str, &str)> {
    let (local, domain) = email.split_once('@')?;
    (!local.is_empty() && !domain.is_empty() && !domain.contains('@')).then_some((email, domain))
}

impl CompiledPolicy {
    /// Decides one request. Does not allocate.
    pub fn evaluate(&self, input: &Input<'_>) -> Decision {
        let email = input
            .user
            .and_then(|u| u.email.as_deref())
            .and_then(split_email);
        let cx = Cx { input, email };
        let decision = |outcome, reason| Decision { outcome, reason };

        let (side, reason) = self.side(&self.deny, &cx);
        match side {
            Tri::True => return decision(Outcome::Deny, reason),
            Tri::Unknown => return decision(Outcome::SignIn, reason),
            Tri::False => {}
        }
        match self.side(&self.allow, &cx) {
            (Tri::True, reason) => decision(Outcome::Allow, reason),
            (Tri::Unknown, reason) => decision(Outcome::SignIn, reason),
            (Tri::False, reason) => decision(Outcome::Deny, reason),
        }
    }

    /// The `or` of some rules: the first true one, else the first unknown one, else false
    /// with the first rule and the criterion that made it false.
    fn side(&self, rules: &[u32], cx: &Cx<'_>) -> (Tri, Option<Reason>) {
        let (mut unknown, mut failed) = (None, None);
        for &r in rules {
            let (value, node) = self.node(self.rules[r as usize].root, cx);
            let reason = Reason {
                rule: r,
                criterion: node,
            };
            match value {
                Tri::True => return (Tri::True, Some(reason)),
                Tri::Unknown if unknown.is_none() => unknown = Some(reason),
                Tri::False if failed.is_none() => failed = Some(reason),
                _ => {}
            }
        }
        match unknown {
            Some(_) => (Tri::Unknown, unknown),
            None => (Tri::False, failed),
        }
    }

    /// Evaluates node `n`, returning its value and the node that best explains it: the
    /// deciding child (first true of an `or`, first false of an `and`, first unknown), or
    /// the group itself when every child counted.
    fn node(&self, n: u32, cx: &Cx<'_>) -> (Tri, u32) {
        let (op, kids) = match &self.nodes[n as usize] {
            Node::Leaf { test, .. } => return (test_value(test, cx), n),
            Node::Group { op, start, end } => (*op, &self.children[*start as usize..*end as usize]),
        };
        // `and`/`not` stop at the first child that makes them false; `or`/`nor` at the first
        // that makes them true. Negations explain themselves with the whole group, so the
        // text reads `none of [...]` rather than naming a child as if it had held.
        let (stop_on, result_on_stop, result_at_end) = match op {
            Operator::And => (Tri::False, Tri::False, Tri::True),
            Operator::Or => (Tri::True, Tri::True, Tri::False),
            Operator::Not => (Tri::True, Tri::False, Tri::True),
            Operator::Nor => (Tri::False, Tri::True, Tri::False),
        };
        let positive = matches!(op, Operator::And | Operator::Or);
        let (mut unknown, mut last) = (None, n);
        for &k in kids {
            let (value, witness) = self.node(k, cx);
            if value == stop_on {
                return (result_on_stop, if positive { witness } else { n });
            }
            if value == Tri::Unknown && unknown.is_none() {
                unknown = Some(witness);
            }
            last = witness;
        }
        match unknown {
            Some(w) => (Tri::Unknown, w),
            // An `and`/`or` of one child is that child; otherwise every child counted.
            None if positive && kids.len() == 1 => (result_at_end, last),
            None => (result_at_end, n),
        }
    }
}

/// One criterion's value.
fn test_value(test: &Test, cx: &Cx<'_>) -> Tri {
    let input = cx.input;
    let user = match (test.needs_user(), input.user) {
        (true, None) => return Tri::Unknown,
        (_, user) => user,
    };
    Tri::of(match (test, user) {
        (Test::Const(b), _) => *b,
        (Test::CorsPreflight, _) => input.cors_preflight,
        (Test::Method(checks), _) => strings(checks, input.method.as_str(), false),
        (Test::Path(checks), _) => strings(checks, input.path, false),
        (Test::SourceIp(nets), _) => {
            let ip = input.client_ip.to_canonical();
            nets.iter().any(|net| net.contains(&ip))
        }
        (Test::Date { after, before }, _) => {
            let now = (i128::from(input.now), 0u32);
            let widen = |(s, n): (i64, u32)| (i128::from(s), n);
            after.is_none_or(|a| now > widen(a)) && before.is_none_or(|b| now < widen(b))
        }
        (Test::DayOfWeek { days, zone }, _) => local(input.now, *zone)
            .is_some_and(|t| days.contains(t.weekday().num_days_from_monday() as usize)),
        (
            Test::TimeOfDay {
                zone,
                after,
                before,
            },
            _,
        ) => local(input.now, *zone).is_some_and(|t| {
            let s = t.num_seconds_from_midnight();
            match (after, before) {
                (Some(a), Some(b)) if a > b => s >= *a || s < *b,
                _ => after.is_none_or(|a| s >= a) && before.is_none_or(|b| s < b),
            }
        }),
        (Test::Authenticated, Some(u)) => !u.sub.is_empty(),
        (Test::User(checks), Some(u)) => strings(checks, &u.sub, false),
        (Test::Email(checks), Some(_)) => cx.email.is_some_and(|(e, _)| strings(checks, e, true)),
        (Test::Domain(checks), Some(_)) => cx.email.is_some_and(|(_, d)| strings(checks, d, true)),
        (Test::Groups(checks), Some(u)) => checks.iter().all(|c| group_check(c, &u.groups)),
        (Test::Claim { path, checks }, Some(u)) => {
            let value = claim(&u.claims, path);
            checks.iter().all(|c| list_check(c, value))
        }
        (_, None) => false,
    })
}

/// `now` in `zone`; None when it is out of chrono's range.
fn local(now: u64, zone: Tz) -> Option<DateTime<Tz>> {
    let secs = i64::try_from(now).ok()?;
    Some(DateTime::from_timestamp(secs, 0)?.with_timezone(&zone))
}

/// Every check of a string matcher holds; `caseless` for `email`/`domain` (values folded).
fn strings(checks: &[StringCheck], s: &str, caseless: bool) -> bool {
    let eq = |v: &str| if caseless { caseless::eq(s, v) } else { s == v };
    checks.iter().all(|check| match check {
        StringCheck::Is(v) => eq(v),
        StringCheck::StartsWith(v) if caseless => caseless::starts_with(s, v),
        StringCheck::StartsWith(v) => s.starts_with(v.as_str()),
        StringCheck::EndsWith(v) if caseless => caseless::ends_with(s, v),
        StringCheck::EndsWith(v) => s.ends_with(v.as_str()),
        StringCheck::Contains(v) if caseless => caseless::contains(s, v),
        StringCheck::Contains(v) => s.contains(v.as_str()),
        StringCheck::In(list) => list.iter().any(|v| eq(v)),
        StringCheck::NotIn(list) => !list.iter().any(|v| eq(v)),
    })
}

/// A list check on the session's groups, which are sorted (binary search).
fn group_check(check: &ListCheck, groups: &[String]) -> bool {
    let has = |g: &str| groups.binary_search_by(|x| x.as_str().cmp(g)).is_ok();
    match check {
        ListCheck::Has(g) => has(g),
        ListCheck::Exclude(g) => !has(g),
        ListCheck::Is(g) => matches!(groups, [only] if only == g),
    }
}

/// The value at a claim path (nested objects), or None.
fn claim<'a>(claims: &'a serde_json::Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.get(first)?;
    for segment in rest {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

/// A list check on a claim: a scalar is a one-element list, an array a list of its scalar
/// elements, anything else (missing, null, object) the empty list.
fn list_check(check: &ListCheck, value: Option<&Value>) -> bool {
    let items: &[Value] = match value {
        Some(Value::Array(items)) => items,
        Some(v) => std::slice::from_ref(v),
        None => &[],
    };
    let mut matching = 0usize;
    let mut count = 0usize;
    let target = match check {
        ListCheck::Has(v) | ListCheck::Is(v) | ListCheck::Exclude(v) => v.as_str(),
    };
    for item in items {
        let mut buf = StackText::default();
        let Some(text) = scalar_text(item, &mut buf) else {
            continue;
        };
        count += 1;
        if text == target {
            matching += 1;
            if matches!(check, ListCheck::Has(_) | ListCheck::Exclude(_)) {
                break;
            }
        }
    }
    match check {
        ListCheck::Has(_) => matching > 0,
        ListCheck::Exclude(_) => matching == 0,
        ListCheck::Is(_) => count == 1 && matching == 1,
    }
}

/// The JSON text of a scalar (`"x"` → `x`, `true`, `12`, `1.5`); None for null, arrays and
/// objects. Numbers are written into `buf`.
fn scalar_text<'a>(value: &'a Value, buf: &'a mut StackText) -> Option<&'a str> {
    match value {
        Value::String(s) => Some(s),
        Value::Bool(true) => Some("true"),
        Value::Bool(false) => Some("false"),
        Value::Number(n) => {
            write!(buf, "{n}").ok()?;
            buf.as_str()
        }
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A small fixed buffer for formatting numbers without allocating.
struct StackText {
    bytes: [u8; 40],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        StackText {
            bytes: [0; 40],
            len: 0,
        }
    }
}

impl StackText {
    fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes.get(..self.len)?).ok()
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
