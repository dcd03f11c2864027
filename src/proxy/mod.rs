//! Stage 5, **forward**: upstream clients, header hygiene, bodies and the forwarding step.

pub mod client;
pub mod deadline;
pub mod forward;
pub mod headers;
pub mod pool;
pub mod timed;

pub use client::UpstreamClients;
pub use forward::{ForwardContext, forward};
