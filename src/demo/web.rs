//! HTTP plumbing shared by the demo companions and the test kit (never on the proxy's
//! request path): a small loopback server with graceful shutdown, response builders,
//! form parsing, and the labelled page layout.
//!
//! Invariant: nothing here panics on a request; a response that cannot be built (a
//! header value a client smuggled control characters into) becomes a plain 400/500.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::respond::{escape, html_page};

/// Every companion response.
pub(super) type Reply = Response<Full<Bytes>>;

/// Query or form parameters, in order.
pub(super) type Params = Vec<(String, String)>;

/// Largest request body a companion reads (forms, token requests).
const MAX_BODY: usize = 64 * 1024;

/// How long connections may take to finish when a companion stops.
const DRAIN: Duration = Duration::from_secs(5);

/// One companion's request handler.
pub(super) trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(self: Arc<Self>, req: Request<Incoming>) -> impl Future<Output = Reply> + Send;
}

/// A companion serving on its own listener until [`Running::stop`].
#[derive(Debug)]
pub(super) struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    /// Serves `handler` on `listener` in a background task.
    pub(super) fn spawn<H: Handler>(
        listener: TcpListener,
        addr: SocketAddr,
        handler: Arc<H>,
    ) -> Self {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, handler, stopped));
        Running {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// The listening address.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open connections finish (at most 5 s), then returns.
    pub(super) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(DRAIN * 2, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    mut stopped: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = tokio::select! {
            biased;
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "demo: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let svc = service_fn(move |req| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler.handle(req).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

/// Reads a request body of at most 64 KiB; `None` when it is larger or broken.
pub(super) async fn read_body(body: Incoming) -> Option<Bytes> {
    Limited::new(body, MAX_BODY)
        .collect()
        .await
        .ok()
        .map(|c| c.to_bytes())
}

/// Parses `application/x-www-form-urlencoded` text (a query string or a form body).
pub(super) fn parse_params(bytes: &[u8]) -> Params {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// The value of `name`, if present.
pub(super) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The first parameter given more than once (OAuth forbids repeats, RFC 6749 §3.1).
pub(super) fn repeated(params: &Params) -> Option<&str> {
    params
        .iter()
        .enumerate()
        .find(|(i, (n, _))| params[..*i].iter().any(|(m, _)| m == n))
        .map(|(_, (n, _))| n.as_str())
}

/// Compares two secrets without an early exit on the first differing byte.
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    let (a, b) = (digest(a), digest(b));
    a.as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A response with `content_type`, never cached, never sniffed.
pub(super) fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    crate::respond::private_page_headers(r.headers_mut(), content_type);
    r
}

/// An HTML page.
pub(super) fn html(status: StatusCode, page: String) -> Reply {
    reply(status, "text/html; charset=utf-8", page)
}

/// A JSON document.
pub(super) fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    reply(status, "application/json", value.to_string())
}

/// A 302 to `location`; a 500 if `location` cannot be a header value.
pub(super) fn redirect(location: &str) -> Reply {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut r = reply(StatusCode::FOUND, "text/plain; charset=utf-8", "");
            r.headers_mut().insert(header::LOCATION, value);
            r
        }
        Err(_) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "cannot redirect to that address",
        ),
    }
}

const DEMO_STYLE: &str = "<style>.demo-label{display:inline-block;background:#fff4ce;\
border:1px solid #e0b400;color:#5c4600;border-radius:4px;padding:.15rem .6rem;\
font-size:.85rem;font-weight:600;margin:0 0 .75rem}table{border-collapse:collapse;width:100%;\
font-size:.9rem}th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;\
border-bottom:1px solid #e3e6eb}th{white-space:nowrap}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}td code,dd code{word-break:break-all}.ok{color:#137333;\
font-weight:600}.bad{color:#b3261e;font-weight:600}.users button{display:block;width:100%;\
text-align:left;margin:.5rem 0;padding:.6rem 1rem}.users small{color:#5b6474}</style>";

/// A page in the product's layout, with a visible `label` at the top; `wide` gives
/// tables room. `body_html` must already be escaped.
pub(super) fn page(title: &str, label: &str, body_html: &str, wide: bool) -> String {
    let width = if wide {
        "<style>main{max-width:60rem;margin-top:4vh}</style>"
    } else {
        ""
    };
    let body = format!(
        "{DEMO_STYLE}{width}<p class=\"demo-label\">{}</p>{body_html}",
        escape(label)
    );
    html_page(title, &body, Some(&escape(label)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_repeats() {
        let p = parse_params(b"a=1&b=x%20y&a=2");
        assert_eq!(param(&p, "b"), Some("x y"));
        assert_eq!(repeated(&p), Some("a"));
        assert_eq!(repeated(&parse_params(b"a=1&b=2")), None);
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", ""));
    }

    #[test]
    fn redirects_refuse_header_injection() {
        assert_eq!(redirect("http://a/\r\nx: y").status(), 500);
        assert_eq!(redirect("http://a/").headers()["location"], "http://a/");
    }

    #[test]
    fn pages_carry_the_label_escaped() {
        let p = page("T", "Demo <label>", "<p>x</p>", false);
        assert!(p.contains("demo-label\">Demo &lt;label&gt;</p>"));
    }
}
