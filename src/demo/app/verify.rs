//! How an upstream app verifies `X-Pomerium-Jwt-Assertion` — the demo app's version of
//! the README's "Verifying the assertion in an upstream app", with ring. Part of a demo
//! companion, never on the proxy's request path.
//!
//! The keys come from the proxy's `/.well-known/pomerium/jwks.json` at an address fixed
//! when the app starts (never one taken from the request), cached by `kid` and fetched
//! again when an unknown `kid` shows up (at most every 5 s). ES256 is checked with
//! `ECDSA_P256_SHA256_FIXED` from the JWK's `x`/`y`, RS256 with the JWK's `n`/`e`; then
//! `exp`/`nbf`/`iat` (60 s of skew) and `aud` = `iss` = the host the browser used.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::clock;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const SKEW: u64 = 60;
/// Shortest time between two JWKS fetches.
const REFETCH_AFTER: Duration = Duration::from_secs(5);

/// Why an assertion was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a compact JWS with a JSON header and payload.
    #[error("not a well-formed JWT: {0}")]
    Malformed(&'static str),
    /// An algorithm other than ES256 and RS256.
    #[error("algorithm {0:?} is not accepted (only ES256 and RS256)")]
    Algorithm(String),
    /// The proxy's JWKS could not be fetched or read.
    #[error("cannot fetch the proxy's keys: {0}")]
    Jwks(String),
    /// No published key has this `kid` (or it does not fit the algorithm).
    #[error("no published key with kid {0:?} for this algorithm")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// `exp` has passed (or is missing).
    #[error("expired (exp)")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("not valid yet (nbf/iat in the future)")]
    NotYetValid,
    /// `aud` does not name this host.
    #[error("audience is not {0:?}")]
    Audience(String),
    /// `iss` is not this host.
    #[error("issuer is not {0:?}")]
    Issuer(String),
}

/// One published key.
#[derive(Debug, Clone, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// The proxy's keys, fetched on demand.
pub(super) struct Keys {
    jwks_url: String,
    /// The `Host` to ask with (a route host of the proxy).
    host: Option<String>,
    client: reqwest::Client,
    cache: Mutex<(Vec<Jwk>, Option<Instant>)>,
}

impl Keys {
    /// Keys published at `jwks_url` (the proxy's own address).
    pub(super) fn new(jwks_url: String, host: Option<String>) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Keys {
            jwks_url,
            host,
            client,
            cache: Mutex::new((Vec::new(), None)),
        })
    }

    fn cached(&self, kid: &str) -> Option<Jwk> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .0
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .cloned()
    }

    async fn key(&self, kid: &str) -> Result<Jwk, VerifyError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let recent = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.1.is_some_and(|at| at.elapsed() < REFETCH_AFTER)
        };
        if !recent {
            let fetched = self.fetch().await;
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.1 = Some(Instant::now());
            cache.0 = fetched?;
        }
        self.cached(kid)
            .ok_or_else(|| VerifyError::UnknownKey(kid.to_owned()))
    }

    async fn fetch(&self) -> Result<Vec<Jwk>, VerifyError> {
        let jwks = |e: reqwest::Error| VerifyError::Jwks(e.without_url().to_string());
        let mut request = self.client.get(&self.jwks_url);
        if let Some(host) = &self.host {
            request = request.header(reqwest::header::HOST, host);
        }
        let response = request.send().await.map_err(jwks)?;
        let response = response.error_for_status().map_err(jwks)?;
        let set: JwkSet = response.json().await.map_err(jwks)?;
        Ok(set.keys)
    }

    /// Verifies `token` for a request that came to `host`; returns its claims.
    pub(super) async fn verify(
        &self,
        token: &str,
        host: &str,
    ) -> Result<Map<String, Value>, VerifyError> {
        let (header, claims, signed, sig) = decode(token)?;
        let kid = header.kid.unwrap_or_default();
        let key = self.key(&kid).await?;
        check_signature(&header.alg, &key, signed.as_bytes(), &sig)?;
        check_claims(&claims, host, clock::now())?;
        Ok(claims)
    }
}

type Decoded<'a> = (Header, Map<String, Value>, &'a str, Vec<u8>);

/// Splits and decodes a compact JWS (nothing verified yet).
fn decode(token: &str) -> Result<Decoded<'_>, VerifyError> {
    let (signed, sig) = token
        .rsplit_once('.')
        .ok_or(VerifyError::Malformed("expected three parts"))?;
    let (header, payload) = signed
        .split_once('.')
        .ok_or(VerifyError::Malformed("expected three parts"))?;
    let part = |p: &str, what| B64.decode(p).map_err(|_| VerifyError::Malformed(what));
    let header: Header = serde_json::from_slice(&part(header, "header is not base64url")?)
        .map_err(|_| VerifyError::Malformed("header is not a JOSE header"))?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&part(payload, "payload is not base64url")?)
            .map_err(|_| VerifyError::Malformed("payload is not a JSON object"))?;
    let sig = part(sig, "signature is not base64url")?;
    Ok((header, claims, signed, sig))
}

/// The claims of `token` without any verification, to show what an unverified token says.
pub(super) fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    decode(token).ok().map(|(_, claims, _, _)| claims)
}

fn check_signature(alg: &str, key: &Jwk, signed: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    let kid = || VerifyError::UnknownKey(key.kid.clone().unwrap_or_default());
    let b64 = |v: &Option<String>| {
        v.as_deref()
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(kid)
    };
    match alg {
        "ES256" => {
            if key.kty != "EC" || key.crv.as_deref() != Some("P-256") {
                return Err(kid());
            }
            let (x, y) = (b64(&key.x)?, b64(&key.y)?);
            if x.len() != 32 || y.len() != 32 {
                return Err(kid());
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, sig)
                .map_err(|_| VerifyError::BadSignature)
        }
        "RS256" => {
            if key.kty != "RSA" {
                return Err(kid());
            }
            let components = RsaPublicKeyComponents {
                n: b64(&key.n)?,
                e: b64(&key.e)?,
            };
            components
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, sig)
                .map_err(|_| VerifyError::BadSignature)
        }
        other => Err(VerifyError::Algorithm(other.to_owned())),
    }
}

fn check_claims(claims: &Map<String, Value>, host: &str, now: u64) -> Result<(), VerifyError> {
    let time = |name| claims.get(name).and_then(Value::as_u64);
    if time("exp").is_none_or(|exp| exp + SKEW <= now) {
        return Err(VerifyError::Expired);
    }
    if time("nbf").or(time("iat")).is_some_and(|t| t > now + SKEW) {
        return Err(VerifyError::NotYetValid);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == host,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(host)),
        _ => false,
    };
    if !audience_ok {
        return Err(VerifyError::Audience(host.to_owned()));
    }
    if claims.get("iss").and_then(Value::as_str) != Some(host) {
        return Err(VerifyError::Issuer(host.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
