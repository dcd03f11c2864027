//! The mock Okta Management API — a test-kit and demo companion, never on the proxy's
//! request path: `GET /api/v1/users/{id}/groups`, as the demo's Okta org and as the
//! directory tests' org.
//!
//! Like Okta: `Authorization: SSWS <token>` is required (otherwise 401 with Okta's JSON
//! error body `E0000011`), unknown users get 404 (`E0000007`), and results come in pages
//! of [`OktaOrg::set_page_size`] groups (or fewer when `limit` asks) with `Link` headers:
//! `rel="self"` and, while more remain, `rel="next"` with an `after` cursor. Tests
//! script failures ([`OktaOrg::fail_next`], [`OktaOrg::fail_next_with`]: statuses, 429
//! with or without — or with garbage — rate-limit headers, slow answers) and read a
//! request counter, the request log and the last `Authorization`/`Accept` seen.
//!
//! An [`OktaOrg`] answers in-process (the demo provider serves it on its own origin, as
//! Okta serves the API on the org's); a [`MockOkta`] is one listening on 127.0.0.1.
//!
//! ```ignore
//! let okta = MockOkta::start("00-token").await;
//! okta.set_groups("00u1", &[("00gA", "Admins")]);
//! okta.fail_next(1, 429);
//! ```

mod api;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use tokio::net::TcpListener;

use super::DemoError;
use super::web::{Handler, Reply, Running};

/// A scripted answer for one request.
#[derive(Clone, Debug)]
pub enum Failure {
    /// This status with an Okta-style JSON error body (429 without rate-limit headers).
    Status(u16),
    /// 429 with these raw `X-Rate-Limit-Reset` / `X-Rate-Limit-Remaining` values
    /// (`None`: header absent; any string, so garbage too).
    TooManyRequests {
        /// `X-Rate-Limit-Reset`.
        reset: Option<String>,
        /// `X-Rate-Limit-Remaining`.
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

/// The rate-limit headers of successful answers.
#[derive(Clone, Debug)]
enum RateHeaders {
    /// None.
    Absent,
    /// These raw `X-Rate-Limit-Remaining` and `X-Rate-Limit-Reset` values.
    Fixed(String, String),
    /// 599 remaining, reset a minute from now: an org far from its limit.
    Relaxed,
}

/// What the org knows and what it was asked.
struct Inner {
    users: HashMap<String, Vec<(String, String)>>,
    raw_bodies: HashMap<String, String>,
    page_size: usize,
    failures: VecDeque<Failure>,
    delay: Duration,
    link_style: LinkStyle,
    next_link_override: Option<String>,
    rate_headers: RateHeaders,
    last_authorization: Option<String>,
    last_accept: Option<String>,
    log: Vec<String>,
}

/// A mock Okta org's Management API, answering in-process.
pub struct OktaOrg {
    /// The API token (`SSWS …`); without one every request is refused.
    token: Option<String>,
    requests: AtomicUsize,
    inner: Mutex<Inner>,
}

impl OktaOrg {
    /// An org that accepts `SSWS {token}` (nothing when `None`), with no users, pages of
    /// 200 groups and no rate-limit headers.
    pub fn new(token: Option<&str>) -> Self {
        OktaOrg {
            token: token.map(str::to_owned),
            requests: AtomicUsize::new(0),
            inner: Mutex::new(Inner {
                users: HashMap::new(),
                raw_bodies: HashMap::new(),
                page_size: 200,
                failures: VecDeque::new(),
                delay: Duration::ZERO,
                link_style: LinkStyle::Separate,
                next_link_override: None,
                rate_headers: RateHeaders::Absent,
                last_authorization: None,
                last_accept: None,
                log: Vec::new(),
            }),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
        self.inner().rate_headers = match headers {
            Some((remaining, reset)) => RateHeaders::Fixed(remaining.to_owned(), reset.to_owned()),
            None => RateHeaders::Absent,
        };
    }

    /// Successful answers say 599 requests remain until a minute from now.
    pub fn set_relaxed_rate_headers(&self) {
        self.inner().rate_headers = RateHeaders::Relaxed;
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
        self.requests.load(Ordering::SeqCst)
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

/// A mock Okta org listening on 127.0.0.1; stops when dropped.
pub struct MockOkta {
    /// Where it listens.
    pub addr: SocketAddr,
    org: Arc<Listening>,
    _running: Running,
}

/// An org and the origin its links point at.
struct Listening {
    org: OktaOrg,
    base: String,
}

impl Handler for Listening {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Reply {
        let (parts, _body) = req.into_parts();
        let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
        self.org.answer(method, uri, headers, &self.base).await
    }
}

impl MockOkta {
    /// Starts a mock org on `127.0.0.1:0` that accepts `SSWS {token}`.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound (a test-kit convenience; see
    /// [`MockOkta::listen`]).
    pub async fn start(token: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await;
        let listener = listener.unwrap_or_else(|e| panic!("mock Okta cannot bind: {e}"));
        Self::listen(listener, token).unwrap_or_else(|e| panic!("mock Okta cannot start: {e}"))
    }

    /// Serves a mock org that accepts `SSWS {token}` on `listener`.
    pub fn listen(listener: TcpListener, token: &str) -> Result<Self, DemoError> {
        let addr = listener.local_addr().map_err(|source| DemoError::Bind {
            what: "mock Okta API",
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
        let org = Arc::new(Listening {
            org: OktaOrg::new(Some(token)),
            base: format!("http://{addr}"),
        });
        let running = Running::spawn(listener, addr, org.clone());
        Ok(MockOkta {
            addr,
            org,
            _running: running,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.org.base.clone()
    }

    /// A custom authorization server issuer on this org:
    /// `http://127.0.0.1:PORT/oauth2/default`.
    pub fn issuer(&self) -> String {
        format!("{}/oauth2/default", self.org.base)
    }
}

impl Deref for MockOkta {
    type Target = OktaOrg;

    fn deref(&self) -> &OktaOrg {
        &self.org.org
    }
}
