//! The policy language — parsed and compiled at load; evaluation is stage 4, in the
//! crate's `policy` module (`src/policy/`).
//!
//! [`ppl`] parses policy documents (a route's `policy`, its `policy_files`) into an AST;
//! [`matcher`] and `calendar` hold the criterion data (string and list matchers, networks,
//! dates, days, times); `legacy` spells the `allowed_*` fields as the PPL they stand for;
//! [`compile`] turns a route's access settings into a [`CompiledPolicy`] — configuration
//! data, built once per route like a compiled regex — and `facts` works out what can be
//! known about it before any request (can it ever allow, does it need a user, which groups
//! does it name). Nothing here decides a request.

mod calendar;
pub(crate) mod caseless;
pub mod compile;
mod facts;
mod legacy;
pub mod matcher;
pub mod ppl;

pub use compile::CompiledPolicy;

#[cfg(test)]
pub(crate) mod tests;
