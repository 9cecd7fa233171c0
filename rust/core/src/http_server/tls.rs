//! TLS for `HttpServer`: a certificate chain and key from PEM files, ALPN
//! offering HTTP/2 then HTTP/1.1 (WebSocket clients ask for neither and get HTTP/1.1).

use std::{path::Path, sync::Arc};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio_rustls::TlsAcceptor;

/// The acceptor for `certificate` and `key` (PEM), with errors naming the file.
pub fn acceptor(certificate: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    crate::ws::tls::install_crypto_provider();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("tls_certificate_file '{}': {e}", certificate.display()))?;
    if chain.is_empty() {
        return Err(format!("tls_certificate_file '{}': no certificate in it", certificate.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls_key_file '{}': {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls_certificate_file and tls_key_file do not make a usable pair: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
