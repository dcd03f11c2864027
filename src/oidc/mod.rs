//! The OpenID Connect provider, as a service the stages call: discovery, keys, ID-token
//! verification and the OAuth client for the token, userinfo and revocation endpoints.
//!
//! It knows nothing of sessions or requests: [`crate::session`] uses it to refresh
//! tokens (stage 3) and [`crate::signin`] to run the authorization-code flow.

pub(crate) mod id_token;
pub(crate) mod provider;
mod verify;

pub(crate) use provider::Provider;
pub(crate) use verify::VerifyError;
