// Test-only: included from its parent module under #[cfg(test)].
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::ThumbprintHash;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;

use super::*;
use crate::identity::test_keys::*;
use crate::identity::test_support::*;
use crate::identity::{Claims, der};

fn sign(keys: &SigningKeys) -> String {
    let session = session(u64::MAX / 2);
    let groups = session.groups.clone();
    keys.sign(&Claims {
        issuer_and_audience: HOST,
        session: &session,
        groups: &groups,
        extra: &[],
    })
    .expect("signs")
}

fn jwks_value(keys: &SigningKeys) -> Value {
    serde_json::from_slice(&keys.jwks().json).unwrap()
}

fn load_err(pem: &str) -> String {
    SigningKeys::load(Some(&Secret::new(pem)), &SECRET_A)
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn derived_key_signs_es256_verifiable_from_the_published_jwks() {
    let keys = SigningKeys::load(None, &SECRET_A).unwrap();
    assert!(keys.is_derived());
    assert_eq!(keys.alg(), "ES256");
    let claims = verify(&keys, &sign(&keys), Algorithm::ES256, HOST);
    assert_eq!(claims["sub"], "00u1");
    let jwks = jwks_value(&keys);
    let only = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(only["kty"], "EC");
    assert_eq!(only["crv"], "P-256");
    assert_eq!(only["alg"], "ES256");
    assert_eq!(only["use"], "sig");
    assert_eq!(only["kid"], keys.kid());
    assert!(only.get("d").is_none(), "no private part is published");
}

#[test]
fn same_shared_secret_gives_the_same_key_and_another_secret_another() {
    let a1 = SigningKeys::load(None, &SECRET_A).unwrap();
    let a2 = SigningKeys::load(None, &SECRET_A).unwrap();
    let b = SigningKeys::load(None, &SECRET_B).unwrap();
    assert_eq!(a1.kid(), a2.kid());
    assert_eq!(a1.jwks(), a2.jwks());
    assert_ne!(a1.kid(), b.kid());
    assert_ne!(a1.jwks().etag, b.jwks().etag);
    // A token from one replica verifies against the other replica's JWKS.
    verify(&a2, &sign(&a1), Algorithm::ES256, HOST);
    assert!(jwk_set(&b).find(a1.kid()).is_none());
}

#[test]
fn ec_pem_in_pkcs8_and_sec1_is_the_same_es256_key() {
    let pkcs8 = pem_keys(EC_PKCS8);
    let sec1 = pem_keys(EC_SEC1);
    assert!(!pkcs8.is_derived());
    assert_eq!(pkcs8.alg(), "ES256");
    assert_eq!(pkcs8.kid(), sec1.kid());
    verify(&pkcs8, &sign(&pkcs8), Algorithm::ES256, HOST);
    verify(&pkcs8, &sign(&sec1), Algorithm::ES256, HOST);
    // Keys stored without their public half still load to the same key.
    assert_eq!(pem_keys(EC_SEC1_NO_PUBLIC).kid(), pkcs8.kid());
    assert_eq!(pem_keys(EC_PKCS8_NO_PUBLIC).kid(), pkcs8.kid());
}

#[test]
fn rsa_pem_in_pkcs1_and_pkcs8_signs_rs256() {
    let pkcs8 = pem_keys(RSA_PKCS8);
    let pkcs1 = pem_keys(RSA_PKCS1);
    assert_eq!(pkcs8.alg(), "RS256");
    assert_eq!(pkcs8.kid(), pkcs1.kid());
    let claims = verify(&pkcs1, &sign(&pkcs1), Algorithm::RS256, HOST);
    assert_eq!(claims["email"], "ada@example.com");
    verify(&pkcs1, &sign(&pkcs8), Algorithm::RS256, HOST);
    let jwk = &jwks_value(&pkcs8)["keys"][0];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["e"], "AQAB");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(jwk["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            jwk.get(private).is_none(),
            "{private} must not be published"
        );
    }
}

#[test]
fn base64_of_pem_is_accepted() {
    let encoded = STANDARD.encode(EC_PKCS8);
    assert_eq!(pem_keys(&encoded).kid(), pem_keys(EC_PKCS8).kid());
    let encoded = STANDARD.encode(RSA_PKCS1);
    assert_eq!(pem_keys(&encoded).kid(), pem_keys(RSA_PKCS1).kid());
}

#[test]
fn several_keys_are_all_published_and_the_first_signs() {
    let pem = format!("{EC2_PKCS8}{RSA_PKCS1}");
    let keys = pem_keys(&pem);
    let first = pem_keys(EC2_PKCS8);
    let second = pem_keys(RSA_PKCS1);
    let jwks = jwks_value(&keys);
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [first.kid(), second.kid()]);
    assert_eq!(keys.kid(), first.kid());
    assert_eq!(keys.alg(), "ES256");
    let token = sign(&keys);
    assert_eq!(header_json(&token)["kid"], first.kid());
    verify(&keys, &token, Algorithm::ES256, HOST);
    // The second key did not sign it.
    let wrong = jsonwebtoken::DecodingKey::from_jwk(jwk_set(&keys).find(second.kid()).unwrap());
    let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    validation.set_audience(&[HOST]);
    assert!(jsonwebtoken::decode::<Value>(&token, &wrong.unwrap(), &validation).is_err());

    // Rotation the other way round: the RSA key signs, both are published.
    let swapped = pem_keys(&format!("{RSA_PKCS8}\n{EC2_PKCS8}"));
    assert_eq!(swapped.alg(), "RS256");
    assert_eq!(jwk_set(&swapped).keys.len(), 2);
    verify(&swapped, &sign(&swapped), Algorithm::RS256, HOST);
}

#[test]
fn a_key_listed_twice_is_published_once_and_certificates_are_ignored() {
    let keys = pem_keys(&format!("{EC_PKCS8}{EC_CERT}\n{EC_SEC1}"));
    assert_eq!(jwk_set(&keys).keys.len(), 1);
    assert_eq!(keys.kid(), pem_keys(EC_PKCS8).kid());
}

#[test]
fn kid_is_the_hex_rfc7638_thumbprint_of_each_published_key() {
    let pem = format!("{EC_PKCS8}{RSA_PKCS8}");
    for keys in [SigningKeys::load(None, &SECRET_A).unwrap(), pem_keys(&pem)] {
        for jwk in jwk_set(&keys).keys {
            // jsonwebtoken computes the thumbprint independently (base64url).
            let b64 = jwk.thumbprint(ThumbprintHash::SHA256).unwrap();
            let expected = hex(&URL_SAFE_NO_PAD.decode(b64).unwrap());
            assert_eq!(jwk.common.key_id.as_deref(), Some(expected.as_str()));
            assert_eq!(expected.len(), 64);
        }
    }
}

#[test]
fn rsa_thumbprint_matches_the_rfc7638_example() {
    // RFC 7638 §3.1: the thumbprint of this key is
    // NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs (base64url of SHA-256).
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc\
             _BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQ\
             R0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bF\
             TWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let expected = hex(&URL_SAFE_NO_PAD
        .decode("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        .unwrap());
    assert_eq!(rsa_thumbprint(n, "AQAB"), expected);
}

#[test]
fn jwks_etag_is_a_quoted_hash_of_the_json() {
    let keys = pem_keys(EC_PKCS8);
    let Jwks { json, etag } = keys.jwks();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10);
    assert_ne!(etag, &pem_keys(RSA_PKCS8).jwks().etag);
    assert_eq!(etag, &pem_keys(EC_SEC1).jwks().etag, "same keys, same etag");
    let parsed: Value = serde_json::from_slice(json).unwrap();
    assert!(parsed["keys"].is_array());
}

#[test]
fn unsupported_keys_are_rejected_naming_the_problem() {
    let cases = [
        (ED25519, "Ed25519"),
        (EC_P384, "P-384"),
        (EC_P384_SEC1, "P-384"),
        (RSA_1024, "smaller than 2048 bits"),
        (EC_CERT, "no private key"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "ENCRYPTED PRIVATE KEY",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n",
            "PKCS#8",
        ),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "no END line"),
        ("not a key at all!", "PEM"),
        (&STANDARD.encode("just some text"), "not to PEM"),
    ];
    for (pem, expected) in cases {
        let message = load_err(pem);
        assert!(message.starts_with("signing_key: "), "{message}");
        assert!(
            message.contains(expected),
            "{message:?} should mention {expected:?}"
        );
        // No line of the key's base64 body appears in the message.
        for line in pem
            .lines()
            .filter(|l| l.len() > 20 && !l.starts_with("-----"))
        {
            assert!(!message.contains(line), "{message} leaks key material");
        }
    }
}

#[test]
fn debug_never_prints_key_material() {
    let keys = pem_keys(EC_PKCS8);
    let debug = format!("{keys:?}");
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(EC_PKCS8.as_bytes()).unwrap();
    let info = der::pkcs8(der.secret_pkcs8_der()).unwrap();
    let (scalar, _) = der::sec1(info.private_key).unwrap();
    for encoding in [
        hex(scalar),
        STANDARD.encode(scalar),
        URL_SAFE_NO_PAD.encode(scalar),
    ] {
        assert!(!debug.contains(&encoding[..16]), "{debug}");
    }
    assert!(
        debug.contains(keys.kid()) && debug.contains("ES256"),
        "{debug}"
    );
    assert!(!debug.contains("BEGIN"));
    let derived = format!("{:?}", SigningKeys::load(None, &SECRET_A).unwrap());
    assert!(derived.len() < 200, "{derived}");
}

#[test]
fn keys_can_be_shared_across_tasks() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<SigningKeys>();
    shared::<crate::identity::AssertionCache>();
}
