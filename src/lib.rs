//! Portcullis: an authenticating reverse proxy that speaks Pomerium's configuration
//! language.
//!
//! Every request takes the same path, one module per stage (see [`pipeline`]):
//!
//! 1. **accept** ([`server`]): TLS, HTTP/1.1 and HTTP/2, limits, graceful drain;
//! 2. **match_route** ([`routes`]): one canonical request view, internal endpoints, then
//!    user routes by host;
//! 3. **load_session** ([`session`]): the user's session, refreshed when due;
//! 4. **authorize** ([`policy`]): the route's policy decides;
//! 5. **forward** ([`proxy`]): header hygiene, streaming to a pooled upstream.
//!
//! The stages call services below them — [`signin`] (the sign-in flow and its
//! endpoints), [`oidc`] (the identity provider), [`directory`] (Okta groups),
//! [`identity`] (the signed assertion) — and everything stands on a ground floor of
//! shared vocabulary: [`config`], [`error`] and [`respond`] (the one place errors
//! become responses), [`context`], [`telemetry`], [`clock`], [`seal`], [`tls`] and
//! [`body`]. Dependencies point down only; the README's "Layout" section has the floors.

pub(crate) mod body;
pub mod clock;
pub mod config;
pub(crate) mod context;
pub mod demo;
pub(crate) mod directory;
pub(crate) mod error;
pub(crate) mod identity;
pub(crate) mod oidc;
pub mod pipeline;
pub mod policy;
pub(crate) mod proxy;
pub(crate) mod respond;
pub mod routes;
pub mod seal;
pub mod server;
pub mod session;
pub(crate) mod signin;
pub mod telemetry;
pub mod tls;

use std::future::Future;

pub use config::Config;
pub use pipeline::App;
pub use server::Server;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The application could not be built (session store, signing key).
    #[error(transparent)]
    App(#[from] pipeline::AppError),
    /// Listening failed.
    #[error(transparent)]
    Server(#[from] server::ServerError),
}

/// Installs ring as the process-wide rustls provider (idempotent).
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Binds every listener for `config` with `workers` workers (threads) and returns the
/// server, ready to [`Server::serve`].
pub async fn bind(config: Config, workers: usize) -> Result<Server, StartError> {
    install_crypto_provider();
    let app = App::new(config)?;
    app.start().await;
    Ok(Server::bind(app, workers).await?)
}

/// Runs the proxy until `shutdown` resolves, then drains in-flight requests.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    // Thread per core: one worker per available CPU.
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let server = bind(config, workers).await?;
    if let Some(addr) = server.local_addr() {
        tracing::info!(%addr, "listening");
    }
    server.serve(shutdown).await;
    Ok(())
}
