//! How the mock Okta org answers `GET /api/v1/users/{id}/groups`: scripted failures
//! first, then the method, the `SSWS` token, the path and the user, then one page of
//! groups with Okta's `Link` headers. The `after` cursor is opaque to clients; this
//! org uses the position of the page's first group.
//!
//! Invariant: nothing here panics on a request; a header value that cannot be built is
//! left out.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use serde_json::json;

use super::{Failure, LinkStyle, OktaOrg, RateHeaders};
use crate::clock;
use crate::demo::web::{self, Reply, same_secret};

impl OktaOrg {
    /// Answers one Management API request (its method, target and headers); links
    /// point at `base`, the org's origin.
    pub(in crate::demo) async fn answer(
        &self,
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        base: &str,
    ) -> Reply {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let text = |name: HeaderName| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let authorization = text(header::AUTHORIZATION);
        let path = uri.path();
        let query = uri.query().unwrap_or_default();
        let (failure, delay) = {
            let mut inner = self.inner();
            inner.last_authorization = authorization.clone();
            inner.last_accept = text(header::ACCEPT);
            inner.log.push(match query {
                "" => path.to_owned(),
                q => format!("{path}?{q}"),
            });
            (inner.failures.pop_front(), inner.delay)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let user = path
            .strip_prefix("/api/v1/users/")
            .and_then(|rest| rest.strip_suffix("/groups"))
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(percent_decode);
        match failure {
            Some(Failure::Status(status)) => {
                return status_error(status, user.as_deref().unwrap_or_default());
            }
            Some(Failure::TooManyRequests { reset, remaining }) => {
                let mut reply = status_error(429, "");
                let h = reply.headers_mut();
                put(h, "x-rate-limit-reset", reset.as_deref());
                put(h, "x-rate-limit-remaining", remaining.as_deref());
                put(h, "x-rate-limit-limit", Some("600"));
                return reply;
            }
            Some(Failure::Delay(d)) => tokio::time::sleep(d).await,
            None => {}
        }
        if method != Method::GET {
            return okta_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "E0000022",
                "The endpoint does not support the provided HTTP method",
            );
        }
        let presented = authorization
            .as_deref()
            .and_then(|v| v.strip_prefix("SSWS "));
        let authorized = match (presented, &self.token) {
            (Some(p), Some(t)) => same_secret(p, t),
            _ => false,
        };
        if !authorized {
            return status_error(401, "");
        }
        let Some(user) = user else {
            return okta_error(
                StatusCode::NOT_FOUND,
                "E0000022",
                "The endpoint does not exist",
            );
        };
        let params: HashMap<String, String> =
            web::parse_params(query.as_bytes()).into_iter().collect();
        self.page(&user, &params, base)
    }

    /// One page of `user`'s groups.
    fn page(&self, user: &str, params: &HashMap<String, String>, base: &str) -> Reply {
        let inner = self.inner();
        if let Some(body) = inner.raw_bodies.get(user) {
            return web::reply(StatusCode::OK, "application/json", body.clone());
        }
        let Some(groups) = inner.users.get(user) else {
            return status_error(404, user);
        };
        let limit = params
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(10_000)
            .clamp(1, 10_000);
        let start = match params.get("after").map(|a| a.parse::<usize>()) {
            None => 0,
            Some(Ok(after)) => after.min(groups.len()),
            Some(Err(_)) => {
                return okta_error(
                    StatusCode::BAD_REQUEST,
                    "E0000001",
                    "Api validation failed: after",
                );
            }
        };
        let end = (start + limit.min(inner.page_size)).min(groups.len());
        let page: Vec<serde_json::Value> = groups[start..end]
            .iter()
            .map(|(id, name)| {
                json!({
                    "id": id,
                    "created": "2024-01-01T00:00:00.000Z",
                    "lastUpdated": "2024-01-01T00:00:00.000Z",
                    "lastMembershipUpdated": "2024-01-01T00:00:00.000Z",
                    "objectClass": ["okta:user_group"],
                    "type": "OKTA_GROUP",
                    "profile": {"name": name, "description": null},
                    "_links": {
                        "logo": [],
                        "users": {"href": format!("{base}/api/v1/groups/{id}/users")},
                        "apps": {"href": format!("{base}/api/v1/groups/{id}/apps")},
                    },
                })
            })
            .collect();
        let url = format!("{base}/api/v1/users/{}/groups", percent_encode(user));
        let self_link = match params.get("after") {
            Some(after) => format!("<{url}?after={after}&limit={limit}>; rel=\"self\""),
            None => format!("<{url}?limit={limit}>; rel=\"self\""),
        };
        let next_link = (end < groups.len()).then(|| {
            let target = inner
                .next_link_override
                .clone()
                .unwrap_or_else(|| format!("{url}?after={end}&limit={limit}"));
            format!("<{target}>; rel=\"next\"")
        });
        let mut reply = web::json(StatusCode::OK, &serde_json::Value::Array(page));
        let h = reply.headers_mut();
        let links = match (inner.link_style, next_link) {
            (LinkStyle::Combined, Some(next)) => vec![format!("{self_link}, {next}")],
            (_, next) => std::iter::once(self_link).chain(next).collect(),
        };
        for link in links {
            if let Ok(v) = HeaderValue::from_str(&link) {
                h.append(header::LINK, v);
            }
        }
        let (remaining, reset) = match &inner.rate_headers {
            RateHeaders::Absent => return reply,
            RateHeaders::Fixed(remaining, reset) => (remaining.clone(), reset.clone()),
            RateHeaders::Relaxed => ("599".to_owned(), (clock::now() + 60).to_string()),
        };
        put(h, "x-rate-limit-limit", Some("600"));
        put(h, "x-rate-limit-remaining", Some(&remaining));
        put(h, "x-rate-limit-reset", Some(&reset));
        reply
    }
}

/// Sets `name` to `value` when there is one and it can be a header value.
fn put(headers: &mut HeaderMap, name: &'static str, value: Option<&str>) {
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(name, v);
    }
}

/// Okta's error body for `status` (`user` names the missing user of a 404).
fn status_error(status: u16, user: &str) -> Reply {
    let (code, summary) = match status {
        401 => ("E0000011", "Invalid token provided".to_owned()),
        403 => (
            "E0000006",
            "You do not have permission to perform the requested action".to_owned(),
        ),
        404 => (
            "E0000007",
            format!("Not found: Resource not found: {user} (User)"),
        ),
        429 => (
            "E0000047",
            "API call exceeded rate limit due to too many requests.".to_owned(),
        ),
        500 => ("E0000009", "Internal Server Error".to_owned()),
        503 => ("E0000010", "Service unavailable".to_owned()),
        _ => ("E0000001", "Api validation failed".to_owned()),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    okta_error(status, code, &summary)
}

/// Okta's error body.
fn okta_error(status: StatusCode, code: &str, summary: &str) -> Reply {
    web::json(
        status,
        &json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oaemock",
            "errorCauses": [],
        }),
    )
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
