//! The path side of a route: `to` (upstreams and weights), `prefix`/`path`/`regex`,
//! and the rewrites (`prefix_rewrite`, `regex_rewrite_*`, the implicit rewrite of a
//! path in `to`). Part of reading a route; see [`super::route`].

use regex::Regex;
use url::Url;

use super::reader::Fields;
use super::route::{PathMatch, PathRewrite, Upstream};

pub(super) fn read_to(f: &mut Fields<'_>) -> (Vec<Upstream>, Option<String>) {
    let Some(list) = f.strings("to") else {
        if !f.has("to") {
            let p = f.path_of("to");
            f.problems
                .push(p, "missing `to` (one upstream URL or a list)");
        }
        return (Vec::new(), None);
    };
    let base = f.path_of("to");
    let mut out = Vec::new();
    let mut paths = Vec::new();
    let mut weighted = 0;
    for (i, item) in list.iter().enumerate() {
        let p = format!("{base}[{i}]");
        let (url_text, weight) = match item.rsplit_once(',') {
            Some((u, w)) => match w.trim().parse::<u32>() {
                Ok(0) => {
                    f.problems.push(p, "weight must be at least 1");
                    continue;
                }
                Ok(w) => {
                    weighted += 1;
                    (u.trim(), w)
                }
                Err(_) => {
                    f.problems
                        .push(p, format!("{w:?} is not a weight (a whole number)"));
                    continue;
                }
            },
            None => (item.as_str(), 1),
        };
        let mut url = match Url::parse(url_text) {
            Ok(u) => u,
            Err(e) => {
                f.problems
                    .push(p, format!("{url_text:?} is not a URL: {e}"));
                continue;
            }
        };
        if !matches!(url.scheme(), "http" | "https" | "h2c") {
            f.problems.push(
                p,
                format!(
                    "scheme {:?} is not supported; use http, https or h2c",
                    url.scheme()
                ),
            );
            continue;
        }
        if url.host_str().is_none() {
            f.problems.push(p, "missing host");
            continue;
        }
        if url.query().is_some() || !url.username().is_empty() {
            f.problems
                .push(p, "must not contain a query or credentials");
            continue;
        }
        paths.push(url.path().to_owned());
        url.set_path("");
        let host = url.host_str().unwrap_or_default();
        let text = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let (Ok(authority), Ok(host_header)) = (
            text.parse::<http::uri::Authority>(),
            http::HeaderValue::from_str(&text),
        ) else {
            f.problems.push(p, format!("{text:?} is not a valid host"));
            continue;
        };
        let scheme = if url.scheme() == "https" {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        };
        out.push(Upstream {
            url,
            weight,
            authority,
            host_header,
            scheme,
        });
    }
    if weighted != 0 && weighted != list.len() {
        f.problems.push(
            base.clone(),
            "either every `to` URL has a weight or none does",
        );
    }
    if out.iter().map(|u| u.weight as u64).sum::<u64>() > 10_000 {
        f.problems
            .push(base.clone(), "weights add up to more than 10000");
    }
    paths.dedup();
    if paths.len() > 1 {
        f.problems
            .push(base, "all `to` URLs must have the same path");
    }
    (out, paths.pop().filter(|p| p != "/"))
}

pub(super) fn read_match(f: &mut Fields<'_>) -> Option<PathMatch> {
    let prefix = f.string("prefix");
    let exact = f.string("path");
    let regex = f.string("regex");
    let set = [prefix.is_some(), exact.is_some(), regex.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if set > 1 {
        let p = f.path_of("prefix");
        f.problems
            .push(p, "set only one of `prefix`, `path` and `regex`");
        return None;
    }
    if let Some(r) = regex {
        let anchored = format!("^(?:{r})$");
        return match Regex::new(&anchored) {
            Ok(re) => Some(PathMatch::Regex(re)),
            Err(e) => f.ok_or_report("regex", Err(format!("invalid regex: {e}"))),
        };
    }
    for (key, value, exact) in [("path", exact, true), ("prefix", prefix, false)] {
        if let Some(v) = value {
            if !v.starts_with('/') {
                return f.ok_or_report(key, Err(format!("{v:?} must start with `/`")));
            }
            return Some(if exact {
                PathMatch::Exact(v)
            } else {
                PathMatch::Prefix(v)
            });
        }
    }
    Some(PathMatch::Prefix("/".into()))
}

pub(super) fn read_rewrite(
    f: &mut Fields<'_>,
    path_match: &Option<PathMatch>,
    to_path: Option<String>,
) -> Option<PathRewrite> {
    let prefix = f.string("prefix_rewrite");
    let pattern = f.string("regex_rewrite_pattern");
    let substitution = f.string("regex_rewrite_substitution");
    match (prefix, pattern, substitution) {
        (Some(_), Some(_), _) => f.ok_or_report(
            "prefix_rewrite",
            Err("cannot be combined with `regex_rewrite_pattern`".into()),
        ),
        (Some(_), None, _) if matches!(path_match, Some(PathMatch::Regex(_))) => f.ok_or_report(
            "prefix_rewrite",
            Err("cannot be combined with `regex`; use `regex_rewrite_pattern`".into()),
        ),
        (Some(p), None, None) if p.contains(['?', '#']) => f.ok_or_report(
            "prefix_rewrite",
            Err("must be a path, without `?` or `#`".into()),
        ),
        (Some(p), None, None) => Some(PathRewrite::Prefix(p)),
        (None, Some(pat), Some(sub)) => match Regex::new(&pat) {
            Ok(pattern) => Some(PathRewrite::Regex {
                pattern,
                substitution: convert_substitution(&sub),
            }),
            Err(e) => f.ok_or_report("regex_rewrite_pattern", Err(format!("invalid regex: {e}"))),
        },
        (None, Some(_), None) => f.ok_or_report(
            "regex_rewrite_pattern",
            Err("needs `regex_rewrite_substitution`".into()),
        ),
        (_, None, Some(_)) => f.ok_or_report(
            "regex_rewrite_substitution",
            Err("needs `regex_rewrite_pattern`".into()),
        ),
        (None, None, None) => match to_path {
            // A path in `to` is an implicit prefix rewrite (Pomerium).
            Some(p) if !matches!(path_match, Some(PathMatch::Regex(_))) => {
                Some(PathRewrite::Prefix(p))
            }
            _ => Some(PathRewrite::None),
        },
    }
}

/// Turns Envoy/RE2 substitutions (`\1`) into regex-crate syntax (`${1}`), escaping `$`.
pub fn convert_substitution(sub: &str) -> String {
    let mut out = String::with_capacity(sub.len() + 4);
    let mut chars = sub.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            }
            '\\' if chars.peek() == Some(&'\\') => {
                chars.next();
                out.push('\\');
            }
            c => out.push(c),
        }
    }
    out
}
