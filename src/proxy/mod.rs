//! Stage 5, **forward**: upstream clients, header hygiene, bodies and the forwarding step.

pub(crate) mod client;
pub(crate) mod deadline;
pub(crate) mod forward;
pub(crate) mod headers;
pub(crate) mod limit;
pub(crate) mod pool;
pub(crate) mod timed;
pub(crate) mod tunnel;

pub(crate) use client::UpstreamClients;
pub(crate) use forward::{ForwardContext, forward};
pub(crate) use limit::UpstreamLimits;
