//! The bodies of Strongroom's fuzz targets (issue 12 point 10), one function per parser that sees
//! untrusted bytes. `cargo fuzz` runs them coverage-guided (`fuzz/fuzz_targets/*.rs`, see
//! `scripts/fuzz.sh`); `crates/server/tests/fuzz_bodies.rs` includes this file and runs every
//! body over generated seeds and their mutations on each test run, so CI exercises them too.
//!
//! Each body must return normally for every input: a panic is a finding. Where a parser has a
//! property beyond "does not panic" (a form decoder re-encodes to the same pairs, a parsed JWS
//! never carries a refused algorithm) the body asserts it.

use std::sync::OnceLock;

use jsonwebtoken::jwk::Jwk;
use serde_json::json;
use strongroom_protocol::authz::Params;
use strongroom_protocol::client::{Client, ClientMetadata, TlsClientIdentity, validate_client_metadata};
use strongroom_protocol::client_auth::{AuthFields, check_assertion_kind, presented_credentials};
use strongroom_protocol::dpop::{NonceIssuer, NonceRule, ProofContext, check_proof};
use strongroom_protocol::jose::{
    JwsAlg, JwtKind, LocalSigningKey, ParsedJws, check_explicit_type, public_jwk_from_value,
};
use strongroom_protocol::mtls::{certificate_thumbprint, identity_matches};
use strongroom_protocol::request_object::check_request_object;
use strongroom_server::http::parse_pairs;
use strongroom_server::jwe::{decrypt_request_object, is_jwe};
use strongroom_server::keys::DecryptionKey;
use strongroom_server::tls::client_cert_from_proxy_header;

/// The largest JWT the server accepts anywhere (request objects; smaller elsewhere).
pub const MAX_JWT: usize = 16_384;
/// The issuer the targets check audiences against.
pub const ISSUER: &str = "https://as.example";
/// A fixed time, so a run is repeatable.
pub const NOW: i64 = 1_800_000_000;

/// The key of the fixed client the request-object target checks against; seeds are signed with it.
pub fn client_key() -> &'static LocalSigningKey {
    static KEY: OnceLock<LocalSigningKey> = OnceLock::new();
    KEY.get_or_init(|| match LocalSigningKey::generate("fuzz-client", JwsAlg::ES256) {
        Ok((key, _)) => key,
        Err(e) => panic!("cannot generate the fuzz client key: {e:?}"),
    })
}

/// A FAPI 1.0 Advanced client with `private_key_jwt` and the key above.
pub fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let metadata = json!({
            "profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [client_key().public_jwk()]}, "redirect_uris": ["https://client.example/cb"],
            "request_object_signing_alg": "ES256", "id_token_signed_response_alg": "ES256"
        });
        let metadata: ClientMetadata = match serde_json::from_value(metadata) {
            Ok(m) => m,
            Err(e) => panic!("fuzz client metadata: {e}"),
        };
        match validate_client_metadata(
            metadata,
            "fuzz-client".into(),
            &strongroom_protocol::client_rules::ClientRules::default(),
        ) {
            Ok(c) => c,
            Err(e) => panic!("fuzz client refused: {e:?}"),
        }
    })
}

fn client_jwk() -> &'static Jwk {
    static JWK: OnceLock<Jwk> = OnceLock::new();
    JWK.get_or_init(|| match public_jwk_from_value(&client_key().public_jwk()) {
        Some(jwk) => jwk,
        None => panic!("the fuzz client key has no public JWK"),
    })
}

fn nonce_issuer() -> &'static NonceIssuer {
    static ISSUER: OnceLock<NonceIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| NonceIssuer::new(b"fuzz nonce secret, 32 bytes long", 300))
}

fn encryption_key_pair() -> &'static josekit::jwk::alg::ec::EcKeyPair {
    static PAIR: OnceLock<josekit::jwk::alg::ec::EcKeyPair> = OnceLock::new();
    PAIR.get_or_init(|| match josekit::jwe::ECDH_ES.generate_ec_key_pair(josekit::jwk::alg::ec::EcCurve::P256) {
        Ok(pair) => pair,
        Err(e) => panic!("cannot generate the fuzz encryption key: {e}"),
    })
}

/// The server's ECDH-ES decryption key for the JWE path (generated once per process).
pub fn decryption_keys() -> &'static [DecryptionKey] {
    static KEYS: OnceLock<Vec<DecryptionKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pkcs8 = encryption_key_pair().to_der_private_key();
        vec![DecryptionKey { kid: "enc".into(), alg: "ECDH-ES".into(), pkcs8 }]
    })
}

/// A nested JWT encrypted to the key above, as a client would send it (for seeds).
pub fn encrypt_for_server(nested: &[u8]) -> Option<String> {
    let mut header = josekit::jwe::JweHeader::new();
    header.set_algorithm("ECDH-ES");
    header.set_content_encryption("A256GCM");
    header.set_key_id("enc");
    header.set_content_type("JWT");
    let encrypter = josekit::jwe::ECDH_ES.encrypter_from_jwk(&encryption_key_pair().to_jwk_public_key()).ok()?;
    josekit::jwe::serialize_compact(nested, &header, &encrypter).ok()
}

/// Compact JWS: parse, then every check a received JWT goes through before its claims are used.
pub fn jws_compact(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(jws) = ParsedJws::parse(text, MAX_JWT) else { return };
    // RFC 8725 §3.1: a parsed JWS never carries `none` or an HMAC algorithm.
    assert!(JwsAlg::parse(jws.alg.as_str()).is_some(), "parsed an algorithm the parser does not know");
    for kind in [JwtKind::ClientAssertion, JwtKind::RequestObject, JwtKind::DpopProof, JwtKind::AccessToken] {
        let _ = check_explicit_type(jws.header_str("typ"), kind);
    }
    let _ = check_assertion_kind(&jws);
    let _ = jws.claim_str("iss");
    let _ = jws.claim_i64("exp");
    // Not signed by the fixed key unless the input was made with it: verification must simply fail.
    let _ = jws.verify_with(client_jwk());
}

/// A DPoP proof as received in the `DPoP` header, at the token endpoint and at a resource.
pub fn dpop_proof(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let algs = [JwsAlg::PS256, JwsAlg::ES256, JwsAlg::EdDSA];
    let at_token = ProofContext {
        method: "POST",
        url: "https://as.example/token",
        now: NOW,
        max_future_skew: 10,
        allowed_algs: &algs,
        max_len: MAX_JWT,
        access_token: None,
        nonce: NonceRule::NotRequired,
    };
    let _ = check_proof(text, &at_token);
    let at_resource = ProofContext {
        method: "GET",
        url: "https://rs.example/accounts?x=1",
        access_token: Some("an-access-token"),
        nonce: NonceRule::Required(nonce_issuer()),
        ..at_token
    };
    let _ = check_proof(text, &at_resource);
}

/// A request object by value, signed or encrypted (JWE around a JWS), checked against a
/// registered FAPI 1.0 client.
pub fn request_object(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let signed = if is_jwe(text) {
        match decrypt_request_object(text, decryption_keys(), MAX_JWT) {
            Ok(nested) => nested,
            Err(_) => return,
        }
    } else {
        text.to_string()
    };
    let Ok(jws) = ParsedJws::parse(&signed, MAX_JWT) else { return };
    let outer: Params =
        [("client_id", "fuzz-client"), ("response_type", "code id_token"), ("scope", "openid accounts")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    // As the server does: the signature first, then the claims (F1A-5.2.2-10).
    if jws.verify_with(client_jwk()).is_ok() {
        let _ = check_request_object(&jws, client(), ISSUER, NOW, &outer);
    }
}

/// Client metadata JSON, as sent to dynamic registration or the admin API.
pub fn client_metadata(data: &[u8]) {
    let Ok(metadata) = serde_json::from_slice::<ClientMetadata>(data) else { return };
    if let Ok(client) =
        validate_client_metadata(metadata, "fuzz".into(), &strongroom_protocol::client_rules::ClientRules::default())
    {
        // A registered client re-validates to the same client: validation is a fixed point.
        let Ok(again) = serde_json::to_value(&client.metadata).and_then(serde_json::from_value::<ClientMetadata>)
        else {
            panic!("validated metadata does not serialise back");
        };
        assert!(
            validate_client_metadata(again, "fuzz".into(), &strongroom_protocol::client_rules::ClientRules::default())
                .is_ok(),
            "validated metadata refused on re-validation"
        );
    }
}

/// A form body or query string, and the client credentials the token endpoint reads from it.
pub fn form_and_credentials(data: &[u8]) {
    let Ok(pairs) = parse_pairs(data) else { return };
    // Re-encoding the decoded pairs and decoding again gives the same pairs.
    let encoded = url_encode(&pairs);
    match parse_pairs(encoded.as_bytes()) {
        Ok(again) => assert_eq!(again, pairs, "form decoding does not round-trip"),
        Err(_) => panic!("re-encoded form refused"),
    }
    let authorization = pairs.get("authorization").map(String::as_str);
    let fields = AuthFields {
        client_id: pairs.get("client_id").map(String::as_str),
        client_secret: pairs.get("client_secret").map(String::as_str),
        client_assertion: pairs.get("client_assertion").map(String::as_str),
        client_assertion_type: pairs.get("client_assertion_type").map(String::as_str),
        authorization,
    };
    let _ = presented_credentials(&fields);
}

fn url_encode(pairs: &Params) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
        out.push('=');
        out.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
    }
    out
}

/// A client certificate: as DER from the TLS layer, or as a header written by a trusted proxy,
/// then matched against each kind of registered `tls_client_auth` identity.
pub fn client_certificate(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let der = if selector & 1 == 0 {
        rest.to_vec()
    } else {
        let Ok(header) = std::str::from_utf8(rest) else { return };
        match client_cert_from_proxy_header(header) {
            Some(cert) => cert.to_vec(),
            None => return,
        }
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else { return };
    let _ = certificate_thumbprint(&der);
    // The registered value comes from the input too: the part after the first NUL, if any.
    let registered = rest.split(|b| *b == 0).nth(1).and_then(|r| std::str::from_utf8(r).ok()).unwrap_or("CN=fuzz");
    for identity in [
        TlsClientIdentity::SubjectDn(registered.to_string()),
        TlsClientIdentity::SanDns(registered.to_string()),
        TlsClientIdentity::SanUri(registered.to_string()),
        TlsClientIdentity::SanIp(registered.to_string()),
        TlsClientIdentity::SanEmail(registered.to_string()),
    ] {
        let _ = identity_matches(&cert, &identity);
    }
}
