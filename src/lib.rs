//! Portcullis: an authenticating reverse proxy that speaks Pomerium's configuration
//! language.
//!
//! Every request takes the same path, one module per stage (see [`pipeline`]):
//!
//! 1. **accept** ([`server`]): TLS, HTTP/1.1 and HTTP/2, limits, graceful drain;
//! 2. **match_route** ([`routes`]): one canonical request view, internal endpoints, then
//!    user routes by host;
//! 3. **load_session**: the user's session (sign-in);
//! 4. **authorize** ([`policy`]): the route's policy decides;
//! 5. **forward** ([`proxy`]): header hygiene, streaming to a pooled upstream.
//!
//! [`respond`] is the one place errors become responses. [`config`] turns
//! `config.yaml` and the environment into a validated [`config::Config`].

pub mod body;
pub mod clock;
pub mod config;
pub mod demo;
pub mod directory;
pub mod identity;
pub mod oidc;
pub mod pipeline;
pub mod policy;
pub mod proxy;
pub mod respond;
pub mod routes;
pub mod seal;
pub mod server;
pub mod session;
pub mod telemetry;
pub mod tls;

use std::future::Future;

pub use config::Config;
pub use pipeline::App;
pub use server::Server;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The application could not be built (upstream TLS, signing key).
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

/// Binds every listener for `config` and returns the server, ready to [`Server::serve`].
pub async fn bind(config: Config) -> Result<Server, StartError> {
    install_crypto_provider();
    let app = App::new(config)?;
    app.auth.start_store().await;
    app.auth.start_discovery().await;
    Ok(Server::bind(app).await?)
}

/// Runs the proxy until `shutdown` resolves, then drains in-flight requests.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let server = bind(config).await?;
    if let Some(addr) = server.local_addr() {
        tracing::info!(%addr, "listening");
    }
    // Thread per core: one worker per available CPU.
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    server.serve_workers(workers, shutdown).await;
    Ok(())
}
