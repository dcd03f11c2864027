// Test-only: included from its parent module under #[cfg(test)].
use http::{HeaderMap, HeaderValue};

use super::*;

fn ctx(headers: &HeaderMap) -> TemplateContext<'_> {
    TemplateContext {
        id_token: Some("ID.TOK.EN"),
        access_token: Some("access-123"),
        jwt: Some("J.W.T"),
        request_headers: headers,
    }
}

fn render(text: &str, headers: &HeaderMap) -> String {
    Template::parse(text).unwrap().render(&ctx(headers))
}

#[test]
fn renders_every_variable() {
    let mut h = HeaderMap::new();
    h.insert("x-user-agent-ish", HeaderValue::from_static("curl/8"));
    assert_eq!(
        render("Bearer ${pomerium.id_token}", &h),
        "Bearer ID.TOK.EN"
    );
    assert_eq!(render("${pomerium.access_token}", &h), "access-123");
    assert_eq!(render("jwt=${pomerium.jwt};", &h), "jwt=J.W.T;");
    assert_eq!(
        render(
            r#"ua: ${pomerium.request.headers["X-User-Agent-Ish"]}!"#,
            &h
        ),
        "ua: curl/8!"
    );
    assert_eq!(
        render("${pomerium.request.headers['x-USER-agent-ish']}", &h),
        "curl/8",
        "header names match case-insensitively"
    );
    assert_eq!(
        render("${pomerium.jwt}${pomerium.access_token}", &h),
        "J.W.Taccess-123"
    );
}

#[test]
fn dollars_and_static_text() {
    let h = HeaderMap::new();
    assert_eq!(render("$$", &h), "$");
    assert_eq!(
        render("cost: $$5 and $$${pomerium.jwt}", &h),
        "cost: $5 and $J.W.T"
    );
    assert_eq!(render("$${pomerium.jwt}", &h), "${pomerium.jwt}");
    assert_eq!(render("a lone $ and $5", &h), "a lone $ and $5");
    assert_eq!(render("trailing $", &h), "trailing $");
    assert_eq!(render("", &h), "");
    assert!(Template::parse("plain $$ text").unwrap().is_static());
    assert!(Template::parse("").unwrap().is_static());
    assert!(!Template::parse("x ${pomerium.jwt}").unwrap().is_static());
}

#[test]
fn missing_values_render_empty_and_repeated_headers_join() {
    let mut h = HeaderMap::new();
    h.append("x-multi", HeaderValue::from_static("one"));
    h.append("x-multi", HeaderValue::from_static("two"));
    let t = Template::parse(
        r#"[${pomerium.id_token}|${pomerium.jwt}|${pomerium.request.headers["X-Absent"]}|${pomerium.request.headers["X-Multi"]}]"#,
    )
    .unwrap();
    let empty = TemplateContext {
        id_token: None,
        access_token: None,
        jwt: None,
        request_headers: &h,
    };
    assert_eq!(t.render(&empty), "[|||one, two]");
}

#[test]
fn unknown_or_malformed_variables_fail_at_parse_with_a_clear_message() {
    let cases = [
        (
            "${pomerium.nope}",
            "unknown template variable `${pomerium.nope}`",
        ),
        ("${FOO}", "unknown template variable `${FOO}`"),
        ("${}", "unknown template variable `${}`"),
        ("abc ${pomerium.jwt", "`${` at byte 4 has no closing `}`"),
        ("${pomerium.client_cert_fingerprint}", "client certificates"),
        ("${pomerium.request.headers[X-Name]}", "must be quoted"),
        (
            r#"${pomerium.request.headers["bad name"]}"#,
            "not a valid header name",
        ),
    ];
    for (text, expected) in cases {
        let err = Template::parse(text).unwrap_err();
        assert!(err.contains(expected), "{text}: {err}");
    }
    let err = Template::parse("${pomerium.nope}").unwrap_err();
    assert!(
        err.contains("${pomerium.jwt}") && err.contains("$$"),
        "{err}"
    );
}

#[test]
fn debug_redacts_the_tokens() {
    let h = HeaderMap::new();
    let debug = format!("{:?}", ctx(&h));
    assert!(
        !debug.contains("ID.TOK.EN") && !debug.contains("access-123") && !debug.contains("J.W.T")
    );
}
