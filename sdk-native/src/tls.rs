//! TLS for `wss://` endpoints (rustls with the *ring* provider) and the
//! access token that goes with each connection.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use crate::error::ClientError;

/// Which certificates a `wss://` server's chain may end in, or a whole
/// rustls configuration. The default trusts the Mozilla root store that
/// ships with the crate (`webpki-roots`).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Also trust the platform's root store (feature `native-roots`).
    pub native_roots: bool,
    /// Also trust these certificates (a private CA, a self-signed server).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Use this configuration as it is, instead of building one from the
    /// fields above.
    pub config: Option<Arc<rustls::ClientConfig>>,
}

impl TlsOptions {
    /// The rustls configuration connections use.
    ///
    /// # Errors
    /// [`ClientError::Tls`] when a root certificate is not a usable one, or
    /// the platform's roots were asked for without the `native-roots`
    /// feature.
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, ClientError> {
        if let Some(config) = &self.config {
            return Ok(config.clone());
        }
        let tls = |reason: String| ClientError::Tls { reason };
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if self.native_roots {
            add_native_roots(&mut roots).map_err(tls)?;
        }
        for cert in &self.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| tls(format!("root certificate refused: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

#[cfg(feature = "native-roots")]
fn add_native_roots(roots: &mut rustls::RootCertStore) -> Result<(), String> {
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "no usable platform root certificate ({} errors)",
            found.errors.len()
        ));
    }
    Ok(())
}

#[cfg(not(feature = "native-roots"))]
fn add_native_roots(_: &mut rustls::RootCertStore) -> Result<(), String> {
    Err("platform root certificates need the `native-roots` feature".to_string())
}

/// A token fetched when it is needed, as a boxed future.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Where the access token of each connection comes from: called before
/// every connection attempt, so that a reconnect never reuses a token that
/// expired meanwhile. Any `Fn() -> impl Future<Output = Result<String, E>>`
/// is one.
pub trait TokenProvider: Send + Sync + 'static {
    /// The token for the next connection; an error fails that attempt
    /// (the client tries again with backoff).
    fn token(&self) -> TokenFuture;
}

impl<F, Fut, E> TokenProvider for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, E>> + Send + 'static,
    E: fmt::Display,
{
    fn token(&self) -> TokenFuture {
        let future = self();
        Box::pin(async move { future.await.map_err(|e| e.to_string()) })
    }
}

/// A shared [`TokenProvider`].
#[derive(Clone)]
pub struct TokenSource(pub(crate) Arc<dyn TokenProvider>);

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSource(..)")
    }
}
