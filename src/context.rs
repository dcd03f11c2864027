//! Per-request state, on the ground floor: [`RequestContext`] is made once when a
//! request arrives and travels through every stage — its id, whether the client is a
//! browser, when it started, which route it matched — and it writes the access-log
//! line when the response is ready.

use http::{HeaderMap, Method, Request, StatusCode};
use tokio::time::Instant;

use crate::respond;
use crate::telemetry::{self, AccessRecord, RequestId};

/// What every stage may need to know about the request in flight.
#[derive(Debug)]
pub struct RequestContext<'a> {
    /// The request id (logs, error pages, `X-Request-Id` upstream).
    pub id: RequestId,
    /// Whether the client prefers HTML (a browser) over JSON.
    pub html: bool,
    /// When the request arrived.
    pub started: Instant,
    /// The matched route's name, once stage 2 found one.
    pub route: Option<&'a str>,
    /// The request line as received, kept only when the access log is on.
    logged: Option<(Method, String, Option<String>)>,
}

impl RequestContext<'_> {
    /// The context of `req`, at its arrival.
    pub fn new<B>(req: &Request<B>) -> Self {
        let started = Instant::now();
        // The access log needs these after the request is consumed; copy them only
        // when it is on.
        let logged =
            tracing::enabled!(target: "portcullis::access", tracing::Level::INFO).then(|| {
                (
                    req.method().clone(),
                    req.uri().path().to_owned(),
                    req.uri().query().map(str::to_owned),
                )
            });
        Self {
            id: telemetry::request_id(),
            html: respond::wants_html(req.headers()),
            started,
            route: None,
            logged,
        }
    }

    /// A context for a request known only by its headers (tests, tools).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            id: telemetry::request_id(),
            html: respond::wants_html(headers),
            started: Instant::now(),
            route: None,
            logged: None,
        }
    }

    /// Writes the request's access-log line (when that log is on).
    pub fn log_access(&self, status: StatusCode) {
        if let Some((method, path, query)) = &self.logged {
            telemetry::access(&AccessRecord {
                request_id: &self.id,
                method,
                path,
                query: query.as_deref(),
                route: self.route,
                status,
                duration: self.started.elapsed(),
            });
        }
    }
}
