// Test-only: included from its parent module under #[cfg(test)].
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use super::*;
use crate::identity::test_keys::*;
use crate::identity::test_support::*;

fn claims<'a>(
    session: &'a Session,
    groups: &'a [String],
    extra: &'a [(String, Value)],
) -> Claims<'a> {
    Claims {
        issuer_and_audience: HOST,
        session,
        groups,
        extra,
    }
}

#[tokio::test(start_paused = true)]
async fn every_claim_is_there_and_verifies() {
    let keys = SigningKeys::load(None, &SECRET_A).unwrap();
    let now = clock::now();
    let session = session(now + 3600);
    let groups = vec!["00g1".to_owned(), "engineering".to_owned()];
    let token = keys.sign(&claims(&session, &groups, &[])).unwrap();
    let c = verify(&keys, &token, Algorithm::ES256, HOST);
    assert_eq!(c["iss"], HOST);
    assert_eq!(c["aud"], HOST);
    assert_eq!(c["sub"], "00u1");
    assert_eq!(c["user"], "00u1");
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["name"], "Ada Lovelace");
    assert_eq!(c["groups"], json!(["00g1", "engineering"]));
    assert_eq!(c["sid"], "sess-1");
    assert_eq!(c["iat"], now);
    assert_eq!(c["exp"], now + 300);
    let jti = c["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 36);
    assert_eq!(jti.as_bytes()[14], b'4', "a version 4 UUID: {jti}");
    let header = header_json(&token);
    assert_eq!(
        header,
        json!({"alg": "ES256", "kid": keys.kid(), "typ": "JWT"})
    );
}

#[tokio::test(start_paused = true)]
async fn exp_never_outlives_the_session() {
    let keys = pem_keys(RSA_PKCS1);
    let now = clock::now();
    let session = session(now + 42);
    let token = keys.sign(&claims(&session, &[], &[])).unwrap();
    let c = verify(&keys, &token, Algorithm::RS256, HOST);
    assert_eq!(c["exp"], now + 42);
    assert_eq!(c["iat"], now);

    let ended = super::super::test_support::session(now);
    assert!(matches!(
        keys.sign(&claims(&ended, &[], &[])),
        Err(IdentityError::SessionEnded)
    ));
}

#[tokio::test(start_paused = true)]
async fn missing_email_and_name_are_omitted_and_groups_always_present() {
    let keys = pem_keys(EC_PKCS8);
    let mut session = session(clock::now() + 3600);
    session.email = None;
    session.name = None;
    let token = keys.sign(&claims(&session, &[], &[])).unwrap();
    let c = verify(&keys, &token, Algorithm::ES256, HOST);
    assert!(c.get("email").is_none(), "{c}");
    assert!(c.get("name").is_none(), "{c}");
    assert_eq!(c["groups"], json!([]));
}

#[tokio::test(start_paused = true)]
async fn jti_is_unique_per_assertion() {
    let keys = pem_keys(EC_SEC1);
    let session = session(clock::now() + 3600);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let token = keys.sign(&claims(&session, &[], &[])).unwrap();
        let c = verify(&keys, &token, Algorithm::ES256, HOST);
        assert!(seen.insert(c["jti"].as_str().unwrap().to_owned()));
    }
}

#[tokio::test(start_paused = true)]
async fn extra_claims_are_added_but_never_replace_standard_ones() {
    let keys = SigningKeys::load(None, &SECRET_A).unwrap();
    let session = session(clock::now() + 3600);
    let extra = vec![
        ("locale".to_owned(), json!("en")),
        (
            "https://example.com/roles".to_owned(),
            json!(["admin", "dev"]),
        ),
        ("sub".to_owned(), json!("someone-else")),
        ("aud".to_owned(), json!("evil.example.com")),
        ("exp".to_owned(), json!(99_999_999_999u64)),
    ];
    let token = keys.sign(&claims(&session, &[], &extra)).unwrap();
    let c = verify(&keys, &token, Algorithm::ES256, HOST);
    assert_eq!(c["locale"], "en");
    assert_eq!(c["https://example.com/roles"], json!(["admin", "dev"]));
    assert_eq!(c["sub"], "00u1");
    assert_eq!(c["aud"], HOST);
    assert_eq!(c["exp"], clock::now() + 300);
}

#[tokio::test(start_paused = true)]
async fn an_assertion_for_one_host_does_not_verify_for_another() {
    let keys = SigningKeys::load(None, &SECRET_A).unwrap();
    let session = session(clock::now() + 3600);
    let token = keys.sign(&claims(&session, &[], &[])).unwrap();
    assert!(try_verify(&keys, &token, Algorithm::ES256, "other.example.com").is_err());
    // A tampered payload fails too.
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = keys
        .sign(&Claims {
            issuer_and_audience: "other.example.com",
            ..claims(&session, &[], &[])
        })
        .unwrap();
    parts[1] = other.split('.').nth(1).unwrap();
    assert!(
        try_verify(
            &keys,
            &parts.join("."),
            Algorithm::ES256,
            "other.example.com"
        )
        .is_err()
    );
}
