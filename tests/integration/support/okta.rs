//! A mock Okta Management API: `GET /api/v1/users/{id}/groups` on 127.0.0.1.
//!
//! * `Authorization: SSWS <token>` is checked (wrong or missing → 401 with Okta's JSON
//!   error body, `E0000011`/"Invalid token provided");
//! * users and their groups are set at run time ([`MockOkta::set_groups`]), unknown users
//!   get 404 (`E0000007`);
//! * pages of [`MockOkta::set_page_size`] groups (or fewer when `limit` asks), with Okta's
//!   `Link` headers: `rel="self"` and, while more remain, `rel="next"` with `after`;
//! * scripted failures ([`MockOkta::fail_next`], [`MockOkta::fail_next_with`]): statuses,
//!   429 with or without (or with garbage) rate-limit headers, slow answers;
//! * a request counter, the request log and the last `Authorization`/`Accept` seen.
//!
//! Shared by the integration tests and by `src/directory`'s unit tests (through
//! `#[path]`), so it uses no item of the portcullis crate.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;

/// A scripted answer for one request.
#[derive(Clone, Debug)]
pub enum Failure {
    /// This status with an Okta-style JSON error body (429 without rate-limit headers).
    Status(u16),
    /// 429 with these raw `X-Rate-Limit-Reset` / `X-Rate-Limit-Remaining` values
    /// (`None`: header absent; any string, so garbage too).
    TooManyRequests {
        reset: Option<String>,
        remaining: Option<String>,
    },
    /// Waits, then answers normally.
    Delay(Duration),
}

/// How `Link` headers are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkStyle {
    /// One `Link` header per link, like Okta.
    Separate,
    /// Both links in one comma-separated `Link` header.
    Combined,
}

#[derive(Debug)]
struct Inner {
    users: HashMap<String, Vec<(String, String)>>,
    raw_bodies: HashMap<String, String>,
    page_size: usize,
    failures: VecDeque<Failure>,
    delay: Duration,
    link_style: LinkStyle,
    next_link_override: Option<String>,
    rate_headers: Option<(String, String)>,
    last_authorization: Option<String>,
    last_accept: Option<String>,
    log: Vec<String>,
}

struct State {
    token: String,
    base: String,
    requests: AtomicUsize,
    inner: Mutex<Inner>,
}

/// A running mock Okta org.
pub struct MockOkta {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl MockOkta {
    /// Starts a mock org that accepts `SSWS {token}`.
    pub async fn start(token: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            token: token.to_owned(),
            base: format!("http://{addr}"),
            requests: AtomicUsize::new(0),
            inner: Mutex::new(Inner {
                users: HashMap::new(),
                raw_bodies: HashMap::new(),
                page_size: 200,
                failures: VecDeque::new(),
                delay: Duration::ZERO,
                link_style: LinkStyle::Separate,
                next_link_override: None,
                rate_headers: None,
                last_authorization: None,
                last_accept: None,
                log: Vec::new(),
            }),
        });
        let s = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, s.clone()));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, state }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.state.base.clone()
    }

    /// A custom authorization server issuer on this org:
    /// `http://127.0.0.1:PORT/oauth2/default`.
    pub fn issuer(&self) -> String {
        format!("{}/oauth2/default", self.state.base)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.inner.lock().unwrap()
    }

    /// Sets a user's groups as `(id, name)` pairs (creating the user).
    pub fn set_groups(&self, user: &str, groups: &[(&str, &str)]) {
        let groups = groups
            .iter()
            .map(|(id, name)| ((*id).to_owned(), (*name).to_owned()))
            .collect();
        self.inner().users.insert(user.to_owned(), groups);
    }

    /// Removes a user (their lookups then get 404).
    pub fn remove_user(&self, user: &str) {
        self.inner().users.remove(user);
    }

    /// Answers every groups request of `user` with this body (status 200, one page).
    pub fn set_raw_body(&self, user: &str, body: impl Into<String>) {
        self.inner().raw_bodies.insert(user.to_owned(), body.into());
    }

    /// Groups per page (the client's `limit` may make pages smaller).
    pub fn set_page_size(&self, n: usize) {
        self.inner().page_size = n.max(1);
    }

    /// How `Link` headers are written.
    pub fn set_link_style(&self, style: LinkStyle) {
        self.inner().link_style = style;
    }

    /// Replaces the target of every `rel="next"` link (e.g. with another origin).
    pub fn set_next_link(&self, target: Option<&str>) {
        self.inner().next_link_override = target.map(str::to_owned);
    }

    /// Adds `X-Rate-Limit-Remaining`/`X-Rate-Limit-Reset` to successful answers.
    pub fn set_rate_headers(&self, headers: Option<(&str, &str)>) {
        self.inner().rate_headers = headers.map(|(a, b)| (a.to_owned(), b.to_owned()));
    }

    /// Delays every answer.
    pub fn set_delay(&self, delay: Duration) {
        self.inner().delay = delay;
    }

    /// The next `n` requests get `status` (a JSON error body; 429 without headers).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.fail_next_with(n, Failure::Status(status));
    }

    /// The next `n` requests get `failure`.
    pub fn fail_next_with(&self, n: usize, failure: Failure) {
        let mut inner = self.inner();
        for _ in 0..n {
            inner.failures.push_back(failure.clone());
        }
    }

    /// Drops scripted failures not used yet.
    pub fn clear_failures(&self) {
        self.inner().failures.clear();
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Path and query of every request, in order.
    pub fn request_log(&self) -> Vec<String> {
        self.inner().log.clone()
    }

    /// The last `Authorization` header seen.
    pub fn last_authorization(&self) -> Option<String> {
        self.inner().last_authorization.clone()
    }

    /// The last `Accept` header seen.
    pub fn last_accept(&self) -> Option<String> {
        self.inner().last_accept.clone()
    }
}

type Reply = Response<Full<Bytes>>;

fn json_reply(status: u16, body: String) -> Reply {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// Okta's error body for `status`.
fn okta_error(status: u16, user: &str) -> Reply {
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
    json_reply(
        status,
        json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae-mock",
            "errorCauses": [],
        })
        .to_string(),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Reply, Infallible> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let (authorization, accept) = (header("authorization"), header("accept"));
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let (failure, delay) = {
        let mut inner = state.inner.lock().unwrap();
        inner.last_authorization = authorization.clone();
        inner.last_accept = accept;
        inner.log.push(if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{query}")
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
            return Ok(okta_error(status, user.as_deref().unwrap_or_default()));
        }
        Some(Failure::TooManyRequests { reset, remaining }) => {
            let mut reply = okta_error(429, "");
            let headers = reply.headers_mut();
            if let Some(reset) = reset {
                headers.insert("x-rate-limit-reset", reset.parse().unwrap());
            }
            if let Some(remaining) = remaining {
                headers.insert("x-rate-limit-remaining", remaining.parse().unwrap());
            }
            headers.insert("x-rate-limit-limit", "600".parse().unwrap());
            return Ok(reply);
        }
        Some(Failure::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    if req.method() != http::Method::GET {
        return Ok(okta_error(405, ""));
    }
    if authorization.as_deref() != Some(format!("SSWS {}", state.token).as_str()) {
        return Ok(okta_error(401, ""));
    }
    let Some(user) = user else {
        return Ok(okta_error(404, ""));
    };
    let params: HashMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    let inner = state.inner.lock().unwrap();
    if let Some(body) = inner.raw_bodies.get(&user) {
        return Ok(json_reply(200, body.clone()));
    }
    let Some(groups) = inner.users.get(&user) else {
        return Ok(okta_error(404, &user));
    };
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10_000)
        .clamp(1, 10_000);
    let size = limit.min(inner.page_size);
    let start = params
        .get("after")
        .and_then(|a| a.parse::<usize>().ok())
        .unwrap_or(0)
        .min(groups.len());
    let end = (start + size).min(groups.len());
    let page: Vec<_> = groups[start..end]
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
                    "users": {"href": format!("{}/api/v1/groups/{id}/users", state.base)},
                    "apps": {"href": format!("{}/api/v1/groups/{id}/apps", state.base)},
                },
            })
        })
        .collect();
    let users_url = format!(
        "{}/api/v1/users/{}/groups",
        state.base,
        percent_encode(&user)
    );
    let self_link = match params.get("after") {
        Some(after) => format!("<{users_url}?after={after}&limit={limit}>; rel=\"self\""),
        None => format!("<{users_url}?limit={limit}>; rel=\"self\""),
    };
    let next_link = (end < groups.len()).then(|| {
        let target = inner
            .next_link_override
            .clone()
            .unwrap_or_else(|| format!("{users_url}?after={end}&limit={limit}"));
        format!("<{target}>; rel=\"next\"")
    });
    let mut reply = json_reply(200, serde_json::Value::Array(page).to_string());
    let headers = reply.headers_mut();
    match (inner.link_style, next_link) {
        (LinkStyle::Combined, Some(next)) => {
            headers.append("link", format!("{self_link}, {next}").parse().unwrap());
        }
        (_, next) => {
            headers.append("link", self_link.parse().unwrap());
            if let Some(next) = next {
                headers.append("link", next.parse().unwrap());
            }
        }
    }
    if let Some((remaining, reset)) = &inner.rate_headers {
        headers.insert("x-rate-limit-limit", "600".parse().unwrap());
        headers.insert("x-rate-limit-remaining", remaining.parse().unwrap());
        headers.insert("x-rate-limit-reset", reset.parse().unwrap());
    }
    Ok(reply)
}
