//! Property tests for the server's decoders of untrusted bytes (issue 12 point 10): form and
//! query decoding, and client certificates forwarded by a proxy in each supported format.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use proptest::prelude::*;
use rustls::pki_types::CertificateDer;
use strongroom_server::http::parse_pairs;
use strongroom_server::tls::client_cert_from_proxy_header;

fn certificate() -> &'static CertificateDer<'static> {
    static CERT: OnceLock<CertificateDer<'static>> = OnceLock::new();
    CERT.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["client.example".to_string()]).expect("params");
        params.self_signed(&key).expect("certificate").der().clone()
    })
}

fn pem_of(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any bytes decode to parameters or to `invalid_request`, never a panic.
    #[test]
    fn form_decoder_never_panics(raw in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_pairs(&raw);
    }

    /// Round trip: distinct names encoded by a form serializer decode to the same map; any
    /// repeated name is refused (RFC 6749 §3.1: parameters must not be included more than once).
    #[test]
    fn form_round_trip_and_repeats(params in prop::collection::btree_map(".{1,12}", ".{0,40}", 0..8),
                                   repeat in any::<prop::sample::Index>()) {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &params {
            ser.append_pair(k, v);
        }
        let encoded = ser.finish();
        let decoded = parse_pairs(encoded.as_bytes()).expect("decodes");
        prop_assert_eq!(&decoded, &params.clone().into_iter().collect::<BTreeMap<_, _>>());

        if !params.is_empty() {
            let name = params.keys().nth(repeat.index(params.len())).expect("a name");
            let mut twice = url::form_urlencoded::Serializer::new(encoded.clone());
            twice.append_pair(name, "again");
            prop_assert!(parse_pairs(twice.finish().as_bytes()).is_err());
        }
    }

    /// Forwarded certificate headers: arbitrary text is a certificate or nothing, never a panic,
    /// and whatever is accepted parses as X.509.
    #[test]
    fn forwarded_certificate_decoder_never_panics(v in ".{0,600}") {
        if let Some(der) = client_cert_from_proxy_header(&v) {
            prop_assert!(x509_parser::parse_x509_certificate(der.as_ref()).is_ok());
        }
    }

    /// Round trip: one certificate in each format a proxy may use — RFC 9440 byte sequence,
    /// nginx `$ssl_client_escaped_cert`, plain PEM, bare base64 DER — with any surrounding
    /// whitespace, decodes to the same DER; a truncated one decodes to nothing.
    #[test]
    fn forwarded_certificate_formats_round_trip(pad in "[ \t]{0,3}", cut in 1usize..64) {
        let der = certificate().as_ref();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let pem = pem_of(der);
        let escaped = percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string();
        for value in [format!(":{b64}:"), escaped, pem.clone(), b64.clone()] {
            let padded = format!("{pad}{value}{pad}");
            let decoded = client_cert_from_proxy_header(&padded);
            prop_assert_eq!(decoded.as_ref().map(|d| d.as_ref()), Some(der));
        }
        let truncated = base64::engine::general_purpose::STANDARD.encode(&der[..der.len() - cut]);
        prop_assert_eq!(client_cert_from_proxy_header(&format!(":{truncated}:")), None);
    }
}
