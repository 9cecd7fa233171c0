//! TLS for `wss://`: the process-wide rustls crypto provider, installed once,
//! and client configurations that verify the server (public roots, or the
//! CAs of a `ca_file` for a private CA).

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Once, OnceLock};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, pem::PemObject};

/// A CA file larger than this is not a CA file.
const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Installs rustls' `ring` provider as the process default, once. Another
/// crate may have installed one already; that one is then used.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// What to add to a failed handshake's message when the server's certificate
/// was refused: how to trust it. Empty for other failures.
pub fn untrusted_hint(error: &std::io::Error) -> &'static str {
    let text = error.to_string();
    if text.contains("certificate") || text.contains("Certificate") {
        " (the server's certificate is not trusted: set ca_file to the CA that signed it)"
    } else {
        ""
    }
}

/// The client configuration for `ca_file` (or the Mozilla roots when `None`).
/// Certificates are always verified; there is no switch to turn that off.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    install_crypto_provider();
    match ca_file {
        None => {
            static PUBLIC: OnceLock<Arc<ClientConfig>> = OnceLock::new();
            Ok(PUBLIC
                .get_or_init(|| {
                    let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                    with_roots(roots)
                })
                .clone())
        }
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_ca_file(path)? {
                roots.add(cert).map_err(|e| format!("ca_file '{}': unusable certificate: {e}", path.display()))?;
            }
            Ok(with_roots(roots))
        }
    }
}

fn with_roots(roots: RootCertStore) -> Arc<ClientConfig> {
    Arc::new(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// The certificates of a PEM file, bounded in size, with errors naming it.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let name = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("ca_file '{name}': cannot open: {e}"))?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| format!("ca_file '{name}': cannot read: {e}"))?;
    if pem.len() as u64 > MAX_CA_FILE_BYTES {
        return Err(format!("ca_file '{name}' is larger than {MAX_CA_FILE_BYTES} bytes"));
    }
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ca_file '{name}': bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("ca_file '{name}' contains no PEM certificate"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_roots_load_and_bad_ca_files_are_named() {
        client_config(None).unwrap();
        let missing = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(missing.contains("cannot open"), "{missing}");
        let dir = std::env::temp_dir().join(format!("async_net_tls_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = client_config(Some(&empty)).unwrap_err();
        assert!(error.contains("no PEM certificate"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
