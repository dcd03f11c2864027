//! Path and host normalisation for the canonical request view.
//!
//! One set of rules, applied once: percent-encodings of unreserved characters are decoded
//! and the rest upper-cased, dot-segments are resolved, repeated slashes merged. An
//! encoded slash (`%2F`), a backslash (raw or `%5C`), NUL, a raw `#`, an encoded `#` or
//! `?` (`%23`, `%3F`), a `.`/`..` (or empty) segment carrying `;` parameters (`..;`,
//! which Tomcat and Spring read as `..`) and a path whose percent-decoding is not UTF-8
//! (overlong `%C0%AE`) are refused: they are the classic ways to make a router and an
//! upstream disagree about a path.

use std::borrow::Cow;

/// Why a request target or host was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    /// `%2F` in the path.
    #[error("encoded slash (%2F) in the path")]
    EncodedSlash,
    /// `\` or `%5C` in the path.
    #[error("backslash in the path")]
    Backslash,
    /// NUL (raw or `%00`) in the path.
    #[error("NUL in the path")]
    Nul,
    /// A raw `#` in the request target.
    #[error("fragment (#) in the request target")]
    Fragment,
    /// `%23` or `%3F`: a decoding upstream would cut the path there.
    #[error("encoded # or ? in the path")]
    EncodedDelimiter,
    /// A segment `.`, `..` or empty, with `;` parameters (`/..;/`).
    #[error("dot-segment with ; parameters in the path")]
    DotSegmentParameters,
    /// The percent-decoded path is not UTF-8 (e.g. an overlong `%C0%AE`).
    #[error("the decoded path is not UTF-8")]
    InvalidUtf8,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-encoding in the path")]
    BadPercent,
    /// The path does not start with `/`.
    #[error("the request target is not an absolute path")]
    NotAbsolute,
    /// The host is empty or has characters no host name has.
    #[error("invalid host")]
    BadHost,
}

/// Normalises a request path. Returns the input unchanged (borrowed) when it is
/// already canonical, which is the common case.
pub fn path(raw: &str) -> Result<Cow<'_, str>, NormalizeError> {
    if !raw.starts_with('/') {
        return Err(NormalizeError::NotAbsolute);
    }
    let bytes = raw.as_bytes();
    let mut needs_work = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\\' => return Err(NormalizeError::Backslash),
            b'#' => return Err(NormalizeError::Fragment),
            0 => return Err(NormalizeError::Nul),
            b'%' => needs_work = true,
            b'/' if bytes.get(i + 1) == Some(&b'/') => needs_work = true,
            b'.' | b';' if bytes[i - 1] == b'/' => needs_work = true,
            _ => {}
        }
    }
    if !needs_work {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = decode_unreserved(raw)?;
    Ok(Cow::Owned(remove_dot_segments(&decoded)?))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` for unreserved characters, upper-cases the others, refuses the
/// dangerous ones.
fn decode_unreserved(raw: &str) -> Result<String, NormalizeError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut high = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            // Safe: we only split at ASCII '%', so this is a char boundary walk.
            let next = raw[i..].find('%').map_or(bytes.len(), |n| i + n);
            out.push_str(&raw[i..next]);
            i = next;
            continue;
        }
        let (Some(h), Some(l)) = (
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) else {
            return Err(NormalizeError::BadPercent);
        };
        let c = h * 16 + l;
        match c {
            b'/' => return Err(NormalizeError::EncodedSlash),
            b'\\' => return Err(NormalizeError::Backslash),
            0 => return Err(NormalizeError::Nul),
            b'#' | b'?' => return Err(NormalizeError::EncodedDelimiter),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(c as char)
            }
            _ => {
                high |= c >= 0x80;
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(h)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(l)]));
            }
        }
        i += 3;
    }
    if high && !decodes_to_utf8(&out) {
        return Err(NormalizeError::InvalidUtf8);
    }
    Ok(out)
}

/// Whether `encoded` (valid `%XX` escapes only) decodes to UTF-8. Only paths with an
/// encoded non-ASCII byte get here.
fn decodes_to_utf8(encoded: &str) -> bool {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        );
        match (bytes[i], escape) {
            (b'%', (Some(h), Some(l))) => {
                decoded.push(h * 16 + l);
                i += 3;
            }
            (b, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

/// RFC 3986 §5.2.4 dot-segment removal, also merging empty segments (`//`).
/// A trailing `/` (or a trailing `.`/`..` segment) leaves a trailing slash. A `.`, `..`
/// or empty segment with `;` parameters is refused: servlet containers drop the
/// parameters and would resolve what we kept as a name.
fn remove_dot_segments(path: &str) -> Result<String, NormalizeError> {
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let mut trailing_slash = false;
    for (i, seg) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if let Some((name, _)) = seg.split_once(';')
            && matches!(name, "" | "." | "..")
        {
            return Err(NormalizeError::DotSegmentParameters);
        }
        match *seg {
            "." => trailing_slash = last,
            ".." => {
                segments.pop();
                trailing_slash = last;
            }
            "" => trailing_slash = last,
            s => {
                segments.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Splits and normalises an authority (`Host` header or absolute-form target):
/// lower-cases, drops a trailing dot and a port equal to the scheme's default.
/// Returns (host, explicit non-default port).
pub fn host(authority: &str, tls: bool) -> Result<(Cow<'_, str>, Option<u16>), NormalizeError> {
    let (name, port) = split_port(authority)?;
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty()
        || !name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':')
        })
    {
        return Err(NormalizeError::BadHost);
    }
    let default = if tls { 443 } else { 80 };
    let port = port.filter(|p| *p != default);
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    };
    Ok((name, port))
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), NormalizeError> {
    if authority.contains('@') {
        return Err(NormalizeError::BadHost);
    }
    // IPv6 literal: [::1]:443
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or(NormalizeError::BadHost)?;
        let (h, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(p) => Ok((h, Some(p.parse().map_err(|_| NormalizeError::BadHost)?))),
            None if rest.is_empty() => Ok((h, None)),
            None => Err(NormalizeError::BadHost),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Ok((h, Some(p.parse().map_err(|_| NormalizeError::BadHost)?))),
        None => Ok((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_are_borrowed() {
        assert!(matches!(
            path("/a/b.txt").unwrap(),
            Cow::Borrowed("/a/b.txt")
        ));
    }

    #[test]
    fn normalises() {
        let cases = [
            ("/a/../b", "/b"),
            ("/a/./b/", "/a/b/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("//admin", "/admin"),
            ("/a//b", "/a/b"),
            ("/%61dmin", "/admin"),
            ("/a/%2e%2e/admin", "/admin"),
            ("/a/%2E%2e/", "/"),
            ("/x%3ay", "/x%3Ay"),
            ("/a/..", "/"),
            ("/a/b/.", "/a/b/"),
            ("/", "/"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/app;jsessionid=1/x", "/app;jsessionid=1/x"),
            ("/a/b;v=1/../c", "/a/c"),
            ("/a/..%3B/b", "/a/..%3B/b"),
        ];
        for (raw, want) in cases {
            assert_eq!(path(raw).unwrap(), want, "{raw}");
        }
    }

    #[test]
    fn refuses_dangerous_paths() {
        let cases = [
            ("/a%2Fb", NormalizeError::EncodedSlash),
            ("/a%2fb", NormalizeError::EncodedSlash),
            ("/a\\b", NormalizeError::Backslash),
            ("/a%5cb", NormalizeError::Backslash),
            ("/a%00", NormalizeError::Nul),
            ("/a#b", NormalizeError::Fragment),
            ("/a%zz", NormalizeError::BadPercent),
            ("/a%2", NormalizeError::BadPercent),
            ("/public/..;/secret", NormalizeError::DotSegmentParameters),
            (
                "/pol/open/..;x=1/secret",
                NormalizeError::DotSegmentParameters,
            ),
            ("/a/.;/b", NormalizeError::DotSegmentParameters),
            ("/a/%2e%2e;/b", NormalizeError::DotSegmentParameters),
            ("/;x/secret", NormalizeError::DotSegmentParameters),
            ("/foo/secret%23/bar", NormalizeError::EncodedDelimiter),
            ("/foo/secret%3f/bar", NormalizeError::EncodedDelimiter),
            ("/%C0%AE%C0%AE/secret", NormalizeError::InvalidUtf8),
            ("/a%FF", NormalizeError::InvalidUtf8),
            ("/a%C3", NormalizeError::InvalidUtf8),
            ("a", NormalizeError::NotAbsolute),
            ("*", NormalizeError::NotAbsolute),
        ];
        for (raw, want) in cases {
            assert_eq!(path(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host("App.Example.COM.", true).unwrap(),
            (Cow::Borrowed("app.example.com"), None)
        );
        assert_eq!(host("a.example.com:443", true).unwrap().1, None);
        assert_eq!(host("a.example.com:80", false).unwrap().1, None);
        assert_eq!(host("a.example.com:8443", true).unwrap().1, Some(8443));
        assert_eq!(
            host("[::1]:8443", true).unwrap(),
            (Cow::Borrowed("[::1]"), Some(8443))
        );
        for bad in ["", "a b", "user@host", "a.com:x", "a/b", "a\\b"] {
            assert!(host(bad, true).is_err(), "{bad}");
        }
    }
}
