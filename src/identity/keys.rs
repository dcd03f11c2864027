//! The keys that sign `X-Pomerium-Jwt-Assertion`, and the JWKS that publishes them.
//!
//! `signing_key` (base64 of PEM, or raw PEM) may hold several private keys: every one is
//! published in the JWKS and the first one signs, so a key can be rotated in by listing
//! the new key second, waiting for upstreams to refetch, then moving it first. Without
//! `signing_key`, a P-256 key is derived from `shared_secret` (HKDF-SHA256), so every
//! replica that shares the secret signs with the same key and publishes the same JWKS.
//!
//! EC P-256 keys sign ES256 (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`); RSA keys of
//! 2048 to 8192 bits sign RS256 (PKCS#8 or PKCS#1 `RSA PRIVATE KEY`). The `kid` is the
//! hex RFC 7638 SHA-256 thumbprint of the public key, as Pomerium publishes it.
//!
//! Invariant: `Debug` and every error name keys by position, kind and `kid` only.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use rustls::pki_types::pem::{PemObject as _, SectionKind};

use super::IdentityError;
use super::der;
use crate::config::secret::Secret;
use crate::seal;

/// The published public keys: `{"keys":[…]}`, ready to serve at
/// `/.well-known/pomerium/jwks.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwks {
    /// The JSON document.
    pub json: Bytes,
    /// A quoted hash of `json`, for `ETag` / `If-None-Match`.
    pub etag: String,
}

/// The assertion signing key and every published key.
pub struct SigningKeys {
    signer: Signer,
    kid: String,
    /// base64url of the JOSE header `{"alg","kid","typ"}`, computed once.
    header: String,
    jwks: Jwks,
    derived: bool,
    rng: SystemRandom,
}

enum Signer {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

impl Signer {
    fn alg(&self) -> &'static str {
        match self {
            Signer::Es256(_) => "ES256",
            Signer::Rs256(_) => "RS256",
        }
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("alg", &self.signer.alg())
            .field("kid", &self.kid)
            .field("derived", &self.derived)
            .finish_non_exhaustive()
    }
}

/// One loaded key: the signer, and its public JWK with `kid`.
struct Loaded {
    signer: Signer,
    kid: String,
    jwk: serde_json::Value,
}

/// The HKDF label of the key derived from `shared_secret`; the counter follows it.
const DERIVE_LABEL: &str = "identity/jwt-signing-key/p256";

impl SigningKeys {
    /// Loads `signing_key` (base64 of PEM, or raw PEM; every key is published, the first
    /// signs) or, when it is `None`, derives a P-256 key from `shared_secret`.
    pub fn load(
        signing_key: Option<&Secret>,
        shared_secret: &[u8; 32],
    ) -> Result<Self, IdentityError> {
        let (loaded, derived) = match signing_key {
            Some(secret) => (load_pem(secret.expose())?, false),
            None => (vec![derive_p256(shared_secret)?], true),
        };
        let mut published: Vec<serde_json::Value> = Vec::with_capacity(loaded.len());
        let mut kids: Vec<&str> = Vec::with_capacity(loaded.len());
        for key in &loaded {
            // The same key listed twice is published once.
            if !kids.contains(&key.kid.as_str()) {
                kids.push(&key.kid);
                published.push(key.jwk.clone());
            }
        }
        let json = serde_json::to_vec(&serde_json::json!({ "keys": published }))
            .map_err(|_| IdentityError::SigningKey("could not encode the JWKS".into()))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &json);
        let etag = format!("\"{}\"", hex(&digest.as_ref()[..16]));
        let jwks = Jwks {
            json: Bytes::from(json),
            etag,
        };
        let Some(first) = loaded.into_iter().next() else {
            return Err(IdentityError::SigningKey("no private key found".into()));
        };
        let header =
            serde_json::json!({ "alg": first.signer.alg(), "kid": first.kid, "typ": "JWT" });
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        Ok(Self {
            signer: first.signer,
            kid: first.kid,
            header,
            jwks,
            derived,
            rng: SystemRandom::new(),
        })
    }

    /// The published keys (computed once at load).
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWS algorithm of the signing key: `ES256` or `RS256`.
    pub fn alg(&self) -> &'static str {
        self.signer.alg()
    }

    /// Whether the key was derived from `shared_secret` (no `signing_key` was set).
    pub fn is_derived(&self) -> bool {
        self.derived
    }

    /// The encoded JOSE header (base64url), the first part of every assertion.
    pub(crate) fn encoded_header(&self) -> &str {
        &self.header
    }

    /// Signs `message` (the JWS signing input) → the raw JWS signature.
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, IdentityError> {
        match &self.signer {
            Signer::Es256(key) => key
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| IdentityError::Sign),
            Signer::Rs256(key) => {
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| IdentityError::Sign)?;
                Ok(sig)
            }
        }
    }
}

/// Turns `signing_key` text into PEM bytes: raw PEM as is, else base64 of PEM.
fn pem_text(text: &str) -> Result<Vec<u8>, IdentityError> {
    if text.contains("-----BEGIN") {
        return Ok(text.as_bytes().to_vec());
    }
    match crate::config::reader::decode_base64(text) {
        Some(bytes) if contains(&bytes, b"-----BEGIN") => Ok(bytes),
        Some(_) => Err(IdentityError::SigningKey(
            "decodes from base64, but not to PEM (expected -----BEGIN … PRIVATE KEY-----)".into(),
        )),
        None => Err(IdentityError::SigningKey(
            "expected a PEM private key, or base64 of one".into(),
        )),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every private key in the PEM, in order.
fn load_pem(text: &str) -> Result<Vec<Loaded>, IdentityError> {
    let pem = pem_text(text)?;
    reject_unsupported_blocks(&pem)?;
    let mut keys = Vec::new();
    for (index, section) in <(SectionKind, Vec<u8>)>::pem_slice_iter(&pem).enumerate() {
        let (kind, der) = section.map_err(|e| {
            IdentityError::SigningKey(format!("malformed PEM ({})", pem_error_kind(&e)))
        })?;
        let n = index + 1;
        let loaded = match kind {
            SectionKind::PrivateKey => load_pkcs8(&der),
            SectionKind::EcPrivateKey => load_sec1(&der),
            SectionKind::RsaPrivateKey => RsaKeyPair::from_der(&der)
                .map_err(rsa_problem)
                .and_then(rsa_loaded),
            // Certificates and public keys beside the key are allowed and ignored.
            _ => continue,
        };
        keys.push(loaded.map_err(|problem| {
            IdentityError::SigningKey(format!("PEM block {n} ({}): {problem}", label(kind)))
        })?);
    }
    if keys.is_empty() {
        return Err(IdentityError::SigningKey(
            "no private key found in the PEM (expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)"
                .into(),
        ));
    }
    Ok(keys)
}

/// rustls skips PEM labels it does not know; an encrypted or foreign-format private key
/// must fail loudly rather than vanish.
fn reject_unsupported_blocks(pem: &[u8]) -> Result<(), IdentityError> {
    const MARK: &[u8] = b"-----BEGIN ";
    let mut rest = pem;
    while let Some(at) = rest.windows(MARK.len()).position(|w| w == MARK) {
        rest = &rest[at + MARK.len()..];
        let end = rest
            .windows(5)
            .position(|w| w == b"-----")
            .unwrap_or(rest.len());
        let label = String::from_utf8_lossy(&rest[..end.min(64)]);
        let known = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"];
        if label.contains("PRIVATE KEY") && !known.contains(&label.as_ref()) {
            return Err(IdentityError::SigningKey(format!(
                "{label} blocks are not supported (use an unencrypted PKCS#8, SEC1 or PKCS#1 PEM key)"
            )));
        }
    }
    Ok(())
}

fn label(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::PrivateKey => "PRIVATE KEY",
        SectionKind::EcPrivateKey => "EC PRIVATE KEY",
        SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
        _ => "other",
    }
}

/// The kind of a PEM error, without anything it may quote from the input.
fn pem_error_kind(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a block has no END line",
        Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        Error::Base64Decode(_) => "a block is not valid base64",
        _ => "unreadable",
    }
}

fn load_pkcs8(der: &[u8]) -> Result<Loaded, String> {
    let info = der::pkcs8(der).ok_or("not a valid PKCS#8 key")?;
    match info.algorithm {
        der::OID_EC_PUBLIC_KEY => {
            let curve = info.parameters.ok_or("EC key without a named curve")?;
            if curve != der::OID_P256 {
                return Err(unsupported(&format!("EC key on {}", der::oid_name(curve))));
            }
            let (scalar, _) = der::sec1(info.private_key).ok_or("malformed EC key")?;
            ec_loaded(scalar)
        }
        der::OID_RSA => RsaKeyPair::from_pkcs8(der)
            .map_err(rsa_problem)
            .and_then(rsa_loaded),
        other => Err(unsupported(&format!("{} key", der::oid_name(other)))),
    }
}

fn load_sec1(der: &[u8]) -> Result<Loaded, String> {
    let (scalar, curve) = der::sec1(der).ok_or("malformed EC key")?;
    match curve {
        None | Some(der::OID_P256) => ec_loaded(scalar),
        Some(other) => Err(unsupported(&format!("EC key on {}", der::oid_name(other)))),
    }
}

fn unsupported(what: &str) -> String {
    format!("{what} is not supported; use an EC P-256 (ES256) or RSA ≥ 2048-bit (RS256) key")
}

fn rsa_problem(e: ring::error::KeyRejected) -> String {
    match e.to_string().as_str() {
        "TooSmall" => "the RSA key is smaller than 2048 bits".into(),
        "TooLarge" => "the RSA key is larger than 8192 bits".into(),
        other => format!("the RSA key is invalid ({other})"),
    }
}

/// An ES256 key from a P-256 private scalar (big-endian, at most 32 bytes).
fn ec_loaded(scalar: &[u8]) -> Result<Loaded, String> {
    if scalar.is_empty() || scalar.len() > 32 {
        return Err("the EC private key is not a P-256 scalar".into());
    }
    let mut bytes = [0u8; 32];
    bytes[32 - scalar.len()..].copy_from_slice(scalar);
    let secret = p256::SecretKey::from_slice(&bytes)
        .map_err(|_| "the EC private key is out of range for P-256")?;
    ec_from_secret(&secret, &bytes)
}

fn ec_from_secret(secret: &p256::SecretKey, scalar: &[u8; 32]) -> Result<Loaded, String> {
    use p256::elliptic_curve::sec1::ToSec1Point as _;
    let point = secret.public_key().to_sec1_point(false);
    let public = point.as_bytes();
    let pair = EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        scalar,
        public,
        &SystemRandom::new(),
    )
    .map_err(|e| format!("the EC key was rejected ({e})"))?;
    let public = pair.public_key().as_ref();
    if public.len() != 65 {
        return Err("the EC public key has an unexpected encoding".into());
    }
    let x = URL_SAFE_NO_PAD.encode(&public[1..33]);
    let y = URL_SAFE_NO_PAD.encode(&public[33..]);
    let kid = ec_thumbprint(&x, &y);
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y,
        "alg": "ES256", "use": "sig", "kid": kid,
    });
    Ok(Loaded {
        signer: Signer::Es256(pair),
        kid,
        jwk,
    })
}

fn rsa_loaded(pair: RsaKeyPair) -> Result<Loaded, String> {
    let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public());
    let n = URL_SAFE_NO_PAD.encode(&parts.n);
    let e = URL_SAFE_NO_PAD.encode(&parts.e);
    let kid = rsa_thumbprint(&n, &e);
    let jwk = serde_json::json!({
        "kty": "RSA", "n": n, "e": e, "alg": "RS256", "use": "sig", "kid": kid,
    });
    Ok(Loaded {
        signer: Signer::Rs256(pair),
        kid,
        jwk,
    })
}

/// The P-256 key derived from `shared_secret`: HKDF-SHA256 of the secret with
/// [`DERIVE_LABEL`] and a counter, the first output that is a valid scalar
/// (0 < d < n; a miss has probability about 2⁻³², so the loop almost never turns).
fn derive_p256(shared_secret: &[u8; 32]) -> Result<Loaded, IdentityError> {
    for counter in 0u32..1024 {
        let bytes = seal::derive(shared_secret, &format!("{DERIVE_LABEL}/{counter}"));
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            return ec_from_secret(&secret, &bytes).map_err(IdentityError::SigningKey);
        }
    }
    Err(IdentityError::SigningKey(
        "could not derive a key from shared_secret".into(),
    ))
}

/// RFC 7638 thumbprint of an EC P-256 JWK, hex (members in lexicographic order).
fn ec_thumbprint(x: &str, y: &str) -> String {
    thumbprint(&format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
    ))
}

/// RFC 7638 thumbprint of an RSA JWK, hex.
pub(crate) fn rsa_thumbprint(n: &str, e: &str) -> String {
    thumbprint(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#))
}

fn thumbprint(canonical: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xF)]));
    }
    out
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
