//! The `http_redirect_addr` listener: every plain-HTTP request is redirected to HTTPS.
//!
//! It never forwards anything and never reads a body; the target is built from the
//! validated `Host` and the request path, so it cannot redirect off-host.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::activity::{Activity, Served, Tracked};
use super::conn::{drive, log_end};
use super::limit::ConnectionLimit;
use crate::body::ResponseBody;
use crate::config::server::Timeouts;
use crate::respond;
use crate::routes::normalize;

/// Accepts and redirects until `stop` turns true. Its connections keep the main
/// listener's deadlines ([`drive`]): a connection that sends nothing is closed after
/// `timeout_read_header`, like any other.
pub async fn serve(
    listener: TcpListener,
    https_port: u16,
    timeouts: Timeouts,
    limit: Arc<ConnectionLimit>,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The request-head deadline is ours (see `super::activity`), not hyper's.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    loop {
        // Under the main listener's cap, which this listener's connections count toward.
        let slot = tokio::select! {
            _ = stop.changed() => return,
            slot = limit.acquire() => slot,
        };
        let Some(slot) = slot else { return };
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            // Out of descriptors and the like: back off briefly (the main listener, which
            // meets the same causes, logs them).
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let builder = builder.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let activity = Arc::new(Activity::new());
            let io = Tracked::new(stream, activity.clone(), true, true);
            let seen = activity.clone();
            let service = service_fn(move |req: Request<_>| {
                let request = seen.request_started(req.version());
                let response = redirect(&req, https_port);
                async move { Ok::<_, Infallible>(response.map(|body| Served::new(body, request, true))) }
            });
            let conn = builder.serve_connection(TokioIo::new(io), service);
            tokio::pin!(conn);
            let ended = drive(conn, |c| c.graceful_shutdown(), &activity, &timeouts, &stop).await;
            log_end(peer, ended);
            drop(slot);
        });
    }
}

/// The redirect for one request: 301 for GET/HEAD, 308 otherwise (keeps the method).
pub fn redirect<B>(req: &Request<B>, https_port: u16) -> Response<ResponseBody> {
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(header::HOST)?.to_str().ok());
    let Some(Ok((host, _))) = authority.map(|a| normalize::host(a, false)) else {
        return respond::text(StatusCode::BAD_REQUEST, "missing or invalid Host\n");
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = if https_port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{https_port}{path}")
    };
    let status = if matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::PERMANENT_REDIRECT
    };
    let mut response = respond::text(status, "redirecting to HTTPS\n");
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_to_the_same_host_and_path() {
        let req = Request::get("/a?b=1")
            .header("host", "App.Example.com:80")
            .body(())
            .unwrap();
        let r = redirect(&req, 443);
        assert_eq!(r.status(), 301);
        assert_eq!(r.headers()["location"], "https://app.example.com/a?b=1");
        let req = Request::post("/x")
            .header("host", "a.example.com")
            .body(())
            .unwrap();
        let r = redirect(&req, 8443);
        assert_eq!(
            (
                r.status().as_u16(),
                r.headers()["location"].to_str().unwrap()
            ),
            (308, "https://a.example.com:8443/x")
        );
        let req = Request::get("/")
            .header("host", "evil.com/x")
            .body(())
            .unwrap();
        assert_eq!(redirect(&req, 443).status(), 400);
    }
}
