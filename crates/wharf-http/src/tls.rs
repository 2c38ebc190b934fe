//! Native HTTPS: TLS handshakes (rustls) completed before hyper sees a
//! connection, with a certificate that can be swapped while serving
//! (`reload`, which the binary calls on SIGHUP after a renewal).
//!
//! Each handshake runs on its connection's own task, under
//! [`HANDSHAKE_TIMEOUT`], after the connection was admitted (`connections`), so
//! one slow or silent client cannot hold up the accept loop; a failed handshake
//! is logged at debug level and dropped.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use arc_swap::ArcSwap;
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use wharf_core::Problem;

/// The longest a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the certificate chain and its key are, so they can be read again.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The current certificate, swappable while serving.
#[derive(Clone)]
pub struct TlsConfig {
    files: TlsFiles,
    current: Arc<ArcSwap<ServerConfig>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("files", &self.files)
            .finish()
    }
}

fn load(files: &TlsFiles) -> Result<ServerConfig, Problem> {
    let at = |p: &Path| p.display().to_string();
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| Problem::new(at(p), format!("cannot read: {e}")));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&files.cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| Problem::new(at(&files.cert), format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(Problem::new(at(&files.cert), "holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&files.key)?)
        .map_err(|e| Problem::new(at(&files.key), format!("not a PEM private key: {e}")))?;
    let pair = || format!("{} + {}", at(&files.cert), at(&files.key));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Problem::new(pair(), e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Problem::new(
                pair(),
                format!("the certificate and key do not fit together: {e}"),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl TlsConfig {
    /// Read the files now; an error says which file and why.
    pub fn new(files: TlsFiles) -> Result<Self, Problem> {
        let config = load(&files)?;
        Ok(Self {
            files,
            current: Arc::new(ArcSwap::from_pointee(config)),
        })
    }

    /// Read the files again and use them for new connections; on error the
    /// current certificate stays.
    pub fn reload(&self) -> Result<(), Problem> {
        let config = load(&self.files)?;
        self.current.store(Arc::new(config));
        Ok(())
    }
}

impl TlsConfig {
    /// Complete the TLS handshake of an accepted connection, within
    /// [`HANDSHAKE_TIMEOUT`], with the certificate current now.
    pub async fn accept(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let acceptor = TlsAcceptor::from(self.current.load_full());
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
            )),
        }
    }
}
