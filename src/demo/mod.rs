//! `portcullis demo`, and the test kit it shares with the tests: the real proxy, run with
//! an ordinary config file (`examples/demo.yaml`), plus three clearly-labelled companions
//! so it can be tried on one machine with nothing else installed:
//!
//! 1. the **mock OpenID Provider** ([`idp`]) — an Okta-like org at `idp_provider_url`,
//!    where you sign in by picking a demo user ([`users`]);
//! 2. the **mock Okta Management API** ([`okta`]) on the same origin, which the proxy
//!    reads group memberships from (paged, two groups a page);
//! 3. a **demo app** ([`app`]) behind every route, showing the request it received and
//!    the verified identity.
//!
//! The unit and integration tests drive the same provider and org ([`idp::MockIdp`],
//! [`okta::MockOkta`]), configured for every misbehaviour they need. Nothing here is on
//! the proxy's request path: only `main.rs` (the `demo` command) and tests use this
//! module tree. [`plan`] reads the companions' addresses and credentials from the
//! config, and refuses anything that is not loopback; the proxy itself is started
//! exactly as `portcullis run` starts it.
//!
//! ```no_run
//! # async fn f() -> Result<(), portcullis::demo::DemoError> {
//! let demo = portcullis::demo::Demo::start("examples/demo.yaml".as_ref()).await?;
//! println!("{}", demo.banner());
//! demo.stop().await;
//! # Ok(()) }
//! ```

pub mod app;
pub mod idp;
pub mod okta;
pub mod plan;
pub mod users;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::env::{Env, ProcessEnv};
use crate::config::{self, ConfigError};
use idp::{IdpOptions, MockIdp, SignIn};
use okta::OktaOrg;
use plan::Plan;
use web::Running;

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The configuration file is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Something would listen on (or point at) a non-loopback address.
    #[error(
        "the demo runs on this machine only, but {what} is {value}: use a loopback address \
         such as 127.0.0.1"
    )]
    NotLoopback {
        /// The setting.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// A setting the demo needs is missing or unsuitable.
    #[error("{key}: {problem}")]
    Setting {
        /// The setting.
        key: &'static str,
        /// What is wrong, and what to write instead.
        problem: String,
    },
    /// The demo provider's signing key could not be loaded.
    #[error("the demo provider's signing key is unusable: {0}")]
    Key(String),
    /// The demo app's HTTP client could not be built.
    #[error("the demo app cannot fetch keys: {0}")]
    Client(#[from] reqwest::Error),
    /// The demo provider's HTTP client (for forwarded API requests) could not be built.
    #[error("the demo provider cannot forward API requests: {0}")]
    Forward(reqwest::Error),
    /// A companion's address is taken.
    #[error("cannot listen on {addr} for the {what}: {source} (is another demo running?)")]
    Bind {
        /// Which companion.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The proxy could not start.
    #[error(transparent)]
    Proxy(#[from] crate::StartError),
}

/// A running demo: the proxy and its companions.
pub struct Demo {
    /// Where the proxy listens.
    pub proxy_addr: SocketAddr,
    /// Where the demo provider and the Okta API listen.
    pub idp_addr: SocketAddr,
    /// Where the demo app listens.
    pub app_addr: SocketAddr,
    config_path: PathBuf,
    plan: Arc<Plan>,
    idp: Option<MockIdp>,
    app: Option<Running>,
    proxy: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("proxy_addr", &self.proxy_addr)
            .field("idp_addr", &self.idp_addr)
            .field("app_addr", &self.app_addr)
            .finish_non_exhaustive()
    }
}

impl Demo {
    /// Starts the companions and the proxy for the config at `config_path`, with
    /// environment overrides from the process environment (as `portcullis run`).
    pub async fn start(config_path: &Path) -> Result<Demo, DemoError> {
        Self::start_with_env(config_path, &ProcessEnv).await
    }

    /// [`Demo::start`] with an explicit environment (tests pass an empty one).
    pub async fn start_with_env(config_path: &Path, env: &dyn Env) -> Result<Demo, DemoError> {
        let loaded = config::load(Some(config_path), env)?;
        for w in &loaded.warnings {
            tracing::warn!("config: {w}");
        }
        let plan = Arc::new(Plan::from_config(&loaded.config)?);
        let idp_listener = listen("demo identity provider", plan.idp_addr).await?;
        let app_listener = listen("demo app", plan.app_addr).await?;
        let idp = MockIdp::listen(idp_listener, provider_options(&plan))?;
        // The provider is serving, so the proxy's discovery succeeds at once.
        let server = crate::bind(loaded.config, 1).await?;
        let proxy_addr = server.local_addr().unwrap_or(plan.proxy_addr);
        let app = app::EchoApp::new(&format!("http://{proxy_addr}"), plan.routes.clone())?;
        let app = Running::spawn(app_listener, plan.app_addr, Arc::new(app));
        let (stop, stopped) = oneshot::channel::<()>();
        let proxy = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        Ok(Demo {
            proxy_addr,
            idp_addr: idp.addr(),
            app_addr: app.addr(),
            config_path: config_path.to_owned(),
            plan,
            idp: Some(idp),
            app: Some(app),
            proxy: Some((stop, proxy)),
        })
    }

    /// Stops the proxy (letting in-flight requests finish), then the companions.
    pub async fn stop(mut self) {
        if let Some((stop, mut task)) = self.proxy.take() {
            let _ = stop.send(());
            // `timeout_shutdown` bounds the drain; this only guards against a hang.
            if tokio::time::timeout(Duration::from_secs(60), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
        if let Some(idp) = self.idp.take() {
            idp.stop().await;
        }
    }

    /// What to open, who can sign in, and what runs where — printed at start.
    pub fn banner(&self) -> String {
        let mut out = String::from(
            "Portcullis demo: the proxy and three demo companions, on this machine only.\n\n",
        );
        if let Some(url) = self.plan.start_url() {
            out.push_str(&format!(
                "  Open {url} and sign in as a demo user (no password):\n\n"
            ));
        }
        for u in users::all() {
            out.push_str(&format!(
                "    {:<6} {:<20} {} (groups: {})\n           can reach {}\n",
                u.login,
                u.email,
                u.role,
                users::summary(&u.groups),
                u.reach
            ));
        }
        out.push_str(&format!("\n  Routes in {}:\n", self.config_path.display()));
        for r in &self.plan.routes {
            let url = r.url.as_deref().unwrap_or(&r.name);
            out.push_str(&format!("    {url:<32} {}\n", r.access));
        }
        out.push_str(&format!(
            "\n  Running:\n    http://{}  the proxy\n    http://{}  demo OpenID Provider + Okta Management API (not for production)\n    http://{}  demo app\n\n  Press Ctrl-C to stop.\n",
            self.proxy_addr, self.idp_addr, self.app_addr
        ));
        out
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some((_, task)) = self.proxy.take() {
            task.abort();
        }
    }
}

/// The demo provider: Okta's paths, the demo users on a sign-in page, the config's
/// client and callbacks, and the demo's Okta org (two groups a page) on its origin.
fn provider_options(plan: &Plan) -> IdpOptions {
    let org = OktaOrg::new(plan.api_token.as_ref().map(|t| t.expose()));
    org.set_page_size(2);
    org.set_relaxed_rate_headers();
    for user in users::all() {
        let groups = user.directory_groups();
        let pairs: Vec<(&str, &str)> = groups
            .iter()
            .map(|g| (g.id.as_str(), g.name.as_str()))
            .collect();
        // Okta finds a user by id or by login.
        for key in [user.sub, user.login, user.email] {
            org.set_groups(key, &pairs);
        }
    }
    IdpOptions {
        issuer_override: Some(plan.issuer.clone()),
        client_id: plan.client_id.clone(),
        client_secret: plan.client_secret.expose().to_owned(),
        scopes_supported: vec!["openid", "profile", "email", "offline_access"],
        endpoint_prefix: "/oauth2/v1",
        sign_in: SignIn::Picker(users::all()),
        callbacks: plan.callbacks.clone(),
        signout_redirect: plan.signout_redirect.clone(),
        home_url: plan.start_url().map(str::to_owned),
        okta: Some(Arc::new(org)),
        ..IdpOptions::default()
    }
}

async fn listen(what: &'static str, addr: SocketAddr) -> Result<TcpListener, DemoError> {
    plan::loopback(what, addr)?;
    TcpListener::bind(addr)
        .await
        .map_err(|source| DemoError::Bind { what, addr, source })
}

/// Runs the demo for the config at `config_path` until `shutdown` resolves (Ctrl-C),
/// printing the banner; then stops everything.
pub async fn run_demo(
    config_path: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DemoError> {
    let demo = Demo::start(config_path).await?;
    println!("{}", demo.banner());
    shutdown.await;
    println!("Stopping the demo…");
    demo.stop().await;
    Ok(())
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod flow_tests;
