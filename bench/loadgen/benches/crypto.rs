//! The cryptographic floor: what one signature operation costs on this machine with the
//! project's own JOSE code (`strongroom_protocol::jose`).
//!
//! `cargo bench -p strongroom-bench --bench crypto`. In test mode (`cargo test --benches`,
//! nextest `--all-targets`) criterion runs each benchmark once, quickly.

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use strongroom_protocol::jose::{JwsAlg, JwsSigner, LocalSigningKey, ParsedJws, public_jwk_from_value, sha256_b64url};

fn claims() -> serde_json::Value {
    json!({"iss": "https://localhost:8443", "sub": "alice", "aud": "demo-fapi2-jwt", "iat": 1_700_000_000,
           "exp": 1_700_000_300, "jti": "Vq3j1oBsu4n5yTqQmJ2Cl8pTtE0xJp5t0mN1Q2w3e4r", "client_id": "demo-fapi2-jwt",
           "scope": "openid accounts", "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})
}

fn sign_verify(c: &mut Criterion) {
    for alg in [JwsAlg::ES256, JwsAlg::PS256, JwsAlg::EdDSA] {
        let (key, _) = LocalSigningKey::generate("k", alg).expect("key");
        let claims = claims();
        c.bench_function(&format!("{} sign (JWT, incl. JSON+base64)", alg.as_str()), |b| {
            b.iter(|| key.sign(Some("at+jwt"), black_box(&claims)).expect("sign"))
        });
        let token = key.sign(Some("at+jwt"), &claims).expect("sign");
        let jwk = public_jwk_from_value(&key.public_jwk()).expect("jwk");
        c.bench_function(&format!("{} verify (parse + verify_with)", alg.as_str()), |b| {
            b.iter(|| {
                let p = ParsedJws::parse(black_box(&token), 16384).expect("parse");
                p.verify_with(&jwk).expect("verify")
            })
        });
        let parsed = ParsedJws::parse(&token, 16384).expect("parse");
        c.bench_function(&format!("{} verify only (verify_with)", alg.as_str()), |b| {
            b.iter(|| black_box(&parsed).verify_with(&jwk).expect("verify"))
        });
    }
}

fn cert_hash(c: &mut Criterion) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["client.example".into()]).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "demo-fapi2-mtls");
    let cert = params.self_signed(&key).expect("cert");
    let der = cert.der().to_vec();
    c.bench_function(&format!("SHA-256 x5t#S256 of a DER certificate ({} bytes)", der.len()), |b| {
        b.iter(|| sha256_b64url(black_box(&der)))
    });
}

criterion_group!(benches, sign_verify, cert_hash);
criterion_main!(benches);
