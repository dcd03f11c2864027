//! The Okta Management API client: `GET /api/v1/users/{id}/groups`.
//!
//! * Requests carry `Authorization: SSWS <token>` (a header marked sensitive) and
//!   `Accept: application/json`, go to the origin of the issuer (so
//!   `https://acme.okta.com/oauth2/default` reaches `https://acme.okta.com/api/v1/…`),
//!   and never follow redirects.
//! * Pages are followed through `Link: <…>; rel="next"` (RFC 8288), only on the API's own
//!   origin: the token is never sent anywhere else. One lookup costs one request per
//!   page.
//! * Every request is bounded by the request timeout and every body by a size cap.
//! * HTTP 429 waits until `X-Rate-Limit-Reset` (each wait capped, jittered, at most
//!   [`MAX_RETRIES`] retries), or a short exponential backoff when the header is missing
//!   or garbage — never a hot loop. `X-Rate-Limit-Remaining` near zero delays the next
//!   request until the reset (bounded).
//! * 401/403 are a configuration error, logged once; the token is in no log or error.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;
use url::Url;

use super::{DirectoryError, DirectoryStats, Group, GroupSource, GroupsFuture, link};
use crate::clock;
use crate::config::secret::Secret;

/// `limit` asked for on each page (Okta's maximum for this endpoint is larger; 200 is
/// what its rate-limit guidance suggests).
pub(super) const PAGE_LIMIT: u32 = 200;
/// The largest page body read (bigger → [`DirectoryError::BadResponse`]).
pub(super) const MAX_PAGE_BYTES: usize = 4 << 20;
/// The largest error body read (for `errorSummary`).
const MAX_ERROR_BYTES: usize = 64 << 10;
/// Pages followed for one user before giving up (200 groups each).
pub(super) const MAX_PAGES: usize = 500;
/// Retries of one request after HTTP 429.
pub(super) const MAX_RETRIES: u32 = 3;
/// The longest single wait for a rate-limit reset.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(60);
/// Waits after a 429 without a usable `X-Rate-Limit-Reset`: 1 s, 2 s, 4 s.
const DEFAULT_BACKOFF_SECS: [u64; 3] = [1, 2, 4];
/// The shortest wait after a 429, even when the reset time has passed already.
const MIN_WAIT_SECS: u64 = 1;
/// Random extra delay added to every rate-limit wait, at most this many milliseconds.
const JITTER_MS: u16 = 500;
/// At or below this many remaining calls, requests are spread until the reset.
const LOW_REMAINING: u64 = 2;
/// Longest `errorSummary` kept.
const MAX_SUMMARY_CHARS: usize = 300;

/// An Okta directory reached with an API token (`idp_service_account`).
pub(crate) struct OktaDirectory {
    /// `scheme://host[:port]/`: the origin of the issuer.
    base: Url,
    /// `SSWS <token>`, marked sensitive; `None` when the token cannot be a header value.
    authorization: Option<HeaderValue>,
    http: reqwest::Client,
    request_timeout: Duration,
    api_calls: AtomicU64,
    rate_limited: AtomicU64,
    errors: AtomicU64,
    malformed: AtomicU64,
    /// Unix second before which no request is sent (rate-limit pacing), 0 for none.
    pace_until: AtomicU64,
    /// Whether the current run of 401/403 answers has been logged.
    unauthorized_logged: AtomicBool,
}

impl fmt::Debug for OktaDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OktaDirectory")
            .field("base", &self.base.as_str())
            .field("token", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What one HTTP attempt produced.
enum Attempt {
    Page {
        groups: Vec<Group>,
        next: Option<Url>,
    },
    RateLimited {
        reset: Option<u64>,
    },
}

impl OktaDirectory {
    /// A client for the Okta org of `issuer`; the API base is the issuer's origin
    /// (`scheme://host[:port]`). Each HTTP request (including reading its body) is
    /// bounded by `request_timeout`.
    pub(crate) fn new(issuer: &Url, api_token: &Secret, request_timeout: Duration) -> Self {
        let mut base = issuer.clone();
        base.set_path("/");
        base.set_query(None);
        base.set_fragment(None);
        // Cannot fail for URLs with a host; userinfo has no business in the API base.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let authorization = HeaderValue::from_str(&format!("SSWS {}", api_token.expose()))
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(request_timeout)
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            base,
            authorization,
            http,
            request_timeout,
            api_calls: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            pace_until: AtomicU64::new(0),
            unauthorized_logged: AtomicBool::new(false),
        }
    }

    /// The API base: the issuer's origin with path `/`.
    #[cfg(test)]
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> DirectoryStats {
        DirectoryStats {
            api_calls: self.api_calls.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            malformed_entries: self.malformed.load(Ordering::Relaxed),
        }
    }

    /// All groups of `user_id`, every page; counts and logs failures.
    async fn lookup(&self, user_id: &str) -> Result<Vec<Group>, DirectoryError> {
        let result = self.all_pages(user_id).await;
        match &result {
            Ok(_) => self.unauthorized_logged.store(false, Ordering::Relaxed),
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                match e {
                    DirectoryError::Unauthorized { summary } => {
                        if !self.unauthorized_logged.swap(true, Ordering::Relaxed) {
                            tracing::error!(
                                api = %self.base,
                                summary = %summary,
                                "Okta refused the API token from idp_service_account: \
                                 group lookups fail until the configuration is fixed"
                            );
                        }
                    }
                    e => tracing::warn!(api = %self.base, error = %e, "Okta group lookup failed"),
                }
            }
        }
        result
    }

    async fn all_pages(&self, user_id: &str) -> Result<Vec<Group>, DirectoryError> {
        let mut url = self.first_page(user_id)?;
        let mut seen = HashSet::new();
        let mut groups = Vec::new();
        for _ in 0..MAX_PAGES {
            let (page, next) = self.page(&url).await?;
            groups.extend(page);
            let Some(next) = next else {
                return Ok(groups);
            };
            if next.origin() != self.base.origin()
                || !next.username().is_empty()
                || next.password().is_some()
            {
                return Err(DirectoryError::BadResponse(format!(
                    "next page link points to another origin ({}); not followed",
                    next.origin().ascii_serialization()
                )));
            }
            seen.insert(url);
            if seen.contains(&next) {
                return Err(DirectoryError::BadResponse(
                    "next page link loops back to a page already read".into(),
                ));
            }
            url = next;
        }
        Err(DirectoryError::BadResponse(format!(
            "more than {MAX_PAGES} pages of groups"
        )))
    }

    /// `{base}/api/v1/users/{user_id}/groups?limit=200`, the id percent-encoded.
    fn first_page(&self, user_id: &str) -> Result<Url, DirectoryError> {
        if matches!(user_id, "" | "." | "..") {
            return Err(DirectoryError::InvalidUserId);
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| DirectoryError::BadResponse("the issuer URL has no origin".into()))?
            .clear()
            .extend(["api", "v1", "users", user_id, "groups"]);
        url.query_pairs_mut()
            .append_pair("limit", &PAGE_LIMIT.to_string());
        Ok(url)
    }

    /// One page, retrying bounded times after HTTP 429.
    async fn page(&self, url: &Url) -> Result<(Vec<Group>, Option<Url>), DirectoryError> {
        let mut retries = 0;
        loop {
            self.pace().await;
            self.api_calls.fetch_add(1, Ordering::Relaxed);
            let attempt = tokio::time::timeout(self.request_timeout, self.attempt(url))
                .await
                .map_err(|_| {
                    DirectoryError::Unavailable(format!(
                        "no complete answer within {:?}",
                        self.request_timeout
                    ))
                })??;
            match attempt {
                Attempt::Page { groups, next } => return Ok((groups, next)),
                Attempt::RateLimited { reset } => {
                    self.rate_limited.fetch_add(1, Ordering::Relaxed);
                    if retries >= MAX_RETRIES {
                        return Err(DirectoryError::RateLimited);
                    }
                    let wait = rate_limit_wait(reset, retries, clock::now()) + jitter();
                    tracing::debug!(?wait, retry = retries + 1, "Okta API rate limit: waiting");
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
            }
        }
    }

    /// Sends one request and reads its answer.
    async fn attempt(&self, url: &Url) -> Result<Attempt, DirectoryError> {
        let authorization =
            self.authorization
                .clone()
                .ok_or_else(|| DirectoryError::Unauthorized {
                    summary: "the API token contains characters not allowed in an HTTP header"
                        .into(),
                })?;
        let mut response = self
            .http
            .get(url.clone())
            .header(http::header::AUTHORIZATION, authorization)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| DirectoryError::Unavailable(transport_error(&e)))?;
        let status = response.status();
        self.note_rate_headers(response.headers());
        if status == StatusCode::TOO_MANY_REQUESTS {
            let reset = header_u64(response.headers(), "x-rate-limit-reset");
            return Ok(Attempt::RateLimited { reset });
        }
        if !status.is_success() {
            let body = read_capped(&mut response, MAX_ERROR_BYTES)
                .await
                .unwrap_or_default();
            let summary = error_summary(status, &body);
            return Err(match status.as_u16() {
                401 | 403 => DirectoryError::Unauthorized { summary },
                500..=599 => {
                    DirectoryError::Unavailable(format!("HTTP {}: {summary}", status.as_u16()))
                }
                _ => DirectoryError::BadResponse(format!("HTTP {}: {summary}", status.as_u16())),
            });
        }
        let next = link::next_link(response.headers(), url).map_err(DirectoryError::BadResponse)?;
        let body = read_capped(&mut response, MAX_PAGE_BYTES).await?;
        let groups = self.parse_groups(&body)?;
        Ok(Attempt::Page { groups, next })
    }

    /// Groups from a page body; malformed entries are skipped and counted.
    fn parse_groups(&self, body: &[u8]) -> Result<Vec<Group>, DirectoryError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| DirectoryError::BadResponse(format!("groups are not JSON: {e}")))?;
        let Value::Array(entries) = value else {
            return Err(DirectoryError::BadResponse(
                "groups are not a JSON array".into(),
            ));
        };
        let mut groups = Vec::with_capacity(entries.len());
        let mut skipped = 0u64;
        for entry in &entries {
            match entry.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => groups.push(Group {
                    id: id.to_owned(),
                    name: entry
                        .pointer("/profile/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                }),
                _ => skipped += 1,
            }
        }
        if skipped > 0 {
            self.malformed.fetch_add(skipped, Ordering::Relaxed);
            tracing::warn!(
                skipped,
                "Okta returned group entries without an id; skipped them"
            );
        }
        Ok(groups)
    }

    /// Waits while pacing asks for it (bounded by [`MAX_WAIT`]).
    async fn pace(&self) {
        let until = self.pace_until.load(Ordering::Relaxed);
        let now = clock::now();
        if until > now {
            let wait = Duration::from_secs(until - now).min(MAX_WAIT) + jitter();
            tracing::debug!(?wait, "Okta API rate limit nearly used up: pacing");
            tokio::time::sleep(wait).await;
        }
    }

    /// Spreads the next requests until the reset when few calls remain.
    fn note_rate_headers(&self, headers: &HeaderMap) {
        let (Some(remaining), Some(reset)) = (
            header_u64(headers, "x-rate-limit-remaining"),
            header_u64(headers, "x-rate-limit-reset"),
        ) else {
            return;
        };
        let now = clock::now();
        if remaining > LOW_REMAINING || reset <= now {
            return;
        }
        let until = now + (reset - now) / (remaining + 1);
        let until = until.min(now + MAX_WAIT.as_secs());
        self.pace_until.fetch_max(until, Ordering::Relaxed);
    }
}

impl GroupSource for OktaDirectory {
    fn user_groups<'a>(&'a self, user_id: &'a str) -> GroupsFuture<'a> {
        Box::pin(self.lookup(user_id))
    }
}

/// How long to wait after the `retry`-th (0-based) 429 answer.
fn rate_limit_wait(reset: Option<u64>, retry: u32, now: u64) -> Duration {
    let secs = match reset {
        Some(reset) => reset.saturating_sub(now).max(MIN_WAIT_SECS),
        None => {
            let i = usize::try_from(retry).unwrap_or(usize::MAX);
            DEFAULT_BACKOFF_SECS
                .get(i)
                .or(DEFAULT_BACKOFF_SECS.last())
                .copied()
                .unwrap_or(MIN_WAIT_SECS)
        }
    };
    Duration::from_secs(secs).min(MAX_WAIT)
}

/// A random delay of up to [`JITTER_MS`] milliseconds.
fn jitter() -> Duration {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 2];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return Duration::ZERO;
    }
    Duration::from_millis(u64::from(u16::from_le_bytes(bytes) % (JITTER_MS + 1)))
}

/// A header as an unsigned integer; `None` when missing or garbage.
fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Reads at most `cap` bytes of body; more is an error.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, DirectoryError> {
    let too_big = || DirectoryError::BadResponse(format!("response body larger than {cap} bytes"));
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX))
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| DirectoryError::Unavailable(transport_error(&e)))?
    {
        if body.len() + chunk.len() > cap {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Okta's `errorSummary`, sanitized and shortened; else the status.
fn error_summary(status: StatusCode, body: &[u8]) -> String {
    let summary = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("errorSummary")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let clean: String = summary
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_SUMMARY_CHARS)
        .collect();
    let clean = clean.trim();
    if clean.is_empty() {
        format!("HTTP {status}")
    } else {
        clean.to_owned()
    }
}

/// A transport error without the request's headers (reqwest never prints them).
fn transport_error(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
#[path = "okta_tests.rs"]
pub(super) mod tests;
