//! Query parameters of the sign-in endpoints (`/oauth2/callback`, `/.pomerium/sign_in`,
//! `/.pomerium/callback/`), which anyone can send.
//!
//! Parsing is linear and bounded: at most [`MAX_PARAMS`] parameters (more is refused at
//! once, before any is decoded past the limit), and a parameter given twice is refused,
//! found with a set rather than by comparing each name with every earlier one.

use std::borrow::Cow;
use std::collections::HashSet;

/// The most parameters a sign-in endpoint accepts. A provider's callback carries a
/// handful (`code`, `state`, `iss`, `scope`, `session_state`, `error`, …).
pub(crate) const MAX_PARAMS: usize = 32;

/// Why a query was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParamsError {
    /// More than [`MAX_PARAMS`] parameters.
    #[error("too many parameters")]
    TooMany,
    /// A name given twice: ambiguous, so refused.
    #[error("a parameter appears twice")]
    Repeated,
}

impl ParamsError {
    /// The reason, for logs.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            ParamsError::TooMany => "too many parameters",
            ParamsError::Repeated => "a parameter appears twice",
        }
    }
}

/// Decoded query parameters, each name at most once.
#[derive(Debug)]
pub(crate) struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    /// Parses `query` (`application/x-www-form-urlencoded`).
    pub(crate) fn parse(query: &'a str) -> Result<Self, ParamsError> {
        let mut pairs = Vec::new();
        let mut seen = HashSet::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if pairs.len() == MAX_PARAMS {
                return Err(ParamsError::TooMany);
            }
            if !seen.insert(k.clone()) {
                return Err(ParamsError::Repeated);
            }
            pairs.push((k, v));
        }
        Ok(Self(pairs))
    }

    /// The value of `key`, if given.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn duplicates_and_floods_are_refused() {
        let p = Params::parse("code=a&state=b&iss=c").unwrap();
        assert_eq!(p.get("state"), Some("b"));
        assert_eq!(p.get("nope"), None);
        assert_eq!(
            Params::parse("code=a&state=b&code=c").unwrap_err(),
            ParamsError::Repeated
        );
        // Percent-encoding does not hide a repeat.
        assert_eq!(
            Params::parse("code=a&%63ode=b").unwrap_err(),
            ParamsError::Repeated
        );
        let flood: String = (0..16_000).map(|i| format!("p{i}=&")).collect();
        assert_eq!(Params::parse(&flood).unwrap_err(), ParamsError::TooMany);
        let at_limit: String = (0..MAX_PARAMS).map(|i| format!("p{i}=x&")).collect();
        assert!(Params::parse(&at_limit).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any query: no panic; accepted exactly when it has at most MAX_PARAMS distinct
        /// names; every accepted name maps to its one value.
        #[test]
        fn parsing_any_query(query in "[a-c=&%0-9]{0,120}") {
            let decoded: Vec<(String, String)> =
                url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let names: HashSet<&str> = decoded.iter().map(|(k, _)| k.as_str()).collect();
            match Params::parse(&query) {
                Ok(p) => {
                    prop_assert!(decoded.len() <= MAX_PARAMS);
                    prop_assert_eq!(names.len(), decoded.len());
                    for (k, v) in &decoded {
                        prop_assert_eq!(p.get(k), Some(v.as_str()));
                    }
                }
                Err(ParamsError::TooMany) => prop_assert!(decoded.len() > MAX_PARAMS),
                Err(ParamsError::Repeated) => prop_assert!(names.len() < decoded.len()),
            }
        }
    }
}
