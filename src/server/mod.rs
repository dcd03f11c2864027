//! Stage 1, **accept**: listeners, TLS, HTTP/1.1 and HTTP/2, connection limits and
//! graceful shutdown.
//!
//! [`Server::bind`] opens every socket and builds every worker's upstream clients up
//! front (so callers learn the real addresses, and a port conflict or an unusable
//! upstream fails at start); [`Server::serve`] accepts until the shutdown
//! future resolves, then stops accepting and lets in-flight requests finish for at most
//! `timeout_shutdown`.

pub mod activity;
pub mod conn;
pub mod limit;
pub mod redirect;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::pipeline::App;
use crate::proxy::{UpstreamClients, UpstreamLimits};

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
    Tls(#[from] crate::tls::TlsError),
    /// A worker's upstream clients could not be built.
    #[error("upstream clients: {0}")]
    Upstreams(#[source] crate::tls::TlsError),
}

/// A bound, not yet serving, proxy.
pub struct Server {
    app: Arc<App>,
    /// One set of upstream clients (and pools) per worker, the first for this runtime.
    clients: Vec<UpstreamClients>,
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    redirect: Option<TcpListener>,
    limit: Arc<limit::ConnectionLimit>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the main listener (and `http_redirect_addr`, if set) and builds the
    /// upstream clients of `workers` workers: a worker that could not have its clients
    /// is a start-up error, never a worker that silently drops its connections.
    pub async fn bind(app: App, workers: usize) -> Result<Self, ServerError> {
        let nofile = limit::raise_nofile();
        let settings = &app.config.server;
        let max = settings
            .max_connections
            .unwrap_or_else(|| limit::derived(nofile));
        tracing::info!(
            max_connections = max,
            open_files = nofile,
            "downstream connection limit"
        );
        let limits = UpstreamLimits::new(&app.table, settings.upstream_max_connections);
        let clients = (0..workers.max(1))
            .map(|_| UpstreamClients::new(&app.table, &limits))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ServerError::Upstreams)?;
        let acceptor = if settings.insecure {
            None
        } else {
            Some(TlsAcceptor::from(crate::tls::server::build_server_config(
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
            clients,
            listener,
            acceptor,
            redirect,
            limit: Arc::new(limit::ConnectionLimit::new(max)),
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

    /// Serves until `shutdown` resolves, then drains. Thread per core: the current
    /// runtime accepts and serves its share; every other worker has its own thread,
    /// single-threaded runtime and upstream connection pools, and receives accepted
    /// connections round-robin — so a request, its connection and its upstream
    /// connection stay on one thread.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let settings = self.app.config.server.clone();
        if let Some(listener) = self.redirect {
            let port = self
                .listener
                .local_addr()
                .map_or(settings.address.port(), |a| a.port());
            tokio::spawn(redirect::serve(
                listener,
                port,
                settings.timeouts,
                self.limit.clone(),
                stop_rx.clone(),
            ));
        }
        let mut handoffs = Vec::new();
        let mut threads = Vec::new();
        let mut clients = self.clients.into_iter();
        let own = clients.next().unwrap_or_default();
        for (n, upstreams) in clients.enumerate() {
            let (tx, rx) = mpsc::unbounded_channel::<Handed>();
            let (app, acceptor, stop) = (self.app.clone(), self.acceptor.clone(), stop_rx.clone());
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name(format!("portcullis-worker-{}", n + 1))
                .spawn(move || {
                    if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        runtime.block_on(serve_handed(app, upstreams, rx, acceptor, stop));
                    }
                    let _ = done_tx.send(());
                });
            if spawned.is_ok() {
                handoffs.push(tx);
                threads.push(done_rx);
            }
        }
        let local = Local {
            app: self.app.clone(),
            upstreams: Arc::new(own),
            acceptor: self.acceptor.clone(),
            stop: stop_rx,
        };
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let builder = conn::builder(&settings);
        tokio::pin!(shutdown);
        let errors = limit::Throttle::new(std::time::Duration::from_secs(1));
        let mut next = 0usize;
        loop {
            // At the cap, accepting pauses here until a connection closes.
            let slot = tokio::select! {
                biased;
                () = &mut shutdown => break,
                slot = self.limit.acquire() => slot,
            };
            let Some(slot) = slot else { break };
            let accepted = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    if let Some(left_out) = errors.allow() {
                        tracing::warn!(error = %e, left_out, "accept failed");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            next = (next + 1) % (handoffs.len() + 1);
            if next > 0 {
                if let Ok(std_stream) = stream.into_std() {
                    let _ = handoffs[next - 1].send((std_stream, peer, slot));
                }
                continue;
            }
            tokio::spawn(local.job(&builder, &done_tx, slot).run(stream, peer));
        }
        drop(self.listener);
        drop(handoffs);
        tracing::info!("shutting down: no longer accepting; finishing in-flight requests");
        let _ = stop_tx.send(true);
        drop(done_tx);
        if tokio::time::timeout(settings.timeouts.shutdown, done_rx.recv())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: some connections were still busy after timeout_shutdown");
        }
        for done in threads {
            let _ = done.await;
        }
    }
}

/// An accepted connection handed to a worker thread, with its place under the cap.
type Handed = (std::net::TcpStream, SocketAddr, limit::Slot);

/// What a worker needs to serve one connection.
struct Local {
    app: Arc<App>,
    upstreams: Arc<UpstreamClients>,
    acceptor: Option<TlsAcceptor>,
    stop: watch::Receiver<bool>,
}

impl Local {
    fn job(
        &self,
        builder: &hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
        done: &mpsc::Sender<()>,
        slot: limit::Slot,
    ) -> conn::Job {
        conn::Job {
            app: self.app.clone(),
            upstreams: self.upstreams.clone(),
            builder: builder.clone(),
            acceptor: self.acceptor.clone(),
            stop: self.stop.clone(),
            done: done.clone(),
            timeouts: self.app.config.server.timeouts,
            slot,
        }
    }
}

/// A worker thread: serves the connections handed to it until the hand-off closes, then
/// lets its in-flight requests finish for at most `timeout_shutdown`.
async fn serve_handed(
    app: Arc<App>,
    upstreams: UpstreamClients,
    mut handed: mpsc::UnboundedReceiver<Handed>,
    acceptor: Option<TlsAcceptor>,
    stop: watch::Receiver<bool>,
) {
    let settings = app.config.server.clone();
    let builder = conn::builder(&settings);
    let local = Local {
        app,
        upstreams: Arc::new(upstreams),
        acceptor,
        stop,
    };
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    while let Some((stream, peer, slot)) = handed.recv().await {
        if let Ok(stream) = tokio::net::TcpStream::from_std(stream) {
            tokio::spawn(local.job(&builder, &done_tx, slot).run(stream, peer));
        }
    }
    drop(done_tx);
    if tokio::time::timeout(settings.timeouts.shutdown, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some connections were still busy after timeout_shutdown");
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
