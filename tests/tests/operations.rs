//! Operations basics: request limits, health endpoints, key rotation, and the admin CLI
//! working on the server's database.

use serde_json::{Value, json};
use strongroom_tests::kit::*;
use strongroom_tests::*;

/// Oversized bodies get 413 and oversized headers 400, each with an OAuth error body.
#[tokio::test]
async fn oversized_requests_get_oauth_errors() {
    let ts = TestServer::start_with(|c| {
        c.limits.max_body_bytes = 4096;
        c.limits.max_header_bytes = 8192;
        c.limits.max_jwt_bytes = 1024;
    })
    .await;
    let big = "a".repeat(10_000);
    let resp = ts
        .client()
        .post(ts.url("/token"))
        .form(&[("grant_type", "client_credentials"), ("x", big.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let resp = ts.client().get(ts.url("/jwks")).header("x-filler", "b".repeat(9000)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    // An oversized client assertion is refused as a client error, not a crash.
    let huge = format!("{}.{}.{}", "e".repeat(1000), "e".repeat(1000), "e".repeat(20));
    let r = post_form(&ts.client(), &ts.url("/token"), &assertion_form("x", &huge), None).await;
    assert_error(&r, 401, "invalid_client");
}

/// `/healthz` answers while alive, `/readyz` when the database answers.
#[tokio::test]
async fn health_endpoints() {
    let ts = TestServer::start().await;
    for path in ["/healthz", "/readyz"] {
        let resp = ts.client().get(ts.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}

/// Keys: the JWKS publishes active and next keys (kid, use, alg; RSA ≥ 2048 bits);
/// rotation activates the staged key, keeps the retired one published, and tokens signed
/// before the rotation still introspect as active (F2SP-5.4.1-2, F2SP-5.4.2-3).
#[tokio::test]
async fn key_rotation_publishes_before_use_and_keeps_the_retired_key() {
    let ts = TestServer::start().await;
    let jwks = || async { ts.client().get(ts.url("/jwks")).send().await.unwrap().json::<Value>().await.unwrap() };
    let before = jwks().await;
    let all = before["keys"].as_array().unwrap();
    let enc: Vec<&Value> = all.iter().filter(|k| k["use"] == "enc").collect();
    assert_eq!(enc.len(), 2, "one RSA-OAEP-256 and one ECDH-ES encryption key (F2SP-6-keys: single-purpose keys)");
    let keys: Vec<&Value> = all.iter().filter(|k| k["use"] == "sig").collect();
    assert_eq!(keys.len(), 6, "active + next for ES256, PS256, EdDSA");
    let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    kids.sort();
    kids.dedup();
    assert_eq!(kids.len(), 6, "no duplicate kids");
    for k in &keys {
        assert!(["ES256", "PS256", "EdDSA"].contains(&k["alg"].as_str().unwrap()));
        assert!(k.get("d").is_none(), "public keys only");
        if k["kty"] == "RSA" {
            let n = strongroom_protocol::jose::b64url_decode(k["n"].as_str().unwrap()).unwrap();
            assert!(n.len() * 8 >= 2048);
        }
    }
    let (at, ..) = dpop_token(&ts).await;
    let old_kid = jwt_header(&at)["kid"].as_str().unwrap().to_string();
    let activated = ts.server.state.keys.rotate(now()).await.unwrap();
    let after = jwks().await;
    let after_kids: Vec<&str> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == "sig")
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(after_kids.len(), 9, "retired + active + next per algorithm");
    assert!(after_kids.contains(&old_kid.as_str()), "the retired key stays published");
    for kid in &activated {
        assert!(kids.contains(&kid.as_str()), "the new active key {kid} was published before it was used");
    }
    let (new_at, ..) = dpop_token(&ts).await;
    assert_ne!(jwt_header(&new_at)["kid"], json!(old_kid));
    // R7662-4: only a resource server learns anything at introspection.
    let rs_key = client_key(strongroom_protocol::jose::JwsAlg::ES256);
    let rs = register_pkjwt(&ts, &rs_key, "fapi2-security", json!({"introspection_allowed": true})).await;
    let form = with(pkjwt_form(&ts, &rs, &rs_key), &[("token", &at)]);
    let r = post_form(&ts.client(), &ts.url("/introspect"), &form, None).await;
    assert_eq!(r.body["active"], true, "a token signed before the rotation still verifies");
}

/// `keys.rotate_every` (F2SP-5.4.1-2: keys published before use; retired keys stay published
/// for the overlap): with the clock moved past the period, the keys rotate next → active →
/// retired exactly once even when two rotations race on one store (the lease), the new
/// active key was published before, the old one stays published, and nothing rotates
/// before the period or right after a rotation.
#[tokio::test]
async fn automatic_rotation_happens_once_when_due() {
    let every = 7200;
    let ts = TestServer::start_with(|c| c.keys.rotate_every = Some(every)).await;
    let keys = &ts.server.state.keys;
    let es256 = || {
        use strongroom_protocol::jose::JwsSigner;
        let signer = keys.signer(strongroom_protocol::jose::JwsAlg::ES256).unwrap();
        jwt_header(&signer.sign(None, &json!({})).unwrap())["kid"].as_str().unwrap().to_string()
    };
    let published = || {
        keys.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let before = es256();
    let staged = published();
    assert!(!keys.rotate_if_due(now() + 3600, every).await.unwrap(), "not due yet");
    assert_eq!(es256(), before);

    // Several periods, each raced by three rotations: one node reading the keys while another
    // is half way through its rotation must not rotate again.
    let (mut before, mut staged) = (before, staged);
    for period in 1..=3i64 {
        let later = now() + period * (every as i64 + 1);
        let (a, b, c) = tokio::join!(
            keys.rotate_if_due(later, every),
            keys.rotate_if_due(later, every),
            keys.rotate_if_due(later, every)
        );
        let rotated = [a.unwrap(), b.unwrap(), c.unwrap()];
        assert_eq!(rotated.iter().filter(|r| **r).count(), 1, "exactly one racing node rotates: {rotated:?}");
        keys.reload(later).await.unwrap();
        let after = es256();
        assert_ne!(after, before);
        assert!(staged.contains(&after), "the new active key was published before it was used");
        assert!(published().contains(&before), "the retired key stays published for the overlap");
        assert!(!keys.rotate_if_due(later + 60, every).await.unwrap(), "not again right after a rotation");
        before = after;
        staged = published();
    }
}
