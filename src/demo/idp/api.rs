//! The Okta Management API on the mock provider's origin — part of the test kit and the
//! demo, never on the proxy's request path. At Okta both live on the org's origin (the
//! proxy derives the API base from the issuer's), so `/api/…` is answered here: by the
//! in-process org of [`super::IdpOptions::okta`] (the demo), or by forwarding to the
//! mock org at [`super::Behaviour::api_upstream`] (tests), with its pagination links
//! rewritten to this origin.

use std::net::SocketAddr;

use http::{Request, StatusCode, header};
use hyper::body::Incoming;

use super::Idp;
use crate::demo::web::{self, Reply};

impl Idp {
    /// Answers an `/api/…` request.
    pub(super) async fn api(&self, req: Request<Incoming>) -> Reply {
        let upstream = self.behaviour().api_upstream;
        if let Some(upstream) = upstream {
            return self.forward(upstream, req).await;
        }
        let (parts, _body) = req.into_parts();
        match &self.opts.okta {
            Some(org) => {
                org.answer(&parts.method, &parts.uri, &parts.headers, &self.base)
                    .await
            }
            None => self.not_found(),
        }
    }

    /// Forwards a Management API request to the mock org at `api`.
    async fn forward(&self, api: SocketAddr, req: Request<Incoming>) -> Reply {
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let mut out = self.http.get(format!("http://{api}{target}"));
        for name in [header::AUTHORIZATION, header::ACCEPT] {
            if let Some(v) = req.headers().get(&name) {
                out = out.header(name, v.clone());
            }
        }
        let unreachable = || {
            let body = "<p>The Management API is unreachable.</p>";
            self.page(StatusCode::BAD_GATEWAY, "Bad gateway", body)
        };
        let Ok(r) = out.send().await else {
            return unreachable();
        };
        let status = r.status();
        let headers = r.headers().clone();
        let Ok(body) = r.bytes().await else {
            return unreachable();
        };
        let mut reply = web::reply(status, "application/json", body);
        for (name, value) in &headers {
            if name == header::LINK {
                // Pagination links point at the org, which is this origin.
                let text = String::from_utf8_lossy(value.as_bytes())
                    .replace(&format!("http://{api}"), &self.base);
                if let Ok(v) = text.parse() {
                    reply.headers_mut().append(name, v);
                }
            } else if name.as_str().starts_with("x-rate-limit") || name == header::CONTENT_TYPE {
                reply.headers_mut().insert(name, value.clone());
            }
        }
        reply
    }
}
