//! Logging: the `tracing` subscriber, request ids and the access log.
//!
//! Exactly one access-log line per request (target `portcullis::access`) with request
//! id, method, path without query values, route, status and duration. Query values,
//! cookies and tokens are never logged.
//!
//! The text log is one event per line whatever the events carry: its field formatter
//! ([`EscapedFields`]) escapes every control character (and the Unicode line and
//! paragraph separators) in every field and message, so attacker-controlled text — a
//! provider's `error`, a user agent, a path — can never start a line of its own.

use std::fmt::{self, Write as _};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Method, StatusCode};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the global subscriber. Our own events at `level`; dependencies at warn.
/// Safe to call more than once (later calls are ignored).
pub fn init(level: tracing::Level, json: bool) {
    let filter = Targets::new()
        .with_target("portcullis", level)
        .with_default(tracing::Level::WARN.min(level));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .try_init()
    } else {
        // Colours only for a terminal, never into log files.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .fmt_fields(EscapedFields),
            )
            .try_init()
    };
    // An already-installed subscriber (tests, embedding) is fine.
    drop(result);
}

/// The text log's field formatter: `name=value` pairs (the message bare, strings
/// quoted) like tracing-subscriber's default, with every control character escaped
/// (`\n`, `\r`, `\t`, else `\u{…}`), so no field can begin a new log line.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            out: Escaped(&mut writer),
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes each field through [`Escaped`].
struct EscapingVisitor<'a, 'w> {
    out: Escaped<&'a mut Writer<'w>>,
    first: bool,
    result: fmt::Result,
}

impl Visit for EscapingVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let name = field.name();
        self.result = if name == "message" {
            write!(self.out.0, "{separator}").and_then(|()| write!(self.out, "{value:?}"))
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(self.out.0, "{separator}{name}=").and_then(|()| write!(self.out, "{value:?}"))
        };
    }
}

/// A writer that escapes control characters and U+2028/U+2029 on their way through.
struct Escaped<W>(W);

impl<W: fmt::Write> fmt::Write for Escaped<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if !(c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')) {
                continue;
            }
            self.0.write_str(&s[start..i])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                _ => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            start = i + c.len_utf8();
        }
        self.0.write_str(&s[start..])
    }
}

/// A new request id: a per-process random prefix plus a counter, 16 hex digits.
pub fn request_id() -> RequestId {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        // Uniqueness, not secrecy: a failed RNG read still yields a usable (zero) prefix.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        u32::from_be_bytes(b)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u32;
    let id = (u64::from(prefix) << 32) | u64::from(n);
    let mut digits = [0u8; 16];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = b"0123456789abcdef"[((id >> (60 - 4 * i)) & 0xf) as usize];
    }
    RequestId(digits)
}

/// A request id: 16 lower-case hex digits, kept inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId([u8; 16]);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or("0000000000000000")
    }
}

impl std::ops::Deref for RequestId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// An error and its causes on one line (`client error (Connect): tcp connect error: …`),
/// formatted only when a log line is actually written.
pub fn error_chain(err: &dyn std::error::Error) -> ErrorChain<'_> {
    ErrorChain(err)
}

/// See [`error_chain`].
pub struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// `?a&b`: the query's parameter names without their values. An item without `=` is a
/// value (`?SECRET-TOKEN`), not a name: it is logged as `-`.
pub fn query_keys(query: Option<&str>) -> String {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let mut out = String::from("?");
    for (i, pair) in q.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) => out.push_str(name),
            None if pair.is_empty() => {}
            None => out.push('-'),
        }
    }
    out
}

/// One access-log line.
pub struct AccessRecord<'a> {
    /// Request id.
    pub request_id: &'a str,
    /// Method.
    pub method: &'a Method,
    /// Canonical path (or the raw path when it was refused).
    pub path: &'a str,
    /// The query, of which only parameter names are logged.
    pub query: Option<&'a str>,
    /// The route's name, if one matched.
    pub route: Option<&'a str>,
    /// Response status.
    pub status: StatusCode,
    /// Time to the response head.
    pub duration: Duration,
}

/// Writes the access-log line.
pub fn access(r: &AccessRecord<'_>) {
    tracing::info!(
        target: "portcullis::access",
        request_id = r.request_id,
        method = %r.method,
        path = r.path,
        query = %query_keys(r.query),
        route = r.route.unwrap_or("-"),
        status = r.status.as_u16(),
        duration_ms = r.duration.as_secs_f64() * 1000.0,
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_dropped() {
        assert_eq!(query_keys(Some("code=SECRET&state=abc&x")), "?code&state&-");
        assert_eq!(query_keys(Some("SECRET-TOKEN")), "?-");
        assert_eq!(query_keys(Some("a=&&b=1")), "?a&&b");
        assert_eq!(query_keys(None), "");
    }

    /// Formats one event with the text layer as `init` installs it.
    fn text_line(emit: impl FnOnce()) -> String {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .fmt_fields(EscapedFields)
                .with_writer(move || SharedBuf(sink.clone())),
        );
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buf.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuf {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn no_field_starts_a_new_line() {
        let forged =
            "denied\n2026-01-01T00:00:00Z  INFO portcullis::access: forged\r\u{1b}[31m\u{2028}";
        let line = text_line(|| {
            tracing::warn!(
                error = %forged,
                agent = forged,
                debug = ?forged,
                "callback failed: {forged}"
            );
        });
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.ends_with('\n') && !line.contains('\r') && !line.contains('\u{1b}'));
        assert!(!line.contains('\u{2028}'), "{line}");
        assert!(line.contains("error=denied\\n2026"), "{line}");
        assert!(line.contains("callback failed: denied\\n"), "{line}");
        assert!(line.contains("\\u{1b}[31m"), "{line}");
        assert!(
            line.contains(r#"agent="denied\n"#),
            "strings stay quoted: {line}"
        );
    }

    #[test]
    fn request_ids_are_unique_and_fixed_width() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        let (x, y) = (
            u64::from_str_radix(&a, 16).unwrap(),
            u64::from_str_radix(&b, 16).unwrap(),
        );
        assert_eq!(x >> 32, y >> 32, "one prefix per process");
    }
}
