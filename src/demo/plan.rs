//! What the demo runs, read from the ordinary configuration file — for `portcullis
//! demo` only, never on the proxy's request path.
//!
//! The companions take their addresses and credentials from the same settings the
//! proxy uses, so the config file is the single source of truth: the provider listens
//! where `idp_provider_url` points and knows the `idp_client_id`/`_secret`, the Okta API
//! accepts the token in `idp_service_account`, and the echo app listens where the first
//! route's `to` points.
//!
//! Invariant: every address the demo binds — the proxy's `address` (and
//! `http_redirect_addr`), the provider, the app — is a loopback IP literal; anything
//! else is refused before a socket is opened.

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};

use super::DemoError;
pub use super::idp::Callbacks;
use crate::config::access::Access;
use crate::config::route::FromUrl;
use crate::config::secret::Secret;
use crate::config::{Config, auth::IdpKind};

/// Everything the companions need to know.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The proxy's listen address (`address`).
    pub proxy_addr: SocketAddr,
    /// Where the demo provider and the Okta API listen (from `idp_provider_url`).
    pub idp_addr: SocketAddr,
    /// The issuer exactly as `idp_provider_url` writes it.
    pub issuer: String,
    /// Where the echo app listens (the first route's first `to`).
    pub app_addr: SocketAddr,
    /// `idp_client_id`.
    pub client_id: String,
    /// `idp_client_secret`.
    pub client_secret: Secret,
    /// The token in `idp_service_account`; without it the API accepts no request.
    pub api_token: Option<Secret>,
    /// `signout_redirect_url`: the only `post_logout_redirect_uri` the provider follows.
    pub signout_redirect: Option<Url>,
    /// Which `redirect_uri` values the provider accepts.
    pub callbacks: Callbacks,
    /// The routes, for the banner and the app's navigation.
    pub routes: Vec<RouteInfo>,
}

/// One route, as the banner and the app's navigation show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// `http://app.localhost:8080`; None for a wildcard host.
    pub url: Option<String>,
    /// The route's `name` (or its position, `routes[1]`).
    pub name: String,
    /// Who may use it, in a few words.
    pub access: String,
}

impl Plan {
    /// Checks that `config` suits the demo and extracts the plan.
    pub fn from_config(config: &Config) -> Result<Plan, DemoError> {
        let server = &config.server;
        loopback("address", server.address)?;
        if let Some(addr) = server.http_redirect_addr {
            loopback("http_redirect_addr", addr)?;
        }
        if !server.insecure {
            return Err(setting(
                "insecure_server",
                "the demo serves plain HTTP on loopback; set `insecure_server: true`",
            ));
        }
        let idp = &config.auth.idp;
        if idp.provider.is_none() {
            return Err(setting(
                "idp_provider",
                "set `idp_provider: okta` so the proxy signs in with the demo provider",
            ));
        }
        let issuer = idp.issuer.clone().ok_or_else(|| {
            setting(
                "idp_provider_url",
                "set it to the demo provider, e.g. http://127.0.0.1:9101",
            )
        })?;
        let idp_addr = origin_addr("idp_provider_url", &issuer)?;
        let client_id = idp
            .client_id
            .clone()
            .ok_or_else(|| setting("idp_client_id", "the demo provider needs a client id"))?;
        let client_secret = idp.client_secret.clone().ok_or_else(|| {
            setting(
                "idp_client_secret",
                "the demo provider needs a client secret",
            )
        })?;
        let api_token = match idp.provider {
            Some(IdpKind::Okta) => idp.service_account.clone(),
            _ => None,
        };
        let upstream = config
            .routes
            .iter()
            .find_map(|r| r.to.first())
            .ok_or_else(|| {
                setting(
                    "routes",
                    "the demo needs at least one route to the demo app",
                )
            })?;
        let app_addr = upstream_addr(&upstream.url)?;
        let callbacks = match &config.auth.authenticate_service_url {
            Some(url) => Callbacks::AuthenticateService(url.clone()),
            None => Callbacks::RouteHosts(config.routes.iter().map(|r| r.from.clone()).collect()),
        };
        let routes = config
            .routes
            .iter()
            .map(|r| RouteInfo {
                url: route_url(&r.from),
                name: r.name.clone(),
                access: describe(&r.access),
            })
            .collect();
        Ok(Plan {
            proxy_addr: server.address,
            idp_addr,
            issuer,
            app_addr,
            client_id,
            client_secret,
            api_token,
            signout_redirect: config.auth.signout_redirect_url.clone(),
            callbacks,
            routes,
        })
    }

    /// The first route anyone signed in may use, else the first route: where to start.
    pub fn start_url(&self) -> Option<&str> {
        let signed_in = self
            .routes
            .iter()
            .find(|r| r.url.is_some() && r.access == ANY_USER);
        signed_in
            .or_else(|| self.routes.iter().find(|r| r.url.is_some()))
            .and_then(|r| r.url.as_deref())
    }
}

const ANY_USER: &str = "any signed-in user";

fn setting(key: &'static str, problem: &str) -> DemoError {
    DemoError::Setting {
        key,
        problem: problem.to_owned(),
    }
}

/// Refuses anything but a loopback address.
pub fn loopback(what: &'static str, addr: SocketAddr) -> Result<(), DemoError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(DemoError::NotLoopback {
            what,
            value: addr.to_string(),
        })
    }
}

/// The socket address of a plain-http loopback origin such as `http://127.0.0.1:9101`.
fn origin_addr(what: &'static str, text: &str) -> Result<SocketAddr, DemoError> {
    let url = Url::parse(text).map_err(|_| setting(what, "not a URL"))?;
    let addr = host_addr(&url).ok_or_else(|| DemoError::NotLoopback {
        what,
        value: text.to_owned(),
    })?;
    loopback(what, addr)?;
    if url.scheme() != "http" {
        return Err(setting(
            what,
            "the demo provider speaks plain http: use http://127.0.0.1:PORT",
        ));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(setting(
            what,
            "the demo provider's issuer is an origin without a path, e.g. http://127.0.0.1:9101",
        ));
    }
    Ok(addr)
}

fn upstream_addr(url: &Url) -> Result<SocketAddr, DemoError> {
    const WHAT: &str = "routes[0].to";
    let addr = host_addr(url).ok_or_else(|| DemoError::NotLoopback {
        what: WHAT,
        value: url.to_string(),
    })?;
    loopback(WHAT, addr)?;
    if !matches!(url.scheme(), "http" | "h2c") {
        return Err(setting(
            WHAT,
            "the demo app speaks plain http: use http://127.0.0.1:PORT",
        ));
    }
    Ok(addr)
}

/// The address of a URL whose host is an IP literal (names are not resolved).
fn host_addr(url: &Url) -> Option<SocketAddr> {
    let ip = match url.host()? {
        Host::Ipv4(ip) => IpAddr::V4(ip),
        Host::Ipv6(ip) => IpAddr::V6(ip),
        Host::Domain(_) => return None,
    };
    Some(SocketAddr::new(ip, url.port_or_known_default()?))
}

fn route_url(from: &FromUrl) -> Option<String> {
    if from.host.starts_with('*') {
        return None;
    }
    Some(match from.port {
        Some(port) => format!("{}://{}:{port}", from.scheme, from.host),
        None => format!("{}://{}", from.scheme, from.host),
    })
}

/// `allowed_groups: admins`, `any signed-in user`, … joined with "or".
fn describe(access: &Access) -> String {
    if access.public {
        return "anyone, no sign-in".into();
    }
    let mut parts = Vec::new();
    if access.any_authenticated_user {
        parts.push(ANY_USER.to_owned());
    }
    for (key, list) in [
        ("allowed_users", &access.allowed_users),
        ("allowed_domains", &access.allowed_domains),
        ("allowed_groups", &access.allowed_groups),
    ] {
        if !list.is_empty() {
            parts.push(format!("{key}: {}", list.join(", ")));
        }
    }
    if !access.allowed_idp_claims.is_empty() {
        parts.push("allowed_idp_claims".into());
    }
    if access.policy.is_some() {
        parts.push("policy".into());
    }
    for (file, _) in &access.policy_files {
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        parts.push(format!("policy file {name}"));
    }
    if parts.is_empty() {
        "nobody".into()
    } else {
        parts.join(" or ")
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
