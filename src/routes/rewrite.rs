//! Upstream path rewriting: `prefix_rewrite`, `regex_rewrite_*`, and the implicit
//! prefix rewrite of a path in `to`. Works on the canonical (normalised) path only.

use std::borrow::Cow;

use crate::config::route::{PathMatch, PathRewrite, RouteSpec};

/// The path to send upstream for a request path that matched `spec`.
pub fn upstream_path<'a>(spec: &RouteSpec, path: &'a str) -> Cow<'a, str> {
    match &spec.rewrite {
        PathRewrite::None => Cow::Borrowed(path),
        PathRewrite::Prefix(new) => {
            let matched = match &spec.path_match {
                PathMatch::Prefix(p) | PathMatch::Exact(p) => p.len(),
                PathMatch::Regex(_) => 0,
            };
            let rest = &path[matched.min(path.len())..];
            let mut out = String::with_capacity(new.len() + rest.len() + 1);
            out.push_str(new);
            // Join without doubling or losing the slash between the two parts.
            match (new.ends_with('/'), rest.starts_with('/')) {
                (true, true) => out.push_str(&rest[1..]),
                _ => out.push_str(rest),
            }
            if !out.starts_with('/') {
                out.insert(0, '/');
            }
            Cow::Owned(out)
        }
        PathRewrite::Regex {
            pattern,
            substitution,
        } => {
            let replaced = pattern.replace_all(path, substitution.as_str());
            let mut out = if replaced.starts_with('/') {
                replaced
            } else {
                Cow::Owned(format!("/{replaced}"))
            };
            // A rewrite changes the path only: it can never start a query or a fragment.
            if out.contains(['?', '#']) {
                out = Cow::Owned(out.replace('?', "%3F").replace('#', "%23"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::MapEnv;

    fn spec(fields: &str) -> RouteSpec {
        let text = format!(
            "insecure_server: true\nroutes:\n  - {{from: https://a.example.com, {fields}}}\n"
        );
        let loaded = crate::config::load_str(&text, None, &MapEnv::default()).unwrap();
        loaded.config.routes.into_iter().next().unwrap()
    }

    #[test]
    fn rewrites() {
        let cases = [
            (
                "to: http://u, prefix: /app, prefix_rewrite: /",
                "/app/x",
                "/x",
            ),
            (
                "to: http://u, prefix: /app/, prefix_rewrite: /v1/",
                "/app/x",
                "/v1/x",
            ),
            (
                "to: http://u, prefix: /app, prefix_rewrite: ''",
                "/app/x",
                "/x",
            ),
            (
                "to: http://u, path: /old, prefix_rewrite: /new",
                "/old",
                "/new",
            ),
            ("to: http://u/base, prefix: /app", "/app/x", "/base/x"),
            ("to: http://u/base/", "/x", "/base/x"),
            ("to: http://u", "/x?q", "/x?q"),
            (
                r"to: http://u, regex_rewrite_pattern: '^/service/([^/]+)(/.*)$', regex_rewrite_substitution: '\2/instance/\1'",
                "/service/foo/v1/api",
                "/v1/api/instance/foo",
            ),
        ];
        for (fields, path, want) in cases {
            assert_eq!(upstream_path(&spec(fields), path), want, "{fields}");
        }
    }
}
