//! TLS for `wss://`: a rustls server configuration (the *ring* provider)
//! from a PEM certificate chain and private key.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The server's certificate and key, ready to accept TLS connections.
#[derive(Clone)]
pub struct TlsConfig(pub(crate) Arc<rustls::ServerConfig>);

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

impl TlsConfig {
    /// From PEM text: the certificate chain (the server's first) and its
    /// private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`TlsError`] when either does not parse or they do not match.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<TlsConfig, TlsError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError(format!("certificate: {e}")))?;
        if certs.is_empty() {
            return Err(TlsError("no certificate in the PEM text".to_string()));
        }
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| TlsError(format!("private key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| TlsError(e.to_string()))?;
        Ok(TlsConfig(Arc::new(config)))
    }

    /// From PEM files.
    ///
    /// # Errors
    /// [`TlsError`] when a file cannot be read or does not parse.
    pub fn load(cert_chain: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| TlsError(format!("{}: {e}", path.display())))
        };
        TlsConfig::from_pem(&read(cert_chain)?, &read(key)?)
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConfig(..)")
    }
}
