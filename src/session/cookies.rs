//! Our cookies: reading them from a request, sealing and opening their values, and
//! writing `Set-Cookie` headers with the configured attributes.
//!
//! Attributes are always `Path=/` and `HttpOnly` (unless configured off), `Secure`
//! unless `insecure_server`, `SameSite` from `cookie_same_site`, host-only unless
//! `cookie_domain` — which keeps a name such as `__Host-session` valid.

use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};

use crate::config::auth::{Cookie as CookieSettings, SameSite};
use crate::seal::Sealer;

/// The cookies of one request.
#[derive(Debug, Default)]
pub struct CookieJar<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> CookieJar<'a> {
    /// Parses every `Cookie` header.
    pub fn from_headers(headers: &'a HeaderMap) -> Self {
        let pairs = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                Some((k.trim(), v.trim().trim_matches('"')))
            })
            .collect();
        Self { pairs }
    }

    /// The value of `name` when it appears exactly once. A cookie sent twice is
    /// ambiguous (a classic cookie-tossing trick) and counts as absent.
    pub fn unique(&self, name: &str) -> Option<&'a str> {
        let mut it = self.pairs.iter().filter(|(k, _)| *k == name);
        let first = it.next()?;
        if it.next().is_some() {
            None
        } else {
            Some(first.1)
        }
    }

    /// Every `(name, value)` whose name starts with `prefix`.
    pub fn with_prefix<'b>(
        &'b self,
        prefix: &'b str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'b {
        self.pairs
            .iter()
            .copied()
            .filter(move |(k, _)| k.starts_with(prefix))
    }
}

/// Seals and writes our cookies.
#[derive(Debug)]
pub struct Cookies {
    /// Cookie attributes from the configuration.
    pub settings: CookieSettings,
    sealer: Sealer,
}

impl Cookies {
    /// Cookies sealed under `cookie_secret`.
    pub fn new(settings: CookieSettings, cookie_secret: &[u8; 32]) -> Self {
        Self {
            settings,
            sealer: Sealer::new(cookie_secret, "cookies"),
        }
    }

    /// The session cookie's name.
    pub fn session_name(&self) -> &str {
        &self.settings.name
    }

    /// The name of the state cookie of one sign-in flow.
    pub fn state_name(&self, state: &str) -> String {
        let tag: String = state
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        format!("{}_state_{tag}", self.settings.name)
    }

    /// The prefix every state cookie name starts with.
    pub fn state_prefix(&self) -> String {
        format!("{}_state_", self.settings.name)
    }

    /// Seals `plaintext` as the value of cookie `name`.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> String {
        self.sealer.seal(name, plaintext)
    }

    /// Opens the value of cookie `name`.
    pub fn open(&self, name: &str, value: &str) -> Option<Vec<u8>> {
        self.sealer.open(name, value)
    }

    /// The session id in the request's session cookie, if there is exactly one valid one.
    pub fn session_id(&self, jar: &CookieJar<'_>) -> Option<String> {
        let value = jar.unique(self.session_name())?;
        let plain = self.open(self.session_name(), value)?;
        String::from_utf8(plain).ok()
    }

    /// `Set-Cookie` for the session cookie carrying `id`, living `max_age` seconds.
    pub fn session_cookie(&self, id: &str, max_age: u64) -> HeaderValue {
        let value = self.seal(self.session_name(), id.as_bytes());
        self.set_cookie(
            self.session_name(),
            &value,
            max_age,
            self.settings.same_site,
        )
    }

    /// `Set-Cookie` for a state cookie (always `SameSite=Lax`: it must come back on the
    /// provider's top-level redirect).
    pub fn state_cookie(&self, name: &str, value: &str, max_age: u64) -> HeaderValue {
        let same_site = if self.settings.same_site == SameSite::None {
            SameSite::None
        } else {
            SameSite::Lax
        };
        self.set_cookie(name, value, max_age, same_site)
    }

    /// `Set-Cookie` that deletes cookie `name`.
    pub fn clear(&self, name: &str) -> HeaderValue {
        self.set_cookie(name, "", 0, self.settings.same_site)
    }

    fn set_cookie(
        &self,
        name: &str,
        value: &str,
        max_age: u64,
        same_site: SameSite,
    ) -> HeaderValue {
        let s = &self.settings;
        let mut out = format!("{name}={value}; Path=/; Max-Age={max_age}");
        if let Some(domain) = &s.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        if s.http_only {
            out.push_str("; HttpOnly");
        }
        if s.secure {
            out.push_str("; Secure");
        }
        out.push_str(match same_site {
            SameSite::Lax => "; SameSite=Lax",
            SameSite::Strict => "; SameSite=Strict",
            SameSite::None => "; SameSite=None",
        });
        // Names are validated at load and values are base64url: always a valid header.
        HeaderValue::from_str(&out)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cookies(secure: bool) -> Cookies {
        let settings = CookieSettings {
            name: "_pomerium".into(),
            domain: None,
            http_only: true,
            secure,
            expire: Duration::from_secs(3600),
            same_site: SameSite::Lax,
        };
        Cookies::new(settings, &[1; 32])
    }

    fn jar_headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn session_cookie_round_trip_and_attributes() {
        let c = cookies(true);
        let set = c.session_cookie("abc", 3600);
        let text = set.to_str().unwrap();
        assert!(
            text.contains("; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"),
            "{text}"
        );
        assert!(!text.contains("Domain"));
        let value = text.split(';').next().unwrap();
        let headers = jar_headers(&format!("other=1; {value}"));
        assert_eq!(
            c.session_id(&CookieJar::from_headers(&headers)).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn duplicates_tampering_and_foreign_keys_mean_no_session() {
        let c = cookies(false);
        let set = c.session_cookie("abc", 60);
        let value = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        assert!(!set.to_str().unwrap().contains("Secure"));
        let twice = jar_headers(&format!("{value}; {value}"));
        assert_eq!(c.session_id(&CookieJar::from_headers(&twice)), None);
        let foreign = Cookies::new(c.settings.clone(), &[2; 32]);
        assert_eq!(
            foreign.session_id(&CookieJar::from_headers(&jar_headers(&value))),
            None
        );
        let truncated = &value[..value.len() - 4];
        assert_eq!(
            c.session_id(&CookieJar::from_headers(&jar_headers(truncated))),
            None
        );
        assert_eq!(
            c.session_id(&CookieJar::from_headers(&jar_headers("_pomerium=garbage"))),
            None
        );
    }
}
