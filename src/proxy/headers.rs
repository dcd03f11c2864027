//! Header hygiene on the forwarding path.
//!
//! Order matters and is fixed here: first everything the client may not decide is
//! removed — hop-by-hop headers, every name the client lists in `Connection`, every
//! spelling of our identity headers (`X-Pomerium-*`, any case, `_` for `-`), and
//! forwarded headers from untrusted peers, method overrides (`X-HTTP-Method-Override`
//! and its kin: the policy decided on the real method) — and only then are our own headers added.
//! A client can therefore never smuggle an identity or make us drop one of ours.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::routes::RequestView;

/// Hop-by-hop headers (RFC 9110 §7.6.1 plus the usual extras).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The position of `name` (lower case) in [`HOP_BY_HOP`].
fn hop_by_hop_index(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}

/// Which [`HOP_BY_HOP`] names are present, as a bit mask (bit `i` for entry `i`): one
/// pass over the names instead of one map lookup per hop-by-hop name.
fn hop_by_hop_present(headers: &HeaderMap) -> u16 {
    let mut mask = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name.as_str()) {
            mask |= 1 << i;
        }
    }
    mask
}

/// Headers that describe the client as seen by an earlier proxy.
const FORWARDED: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "forwarded",
    "x-real-ip",
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that ask the upstream to act as if the request had another method. The
/// policy decided on the real method, so none of them may reach the upstream.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The header name prefix reserved for identity we assert.
const IDENTITY_PREFIX: &str = "x-pomerium-";

/// Removes hop-by-hop headers and every header named in `Connection`.
/// With `keep_upgrade`, `Connection: upgrade` and `Upgrade` survive for a WebSocket.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let present = hop_by_hop_present(headers);
    if present == 0 {
        // No `Connection` either, so nothing is listed: the common request.
        return;
    }
    // Listed names that are hop-by-hop anyway go below; of the others only those
    // present need removing, so the usual `keep-alive` or `close` costs nothing.
    let mut listed: Vec<HeaderName> = Vec::new();
    if present & 1 != 0 {
        for value in headers.get_all(header::CONNECTION) {
            let Ok(value) = value.to_str() else { continue };
            for name in value.split(',').map(str::trim) {
                if name.is_empty()
                    || name.eq_ignore_ascii_case("keep-alive")
                    || name.eq_ignore_ascii_case("close")
                    || HOP_BY_HOP
                        .iter()
                        .any(|h| name.eq_ignore_ascii_case(h.as_str()))
                    || !headers.contains_key(name)
                {
                    continue;
                }
                if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                    listed.push(name);
                }
            }
        }
    }
    for name in listed {
        headers.remove(name);
    }
    let upgrade = if keep_upgrade {
        headers.remove(header::UPGRADE)
    } else {
        None
    };
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if let Some(u) = upgrade {
        headers.insert(header::UPGRADE, u);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Canonical form of a header name for spoofing checks: lower-case, `_` as `-`.
fn folded(name: &HeaderName) -> std::borrow::Cow<'_, str> {
    let s = name.as_str();
    if s.contains('_') {
        std::borrow::Cow::Owned(s.replace('_', "-"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Removes every client-sent copy of an identity header, in any spelling: all
/// `X-Pomerium-*` names and the extra names given (e.g. configured claim headers).
pub(crate) fn strip_identity(headers: &mut HeaderMap, extra: &[HeaderName]) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let f = folded(name);
            f.starts_with(IDENTITY_PREFIX) || extra.iter().any(|e| e.as_str() == f)
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// What the request-side steps may find, from one pass over the header names: a
/// `false` means that step has nothing to remove. Names with `_` count for every step.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Found {
    /// A hop-by-hop name (`Connection` among them).
    pub hop_by_hop: bool,
    /// An identity name (`X-Pomerium-*` or an extra name).
    pub identity: bool,
    /// A forwarded name (`X-Forwarded-*`, `Forwarded`, `X-Real-Ip`).
    pub forwarded: bool,
    /// `Cookie`.
    pub cookie: bool,
    /// A method override (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`).
    pub method_override: bool,
}

/// Surveys `headers` for [`strip_hop_by_hop`], [`strip_identity`] (with `extra`),
/// [`strip_cookies`] and [`set_forwarded_found`].
pub(crate) fn survey(headers: &HeaderMap, extra: &[HeaderName]) -> Found {
    let mut found = Found::default();
    for name in headers.keys() {
        let s = name.as_str();
        if s.contains('_') {
            found.identity = true;
            found.forwarded = true;
            found.method_override = true;
            continue;
        }
        found.hop_by_hop |= hop_by_hop_index(s).is_some();
        found.identity |= s.starts_with(IDENTITY_PREFIX) || extra.iter().any(|e| e == name);
        found.forwarded |= FORWARDED.contains(&s);
        found.cookie |= name == header::COOKIE;
        found.method_override |= METHOD_OVERRIDES.contains(&s);
    }
    found
}

/// Removes every method override, in any spelling (`_` for `-` included).
pub(crate) fn strip_method_overrides(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| METHOD_OVERRIDES.contains(&folded(name).as_ref()))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Sets `X-Forwarded-For/-Proto/-Host`. Client-sent forwarded headers (any spelling)
/// are kept only when the peer is a trusted proxy; then our peer is appended.
#[cfg(test)]
pub(crate) fn set_forwarded(headers: &mut HeaderMap, view: &RequestView) {
    set_forwarded_found(headers, view, true);
}

/// [`set_forwarded`], told by [`survey`] whether any forwarded header came in.
pub(crate) fn set_forwarded_found(headers: &mut HeaderMap, view: &RequestView, present: bool) {
    let prior_for = if view.peer_trusted && present {
        let joined: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!joined.is_empty()).then(|| joined.join(", "))
    } else {
        None
    };
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|_| present)
        .filter(|name| {
            let f = folded(name);
            let is_forwarded = FORWARDED.contains(&f.as_ref());
            // Underscore spellings are never legitimate: drop them even from trusted peers.
            is_forwarded && (!view.peer_trusted || name.as_str().contains('_'))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
    let xff = match prior_for {
        Some(prior) => HeaderValue::from_str(&format!("{prior}, {}", view.peer.ip())).ok(),
        None => address_value(view.peer.ip()),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !view.peer_trusted || !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(view.scheme()));
    }
    if (!view.peer_trusted || !headers.contains_key(&X_FORWARDED_HOST))
        && let Some(v) = authority_value(headers, view)
    {
        headers.insert(X_FORWARDED_HOST, v);
    }
}

/// `view.authority()` as a header value: the client's own `Host` value when it is
/// already canonical (no copy), else a new one.
pub(crate) fn authority_value(headers: &HeaderMap, view: &RequestView) -> Option<HeaderValue> {
    let authority = view.authority();
    match headers.get(header::HOST) {
        Some(host) if host.as_bytes() == authority.as_bytes() => Some(host.clone()),
        _ => HeaderValue::from_str(&authority).ok(),
    }
}

/// An IP address as a header value. Connections come from few addresses, so the last
/// one is kept per thread and shared.
fn address_value(ip: std::net::IpAddr) -> Option<HeaderValue> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(std::net::IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.try_borrow_mut().ok()?;
        if let Some((cached, value)) = last.as_ref()
            && *cached == ip
        {
            return Some(value.clone());
        }
        let value = HeaderValue::from_str(&ip.to_string()).ok()?;
        *last = Some((ip, value.clone()));
        Some(value)
    })
}

/// Removes `Cookie` pairs whose name is one of ours, keeping the others.
pub(crate) fn strip_cookies(headers: &mut HeaderMap, is_ours: impl Fn(&str) -> bool) {
    let values: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    let kept: Vec<&str> = values
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && !is_ours(pair.split('=').next().unwrap_or("").trim()))
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(v) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, v);
    }
}

/// Response side: drops hop-by-hop headers (except an accepted upgrade) and any
/// `Set-Cookie` for one of our cookie names.
pub(crate) fn clean_response(
    headers: &mut HeaderMap,
    upgraded: bool,
    is_ours: impl Fn(&str) -> bool,
) {
    strip_hop_by_hop(headers, upgraded);
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.iter().any(|c| {
        c.to_str()
            .ok()
            .is_some_and(|s| is_ours(s.split('=').next().unwrap_or("").trim()))
    }) {
        headers.remove(header::SET_COOKIE);
        for c in cookies {
            let name = c
                .to_str()
                .ok()
                .map(|s| s.split('=').next().unwrap_or("").trim().to_owned());
            if !name.is_some_and(|n| is_ours(&n)) {
                headers.append(header::SET_COOKIE, c);
            }
        }
    }
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
