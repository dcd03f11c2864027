//! Stage 1, **accept**: listeners, TLS, HTTP/1.1 and HTTP/2, connection limits and
//! graceful shutdown.
//!
//! [`Server::bind`] opens every socket up front (so callers learn the real addresses,
//! and a port conflict fails at start); [`Server::serve`] accepts until the shutdown
//! future resolves, then stops accepting and lets in-flight requests finish for at most
//! `timeout_shutdown`.

pub mod conn;
pub mod redirect;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::pipeline::App;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS configuration is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// A bound, not yet serving, proxy.
pub struct Server {
    app: Arc<App>,
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    redirect: Option<TcpListener>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the main listener (and `http_redirect_addr`, if set).
    pub async fn bind(app: App) -> Result<Self, ServerError> {
        let settings = &app.config.server;
        let acceptor = if settings.insecure {
            None
        } else {
            Some(TlsAcceptor::from(tls::build_server_config(
                &settings.certificates,
            )?))
        };
        let listener = listen(settings.address).await?;
        let redirect = match settings.http_redirect_addr {
            Some(addr) => Some(listen(addr).await?),
            None => None,
        };
        Ok(Self {
            app: Arc::new(app),
            listener,
            acceptor,
            redirect,
        })
    }

    /// The main listener's address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The redirect listener's address, if any.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        // Each connection task holds a clone; when all are gone, draining is done.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let settings = self.app.config.server.clone();
        let builder = conn::builder(&settings);
        if let Some(listener) = self.redirect {
            let https_port = self
                .listener
                .local_addr()
                .map_or(settings.address.port(), |a| a.port());
            tokio::spawn(redirect::serve(listener, https_port, stop_rx.clone()));
        }
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let job = conn::Job {
                app: self.app.clone(),
                builder: builder.clone(),
                acceptor: self.acceptor.clone(),
                stop: stop_rx.clone(),
                done: done_tx.clone(),
                timeouts: settings.timeouts,
            };
            tokio::spawn(job.run(stream, peer));
        }
        drop(self.listener);
        tracing::info!("shutting down: no longer accepting; finishing in-flight requests");
        let _ = stop_tx.send(true);
        drop(done_tx);
        if tokio::time::timeout(settings.timeouts.shutdown, done_rx.recv())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: some connections were still busy after timeout_shutdown");
        }
    }
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
