//! Test-only certificates: a CA, a second "wrong" CA, and a server certificate for
//! 127.0.0.1 / localhost signed by the first, made at test time with rcgen. Shared by the
//! `wss://`, `https://` and `rediss://` tests.

use std::{path::PathBuf, sync::Arc};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};

/// `ca.pem`, `wrong-ca.pem`, and the server's `server.pem` and `server-key.pem` (for servers run
/// as programs) in a temporary folder (removed on drop), and the server's TLS configuration.
pub struct TestPki {
    pub dir: PathBuf,
    pub server: Arc<rustls::ServerConfig>,
}

impl TestPki {
    /// Makes the certificates; `name` keeps the folders of concurrent tests apart.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("async_net_pki_{name}_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = new_ca();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("wrong-ca.pem"), new_ca().pem()).unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("server-key.pem"), key.serialize_pem()).unwrap();
        crate::ws::tls::install_crypto_provider();
        let key_der = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key_der)
            .unwrap();
        TestPki { dir, server: Arc::new(server) }
    }

    /// An acceptor for TLS servers using the server certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}
