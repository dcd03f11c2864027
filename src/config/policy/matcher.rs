//! Criterion data for the Pomerium Policy Language: string and string-list matchers,
//! `source_ip` networks, `date` ranges, `day_of_week` sets and `time_of_day` windows, and
//! the IANA timezones the last two are evaluated in.
//!
//! [`super::ppl`] owns the grammar (rules, bodies, operators, criterion names) and calls the
//! `parse_*` functions here for each criterion's data. Like the rest of config loading they
//! never stop early: every problem is pushed into [`Problems`] with its dotted path, and a
//! function returns `None` when it reported anything.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::node::Node;
use crate::config::problem::{Problems, index, join};

pub use super::calendar::{
    DateRange, DaySet, TimeWindow, Timestamp, Weekdays, parse_clock, parse_date, parse_day_of_week,
    parse_time_of_day, parse_timestamp, parse_timezone,
};

/// The keys of a string matcher map.
pub const STRING_KEYS: [&str; 6] = ["is", "starts_with", "ends_with", "contains", "in", "not_in"];
/// The keys of a string-list matcher map.
pub const LIST_KEYS: [&str; 3] = ["has", "is", "exclude"];

/// Records "expected WHAT, found KIND" at `path`.
pub(crate) fn expected(problems: &mut Problems, path: &str, what: &str, node: &Node) {
    problems.push(path, format!("expected {what}, found {}", node.kind()));
}

/// How matcher values are normalised before they are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Stored as written.
    Keep,
    /// Lowercased (`email`, `domain`: compared case-insensitively).
    Lower,
    /// Uppercased (`http_method`).
    Upper,
}

/// A non-empty string from a scalar (numbers and booleans use their written form).
pub(super) fn text(node: &Node, path: &str, case: Case, problems: &mut Problems) -> Option<String> {
    let Some(s) = node.as_scalar_string() else {
        expected(problems, path, "a string", node);
        return None;
    };
    if s.is_empty() {
        problems.push(path, "empty string");
        return None;
    }
    Some(match case {
        Case::Keep => s,
        Case::Lower => s.to_lowercase(),
        Case::Upper => s.to_uppercase(),
    })
}

/// A non-empty list of non-empty strings.
fn texts(node: &Node, path: &str, case: Case, problems: &mut Problems) -> Option<Vec<String>> {
    let Node::List(items) = node else {
        expected(problems, path, "a list of strings", node);
        return None;
    };
    if items.is_empty() {
        problems.push(path, "empty list");
        return None;
    }
    let out: Vec<_> = (items.iter().enumerate())
        .filter_map(|(i, item)| text(item, &index(path, i), case, problems))
        .collect();
    (out.len() == items.len()).then_some(out)
}

/// The entries of a map value; reports a non-map or an empty map and yields no entries.
pub(super) fn entries<'a>(
    node: &'a Node,
    path: &str,
    what: &str,
    problems: &mut Problems,
) -> &'a [(String, Node)] {
    match node {
        Node::Map(entries) if entries.is_empty() => {
            problems.push(path, format!("empty map; expected {what}"));
            &[]
        }
        Node::Map(entries) => entries,
        other => {
            expected(problems, path, what, other);
            &[]
        }
    }
}

/// One test of a string matcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StringCheck {
    /// Equal to the value.
    Is(String),
    /// Starts with the value.
    StartsWith(String),
    /// Ends with the value.
    EndsWith(String),
    /// Contains the value.
    Contains(String),
    /// Equal to one of the values.
    In(Vec<String>),
    /// Equal to none of the values.
    NotIn(Vec<String>),
}

/// A string matcher: every check must hold (they are AND-ed). For `email` and `domain` the
/// values are stored lowercased and compared case-insensitively; for `http_method` they are
/// stored uppercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringMatcher {
    /// The checks, in file order; never empty.
    pub checks: Vec<StringCheck>,
}

/// Parses a string matcher: a bare scalar (`is`) or a map of [`STRING_KEYS`].
pub fn parse_string_matcher(
    node: &Node,
    path: &str,
    case: Case,
    problems: &mut Problems,
) -> Option<StringMatcher> {
    if !matches!(node, Node::Map(_) | Node::List(_) | Node::Null) {
        return text(node, path, case, problems).map(|s| StringMatcher {
            checks: vec![StringCheck::Is(s)],
        });
    }
    let entries = entries(
        node,
        path,
        "a string or a map of is/starts_with/ends_with/contains/in/not_in",
        problems,
    );
    let mut checks = Vec::new();
    for (key, value) in entries {
        let p = join(path, key);
        let check = match key.as_str() {
            "is" => text(value, &p, case, problems).map(StringCheck::Is),
            "starts_with" => text(value, &p, case, problems).map(StringCheck::StartsWith),
            "ends_with" => text(value, &p, case, problems).map(StringCheck::EndsWith),
            "contains" => text(value, &p, case, problems).map(StringCheck::Contains),
            "in" => texts(value, &p, case, problems).map(StringCheck::In),
            "not_in" => texts(value, &p, case, problems).map(StringCheck::NotIn),
            _ => {
                problems.unknown_key(path, key, &STRING_KEYS);
                None
            }
        };
        checks.extend(check);
    }
    (!entries.is_empty() && checks.len() == entries.len()).then_some(StringMatcher { checks })
}

/// One test of a string-list matcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListCheck {
    /// The list contains the value.
    Has(String),
    /// The list has exactly one element, equal to the value.
    Is(String),
    /// The list does not contain the value.
    Exclude(String),
}

/// A string-list matcher (for `groups` and `claim/…`): every check must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListMatcher {
    /// The checks, in file order; never empty.
    pub checks: Vec<ListCheck>,
}

/// Parses a string-list matcher: a bare scalar (`has`) or a map of [`LIST_KEYS`].
pub fn parse_list_matcher(node: &Node, path: &str, problems: &mut Problems) -> Option<ListMatcher> {
    if !matches!(node, Node::Map(_) | Node::List(_) | Node::Null) {
        return text(node, path, Case::Keep, problems).map(|s| ListMatcher {
            checks: vec![ListCheck::Has(s)],
        });
    }
    let entries = entries(node, path, "a string or a map of has/is/exclude", problems);
    let mut checks = Vec::new();
    for (key, value) in entries {
        let p = join(path, key);
        let check = match key.as_str() {
            "has" => text(value, &p, Case::Keep, problems).map(ListCheck::Has),
            "is" => text(value, &p, Case::Keep, problems).map(ListCheck::Is),
            "exclude" => text(value, &p, Case::Keep, problems).map(ListCheck::Exclude),
            _ => {
                problems.unknown_key(path, key, &LIST_KEYS);
                None
            }
        };
        checks.extend(check);
    }
    (!entries.is_empty() && checks.len() == entries.len()).then_some(ListMatcher { checks })
}

/// Parses `source_ip` data: one IP or CIDR string, or a non-empty list of them. A bare
/// address becomes a /32 or /128; host bits of a CIDR are cleared (`10.1.2.3/8` → `10.0.0.0/8`).
pub fn parse_source_ip(node: &Node, path: &str, problems: &mut Problems) -> Option<Vec<IpNet>> {
    let one = |node: &Node, path: &str, problems: &mut Problems| {
        let s = text(node, path, Case::Keep, problems)?;
        let net = s
            .parse::<IpNet>()
            .ok()
            .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from));
        if net.is_none() {
            problems.push(path, format!("{s:?} is not an IP address or CIDR"));
        }
        net.map(|n| n.trunc())
    };
    match node {
        Node::List(items) if items.is_empty() => {
            problems.push(path, "empty list");
            None
        }
        Node::List(items) => {
            let nets: Vec<_> = (items.iter().enumerate())
                .filter_map(|(i, n)| one(n, &index(path, i), problems))
                .collect();
            (nets.len() == items.len()).then_some(nets)
        }
        Node::Map(_) | Node::Null => {
            expected(
                problems,
                path,
                "an IP address or CIDR, or a list of them",
                node,
            );
            None
        }
        _ => one(node, path, problems).map(|n| vec![n]),
    }
}

fn quoted(f: &mut fmt::Formatter<'_>, list: &[String]) -> fmt::Result {
    f.write_str("[")?;
    for (i, s) in list.iter().enumerate() {
        write!(f, "{}{s:?}", if i > 0 { ", " } else { "" })?;
    }
    f.write_str("]")
}

impl fmt::Display for StringMatcher {
    /// `starts_with "a" and ends_with "b"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, check) in self.checks.iter().enumerate() {
            f.write_str(if i > 0 { " and " } else { "" })?;
            match check {
                StringCheck::Is(s) => write!(f, "is {s:?}")?,
                StringCheck::StartsWith(s) => write!(f, "starts_with {s:?}")?,
                StringCheck::EndsWith(s) => write!(f, "ends_with {s:?}")?,
                StringCheck::Contains(s) => write!(f, "contains {s:?}")?,
                StringCheck::In(l) => {
                    f.write_str("in ")?;
                    quoted(f, l)?
                }
                StringCheck::NotIn(l) => {
                    f.write_str("not_in ")?;
                    quoted(f, l)?
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for ListMatcher {
    /// `has "a" and exclude "b"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, check) in self.checks.iter().enumerate() {
            f.write_str(if i > 0 { " and " } else { "" })?;
            match check {
                ListCheck::Has(s) => write!(f, "has {s:?}")?,
                ListCheck::Is(s) => write!(f, "is {s:?}")?,
                ListCheck::Exclude(s) => write!(f, "exclude {s:?}")?,
            }
        }
        Ok(())
    }
}
