//! Everything TLS: the rustls server configuration, the optional client-certificate
//! verifier, the accept loop that carries each connection's TLS state into the HTTP
//! handlers, and the trusted-proxy rule for client certificates forwarded in a header.
//!
//! All rustls-version-specific code lives in this one module (rustls 0.24 renames the
//! verifier API).
//!
//! Every request served by [`serve`] carries a [`ConnectionInfo`] request extension, so
//! a handler reads the peer address and client certificate with
//! `Extension<ConnectionInfo>`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CipherSuite, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme, SupportedCipherSuite,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// How long in-flight connections may take to finish after shutdown was requested.
const GRACEFUL_SHUTDOWN_CAP: Duration = Duration::from_secs(10);

/// The TLS 1.2 suites we allow (F2SP-5.2.2-1: BCP 195 / RFC 9325 §4.2 recommended suites).
/// TLS 1.3 suites are all allowed.
const TLS12_SUITES: [CipherSuite; 4] = [
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
];

/// The RFC 9440 header carrying the client's certificate chain (excluding the leaf).
const CLIENT_CERT_CHAIN: HeaderName = HeaderName::from_static("client-cert-chain");
/// The RFC 9440 header carrying the client's end-entity certificate.
const CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");

/// A client certificate chain as presented by the client, leaf first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertChain(pub Arc<Vec<CertificateDer<'static>>>);

impl ClientCertChain {
    /// The end-entity (leaf) certificate, if the chain is not empty.
    pub fn leaf(&self) -> Option<&CertificateDer<'static>> {
        self.0.first()
    }
}

/// What the listener knows about the connection a request arrived on.
///
/// Inserted as a request extension into every request on both listeners.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// The TCP peer (the proxy's address when `via_proxy` is true).
    pub peer_addr: SocketAddr,
    /// The client certificate chain: from the TLS handshake, or, when the request came
    /// through a trusted proxy, from the configured proxy header.
    pub client_cert: Option<ClientCertChain>,
    /// True when the peer is a configured trusted proxy and a proxy certificate header is
    /// configured, so `client_cert` was taken from the header, not from TLS.
    pub via_proxy: bool,
    /// The client's address: the TCP peer, or, when the peer is a trusted proxy, the address
    /// it forwarded in `X-Forwarded-For` (see [`client_ip`]).
    pub client_ip: IpAddr,
}

/// Options for [`serve`].
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Upper bound for one TLS handshake; a client that takes longer is dropped.
    pub handshake_timeout: Duration,
    /// Peers (IP networks) whose `proxy_cert_header` is trusted.
    pub trusted_proxies: Vec<IpNet>,
    /// Name of the request header in which a trusted TLS-terminating proxy forwards the
    /// client certificate (e.g. `Client-Cert` per RFC 9440, or an nginx header carrying
    /// `$ssl_client_escaped_cert`). `None`: certificates come only from TLS.
    pub proxy_cert_header: Option<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self { handshake_timeout: Duration::from_secs(10), trusted_proxies: Vec::new(), proxy_cert_header: None }
    }
}

impl ServeOptions {
    /// Build serve options from the loaded configuration (`listen.handshake_timeout_secs`,
    /// `proxy.trusted`, `proxy.client_cert_header`).
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Self> {
        Ok(Self {
            handshake_timeout: Duration::from_secs(config.listen.handshake_timeout_secs),
            trusted_proxies: parse_trusted_proxies(&config.proxy.trusted)?,
            proxy_cert_header: config.proxy.client_cert_header.clone(),
        })
    }
}

/// Parse a list of trusted proxy addresses, each an IP address or a CIDR network.
pub fn parse_trusted_proxies(entries: &[String]) -> anyhow::Result<Vec<IpNet>> {
    entries.iter().map(|e| parse_ip_or_cidr(e).with_context(|| format!("invalid IP address or CIDR: {e:?}"))).collect()
}

/// Parse an IP address (as a /32 or /128 network) or a CIDR network.
pub fn parse_ip_or_cidr(s: &str) -> anyhow::Result<IpNet> {
    let s = s.trim();
    if let Ok(net) = IpNet::from_str(s) {
        return Ok(net.trunc());
    }
    let ip = IpAddr::from_str(s)?;
    Ok(IpNet::from(ip))
}

/// The aws-lc-rs provider restricted to TLS 1.3 suites plus the four TLS 1.2 suites of
/// F2SP-5.2.2-1.
pub fn crypto_provider() -> CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.retain(|s| match s {
        SupportedCipherSuite::Tls13(_) => true,
        SupportedCipherSuite::Tls12(_) => TLS12_SUITES.contains(&s.suite()),
    });
    provider
}

/// Build the rustls server configuration.
///
/// TLS 1.2 and 1.3 only (F2SP-5.2.1-2), TLS 1.2 limited to the BCP 195 recommended
/// ECDHE-GCM suites (F2SP-5.2.2-1), ALPN `h2` and `http/1.1`, session resumption by
/// tickets and a server-side cache. With `request_client_cert`, a client certificate is
/// requested but not required, any chain is accepted at this layer (per-client checks
/// happen in the protocol layer), and the handshake signature is still verified, so the
/// client has proven possession of the certificate's private key.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    request_client_cert: bool,
) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = Arc::new(crypto_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?;
    let builder = if request_client_cert {
        builder.with_client_cert_verifier(Arc::new(OptionalClientCert {
            algorithms: provider.signature_verification_algorithms,
        }))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(cert_chain, key).context("server certificate and key")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().context("TLS session ticketer")?;
    Ok(Arc::new(config))
}

/// Offers client authentication without requiring it and accepts any certificate chain,
/// while still verifying the handshake signature made with the certificate's key.
#[derive(Debug)]
struct OptionalClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for OptionalClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Trust decisions (CA chain, subject, registered self-signed certificate, validity)
        // are per client and made in the protocol layer. Here we only refuse what is not
        // an X.509 certificate at all.
        match x509_parser::parse_x509_certificate(end_entity.as_ref()) {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(_) => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Load a PEM certificate chain (leaf first).
pub fn load_cert_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates in {}", path.display()))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate found in {}", path.display());
    }
    Ok(chain)
}

/// Load a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| format!("reading private key from {}", path.display()))
}

/// The trusted-proxy rule, prepared once per listener.
#[derive(Clone, Debug, Default)]
pub struct ProxyRule {
    /// Peers whose certificate header is trusted.
    pub trusted: Vec<IpNet>,
    /// The header carrying the client certificate, if proxies are used.
    pub header: Option<HeaderName>,
}

impl ProxyRule {
    /// Build the rule from [`ServeOptions`]; fails on an invalid header name.
    pub fn from_options(opts: &ServeOptions) -> anyhow::Result<Self> {
        let header = opts
            .proxy_cert_header
            .as_deref()
            .map(|h| {
                HeaderName::from_str(h.trim()).with_context(|| format!("invalid proxy certificate header name {h:?}"))
            })
            .transpose()?;
        Ok(Self { trusted: opts.trusted_proxies.clone(), header })
    }

    /// Whether `ip` is a trusted proxy (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

/// Why a certificate forwarded by a trusted proxy was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ForwardedCertError {
    /// The certificate header appeared more than once: a proxy that appends instead of
    /// overwriting would let a client add its own value, so no value can be trusted.
    #[error("the forwarded client certificate header appears more than once")]
    Repeated,
    /// The header (or one `Client-Cert-Chain` element) is not a certificate.
    #[error("the forwarded client certificate is malformed")]
    Malformed,
}

/// Decide where a request's client certificate comes from, and strip forwarded
/// certificate headers that must not reach the router.
///
/// - A proxy header is configured and the TCP peer is a trusted proxy: the certificate
///   comes from that header (plus RFC 9440 `Client-Cert-Chain` when the header is
///   `Client-Cert`), `via_proxy` is true, and the proxy's own TLS certificate is ignored.
///   A header that appears more than once, or a value that is not a certificate, refuses
///   the request (RFC 9440 §2.2: `Client-Cert` is a single byte sequence; the proxy must
///   overwrite what the client sent, so two values mean it did not).
/// - Otherwise: the certificate comes from the TLS handshake, and the configured header,
///   `Client-Cert` and `Client-Cert-Chain` are removed from the request, so nobody can
///   inject a certificate by sending a header.
pub fn apply_proxy_rule(
    headers: &mut HeaderMap,
    peer_addr: SocketAddr,
    tls_cert: Option<ClientCertChain>,
    rule: &ProxyRule,
) -> Result<ConnectionInfo, ForwardedCertError> {
    let client_ip = client_ip(headers, peer_addr.ip(), rule);
    if let Some(header) = &rule.header {
        if rule.is_trusted(peer_addr.ip()) {
            let client_cert = forwarded_chain(headers, header)?;
            return Ok(ConnectionInfo { peer_addr, client_cert, via_proxy: true, client_ip });
        }
        headers.remove(header);
    }
    headers.remove(CLIENT_CERT);
    headers.remove(CLIENT_CERT_CHAIN);
    Ok(ConnectionInfo { peer_addr, client_cert: tls_cert, via_proxy: false, client_ip })
}

/// The header in which proxies name the address they received a request from.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address, for the audit log and the sign-in attempt count. `X-Forwarded-For` is believed only when the TCP
/// peer is a trusted proxy, and only as far as trusted proxies wrote it: the list is read
/// from the right (each proxy appends the address it saw), skipping trusted proxies; the
/// first other address is the client. Anything else in the list may have been written by
/// the client itself. An entry that is not an IP address stops the walk at the last
/// address known good, so a garbled header never yields a made-up client.
pub fn client_ip(headers: &HeaderMap, peer: IpAddr, rule: &ProxyRule) -> IpAddr {
    let mut client = peer.to_canonical();
    if !rule.is_trusted(client) {
        return client;
    }
    let mut entries: Vec<&str> = Vec::new();
    for line in headers.get_all(X_FORWARDED_FOR) {
        let Ok(line) = line.to_str() else { return client };
        entries.extend(line.split(',').map(str::trim));
    }
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.parse::<IpAddr>() else { return client };
        client = ip.to_canonical();
        if !rule.is_trusted(client) {
            break;
        }
    }
    client
}

/// The chain a trusted proxy forwarded in `header` (none when the header is absent).
fn forwarded_chain(headers: &HeaderMap, header: &HeaderName) -> Result<Option<ClientCertChain>, ForwardedCertError> {
    let mut values = headers.get_all(header).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ForwardedCertError::Repeated);
    }
    let decode = |v: &str| client_cert_from_proxy_header(v).ok_or(ForwardedCertError::Malformed);
    let mut chain = vec![decode(value.to_str().map_err(|_| ForwardedCertError::Malformed)?)?];
    if *header == CLIENT_CERT {
        // RFC 9440 §2.3: Client-Cert-Chain is a list; several field lines combine into one list.
        for line in headers.get_all(CLIENT_CERT_CHAIN) {
            let line = line.to_str().map_err(|_| ForwardedCertError::Malformed)?;
            for element in line.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                chain.push(decode(element)?);
            }
        }
    }
    Ok(Some(ClientCertChain(Arc::new(chain))))
}

/// The answer to a request whose forwarded certificate was refused: `400 invalid_request`
/// (RFC 6749 §5.2), without echoing the header.
fn forwarded_cert_refused(e: ForwardedCertError) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let error = strongroom_protocol::error::OAuthError::invalid_request(e.to_string());
    crate::http::ErrorResponse::from(error).into_response()
}

/// Decode a client certificate forwarded by a proxy. The format is detected from the value:
///
/// - RFC 9440 `Client-Cert`: a structured-field byte sequence `:BASE64(DER):`;
/// - nginx `$ssl_client_escaped_cert`: URL-escaped PEM (`-----BEGIN%20CERTIFICATE…`);
/// - plain PEM, or bare base64 DER.
///
/// Returns `None` when the value is empty, malformed, or not an X.509 certificate.
pub fn client_cert_from_proxy_header(value: &str) -> Option<CertificateDer<'static>> {
    let value = value.trim();
    let der: Vec<u8> = if let Some(inner) = value.strip_prefix(':').and_then(|v| v.strip_suffix(':')) {
        decode_base64(inner)?
    } else if value.starts_with('%') || value.starts_with("-----") {
        let pem = percent_encoding::percent_decode_str(value).decode_utf8().ok()?;
        CertificateDer::from_pem_slice(pem.as_bytes()).ok()?.to_vec()
    } else if value.is_empty() {
        return None;
    } else {
        decode_base64(value)?
    };
    x509_parser::parse_x509_certificate(&der).ok()?;
    Some(CertificateDer::from(der))
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let s = s.trim();
    STANDARD.decode(s).or_else(|_| STANDARD_NO_PAD.decode(s)).ok().filter(|d| !d.is_empty())
}

/// Serve `app` over TLS on `listener` until `shutdown` completes.
///
/// Each accepted connection runs in its own task: the TLS handshake (bounded by
/// `opts.handshake_timeout`, so one slow client cannot stall the listener), then HTTP/1.1
/// or HTTP/2 via hyper-util. Every request gets a [`ConnectionInfo`] extension after the
/// proxy rule ([`apply_proxy_rule`]) was applied. On shutdown the listener stops
/// accepting and in-flight connections get up to 10 seconds to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: axum::Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let rule = Arc::new(ProxyRule::from_options(&opts)?);
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    // Handshakes still in progress at shutdown are abandoned (they are not requests yet).
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let handshake_timeout = opts.handshake_timeout;
    let local = listener.local_addr().ok();
    tokio::pin!(shutdown);

    loop {
        let (tcp, peer_addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Per-connection errors (ECONNABORTED) and resource exhaustion (EMFILE)
                    // must not end the server; back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let rule = rule.clone();
        let watcher = graceful.watcher();
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(tcp));
            let tls_stream = tokio::select! {
                result = handshake => match result {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer_addr, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %peer_addr, "TLS handshake timed out");
                        return;
                    }
                },
                _ = stopping.wait_for(|stop| *stop) => return,
            };
            let tls_cert = tls_stream
                .get_ref()
                .1
                .peer_certificates()
                .filter(|c| !c.is_empty())
                .map(|c| ClientCertChain(Arc::new(c.iter().map(|c| c.clone().into_owned()).collect())));

            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                match apply_proxy_rule(req.headers_mut(), peer_addr, tls_cert.clone(), &rule) {
                    Ok(info) => {
                        req.extensions_mut().insert(info);
                        futures::future::Either::Left(app.clone().oneshot(req.map(axum::body::Body::new)))
                    }
                    Err(e) => {
                        tracing::warn!(peer = %peer_addr, error = %e, "forwarded client certificate refused");
                        futures::future::Either::Right(std::future::ready(Ok(forwarded_cert_refused(e))))
                    }
                }
            });

            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new());
            builder.http2().timer(TokioTimer::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(peer = %peer_addr, error = %e, "connection ended with an error");
            }
        });
    }

    drop(listener);
    let _ = stopping_tx.send(true);
    tracing::info!(listener = ?local, "shutting down: waiting for in-flight connections");
    if tokio::time::timeout(GRACEFUL_SHUTDOWN_CAP, graceful.shutdown()).await.is_err() {
        tracing::warn!(listener = ?local, "graceful shutdown timed out; closing remaining connections");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_cert() -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["client.example".to_string()]).expect("params");
        params.self_signed(&key).expect("cert").der().clone()
    }

    fn sf_bytes(der: &[u8]) -> String {
        format!(":{}:", base64::engine::general_purpose::STANDARD.encode(der))
    }

    fn nginx_escaped(der: &CertificateDer<'_>) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).expect("ascii"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 40000)
    }

    fn rule(trusted: &[&str], header: Option<&str>) -> ProxyRule {
        ProxyRule::from_options(&ServeOptions {
            trusted_proxies: parse_trusted_proxies(&trusted.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("cidr"),
            proxy_cert_header: header.map(str::to_string),
            ..ServeOptions::default()
        })
        .expect("rule")
    }

    #[test]
    fn rfc9440_byte_sequence_is_decoded() {
        let cert = test_cert();
        assert_eq!(client_cert_from_proxy_header(&sf_bytes(&cert)), Some(cert));
    }

    #[test]
    fn nginx_escaped_pem_is_decoded() {
        let cert = test_cert();
        let value = nginx_escaped(&cert);
        assert!(value.starts_with("-----BEGIN%20CERTIFICATE") || value.starts_with("%2D"));
        assert_eq!(client_cert_from_proxy_header(&value), Some(cert));
    }

    #[test]
    fn plain_base64_der_is_decoded() {
        let cert = test_cert();
        let value = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        assert_eq!(client_cert_from_proxy_header(&value), Some(cert));
    }

    #[test]
    fn garbage_header_values_give_none() {
        for v in ["", "::", ":aGVsbG8=:", "%2D%2D%2D", "not base64!", "-----BEGIN CERTIFICATE-----"] {
            assert_eq!(client_cert_from_proxy_header(v), None, "{v:?}");
        }
    }

    #[test]
    fn trusted_proxy_header_is_used_and_tls_cert_ignored() {
        let forwarded = test_cert();
        let proxy_tls = ClientCertChain(Arc::new(vec![test_cert()]));
        let mut headers = HeaderMap::new();
        headers.insert("client-cert", sf_bytes(&forwarded).parse().expect("value"));
        let info = apply_proxy_rule(
            &mut headers,
            peer("10.1.2.3"),
            Some(proxy_tls),
            &rule(&["10.0.0.0/8"], Some("Client-Cert")),
        )
        .expect("accepted");
        assert!(info.via_proxy);
        let chain = info.client_cert.expect("cert from header");
        assert_eq!(chain.leaf(), Some(&forwarded));
        assert_eq!(chain.0.len(), 1);
    }

    #[test]
    fn trusted_proxy_without_header_means_no_client_cert() {
        let mut headers = HeaderMap::new();
        let info = apply_proxy_rule(
            &mut headers,
            peer("127.0.0.1"),
            Some(ClientCertChain(Arc::new(vec![test_cert()]))),
            &rule(&["127.0.0.1"], Some("client-cert")),
        )
        .expect("accepted");
        assert!(info.via_proxy);
        assert!(info.client_cert.is_none());
    }

    #[test]
    fn client_cert_chain_header_is_appended_for_rfc9440() {
        let (leaf, inter) = (test_cert(), test_cert());
        let mut headers = HeaderMap::new();
        headers.insert("client-cert", sf_bytes(&leaf).parse().expect("value"));
        headers.insert("client-cert-chain", sf_bytes(&inter).parse().expect("value"));
        let info =
            apply_proxy_rule(&mut headers, peer("192.0.2.1"), None, &rule(&["192.0.2.0/24"], Some("client-cert")))
                .expect("accepted");
        assert_eq!(info.client_cert.expect("chain").0.as_slice(), &[leaf, inter]);
    }

    #[test]
    fn untrusted_peer_header_is_ignored_and_stripped() {
        let forwarded = test_cert();
        let tls = ClientCertChain(Arc::new(vec![test_cert()]));
        let mut headers = HeaderMap::new();
        headers.insert("x-ssl-cert", nginx_escaped(&forwarded).parse().expect("value"));
        headers.insert("client-cert", sf_bytes(&forwarded).parse().expect("value"));
        headers.insert("client-cert-chain", sf_bytes(&forwarded).parse().expect("value"));
        headers.insert("accept", "text/plain".parse().expect("value"));
        let info = apply_proxy_rule(
            &mut headers,
            peer("203.0.113.9"),
            Some(tls.clone()),
            &rule(&["10.0.0.0/8"], Some("X-SSL-Cert")),
        )
        .expect("accepted");
        assert!(!info.via_proxy);
        assert_eq!(info.client_cert, Some(tls));
        assert!(headers.get("x-ssl-cert").is_none());
        assert!(headers.get("client-cert").is_none());
        assert!(headers.get("client-cert-chain").is_none());
        assert!(headers.get("accept").is_some());
    }

    fn forwarded_for(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().expect("value"));
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let r = rule(&["10.0.0.0/8"], None);
        let h = forwarded_for(&["203.0.113.7"]);
        assert_eq!(client_ip(&h, ip("10.0.0.1"), &r), ip("203.0.113.7"));
        assert_eq!(client_ip(&h, ip("192.0.2.1"), &r), ip("192.0.2.1"), "an untrusted peer is the client");
        assert_eq!(client_ip(&HeaderMap::new(), ip("10.0.0.1"), &r), ip("10.0.0.1"), "no header: the peer");
    }

    #[test]
    fn forwarded_for_is_read_from_the_right_past_trusted_proxies_only() {
        let r = rule(&["10.0.0.0/8"], None);
        // The client wrote 198.51.100.1 itself; the trusted proxy appended what it saw.
        let h = forwarded_for(&["198.51.100.1, 203.0.113.7"]);
        assert_eq!(client_ip(&h, ip("10.0.0.1"), &r), ip("203.0.113.7"));
        // Two trusted hops, over two header lines.
        let h = forwarded_for(&["198.51.100.1, 203.0.113.7", "10.2.3.4"]);
        assert_eq!(client_ip(&h, ip("10.0.0.1"), &r), ip("203.0.113.7"));
        // A garbled entry stops the walk at the last good address.
        let h = forwarded_for(&["203.0.113.7, unknown, 10.2.3.4"]);
        assert_eq!(client_ip(&h, ip("10.0.0.1"), &r), ip("10.2.3.4"));
        let h = forwarded_for(&["::ffff:203.0.113.7"]);
        assert_eq!(client_ip(&h, ip("10.0.0.1"), &r), ip("203.0.113.7"), "IPv4-mapped counts as IPv4");
    }

    #[test]
    fn without_proxy_config_client_cert_headers_are_stripped() {
        let mut headers = HeaderMap::new();
        headers.insert("client-cert", sf_bytes(&test_cert()).parse().expect("value"));
        let info =
            apply_proxy_rule(&mut headers, peer("127.0.0.1"), None, &rule(&["127.0.0.1"], None)).expect("accepted");
        assert!(!info.via_proxy);
        assert!(info.client_cert.is_none());
        assert!(headers.is_empty());
    }

    #[test]
    fn repeated_forwarded_certificate_header_is_refused() {
        // RFC 9440 §2.2: a proxy that appends instead of overwriting lets the
        // client add a value; two values are refused, never "the first wins".
        let (a, b) = (test_cert(), test_cert());
        let mut headers = HeaderMap::new();
        headers.append("client-cert", sf_bytes(&a).parse().expect("value"));
        headers.append("client-cert", sf_bytes(&b).parse().expect("value"));
        let r = rule(&["10.0.0.0/8"], Some("Client-Cert"));
        assert_eq!(
            apply_proxy_rule(&mut headers, peer("10.0.0.1"), None, &r).map(|_| ()),
            Err(ForwardedCertError::Repeated)
        );
    }

    #[test]
    fn malformed_forwarded_certificate_or_chain_is_refused() {
        let r = rule(&["10.0.0.0/8"], Some("Client-Cert"));
        let mut headers = HeaderMap::new();
        headers.insert("client-cert", ":bm90IGEgY2VydA==:".parse().expect("value"));
        assert_eq!(
            apply_proxy_rule(&mut headers, peer("10.0.0.1"), None, &r).map(|_| ()),
            Err(ForwardedCertError::Malformed)
        );
        let mut headers = HeaderMap::new();
        headers.insert("client-cert", sf_bytes(&test_cert()).parse().expect("value"));
        headers.insert("client-cert-chain", format!("{}, :AAAA:", sf_bytes(&test_cert())).parse().expect("value"));
        assert_eq!(
            apply_proxy_rule(&mut headers, peer("10.0.0.1"), None, &r).map(|_| ()),
            Err(ForwardedCertError::Malformed)
        );
    }

    #[test]
    fn chain_split_over_several_lines_is_one_list() {
        let (leaf, i1, i2) = (test_cert(), test_cert(), test_cert());
        let mut headers = HeaderMap::new();
        headers.insert("client-cert", sf_bytes(&leaf).parse().expect("value"));
        headers.append("client-cert-chain", sf_bytes(&i1).parse().expect("value"));
        headers.append("client-cert-chain", sf_bytes(&i2).parse().expect("value"));
        let info = apply_proxy_rule(&mut headers, peer("10.0.0.1"), None, &rule(&["10.0.0.0/8"], Some("client-cert")))
            .expect("accepted");
        assert_eq!(info.client_cert.expect("chain").0.as_slice(), &[leaf, i1, i2]);
    }

    #[test]
    fn repeated_header_from_an_untrusted_peer_is_just_stripped() {
        let mut headers = HeaderMap::new();
        headers.append("client-cert", ":AAAA:".parse().expect("value"));
        headers.append("client-cert", ":AAAA:".parse().expect("value"));
        let info =
            apply_proxy_rule(&mut headers, peer("203.0.113.1"), None, &rule(&["10.0.0.0/8"], Some("client-cert")))
                .expect("accepted");
        assert!(!info.via_proxy && info.client_cert.is_none() && headers.is_empty());
    }

    #[test]
    fn ipv4_mapped_ipv6_peer_matches_ipv4_network() {
        let r = rule(&["127.0.0.0/8"], Some("client-cert"));
        assert!(r.is_trusted("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(!r.is_trusted("::1".parse().expect("ip")));
    }

    #[test]
    fn trusted_proxy_entries_parse() {
        assert!(parse_ip_or_cidr("10.0.0.1").is_ok());
        assert!(parse_ip_or_cidr("10.0.0.0/8").is_ok());
        assert!(parse_ip_or_cidr("::1").is_ok());
        assert!(parse_ip_or_cidr("fd00::/8").is_ok());
        assert!(parse_ip_or_cidr("10.0.0.0/33").is_err());
        assert!(parse_ip_or_cidr("localhost").is_err());
    }

    #[test]
    fn provider_offers_only_allowed_tls12_suites() {
        let p = crypto_provider();
        for s in &p.cipher_suites {
            if let SupportedCipherSuite::Tls12(_) = s {
                assert!(TLS12_SUITES.contains(&s.suite()), "{:?}", s.suite());
            }
        }
        assert_eq!(p.cipher_suites.iter().filter(|s| matches!(s, SupportedCipherSuite::Tls12(_))).count(), 4);
    }
}
