//! The demo Okta Management API: `GET /api/v1/users/{id}/groups`, on the demo
//! provider's origin (at Okta both live on the org's origin, and the proxy derives the
//! API base from the issuer's).
//!
//! Like Okta: `Authorization: SSWS <token>` is required (otherwise 401 with Okta's
//! error body `E0000011`), unknown users get 404 (`E0000007`), and results are paged
//! with `Link: <…>; rel="next"` and an `after` cursor (the last group id of the page).
//! Pages hold at most 2 groups whatever `limit` asks, so the 30-group user needs 15
//! requests — the proxy's pagination at work, visible in the logs.

use http::header::HeaderValue;
use http::request::Parts;
use http::{Method, StatusCode};
use serde_json::json;

use super::users::{self, DemoUser};
use super::web::{self, Reply, param, same_secret};
use crate::clock;
use crate::config::secret::Secret;

/// Groups per page.
pub const PAGE_SIZE: usize = 2;

/// Answers one Management API request.
pub fn handle(parts: &Parts, token: Option<&Secret>, all: &[DemoUser], base: &str) -> Reply {
    if parts.method != Method::GET {
        return okta_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "E0000022",
            "The endpoint does not support the provided HTTP method",
        );
    }
    let presented = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("SSWS "));
    let authorized = match (presented, token) {
        (Some(p), Some(t)) => same_secret(p.trim(), t.expose()),
        _ => false,
    };
    if !authorized {
        return okta_error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
        );
    }
    let id = parts
        .uri
        .path()
        .strip_prefix("/api/v1/users/")
        .and_then(|rest| rest.strip_suffix("/groups"))
        .filter(|id| !id.is_empty() && !id.contains('/'));
    let Some(id) = id else {
        return okta_error(
            StatusCode::NOT_FOUND,
            "E0000022",
            "The endpoint does not exist",
        );
    };
    let id = percent_decode(id);
    let Some(user) = users::find(all, &id) else {
        let summary = format!("Not found: Resource not found: {id} (User)");
        return okta_error(StatusCode::NOT_FOUND, "E0000007", &summary);
    };
    let query = web::parse_params(parts.uri.query().unwrap_or("").as_bytes());
    let limit = param(&query, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(200)
        .clamp(1, 10_000);
    let groups = user.directory_groups();
    let start = match param(&query, "after") {
        None => 0,
        Some(after) => match groups.iter().position(|g| g.id == after) {
            Some(i) => i + 1,
            None => {
                return okta_error(
                    StatusCode::BAD_REQUEST,
                    "E0000001",
                    "Api validation failed: after",
                );
            }
        },
    };
    let end = (start + limit.min(PAGE_SIZE)).min(groups.len());
    let page: Vec<serde_json::Value> = groups[start..end]
        .iter()
        .map(|g| {
            json!({
                "id": g.id,
                "created": "2024-01-01T00:00:00.000Z",
                "lastUpdated": "2024-01-01T00:00:00.000Z",
                "lastMembershipUpdated": "2024-01-01T00:00:00.000Z",
                "objectClass": ["okta:user_group"],
                "type": "OKTA_GROUP",
                "profile": {"name": g.name, "description": "demo group"},
            })
        })
        .collect();
    let url = format!("{base}/api/v1/users/{}/groups", user.sub);
    let mut reply = web::json(StatusCode::OK, &serde_json::Value::Array(page));
    let h = reply.headers_mut();
    let self_link = match param(&query, "after") {
        Some(after) => format!("<{url}?after={after}&limit={limit}>; rel=\"self\""),
        None => format!("<{url}?limit={limit}>; rel=\"self\""),
    };
    let next_link = groups[..end]
        .last()
        .filter(|_| end < groups.len())
        .map(|last| format!("<{url}?after={}&limit={limit}>; rel=\"next\"", last.id));
    for link in std::iter::once(self_link).chain(next_link) {
        if let Ok(v) = HeaderValue::from_str(&link) {
            h.append(http::header::LINK, v);
        }
    }
    h.insert("x-rate-limit-limit", HeaderValue::from_static("600"));
    h.insert("x-rate-limit-remaining", HeaderValue::from_static("599"));
    if let Ok(v) = HeaderValue::from_str(&(clock::now() + 60).to_string()) {
        h.insert("x-rate-limit-reset", v);
    }
    reply
}

/// Okta's error body.
fn okta_error(status: StatusCode, code: &str, summary: &str) -> Reply {
    web::json(
        status,
        &json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oaedemo",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, auth: Option<&str>) -> Reply {
        let mut req = http::Request::get(path);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        let token = Secret::new("tok");
        handle(&parts, Some(&token), &users::all(), "http://127.0.0.1:9101")
    }

    async fn body(r: Reply) -> serde_json::Value {
        use http_body_util::BodyExt as _;
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn needs_the_token() {
        let r = get("/api/v1/users/00udemobob/groups", None);
        assert_eq!(r.status(), 401);
        assert_eq!(body(r).await["errorCode"], "E0000011");
        assert_eq!(
            get("/api/v1/users/00udemobob/groups", Some("SSWS nope")).status(),
            401
        );
        assert_eq!(
            get("/api/v1/users/00udemobob/groups", Some("Bearer tok")).status(),
            401
        );
        assert_eq!(
            get("/api/v1/users/nobody/groups", Some("SSWS tok")).status(),
            404
        );
    }

    #[tokio::test]
    async fn pages_follow_next_links_to_the_end() {
        let mut path = "/api/v1/users/00udemocarol/groups?limit=200".to_owned();
        let mut names = Vec::new();
        let mut pages = 0;
        loop {
            let r = get(&path, Some("SSWS tok"));
            assert_eq!(r.status(), 200);
            let next = r
                .headers()
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|l| l.ends_with("rel=\"next\""))
                .map(|l| {
                    l.trim_start_matches("<http://127.0.0.1:9101")
                        .split('>')
                        .next()
                        .unwrap()
                        .to_owned()
                });
            for g in body(r).await.as_array().unwrap() {
                names.push(g["profile"]["name"].as_str().unwrap().to_owned());
            }
            pages += 1;
            match next {
                Some(n) => path = n,
                None => break,
            }
        }
        assert_eq!(pages, 15);
        assert_eq!(names, users::find(&users::all(), "carol").unwrap().groups);
    }
}
