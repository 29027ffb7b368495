//! The verifier for `tls_client_auth` chains: the configured client CAs (plus the
//! development CA in a development set-up). Used by the protocol layer per client, not by
//! the TLS handshake.

use rustls::DistinguishedName;
use rustls::RootCertStore;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use std::path::PathBuf;
use std::sync::Arc;

/// Builds the verifier from CA files. With no CA, every chain is refused.
pub fn client_trust(ca_files: &[PathBuf]) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for f in ca_files {
        for cert in crate::tls::load_cert_chain(f)? {
            roots.add(cert).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        }
    }
    if roots.is_empty() {
        return Ok(Arc::new(NoTrustedCa));
    }
    let provider = Arc::new(crate::tls::crypto_provider());
    Ok(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).allow_unauthenticated().build()?)
}

/// Refuses every chain: no client CA is configured.
#[derive(Debug)]
struct NoTrustedCa;

impl ClientCertVerifier for NoTrustedCa {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Err(rustls::Error::General("no trusted client CA is configured".into()))
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("not used in handshakes".into()))
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("not used in handshakes".into()))
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        Vec::new()
    }
}
