//! The demo app: an upstream that shows what the proxy forwarded — the request line, every
//! header (escaped), and the identity in `X-Pomerium-Jwt-Assertion`, verified against the
//! proxy's JWKS (`verify`). HTML for browsers ("Demo app" on every page); JSON when the
//! client asks for `application/json`. A demo companion, never on the proxy's request
//! path.

mod verify;

use std::sync::Arc;

use http::{HeaderMap, Request, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use super::plan::RouteInfo;
use super::web::{self, Handler, Reply};
use crate::clock;
use crate::respond::{escape, wants_html};
pub use verify::VerifyError;

/// The label on every page of the app.
pub const LABEL: &str = "Demo app — shows the request the proxy forwarded";

const ASSERTION: &str = "x-pomerium-jwt-assertion";

/// The echo app.
pub struct EchoApp {
    keys: verify::Keys,
    routes: Vec<RouteInfo>,
}

impl EchoApp {
    /// An app that trusts the keys the proxy at `proxy_base` (`http://127.0.0.1:8080`)
    /// publishes, and links to `routes`.
    ///
    /// The keys are asked for with the `Host` of the first route that has one: the
    /// proxy publishes them only on its route hosts.
    pub fn new(proxy_base: &str, routes: Vec<RouteInfo>) -> Result<Self, reqwest::Error> {
        let jwks_url = format!("{proxy_base}/.well-known/pomerium/jwks.json");
        let host = routes
            .iter()
            .filter_map(|r| r.url.as_deref())
            .find_map(|u| url::Url::parse(u).ok())
            .and_then(|u| {
                let host = u.host_str()?.to_owned();
                Some(match u.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                })
            });
        Ok(EchoApp {
            keys: verify::Keys::new(jwks_url, host)?,
            routes,
        })
    }
}

/// What the app found out about the caller.
enum Identity {
    /// No assertion at all.
    Anonymous,
    /// A verified assertion.
    Verified(Map<String, Value>),
    /// An assertion that failed verification, with what it claims.
    Refused(VerifyError, Option<Map<String, Value>>),
}

impl Handler for EchoApp {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Reply {
        let (parts, _body) = req.into_parts();
        if parts.uri.path() == "/favicon.ico" {
            return web::reply(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "");
        }
        let host = browser_host(&parts.headers);
        let identity = match parts.headers.get(ASSERTION).map(|v| v.to_str()) {
            None => Identity::Anonymous,
            Some(Err(_)) => Identity::Refused(VerifyError::Malformed("not ASCII"), None),
            Some(Ok(token)) => match self.keys.verify(token, &host).await {
                Ok(claims) => Identity::Verified(claims),
                Err(e) => Identity::Refused(e, verify::unverified_claims(token)),
            },
        };
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let accept_json = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
        if accept_json && !wants_html(&parts.headers) {
            return web::json(
                StatusCode::OK,
                &json_body(parts.method.as_str(), &target, &headers, &identity),
            );
        }
        let page = self.page(parts.method.as_str(), &target, &host, &headers, &identity);
        web::html(StatusCode::OK, page)
    }
}

/// The host the browser used, without port: what `aud` and `iss` must be. The proxy sets
/// `X-Forwarded-Host` (and removes a client's own unless it trusts the client).
fn browser_host(headers: &HeaderMap) -> String {
    let authority = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().map(|h| format!("[{h}]")),
        None => authority.split(':').next().map(str::to_owned),
    };
    host.unwrap_or_default().to_ascii_lowercase()
}

fn json_body(method: &str, target: &str, headers: &[(String, String)], id: &Identity) -> Value {
    let (verified, error, claims) = match id {
        Identity::Anonymous => (false, None, None),
        Identity::Verified(c) => (true, None, Some(c.clone())),
        Identity::Refused(e, c) => (false, Some(e.to_string()), c.clone()),
    };
    json!({
        "app": "portcullis demo app",
        "request": {"method": method, "target": target, "headers": headers},
        "identity": {
            "present": !matches!(id, Identity::Anonymous),
            "verified": verified,
            "error": error,
            "claims": claims,
        },
    })
}

impl EchoApp {
    fn page(
        &self,
        method: &str,
        target: &str,
        host: &str,
        headers: &[(String, String)],
        identity: &Identity,
    ) -> String {
        let who = match identity {
            Identity::Anonymous => {
                "<p>No identity: the proxy sent no <code>X-Pomerium-Jwt-Assertion</code>. \
This route is public (nobody needs to sign in), or it does not pass identity headers.</p>"
                    .to_owned()
            }
            Identity::Verified(claims) => format!(
                "<p class=\"ok\" id=\"verified\">Signature verified ✓</p><p>Signed in as \
<strong>{}</strong> ({}). The proxy signed this assertion for <code>{}</code>; the app checked \
it against the proxy's published keys.</p>{}",
                escape(claim_text(claims, "name").as_deref().unwrap_or("—")),
                escape(claim_text(claims, "email").as_deref().unwrap_or("—")),
                escape(host),
                claims_table(claims)
            ),
            Identity::Refused(why, claims) => format!(
                "<p class=\"bad\" id=\"not-verified\">Not verified: {}</p>{}",
                escape(&why.to_string()),
                claims
                    .as_ref()
                    .map(|c| format!(
                        "<p>What it claims (not to be trusted):</p>{}",
                        claims_table(c)
                    ))
                    .unwrap_or_default()
            ),
        };
        let signed_in = !matches!(identity, Identity::Anonymous);
        let session_links = if signed_in {
            "<p><a href=\"/.pomerium/\">Your session</a> · \
<a href=\"/.pomerium/sign_out\">Sign out</a></p>"
        } else {
            ""
        };
        let routes: String = self
            .routes
            .iter()
            .filter_map(|r| {
                let url = r.url.as_deref()?;
                Some(format!(
                    "<li><a href=\"{u}/\">{u}</a> — {a}</li>",
                    u = escape(url),
                    a = escape(&r.access)
                ))
            })
            .collect();
        let rows: String = headers
            .iter()
            .map(|(n, v)| {
                format!(
                    "<tr><th><code>{}</code></th><td><code>{}</code></td></tr>",
                    escape(n),
                    escape(v)
                )
            })
            .collect();
        let body = format!(
            "<h2>Identity</h2>{who}{session_links}<h2>Routes</h2><ul>{routes}</ul>\
<h2>Request</h2><p><code>{method} {target}</code></p><table>{rows}</table>",
            method = escape(method),
            target = escape(target),
        );
        web::page("Demo app", LABEL, &body, true)
    }
}

/// `1795390386 (in 300 s)` or `… (12 s ago)`.
fn relative_time(t: u64, now: u64) -> String {
    if t >= now {
        format!("{t} (in {} s)", t - now)
    } else {
        format!("{t} ({} s ago)", now - t)
    }
}

fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn claims_table(claims: &Map<String, Value>) -> String {
    let rows: String = claims
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::Number(n) if matches!(name.as_str(), "iat" | "exp" | "nbf") => {
                    relative_time(n.as_u64().unwrap_or(0), clock::now())
                }
                other => other.to_string(),
            };
            format!(
                "<tr><th>{}</th><td><code>{}</code></td></tr>",
                escape(name),
                escape(&text)
            )
        })
        .collect();
    format!("<table id=\"claims\">{rows}</table>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_host_drops_the_port() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-host", "App.localhost:8080".parse().unwrap());
        h.insert(header::HOST, "127.0.0.1:9102".parse().unwrap());
        assert_eq!(browser_host(&h), "app.localhost");
        h.remove("x-forwarded-host");
        assert_eq!(browser_host(&h), "127.0.0.1");
        h.insert(header::HOST, "[::1]:9102".parse().unwrap());
        assert_eq!(browser_host(&h), "[::1]");
    }

    #[test]
    fn pages_escape_what_the_request_carried() {
        let app = EchoApp::new("http://127.0.0.1:1", Vec::new()).unwrap();
        let headers = vec![("x-evil".to_owned(), "<script>alert(1)</script>".to_owned())];
        let mut claims = Map::new();
        claims.insert("name".into(), json!("<b>Mallory</b>"));
        let page = app.page("GET", "/<x>", "h", &headers, &Identity::Verified(claims));
        assert!(!page.contains("<script>") && !page.contains("<b>Mallory"));
        assert!(page.contains("&lt;script&gt;") && page.contains("/&lt;x&gt;"));
        assert!(page.contains("Demo app"));
    }
}
