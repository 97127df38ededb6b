//! The accept loop: HTTP/1.1 (with WebSocket upgrades) on a TCP listener, in plain text or over
//! TLS (`--tls-cert`/`--tls-key`, rustls).
//!
//! Its own loop rather than `axum::serve`, for the limits a server on a network needs:
//! - a client must finish a TLS handshake and each request's headers within
//!   `--header-read-timeout` (10 s), or its connection is closed: a slow client ("slowloris")
//!   holds a socket for at most that long, and no task waits on it for longer;
//! - the head of a request (request line and headers) is at most [`MAX_HEAD_BYTES`]; a larger
//!   one is refused with 431 before more is buffered;
//! - on shutdown it stops accepting, lets each connection finish its request in flight, and
//!   returns when every connection has closed.
//!
//! Each connection's requests carry [`ConnectInfo`] with the peer address, as axum's own
//! server does, for the login throttle.

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

/// Largest request head (request line and headers) a connection buffers.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How the listener serves its connections.
#[derive(Clone)]
pub struct ListenerConfig {
    /// TLS, when the server terminates it itself.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Longest a client may take for the TLS handshake, and for each request's head.
    pub header_read_timeout: Duration,
}

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read a PEM certificate chain: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("{path}: cannot read a PEM private key: {message}")]
    Key { path: PathBuf, message: String },
    #[error("{cert} and {key}: the key does not fit the certificate: {message}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

/// Reads a PEM certificate chain and private key into a rustls server configuration that
/// offers HTTP/1.1 (ALPN) with TLS 1.2 and 1.3.
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| TlsError::Certificate {
            path: cert.to_path_buf(),
            message: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.to_path_buf(),
            message: "the file holds no CERTIFICATE block".to_string(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|error| TlsError::Key {
        path: key.to_path_buf(),
        message: error.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(chain, private_key)
        })
        .map_err(|error| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            message: error.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `router` on `listener` until `shutdown` is cancelled and every connection has
/// finished.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ListenerConfig,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let acceptor = config.tls.clone().map(TlsAcceptor::from);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            // Out of file descriptors and the like: new connections wait, current ones go on.
            Err(error) => {
                tracing::warn!(%error, "cannot accept a connection; retrying in 1 s");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            peer,
            router.clone(),
            acceptor.clone(),
            config.header_read_timeout,
            shutdown.clone(),
        ));
    }
    connections.close();
    connections.wait().await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    acceptor: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) {
    let Some(acceptor) = acceptor else {
        return drive(stream, peer, router, header_read_timeout, shutdown).await;
    };
    let handshake = tokio::select! {
        _ = shutdown.cancelled() => return,
        handshake = tokio::time::timeout(header_read_timeout, acceptor.accept(stream)) => handshake,
    };
    match handshake {
        Ok(Ok(tls)) => drive(tls, peer, router, header_read_timeout, shutdown).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

async fn drive<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request)
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
