//! Tests of [`super`]: header hygiene on the forwarding path.

use super::*;
use std::net::SocketAddr;

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn view(trusted: bool) -> RequestView {
    RequestView {
        tls: true,
        host: "app.example.com".into(),
        port: None,
        path: "/".into(),
        query: None,
        method: http::Method::GET,
        peer: SocketAddr::from(([10, 0, 0, 1], 1234)),
        client_ip: [10, 0, 0, 1].into(),
        peer_trusted: trusted,
    }
}

#[test]
fn hop_by_hop_and_connection_listed_names_go() {
    let mut h = map(&[
        ("connection", "keep-alive, x-secret, upgrade"),
        ("keep-alive", "5"),
        ("x-secret", "1"),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("x-kept", "1"),
    ]);
    strip_hop_by_hop(&mut h, false);
    assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-kept"]);
}

#[test]
fn websocket_upgrade_survives_when_allowed() {
    let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
    strip_hop_by_hop(&mut h, true);
    assert_eq!(h["upgrade"], "websocket");
    assert_eq!(h["connection"], "upgrade");
}

#[test]
fn identity_headers_go_in_every_spelling() {
    let mut h = map(&[
        ("x-pomerium-jwt-assertion", "forged"),
        ("X_Pomerium_Claim_Email", "forged"),
        ("x-email", "forged"),
        ("x-other", "kept"),
    ]);
    strip_identity(&mut h, &[HeaderName::from_static("x-email")]);
    assert_eq!(
        h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        ["x-other"]
    );
}

#[test]
fn forwarded_headers_from_untrusted_peers_are_replaced() {
    let mut h = map(&[
        ("x-forwarded-for", "6.6.6.6"),
        ("forwarded", "for=6.6.6.6"),
        ("x_forwarded_host", "evil"),
    ]);
    set_forwarded(&mut h, &view(false));
    assert_eq!(h["x-forwarded-for"], "10.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "app.example.com");
    assert!(!h.contains_key("forwarded") && !h.contains_key("x_forwarded_host"));
}

#[test]
fn forwarded_headers_from_trusted_peers_are_extended() {
    let mut h = map(&[
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "http"),
    ]);
    set_forwarded(&mut h, &view(true));
    assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
}

#[test]
fn our_cookies_are_removed_both_ways() {
    let mut h = map(&[
        ("cookie", "a=1; _pomerium=secret; b=2"),
        ("cookie", "_pomerium_csrf=x"),
    ]);
    strip_cookies(&mut h, |n| n.starts_with("_pomerium"));
    assert_eq!(h.get_all("cookie").iter().collect::<Vec<_>>(), ["a=1; b=2"]);
    let mut r = map(&[
        ("set-cookie", "_pomerium=evil; Path=/"),
        ("set-cookie", "app=1"),
    ]);
    clean_response(&mut r, false, |n| n == "_pomerium");
    assert_eq!(
        r.get_all("set-cookie").iter().collect::<Vec<_>>(),
        ["app=1"]
    );
}

#[test]
fn the_survey_finds_what_each_step_removes() {
    let h = map(&[("host", "a"), ("accept", "*/*")]);
    let f = survey(&h, &[]);
    assert!(!(f.hop_by_hop || f.identity || f.forwarded || f.cookie));
    let h = map(&[
        ("connection", "close"),
        ("x-pomerium-claim-email", "x"),
        ("forwarded", "for=1.2.3.4"),
        ("cookie", "a=1"),
    ]);
    let f = survey(&h, &[]);
    assert!(f.hop_by_hop && f.identity && f.forwarded && f.cookie);
    let h = map(&[("x-email", "x")]);
    assert!(survey(&h, &[HeaderName::from_static("x-email")]).identity);
    let h = map(&[("x_anything", "x")]);
    let f = survey(&h, &[]);
    assert!(
        f.identity && f.forwarded,
        "underscore spellings are always looked at"
    );
}

#[test]
fn method_overrides_go_in_every_spelling() {
    let mut h = map(&[
        ("x-http-method-override", "DELETE"),
        ("X-HTTP-Method", "PUT"),
        ("x-method-override", "PATCH"),
        ("X_HTTP_Method_Override", "DELETE"),
        ("x-http-method-overrides", "kept"),
    ]);
    let found = survey(&h, &[]);
    assert!(found.method_override);
    strip_method_overrides(&mut h);
    assert_eq!(
        h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
        ["x-http-method-overrides"]
    );
    assert!(!survey(&map(&[("accept", "*/*")]), &[]).method_override);
}
