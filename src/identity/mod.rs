//! Identity to upstreams, a service of stage 5 (**forward**): the signed
//! `X-Pomerium-Jwt-Assertion`, the `X-Pomerium-Claim-*` values and the JWKS that
//! upstreams verify the assertion with. (`set_request_headers` templates are parsed at
//! load in [`crate::config::template`].)
//!
//! - [`keys`]: the signing keys (from `signing_key`, or derived from `shared_secret` so
//!   every replica agrees) and the published JWKS.
//! - [`assertion`]: one compact JWS per (user, route host), Pomerium-compatible claims.
//! - [`cache`]: reuses a fresh assertion so signing stays off the hot path.
//! - [`headers`]: claim values → header values (never a raw CR, LF or NUL).
//!
//! Invariant: no key material ever reaches a `Debug`, `Display` or error message; the
//! JWKS holds public parts only.

pub(crate) mod assertion;
pub(crate) mod cache;
mod der;
pub(crate) mod headers;
pub(crate) mod inject;
pub(crate) mod keys;

#[cfg(test)]
mod test_keys;
#[cfg(test)]
mod test_support;

pub(crate) use assertion::Claims;
pub(crate) use cache::AssertionCache;
pub(crate) use headers::{claim_header_value, claim_of};
pub(crate) use keys::SigningKeys;

/// Why keys could not be loaded or an assertion could not be signed. Messages name the
/// problem, never key material.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// `signing_key` is unusable.
    #[error("signing_key: {0}")]
    SigningKey(String),
    /// The signature itself failed (should not happen with a loaded key).
    #[error("could not sign the identity assertion")]
    Sign,
    /// The session's hard end has passed: there is nothing left to assert.
    #[error("the session has ended")]
    SessionEnded,
}
