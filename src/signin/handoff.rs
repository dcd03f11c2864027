//! Moving a session between hosts when `authenticate_service_url` is set.
//!
//! A route host sends the browser to the authenticate host with a sealed sign-in link
//! (its return URL and a 5-minute expiry, AEAD under a key derived from
//! `shared_secret`); after the callback, the authenticate host sends it back to
//! `https://<route host>/.pomerium/callback/` with a sealed, one-time, 60-second handoff
//! naming the session. Nothing unsealed is ever trusted, so neither hop can be turned
//! into an open redirect.

use serde::{Deserialize, Serialize};
use url::Url;

use super::{SignIn, SignInError};
use crate::clock;
use crate::seal::random_token;

const LINK_TTL: u64 = 300;
const HANDOFF_TTL: u64 = 60;

#[derive(Serialize, Deserialize)]
struct SignInLink {
    r: String,
    e: u64,
}

#[derive(Serialize, Deserialize)]
struct Handoff {
    s: String,
    h: String,
    r: String,
    e: u64,
    n: String,
}

fn query_param(query: &str, key: &str) -> Option<String> {
    let mut found = url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == key);
    let first = found.next()?;
    // A repeated parameter is ambiguous: refuse.
    if found.next().is_some() {
        None
    } else {
        Some(first.1.into_owned())
    }
}

impl SignIn {
    /// `https://<authenticate host>/.pomerium/sign_in?pomerium_redirect_uri=<sealed>`.
    pub fn sign_in_link(&self, authenticate: &Url, return_url: &str) -> String {
        let link = SignInLink {
            r: return_url.to_owned(),
            e: clock::now() + LINK_TTL,
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

    /// Opens a sign-in link's return URL; it must be an http(s) URL on a known host.
    pub fn open_sign_in_link(
        &self,
        query: &str,
        known_host: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<String, SignInError> {
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
        Ok(link.r)
    }

    /// The handoff URL on the return URL's host, carrying session `id`.
    pub fn handoff_url(&self, id: &str, return_url: &str) -> Result<String, SignInError> {
        let target = Url::parse(return_url).map_err(|_| SignInError::BadLink)?;
        let host = authority(&target).ok_or(SignInError::BadLink)?;
        let handoff = Handoff {
            s: id.to_owned(),
            h: host,
            r: return_url.to_owned(),
            e: clock::now() + HANDOFF_TTL,
            n: random_token(16),
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

    /// Opens a handoff arriving at `host`: (session id, return URL). One use only.
    pub async fn open_handoff(
        &self,
        query: &str,
        host: &str,
    ) -> Result<(String, String), SignInError> {
        let sealed = query_param(query, "pomerium_session").ok_or(SignInError::BadLink)?;
        let plain = self
            .handoff
            .open("handoff", &sealed)
            .ok_or(SignInError::BadLink)?;
        let h: Handoff = serde_json::from_slice(&plain).map_err(|_| SignInError::BadLink)?;
        if h.e < clock::now() || h.h != host || !self.use_once(&h.n, h.e).await? {
            return Err(SignInError::BadLink);
        }
        Ok((h.s, h.r))
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
