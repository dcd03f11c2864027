//! A route's access rules compiled, at config load, into a tree that is fast to evaluate.
//!
//! [`CompiledPolicy::compile`] gathers every rule that applies to a route — the legacy
//! `allow*` fields (as one `allow: or: [...]` rule, exactly as Pomerium rewrites them), the
//! embedded `policy`, then each of the `policy_files` — and flattens them into one arena of
//! nodes: leaves hold pre-digested criteria (case-folded values, canonical networks,
//! resolved timezones), groups hold an operator and a range of children. Evaluation — stage
//! 4, the crate's `policy` module — walks that arena without allocating; the arena's fields
//! are `pub(crate)` for it and for explanations. Facts the rest of the proxy needs (can this
//! route ever allow? does it need a session? which groups does it name?) are worked out
//! once here, with `super::facts`.
//!
//! Invariant: compilation never fails — the AST was validated at config load — and adds
//! nothing the configuration did not say: a route with no allow criteria denies everyone.

use std::path::Path;

use chrono_tz::Tz;
use ipnet::{IpNet, Ipv4Net};

use super::caseless::fold_str;
use super::facts::{Facts, Values};
use super::legacy::legacy_criteria;
use super::ppl::{
    Action, Body, Condition, Criterion, DaySet, ListCheck, Operator, Policy, Rule, StringCheck,
    StringMatcher,
};
use crate::config::access::Access;

/// A route's rules, compiled. Cheap to evaluate; build it once per route at config load.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    /// Every node; rule roots and group children point into it.
    pub(crate) nodes: Vec<Node>,
    /// Child lists of groups, back to back.
    pub(crate) children: Vec<u32>,
    /// Every rule, deny and allow alike, in source order.
    pub(crate) rules: Vec<RuleInfo>,
    /// Indices into `rules` of the deny rules, in order.
    pub(crate) deny: Vec<u32>,
    /// Indices into `rules` of the allow rules, in order.
    pub(crate) allow: Vec<u32>,
    can_never_allow: bool,
    needs_user: bool,
    uses_groups: bool,
    groups: Vec<String>,
}

/// One compiled rule.
#[derive(Clone, Debug)]
pub(crate) struct RuleInfo {
    pub(crate) action: Action,
    /// The rule's body.
    pub(crate) root: u32,
    /// 1-based position among the rules of the same action.
    pub(crate) number: u32,
    /// Where it was written: `legacy fields`, `policy`, `policy_files[0] engineering.yaml`.
    pub(crate) source: String,
}

/// A node of the compiled tree.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// A criterion, with its text for explanations.
    Leaf { test: Test, text: String },
    /// An operator over `children[start..end]`.
    Group { op: Operator, start: u32, end: u32 },
}

/// A criterion ready to run: values pre-folded, networks canonical, zones resolved.
#[derive(Clone, Debug)]
pub(crate) enum Test {
    /// `accept` (true) / `reject` (false).
    Const(bool),
    /// `authenticated_user`.
    Authenticated,
    /// `cors_preflight`.
    CorsPreflight,
    /// `user`: exact match on `sub`.
    User(Box<[StringCheck]>),
    /// `email`: values folded by [`fold_str`], compared case-insensitively.
    Email(Box<[StringCheck]>),
    /// `domain`: as `email`, on the part after `@`.
    Domain(Box<[StringCheck]>),
    /// `http_method`: exact.
    Method(Box<[StringCheck]>),
    /// `http_path`: exact.
    Path(Box<[StringCheck]>),
    /// `groups`: on the sorted session groups.
    Groups(Box<[ListCheck]>),
    /// `claim/<path>`.
    Claim {
        path: Box<[String]>,
        checks: Box<[ListCheck]>,
    },
    /// `source_ip`: IPv4-mapped IPv6 networks are stored as IPv4.
    SourceIp(Box<[IpNet]>),
    /// `date`: exclusive bounds as (seconds, nanoseconds).
    Date {
        after: Option<(i64, u32)>,
        before: Option<(i64, u32)>,
    },
    /// `day_of_week`.
    DayOfWeek { days: DaySet, zone: Tz },
    /// `time_of_day`: `[after, before)` in seconds since local midnight.
    TimeOfDay {
        zone: Tz,
        after: Option<u32>,
        before: Option<u32>,
    },
}

impl Test {
    /// True for criteria that are unknown without a signed-in user.
    pub(crate) fn needs_user(&self) -> bool {
        matches!(
            self,
            Test::Authenticated
                | Test::User(_)
                | Test::Email(_)
                | Test::Domain(_)
                | Test::Groups(_)
                | Test::Claim { .. }
        )
    }
}

/// Builds the arena.
#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    children: Vec<u32>,
    facts: Vec<Facts>,
    groups: Vec<String>,
}

/// A node index (arena sizes come from configuration, far below `u32::MAX`).
fn id(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl Builder {
    fn leaf(&mut self, criterion: &Criterion, label: Option<&str>) -> u32 {
        let test = self.test(criterion);
        let facts = Facts::leaf(&test);
        let text = match label {
            Some(label) => format!("{label}: {criterion}"),
            None => criterion.to_string(),
        };
        self.push(Node::Leaf { test, text }, facts)
    }

    fn push(&mut self, node: Node, facts: Facts) -> u32 {
        self.nodes.push(node);
        self.facts.push(facts);
        id(self.nodes.len() - 1)
    }

    fn group(&mut self, op: Operator, kids: &[u32]) -> u32 {
        let facts: Vec<Facts> = kids.iter().map(|&k| self.facts[k as usize]).collect();
        let start = id(self.children.len());
        self.children.extend_from_slice(kids);
        let end = id(self.children.len());
        self.push(Node::Group { op, start, end }, Facts::group(op, &facts))
    }

    /// A body is the `or` of its operator groups; a single group stands for itself.
    fn body(&mut self, body: &Body) -> u32 {
        let groups: Vec<u32> = (body.ops.iter())
            .map(|(op, conditions)| {
                let kids: Vec<u32> = (conditions.iter())
                    .map(|c| match c {
                        Condition::Criterion(c) => self.leaf(c, None),
                        Condition::Body(b) => self.body(b),
                    })
                    .collect();
                self.group(*op, &kids)
            })
            .collect();
        match groups.as_slice() {
            [one] => *one,
            _ => self.group(Operator::Or, &groups),
        }
    }

    fn test(&mut self, criterion: &Criterion) -> Test {
        let exact = |m: &StringMatcher| m.checks.clone().into_boxed_slice();
        let caseless = |m: &StringMatcher| m.checks.iter().map(fold_check).collect();
        match criterion {
            Criterion::Accept => Test::Const(true),
            Criterion::Reject => Test::Const(false),
            Criterion::AuthenticatedUser => Test::Authenticated,
            Criterion::CorsPreflight => Test::CorsPreflight,
            Criterion::User(m) => Test::User(exact(m)),
            Criterion::Email(m) => Test::Email(caseless(m)),
            Criterion::Domain(m) => Test::Domain(caseless(m)),
            Criterion::HttpMethod(m) => Test::Method(exact(m)),
            Criterion::HttpPath(m) => Test::Path(exact(m)),
            Criterion::Groups(m) => {
                self.groups.extend(m.checks.iter().map(|c| match c {
                    ListCheck::Has(g) | ListCheck::Is(g) | ListCheck::Exclude(g) => g.clone(),
                }));
                Test::Groups(m.checks.clone().into_boxed_slice())
            }
            Criterion::Claim { path, matcher } => Test::Claim {
                path: path.clone().into_boxed_slice(),
                checks: matcher.checks.clone().into_boxed_slice(),
            },
            Criterion::SourceIp(nets) => Test::SourceIp(nets.iter().map(unmap).collect()),
            Criterion::Date(range) => Test::Date {
                after: range.after.as_ref().map(|t| (t.unix_seconds, t.nanos)),
                before: range.before.as_ref().map(|t| (t.unix_seconds, t.nanos)),
            },
            Criterion::DayOfWeek(w) => Test::DayOfWeek {
                days: w.days,
                zone: w.timezone.unwrap_or(Tz::UTC),
            },
            Criterion::TimeOfDay(w) => Test::TimeOfDay {
                zone: w.timezone,
                after: w.after,
                before: w.before,
            },
        }
    }
}

/// Folds the values of an `email`/`domain` check for case-insensitive comparison.
fn fold_check(check: &StringCheck) -> StringCheck {
    let all = |list: &[String]| list.iter().map(|s| fold_str(s)).collect();
    match check {
        StringCheck::Is(s) => StringCheck::Is(fold_str(s)),
        StringCheck::StartsWith(s) => StringCheck::StartsWith(fold_str(s)),
        StringCheck::EndsWith(s) => StringCheck::EndsWith(fold_str(s)),
        StringCheck::Contains(s) => StringCheck::Contains(fold_str(s)),
        StringCheck::In(l) => StringCheck::In(all(l)),
        StringCheck::NotIn(l) => StringCheck::NotIn(all(l)),
    }
}

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it denotes, so it
/// matches clients whose address is canonicalised to IPv4.
fn unmap(net: &IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.network().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(net) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(net);
    }
    *net
}

impl CompiledPolicy {
    /// Compiles a route's access settings. Infallible: `access` was validated at load.
    pub fn compile(access: &Access) -> CompiledPolicy {
        let mut b = Builder::default();
        let mut rules: Vec<(Action, u32, String)> = Vec::new();

        let legacy = legacy_criteria(access);
        if !legacy.is_empty() {
            let kids: Vec<u32> = (legacy.iter())
                .map(|(label, c)| b.leaf(c, Some(label)))
                .collect();
            let root = b.group(Operator::Or, &kids);
            rules.push((Action::Allow, root, "legacy fields".to_owned()));
        }
        let mut add = |b: &mut Builder, policy: &Policy, source: String| {
            for Rule { action, body } in &policy.rules {
                rules.push((*action, b.body(body), source.clone()));
            }
        };
        if let Some(policy) = &access.policy {
            add(&mut b, policy, "policy".to_owned());
        }
        for (i, (file, policy)) in access.policy_files.iter().enumerate() {
            add(
                &mut b,
                policy,
                format!("policy_files[{i}] {}", file_name(file)),
            );
        }
        Self::assemble(b, rules)
    }

    fn assemble(mut b: Builder, rules: Vec<(Action, u32, String)>) -> CompiledPolicy {
        let (mut allow, mut deny) = (Vec::new(), Vec::new());
        let mut infos = Vec::with_capacity(rules.len());
        for (i, (action, root, source)) in rules.into_iter().enumerate() {
            let list = match action {
                Action::Allow => &mut allow,
                Action::Deny => &mut deny,
            };
            list.push(id(i));
            infos.push(RuleInfo {
                action,
                root,
                number: id(list.len()),
                source,
            });
        }
        // Each side is the `or` of its rules.
        let side = |list: &[u32]| {
            let roots: Vec<Facts> = (list.iter())
                .map(|&r| b.facts[infos[r as usize].root as usize])
                .collect();
            Facts::group(Operator::Or, &roots)
        };
        let (allow_side, deny_side) = (side(&allow), side(&deny));
        let can_be_undenied = deny_side.values.has(Values::FALSE);
        let can_allow = can_be_undenied && allow_side.values.has(Values::TRUE);
        b.groups.sort();
        b.groups.dedup();
        CompiledPolicy {
            can_never_allow: !can_allow,
            needs_user: deny_side.user_dependent || (can_be_undenied && allow_side.user_dependent),
            // For a signed-in user the outcome is only Allow or Deny, so groups matter only
            // where something can be allowed.
            uses_groups: can_allow && (deny_side.groups_dependent || allow_side.groups_dependent),
            nodes: b.nodes,
            children: b.children,
            rules: infos,
            deny,
            allow,
            groups: b.groups,
        }
    }

    /// True when no request can ever be allowed: no allow criteria at all, allow rules that
    /// can never be true (only `reject`, …), or a deny side that is always true. Used by
    /// `portcullis check` to warn. An over-approximation: `false` does not prove that some
    /// request gets in.
    pub fn can_never_allow(&self) -> bool {
        self.can_never_allow
    }

    /// Every group named in `groups` criteria (`has`, `is`, `exclude`) and `allowed_groups`,
    /// sorted and deduplicated.
    pub fn mentioned_groups(&self) -> Vec<String> {
        self.groups.clone()
    }

    /// False when the decision never depends on who the user is (a pure `accept`, `source_ip`
    /// rules, …): the pipeline may then skip loading the session and pass no user.
    pub fn needs_user(&self) -> bool {
        self.needs_user
    }

    /// True when the user's groups can change the decision (a `groups` criterion or
    /// `allowed_groups` that is not drowned out by a constant). While the directory cannot
    /// confirm a session's groups (`Session::groups_unverified`), such a route should fail
    /// closed instead of being evaluated.
    pub fn uses_groups(&self) -> bool {
        self.uses_groups
    }
}

/// The last component of a policy file's path, for explanations.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
