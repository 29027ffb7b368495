//! The fuzz targets' bodies (`fuzz/src/lib.rs`) on every test run (issue 12 point 10): each body
//! runs over valid seeds made here with real keys and signatures, and over a few thousand
//! deterministic mutations of them (bit flips, insertions, deletions, truncations, splices).
//! This is the short run CI does; `scripts/fuzz.sh` runs the same bodies coverage-guided with
//! `cargo fuzz`, starting from these seeds (it calls this test with `STRONGROOM_FUZZ_SEEDS`).

#![cfg(feature = "jwe")]

#[allow(dead_code, unreachable_pub)]
#[path = "../../../fuzz/src/lib.rs"]
mod bodies;

use std::path::PathBuf;

use base64::Engine as _;
use bodies::{ISSUER, NOW, client_key};
use serde_json::{Value, json};
use strongroom_protocol::authz::Params;
use strongroom_protocol::client::{ClientMetadata, validate_client_metadata};
use strongroom_protocol::dpop::{NonceRule, ProofContext, check_proof};
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey, ParsedJws, sign_with_header};
use strongroom_protocol::request_object::check_request_object;
use strongroom_server::jwe::decrypt_request_object;

const MUTATIONS_PER_SEED: usize = 400;

/// A small deterministic generator (xorshift64*): the same mutations on every run.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn mutate(&mut self, seed: &[u8], other: &[u8]) -> Vec<u8> {
        let mut out = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(6) {
                0 if !out.is_empty() => {
                    let i = self.below(out.len());
                    out[i] ^= 1 << self.below(8);
                }
                1 => out.insert(at, self.next() as u8),
                2 if at < out.len() => {
                    out.remove(at);
                }
                3 => out.truncate(at),
                4 => {
                    // Splice in a piece of another seed: structure from elsewhere.
                    let from = self.below(other.len() + 1);
                    let len = self.below(other.len() - from + 1);
                    out.splice(at..at, other[from..from + len].iter().copied());
                }
                _ => {
                    // Characters that matter to the parsers.
                    let special = b".=&%+:,\\\"{}[]\0";
                    out.insert(at, special[self.below(special.len())]);
                }
            }
        }
        out
    }
}

fn run(name: &str, body: fn(&[u8]), seeds: &[Vec<u8>]) {
    if let Ok(dir) = std::env::var("STRONGROOM_FUZZ_SEEDS") {
        let dir = PathBuf::from(dir).join(name);
        std::fs::create_dir_all(&dir).expect("seed directory");
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).expect("write seed");
        }
    }
    let mut rng = Mutator(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    for (i, seed) in seeds.iter().enumerate() {
        body(seed);
        let other = &seeds[(i + 1) % seeds.len()];
        for _ in 0..MUTATIONS_PER_SEED {
            body(&rng.mutate(seed, other));
        }
    }
}

fn signed(key: &LocalSigningKey, header: Value, claims: Value) -> Vec<u8> {
    sign_with_header(key, &header, &claims).expect("sign").into_bytes()
}

fn es256(typ: &str) -> Value {
    json!({"alg": "ES256", "typ": typ, "kid": "fuzz-client"})
}

fn request_object_claims() -> Value {
    json!({"iss": "fuzz-client", "aud": ISSUER, "client_id": "fuzz-client", "response_type": "code id_token",
           "redirect_uri": "https://client.example/cb", "scope": "openid accounts", "nonce": "n", "state": "s",
           "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256",
           "exp": NOW + 300, "nbf": NOW, "iat": NOW, "max_age": 60,
           "claims": {"id_token": {"acr": {"essential": true, "values": ["urn:acr:sca"]}}}})
}

fn request_objects() -> Vec<Vec<u8>> {
    let key = client_key();
    let plain = signed(key, es256("oauth-authz-req+jwt"), request_object_claims());
    let untyped = signed(key, json!({"alg": "ES256"}), request_object_claims());
    let mut seeds = vec![plain.clone(), untyped];
    seeds.push(encrypted(&plain).expect("encrypt the request object"));
    seeds
}

fn encrypted(nested: &[u8]) -> Option<Vec<u8>> {
    bodies::encrypt_for_server(nested).map(String::into_bytes)
}

#[test]
fn jws_compact_body_on_seeds_and_mutations() {
    let key = client_key();
    let assertion = json!({"iss": "fuzz-client", "sub": "fuzz-client", "aud": ISSUER, "jti": "j1",
                           "exp": NOW + 60, "iat": NOW});
    let seeds = vec![
        signed(key, json!({"alg": "ES256", "kid": "fuzz-client"}), assertion.clone()),
        signed(key, es256("client-authentication+jwt"), assertion),
        signed(key, es256("oauth-authz-req+jwt"), request_object_claims()),
        signed(key, es256("at+jwt"), json!({"iss": ISSUER, "sub": "alice", "client_id": "c", "exp": NOW + 60})),
        b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_vec(),
    ];
    run("jws_compact", bodies::jws_compact, &seeds);
}

#[test]
fn dpop_proof_body_on_seeds_and_mutations() {
    let (key, _) = LocalSigningKey::generate("dpop", JwsAlg::ES256).expect("key");
    let header = json!({"alg": "ES256", "typ": "dpop+jwt", "jwk": key.public_jwk()});
    let at_token = json!({"jti": "p1", "htm": "POST", "htu": "https://as.example/token", "iat": NOW});
    let ath = strongroom_protocol::jose::sha256_b64url(b"an-access-token");
    let at_resource = json!({"jti": "p2", "htm": "GET", "htu": "https://rs.example/accounts", "iat": NOW,
                             "ath": ath, "nonce": "n"});
    let seeds = vec![signed(&key, header.clone(), at_token), signed(&key, header, at_resource)];
    // The first seed is a proof the token endpoint accepts: mutations start deep in the checks.
    let ctx = ProofContext {
        method: "POST",
        url: "https://as.example/token",
        now: NOW,
        max_future_skew: 10,
        allowed_algs: &[JwsAlg::ES256],
        max_len: bodies::MAX_JWT,
        access_token: None,
        nonce: NonceRule::NotRequired,
    };
    assert!(check_proof(std::str::from_utf8(&seeds[0]).expect("utf8"), &ctx).is_ok(), "the DPoP seed is refused");
    run("dpop_proof", bodies::dpop_proof, &seeds);
}

#[test]
fn request_object_body_on_seeds_and_mutations() {
    let seeds = request_objects();
    // The plain seed passes every request-object check: mutations start from an accepted object.
    let jws = ParsedJws::parse(std::str::from_utf8(&seeds[0]).expect("utf8"), bodies::MAX_JWT).expect("parse");
    let outer: Params = [("client_id", "fuzz-client"), ("response_type", "code id_token")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    check_request_object(&jws, bodies::client(), ISSUER, NOW, &outer).expect("the request-object seed is refused");
    let nested =
        decrypt_request_object(std::str::from_utf8(&seeds[2]).expect("utf8"), bodies::decryption_keys(), 16_384)
            .expect("the encrypted seed does not decrypt");
    assert_eq!(nested.as_bytes(), seeds[0].as_slice());
    run("request_object", bodies::request_object, &seeds);
}

#[test]
fn client_metadata_body_on_seeds_and_mutations() {
    let jwks = json!({"keys": [client_key().public_jwk()]});
    let seeds: Vec<Vec<u8>> = [
        json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
               "redirect_uris": ["https://client.example/cb"], "dpop_bound_access_tokens": true}),
        json!({"profile": "fapi2-security", "token_endpoint_auth_method": "tls_client_auth",
               "tls_client_auth_subject_dn": "CN=client,O=Example+OU=Payments,C=GB",
               "redirect_uris": ["https://client.example/cb"], "tls_client_certificate_bound_access_tokens": true}),
        json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
               "redirect_uris": ["https://client.example/cb"], "response_types": ["code id_token"],
               "grant_types": ["authorization_code", "implicit", "refresh_token"],
               "request_object_signing_alg": "PS256", "authorization_signed_response_alg": "PS256"}),
        json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt",
               "jwks_uri": "https://client.example/jwks", "redirect_uris": ["https://client.example/cb"],
               "response_modes": ["jwt"], "introspection_signed_response_alg": "ES256"}),
        json!({"profile": "oauth2", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks,
               "grant_types": ["client_credentials"], "scope": "accounts"}),
    ]
    .iter()
    .map(|v| serde_json::to_vec(v).expect("json"))
    .collect();
    for seed in &seeds {
        let metadata: ClientMetadata = serde_json::from_slice(seed).expect("metadata");
        validate_client_metadata(metadata, "seed".into(), &strongroom_protocol::client_rules::ClientRules::default())
            .expect("a metadata seed is refused");
    }
    run("client_metadata", bodies::client_metadata, &seeds);
}

#[test]
fn form_and_credentials_body_on_seeds_and_mutations() {
    let basic = base64::engine::general_purpose::STANDARD.encode("client%3A1:s%C3%A9cret");
    let seeds: Vec<Vec<u8>> = [
        "grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fclient.example%2Fcb&code_verifier=v"
            .to_string(),
        "grant_type=client_credentials&client_id=fuzz-client&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c".to_string(),
        format!("grant_type=refresh_token&refresh_token=r&authorization=Basic%20{basic}"),
        "response_type=code&client_id=c&scope=openid+accounts&state=%E2%9C%93&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax".to_string(),
        "a=1&a=2".to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    run("form_and_credentials", bodies::form_and_credentials, &seeds);
}

#[test]
fn client_certificate_body_on_seeds_and_mutations() {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["client.example".to_string()]).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "client, \"one\"+two");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Example Bank");
    params.distinguished_name.push(rcgen::DnType::CountryName, "GB");
    let der = params.self_signed(&key).expect("certificate").der().to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
    let with_registered = |selector: u8, body: &[u8], registered: &str| {
        let mut v = vec![selector];
        v.extend_from_slice(body);
        v.push(0);
        v.extend_from_slice(registered.as_bytes());
        v
    };
    let seeds = vec![
        with_registered(0, &der, "CN=client\\, \\22one\\22\\2Btwo,O=Example Bank,C=GB"),
        with_registered(1, format!(":{b64}:").as_bytes(), "CN=client.example"),
        with_registered(
            1,
            percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string().as_bytes(),
            "O=Example Bank+CN=x",
        ),
    ];
    run("client_certificate", bodies::client_certificate, &seeds);
}
