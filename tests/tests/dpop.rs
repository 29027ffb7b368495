//! DPoP at the token endpoint (RFC 9449), black-box over real TLS: every malformed-proof
//! case, replay, the `iat` window, the binding in the issued token, and server nonces.

use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, JwsSigner, LocalSigningKey, sign_with_header};
use strongroom_protocol::random::random_token;
use strongroom_tests::kit::*;
use strongroom_tests::*;

/// A FAPI 2.0 `private_key_jwt` client (DPoP-bound) on a running server.
struct Dpop {
    ts: TestServer,
    key: LocalSigningKey,
    id: String,
    url: String,
}

impl Dpop {
    async fn new() -> Dpop {
        Self::on(TestServer::start().await).await
    }

    async fn on(ts: TestServer) -> Dpop {
        let key = client_key(JwsAlg::ES256);
        let id = register_pkjwt(&ts, &key, "fapi2-security", json!({})).await;
        let url = ts.url("/token");
        Dpop { ts, key, id, url }
    }

    /// A `client_credentials` request with a fresh client assertion and these `DPoP`
    /// header values.
    async fn token(&self, proofs: &[&str]) -> Reply {
        let mut rb = self.ts.client().post(&self.url).form(&pkjwt_form(&self.ts, &self.id, &self.key));
        for p in proofs {
            rb = rb.header("DPoP", *p);
        }
        send(rb).await
    }

    /// Valid claims for a proof to the token endpoint.
    fn claims(&self) -> Value {
        json!({"jti": random_token(), "htm": "POST", "htu": self.url, "iat": now()})
    }
}

fn header_for(key: &LocalSigningKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": key.alg().as_str(), "jwk": key.public_jwk()})
}

/// R9449-5-type, R9449-6.1/6.2, R9449-4.3: a valid proof gives `token_type: DPoP` and an
/// access token whose `cnf.jkt` is the RFC 7638 thumbprint of the proof's key, for each
/// FAPI algorithm; `htu` is compared without the query string.
#[tokio::test]
async fn valid_proof_binds_the_token() {
    let d = Dpop::new().await;
    for alg in [JwsAlg::ES256, JwsAlg::PS256, JwsAlg::EdDSA] {
        let dkey = client_key(alg);
        let r = d.token(&[&dpop_proof(&dkey, "POST", &d.url, None, None)]).await;
        assert_token(&r);
        assert_eq!(r.body["token_type"], "DPoP", "{alg:?}");
        let at = r.access_token();
        assert_eq!(jwt_claims(&at)["cnf"]["jkt"], json!(thumbprint(&dkey)), "{alg:?}");
        assert_eq!(jwt_header(&at)["typ"], "at+jwt");
    }
    // R9449-4.3 item 9: query and fragment are ignored when comparing htu.
    let dkey = client_key(JwsAlg::ES256);
    let r = d.token(&[&dpop_proof(&dkey, "POST", &format!("{}?x=1#frag", d.url), None, None)]).await;
    assert_token(&r);
}

/// R9449-4.3 (4), R9449-11.5: `typ` other than `dpop+jwt`, or none, is `invalid_dpop_proof`.
#[tokio::test]
async fn wrong_typ_is_refused() {
    let d = Dpop::new().await;
    let dkey = client_key(JwsAlg::ES256);
    for typ in [json!("JWT"), json!("at+jwt"), Value::Null] {
        let mut header = header_for(&dkey);
        if typ.is_null() {
            header.as_object_mut().unwrap().remove("typ");
        } else {
            header["typ"] = typ.clone();
        }
        let r = d.token(&[&sign_with_header(&dkey, &header, &d.claims()).unwrap()]).await;
        assert_error(&r, 400, "invalid_dpop_proof");
    }
}

/// R9449-4.3 (5), R9449-11.6: a symmetric algorithm (HS256), `none`, and RS256 (not a
/// FAPI algorithm) are `invalid_dpop_proof`.
#[tokio::test]
async fn disallowed_algorithms_are_refused() {
    let d = Dpop::new().await;
    let dkey = client_key(JwsAlg::ES256);
    let mut h = header_for(&dkey);
    h["alg"] = json!("HS256");
    let hs = hs256_jwt(b"shared-secret-shared-secret-1234", &h, &d.claims());
    assert_error(&d.token(&[&hs]).await, 400, "invalid_dpop_proof");
    let mut h = header_for(&dkey);
    h["alg"] = json!("none");
    assert_error(&d.token(&[&raw_jwt(&h, &d.claims(), b"")]).await, 400, "invalid_dpop_proof");
    let (_, pkcs8) = LocalSigningKey::generate("r", JwsAlg::PS256).unwrap();
    let rs = LocalSigningKey::from_pkcs8("r", JwsAlg::RS256, &pkcs8).unwrap();
    let mut jwk = rs.public_jwk();
    jwk.as_object_mut().unwrap().remove("alg");
    let proof = sign_with_header(&rs, &json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk}), &d.claims()).unwrap();
    assert_error(&d.token(&[&proof]).await, 400, "invalid_dpop_proof");
}

/// R9449-4.3 (7): a `jwk` header that carries a private key (`d`) is refused, and a
/// proof without any `jwk` too.
#[tokio::test]
async fn private_or_missing_jwk_is_refused() {
    let d = Dpop::new().await;
    let dkey = client_key(JwsAlg::ES256);
    let mut h = header_for(&dkey);
    h["jwk"]["d"] = json!("c2VjcmV0LXByaXZhdGUta2V5LW1hdGVyaWFs");
    let r = d.token(&[&sign_with_header(&dkey, &h, &d.claims()).unwrap()]).await;
    assert_error(&r, 400, "invalid_dpop_proof");
    let mut h = header_for(&dkey);
    h.as_object_mut().unwrap().remove("jwk");
    let r = d.token(&[&sign_with_header(&dkey, &h, &d.claims()).unwrap()]).await;
    assert_error(&r, 400, "invalid_dpop_proof");
}

/// R9449-4.3 (6): a signature that does not verify with the header's `jwk` (signed by
/// another key, or tampered claims) is refused; so is a value that is not a JWT (2).
#[tokio::test]
async fn bad_signature_is_refused() {
    let d = Dpop::new().await;
    let dkey = client_key(JwsAlg::ES256);
    let other = client_key(JwsAlg::ES256);
    let forged = sign_with_header(&other, &header_for(&dkey), &d.claims()).unwrap();
    assert_error(&d.token(&[&forged]).await, 400, "invalid_dpop_proof");
    // Claims swapped after signing.
    let good = dpop_proof(&dkey, "POST", &d.url, None, None);
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let tampered = raw_jwt(&json!({}), &d.claims(), b"");
    parts[1] = tampered.split('.').nth(1).unwrap().to_string();
    assert_error(&d.token(&[&parts.join(".")]).await, 400, "invalid_dpop_proof");
    assert_error(&d.token(&["not-a-jwt"]).await, 400, "invalid_dpop_proof");
}

/// R9449-4.3 (8), (9): `htm` must be the request method and `htu` the request URL (not
/// another endpoint, not the mTLS alias of this one, not another host).
#[tokio::test]
async fn htm_and_htu_must_match_the_request() {
    let d = Dpop::new().await;
    let dkey = client_key(JwsAlg::ES256);
    assert_error(&d.token(&[&dpop_proof(&dkey, "GET", &d.url, None, None)]).await, 400, "invalid_dpop_proof");
    for htu in [d.ts.url("/par"), d.ts.mtls_url("/token"), "https://attacker.example/token".to_string()] {
        let r = d.token(&[&dpop_proof(&dkey, "POST", &htu, None, None)]).await;
        assert_error(&r, 400, "invalid_dpop_proof");
    }
}

/// R9449-11.1, F2SP-5.3.2.1-13(DPoP): a proof from ten minutes ago and one 61 s in the
/// future are refused; one 10 s in the future is accepted.
#[tokio::test]
async fn iat_window() {
    let d = Dpop::new().await;
    let dkey = client_key(JwsAlg::ES256);
    for (offset, ok) in [(-600, false), (61, false), (10, true), (0, true)] {
        let mut c = d.claims();
        c["iat"] = json!(now() + offset);
        let r = d.token(&[&dpop_proof_with(&dkey, &c)]).await;
        if ok {
            assert_token(&r);
        } else {
            assert_error(&r, 400, "invalid_dpop_proof");
        }
    }
}

/// R9449-4.3 (3): the required claims `jti`, `htm`, `htu` and `iat` must be present.
#[tokio::test]
async fn missing_claims_are_refused() {
    let d = Dpop::new().await;
    let dkey = client_key(JwsAlg::ES256);
    for claim in ["jti", "htm", "htu", "iat"] {
        let mut c = d.claims();
        c.as_object_mut().unwrap().remove(claim);
        let r = d.token(&[&dpop_proof_with(&dkey, &c)]).await;
        assert_error(&r, 400, "invalid_dpop_proof");
    }
}

/// R9449-4.3 (1): exactly one `DPoP` header — two (even two valid ones) are refused.
#[tokio::test]
async fn two_dpop_headers_are_refused() {
    let d = Dpop::new().await;
    let dkey = client_key(JwsAlg::ES256);
    let a = dpop_proof(&dkey, "POST", &d.url, None, None);
    let b = dpop_proof(&dkey, "POST", &d.url, None, None);
    assert_error(&d.token(&[&a, &b]).await, 400, "invalid_dpop_proof");
}

/// R9449-11.1, R9449-4.3: a proof is used once — the identical proof sent again (with a
/// fresh client assertion) is refused.
#[tokio::test]
async fn replayed_proof_is_refused() {
    let d = Dpop::new().await;
    let proof = dpop_proof(&client_key(JwsAlg::ES256), "POST", &d.url, None, None);
    assert_token(&d.token(&[&proof]).await);
    assert_error(&d.token(&[&proof]).await, 400, "invalid_dpop_proof");
}

/// R9449-8, R9449-11.3, R9449-8.2: with nonces required, a proof without a nonce gets
/// 400 `use_dpop_nonce` with exactly one `DPoP-Nonce` header; the retry carrying that
/// nonce succeeds (and the success carries a `DPoP-Nonce` too); a made-up nonce, and a
/// proof without a nonce after the challenge, are `use_dpop_nonce` again.
#[tokio::test]
async fn server_nonce_challenge_and_retry() {
    let d = Dpop::on(TestServer::start_with(|c| c.dpop.require_nonce = true).await).await;
    let dkey = client_key(JwsAlg::ES256);
    let r = d.token(&[&dpop_proof(&dkey, "POST", &d.url, None, None)]).await;
    assert_error(&r, 400, "use_dpop_nonce");
    assert_eq!(r.header_count("dpop-nonce"), 1, "exactly one DPoP-Nonce");
    let nonce = r.header("dpop-nonce").unwrap().to_string();
    assert!(nonce.len() >= 22, "nonce is unpredictable: {nonce}");

    let r = d.token(&[&dpop_proof(&dkey, "POST", &d.url, None, Some(&nonce))]).await;
    assert_token(&r);
    assert_eq!(r.body["token_type"], "DPoP");
    assert_eq!(jwt_claims(&r.access_token())["cnf"]["jkt"], json!(thumbprint(&dkey)));
    assert_eq!(r.header_count("dpop-nonce"), 1);

    let r = d.token(&[&dpop_proof(&dkey, "POST", &d.url, None, Some("made-up-nonce-value-0123456789"))]).await;
    assert_error(&r, 400, "use_dpop_nonce");
    assert_eq!(r.header_count("dpop-nonce"), 1);
    let r = d.token(&[&dpop_proof(&dkey, "POST", &d.url, None, None)]).await;
    assert_error(&r, 400, "use_dpop_nonce");
}

/// R9449-4.3 (9): `htu` is compared after syntax-based normalization (case of scheme and
/// host), and a proof for the mTLS alias is accepted when the request goes to that alias.
#[tokio::test]
async fn htu_normalization_and_mtls_alias() {
    let d = Dpop::new().await;
    let dkey = client_key(JwsAlg::ES256);
    let shouted = d.url.replacen("https://localhost", "HTTPS://LOCALHOST", 1);
    assert_token(&d.token(&[&dpop_proof(&dkey, "POST", &shouted, None, None)]).await);
    let alias = d.ts.mtls_url("/token");
    let form = pkjwt_form(&d.ts, &d.id, &d.key);
    let r = post_form(&d.ts.client(), &alias, &form, Some(&dpop_proof(&dkey, "POST", &alias, None, None))).await;
    assert_token(&r);
    assert_eq!(jwt_claims(&r.access_token())["cnf"]["jkt"], json!(thumbprint(&dkey)));
}
