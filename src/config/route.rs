//! One route of `routes:` / `policy:`, read and validated into a [`RouteSpec`].
//!
//! Everything a route says is checked here, once, at load: URLs parsed, regexes compiled
//! and anchored, header names validated, conflicting fields rejected. The route table
//! (`routes/`) and the forwarder (`proxy/`) only ever see the typed result.

use std::path::Path;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use regex::Regex;
use url::Url;

use super::access::{self, Access};
use super::headers::{self, HeaderList};
use super::node::Node;
use super::problem::Problems;
use super::reader::Fields;
pub use super::route_paths::convert_substitution;
use super::route_paths::{read_match, read_rewrite, read_to};
use crate::tls::upstream::UpstreamTls;

/// Where a route listens: the host (and optional port) of its `from` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FromUrl {
    /// `http` or `https`, as written.
    pub scheme: String,
    /// Lower-cased host without a trailing dot; `*.example.com` for a wildcard.
    pub host: String,
    /// An explicit port: then only requests to that port match. None matches any port.
    pub port: Option<u16>,
}

/// One upstream endpoint of `to`, with its load-balancing weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// `http`, `https` or `h2c` URL (path removed; see [`RouteSpec::rewrite`]).
    pub url: Url,
    /// Relative share of requests (1 when no weights are given).
    pub weight: u32,
    /// `host[:port]`, ready for the request URI.
    pub authority: http::uri::Authority,
    /// The same as a `Host` header value.
    pub host_header: http::HeaderValue,
    /// `https` for TLS upstreams, else `http` (also for `h2c`).
    pub scheme: http::uri::Scheme,
}

/// How a route matches the request path.
#[derive(Clone, Debug)]
pub enum PathMatch {
    /// Plain string prefix (not segment-aware, as in Pomerium: `/api` matches `/apiv2`).
    Prefix(String),
    /// The exact path.
    Exact(String),
    /// A regex matched against the whole path (anchored at load).
    Regex(Regex),
}

/// How the upstream path is derived from the request path.
#[derive(Clone, Debug)]
pub enum PathRewrite {
    /// Sent as received (normalised).
    None,
    /// The matched prefix (or exact path) is replaced by this string.
    Prefix(String),
    /// Every match of the pattern is replaced; `\1` in the substitution is a capture group.
    Regex {
        /// The compiled pattern.
        pattern: Regex,
        /// The substitution in regex-crate syntax (`${1}`).
        substitution: String,
    },
}

/// Which `Host` the upstream sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostHeader {
    /// The host of the chosen `to` URL (Pomerium's default).
    Upstream,
    /// The client's host, unchanged (`preserve_host_header`).
    Preserve,
    /// A fixed value (`host_rewrite`).
    Rewrite(HeaderValue),
}

/// A validated route.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    /// Position in file order across `policy` then `routes`.
    pub id: usize,
    /// Where it was defined (`routes[2]`), or its `name` when given; used in logs.
    pub name: String,
    /// The `from` URL.
    pub from: FromUrl,
    /// The `to` endpoints, at least one.
    pub to: Vec<Upstream>,
    /// Path matching.
    pub path_match: PathMatch,
    /// Path rewriting.
    pub rewrite: PathRewrite,
    /// Host header handling.
    pub host_header: HostHeader,
    /// Headers set on the upstream request (after removals); values are templates.
    pub set_request_headers: Vec<(HeaderName, crate::config::template::Template)>,
    /// Headers removed from the upstream request.
    pub remove_request_headers: Vec<HeaderName>,
    /// Headers set on the response: the global set merged with the route's.
    pub set_response_headers: HeaderList,
    /// Time allowed for the upstream's response head. None: no limit.
    pub timeout: Option<Duration>,
    /// Longest silence allowed on a streaming response body. None: no limit.
    pub idle_timeout: Option<Duration>,
    /// Whether WebSocket upgrades are forwarded.
    pub allow_websockets: bool,
    /// Upstream TLS settings.
    pub tls: UpstreamTls,
    /// Route override of the global `pass_identity_headers`.
    pub pass_identity_headers: Option<bool>,
    /// Who may use the route.
    pub access: Access,
}

/// Global values a route inherits.
pub struct RouteDefaults<'a> {
    /// `default_upstream_timeout`.
    pub upstream_timeout: Duration,
    /// The global `set_response_headers`.
    pub response_headers: &'a HeaderList,
    /// The directory policy files are resolved against.
    pub base_dir: &'a Path,
}

/// Reads the route at `path`. Returns None when it has any problem (all are recorded).
pub fn read(
    node: &Node,
    path: &str,
    id: usize,
    defaults: &RouteDefaults<'_>,
    problems: &mut Problems,
) -> Option<RouteSpec> {
    let before = problems.errors().len();
    let mut f = Fields::new(node, path, None, problems);
    let name = f.string("name");
    f.string("description");
    let from = f.string("from").and_then(|s| {
        let parsed = parse_from(&s);
        f.ok_or_report("from", parsed)
    });
    if !f.has("from") {
        f.problems.push(path, "missing `from`");
    }
    let (to, to_path) = read_to(&mut f);
    let path_match = read_match(&mut f);
    let rewrite = read_rewrite(&mut f, &path_match, to_path);
    let host_header = read_host(&mut f);
    let remove_request_headers = read_header_names(&mut f, "remove_request_headers");
    let set_request_headers = f.string_map("set_request_headers").map(|pairs| {
        let p = f.path_of("set_request_headers");
        headers::request_set(&pairs, &p, f.problems)
    });
    let set_response_headers = f.node("set_response_headers").map(|n| {
        let p = f.path_of("set_response_headers");
        headers::merge_route(defaults.response_headers, n, &p, f.problems)
    });
    let allow_websockets = f.bool_or("allow_websockets", false);
    let timeout = f.duration("timeout");
    let idle_timeout = f.duration("idle_timeout");
    let tls = read_tls(&mut f);
    let pass_identity_headers = f.bool("pass_identity_headers");
    let access = access::read(&mut f, defaults.base_dir);
    f.finish();

    if problems.errors().len() > before {
        return None;
    }
    let from = from?;
    // Websocket routes default to no timeout (a long-lived stream), as in Pomerium.
    let timeout = match timeout {
        Some(Duration::ZERO) => None,
        Some(t) => Some(t),
        None if allow_websockets => None,
        None => Some(defaults.upstream_timeout).filter(|t| !t.is_zero()),
    };
    let idle_timeout = match idle_timeout {
        Some(Duration::ZERO) => None,
        other => other,
    };
    Some(RouteSpec {
        id,
        name: name.unwrap_or_else(|| path.to_owned()),
        from,
        to,
        path_match: path_match?,
        rewrite: rewrite?,
        host_header: host_header?,
        set_request_headers: set_request_headers.unwrap_or_default(),
        remove_request_headers,
        set_response_headers: set_response_headers
            .unwrap_or_else(|| defaults.response_headers.clone()),
        timeout,
        idle_timeout,
        allow_websockets,
        tls: tls?,
        pass_identity_headers,
        access: access?,
    })
}

/// Parses a `from` URL: scheme http(s), a host, no path, query or credentials.
pub fn parse_from(text: &str) -> Result<FromUrl, String> {
    // The URL parser rejects `*` in hosts; swap it for a placeholder label first.
    let wildcard = text.contains("://*.");
    let parseable = text.replacen("://*.", "://wildcard-placeholder.", 1);
    let url = Url::parse(&parseable).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?} is not supported; use https (or http)",
            url.scheme()
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(
            "`from` must not contain a path or query; use `prefix`, `path` or `regex`".into(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("`from` must not contain credentials".into());
    }
    let mut host = url
        .host_str()
        .ok_or("`from` needs a host")?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if wildcard {
        host = host.replacen("wildcard-placeholder.", "*.", 1);
    }
    Ok(FromUrl {
        scheme: url.scheme().to_owned(),
        host,
        port: url.port(),
    })
}

fn read_host(f: &mut Fields<'_>) -> Option<HostHeader> {
    let preserve = f.bool_or("preserve_host_header", false);
    let rewrite = f.string("host_rewrite");
    match (preserve, rewrite) {
        (true, Some(_)) => f.ok_or_report(
            "host_rewrite",
            Err("cannot be combined with `preserve_host_header`".into()),
        ),
        (true, None) => Some(HostHeader::Preserve),
        (false, Some(h)) => match HeaderValue::from_str(&h) {
            Ok(v) if !h.is_empty() => Some(HostHeader::Rewrite(v)),
            _ => f.ok_or_report("host_rewrite", Err(format!("{h:?} is not a valid host"))),
        },
        (false, None) => Some(HostHeader::Upstream),
    }
}

fn read_header_names(f: &mut Fields<'_>, key: &'static str) -> Vec<HeaderName> {
    let names = f.strings(key).unwrap_or_default();
    let mut out = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        match HeaderName::from_bytes(n.as_bytes()) {
            Ok(h) => out.push(h),
            Err(_) => f.problems.push(
                format!("{}[{i}]", f.path_of(key)),
                format!("{n:?} is not a header name"),
            ),
        }
    }
    out
}

fn read_tls(f: &mut Fields<'_>) -> Option<UpstreamTls> {
    let skip_verify = f.bool_or("tls_skip_verify", false);
    let server_name = f.string("tls_server_name");
    let custom_ca_pem = f.bytes_inline_or_file("tls_custom_ca", "tls_custom_ca_file");
    let client_cert_pem = f.bytes_inline_or_file("tls_client_cert", "tls_client_cert_file");
    let client_key_pem = f.bytes_inline_or_file("tls_client_key", "tls_client_key_file");
    let tls = UpstreamTls {
        skip_verify,
        server_name,
        custom_ca_pem,
        client_cert_pem,
        client_key_pem,
    };
    match crate::tls::upstream::build_client_config(&tls) {
        Ok(_) => Some(tls),
        Err(e) => f.ok_or_report("tls_custom_ca", Err(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_urls() {
        let f = parse_from("https://App.Example.com.").unwrap();
        assert_eq!((f.host.as_str(), f.port), ("app.example.com", None));
        let f = parse_from("https://a.example.com:8443").unwrap();
        assert_eq!(f.port, Some(8443));
        assert_eq!(
            parse_from("https://*.example.com").unwrap().host,
            "*.example.com"
        );
        assert!(parse_from("https://a.example.com/path").is_err());
        assert!(parse_from("ftp://a.example.com").is_err());
        assert!(parse_from("https://u:p@a.example.com").is_err());
    }

    #[test]
    fn substitutions() {
        assert_eq!(convert_substitution(r"/v2/\1/x\12"), "/v2/${1}/x${12}");
        assert_eq!(convert_substitution("$5"), "$$5");
    }
}
