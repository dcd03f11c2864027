//! Stage 4, **authorize** (policy half): the Pomerium Policy Language.
//!
//! [`ppl`] parses policy documents into an AST at config load; [`matcher`] holds the
//! string, list, date and time matchers the criteria use.

pub mod interim;
pub mod matcher;
pub mod ppl;
