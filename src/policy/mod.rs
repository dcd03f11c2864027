//! Stage 4, **authorize** (policy half): the Pomerium Policy Language.
//!
//! [`ppl`] parses policy documents into an AST at config load; [`matcher`] holds the
//! string, list, date and time matchers the criteria use; [`compile`] turns a route's
//! access settings into a [`CompiledPolicy`], and [`eval`] decides requests with it.

mod authorize;
mod calendar;
mod caseless;
pub mod compile;
pub mod eval;
mod explain;
mod facts;
mod legacy;
pub mod matcher;
pub mod ppl;

pub use authorize::{Verdict, authorize, decide, is_cors_preflight};
pub use compile::CompiledPolicy;
pub use eval::{Decision, Input, Outcome, Reason};
