//! `set_request_headers` value templates, parsed once at config load (rendered by the
//! forward stage, `crate::identity::inject`, for each request).
//!
//! Supported: `${pomerium.id_token}`, `${pomerium.access_token}`, `${pomerium.jwt}` (the
//! identity assertion), `${pomerium.request.headers["X-Name"]}` (the client's request
//! header, name matched case-insensitively, several values joined with `, `), and `$$`
//! for a literal `$`. A `$` followed by anything else is kept literally (`$5`). Any
//! other `${…}` — an unknown name, Pomerium's client-certificate values (Portcullis
//! does no client-certificate auth), or a `${` with no `}` — fails at load with a
//! message that says what is accepted. A value that is not available renders empty.

use http::{HeaderMap, HeaderName};

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    IdToken,
    AccessToken,
    Jwt,
    RequestHeader(HeaderName),
}

/// What a template can refer to, for one request. `Debug` redacts the tokens.
#[derive(Clone, Copy)]
pub struct TemplateContext<'a> {
    /// The session's ID token.
    pub id_token: Option<&'a str>,
    /// The session's access token.
    pub access_token: Option<&'a str>,
    /// The identity assertion (`X-Pomerium-Jwt-Assertion`).
    pub jwt: Option<&'a str>,
    /// The client's request headers.
    pub request_headers: &'a HeaderMap,
}

impl std::fmt::Debug for TemplateContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |v: Option<&str>| v.map(|_| "<redacted>");
        f.debug_struct("TemplateContext")
            .field("id_token", &redact(self.id_token))
            .field("access_token", &redact(self.access_token))
            .field("jwt", &redact(self.jwt))
            .field("request_headers", &self.request_headers.len())
            .finish()
    }
}

const ACCEPTED: &str = "${pomerium.id_token}, ${pomerium.access_token}, ${pomerium.jwt}, \
                        ${pomerium.request.headers[\"Header-Name\"]}, or $$ for a literal $";

impl Template {
    /// Parses `text`. The error says what is wrong and what is accepted.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                literal.push('$');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('{') {
                let Some(end) = inner.find('}') else {
                    return Err(format!(
                        "`${{` at byte {} has no closing `}}`; use $$ for a literal $",
                        text.len() - rest.len() + at
                    ));
                };
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                parts.push(variable(&inner[..end])?);
                rest = &inner[end + 1..];
            } else {
                literal.push('$');
                rest = after;
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// Whether the template uses the identity assertion (`${pomerium.jwt}`).
    pub fn uses_jwt(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Jwt))
    }

    /// Whether the template has no variables (its text can be used as is).
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The text for one request.
    pub fn render(&self, ctx: &TemplateContext<'_>) -> String {
        if let [Part::Text(text)] = self.parts.as_slice() {
            return text.clone();
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::IdToken => out.push_str(ctx.id_token.unwrap_or_default()),
                Part::AccessToken => out.push_str(ctx.access_token.unwrap_or_default()),
                Part::Jwt => out.push_str(ctx.jwt.unwrap_or_default()),
                Part::RequestHeader(name) => {
                    for (i, value) in ctx.request_headers.get_all(name).iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        out.push_str(&String::from_utf8_lossy(value.as_bytes()));
                    }
                }
            }
        }
        out
    }
}

/// One `${…}` body.
fn variable(name: &str) -> Result<Part, String> {
    match name {
        "pomerium.id_token" => return Ok(Part::IdToken),
        "pomerium.access_token" => return Ok(Part::AccessToken),
        "pomerium.jwt" => return Ok(Part::Jwt),
        "pomerium.client_cert_fingerprint"
        | "pomerium.client_cert_san_dns"
        | "pomerium.client_cert_san_email" => {
            return Err(format!(
                "`${{{name}}}` is not supported: Portcullis does not authenticate client certificates; accepted: {ACCEPTED}"
            ));
        }
        _ => {}
    }
    if let Some(quoted) = name
        .strip_prefix("pomerium.request.headers[")
        .and_then(|s| s.strip_suffix(']'))
    {
        let header = quoted
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .or_else(|| quoted.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
            .ok_or_else(|| {
                format!("`${{{name}}}`: the header name must be quoted, as in ${{pomerium.request.headers[\"X-Name\"]}}")
            })?;
        return HeaderName::from_bytes(header.as_bytes())
            .map(Part::RequestHeader)
            .map_err(|_| format!("`${{{name}}}`: `{header}` is not a valid header name"));
    }
    Err(format!(
        "unknown template variable `${{{name}}}`; accepted: {ACCEPTED}"
    ))
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
