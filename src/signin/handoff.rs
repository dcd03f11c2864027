//! Moving a session between hosts when `authenticate_service_url` is set.
//!
//! A route host sends the browser to the authenticate host with a sealed sign-in link
//! (its return URL and a 5-minute expiry, AEAD under a key derived from
//! `shared_secret`); after the callback, the authenticate host sends it back to
//! `https://<route host>/.pomerium/callback/` with a sealed, one-time, 60-second handoff
//! naming the session. Nothing unsealed is ever trusted, so neither hop can be turned
//! into an open redirect.
//!
//! The hand-off is bound to the browser that started the sign-in: the route host sets
//! a random binding in a cookie (`<cookie_name>_handoff`) when it sends the browser
//! away, the binding travels sealed in the link, the state cookie and the hand-off, and
//! `/.pomerium/callback/` accepts the hand-off only from a browser whose cookie holds the
//! same binding (then clears it). A hand-off link minted by someone else and opened in
//! another browser is refused, so it cannot sign that browser in as them.

use serde::{Deserialize, Serialize};
use url::Url;

use super::params::Params;
use super::{SignIn, SignInError};
use crate::clock;
use crate::seal::random_token;

const LINK_TTL: u64 = 300;
const HANDOFF_TTL: u64 = 60;

#[derive(Serialize, Deserialize)]
struct SignInLink {
    r: String,
    e: u64,
    /// The browser binding (see the module docs).
    b: String,
}

#[derive(Serialize, Deserialize)]
struct Handoff {
    s: String,
    h: String,
    r: String,
    e: u64,
    n: String,
    b: String,
}

/// How long the binding cookie lives: the link's life plus the longest sign-in.
pub(crate) const BINDING_TTL: u64 = LINK_TTL + super::flow::STATE_TTL;

/// A hand-off that was opened: the session it names and where to go.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The session id.
    pub session: String,
    /// The return URL.
    pub return_url: String,
}

/// The one value of `key` in a hand-off query; a malformed, flooded or repeated query
/// is refused.
fn query_param(query: &str, key: &str) -> Option<String> {
    let params = Params::parse(query).ok()?;
    params.get(key).map(str::to_owned)
}

impl SignIn {
    /// `https://<authenticate host>/.pomerium/sign_in?pomerium_redirect_uri=<sealed>`.
    pub fn sign_in_link(&self, authenticate: &Url, return_url: &str, binding: &str) -> String {
        let link = SignInLink {
            r: return_url.to_owned(),
            e: clock::now() + LINK_TTL,
            b: binding.to_owned(),
        };
        let sealed = self
            .handoff
            .seal("sign_in", &serde_json::to_vec(&link).unwrap_or_default());
        let mut url = authenticate.clone();
        url.set_path("/.pomerium/sign_in");
        url.set_query(None);
        url.query_pairs_mut()
            .append_pair("pomerium_redirect_uri", &sealed);
        url.to_string()
    }

    /// Opens a sign-in link: its return URL (an http(s) URL on a known host) and its
    /// browser binding.
    pub fn open_sign_in_link(
        &self,
        query: &str,
        known_host: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(String, String), SignInError> {
        let sealed = query_param(query, "pomerium_redirect_uri").ok_or(SignInError::BadLink)?;
        let plain = self
            .handoff
            .open("sign_in", &sealed)
            .ok_or(SignInError::BadLink)?;
        let link: SignInLink = serde_json::from_slice(&plain).map_err(|_| SignInError::BadLink)?;
        if link.e < clock::now() {
            return Err(SignInError::BadLink);
        }
        check_return_url(&link.r, known_host)?;
        Ok((link.r, link.b))
    }

    /// The handoff URL on the return URL's host, carrying session `id`, for the browser
    /// holding `binding`.
    pub fn handoff_url(
        &self,
        id: &str,
        return_url: &str,
        binding: &str,
    ) -> Result<String, SignInError> {
        let target = Url::parse(return_url).map_err(|_| SignInError::BadLink)?;
        let host = authority(&target).ok_or(SignInError::BadLink)?;
        let handoff = Handoff {
            s: id.to_owned(),
            h: host,
            r: return_url.to_owned(),
            e: clock::now() + HANDOFF_TTL,
            n: random_token(16),
            b: binding.to_owned(),
        };
        let sealed = self
            .handoff
            .seal("handoff", &serde_json::to_vec(&handoff).unwrap_or_default());
        let mut url = target;
        url.set_path("/.pomerium/callback/");
        url.set_query(None);
        url.set_fragment(None);
        url.query_pairs_mut()
            .append_pair("pomerium_session", &sealed);
        Ok(url.to_string())
    }

    /// Opens a handoff arriving at `host` from a browser whose binding cookie holds
    /// `binding`. One use only.
    pub(crate) async fn open_handoff(
        &self,
        query: &str,
        host: &str,
        binding: Option<&str>,
    ) -> Result<Opened, SignInError> {
        let sealed = query_param(query, "pomerium_session").ok_or(SignInError::BadLink)?;
        let plain = self
            .handoff
            .open("handoff", &sealed)
            .ok_or(SignInError::BadLink)?;
        let h: Handoff = serde_json::from_slice(&plain).map_err(|_| SignInError::BadLink)?;
        if h.e < clock::now() || h.h != host {
            return Err(SignInError::BadLink);
        }
        // Compared in constant time; a missing cookie is another browser too.
        let same_browser = binding.is_some_and(|b| {
            b.len() == h.b.len()
                && b.bytes()
                    .zip(h.b.bytes())
                    .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                    == 0
        });
        if h.b.is_empty() || !same_browser {
            return Err(SignInError::OtherBrowser);
        }
        if !self.use_once(&h.n, h.e).await? {
            return Err(SignInError::BadLink);
        }
        Ok(Opened {
            session: h.s,
            return_url: h.r,
        })
    }
}

/// `host[:port]` of a URL.
pub(crate) fn authority(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

/// A return URL must be absolute http(s), without credentials, on a configured host.
pub(crate) fn check_return_url(
    text: &str,
    known_host: &dyn Fn(&str) -> bool,
) -> Result<(), SignInError> {
    let url = Url::parse(text).map_err(|_| SignInError::BadLink)?;
    let ok = matches!(url.scheme(), "https" | "http")
        && url.username().is_empty()
        && url.password().is_none()
        && url.host_str().is_some_and(known_host);
    if ok {
        Ok(())
    } else {
        Err(SignInError::BadLink)
    }
}
