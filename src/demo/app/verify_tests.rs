// Test-only: included from its parent module under #[cfg(test)].
//! Tests of the demo app's assertion check with a key made here (independent of the
//! proxy's signing code, which the in-process demo test exercises end to end).

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::json;

use super::*;

const HOST: &str = "app.localhost";

struct TestKey {
    pair: EcdsaKeyPair,
    jwk: Jwk,
}

fn key() -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    let jwk = Jwk {
        kid: Some("k1".into()),
        kty: "EC".into(),
        crv: Some("P-256".into()),
        x: Some(B64.encode(&public[1..33])),
        y: Some(B64.encode(&public[33..65])),
        n: None,
        e: None,
    };
    TestKey { pair, jwk }
}

fn sign(key: &TestKey, header: &Value, claims: &Value) -> String {
    let signed = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = key
        .pair
        .sign(&SystemRandom::new(), signed.as_bytes())
        .unwrap();
    format!("{signed}.{}", B64.encode(sig.as_ref()))
}

fn claims(now: u64) -> Value {
    json!({"iss": HOST, "aud": HOST, "iat": now, "exp": now + 300, "sub": "00u1", "groups": []})
}

fn check(key: &TestKey, token: &str, host: &str, now: u64) -> Result<(), VerifyError> {
    let (header, claims, signed, sig) = decode(token)?;
    check_signature(&header.alg, &key.jwk, signed.as_bytes(), &sig)?;
    check_claims(&claims, host, now)
}

#[test]
fn a_good_es256_assertion_verifies() {
    let k = key();
    let token = sign(&k, &json!({"alg": "ES256", "kid": "k1"}), &claims(1000));
    assert_eq!(check(&k, &token, HOST, 1000), Ok(()));
    assert_eq!(unverified_claims(&token).unwrap()["sub"], "00u1");
}

#[test]
fn tampering_other_keys_and_algorithms_are_refused() {
    let k = key();
    let token = sign(&k, &json!({"alg": "ES256", "kid": "k1"}), &claims(1000));
    let (head, rest) = token.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let mut forged = claims(1000);
    forged["groups"] = json!(["admins"]);
    let tampered = format!("{head}.{}.{sig}", B64.encode(forged.to_string()));
    assert_eq!(
        check(&k, &tampered, HOST, 1000),
        Err(VerifyError::BadSignature)
    );
    let other = key();
    assert_eq!(
        check(&other, &token, HOST, 1000),
        Err(VerifyError::BadSignature)
    );
    let none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none"}"#),
        B64.encode(claims(1000).to_string())
    );
    assert_eq!(
        check(&k, &none, HOST, 1000),
        Err(VerifyError::Algorithm("none".into()))
    );
    let hs = sign(&k, &json!({"alg": "HS256", "kid": "k1"}), &claims(1000));
    assert_eq!(
        check(&k, &hs, HOST, 1000),
        Err(VerifyError::Algorithm("HS256".into()))
    );
    let rs = sign(&k, &json!({"alg": "RS256", "kid": "k1"}), &claims(1000));
    assert!(matches!(
        check(&k, &rs, HOST, 1000),
        Err(VerifyError::UnknownKey(_))
    ));
    assert!(matches!(
        check(&k, "a.b", HOST, 1000),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn times_audience_and_issuer_are_checked() {
    let k = key();
    let token = sign(&k, &json!({"alg": "ES256", "kid": "k1"}), &claims(1000));
    assert_eq!(
        check(&k, &token, HOST, 1000 + 300 + 61),
        Err(VerifyError::Expired)
    );
    assert_eq!(check(&k, &token, HOST, 1000 + 300 + 59), Ok(()));
    assert_eq!(
        check(&k, &token, HOST, 1000 - 61),
        Err(VerifyError::NotYetValid)
    );
    assert_eq!(
        check(&k, &token, "admin.localhost", 1000),
        Err(VerifyError::Audience("admin.localhost".into()))
    );
    let mut c = claims(1000);
    c["iss"] = json!("elsewhere");
    let token = sign(&k, &json!({"alg": "ES256", "kid": "k1"}), &c);
    assert_eq!(
        check(&k, &token, HOST, 1000),
        Err(VerifyError::Issuer(HOST.into()))
    );
    let mut c = claims(1000);
    c.as_object_mut().unwrap().remove("exp");
    let token = sign(&k, &json!({"alg": "ES256", "kid": "k1"}), &c);
    assert_eq!(check(&k, &token, HOST, 1000), Err(VerifyError::Expired));
}
