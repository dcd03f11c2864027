//! Header settings: `set_response_headers` (global defaults and per-route merge),
//! `set_request_headers`, and `jwt_claims_headers`.
//!
//! Names and values are validated at load so the request path only copies ready-made
//! `HeaderName`/`HeaderValue`s.

use http::{HeaderName, HeaderValue};

use super::node::Node;
use super::problem::{Problems, join};
use super::reader::map_of_strings;
use crate::config::template::Template;

/// An ordered list of response headers to set.
pub type HeaderList = Vec<(HeaderName, HeaderValue)>;

/// Pomerium's secure response headers. HSTS is included only when serving TLS.
pub fn secure_defaults(tls: bool) -> HeaderList {
    let mut list = vec![
        (
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("SAMEORIGIN"),
        ),
        (
            HeaderName::from_static("x-xss-protection"),
            HeaderValue::from_static("1; mode=block"),
        ),
    ];
    if tls {
        list.push((
            HeaderName::from_static("strict-transport-security"),
            HeaderValue::from_static("max-age=31536000; includeSubDomains; preload"),
        ));
    }
    list
}

/// Reads a global `set_response_headers` map: it replaces the defaults; a `disable` key
/// (any true-ish value) turns them all off.
pub fn read_global(pairs: &[(String, String)], path: &str, problems: &mut Problems) -> HeaderList {
    if is_disabled(pairs) {
        return Vec::new();
    }
    validate(pairs, path, problems)
}

/// Merges a route's `set_response_headers` over the global list; `disable` clears all.
pub fn merge_route(
    global: &HeaderList,
    node: &Node,
    path: &str,
    problems: &mut Problems,
) -> HeaderList {
    let pairs = match map_of_strings(node) {
        Ok(p) => p,
        Err(e) => {
            problems.push(path, e);
            return global.clone();
        }
    };
    if is_disabled(&pairs) {
        return Vec::new();
    }
    let mut merged: HeaderList = global.clone();
    for (name, value) in validate(&pairs, path, problems) {
        merged.retain(|(n, _)| *n != name);
        merged.push((name, value));
    }
    merged
}

fn is_disabled(pairs: &[(String, String)]) -> bool {
    pairs
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("disable") && v != "false")
}

fn validate(pairs: &[(String, String)], path: &str, problems: &mut Problems) -> HeaderList {
    let mut out = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        match (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            (Ok(n), Ok(val)) => out.push((n, val)),
            (Err(_), _) => problems.push(join(path, k), "not a valid header name"),
            (_, Err(_)) => problems.push(join(path, k), "not a valid header value"),
        }
    }
    out
}

/// Validates a route's `set_request_headers`. `Host` and pseudo-headers cannot be set
/// this way (use `host_rewrite`). Values stay strings: they may hold templates.
pub fn request_set(
    pairs: &[(String, String)],
    path: &str,
    problems: &mut Problems,
) -> Vec<(HeaderName, Template)> {
    let mut out = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let p = join(path, k);
        let template = match Template::parse(v) {
            Ok(t) => t,
            Err(e) => {
                problems.push(p, e);
                continue;
            }
        };
        match HeaderName::from_bytes(k.as_bytes()) {
            Ok(n) if n == http::header::HOST => {
                problems.push(p, "Host cannot be set here; use `host_rewrite`")
            }
            Ok(_) if v.contains(['\r', '\n', '\0']) => {
                problems.push(p, "value contains a line break or NUL")
            }
            Ok(n) => out.push((n, template)),
            Err(_) => problems.push(p, "not a valid header name"),
        }
    }
    out
}

/// Reads `jwt_claims_headers`: a list or comma/space-separated string of claim names
/// (header `X-Pomerium-Claim-<claim>`), or a map of header name → claim.
pub fn claims_headers(
    node_or_env: Result<&Node, &str>,
    path: &str,
    problems: &mut Problems,
) -> Vec<(HeaderName, String)> {
    let node_or_env = match node_or_env {
        Ok(Node::Str(text)) => Err(text.as_str()),
        other => other,
    };
    let pairs: Vec<(String, String)> = match node_or_env {
        Err(text) if !text.trim_start().starts_with('{') => text
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(|c| (format!("x-pomerium-claim-{c}"), c.to_owned()))
            .collect(),
        Err(json) => match serde_json::from_str::<std::collections::BTreeMap<String, String>>(json)
        {
            Ok(m) => m.into_iter().collect(),
            Err(e) => {
                problems.push(
                    path,
                    format!("expected a list, a string or a JSON map: {e}"),
                );
                return Vec::new();
            }
        },
        Ok(Node::List(items)) => items
            .iter()
            .filter_map(|n| n.as_scalar_string())
            .map(|c| (format!("x-pomerium-claim-{c}"), c))
            .collect(),
        Ok(node @ Node::Map(_)) => match map_of_strings(node) {
            Ok(m) => m,
            Err(e) => {
                problems.push(path, e);
                return Vec::new();
            }
        },
        Ok(other) => {
            problems.push(
                path,
                format!("expected a list, a string or a map, found {}", other.kind()),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(pairs.len());
    for (header, claim) in pairs {
        match HeaderName::from_bytes(header.as_bytes()) {
            Ok(h) if !claim.is_empty() => out.push((h, claim)),
            _ => problems.push(join(path, &header), "not a valid header name or claim"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml;

    #[test]
    fn route_headers_merge_over_global_and_disable_clears() {
        let global = secure_defaults(true);
        let mut p = Problems::new();
        let node = yaml::parse("X-Frame-Options: DENY\nX-Extra: 1\n").unwrap();
        let merged = merge_route(&global, &node, "r", &mut p);
        let get = |n: &str| {
            merged
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        assert_eq!(get("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(get("x-extra").as_deref(), Some("1"));
        assert!(get("strict-transport-security").is_some());
        let off = yaml::parse("disable: true\n").unwrap();
        assert!(merge_route(&global, &off, "r", &mut p).is_empty());
        assert!(p.is_empty());
    }

    #[test]
    fn hsts_only_with_tls() {
        assert!(
            !secure_defaults(false)
                .iter()
                .any(|(n, _)| n == "strict-transport-security")
        );
    }

    #[test]
    fn claims_headers_forms() {
        let mut p = Problems::new();
        let list = claims_headers(Err("email, groups"), "j", &mut p);
        assert_eq!(list[0].0, "x-pomerium-claim-email");
        assert_eq!(list[1].1, "groups");
        let node = yaml::parse("X-Email: email\n").unwrap();
        let map = claims_headers(Ok(&node), "j", &mut p);
        assert_eq!((map[0].0.as_str(), map[0].1.as_str()), ("x-email", "email"));
        assert!(p.is_empty());
    }

    #[test]
    fn host_cannot_be_set() {
        let mut p = Problems::new();
        request_set(&[("Host".into(), "x".into())], "r", &mut p);
        assert_eq!(p.errors().len(), 1);
    }
}
