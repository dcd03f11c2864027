//! Stage 4, **authorize** (policy half): deciding requests with a route's compiled policy.
//!
//! The policy language itself — parsing, the legacy fields, compilation and the static
//! facts — is configuration, read once at load in [`crate::config::policy`]. Here,
//! [`eval`] decides one request against a
//! [`CompiledPolicy`](crate::config::policy::CompiledPolicy) and a user, and `explain`
//! turns a decision into text for logs, `portcullis check` and error pages.

pub mod eval;
mod explain;

pub use eval::{Decision, Input, Outcome, Reason};

#[cfg(test)]
mod tests;
