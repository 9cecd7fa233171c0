//! `rediss://`: the certificate is verified against the public roots or a private CA.

use super::*;

#[test]
fn rediss_encrypts_verifies_the_certificate_and_delivers() {
    let pki = TestPki::new("rediss");
    let tls_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Some(server) = Server::start_tls(&pki, tls_port) else { return };

    // The server's certificate is signed by a private CA: verification (on by default) refuses it.
    let (error, _) = fails_with(config(&format!("rediss://127.0.0.1:{tls_port}")));
    assert!(error.contains("TLS handshake failed: invalid peer certificate"), "{error}");

    // `#insecure` encrypts without verifying: the session subscribes and receives over TLS.
    receives_cleanly(config(&format!("rediss://127.0.0.1:{tls_port}/#insecure")), &server);
}

/// Runs a session with `cfg` subscribed to one channel, publishes to it from `server`'s plain
/// port, and checks the message arrives without any error.
fn receives_cleanly(cfg: SessionConfig, server: &Server) {
    local(async {
        let s = subscribed(cfg, "secure", 100).await;
        let mut cli = outside(&server.url()).await;
        assert_eq!(publish(&mut cli, "secure", "over tls").await, 1);
        wait_until("the message", || s.inbox.len() == 1).await;
        assert_eq!(drain(&s.inbox)[0].payload, &b"over tls"[..]);
        assert!(s.events.errors().is_empty(), "{:?}", s.events.errors());
        s.task.abort();
    });
}

#[test]
fn rediss_with_ca_file_trusts_a_private_ca_and_only_that_one() {
    let pki = TestPki::new("rediss-ca-file");
    let tls_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Some(server) = Server::start_tls(&pki, tls_port) else { return };
    let with_ca = |file: &str| {
        let mut cfg = config(&format!("rediss://127.0.0.1:{tls_port}"));
        cfg.address = cfg.address.clone().with_ca_file(Some(pki.dir.join(file)));
        cfg
    };

    // Signed by another CA: refused, even with a ca_file.
    let (error, _) = fails_with(with_ca("wrong-ca.pem"));
    assert!(error.contains("TLS handshake failed: invalid peer certificate"), "{error}");
    // A ca_file that is not there: a clear, fatal error naming it.
    let (error, _) = fails_with(with_ca("missing.pem"));
    assert!(error.contains("ca_file") && error.contains("missing.pem"), "{error}");

    // The CA that signed it: verified, subscribes and receives, without #insecure.
    receives_cleanly(with_ca("ca.pem"), &server);
}
