//! Calendar criteria of the policy language: `date` (RFC 3339 bounds), `day_of_week`
//! and `time_of_day` (in an IANA time zone), parsed once at load.

use std::fmt;

use chrono_tz::Tz;

use super::matcher::{Case, entries, expected, text};
use crate::config::node::Node;
use crate::config::problem::{Problems, did_you_mean, join};
/// A validated RFC 3339 timestamp (or plain `YYYY-MM-DD` date, meaning midnight UTC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// The text as written in the configuration.
    pub text: String,
    /// Seconds since the Unix epoch, UTC.
    pub unix_seconds: i64,
    /// Nanoseconds within that second (from the fractional part, truncated to 9 digits).
    pub nanos: u32,
}

/// A `date` criterion: the request time must be after `after` and before `before`.
/// At least one bound is set; when both are, `after` is earlier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateRange {
    /// Lower bound (exclusive).
    pub after: Option<Timestamp>,
    /// Upper bound (exclusive).
    pub before: Option<Timestamp>,
}

/// Two ASCII digits at `at` as a number.
fn two(b: &[u8], at: usize) -> Option<i64> {
    match (b.get(at), b.get(at + 1)) {
        (Some(h), Some(l)) if h.is_ascii_digit() && l.is_ascii_digit() => {
            Some(i64::from((h - b'0') * 10 + (l - b'0')))
        }
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS(.fff)?(Z|±HH:MM)`.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let (y, m, d) = (two(b, 0)? * 100 + two(b, 2)?, two(b, 5)?, two(b, 8)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let max_day = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || d < 1 || d > max_day {
        return None;
    }
    let days = days_from_civil(y, m, d);
    let text = s.to_owned();
    if b.len() == 10 {
        return Some(Timestamp {
            text,
            unix_seconds: days * 86_400,
            nanos: 0,
        });
    }
    let (h, mi, sec) = (two(b, 11)?, two(b, 14)?, two(b, 17)?);
    if !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    let (mut i, mut nanos, mut digits) = (19, 0u32, 0);
    if b.get(i) == Some(&b'.') {
        i += 1;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if digits < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
                digits += 1;
            }
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        nanos *= 10u32.pow(9 - digits);
    }
    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest.get(2) == Some(&b':') => {
            let (oh, om) = (two(rest, 0)?, two(rest, 3)?);
            if oh > 23 || om > 59 {
                return None;
            }
            (oh * 3600 + om * 60) * if *sign == b'+' { 1 } else { -1 }
        }
        _ => return None,
    };
    let unix_seconds = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(Timestamp {
        text,
        unix_seconds,
        nanos,
    })
}

/// Parses the `after` / `before` bounds shared by `date` and `time_of_day`; `extra` handles
/// (and reports) any other key.
fn bounds<T>(
    node: &Node,
    path: &str,
    what: &str,
    problems: &mut Problems,
    parse: impl Fn(&str) -> Option<T>,
    mut extra: impl FnMut(&str, &Node, &mut Problems),
) -> Option<(Option<T>, Option<T>)> {
    let before_count = problems.errors().len();
    let (mut after, mut before) = (None, None);
    for (key, value) in entries(node, path, "a map with `after` and/or `before`", problems) {
        let p = join(path, key);
        let slot = match key.as_str() {
            "after" => &mut after,
            "before" => &mut before,
            _ => {
                extra(key, value, problems);
                continue;
            }
        };
        if let Some(s) = text(value, &p, Case::Keep, problems) {
            *slot = parse(&s);
            if slot.is_none() {
                problems.push(p, format!("{s:?} is not {what}"));
            }
        }
    }
    if problems.errors().len() == before_count && after.is_none() && before.is_none() {
        problems.push(path, "needs `after` and/or `before`");
    }
    (problems.errors().len() == before_count).then_some((after, before))
}

/// Parses `date` data: a map with `after` and/or `before` timestamps.
pub fn parse_date(node: &Node, path: &str, problems: &mut Problems) -> Option<DateRange> {
    let what = "an RFC 3339 timestamp (2024-05-01T09:00:00Z) or a date (2024-05-01)";
    let unknown = |key: &str, _: &Node, problems: &mut Problems| {
        problems.unknown_key(path, key, &["after", "before"])
    };
    let (after, before) = bounds(node, path, what, problems, parse_timestamp, unknown)?;
    if let (Some(a), Some(b)) = (&after, &before)
        && (a.unix_seconds, a.nanos) >= (b.unix_seconds, b.nanos)
    {
        problems.push(path, "`after` must be earlier than `before`");
        return None;
    }
    Some(DateRange { after, before })
}

/// Parses `HH:MM` or `HH:MM:SS` into seconds since midnight.
pub fn parse_clock(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    let (h, m) = (two(b, 0)?, two(b, 3)?);
    let sec = match b.len() {
        5 => 0,
        8 if b.get(5) == Some(&b':') => two(b, 6)?,
        _ => return None,
    };
    if b.get(2) != Some(&b':') || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    u32::try_from(h * 3600 + m * 60 + sec).ok()
}

/// Parses an IANA timezone name (`Europe/Berlin`, `UTC`), exactly as the tz database spells
/// it. An unknown name is an error, with the closest known name suggested.
pub fn parse_timezone(node: &Node, path: &str, problems: &mut Problems) -> Option<Tz> {
    let name = text(node, path, Case::Keep, problems)?;
    let zone = name.parse::<Tz>().ok();
    if zone.is_none() {
        let known: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
        let exact_but_case = known.iter().find(|k| k.eq_ignore_ascii_case(&name));
        let hint = match exact_but_case
            .copied()
            .or_else(|| did_you_mean(&name, &known))
        {
            Some(best) => format!("; did you mean `{best}`?"),
            None => " such as `Europe/Berlin`, `America/New_York` or `UTC`".to_owned(),
        };
        problems.push(path, format!("{name:?} is not an IANA timezone{hint}"));
    }
    zone
}

/// A `time_of_day` criterion: local time in `timezone` from `after` (inclusive) until
/// `before` (exclusive). When `after` is later than `before` the window wraps past midnight
/// (22:00–06:00).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    /// The IANA zone the clock times are read in (validated at load).
    pub timezone: Tz,
    /// Lower bound, seconds since local midnight.
    pub after: Option<u32>,
    /// Upper bound, seconds since local midnight.
    pub before: Option<u32>,
}

/// Parses `time_of_day` data: `timezone` (required) and `after` and/or `before`.
pub fn parse_time_of_day(node: &Node, path: &str, problems: &mut Problems) -> Option<TimeWindow> {
    let mut timezone = None;
    let mut zone_seen = false;
    let extra = |key: &str, value: &Node, problems: &mut Problems| {
        if key == "timezone" {
            zone_seen = true;
            timezone = parse_timezone(value, &join(path, key), problems);
        } else {
            problems.unknown_key(path, key, &["timezone", "after", "before"]);
        }
    };
    let bounds = bounds(
        node,
        path,
        "a time of day (HH:MM or HH:MM:SS)",
        problems,
        parse_clock,
        extra,
    );
    if matches!(node, Node::Map(e) if !e.is_empty()) && !zone_seen {
        problems.push(path, "missing required key `timezone`");
    }
    let ((after, before), timezone) = (bounds?, timezone?);
    if after.is_some() && after == before {
        problems.push(path, "`after` and `before` are equal");
        return None;
    }
    Some(TimeWindow {
        timezone,
        after,
        before,
    })
}

/// Day names, Monday first; index = bit in [`DaySet`].
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A set of days of the week: bit 0 = Monday … bit 6 = Sunday.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaySet {
    /// The day bits; only the low 7 are used, never all zero.
    pub bits: u8,
}

impl DaySet {
    /// Every day (`*`).
    pub const ALL: DaySet = DaySet { bits: 0x7f };

    /// Whether the set holds `day` (0 = Monday … 6 = Sunday).
    pub fn contains(self, day: usize) -> bool {
        day < 7 && self.bits & (1 << day) != 0
    }
}

/// A `day_of_week` criterion: the request's day, in `timezone` (UTC when none), is in `days`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weekdays {
    /// The accepted days.
    pub days: DaySet,
    /// The zone that decides which day it is; None means UTC.
    pub timezone: Option<Tz>,
}

/// Day index of a 3-letter or full day name, case-insensitive.
fn day(name: &str) -> Option<usize> {
    let name = name.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| name.len() >= 3 && (*d == name || (name.len() == 3 && d.starts_with(&name))))
}

/// Parses `day_of_week` data: a day list (read in UTC), or a map `{days: …, timezone: …}`
/// whose `timezone` is optional. A day list is `*`, or comma-separated days and ranges
/// (`mon-fri`); a range whose end comes before its start wraps through Sunday (`fri-mon`).
pub fn parse_day_of_week(node: &Node, path: &str, problems: &mut Problems) -> Option<Weekdays> {
    let Node::Map(entries) = node else {
        if matches!(node, Node::List(_) | Node::Null) {
            let what = "a string of days (mon-fri) or a map with `days` and `timezone`";
            expected(problems, path, what, node);
            return None;
        }
        let days = parse_days(node, path, problems)?;
        return Some(Weekdays {
            days,
            timezone: None,
        });
    };
    let start = problems.errors().len();
    let (mut days, mut timezone) = (None, None);
    for (key, value) in entries {
        let p = join(path, key);
        match key.as_str() {
            "days" => days = parse_days(value, &p, problems),
            "timezone" => timezone = parse_timezone(value, &p, problems),
            _ => problems.unknown_key(path, key, &["days", "timezone"]),
        }
    }
    if !entries.iter().any(|(k, _)| k == "days") {
        problems.push(path, "missing required key `days`");
    }
    let days = days.filter(|_| problems.errors().len() == start)?;
    Some(Weekdays { days, timezone })
}

/// Parses a day list: `*`, or comma-separated days and ranges.
fn parse_days(node: &Node, path: &str, problems: &mut Problems) -> Option<DaySet> {
    let s = text(node, path, Case::Keep, problems)?;
    let mut bits = 0u8;
    let mut ok = true;
    for token in s.split(',').map(str::trim) {
        let range = match token.split_once('-') {
            _ if token == "*" => Some((0, 6)),
            Some((a, b)) => day(a).zip(day(b)),
            None => day(token).map(|d| (d, d)),
        };
        let Some((first, last)) = range else {
            problems.push(
                path,
                format!("{token:?} is not a day (mon … sun), a range (mon-fri) or `*`"),
            );
            ok = false;
            continue;
        };
        let len = (last + 7 - first) % 7;
        for i in 0..=len {
            bits |= 1 << ((first + i) % 7);
        }
    }
    ok.then_some(DaySet { bits })
}

impl fmt::Display for DaySet {
    /// `*` or `mon,tue,fri`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == DaySet::ALL {
            return f.write_str("*");
        }
        let names: Vec<_> = (0..7)
            .filter(|&d| self.contains(d))
            .filter_map(|d| DAYS[d].get(..3))
            .collect();
        f.write_str(&names.join(","))
    }
}

impl fmt::Display for Weekdays {
    /// `mon,tue` or `mon,tue in "Europe/Berlin"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.timezone {
            Some(zone) => write!(f, "{} in {:?}", self.days, zone.name()),
            None => write!(f, "{}", self.days),
        }
    }
}

/// `after X and before Y`, omitting a missing bound.
fn after_before(after: Option<String>, before: Option<String>) -> String {
    let after = after.map(|a| format!("after {a}"));
    let before = before.map(|b| format!("before {b}"));
    after
        .into_iter()
        .chain(before)
        .collect::<Vec<_>>()
        .join(" and ")
}

impl fmt::Display for DateRange {
    /// `after "…" and before "…"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |t: &Timestamp| format!("{:?}", t.text);
        f.write_str(&after_before(
            self.after.as_ref().map(text),
            self.before.as_ref().map(text),
        ))
    }
}

impl fmt::Display for TimeWindow {
    /// `after 09:00 and before 17:30:15 in "Europe/Paris"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clock = |s: u32| match s % 60 {
            0 => format!("{:02}:{:02}", s / 3600, s / 60 % 60),
            sec => format!("{:02}:{:02}:{sec:02}", s / 3600, s / 60 % 60),
        };
        let window = after_before(self.after.map(clock), self.before.map(clock));
        write!(f, "{window} in {:?}", self.timezone.name())
    }
}
