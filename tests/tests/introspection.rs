//! Introspection (RFC 7662, RFC 9701) and revocation (RFC 7009), black-box over real TLS:
//! who may call them, what an active and an inactive token look like, the binding a
//! resource server needs, signed introspection responses, and revocation by the owner only.

use serde_json::{Value, json};
use strongroom_tests::kit::*;
use strongroom_tests::*;

/// A resource server: `tls_client_auth`, allowed to introspect any token.
struct ResourceServer {
    id: String,
    http: reqwest::Client,
}

impl ResourceServer {
    async fn register(ts: &TestServer, name: &str) -> ResourceServer {
        let id =
            register_tls(ts, name, json!({"introspection_allowed": true, "grant_types": ["client_credentials"]})).await;
        let (cert, key) = ts.trusted_cert(name);
        ResourceServer { id, http: ts.mtls_client(&cert, &key) }
    }

    async fn introspect(&self, ts: &TestServer, token: &str) -> Reply {
        let form = with(vec![], &[("client_id", self.id.as_str()), ("token", token)]);
        post_form(&self.http, &ts.mtls_url("/introspect"), &form, None).await
    }
}

/// R7662-2.2, R9449-6.1/6.2, F2SP-5.3.4-5: a resource server introspecting a DPoP-bound
/// token sees `active: true` with `cnf.jkt` (the DPoP key's thumbprint), `token_type`
/// `DPoP`, and `scope`, `client_id`, `sub`, `exp`, `iat`; the response is not cached.
#[tokio::test]
async fn dpop_token_introspection_shows_binding() {
    let ts = TestServer::start().await;
    let rs = ResourceServer::register(&ts, "rs-1").await;
    let (token, dkey, client_id, _) = dpop_token(&ts).await;
    let at = jwt_claims(&token);
    let r = rs.introspect(&ts, &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let b = &r.body;
    assert_eq!(b["active"], true, "{}", r.text);
    assert_eq!(b["cnf"]["jkt"], json!(thumbprint(&dkey)));
    assert_eq!(b["token_type"], "DPoP");
    assert_eq!(b["client_id"], json!(client_id));
    assert_eq!(b["sub"], at["sub"]);
    assert_eq!(b["scope"], at["scope"]);
    assert!(b["scope"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(b["exp"], at["exp"]);
    assert_eq!(b["iat"], at["iat"]);
    assert!(b["exp"].as_i64().unwrap() > now());
}

/// R8705-3, F1A-5.2.2-5/6: introspection of an mTLS-bound token returns `cnf.x5t#S256`,
/// the thumbprint of the certificate the client used at the token endpoint.
#[tokio::test]
async fn mtls_token_introspection_shows_certificate_binding() {
    let ts = TestServer::start().await;
    let rs = ResourceServer::register(&ts, "rs-2").await;
    let (token, client_id, cert, _) = mtls_token(&ts, "svc-m").await;
    let r = rs.introspect(&ts, &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["cnf"]["x5t#S256"], json!(cert_x5t_s256(&cert)));
    assert!(r.body["cnf"].get("jkt").is_none());
    assert_eq!(r.body["client_id"], json!(client_id));
    assert_ne!(r.body["token_type"], "DPoP");
}

/// R7662-2.1: an unauthenticated caller (no credentials, or only a `client_id` without
/// its certificate) gets 401 `invalid_client`, and learns nothing about the token.
#[tokio::test]
async fn unauthenticated_introspection_is_refused() {
    let ts = TestServer::start().await;
    let rs = ResourceServer::register(&ts, "rs-3").await;
    let (token, _, _, _) = dpop_token(&ts).await;
    let url = ts.mtls_url("/introspect");
    let r = post_form(&ts.client(), &url, &with(vec![], &[("token", token.as_str())]), None).await;
    assert_error(&r, 401, "invalid_client");
    assert!(r.body.get("active").is_none());
    let form = with(vec![], &[("client_id", rs.id.as_str()), ("token", token.as_str())]);
    let r = post_form(&ts.client(), &url, &form, None).await;
    assert_error(&r, 401, "invalid_client");
    let r = post_form(&ts.client(), &ts.url("/introspect"), &form, None).await;
    assert_error(&r, 401, "invalid_client");
}

/// R7662-2.2: an unknown token — random text, or a JWT the server did not sign — is
/// 200 with exactly `{"active": false}`.
#[tokio::test]
async fn unknown_token_is_inactive() {
    let ts = TestServer::start().await;
    let rs = ResourceServer::register(&ts, "rs-4").await;
    let forged = raw_jwt(
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "x"}),
        &json!({"iss": ts.issuer, "jti": "guess", "exp": now() + 60}),
        b"sig",
    );
    for token in [strongroom_protocol::random::random_token(), forged] {
        let r = rs.introspect(&ts, &token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body, json!({"active": false}));
    }
}

/// R7662-4, F2MS-sec-introspect: an ordinary client (not a resource server) learns
/// nothing: 200 with exactly `{"active": false}` for another client's token and for its
/// own active token alike, while a resource server sees both active.
#[tokio::test]
async fn ordinary_client_learns_nothing() {
    let ts = TestServer::start().await;
    let (victim_token, _, _, _) = dpop_token(&ts).await;
    let (own_token, snoop, cert, key) = mtls_token(&ts, "snoop").await;
    let http = ts.mtls_client(&cert, &key);
    let url = ts.mtls_url("/introspect");
    let r =
        post_form(&http, &url, &with(vec![], &[("client_id", snoop.as_str()), ("token", &victim_token)]), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"active": false}));
    let r = post_form(&http, &url, &with(vec![], &[("client_id", snoop.as_str()), ("token", &own_token)]), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"active": false}));
    let rs = ResourceServer::register(&ts, "rs-9").await;
    assert_eq!(rs.introspect(&ts, &victim_token).await.body["active"], true);
    assert_eq!(rs.introspect(&ts, &own_token).await.body["active"], true);
}

/// Verifies a JWT with the server's published JWKS (an independent verifier:
/// `jsonwebtoken`, with exp/aud checks off since RFC 9701 responses need neither).
async fn verify_with_server_jwks(ts: &TestServer, jwt: &str) -> (jsonwebtoken::Header, Value) {
    let jwks: jsonwebtoken::jwk::JwkSet = ts.client().get(ts.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(jwt).expect("JWT header");
    let kid = header.kid.clone().expect("kid in header");
    let jwk = jwks.find(&kid).expect("signing key is published in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("decoding key");
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Value>(jwt, &key, &v).expect("signature verifies");
    (data.header, data.claims)
}

/// R9701-4/5, F2MS-5.5.1-1: `Accept: application/token-introspection+jwt` gives 200 with
/// that content type and a JWT (`typ` `token-introspection+jwt`, a FAPI algorithm, signed
/// with a key in the server's JWKS) holding `iss`, `aud` = the caller's `client_id`, `iat`
/// and the `token_introspection` object; an unknown token's object is `{"active": false}`.
#[tokio::test]
async fn jwt_introspection_response() {
    let ts = TestServer::start().await;
    let rs = ResourceServer::register(&ts, "rs-5").await;
    let (token, dkey, client_id, _) = dpop_token(&ts).await;
    for (tok, active) in [(token.clone(), true), ("no-such-token".to_string(), false)] {
        let form = with(vec![], &[("client_id", rs.id.as_str()), ("token", tok.as_str())]);
        let r = send(
            rs.http
                .post(ts.mtls_url("/introspect"))
                .header("Accept", "application/token-introspection+jwt")
                .form(&form),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("content-type"), Some("application/token-introspection+jwt"));
        let (header, claims) = verify_with_server_jwks(&ts, r.text.trim()).await;
        assert_eq!(header.typ.as_deref(), Some("token-introspection+jwt"));
        assert!(
            matches!(
                header.alg,
                jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::PS256 | jsonwebtoken::Algorithm::EdDSA
            ),
            "{:?}",
            header.alg
        );
        assert_eq!(claims["iss"], json!(ts.issuer));
        assert_eq!(claims["aud"], json!(rs.id));
        assert!(claims["iat"].as_i64().is_some_and(|t| (t - now()).abs() < 60));
        let ti = &claims["token_introspection"];
        if active {
            assert_eq!(ti["active"], true);
            assert_eq!(ti["cnf"]["jkt"], json!(thumbprint(&dkey)));
            assert_eq!(ti["client_id"], json!(client_id));
            assert_eq!(ti["token_type"], "DPoP");
        } else {
            assert_eq!(ti, &json!({"active": false}));
        }
    }
}

/// R7009-2.1, R7009-2.2, F2SP-5.3.4-3: the token's own client revokes it (200), after
/// which introspection says `{"active": false}`.
#[tokio::test]
async fn revoked_token_is_inactive() {
    let ts = TestServer::start().await;
    let rs = ResourceServer::register(&ts, "rs-6").await;
    let (token, id, cert, key) = mtls_token(&ts, "svc-r").await;
    assert_eq!(rs.introspect(&ts, &token).await.body["active"], true);
    let form = with(vec![], &[("client_id", id.as_str()), ("token", token.as_str())]);
    let r = post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/revoke"), &form, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("error").is_none());
    let r = rs.introspect(&ts, &token).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"active": false}));
}

/// R7009-2.1: another client "revoking" a token gets 200 (it learns nothing) but the token
/// stays active.
#[tokio::test]
async fn other_client_cannot_revoke() {
    let ts = TestServer::start().await;
    let rs = ResourceServer::register(&ts, "rs-7").await;
    let (token, _, _, _) = dpop_token(&ts).await;
    let (_, other, cert, key) = mtls_token(&ts, "svc-other").await;
    let form = with(vec![], &[("client_id", other.as_str()), ("token", token.as_str())]);
    let r = post_form(&ts.mtls_client(&cert, &key), &ts.mtls_url("/revoke"), &form, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(rs.introspect(&ts, &token).await.body["active"], true);
    // A resource server may read any token, but not revoke someone else's either.
    let form = with(vec![], &[("client_id", rs.id.as_str()), ("token", token.as_str())]);
    let r = post_form(&rs.http, &ts.mtls_url("/revoke"), &form, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(rs.introspect(&ts, &token).await.body["active"], true);
}

/// R7009-2.2: revoking an unknown or invalid token is 200, not an error (with and
/// without a `token_type_hint`).
#[tokio::test]
async fn revoking_unknown_token_is_ok() {
    let ts = TestServer::start().await;
    let (_, id, cert, key) = mtls_token(&ts, "svc-u").await;
    let http = ts.mtls_client(&cert, &key);
    for hint in [None, Some("access_token"), Some("refresh_token")] {
        let mut form = with(vec![], &[("client_id", id.as_str()), ("token", "never-issued-token")]);
        if let Some(h) = hint {
            form = with(form, &[("token_type_hint", h)]);
        }
        let r = post_form(&http, &ts.mtls_url("/revoke"), &form, None).await;
        assert_eq!(r.status, 200, "{hint:?}: {}", r.text);
        assert!(r.body.get("error").is_none());
    }
}

/// R7009-2.1: revocation without client authentication is 401 `invalid_client`, and the
/// token stays active.
#[tokio::test]
async fn unauthenticated_revocation_is_refused() {
    let ts = TestServer::start().await;
    let rs = ResourceServer::register(&ts, "rs-8").await;
    let (token, id, _, _) = mtls_token(&ts, "svc-n").await;
    let r = post_form(&ts.client(), &ts.mtls_url("/revoke"), &with(vec![], &[("token", token.as_str())]), None).await;
    assert_error(&r, 401, "invalid_client");
    let form = with(vec![], &[("client_id", id.as_str()), ("token", token.as_str())]);
    let r = post_form(&ts.client(), &ts.mtls_url("/revoke"), &form, None).await;
    assert_error(&r, 401, "invalid_client");
    assert_eq!(rs.introspect(&ts, &token).await.body["active"], true);
}
