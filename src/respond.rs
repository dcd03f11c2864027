//! The one place that turns errors into responses, and the pages of ours (ground
//! floor).
//!
//! Every stage returns a typed [`ProxyError`]; [`error_response`] maps it to its status
//! and a safe body — an HTML page for browsers, JSON for API clients (chosen by
//! `Accept`) — with the request id on every error. Details go to the log, never to the
//! client. [`html_page`] is the one page layout; [`escape`] guards every value in it.

use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

use crate::body::ResponseBody;
use crate::config::headers::HeaderList;
use crate::error::{ProxyError, SignInFailure};

/// Whether the client prefers HTML (a browser) over JSON (an API client).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let position = |needle: &str| {
        accept.split(',').position(|item| {
            let mut parts = item.split(';');
            let kind = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            kind.eq_ignore_ascii_case(needle) && !refused
        })
    };
    match (position("text/html"), position("application/json")) {
        (Some(h), Some(j)) => h < j,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The response for `err`. `security_headers` are the global `set_response_headers`.
pub(crate) fn error_response(
    err: &ProxyError,
    request_id: &str,
    html: bool,
    security_headers: &HeaderList,
) -> Response<ResponseBody> {
    let status = err.status();
    let (title, message) = err.public_message();
    let detail = match err {
        // The provider's own words, escaped, help the user more than ours.
        ProxyError::SignIn {
            failure: SignInFailure::Refused { error, description },
            ..
        } => Some(format!("{error}: {}", description.as_deref().unwrap_or(""))),
        // Who the user is signed in as — never the policy itself.
        ProxyError::Forbidden(Some(who)) => Some(format!("Signed in as {who}")),
        _ => None,
    };
    let (content_type, body) = if html {
        (
            "text/html; charset=utf-8",
            page(
                status,
                title,
                message,
                request_id,
                detail.as_deref(),
                next_step(err),
            ),
        )
    } else {
        let json = serde_json::json!({
            "error": title,
            "message": message,
            "detail": detail,
            "status": status.as_u16(),
            "request_id": request_id,
        });
        ("application/json", json.to_string())
    };
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    own_headers(h, security_headers);
    private_page_headers(h, content_type);
    if let Ok(id) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", id);
    }
    if matches!(err, ProxyError::SignInNotConfigured) {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The security headers every response the proxy makes itself carries (pages,
/// redirects, JSON, health): the global `set_response_headers` (by default
/// `X-Frame-Options`, `X-XSS-Protection` and, with TLS, HSTS), then — whatever they
/// say — `X-Content-Type-Options: nosniff` and a frame restriction (`frame-ancestors
/// 'self'`, plus `X-Frame-Options: SAMEORIGIN` when none is configured), so no other
/// site can frame the sign-out or "refresh my groups" forms.
pub(crate) fn own_headers(h: &mut HeaderMap, security_headers: &HeaderList) {
    for (name, value) in security_headers {
        h.insert(name.clone(), value.clone());
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        h.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'self'"),
        );
    }
}

/// Headers of a page of ours that may show identity: its type, never cached, never
/// sniffed, no referrer.
pub(crate) fn private_page_headers(h: &mut HeaderMap, content_type: &'static str) {
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// A plain-text response (health checks, redirects).
pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Escapes text for HTML element and attribute content.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;\
background:#f4f5f7;color:#1d2330}main{max-width:34rem;margin:12vh auto;background:#fff;\
border-radius:8px;padding:2rem 2.25rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.35rem;\
margin:0 0 .75rem}p{margin:.5rem 0}.meta{color:#5b6474;font-size:.85rem;margin-top:1.5rem}\
code{font-family:ui-monospace,Menlo,Consolas,monospace}dt{font-weight:600;margin-top:.5rem}\
dd{margin:0}button{font:inherit;padding:.45rem 1rem;border-radius:6px;border:1px solid #c3c8d2;\
background:#fff;cursor:pointer}button:hover{background:#eef0f4}";

/// The one useful next step after an error, as HTML.
fn next_step(err: &ProxyError) -> &'static str {
    match err {
        ProxyError::SignIn { .. } | ProxyError::Unauthenticated => {
            "<p><a href=\"/\">Sign in again</a></p>"
        }
        ProxyError::Forbidden(_) => {
            "<form method=\"get\" action=\"/.pomerium/sign_out\"><button type=\"submit\">Switch user</button></form>"
        }
        ProxyError::UpstreamUnavailable(_)
        | ProxyError::UpstreamTimeout
        | ProxyError::UpstreamBusy
        | ProxyError::GroupsUnverified => "<p><a href=\"\">Try again</a></p>",
        _ => "",
    }
}

/// An error page: no external resources, every value escaped.
pub(crate) fn page(
    status: StatusCode,
    title: &str,
    message: &str,
    request_id: &str,
    detail: Option<&str>,
    next: &str,
) -> String {
    let detail = detail
        .map(|d| format!("<p><code>{}</code></p>", escape(d)))
        .unwrap_or_default();
    let body = format!("<p>{}</p>{detail}{next}", escape(message));
    let meta = format!(
        "Error {} · request id <code>{}</code>",
        status.as_u16(),
        escape(request_id)
    );
    html_page(title, &body, Some(&meta))
}

/// The shared page layout. `body_html` and `meta_html` must already be escaped.
pub(crate) fn html_page(title: &str, body_html: &str, meta_html: Option<&str>) -> String {
    let meta = meta_html
        .map(|m| format!("<p class=\"meta\">{m}</p>"))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head><body><main>\
<h1>{title}</h1>{body_html}{meta}</main></body></html>",
        title = escape(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn browsers_get_html_api_clients_json() {
        assert!(wants_html(&accept(
            "text/html,application/xhtml+xml,*/*;q=0.8"
        )));
        assert!(!wants_html(&accept("application/json")));
        assert!(!wants_html(&accept("application/json, text/html")));
        assert!(!wants_html(&accept("text/html;q=0")));
        assert!(!wants_html(&HeaderMap::new()));
    }

    #[test]
    fn pages_escape_and_carry_the_request_id() {
        let p = page(
            StatusCode::NOT_FOUND,
            "<t>",
            "a&b",
            "id\"1",
            Some("<x>"),
            "",
        );
        assert!(p.contains("&lt;x&gt;"));
        assert!(p.contains("&lt;t&gt;") && p.contains("a&amp;b") && p.contains("id&quot;1"));
        let r = error_response(
            &ProxyError::UpstreamUnavailable("secret detail".into()),
            "abc",
            false,
            &Vec::new(),
        );
        assert_eq!(r.headers()["x-request-id"], "abc");
    }
}
