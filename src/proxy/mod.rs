//! Stage 5, **forward**: upstream clients, header hygiene, bodies and the forwarding step.

pub mod body;
pub mod client;
pub mod deadline;
pub mod forward;
pub mod headers;
pub mod pool;
pub mod tls;

pub use client::Upstreams;
pub use forward::{ForwardContext, forward};
