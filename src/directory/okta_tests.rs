// Test-only: included from its parent module under #[cfg(test)].
//! Tests of the Okta client against the shared mock Okta org.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use super::*;

use crate::demo::okta::{Failure, LinkStyle, MockOkta};

pub(crate) const TOKEN: &str = "00TESTtoken-sEcReT-value";

pub(crate) fn directory(mock: &MockOkta, token: &str, timeout: Duration) -> OktaDirectory {
    OktaDirectory::new(
        &Url::parse(&mock.issuer()).unwrap(),
        &Secret::new(token),
        timeout,
    )
}

async fn setup() -> (MockOkta, OktaDirectory) {
    let mock = MockOkta::start(TOKEN).await;
    let dir = directory(&mock, TOKEN, Duration::from_secs(10));
    (mock, dir)
}

fn pairs(groups: &[Group]) -> Vec<(&str, &str)> {
    groups
        .iter()
        .map(|g| (g.id.as_str(), g.name.as_str()))
        .collect()
}

fn many(n: usize) -> Vec<(String, String)> {
    (1..=n)
        .map(|i| (format!("00g{i}"), format!("Group {i}")))
        .collect()
}

fn set_many(mock: &MockOkta, user: &str, n: usize) {
    let groups = many(n);
    let refs: Vec<(&str, &str)> = groups
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    mock.set_groups(user, &refs);
}

/// Log lines written to a buffer, for the current thread only.
#[derive(Clone, Default)]
pub(crate) struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures every event of this thread (tests use the current-thread runtime).
pub(crate) fn capture_logs() -> (LogBuf, tracing::subscriber::DefaultGuard) {
    let buf = LogBuf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

#[test]
fn api_base_is_the_issuer_origin() {
    let token = Secret::new("t");
    let t = Duration::from_secs(1);
    for (issuer, base) in [
        (
            "https://acme.okta.com/oauth2/default",
            "https://acme.okta.com/",
        ),
        (
            "https://acme.okta.com/oauth2/aus1a2b3c4/",
            "https://acme.okta.com/",
        ),
        ("https://acme.okta.com", "https://acme.okta.com/"),
        (
            "https://acme.okta.com:443/oauth2/default",
            "https://acme.okta.com/",
        ),
        (
            "https://u:p@acme.okta.com:8443/oauth2/default?x=1#frag",
            "https://acme.okta.com:8443/",
        ),
        (
            "http://127.0.0.1:9999/oauth2/default",
            "http://127.0.0.1:9999/",
        ),
    ] {
        let dir = OktaDirectory::new(&Url::parse(issuer).unwrap(), &token, t);
        assert_eq!(dir.base().as_str(), base, "{issuer}");
    }
    let dir = OktaDirectory::new(
        &Url::parse("https://acme.okta.com/oauth2/default").unwrap(),
        &token,
        t,
    );
    assert_eq!(
        dir.first_page("00u1abc").unwrap().as_str(),
        "https://acme.okta.com/api/v1/users/00u1abc/groups?limit=200"
    );
    assert_eq!(
        dir.first_page("a/b c?#%").unwrap().as_str(),
        "https://acme.okta.com/api/v1/users/a%2Fb%20c%3F%23%25/groups?limit=200"
    );
    for bad in ["", ".", ".."] {
        assert_eq!(dir.first_page(bad), Err(DirectoryError::InvalidUserId));
    }
}

#[tokio::test]
async fn groups_by_id_and_name_with_the_right_headers() {
    let (mock, dir) = setup().await;
    mock.set_groups("00u1", &[("00gA", "Admins"), ("00gB", "Engineering")]);
    let groups = dir.user_groups("00u1").await.unwrap();
    assert_eq!(
        pairs(&groups),
        [("00gA", "Admins"), ("00gB", "Engineering")]
    );
    assert_eq!(
        &*super::super::group_keys(&groups),
        ["00gA", "00gB", "Admins", "Engineering"]
    );
    assert_eq!(mock.requests(), 1);
    assert_eq!(mock.request_log(), ["/api/v1/users/00u1/groups?limit=200"]);
    assert_eq!(mock.last_authorization().unwrap(), format!("SSWS {TOKEN}"));
    assert_eq!(mock.last_accept().as_deref(), Some("application/json"));
    assert_eq!(
        dir.stats(),
        DirectoryStats {
            api_calls: 1,
            ..DirectoryStats::default()
        }
    );
}

#[tokio::test]
async fn user_ids_are_percent_encoded() {
    let (mock, dir) = setup().await;
    mock.set_groups("a/b c", &[("00g1", "One")]);
    assert_eq!(
        pairs(&dir.user_groups("a/b c").await.unwrap()),
        [("00g1", "One")]
    );
    assert_eq!(
        mock.request_log(),
        ["/api/v1/users/a%2Fb%20c/groups?limit=200"]
    );
    assert_eq!(
        dir.user_groups("..").await,
        Err(DirectoryError::InvalidUserId)
    );
    assert_eq!(mock.requests(), 1);
}

#[tokio::test]
async fn three_pages_cost_three_requests() {
    for style in [LinkStyle::Separate, LinkStyle::Combined] {
        let (mock, dir) = setup().await;
        mock.set_link_style(style);
        mock.set_page_size(2);
        set_many(&mock, "00u1", 5);
        let groups = dir.user_groups("00u1").await.unwrap();
        assert_eq!(groups.len(), 5, "{style:?}");
        assert_eq!(groups[4].id, "00g5");
        assert_eq!(mock.requests(), 3, "{style:?}");
        assert_eq!(
            mock.request_log(),
            [
                "/api/v1/users/00u1/groups?limit=200",
                "/api/v1/users/00u1/groups?after=2&limit=200",
                "/api/v1/users/00u1/groups?after=4&limit=200",
            ]
        );
        assert_eq!(dir.stats().api_calls, 3);
    }
}

#[tokio::test]
async fn a_full_page_of_200_then_the_rest() {
    let (mock, dir) = setup().await;
    mock.set_page_size(1000);
    set_many(&mock, "00u1", 450);
    let groups = dir.user_groups("00u1").await.unwrap();
    assert_eq!(groups.len(), 450);
    // The client's limit=200 sets the page size: 200 + 200 + 50.
    assert_eq!(mock.requests(), 3);
}

#[tokio::test]
async fn cross_origin_next_links_are_not_followed() {
    let (mock, dir) = setup().await;
    let elsewhere = MockOkta::start(TOKEN).await;
    set_many(&elsewhere, "00u1", 5);
    mock.set_page_size(2);
    set_many(&mock, "00u1", 5);
    mock.set_next_link(Some(&format!(
        "{}/api/v1/users/00u1/groups?after=2&limit=200",
        elsewhere.url()
    )));
    let err = dir.user_groups("00u1").await.unwrap_err();
    assert!(
        matches!(&err, DirectoryError::BadResponse(m) if m.contains("another origin")),
        "{err:?}"
    );
    assert_eq!(elsewhere.requests(), 0, "the token went to another origin");
    assert_eq!(mock.requests(), 1);

    // `localhost` is another origin than 127.0.0.1, even on the same port.
    let port = mock.addr.port();
    mock.set_next_link(Some(&format!(
        "http://localhost:{port}/api/v1/users/00u1/groups?after=2&limit=200"
    )));
    assert!(matches!(
        dir.user_groups("00u1").await,
        Err(DirectoryError::BadResponse(_))
    ));
    assert_eq!(mock.requests(), 2);

    // A relative next link stays on the origin and is followed.
    mock.set_next_link(Some("/api/v1/users/00u1/groups?after=4&limit=200"));
    assert_eq!(dir.user_groups("00u1").await.unwrap().len(), 3);
    assert_eq!(mock.requests(), 4);
}

#[tokio::test]
async fn a_next_link_looping_back_is_an_error() {
    let (mock, dir) = setup().await;
    mock.set_page_size(2);
    set_many(&mock, "00u1", 5);
    mock.set_next_link(Some("/api/v1/users/00u1/groups?limit=200"));
    assert!(matches!(
        dir.user_groups("00u1").await,
        Err(DirectoryError::BadResponse(m)) if m.contains("loops")
    ));
    assert_eq!(mock.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limited_waits_until_the_reset_header() {
    let (mock, dir) = setup().await;
    mock.set_groups("00u1", &[("00g1", "One")]);
    let reset = clock::now() + 30;
    mock.fail_next_with(
        1,
        Failure::TooManyRequests {
            reset: Some(reset.to_string()),
            remaining: Some("0".into()),
        },
    );
    let start = Instant::now();
    assert_eq!(dir.user_groups("00u1").await.unwrap().len(), 1);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(29), "{waited:?}");
    assert!(waited <= Duration::from_secs(31), "{waited:?}");
    assert_eq!(mock.requests(), 2);
    let stats = dir.stats();
    assert_eq!(
        (stats.api_calls, stats.rate_limited, stats.errors),
        (2, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limited_without_reset_backs_off() {
    let (mock, dir) = setup().await;
    mock.set_groups("00u1", &[("00g1", "One")]);
    mock.fail_next(2, 429);
    let start = Instant::now();
    assert_eq!(dir.user_groups("00u1").await.unwrap().len(), 1);
    let waited = start.elapsed();
    // 1 s then 2 s, each plus at most 0.5 s of jitter.
    assert!(waited >= Duration::from_secs(3), "{waited:?}");
    assert!(waited <= Duration::from_secs(4), "{waited:?}");
    assert_eq!(mock.requests(), 3);
    assert_eq!(dir.stats().rate_limited, 2);
}

#[tokio::test(start_paused = true)]
async fn garbage_rate_limit_headers_never_hot_loop() {
    let (mock, dir) = setup().await;
    mock.set_groups("00u1", &[("00g1", "One")]);
    mock.fail_next_with(
        100,
        Failure::TooManyRequests {
            reset: Some("soon".into()),
            remaining: Some("-1".into()),
        },
    );
    let start = Instant::now();
    assert_eq!(
        dir.user_groups("00u1").await,
        Err(DirectoryError::RateLimited)
    );
    let waited = start.elapsed();
    // One request and three retries, after 1 s, 2 s and 4 s (plus jitter).
    assert_eq!(mock.requests(), 4);
    assert!(waited >= Duration::from_secs(7), "{waited:?}");
    assert!(waited <= Duration::from_millis(8_500), "{waited:?}");
    let stats = dir.stats();
    assert_eq!(
        (stats.api_calls, stats.rate_limited, stats.errors),
        (4, 4, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn each_rate_limit_wait_is_capped() {
    let (mock, dir) = setup().await;
    mock.set_groups("00u1", &[("00g1", "One")]);
    let far = clock::now() + 86_400;
    mock.fail_next_with(
        1,
        Failure::TooManyRequests {
            reset: Some(far.to_string()),
            remaining: Some("0".into()),
        },
    );
    let start = Instant::now();
    assert_eq!(dir.user_groups("00u1").await.unwrap().len(), 1);
    let waited = start.elapsed();
    // One wait, capped (the pacing the 429 set is capped the same way and over by then).
    assert!(waited >= Duration::from_secs(60), "{waited:?}");
    assert!(waited <= Duration::from_secs(61), "{waited:?}");
    assert_eq!(mock.requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn low_remaining_paces_the_next_request() {
    let (mock, dir) = setup().await;
    mock.set_groups("00u1", &[("00g1", "One")]);
    let reset = clock::now() + 20;
    mock.set_rate_headers(Some(("0", &reset.to_string())));
    let start = Instant::now();
    dir.user_groups("00u1").await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    // Nothing remains until the reset: the next request waits for it.
    mock.set_rate_headers(Some(("599", &(reset + 60).to_string())));
    let start = Instant::now();
    dir.user_groups("00u1").await.unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(19), "{waited:?}");
    assert!(waited <= Duration::from_secs(21), "{waited:?}");
    // Plenty remaining: no delay.
    let start = Instant::now();
    dir.user_groups("00u1").await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(mock.requests(), 3);
}

#[tokio::test]
async fn a_bad_token_is_unauthorized_and_logged_once() {
    let (logs, _guard) = capture_logs();
    let mock = MockOkta::start(TOKEN).await;
    mock.set_groups("00u1", &[("00g1", "One")]);
    let wrong = "00WRONGtoken-value";
    let dir = directory(&mock, wrong, Duration::from_secs(10));
    for _ in 0..3 {
        assert_eq!(
            dir.user_groups("00u1").await,
            Err(DirectoryError::Unauthorized {
                summary: "Invalid token provided".into()
            })
        );
    }
    assert_eq!(mock.requests(), 3);
    assert_eq!(dir.stats().errors, 3);
    let text = logs.text();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(errors[0].contains("Invalid token provided"), "{text}");
    assert!(errors[0].contains("idp_service_account"), "{text}");
    assert!(!text.contains(wrong) && !text.contains(TOKEN), "{text}");
    let err = dir.user_groups("00u1").await.unwrap_err();
    assert!(!format!("{err} {err:?} {dir:?}").contains(wrong));
}

#[tokio::test]
async fn a_token_without_rights_is_unauthorized() {
    let (mock, dir) = setup().await;
    mock.fail_next(1, 403);
    assert_eq!(
        dir.user_groups("00u1").await,
        Err(DirectoryError::Unauthorized {
            summary: "You do not have permission to perform the requested action".into()
        })
    );
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_sends_nothing() {
    let mock = MockOkta::start(TOKEN).await;
    let dir = directory(&mock, "bad\ntoken", Duration::from_secs(10));
    assert!(matches!(
        dir.user_groups("00u1").await,
        Err(DirectoryError::Unauthorized { .. })
    ));
    assert_eq!(mock.requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn server_errors_and_timeouts_are_unavailable() {
    let (mock, dir) = setup().await;
    mock.set_groups("00u1", &[("00g1", "One")]);
    mock.fail_next(1, 500);
    assert!(matches!(
        dir.user_groups("00u1").await,
        Err(DirectoryError::Unavailable(m)) if m.contains("Internal Server Error")
    ));
    mock.fail_next(1, 503);
    assert!(matches!(
        dir.user_groups("00u1").await,
        Err(DirectoryError::Unavailable(_))
    ));
    // A slow answer: bounded by the 10 s request timeout.
    mock.fail_next_with(1, Failure::Delay(Duration::from_secs(300)));
    let start = Instant::now();
    assert!(matches!(
        dir.user_groups("00u1").await,
        Err(DirectoryError::Unavailable(_))
    ));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
    assert_eq!(mock.requests(), 3, "no retry after 5xx or a timeout");
    assert_eq!(dir.stats().errors, 3);
}

#[tokio::test]
async fn other_statuses_are_bad_responses() {
    let (mock, dir) = setup().await;
    // Unknown user.
    assert!(matches!(
        dir.user_groups("00unknown").await,
        Err(DirectoryError::BadResponse(m)) if m.contains("404") && m.contains("Not found")
    ));
    // Redirects are not followed.
    mock.fail_next(1, 302);
    assert!(matches!(
        dir.user_groups("00unknown").await,
        Err(DirectoryError::BadResponse(m)) if m.contains("302")
    ));
}

#[tokio::test]
async fn malformed_entries_are_skipped_and_counted() {
    let (mock, dir) = setup().await;
    mock.set_raw_body(
        "00u1",
        r#"[{"id":"00g1","profile":{"name":"One"}}, 42, {"profile":{"name":"no id"}},
            {"id":""}, {"id":7}, {"id":"00g2"}, {"id":"00g3","profile":{"name":null}}]"#,
    );
    let groups = dir.user_groups("00u1").await.unwrap();
    assert_eq!(
        pairs(&groups),
        [("00g1", "One"), ("00g2", ""), ("00g3", "")]
    );
    assert_eq!(dir.stats().malformed_entries, 4);
    assert_eq!(dir.stats().errors, 0);
}

#[tokio::test]
async fn bodies_that_are_not_arrays_are_bad_responses() {
    let (mock, dir) = setup().await;
    for body in [r#"{"groups":[]}"#, "not json", "", "null"] {
        mock.set_raw_body("00u1", body);
        assert!(
            matches!(
                dir.user_groups("00u1").await,
                Err(DirectoryError::BadResponse(_))
            ),
            "{body}"
        );
    }
    mock.set_raw_body("00u1", "[]");
    assert_eq!(dir.user_groups("00u1").await, Ok(vec![]));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let (mock, dir) = setup().await;
    let entry = r#"{"id":"00gxxxxxxxxxxxxxxxxx","profile":{"name":"padding padding padding"}},"#;
    let mut body = String::from("[");
    while body.len() <= MAX_PAGE_BYTES {
        body.push_str(entry);
    }
    body.push_str(r#"{"id":"00glast"}]"#);
    mock.set_raw_body("00u1", body);
    assert!(matches!(
        dir.user_groups("00u1").await,
        Err(DirectoryError::BadResponse(m)) if m.contains("larger than")
    ));
}

#[test]
fn rate_limit_waits_are_bounded() {
    let now = 1_000;
    assert_eq!(
        rate_limit_wait(Some(1_030), 0, now),
        Duration::from_secs(30)
    );
    assert_eq!(rate_limit_wait(Some(999_999), 0, now), MAX_WAIT);
    // A reset in the past still waits (no hot loop).
    assert_eq!(rate_limit_wait(Some(10), 0, now), Duration::from_secs(1));
    assert_eq!(rate_limit_wait(Some(now), 2, now), Duration::from_secs(1));
    let backoff: Vec<u64> = (0..5)
        .map(|r| rate_limit_wait(None, r, now).as_secs())
        .collect();
    assert_eq!(backoff, [1, 2, 4, 4, 4]);
    for _ in 0..100 {
        assert!(jitter() <= Duration::from_millis(u64::from(JITTER_MS)));
    }
}

#[test]
fn error_summaries_are_cleaned() {
    assert_eq!(
        error_summary(
            StatusCode::UNAUTHORIZED,
            br#"{"errorCode":"E0000011","errorSummary":"Invalid\ntoken provided"}"#
        ),
        "Invalid token provided"
    );
    assert_eq!(
        error_summary(StatusCode::UNAUTHORIZED, b"<html>"),
        "HTTP 401 Unauthorized"
    );
    let long = format!(r#"{{"errorSummary":"{}"}}"#, "x".repeat(5000));
    assert_eq!(
        error_summary(StatusCode::FORBIDDEN, long.as_bytes()).len(),
        MAX_SUMMARY_CHARS
    );
}
