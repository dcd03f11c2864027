//! Stage 4, **authorize**: deciding requests with a route's compiled policy.
//!
//! [`authorize`] is the stage: the decision for this user and request, logged with its
//! reason, as allow, sign-in first, or a refusal.
//! The policy language itself — parsing, the legacy fields, compilation and the static
//! facts — is configuration, read once at load in [`crate::config::policy`]. Here,
//! [`eval`] decides one request against a
//! [`CompiledPolicy`](crate::config::policy::CompiledPolicy) and a user, and `explain`
//! turns a decision into text for logs, `portcullis check` and error pages.

mod authorize;
pub mod eval;
mod explain;

pub use authorize::{Verdict, authorize, decide, is_cors_preflight};
pub use eval::{Decision, Input, Outcome, Reason};

#[cfg(test)]
mod tests;
