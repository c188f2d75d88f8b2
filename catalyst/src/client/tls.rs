//! What a client's `wss://` sockets trust: the public roots (as `https://` requests do) and the
//! certificate authority the client was given.

use std::sync::Arc;

use draft_http::ClientError;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A TLS client configuration trusting the public roots and every certificate in `pem`.
///
/// # Errors
/// [`ClientError::Protocol`] if `pem` holds no certificate, or one that is not usable.
pub(crate) fn trusting(pem: &[u8]) -> Result<Arc<ClientConfig>, ClientError> {
    let invalid = |why: String| ClientError::Protocol(format!("the CA file: {why}"));
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut added = 0;
    for certificate in CertificateDer::pem_slice_iter(pem) {
        let certificate = certificate.map_err(|e| invalid(e.to_string()))?;
        roots.add(certificate).map_err(|e| invalid(e.to_string()))?;
        added += 1;
    }
    if added == 0 {
        return Err(invalid("it holds no certificate".to_owned()));
    }
    let config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| invalid(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_refused() {
        for pem in [
            &b""[..],
            b"not a certificate",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            assert!(trusting(pem).is_err(), "{:?}", String::from_utf8_lossy(pem));
        }
    }
}
