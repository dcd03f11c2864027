//! Integration tests: the real proxy on 127.0.0.1 with in-process upstreams.

// Test helpers outside #[test] functions may unwrap: a failure there is a failed test.
#![allow(clippy::unwrap_used)]

mod config;
mod deadlines;
mod directory;
mod e2e_oidc;
mod forwarding;
mod identity;
mod layout;
mod limits;
mod logs;
mod policy;
mod reading;
mod replicas;
mod sessions;
mod shutdown;
mod signin;
mod signin_bounds;
mod support;
mod tls;
