//! Signed request objects at the PAR endpoint (JAR, RFC 9101) for FAPI 2.0 Message
//! Signing and FAPI 1.0 Advanced clients.

use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey, sha256_b64url, sign_with_header};
use strongroom_protocol::random::random_token;
use strongroom_tests::*;

const REDIRECT: &str = "https://app.example/cb";

async fn ms_client(ts: &TestServer) -> (String, LocalSigningKey) {
    let key = client_key(JwsAlg::ES256);
    let id = ts
        .register(json!({"profile": "fapi2-message-signing", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "redirect_uris": [REDIRECT]}))
        .await;
    (id, key)
}

fn object_claims(id: &str, issuer: &str) -> Value {
    let now = now();
    json!({"iss": id, "aud": issuer, "client_id": id, "response_type": "code", "response_mode": "jwt", "redirect_uri": REDIRECT,
           "scope": "openid accounts", "state": "st", "nonce": "no", "code_challenge": sha256_b64url(random_token().as_bytes()),
           "code_challenge_method": "S256", "nbf": now, "exp": now + 300, "jti": random_token()})
}

fn sign_object(key: &LocalSigningKey, claims: &Value) -> String {
    sign_with_header(key, &json!({"alg": key.public_jwk()["alg"], "typ": "oauth-authz-req+jwt"}), claims).unwrap()
}

async fn push(ts: &TestServer, id: &str, key: &LocalSigningKey, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = assertion_form(id, &assertion(key, &assertion_claims(id, &ts.issuer)));
    for (k, v) in extra {
        form.push((k.to_string(), v.to_string()));
    }
    let dkey = client_key(JwsAlg::ES256);
    let resp = ts
        .client()
        .post(ts.url("/par"))
        .header("DPoP", dpop_proof(&dkey, "POST", &ts.url("/par"), None, None))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// F2MS-5.3.1-1, R9126-3: a signed request object at PAR is accepted.
#[tokio::test]
async fn signed_request_object_is_accepted_at_par() {
    let ts = TestServer::start().await;
    let (id, key) = ms_client(&ts).await;
    let object = sign_object(&key, &object_claims(&id, &ts.issuer));
    let (status, body) = push(&ts, &id, &key, &[("request", &object)]).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["request_uri"].as_str().unwrap().starts_with("urn:ietf:params:oauth:request_uri:"));
}

/// R9126-2.3-signed: a client that must sign its requests cannot push plain parameters.
#[tokio::test]
async fn unsigned_request_is_refused_for_message_signing_client() {
    let ts = TestServer::start().await;
    let (id, key) = ms_client(&ts).await;
    let claims = object_claims(&id, &ts.issuer);
    let plain: Vec<(String, String)> = claims
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !["iss", "aud", "nbf", "exp", "jti"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let extra: Vec<(&str, &str)> = plain.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, body) = push(&ts, &id, &key, &extra).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
}

/// The issue-5 refusal list: missing exp, missing nbf, nbf 61 minutes old, exp 61 minutes
/// after nbf, wrong aud, client_id mismatch, wrong key, RS256, none.
#[tokio::test]
async fn request_object_claim_and_signature_refusals() {
    let ts = TestServer::start().await;
    let (id, key) = ms_client(&ts).await;
    let now = now();
    let cases: Vec<(&str, Value)> = vec![
        ("exp", Value::Null),
        ("nbf", Value::Null),
        ("nbf", json!(now - 61 * 60)),
        ("exp", json!(now + 61 * 60)),
        ("aud", json!("https://other.example")),
        ("client_id", json!("someone-else")),
        ("iss", json!("someone-else")),
    ];
    for (claim, v) in cases {
        let mut c = object_claims(&id, &ts.issuer);
        if v.is_null() {
            c.as_object_mut().unwrap().remove(claim);
        } else {
            c[claim] = v.clone();
        }
        let (status, body) = push(&ts, &id, &key, &[("request", &sign_object(&key, &c))]).await;
        assert_eq!(status, 400, "{claim}={v}");
        assert_eq!(body["error"], "invalid_request_object", "{claim}={v}: {body}");
    }
    // Signed by a key the client never registered.
    let stranger = client_key(JwsAlg::ES256);
    let (status, body) =
        push(&ts, &id, &key, &[("request", &sign_object(&stranger, &object_claims(&id, &ts.issuer)))]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request_object")));
    // RS256 and none.
    let rsa = client_key(JwsAlg::RS256);
    let rs = sign_with_header(&rsa, &json!({"alg": "RS256"}), &object_claims(&id, &ts.issuer)).unwrap();
    let (status, body) = push(&ts, &id, &key, &[("request", &rs)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request_object")));
    let h = strongroom_protocol::jose::b64url(br#"{"alg":"none"}"#);
    let p = strongroom_protocol::jose::b64url(object_claims(&id, &ts.issuer).to_string().as_bytes());
    let (status, body) = push(&ts, &id, &key, &[("request", &format!("{h}.{p}."))]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request_object")));
}

/// R9126-3: parameters outside the object are ignored — a conflicting outer scope does
/// not widen what is granted (the object's scope is validated and stored).
#[tokio::test]
async fn parameters_outside_the_object_are_not_used() {
    let ts = TestServer::start().await;
    let (id, key) = ms_client(&ts).await;
    let object = sign_object(&key, &object_claims(&id, &ts.issuer));
    // An outer scope the client is not allowed would fail validation if it were merged.
    let (status, body) = push(&ts, &id, &key, &[("request", &object), ("scope", "admin everything")]).await;
    assert_eq!(status, 201, "{body}");
    let uri = body["request_uri"].as_str().unwrap();
    let stored = ts.server.state.store.get_pushed_request(uri).await.unwrap().unwrap();
    assert_eq!(stored.data["scope"], "openid accounts");
}

/// Encrypts a signed request object to the server's published key of `alg` with josekit.
async fn encrypt_to_server(ts: &TestServer, signed: &str, alg: &str, enc: &str) -> String {
    let jwks: Value = ts.client().get(ts.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["use"] == "enc" && k["alg"] == alg)
        .expect("published encryption key")
        .clone();
    let jwk = josekit::jwk::Jwk::from_bytes(key.to_string().as_bytes()).unwrap();
    let mut header = josekit::jwe::JweHeader::new();
    header.set_content_encryption(enc);
    header.set_content_type("JWT");
    header.set_key_id(key["kid"].as_str().unwrap());
    match alg {
        "RSA-OAEP-256" => josekit::jwe::serialize_compact(
            signed.as_bytes(),
            &header,
            &josekit::jwe::RSA_OAEP_256.encrypter_from_jwk(&jwk).unwrap(),
        )
        .unwrap(),
        _ => josekit::jwe::serialize_compact(
            signed.as_bytes(),
            &header,
            &josekit::jwe::ECDH_ES.encrypter_from_jwk(&jwk).unwrap(),
        )
        .unwrap(),
    }
}

/// Issue "Message signing": encrypted request objects (RSA-OAEP-256 and ECDH-ES, with
/// A256GCM and A128CBC-HS256) to the keys the server publishes (`use: enc`), nested JWS
/// inside; a tampered JWE or one for a key the server does not have is refused.
#[tokio::test]
async fn encrypted_request_objects_are_accepted() {
    let ts = TestServer::start().await;
    let (id, key) = ms_client(&ts).await;
    for (alg, enc) in [("RSA-OAEP-256", "A256GCM"), ("ECDH-ES", "A128CBC-HS256"), ("ECDH-ES", "A256GCM")] {
        let signed = sign_object(&key, &object_claims(&id, &ts.issuer));
        let jwe = encrypt_to_server(&ts, &signed, alg, enc).await;
        assert_eq!(jwe.split('.').count(), 5);
        let (status, body) = push(&ts, &id, &key, &[("request", &jwe)]).await;
        assert_eq!(status, 201, "{alg}/{enc}: {body}");
    }
    // Tampered ciphertext.
    let signed = sign_object(&key, &object_claims(&id, &ts.issuer));
    let jwe = encrypt_to_server(&ts, &signed, "ECDH-ES", "A256GCM").await;
    let mut parts: Vec<String> = jwe.split('.').map(str::to_string).collect();
    parts[3] = strongroom_protocol::jose::b64url(b"not the ciphertext");
    let (status, body) = push(&ts, &id, &key, &[("request", &parts.join("."))]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request_object")));
    // Encrypted to a key of somebody else.
    let other = josekit::jwe::ECDH_ES.generate_ec_key_pair(josekit::jwk::alg::ec::EcCurve::P256).unwrap();
    let mut header = josekit::jwe::JweHeader::new();
    header.set_content_encryption("A256GCM");
    let foreign = josekit::jwe::serialize_compact(
        signed.as_bytes(),
        &header,
        &josekit::jwe::ECDH_ES.encrypter_from_jwk(&other.to_jwk_public_key()).unwrap(),
    )
    .unwrap();
    let (status, body) = push(&ts, &id, &key, &[("request", &foreign)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request_object")));
}
