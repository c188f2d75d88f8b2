//! TLS for a listener (`--tls-cert`, `--tls-key`): a certificate chain and its key in PEM,
//! served with rustls (TLS 1.2 and 1.3, ring). A client that speaks plain HTTP to a TLS port
//! gets a plain `400` saying so, and the connection is closed, instead of a handshake error
//! it cannot read.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// A listener's TLS settings, ready to accept connections. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// Why TLS cannot be set up (the message names the file and what is wrong with it).
#[derive(Debug)]
pub struct TlsError(String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

impl Tls {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key from files.
    ///
    /// # Errors
    /// [`TlsError`] if a file cannot be read, holds no certificate or key, or the key does
    /// not fit the certificate.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| TlsError(format!("{}: {e}", path.display())))
        };
        Self::from_pem(&read(cert)?, &read(key)?).map_err(|TlsError(why)| {
            TlsError(format!("{} / {}: {why}", cert.display(), key.display()))
        })
    }

    /// [`Tls::from_files`] from PEM text in memory.
    ///
    /// # Errors
    /// As [`Tls::from_files`].
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError(format!("certificate: {e}")))?;
        if chain.is_empty() {
            return Err(TlsError("no certificate in the PEM".to_owned()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| TlsError(format!("private key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| TlsError(format!("the key does not fit the certificate: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Whether the first byte a client sent opens a TLS handshake (a handshake record).
pub(crate) fn is_tls_handshake(first: u8) -> bool {
    first == 0x16
}

/// What a plain-HTTP client gets on a TLS port.
pub(crate) const PLAIN_ON_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
content-type: application/json\r\nconnection: close\r\ncontent-length: 94\r\n\r\n\
{\"error\":{\"code\":\"invalid_parameter\",\"message\":\"this port speaks HTTPS: use an https:// URL\"}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_answer_is_well_formed() {
        let text = std::str::from_utf8(PLAIN_ON_TLS).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.parse().ok())
            .expect("length");
        assert_eq!(body.len(), length);
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(json["error"]["code"], "invalid_parameter");
    }

    #[test]
    fn certificates_and_keys_are_checked() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        let (pem, key) = (cert.cert.pem(), cert.signing_key.serialize_pem());
        assert!(Tls::from_pem(pem.as_bytes(), key.as_bytes()).is_ok());
        assert!(Tls::from_pem(b"", key.as_bytes()).is_err());
        let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).expect("cert");
        let err = Tls::from_pem(pem.as_bytes(), other.signing_key.serialize_pem().as_bytes())
            .expect_err("mismatch");
        assert!(err.to_string().contains("does not fit"), "{err}");
        assert!(is_tls_handshake(0x16) && !is_tls_handshake(b'G'));
    }
}
