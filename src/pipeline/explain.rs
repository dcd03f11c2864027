//! `portcullis policy explain` and `portcullis check`, decided by the proxy's own code:
//! the request is built as a client would send it, viewed canonically, matched and
//! authorized by the same functions that serve real requests.

use std::net::{IpAddr, SocketAddr};

use http::{Method, Request, header};
use url::Url;

use super::{Target, match_route_in};
use crate::config::{self, Config};
use crate::error::ProxyError;
use crate::policy::{Outcome, decide};
use crate::routes::{RouteTable, request};
use crate::session::Session;

/// A request to explain.
#[derive(Debug)]
pub struct Question {
    /// The URL the client asks for.
    pub url: Url,
    /// The method.
    pub method: Method,
    /// The signed-in user, if any.
    pub user: Option<Session>,
    /// The client's address.
    pub client_ip: IpAddr,
}

/// What the proxy would do.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The request is refused before any route (400, with the reason).
    BadRequest(String),
    /// One of the proxy's own endpoints answers it.
    Internal,
    /// No route matches (404).
    NoRoute,
    /// The route and its decision (`allow`, `deny`, `sign-in`) with the reason.
    Decided {
        /// The route's name.
        route: String,
        /// `allow`, `deny` or `sign-in`.
        decision: &'static str,
        /// The reason, as a sentence.
        reason: String,
    },
    /// The route refuses at once: the user's groups are unverified.
    GroupsUnverified {
        /// The route's name.
        route: String,
    },
}

/// Explains `question` against the routes of `config`.
pub fn explain(config: &Config, question: &Question) -> Answer {
    let table = RouteTable::new(config.routes.clone());
    let tls = question.url.scheme() == "https";
    let authority = match (question.url.host_str(), question.url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => String::new(),
    };
    let path_and_query = match question.url.query() {
        Some(q) => format!("{}?{q}", question.url.path()),
        None => question.url.path().to_owned(),
    };
    let Ok(req) = Request::builder()
        .method(question.method.clone())
        .uri(path_and_query)
        .header(header::HOST, authority)
        .body(())
    else {
        return Answer::BadRequest("the URL cannot be sent as a request".into());
    };
    let peer = SocketAddr::new(question.client_ip, 0);
    let view = match request::view(&req, tls, peer, &config.server.trusted_proxies) {
        Ok(v) => v,
        Err(e) => return Answer::BadRequest(e.to_string()),
    };
    let route = match match_route_in(&table, &view) {
        Ok(Target::Route(route)) => route,
        Ok(Target::Internal) => return Answer::Internal,
        Err(_) => return Answer::NoRoute,
    };
    let name = route.spec.name.clone();
    match decide(route, question.user.as_ref(), &view, &req) {
        Ok(decision) => Answer::Decided {
            route: name,
            decision: match decision.outcome {
                Outcome::Allow => "allow",
                Outcome::Deny => "deny",
                Outcome::SignIn => "sign-in",
            },
            reason: route.policy.explain_decision(&decision),
        },
        Err(ProxyError::GroupsUnverified) => Answer::GroupsUnverified { route: name },
        Err(e) => Answer::BadRequest(e.to_string()),
    }
}

/// What `portcullis check` warns about in a valid configuration: the loader's
/// warnings, policies that can never allow anyone, routes that are never used, and
/// secrets that would differ per replica with a shared store.
pub fn check_warnings(loaded: &config::Loaded) -> Vec<String> {
    let config = &loaded.config;
    let table = RouteTable::new(config.routes.clone());
    let mut warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    for route in table.routes() {
        if route.policy.can_never_allow() {
            warnings.push(format!(
                "{}: its policy can never allow anyone",
                route.spec.name
            ));
        }
    }
    if matches!(config.auth.storage, config::auth::Storage::Redis(_)) {
        for key in config.auth.per_process_secrets() {
            warnings.push(format!(
                "databroker_storage_type is redis, but {key} is not set: every replica would \
                 generate its own, so a session made by one replica would not work on another. \
                 Give all replicas the same {key} (`portcullis gen-secret`)."
            ));
        }
    }
    for (later, earlier) in table.shadowed() {
        warnings.push(format!(
            "{} is never used: {} (earlier, same host) matches every path it matches",
            later.spec.name, earlier.spec.name
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::MapEnv;

    fn config() -> Config {
        let yaml = "insecure_server: true\nroutes:\n  - from: https://app.example.com\n    prefix: /public\n    to: http://127.0.0.1:1\n    allow_public_unauthenticated_access: true\n  - from: https://app.example.com\n    to: http://127.0.0.1:1\n    allowed_groups: [admins]\n";
        crate::config::load_str(yaml, None, &MapEnv::default())
            .unwrap()
            .config
    }

    fn ask(url: &str, user: Option<Session>) -> Answer {
        explain(
            &config(),
            &Question {
                url: Url::parse(url).unwrap(),
                method: Method::GET,
                user,
                client_ip: "127.0.0.1".parse().unwrap(),
            },
        )
    }

    fn admin(unverified: bool) -> Session {
        let mut s =
            Session::hypothetical("u1".into(), None, vec!["admins".into()], Default::default());
        s.groups_unverified = unverified;
        s
    }

    #[test]
    fn the_canonical_view_decides_the_route() {
        // `..` is resolved before matching, as the proxy does: not the public route.
        let answer = ask("https://app.example.com/public/../secret", None);
        assert!(
            matches!(
                &answer,
                Answer::Decided {
                    decision: "sign-in",
                    ..
                }
            ),
            "{answer:?}"
        );
        // An encoded slash is refused before any route, as the proxy answers 400.
        assert!(matches!(
            ask("https://app.example.com/public/a%2Fb", None),
            Answer::BadRequest(_)
        ));
        assert_eq!(ask("https://other.example.com/", None), Answer::NoRoute);
        assert_eq!(
            ask("https://app.example.com/healthz", None),
            Answer::Internal
        );
    }

    #[test]
    fn unverified_groups_refuse_as_the_proxy_does() {
        assert!(matches!(
            ask("https://app.example.com/x", Some(admin(false))),
            Answer::Decided {
                decision: "allow",
                ..
            }
        ));
        assert!(matches!(
            ask("https://app.example.com/x", Some(admin(true))),
            Answer::GroupsUnverified { .. }
        ));
    }
}
