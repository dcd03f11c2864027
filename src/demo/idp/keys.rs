//! The mock provider's signing keys — part of the test kit and the demo, never on the
//! proxy's request path: the published demo key ([`super::demo_key`]) or PKCS#1 PEM
//! files a test names, the JWKS that publishes them, and ID-token minting.
//!
//! Well-formed tokens are signed by openidconnect's provider-side types (RS256). The
//! deliberately broken ones a strict relying party must reject (`alg: none`, HS256 keyed
//! with the RSA public key, a corrupted signature, an unknown `kid`) are built here.
//!
//! Invariant: nothing here panics; a token that cannot be made is `None` (a 500).

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use openidconnect::core::{
    CoreGenderClaim, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AccessToken, AdditionalClaims, IdToken, IdTokenClaims, JsonWebKeyId, PrivateSigningKey as _,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::demo_key::{DEMO_KEY_ID, DEMO_KEY_PEM};
use crate::demo::DemoError;

/// How an ID token is to be signed (or mis-signed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Signing {
    /// RS256 with the current key and its `kid`.
    Good,
    /// `{"alg":"none"}` and an empty signature.
    AlgNone,
    /// HS256 keyed with the current key's public key, as PEM ("BEGIN PUBLIC KEY").
    Hs256WithPublicKey,
    /// RS256 with the current key, then one signature bit flipped.
    BadSignature,
    /// RS256 with the last key under a `kid` the JWKS never lists.
    UnknownKid,
}

/// One RSA signing key.
struct Key {
    kid: String,
    signer: CoreRsaPrivateSigningKey,
    spki_pem: String,
}

impl Key {
    fn load(pem: &str, kid: &str) -> Result<Key, DemoError> {
        let id = JsonWebKeyId::new(kid.to_owned());
        let signer = CoreRsaPrivateSigningKey::from_pem(pem, Some(id)).map_err(DemoError::Key)?;
        Ok(Key {
            kid: kid.to_owned(),
            signer,
            spki_pem: spki_pem(pem).ok_or_else(|| DemoError::Key("not a PKCS#1 key".into()))?,
        })
    }
}

/// The keys in rotation order (at least one) and an unpublished one.
pub(super) struct Keys {
    keys: Vec<Key>,
    unknown: Key,
}

impl Keys {
    /// The keys in `files` (`kid`s `idp-key-1`, …), or the demo key when there are none.
    pub(super) fn load(files: &[PathBuf]) -> Result<Keys, DemoError> {
        let mut pems = Vec::new();
        for (i, file) in files.iter().enumerate() {
            let pem = std::fs::read_to_string(file)
                .map_err(|e| DemoError::Key(format!("{}: {e}", file.display())))?;
            pems.push((pem, format!("idp-key-{}", i + 1)));
        }
        if pems.is_empty() {
            pems.push((DEMO_KEY_PEM.to_owned(), DEMO_KEY_ID.to_owned()));
        }
        let keys = pems
            .iter()
            .map(|(pem, kid)| Key::load(pem, kid))
            .collect::<Result<Vec<_>, _>>()?;
        let last = pems.last().map_or(DEMO_KEY_PEM, |(pem, _)| pem.as_str());
        let unknown = Key::load(last, "no-such-kid")?;
        Ok(Keys { keys, unknown })
    }

    /// The index after `current`, or `current` when it is the last key.
    pub(super) fn next(&self, current: usize) -> usize {
        (current + 1).min(self.keys.len() - 1)
    }

    fn current(&self, current: usize) -> &Key {
        let last = self.keys.len() - 1;
        &self.keys[current.min(last)]
    }

    /// The SubjectPublicKeyInfo PEM of the key that signs now.
    pub(super) fn public_pem(&self, current: usize) -> String {
        self.current(current).spki_pem.clone()
    }

    /// The JWKS document: the current key, then (unless `only_current`) the earlier ones.
    pub(super) fn jwks(&self, current: usize, only_current: bool) -> Option<Value> {
        let mut keys = vec![self.current(current).signer.as_verification_key()];
        if !only_current {
            let earlier = self.keys.iter().take(current.min(self.keys.len() - 1));
            keys.extend(earlier.map(|k| k.signer.as_verification_key()));
        }
        serde_json::to_value(CoreJsonWebKeySet::new(keys)).ok()
    }

    /// Signs `claims` (a JSON object of ID-token claims) the way `how` says; `at_hash`
    /// is added for `access_token`.
    pub(super) fn mint(
        &self,
        current: usize,
        claims: Value,
        access_token: &str,
        how: Signing,
    ) -> Option<String> {
        let key = self.current(current);
        match how {
            Signing::Good => sign(key, claims, access_token),
            Signing::UnknownKid => sign(&self.unknown, claims, access_token),
            Signing::BadSignature => {
                let token = sign(key, claims, access_token)?;
                let (signed, sig) = token.rsplit_once('.')?;
                let mut sig = B64.decode(sig).ok()?;
                *sig.last_mut()? ^= 0x01;
                Some(format!("{signed}.{}", B64.encode(sig)))
            }
            Signing::AlgNone => {
                let signed = signing_input(&json!({"alg": "none", "typ": "JWT"}), &claims);
                Some(format!("{signed}."))
            }
            Signing::Hs256WithPublicKey => {
                let header = json!({"alg": "HS256", "typ": "JWT", "kid": key.kid});
                let signed = signing_input(&header, &claims);
                let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.spki_pem.as_bytes());
                let tag = ring::hmac::sign(&hmac, signed.as_bytes());
                Some(format!("{signed}.{}", B64.encode(tag.as_ref())))
            }
        }
    }
}

/// Claims beyond openidconnect's standard set that the mock puts in ID tokens.
#[derive(Debug, Serialize, Deserialize)]
struct ExtraClaims {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
}
impl AdditionalClaims for ExtraClaims {}

type Token = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

fn sign(key: &Key, claims: Value, access_token: &str) -> Option<String> {
    let claims: IdTokenClaims<ExtraClaims, CoreGenderClaim> =
        serde_json::from_value(claims).ok()?;
    let at = AccessToken::new(access_token.to_owned());
    let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
    let token = Token::new(claims, &key.signer, alg, Some(&at), None).ok()?;
    Some(token.to_string())
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

/// Wraps the public key of a PKCS#1 private-key PEM in SubjectPublicKeyInfo PEM.
fn spki_pem(private_pem: &str) -> Option<String> {
    let b64: String = private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(b64).ok()?;
    let pair = ring::signature::RsaKeyPair::from_der(&der).ok()?;
    let pkcs1 = pair.public().as_ref();
    // AlgorithmIdentifier { rsaEncryption, NULL }
    let alg_id = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut body = alg_id.to_vec();
    body.extend(der_tlv(0x03, &bits));
    let text = STANDARD.encode(der_tlv(0x30, &body));
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    Some(format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    ))
}

fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_key_loads_and_signs() {
        let keys = Keys::load(&[]).unwrap();
        let claims =
            json!({"iss": "http://127.0.0.1:1", "sub": "s", "aud": ["c"], "iat": 1, "exp": 2});
        let token = keys.mint(0, claims, "at", Signing::Good).unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(keys.jwks(0, false).unwrap()["keys"][0]["kid"], DEMO_KEY_ID);
        assert!(
            keys.public_pem(0)
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        assert_eq!(keys.next(0), 0, "one key: rotation stays on it");
    }
}
