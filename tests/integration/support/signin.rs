//! Sign-in helpers: a proxy wired to the mock provider, and a browser that walks the
//! authorization-code flow with a cookie jar.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};

use super::TestProxy;
use super::upstream::{self, Upstream};
use portcullis::demo::idp::{IdpOptions, MockIdp};

pub(crate) const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// `opts` signing with the fixture keys `tests/fixtures/idp-rsa.pem` (kid `idp-key-1`)
/// and, after rotation, `idp-rsa-2.pem` (kid `idp-key-2`), unless it names its own.
pub(crate) fn with_fixture_keys(mut opts: IdpOptions) -> IdpOptions {
    if opts.key_files.is_empty() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        opts.key_files = vec![dir.join("idp-rsa.pem"), dir.join("idp-rsa-2.pem")];
    }
    opts
}

/// A proxy, its provider and its upstream.
pub(crate) struct World {
    pub idp: MockIdp,
    /// Kept alive for the proxy's routes.
    pub _up: Upstream,
    pub proxy: TestProxy,
}

impl World {
    /// `app.example.com` (any signed-in user), `public.example.com` (public), plus
    /// `extra` global YAML and `routes` YAML appended to the route list.
    pub(crate) async fn start(extra: &str) -> World {
        Self::start_with(IdpOptions::default(), extra, "").await
    }

    pub(crate) async fn start_with(opts: IdpOptions, extra: &str, routes: &str) -> World {
        Self::start_prepared(opts, extra, routes, |_| {}).await
    }

    /// Like [`World::start_with`], with a chance to adjust the provider before the proxy
    /// starts (and runs discovery).
    pub(crate) async fn start_prepared(
        opts: IdpOptions,
        extra: &str,
        routes: &str,
        prepare: impl FnOnce(&MockIdp),
    ) -> World {
        // With an issuer override the provider advertises something other than its real
        // address; the proxy is configured with the real one, so the two differ.
        let overridden = opts.issuer_override.is_some();
        let idp = MockIdp::start_with(with_fixture_keys(opts)).await;
        prepare(&idp);
        let up = upstream::start("app").await;
        let yaml = format!(
            "insecure_server: true\n{provider}idp_provider_url: {issuer}\nidp_client_id: portcullis\n\
             idp_client_secret: s3cret\ncookie_secret: {SECRET}\n{shared}{extra}\
             routes:\n  - from: http://app.example.com\n    to: {u}\n    allow_any_authenticated_user: true\n\
             \x20 - from: http://public.example.com\n    to: {u}\n    allow_public_unauthenticated_access: true\n{routes}",
            issuer = if overridden {
                idp.base_url()
            } else {
                idp.issuer()
            },
            provider = if extra.contains("idp_provider:") {
                ""
            } else {
                "idp_provider: oidc\n"
            },
            shared = if extra.contains("shared_secret:") {
                String::new()
            } else {
                format!("shared_secret: {SECRET}\n")
            },
            u = up.url(),
        );
        let proxy = TestProxy::start(&yaml).await;
        World {
            idp,
            _up: up,
            proxy,
        }
    }

    pub(crate) fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.proxy.addr.port())
    }

    pub(crate) fn app(&self, path: &str) -> String {
        self.url("app.example.com", path)
    }

    /// A new browser: cookie jar, no automatic redirects.
    pub(crate) fn browser(&self) -> Browser {
        Browser::new(self.proxy.addr)
    }

    /// Waits until discovery has succeeded (sign-in is offered).
    pub(crate) async fn ready(&self) {
        let b = self.browser();
        for _ in 0..200 {
            if b.get_html(&self.app("/")).await.status() == 302 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("discovery never succeeded");
    }
}

/// A browser-like client.
pub(crate) struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
}

impl Browser {
    pub(crate) fn new(proxy: SocketAddr) -> Self {
        let jar = Arc::new(Jar::default());
        // No pooled connections: tests that advance paused time would race the proxy
        // closing an idle one.
        let mut builder = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .no_proxy();
        for host in [
            "app.example.com",
            "public.example.com",
            "other.example.com",
            "auth.example.com",
        ] {
            builder = builder.resolve_to_addrs(host, &[proxy]);
        }
        Self {
            client: builder.build().unwrap(),
            jar,
        }
    }

    pub(crate) async fn get_html(&self, url: &str) -> reqwest::Response {
        self.client
            .get(url)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn get_json(&self, url: &str) -> reqwest::Response {
        self.client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
    }

    /// The cookies the jar would send to `url`.
    pub(crate) fn cookies(&self, url: &str) -> String {
        self.jar
            .cookies(&url.parse().unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// Starts a sign-in at `url`: the provider's authorize URL.
    pub(crate) async fn start_sign_in(&self, url: &str) -> String {
        let r = self.get_html(url).await;
        assert_eq!(r.status(), 302, "sign-in starts with a redirect");
        location(&r)
    }

    /// Lets the (auto-approving) provider answer `authorize`: our callback URL.
    pub(crate) async fn authorize(&self, authorize: &str) -> String {
        let r = self.client.get(authorize).send().await.unwrap();
        assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
        location(&r)
    }

    /// The whole sign-in from `url`; returns the callback's response.
    pub(crate) async fn sign_in(&self, url: &str) -> reqwest::Response {
        let authorize = self.start_sign_in(url).await;
        let callback = self.authorize(&authorize).await;
        self.get_html(&callback).await
    }
}

/// The Location of a redirect, absolute.
pub(crate) fn location(r: &reqwest::Response) -> String {
    let loc = r.headers()["location"].to_str().unwrap();
    r.url().join(loc).unwrap().to_string()
}

/// The CSRF token in a page's sign-out (or refresh) form.
pub(crate) fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// All `Set-Cookie` values of a response.
pub(crate) fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}
