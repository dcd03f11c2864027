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

/// The most cookies read from one request. Browsers keep at most about 180 per site;
/// a request with more is treated as carrying none of them (so none of ours).
pub(crate) const MAX_COOKIES: usize = 256;

/// The most copies of the session cookie considered (see [`Cookies::session_ids`]).
pub(crate) const MAX_SESSION_COOKIES: usize = 4;

/// The cookies of one request.
#[derive(Debug, Default)]
pub struct CookieJar<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> CookieJar<'a> {
    /// Parses every `Cookie` header, in one linear pass; more than [`MAX_COOKIES`]
    /// cookies make an empty jar.
    pub fn from_headers(headers: &'a HeaderMap) -> Self {
        let mut pairs = Vec::new();
        let all = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'));
        for pair in all {
            let Some((k, v)) = pair.split_once('=') else {
                continue;
            };
            if pairs.len() == MAX_COOKIES {
                return Self::default();
            }
            pairs.push((k.trim(), v.trim().trim_matches('"')));
        }
        Self { pairs }
    }

    /// The value of `name` when it appears exactly once. A cookie sent twice is
    /// ambiguous (a classic cookie-tossing trick) and counts as absent.
    pub fn unique(&self, name: &str) -> Option<&'a str> {
        let mut it = self.all(name);
        let first = it.next()?;
        if it.next().is_some() {
            None
        } else {
            Some(first)
        }
    }

    /// Every value of cookie `name`, in the order sent.
    pub fn all<'b>(&'b self, name: &'b str) -> impl Iterator<Item = &'a str> + 'b {
        self.pairs
            .iter()
            .filter(move |(k, _)| *k == name)
            .map(|(_, v)| *v)
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

    /// The name of the cookie binding a hand-off to the browser that started the
    /// sign-in (with `authenticate_service_url`).
    pub fn binding_name(&self) -> String {
        format!("{}_handoff", self.settings.name)
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

    /// The distinct session ids in the request's session cookies (copies of one cookie,
    /// or two seals of one id, count once); values that do not open are skipped. More
    /// than [`MAX_SESSION_COOKIES`] session cookies yield none: no browser sends that
    /// many, and each could cost a store lookup.
    pub fn session_ids(&self, jar: &CookieJar<'_>) -> Vec<String> {
        let name = self.session_name();
        if jar.all(name).nth(MAX_SESSION_COOKIES).is_some() {
            return Vec::new();
        }
        let mut ids: Vec<String> = Vec::new();
        for value in jar.all(name) {
            let id = self
                .open(name, value)
                .and_then(|plain| String::from_utf8(plain).ok());
            if let Some(id) = id
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        ids
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
            c.session_ids(&CookieJar::from_headers(&headers)),
            vec!["abc".to_owned()]
        );
    }

    #[test]
    fn duplicates_tampering_and_foreign_keys_mean_no_session() {
        let c = cookies(false);
        let set = c.session_cookie("abc", 60);
        let value = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        assert!(!set.to_str().unwrap().contains("Secure"));
        let twice = jar_headers(&format!("{value}; {value}"));
        assert_eq!(
            c.session_ids(&CookieJar::from_headers(&twice)),
            vec!["abc".to_owned()],
            "copies of one cookie are one session"
        );
        let foreign = Cookies::new(c.settings.clone(), &[2; 32]);
        assert_eq!(
            foreign.session_ids(&CookieJar::from_headers(&jar_headers(&value))),
            Vec::<String>::new()
        );
        let truncated = &value[..value.len() - 4];
        assert_eq!(
            c.session_ids(&CookieJar::from_headers(&jar_headers(truncated))),
            Vec::<String>::new()
        );
        assert_eq!(
            c.session_ids(&CookieJar::from_headers(&jar_headers("_pomerium=garbage"))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn two_sessions_are_two_ids_and_floods_are_none() {
        let c = cookies(false);
        let value = |id: &str| {
            c.session_cookie(id, 60)
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        };
        let (a1, a2, b) = (value("a"), value("a"), value("b"));
        assert_ne!(a1, a2, "seals are randomised");
        let jar = jar_headers(&format!("{a1}; x=1; {a2}; _pomerium=junk"));
        assert_eq!(c.session_ids(&CookieJar::from_headers(&jar)), vec!["a"]);
        let jar = jar_headers(&format!("{a1}; {b}"));
        assert_eq!(
            c.session_ids(&CookieJar::from_headers(&jar)),
            vec!["a", "b"]
        );
        let five = [&a1; 5].map(|v| v.as_str()).join("; ");
        assert!(
            c.session_ids(&CookieJar::from_headers(&jar_headers(&five)))
                .is_empty()
        );
        let many: String = (0..MAX_COOKIES).map(|i| format!("c{i}=1; ")).collect();
        let jar = jar_headers(&format!("{many}{a1}"));
        assert!(
            c.session_ids(&CookieJar::from_headers(&jar)).is_empty(),
            "more than MAX_COOKIES: none of them is read"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any Cookie header: no panic, at most MAX_COOKIES pairs, and garbage never
        /// opens to a session; a genuine cookie among garbage is found.
        #[test]
        fn opening_any_cookie_header(garbage in "[ -~]{0,300}", with_real in proptest::prelude::any::<bool>()) {
            let c = cookies(false);
            let real = c.session_cookie("id-1", 60).to_str().unwrap().split(';').next().unwrap().to_owned();
            let text = if with_real { format!("{garbage}; {real}") } else { garbage.clone() };
            let Ok(value) = HeaderValue::from_str(&text) else { return Ok(()); };
            let mut h = HeaderMap::new();
            h.insert(COOKIE, value);
            let jar = CookieJar::from_headers(&h);
            proptest::prop_assert!(jar.pairs.len() <= MAX_COOKIES);
            let ids = c.session_ids(&jar);
            proptest::prop_assert!(ids.iter().all(|id| id == "id-1"));
            if with_real && jar.all("_pomerium").count() == 1 {
                proptest::prop_assert_eq!(ids, vec!["id-1".to_owned()]);
            }
        }
    }
}
