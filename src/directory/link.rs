//! `Link` response headers (RFC 8288), as far as paging needs them.
//!
//! ```text
//! Link       = #link-value
//! link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )
//! link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
//! ```
//!
//! A header may carry several links and a response several `Link` headers; commas and
//! semicolons may appear inside `<…>` and quoted strings; `rel` may be quoted and hold
//! several space-separated relation types, compared case-insensitively; only the first
//! `rel` of a link counts. Malformed link-values are skipped, not fatal.

use http::HeaderMap;
use url::Url;

/// One parsed link-value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Link {
    /// The URI-Reference between `<` and `>`, unresolved.
    pub target: String,
    /// The relation types of the first `rel` parameter, lower-cased.
    pub rels: Vec<String>,
}

/// The first link with relation type `next` among all `Link` headers, resolved against
/// `request_url`. `Err` when its target is not a valid URI reference.
pub(crate) fn next_link(headers: &HeaderMap, request_url: &Url) -> Result<Option<Url>, String> {
    let next = headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse)
        .find(|l| l.rels.iter().any(|r| r == "next"));
    match next {
        None => Ok(None),
        Some(link) => request_url
            .join(&link.target)
            .map(Some)
            .map_err(|e| format!("bad next link: {e}")),
    }
}

/// Parses one `Link` header value.
pub(crate) fn parse(value: &str) -> Vec<Link> {
    let mut p = Parser {
        s: value.as_bytes(),
        i: 0,
    };
    let mut links = Vec::new();
    loop {
        p.skip(|b| b == b',' || is_ows(b));
        if p.at_end() {
            return links;
        }
        match p.link_value() {
            Some(link) => links.push(link),
            None => p.skip_to_next_value(),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, pred: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.i += 1;
        }
    }

    fn take(&mut self, pred: impl Fn(u8) -> bool) -> &str {
        let start = self.i;
        self.skip(pred);
        // Only ASCII bytes are taken by the callers' predicates, so this cannot fail.
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default()
    }

    /// One link-value; `None` when malformed (the position is then somewhere inside it).
    fn link_value(&mut self) -> Option<Link> {
        if self.peek()? != b'<' {
            return None;
        }
        self.i += 1;
        let start = self.i;
        let end = start + self.s[start..].iter().position(|&b| b == b'>')?;
        let target = std::str::from_utf8(&self.s[start..end])
            .ok()?
            .trim()
            .to_owned();
        self.i = end + 1;
        // A URI-Reference never holds `<`: `<<…>` is malformed, not a link to `<…`.
        if target.contains('<') {
            return None;
        }
        let mut rels = None;
        loop {
            self.skip(is_ows);
            match self.peek() {
                None | Some(b',') => {
                    return Some(Link {
                        target,
                        rels: rels.unwrap_or_default(),
                    });
                }
                Some(b';') => self.i += 1,
                Some(_) => return None,
            }
            self.skip(is_ows);
            let name = self.take(is_tchar).to_ascii_lowercase();
            if name.is_empty() {
                return None;
            }
            self.skip(is_ows);
            let value = if self.peek() == Some(b'=') {
                self.i += 1;
                self.skip(is_ows);
                if self.peek() == Some(b'"') {
                    self.quoted()?
                } else {
                    self.take(is_tchar).to_owned()
                }
            } else {
                String::new()
            };
            // RFC 8288 §3.3: occurrences of `rel` after the first are ignored.
            if name == "rel" && rels.is_none() {
                rels = Some(
                    value
                        .split_ascii_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect(),
                );
            }
        }
    }

    /// A quoted-string starting at `"`, with `\` escapes; `None` when unterminated.
    fn quoted(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    out.push(self.peek()?);
                    self.i += 1;
                }
                _ => out.push(b),
            }
        }
    }

    /// Recovers from a malformed link-value: skips to the next comma that is outside
    /// `<…>` and quoted strings.
    fn skip_to_next_value(&mut self) {
        let (mut in_uri, mut in_quotes) = (false, false);
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'\\' if in_quotes => self.i += 1,
                b'"' if !in_uri => in_quotes = !in_quotes,
                b'<' if !in_quotes => in_uri = true,
                b'>' if !in_quotes => in_uri = false,
                b',' if !in_uri && !in_quotes => return,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod props {
    //! Property tests: any header value parses without panicking; every link found has a
    //! target without `<`/`>` and lower-case relation types without spaces; a `next`
    //! link, when found, resolves against the request URL.

    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("<".to_owned()),
            Just(">".to_owned()),
            Just(";".to_owned()),
            Just(",".to_owned()),
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just(" ".to_owned()),
            Just("=".to_owned()),
            Just("rel".to_owned()),
            Just("NEXT".to_owned()),
            Just("next".to_owned()),
            Just("https://o.example/api?after=1".to_owned()),
            "[ -~]{0,6}",
        ];
        proptest::collection::vec(piece, 0..20).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn links_parse_without_panicking(v in value(), other in any::<String>()) {
            for link in parse(&v).into_iter().chain(parse(&other)) {
                prop_assert!(!link.target.contains(['<', '>']), "{link:?}");
                for rel in &link.rels {
                    prop_assert!(!rel.is_empty() && !rel.contains(char::is_whitespace), "{link:?}");
                    prop_assert_eq!(rel.to_lowercase(), rel.clone());
                }
            }
            let mut headers = HeaderMap::new();
            if let Ok(h) = http::HeaderValue::from_str(&v) {
                headers.insert(http::header::LINK, h);
            }
            let base = Url::parse("https://o.example/api/v1/users/x/groups").unwrap();
            let _ = next_link(&headers, &base);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(target: &str, rels: &[&str]) -> Link {
        Link {
            target: target.into(),
            rels: rels.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn a_target_with_angle_brackets_is_malformed() {
        assert_eq!(parse("<<>"), []);
        assert_eq!(
            parse("<<x>; rel=next, </b>; rel=next"),
            [link("/b", &["next"])]
        );
    }

    #[test]
    fn okta_style_links() {
        assert_eq!(
            parse(
                r#"<https://acme.okta.com/api/v1/users/u/groups?limit=200>; rel="self", <https://acme.okta.com/api/v1/users/u/groups?after=00g2&limit=200>; rel="next""#
            ),
            [
                link(
                    "https://acme.okta.com/api/v1/users/u/groups?limit=200",
                    &["self"]
                ),
                link(
                    "https://acme.okta.com/api/v1/users/u/groups?after=00g2&limit=200",
                    &["next"]
                ),
            ]
        );
    }

    #[test]
    fn tokens_quotes_lists_and_case() {
        assert_eq!(parse("</a>;rel=next"), [link("/a", &["next"])]);
        assert_eq!(
            parse(r#"</a> ; title="x, y; z" ; REL="Prev NEXT""#),
            [link("/a", &["prev", "next"])]
        );
        // Commas and semicolons inside the URI reference are part of it.
        assert_eq!(
            parse(r#"</a?x=1,2;3>; rel="next""#),
            [link("/a?x=1,2;3", &["next"])]
        );
        // Escapes in quoted strings; only the first rel counts.
        assert_eq!(
            parse(r#"</a>; title="a \"q\", b"; rel=self; rel=next"#),
            [link("/a", &["self"])]
        );
        // Parameters without a value, and no rel at all.
        assert_eq!(parse("</a>; crossorigin"), [link("/a", &[])]);
    }

    #[test]
    fn malformed_values_are_skipped() {
        assert_eq!(
            parse(r#"garbage, </b>; rel="next""#),
            [link("/b", &["next"])]
        );
        assert_eq!(
            parse(r#"</a> junk; rel=next, </b>; rel=next"#),
            [link("/b", &["next"])]
        );
        assert_eq!(parse(r#"</a>; title="unterminated, </b>; rel=next"#), []);
        assert_eq!(parse("<no-end; rel=next"), []);
        assert_eq!(parse(""), []);
        assert_eq!(parse(" , ,"), []);
    }

    #[test]
    fn next_across_several_headers_resolved_against_the_request() {
        let mut h = HeaderMap::new();
        h.append(
            "link",
            r#"</api/v1/users/u/groups?limit=2>; rel="self""#.parse().unwrap(),
        );
        h.append("link", r#"<?after=x&limit=2>; rel="next""#.parse().unwrap());
        let base = Url::parse("https://acme.okta.com/api/v1/users/u/groups?limit=2").unwrap();
        assert_eq!(
            next_link(&h, &base).unwrap().unwrap().as_str(),
            "https://acme.okta.com/api/v1/users/u/groups?after=x&limit=2"
        );
        assert_eq!(next_link(&HeaderMap::new(), &base).unwrap(), None);
        let mut only_self = HeaderMap::new();
        only_self.append("link", "</x>; rel=self".parse().unwrap());
        assert_eq!(next_link(&only_self, &base).unwrap(), None);
        let mut bad = HeaderMap::new();
        bad.append("link", "<http://[::1>; rel=next".parse().unwrap());
        assert!(next_link(&bad, &base).is_err());
    }
}
