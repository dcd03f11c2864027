//! Identity for upstream apps: the signed assertion verified with an independent JWT
//! library against the proxy's own JWKS, claim headers, header templates, the groups
//! filter, and every way a client might try to forge our headers.

use std::collections::HashSet;

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::support::signin::World;
use crate::support::{Echo, upstream};
use portcullis::demo::idp::{IdpOptions, TestUser};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn world(extra: &str, route_fields: &str) -> (World, upstream::Upstream) {
    let up = upstream::start("id").await;
    let routes = format!(
        "  - from: http://other.example.com\n    to: {}\n    allow_any_authenticated_user: true\n{route_fields}",
        up.url()
    );
    let w = World::start_with(IdpOptions::default(), extra, &routes).await;
    w.ready().await;
    w.idp.set_user(
        TestUser::new("00u-ada")
            .email("ada@example.com")
            .name("Ada Lovelace")
            .groups(["admins", "eng", "ops"]),
    );
    (w, up)
}

async fn jwks(w: &World, host: &str) -> JwkSet {
    let r = reqwest::Client::builder()
        .resolve_to_addrs(host, &[w.proxy.addr])
        .build()
        .unwrap()
        .get(w.url(host, "/.well-known/pomerium/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    r.json().await.unwrap()
}

/// Verifies like an upstream would: key by `kid` from the JWKS, `aud` = its own host.
fn verify(token: &str, set: &JwkSet, host: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid published in the JWKS");
    let mut v = Validation::new(header.alg);
    v.set_audience(&[host]);
    v.set_issuer(&[host]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .expect("valid assertion")
        .claims
}

async fn signed_in_echo(w: &World, path: &str) -> Echo {
    let b = w.browser();
    b.sign_in(&w.url("other.example.com", path)).await;
    Echo::from(b.get_html(&w.url("other.example.com", path)).await).await
}

#[tokio::test]
async fn the_assertion_verifies_against_the_published_keys() {
    let (w, _up) = world("pass_identity_headers: true\n", "").await;
    let echo = signed_in_echo(&w, "/").await;
    let token = echo
        .header("x-pomerium-jwt-assertion")
        .expect("assertion sent");
    let set = jwks(&w, "other.example.com").await;
    let claims = verify(&token, &set, "other.example.com");
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().alg,
        Algorithm::ES256
    );
    assert_eq!(claims["sub"], "00u-ada");
    assert_eq!(claims["user"], "00u-ada");
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["name"], "Ada Lovelace");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["admins", "eng", "ops"])
    );
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(claims["jti"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        300
    );
    // An app on another host rejects it: the audience is the route host.
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let mut v = Validation::new(header.alg);
    v.set_audience(&["app.example.com"]);
    let key = DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    assert!(jsonwebtoken::decode::<Value>(&token, &key, &v).is_err());
    // Discovery document and conditional GET.
    let c = reqwest::Client::builder()
        .resolve_to_addrs("other.example.com", &[w.proxy.addr])
        .build()
        .unwrap();
    let doc: Value = c
        .get(w.url("other.example.com", "/.well-known/pomerium"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["jwks_uri"],
        w.url("other.example.com", "/.well-known/pomerium/jwks.json")
    );
    let first = c
        .get(w.url("other.example.com", "/.well-known/pomerium/jwks.json"))
        .send()
        .await
        .unwrap();
    let etag = first.headers()["etag"].clone();
    let again = c
        .get(w.url("other.example.com", "/.well-known/pomerium/jwks.json"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn the_assertion_is_reused_while_fresh() {
    let (w, _up) = world("pass_identity_headers: true\n", "").await;
    let b = w.browser();
    b.sign_in(&w.url("other.example.com", "/")).await;
    let one = Echo::from(b.get_html(&w.url("other.example.com", "/a")).await)
        .await
        .header("x-pomerium-jwt-assertion");
    let two = Echo::from(b.get_html(&w.url("other.example.com", "/b")).await)
        .await
        .header("x-pomerium-jwt-assertion");
    assert_eq!(
        one, two,
        "signed once, reused for the same session and route"
    );
}

#[tokio::test]
async fn replicas_with_one_shared_secret_derive_the_same_key() {
    let (a, _u1) = world("", "").await;
    let (b, _u2) = world("", "").await;
    let kids = |s: &JwkSet| {
        s.keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kids(&jwks(&a, "other.example.com").await),
        kids(&jwks(&b, "other.example.com").await)
    );
    let other_secret = "shared_secret: BwYFBAMCAQAPDg0MCwoJCBcWFRQTEhEQHx4dHBsaGRg=\n";
    let (c, _u3) = world(other_secret, "").await;
    assert_ne!(
        kids(&jwks(&a, "other.example.com").await),
        kids(&jwks(&c, "other.example.com").await)
    );
}

#[tokio::test]
async fn several_signing_keys_are_all_published_and_the_first_signs() {
    let first = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let second = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let extra = format!(
        "pass_identity_headers: true\nsigning_key: {}\n",
        b64(&format!("{first}{second}"))
    );
    let (w, _up) = world(&extra, "").await;
    let set = jwks(&w, "other.example.com").await;
    assert_eq!(set.keys.len(), 2);
    let token = signed_in_echo(&w, "/")
        .await
        .header("x-pomerium-jwt-assertion")
        .unwrap();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    assert_eq!(
        Some(kid),
        set.keys[0].common.key_id.clone(),
        "the first key signs"
    );
    verify(&token, &set, "other.example.com");
}

#[tokio::test]
async fn an_rsa_signing_key_gives_rs256() {
    let pem = include_str!("../fixtures/idp-rsa.pem");
    let (w, _up) = world(
        &format!("pass_identity_headers: true\nsigning_key: {}\n", b64(pem)),
        "",
    )
    .await;
    let token = signed_in_echo(&w, "/")
        .await
        .header("x-pomerium-jwt-assertion")
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().alg,
        Algorithm::RS256
    );
    verify(
        &token,
        &jwks(&w, "other.example.com").await,
        "other.example.com",
    );
}

#[tokio::test]
async fn claim_headers_and_templates() {
    let extra = "pass_identity_headers: true\njwt_claims_headers: [email, groups]\n";
    let fields = "    set_request_headers:\n      X-Token: 'Bearer ${pomerium.access_token}'\n      X-Jwt: '${pomerium.jwt}'\n      X-Copy: '${pomerium.request.headers[\"X-Orig\"]}'\n      X-Price: '$$5'\n";
    let up = upstream::start("id").await;
    let routes = format!(
        "  - from: http://other.example.com\n    to: {}\n    allow_any_authenticated_user: true\n{fields}",
        up.url()
    );
    let w = World::start_with(IdpOptions::default(), extra, &routes).await;
    w.ready().await;
    w.idp.set_user(
        TestUser::new("00u-ada")
            .email("ada@example.com")
            .groups(["admins", "eng"]),
    );
    let b = w.browser();
    b.sign_in(&w.url("other.example.com", "/")).await;
    let r = b
        .client
        .get(w.url("other.example.com", "/"))
        .header("x-orig", "from-client")
        .send()
        .await
        .unwrap();
    let echo = Echo::from(r).await;
    assert_eq!(
        echo.header("x-pomerium-claim-email").as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(
        echo.header("x-pomerium-claim-groups").as_deref(),
        Some("admins,eng")
    );
    assert!(
        echo.header("x-token").unwrap().starts_with("Bearer ")
            && echo.header("x-token").unwrap().len() > 10
    );
    assert_eq!(
        echo.header("x-jwt"),
        echo.header("x-pomerium-jwt-assertion")
    );
    assert_eq!(echo.header("x-copy").as_deref(), Some("from-client"));
    assert_eq!(echo.header("x-price").as_deref(), Some("$5"));
    let claims = verify(
        &echo.header("x-jwt").unwrap(),
        &jwks(&w, "other.example.com").await,
        "other.example.com",
    );
    assert_eq!(claims["email"], "ada@example.com");
}

#[test]
fn unknown_template_names_are_config_errors() {
    let text = "insecure_server: true\nroutes:\n  - from: https://a.example.com\n    to: http://127.0.0.1:1\n    allow_any_authenticated_user: true\n    set_request_headers: {X-A: '${pomerium.nope}'}\n";
    let err = portcullis::config::load_str(text, None, &portcullis::config::env::MapEnv::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("routes[0].set_request_headers.X-A"), "{err}");
}

#[tokio::test]
async fn the_groups_filter_limits_what_upstreams_see() {
    let fields = "    jwt_groups_filter: {groups: [ops], infer_from_ppl: true}\n";
    let up = upstream::start("id").await;
    let routes = format!(
        "  - from: http://other.example.com\n    to: {}\n    allowed_groups: [admins]\n{fields}",
        up.url()
    );
    let w = World::start_with(
        IdpOptions::default(),
        "pass_identity_headers: true\njwt_claims_headers: groups\n",
        &routes,
    )
    .await;
    w.ready().await;
    w.idp.set_user(
        TestUser::new("00u-ada")
            .email("ada@example.com")
            .groups(["admins", "eng", "ops"]),
    );
    let echo = signed_in_echo(&w, "/").await;
    let claims = verify(
        &echo.header("x-pomerium-jwt-assertion").unwrap(),
        &jwks(&w, "other.example.com").await,
        "other.example.com",
    );
    assert_eq!(
        claims["groups"],
        serde_json::json!(["admins", "ops"]),
        "listed plus what the policy names"
    );
    assert_eq!(
        echo.header("x-pomerium-claim-groups").as_deref(),
        Some("admins,ops")
    );
}

#[tokio::test]
async fn claim_values_with_line_breaks_are_never_emitted_raw() {
    let (w, _up) = world(
        "pass_identity_headers: true\njwt_claims_headers: [name]\n",
        "",
    )
    .await;
    w.idp.set_user(
        TestUser::new("00u-eve")
            .email("eve@example.com")
            .name("Eve\r\nX-Injected: 1"),
    );
    let echo = signed_in_echo(&w, "/").await;
    assert!(echo.header("x-injected").is_none());
    assert!(
        echo.header("x-pomerium-claim-name").is_none(),
        "dropped rather than sent raw"
    );
}

#[tokio::test]
async fn client_sent_identity_headers_never_reach_an_upstream() {
    let extra = "pass_identity_headers: true\njwt_claims_headers: {X-Email: email}\n";
    let up = upstream::start("id").await;
    let routes = format!(
        "  - from: http://other.example.com\n    to: {u}\n    allow_any_authenticated_user: true\n\
         \x20 - from: http://ws.example.com\n    to: {u}\n    cors_allow_preflight: true\n",
        u = up.url()
    );
    let w = World::start_with(IdpOptions::default(), extra, &routes).await;
    w.ready().await;
    w.idp
        .set_user(TestUser::new("00u-ada").email("ada@example.com"));
    let forged: [(&str, &str); 7] = [
        ("X-Pomerium-Jwt-Assertion", "forged"),
        ("x_pomerium_jwt_assertion", "forged"),
        ("X-POMERIUM-CLAIM-EMAIL", "forged"),
        ("X-Pomerium-Jwt-Assertion-For", "forged"),
        ("X-Email", "forged@evil.example"),
        ("x_email", "forged@evil.example"),
        ("Connection", "X-Pomerium-Jwt-Assertion, X-Email"),
    ];
    let ours: HashSet<&str> = ["x-pomerium-jwt-assertion", "x-email"].into();
    let check = |echo: &Echo, signed_in: bool| {
        for name in echo.header_names() {
            let folded = name.replace('_', "-");
            if folded.starts_with("x-pomerium") || folded == "x-email" {
                assert!(
                    signed_in && ours.contains(folded.as_str()),
                    "{name} reached the upstream"
                );
                assert!(
                    echo.header_all(&name).iter().all(|v| !v.contains("forged")),
                    "{name} forged"
                );
            }
        }
    };
    let send = |c: &reqwest::Client, method: reqwest::Method, url: String| {
        let mut r = c.request(method, url);
        for (k, v) in forged {
            r = r.header(k, v);
        }
        r
    };
    // Public route.
    let c = crate::support::client(w.proxy.addr);
    let r = send(&c, reqwest::Method::GET, w.url("public.example.com", "/"))
        .send()
        .await
        .unwrap();
    check(&Echo::from(r).await, false);
    // CORS preflight on a protected route.
    let r = send(
        &c,
        reqwest::Method::OPTIONS,
        w.url("ws.example.com", "/api"),
    )
    .header("origin", "https://x.example")
    .header("access-control-request-method", "POST")
    .send()
    .await
    .unwrap();
    check(&Echo::from(r).await, false);
    // Signed in on a protected route: ours are present and genuine.
    let b = w.browser();
    b.sign_in(&w.url("other.example.com", "/")).await;
    let r = send(
        &b.client,
        reqwest::Method::GET,
        w.url("other.example.com", "/"),
    )
    .send()
    .await
    .unwrap();
    let echo = Echo::from(r).await;
    check(&echo, true);
    assert_eq!(echo.header("x-email").as_deref(), Some("ada@example.com"));
    assert!(
        echo.header("x-pomerium-jwt-assertion").is_some(),
        "Connection could not remove ours"
    );
}

#[tokio::test]
async fn without_pass_identity_headers_no_assertion_is_sent() {
    let (w, _up) = world("", "").await;
    let echo = signed_in_echo(&w, "/").await;
    assert!(echo.header("x-pomerium-jwt-assertion").is_none());
}
