//! Black-box tests of the TLS listener over real TLS on 127.0.0.1, with certificates
//! generated at test time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::routing::get;
use base64::Engine as _;
use http::HeaderMap;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use strongroom_server::pki::{self, DevPki};
use strongroom_server::tls::{self, ConnectionInfo, ServeOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Generous guard so a broken test fails instead of hanging; never an assertion on time.
const GUARD: Duration = Duration::from_secs(30);

fn sha256_hex(der: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reports the client certificate the handler saw, whether it came via a proxy, and
/// whether a `Client-Cert` header reached the router.
async fn echo(Extension(info): Extension<ConnectionInfo>, headers: HeaderMap) -> String {
    let cert = info
        .client_cert
        .as_ref()
        .and_then(|c| c.leaf())
        .map(|leaf| sha256_hex(leaf.as_ref()))
        .unwrap_or_else(|| "none".to_string());
    format!(
        "cert={cert} via_proxy={} header={}",
        info.via_proxy,
        if headers.contains_key("client-cert") { "present" } else { "absent" }
    )
}

struct Server {
    addr: SocketAddr,
    ca: CertificateDer<'static>,
    pki: DevPki,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(opts: ServeOptions) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = DevPki::load_or_create(dir.path()).expect("pki");
        let chain = tls::load_cert_chain(&pki.server_cert_path()).expect("chain");
        let key = tls::load_private_key(&pki.server_key_path()).expect("key");
        let config = tls::server_config(chain, key, true).expect("server config");
        let ca = CertificateDer::from_pem_slice(pki.ca_cert_pem().as_bytes()).expect("ca");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().route("/", get(echo));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tls::serve(listener, config, app, opts, async move {
            let _ = stopped.await;
        }));
        Server { addr, ca, pki, _dir: dir, stop: Some(stop), task }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(GUARD, &mut self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task");
        result.expect("serve result");
    }
}

/// A client identity: certificate chain + key.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    leaf_hash: String,
}

impl Identity {
    fn from_pem(cert_pem: &str, key_pem: &str) -> Identity {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>().expect("cert pem");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key pem");
        let leaf_hash = sha256_hex(chain[0].as_ref());
        Identity { chain, key, leaf_hash }
    }
}

#[derive(Debug)]
struct FixedClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[derive(Clone, Copy)]
enum ClientTls {
    /// TLS 1.2 + 1.3 with the default aws-lc-rs suites.
    Default,
    /// TLS 1.2 only, with exactly this suite.
    Tls12Only(rustls::CipherSuite),
}

fn client_config(ca: &CertificateDer<'static>, identity: Option<&Identity>, mode: ClientTls) -> rustls::ClientConfig {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    let versions: &[&'static rustls::SupportedProtocolVersion] = match mode {
        ClientTls::Default => &[&rustls::version::TLS13, &rustls::version::TLS12],
        ClientTls::Tls12Only(suite) => {
            provider.cipher_suites.retain(|s| s.suite() == suite);
            assert_eq!(provider.cipher_suites.len(), 1, "client provider has {suite:?}");
            &[&rustls::version::TLS12]
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("root");
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        // A resolver instead of `with_client_auth_cert`, so a test can present a
        // certificate with a key that does not match it.
        Some(id) => {
            let signing_key = rustls::crypto::aws_lc_rs::default_provider()
                .key_provider
                .load_private_key(id.key.clone_key())
                .expect("signing key");
            let certified = rustls::sign::CertifiedKey::new(id.chain.clone(), signing_key);
            builder.with_client_cert_resolver(Arc::new(FixedClientCert(Arc::new(certified))))
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// One HTTP/1.1 GET over TLS; returns the response body, or the TLS/IO error.
async fn get_echo(
    server: &Server,
    identity: Option<&Identity>,
    mode: ClientTls,
    extra_headers: &[(&str, String)],
) -> std::io::Result<String> {
    let config = Arc::new(client_config(&server.ca, identity, mode));
    get_echo_with(server, config, extra_headers).await.map(|(body, _)| body)
}

/// One HTTP/1.1 GET over TLS with a given client configuration (whose session cache
/// allows resumption); returns the body and the handshake kind.
async fn get_echo_with(
    server: &Server,
    config: Arc<rustls::ClientConfig>,
    extra_headers: &[(&str, String)],
) -> std::io::Result<(String, Option<rustls::HandshakeKind>)> {
    let connector = tokio_rustls::TlsConnector::from(config);
    let tcp = TcpStream::connect(server.addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    let kind = tls.get_ref().1.handshake_kind();
    let mut request = String::from("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tls.write_all(request.as_bytes()).await?;
    let mut buf = Vec::new();
    // With TLS 1.3 a rejected client certificate surfaces only here, as a read error.
    let read = tls.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        read?;
        return Err(std::io::Error::other(format!("no HTTP response: {text:?}")));
    };
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("unexpected response: {head}")));
    }
    Ok((body.to_string(), kind))
}

async fn echo_default(server: &Server, identity: Option<&Identity>) -> String {
    tokio::time::timeout(GUARD, get_echo(server, identity, ClientTls::Default, &[]))
        .await
        .expect("guard")
        .expect("request succeeds")
}

fn ca_issued(server: &Server, name: &str) -> Identity {
    let (cert, key) = server.pki.issue_client_cert_pem(name).expect("client cert");
    Identity::from_pem(&cert, &key)
}

fn self_signed(name: &str) -> Identity {
    let (cert, key) = pki::self_signed_client_cert(name).expect("self-signed");
    Identity::from_pem(&cert, &key)
}

fn client_cert_header(id: &Identity) -> String {
    format!(":{}:", base64::engine::general_purpose::STANDARD.encode(id.chain[0].as_ref()))
}

fn proxy_opts(trusted: &[&str]) -> ServeOptions {
    ServeOptions {
        trusted_proxies: tls::parse_trusted_proxies(&trusted.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("cidr"),
        proxy_cert_header: Some("Client-Cert".to_string()),
        ..ServeOptions::default()
    }
}

#[tokio::test]
async fn no_client_cert_is_none() {
    let server = Server::start(ServeOptions::default()).await;
    let body = echo_default(&server, None).await;
    assert_eq!(body, "cert=none via_proxy=false header=absent");
    server.shutdown().await;
}

#[tokio::test]
async fn ca_issued_client_cert_reaches_handler() {
    let server = Server::start(ServeOptions::default()).await;
    let id = ca_issued(&server, "client-a");
    let body = echo_default(&server, Some(&id)).await;
    assert_eq!(body, format!("cert={} via_proxy=false header=absent", id.leaf_hash));
    server.shutdown().await;
}

#[tokio::test]
async fn self_signed_client_cert_is_accepted() {
    let server = Server::start(ServeOptions::default()).await;
    let id = self_signed("self-signed-client");
    let body = echo_default(&server, Some(&id)).await;
    assert_eq!(body, format!("cert={} via_proxy=false header=absent", id.leaf_hash));
    server.shutdown().await;
}

#[tokio::test]
async fn client_cert_without_matching_key_is_rejected() {
    // Possession of the key is still proven: a certificate presented with a different key
    // fails the CertificateVerify check.
    let server = Server::start(ServeOptions::default()).await;
    let a = self_signed("holder");
    let b = self_signed("impostor");
    let forged = Identity { chain: a.chain.clone(), key: b.key.clone_key(), leaf_hash: a.leaf_hash.clone() };
    let result =
        tokio::time::timeout(GUARD, get_echo(&server, Some(&forged), ClientTls::Default, &[])).await.expect("guard");
    assert!(result.is_err(), "mismatched key must fail: {result:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn tls12_with_allowed_suite_works() {
    let server = Server::start(ServeOptions::default()).await;
    let id = ca_issued(&server, "client-tls12");
    for suite in [
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ] {
        let body = tokio::time::timeout(GUARD, get_echo(&server, Some(&id), ClientTls::Tls12Only(suite), &[]))
            .await
            .expect("guard")
            .unwrap_or_else(|e| panic!("{suite:?} must work: {e}"));
        assert_eq!(body, format!("cert={} via_proxy=false header=absent", id.leaf_hash));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn tls12_with_suite_not_offered_fails() {
    // F2SP-5.2.2-1: only the four ECDHE-GCM suites in TLS 1.2.
    let server = Server::start(ServeOptions::default()).await;
    let result = tokio::time::timeout(
        GUARD,
        get_echo(
            &server,
            None,
            ClientTls::Tls12Only(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256),
            &[],
        ),
    )
    .await
    .expect("guard");
    assert!(result.is_err(), "CHACHA20 in TLS 1.2 must be refused: {result:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn silent_client_does_not_block_others() {
    let server = Server::start(ServeOptions::default()).await;
    // Connects, never sends a ClientHello, stays open for the whole test.
    let silent = TcpStream::connect(server.addr).await.expect("connect");
    let silent2 = TcpStream::connect(server.addr).await.expect("connect");
    let body = echo_default(&server, None).await;
    assert_eq!(body, "cert=none via_proxy=false header=absent");
    drop((silent, silent2));
    server.shutdown().await;
}

#[tokio::test]
async fn silent_client_is_dropped_after_handshake_timeout() {
    let server =
        Server::start(ServeOptions { handshake_timeout: Duration::from_millis(200), ..ServeOptions::default() }).await;
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(GUARD, silent.read(&mut buf)).await.expect("server closes the silent connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn trusted_proxy_header_cert_is_used() {
    let server = Server::start(proxy_opts(&["127.0.0.1"])).await;
    let client = ca_issued(&server, "behind-proxy");
    // The "proxy" presents its own TLS certificate; the handler must see the header's.
    let proxy = ca_issued(&server, "the-proxy");
    let header = vec![("Client-Cert", client_cert_header(&client))];
    let body = tokio::time::timeout(GUARD, get_echo(&server, Some(&proxy), ClientTls::Default, &header))
        .await
        .expect("guard")
        .expect("request");
    assert_eq!(body, format!("cert={} via_proxy=true header=present", client.leaf_hash));
    server.shutdown().await;
}

#[tokio::test]
async fn trusted_proxy_nginx_escaped_header_is_used() {
    let mut opts = proxy_opts(&["127.0.0.0/8"]);
    opts.proxy_cert_header = Some("X-SSL-Client-Cert".to_string());
    let server = Server::start(opts).await;
    let (cert_pem, key_pem) = server.pki.issue_client_cert_pem("nginx-client").expect("cert");
    let client = Identity::from_pem(&cert_pem, &key_pem);
    let escaped = percent_encoding::utf8_percent_encode(&cert_pem, percent_encoding::NON_ALPHANUMERIC).to_string();
    let header = vec![("X-SSL-Client-Cert", escaped)];
    let body = tokio::time::timeout(GUARD, get_echo(&server, None, ClientTls::Default, &header))
        .await
        .expect("guard")
        .expect("request");
    assert_eq!(body, format!("cert={} via_proxy=true header=absent", client.leaf_hash));
    server.shutdown().await;
}

#[tokio::test]
async fn untrusted_peer_header_is_ignored_and_stripped() {
    let server = Server::start(proxy_opts(&["10.0.0.0/8"])).await;
    let injected = self_signed("injected");
    let header =
        vec![("Client-Cert", client_cert_header(&injected)), ("Client-Cert-Chain", client_cert_header(&injected))];
    let body = tokio::time::timeout(GUARD, get_echo(&server, None, ClientTls::Default, &header))
        .await
        .expect("guard")
        .expect("request");
    assert_eq!(body, "cert=none via_proxy=false header=absent");

    // With its own TLS certificate, the untrusted client is seen by that certificate only.
    let own = self_signed("direct");
    let body = tokio::time::timeout(GUARD, get_echo(&server, Some(&own), ClientTls::Default, &header))
        .await
        .expect("guard")
        .expect("request");
    assert_eq!(body, format!("cert={} via_proxy=false header=absent", own.leaf_hash));
    server.shutdown().await;
}

#[tokio::test]
async fn no_proxy_configured_strips_client_cert_header() {
    let server = Server::start(ServeOptions::default()).await;
    let injected = self_signed("injected");
    let header = vec![("Client-Cert", client_cert_header(&injected))];
    let body = tokio::time::timeout(GUARD, get_echo(&server, None, ClientTls::Default, &header))
        .await
        .expect("guard")
        .expect("request");
    assert_eq!(body, "cert=none via_proxy=false header=absent");
    server.shutdown().await;
}

#[tokio::test]
async fn server_without_client_auth_request_serves_plain_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = DevPki::load_or_create(dir.path()).expect("pki");
    let chain = tls::load_cert_chain(&pki.server_cert_path()).expect("chain");
    let key = tls::load_private_key(&pki.server_key_path()).expect("key");
    let config = tls::server_config(chain, key, false).expect("config");
    assert_eq!(config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(tls::serve(
        listener,
        config,
        axum::Router::new().route("/", get(echo)),
        ServeOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let server = Server {
        addr,
        ca: CertificateDer::from_pem_slice(pki.ca_cert_pem().as_bytes()).expect("ca"),
        pki,
        _dir: dir,
        stop: Some(stop),
        task,
    };
    // A client that has a certificate is not asked for it.
    let id = self_signed("unasked");
    let body = echo_default(&server, Some(&id)).await;
    assert_eq!(body, "cert=none via_proxy=false header=absent");
    server.shutdown().await;
}

#[tokio::test]
async fn resumed_session_keeps_client_cert() {
    let server = Server::start(ServeOptions::default()).await;
    let id = ca_issued(&server, "resuming-client");
    let expected = format!("cert={} via_proxy=false header=absent", id.leaf_hash);
    for mode in [ClientTls::Default, ClientTls::Tls12Only(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)]
    {
        let config = Arc::new(client_config(&server.ca, Some(&id), mode));
        let (first, kind) = tokio::time::timeout(GUARD, get_echo_with(&server, config.clone(), &[]))
            .await
            .expect("guard")
            .expect("first request");
        assert_eq!(first, expected);
        assert_eq!(kind, Some(rustls::HandshakeKind::Full));
        let (second, kind) = tokio::time::timeout(GUARD, get_echo_with(&server, config, &[]))
            .await
            .expect("guard")
            .expect("resumed request");
        assert_eq!(kind, Some(rustls::HandshakeKind::Resumed), "session resumption");
        assert_eq!(second, expected, "client certificate survives resumption");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_completes_with_a_handshake_pending() {
    let server =
        Server::start(ServeOptions { handshake_timeout: Duration::from_secs(600), ..ServeOptions::default() }).await;
    let _silent = TcpStream::connect(server.addr).await.expect("connect");
    // Let the server accept it, then shut down while its handshake is still pending.
    let body = echo_default(&server, None).await;
    assert_eq!(body, "cert=none via_proxy=false header=absent");
    server.shutdown().await;
}
