//! TLS for the HTTP API (rustls on ring, no OpenSSL), and the certificates of a local
//! alliance.
//!
//! With `[api] tls_cert` and `tls_key` set, the API serves HTTPS only. Handshakes run each in
//! its own task with a deadline, so a client that never finishes one holds nobody else up; a
//! plain HTTP request to the TLS port gets a plain-text 400 saying to use https, rather than a
//! closed connection. `caihong testnet --tls` makes a local CA (`DIR/ca.pem`) and a
//! certificate for each member's API, as an operator would get from their own CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Longest a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server side of the API's TLS from a certificate chain and a private key (PEM files).
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let read = |p: &Path| {
        std::fs::read(p).with_context(|| format!("cannot read the API's TLS file {}", p.display()))
    };
    let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no certificate (tls_cert)",
        cert.display()
    );
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .with_context(|| format!("{} is not a PEM private key", key.display()))?
        .with_context(|| format!("{} holds no private key (tls_key)", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the API's TLS certificate and key do not go together")?;
    Ok(Arc::new(config))
}

/// Accepted TLS connections for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Accepts on `tcp` in the background: each connection's handshake in its own task.
    pub fn spawn(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let addr = tcp.local_addr()?;
        let (done, ready) = mpsc::channel(256);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("API accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    if let Some(tls) = handshake(acceptor, stream, peer).await {
                        let _ = done.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { addr, ready })
    }
}

/// The handshake of one connection, or `None` (said to a plain-HTTP client, logged otherwise).
async fn handshake(
    acceptor: TlsAcceptor,
    mut stream: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let mut first = [0u8; 8];
    let peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await;
    if let Ok(Ok(n)) = peeked
        && looks_like_http(&first[..n])
    {
        let body = "this node's API serves HTTPS only: use https:// (caihong --ca-cert CA.pem for \
                    a CA of the alliance's own)\n";
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        return None;
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(%peer, "API TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "API TLS handshake timed out");
            None
        }
    }
}

/// Whether the first bytes are an HTTP/1 request line rather than a TLS record.
fn looks_like_http(bytes: &[u8]) -> bool {
    ["GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC"]
        .iter()
        .any(|m| bytes.starts_with(m.as_bytes()))
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task ended (the runtime is shutting down): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Where `caihong testnet --tls` puts a member's API certificate and key, in its home.
pub fn member_tls_paths(home: &Path) -> (PathBuf, PathBuf) {
    (home.join("tls/api.crt"), home.join("tls/api.key"))
}

/// A local CA, written as `dir/ca.pem` (its key as `dir/ca-key.pem`, owner-only), that signs
/// each member's API certificate (for 127.0.0.1 and localhost); returns the CA file.
pub fn write_local_ca(dir: &Path, homes: &[PathBuf]) -> anyhow::Result<PathBuf> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Caihong local alliance CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).with_context(|| ca_path.display().to_string())?;
    write_owner_only(&dir.join("ca-key.pem"), ca_key.serialize_pem().as_bytes())?;
    for home in homes {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{} API", home.display()));
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        let (cert_path, key_path) = member_tls_paths(home);
        std::fs::create_dir_all(home.join("tls"))?;
        std::fs::write(&cert_path, cert.pem()).with_context(|| cert_path.display().to_string())?;
        write_owner_only(&key_path, key.serialize_pem().as_bytes())?;
    }
    Ok(ca_path)
}

fn write_owner_only(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_told_apart_from_a_tls_hello() {
        assert!(looks_like_http(b"GET /v1/"));
        assert!(looks_like_http(b"POST /v1"));
        // A TLS record: handshake (22), version 3.x.
        assert!(!looks_like_http(&[22, 3, 1, 0, 200, 1, 0, 0]));
    }

    /// The local CA's member certificates load as a server configuration.
    #[test]
    fn a_local_ca_issues_member_certificates_that_load() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("hohhot");
        std::fs::create_dir_all(&home).unwrap();
        let ca = write_local_ca(dir.path(), std::slice::from_ref(&home)).unwrap();
        assert!(
            std::fs::read_to_string(ca)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        let (cert, key) = member_tls_paths(&home);
        server_config(&cert, &key).unwrap();
        let err = server_config(&cert, &cert).unwrap_err();
        assert!(format!("{err:#}").contains("no private key"), "{err:#}");
    }
}
