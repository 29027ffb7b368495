//! Tokens used where they are checked: the resource-server guard on the demo resource and
//! on UserInfo (sender constraint, `ath`, nonces, scope, revocation), and refresh tokens
//! that keep their binding.

use serde_json::{Value, json};
use strongroom_protocol::jose::JwsAlg;
use strongroom_protocol::random::random_token;
use strongroom_tests::kit::*;
use strongroom_tests::*;

async fn get_with(client: &reqwest::Client, url: &str, auth: &str, proof: Option<&str>) -> reqwest::Response {
    let mut rb = client.get(url).header("authorization", auth);
    if let Some(p) = proof {
        rb = rb.header("dpop", p);
    }
    rb.send().await.unwrap()
}

fn challenge(resp: &reqwest::Response) -> String {
    resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// R9449-7.1, F2SP-5.3.4-5: a DPoP-bound token with a proof carrying `ath` reaches the
/// resource; F1B-6.2.1-11/12: the interaction id is echoed.
#[tokio::test]
async fn dpop_token_is_accepted_with_its_proof() {
    let ts = TestServer::start().await;
    let (at, dkey, id, _) = dpop_token(&ts).await;
    let url = ts.url("/demo/accounts");
    let resp = ts
        .client()
        .get(&url)
        .header("authorization", format!("DPoP {at}"))
        .header("dpop", dpop_proof(&dkey, "GET", &url, Some(&at), None))
        .header("x-fapi-interaction-id", "c770aef3-6784-41f7-8e0e-ff5f97bddb3a")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-fapi-interaction-id"], "c770aef3-6784-41f7-8e0e-ff5f97bddb3a");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["client_id"], json!(id));
    assert_eq!(body["bound_by"], "dpop");
}

/// R9449-7.2, R9449-7.1, R9449-11.1, F2SP-5.3.4-1/2: downgrade to Bearer, missing or
/// wrong `ath`, another key, wrong `htm`/`htu`, replay, and a token in the query are all
/// refused with 401 and a DPoP challenge.
#[tokio::test]
async fn dpop_misuse_is_refused() {
    let ts = TestServer::start().await;
    let (at, dkey, _, _) = dpop_token(&ts).await;
    let c = ts.client();
    let url = ts.url("/demo/accounts");
    let r = get_with(&c, &url, &format!("Bearer {at}"), None).await;
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).starts_with("DPoP") && challenge(&r).contains("invalid_token"), "{}", challenge(&r));
    let r = get_with(&c, &url, &format!("DPoP {at}"), Some(&dpop_proof(&dkey, "GET", &url, None, None))).await;
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).contains("invalid_dpop_proof"), "missing ath: {}", challenge(&r));
    let r = get_with(&c, &url, &format!("DPoP {at}"), Some(&dpop_proof(&dkey, "GET", &url, Some("other-token"), None)))
        .await;
    assert_eq!(r.status(), 401, "wrong ath");
    let other = client_key(JwsAlg::ES256);
    let r = get_with(&c, &url, &format!("DPoP {at}"), Some(&dpop_proof(&other, "GET", &url, Some(&at), None))).await;
    assert_eq!(r.status(), 401, "another key");
    assert!(challenge(&r).contains("invalid_dpop_proof"));
    let r = get_with(&c, &url, &format!("DPoP {at}"), Some(&dpop_proof(&dkey, "POST", &url, Some(&at), None))).await;
    assert_eq!(r.status(), 401, "wrong htm");
    let r = get_with(
        &c,
        &url,
        &format!("DPoP {at}"),
        Some(&dpop_proof(&dkey, "GET", &ts.url("/userinfo"), Some(&at), None)),
    )
    .await;
    assert_eq!(r.status(), 401, "wrong htu");
    let proof = dpop_proof(&dkey, "GET", &url, Some(&at), None);
    assert_eq!(get_with(&c, &url, &format!("DPoP {at}"), Some(&proof)).await.status(), 200);
    let r = get_with(&c, &url, &format!("DPoP {at}"), Some(&proof)).await;
    assert_eq!(r.status(), 401, "replayed proof");
    let r = c
        .get(format!("{url}?access_token={at}"))
        .header("dpop", dpop_proof(&dkey, "GET", &url, Some(&at), None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "token in the query is ignored");
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).starts_with("DPoP"));
}

/// R8705-3-RS, F1A-8.2: a certificate-bound token works only with its certificate.
#[tokio::test]
async fn mtls_token_needs_its_certificate() {
    let ts = TestServer::start().await;
    let cn = format!("svc-{}", &random_token()[..6]);
    let (at, _, cert, key) = mtls_token(&ts, &cn).await;
    let url = ts.mtls_url("/demo/accounts");
    let r = get_with(&ts.mtls_client(&cert, &key), &url, &format!("Bearer {at}"), None).await;
    assert_eq!(r.status(), 200);
    let (other_cert, other_key) = ts.trusted_cert("someone-else");
    let r = get_with(&ts.mtls_client(&other_cert, &other_key), &url, &format!("Bearer {at}"), None).await;
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).starts_with("Bearer") && challenge(&r).contains("invalid_token"));
    let r = get_with(&ts.client(), &url, &format!("Bearer {at}"), None).await;
    assert_eq!(r.status(), 401, "no certificate");
}

/// F2SP-5.3.4-3: a revoked token is refused; F2SP-5.3.4-4: a token without the scope gets
/// 403 insufficient_scope.
#[tokio::test]
async fn revoked_and_insufficient_tokens_are_refused() {
    let ts = TestServer::start().await;
    let (at, dkey, id, key) = dpop_token(&ts).await;
    let url = ts.url("/demo/accounts");
    let form = with(pkjwt_form(&ts, &id, &key), &[("token", &at)]);
    let r = post_form(&ts.client(), &ts.url("/revoke"), &form, None).await;
    assert_eq!(r.status, 200);
    let r = get_with(&ts.client(), &url, &format!("DPoP {at}"), Some(&dpop_proof(&dkey, "GET", &url, Some(&at), None)))
        .await;
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).contains("invalid_token"));
    // A token for `payments` only.
    let dkey = client_key(JwsAlg::ES256);
    let proof = dpop_proof(&dkey, "POST", &ts.url("/token"), None, None);
    let form = with(pkjwt_form(&ts, &id, &key), &[("scope", "payments")]);
    let r = post_form(&ts.client(), &ts.url("/token"), &form, Some(&proof)).await;
    assert_token(&r);
    let at = r.access_token();
    let r = get_with(&ts.client(), &url, &format!("DPoP {at}"), Some(&dpop_proof(&dkey, "GET", &url, Some(&at), None)))
        .await;
    assert_eq!(r.status(), 403);
    assert!(challenge(&r).contains("insufficient_scope"));
}

/// R9449-9: a resource that demands nonces answers 401 use_dpop_nonce with a
/// `DPoP-Nonce`, and the retry with it succeeds.
#[tokio::test]
async fn resource_nonce_challenge() {
    let ts = TestServer::start_with(|c| c.dpop.require_nonce = true).await;
    let key = client_key(JwsAlg::ES256);
    let id = register_pkjwt(&ts, &key, "fapi2-security", json!({})).await;
    let dkey = client_key(JwsAlg::ES256);
    let token_url = ts.url("/token");
    let first = post_form(
        &ts.client(),
        &token_url,
        &pkjwt_form(&ts, &id, &key),
        Some(&dpop_proof(&dkey, "POST", &token_url, None, None)),
    )
    .await;
    let nonce = first.header("dpop-nonce").expect("nonce").to_string();
    let r = post_form(
        &ts.client(),
        &token_url,
        &pkjwt_form(&ts, &id, &key),
        Some(&dpop_proof(&dkey, "POST", &token_url, None, Some(&nonce))),
    )
    .await;
    assert_token(&r);
    let at = r.access_token();
    let url = ts.url("/demo/accounts");
    let r = get_with(&ts.client(), &url, &format!("DPoP {at}"), Some(&dpop_proof(&dkey, "GET", &url, Some(&at), None)))
        .await;
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).contains("use_dpop_nonce"));
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_string();
    let r = get_with(
        &ts.client(),
        &url,
        &format!("DPoP {at}"),
        Some(&dpop_proof(&dkey, "GET", &url, Some(&at), Some(&nonce))),
    )
    .await;
    assert_eq!(r.status(), 200);
}

/// A complete FAPI 2.0 flow for user `dave`: the token response.
async fn flow(ts: &TestServer) -> FlowTokens {
    strongroom_server::service::add_user(
        &ts.server.state.store,
        "dave",
        "password-123",
        json!({"name": "Dave", "email": "dave@example.com"}),
        now(),
    )
    .await
    .unwrap();
    fapi2_code_flow(ts, "dave", "password-123", "openid profile email accounts", &[("state", "s1"), ("nonce", "n1")])
        .await
}

/// OIDC-5.3-userinfo: UserInfo with the DPoP-bound token returns `sub` and the claims of
/// the consented scopes; the same request without the proof is refused.
#[tokio::test]
async fn userinfo_returns_consented_claims() {
    let ts = TestServer::start().await;
    let f = flow(&ts).await;
    let at = f.body["access_token"].as_str().unwrap();
    let url = ts.url("/userinfo");
    let r =
        get_with(&ts.client(), &url, &format!("DPoP {at}"), Some(&dpop_proof(&f.dkey, "GET", &url, Some(at), None)))
            .await;
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], jwt_claims(f.body["id_token"].as_str().unwrap())["sub"]);
    assert_eq!(info["name"], "Dave");
    assert_eq!(info["email"], "dave@example.com");
    let r = get_with(&ts.client(), &url, &format!("Bearer {at}"), None).await;
    assert_eq!(r.status(), 401);
}

/// R9449-5-rt, F2SP-5.3.2.1-9, R7009-2-rt: a refresh with a new DPoP key binds the new
/// token to that key; FAPI 2.0 refresh tokens are not rotated; widening the scope is
/// refused; revoking the refresh token ends the grant's access tokens.
#[tokio::test]
async fn refresh_keeps_binding_and_revocation_ends_the_grant() {
    let ts = TestServer::start().await;
    let f = flow(&ts).await;
    let rt = f.body["refresh_token"].as_str().expect("refresh token").to_string();
    let first_at = f.body["access_token"].as_str().unwrap().to_string();
    let token_url = ts.url("/token");
    let base =
        || pkjwt_form(&ts, &f.client_id, &f.key).into_iter().filter(|(k, _)| k != "grant_type").collect::<Vec<_>>();
    let new_key = client_key(JwsAlg::ES256);
    let form = with(base(), &[("grant_type", "refresh_token"), ("refresh_token", &rt), ("scope", "openid accounts")]);
    let r =
        post_form(&ts.client(), &token_url, &form, Some(&dpop_proof(&new_key, "POST", &token_url, None, None))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token_type"], "DPoP");
    assert!(r.body.get("refresh_token").is_none(), "no rotation for FAPI 2.0");
    assert_eq!(r.body["scope"], "openid accounts");
    assert_eq!(jwt_claims(&r.access_token())["cnf"]["jkt"], json!(thumbprint(&new_key)));
    // Without a proof the DPoP grant cannot be refreshed.
    let form = with(base(), &[("grant_type", "refresh_token"), ("refresh_token", &rt)]);
    let r = post_form(&ts.client(), &token_url, &form, None).await;
    assert_eq!(r.status, 400);
    // Widening is refused.
    let form = with(base(), &[("grant_type", "refresh_token"), ("refresh_token", &rt), ("scope", "openid payments")]);
    let r =
        post_form(&ts.client(), &token_url, &form, Some(&dpop_proof(&new_key, "POST", &token_url, None, None))).await;
    assert_error(&r, 400, "invalid_scope");
    // Revoking the refresh token ends the access tokens of the grant.
    let form = with(base(), &[("token", &rt)]);
    assert_eq!(post_form(&ts.client(), &ts.url("/revoke"), &form, None).await.status, 200);
    let form = with(base(), &[("token", &first_at)]);
    let r = post_form(&ts.client(), &ts.url("/introspect"), &form, None).await;
    assert_eq!(r.body, json!({"active": false}));
    let form = with(base(), &[("grant_type", "refresh_token"), ("refresh_token", &rt)]);
    let r =
        post_form(&ts.client(), &token_url, &form, Some(&dpop_proof(&new_key, "POST", &token_url, None, None))).await;
    assert_error(&r, 400, "invalid_grant");
}

/// A user with claims of every kind, for the `claims` parameter tests.
async fn add_erin(ts: &TestServer) {
    strongroom_server::service::add_user(
        &ts.server.state.store,
        "erin",
        "password-456",
        json!({"name": "Erin", "email": "erin@example.com", "phone_number": "+44 20 7946 0000"}),
        now(),
    )
    .await
    .unwrap();
}

/// OIDC-5.5, OIDC-5.5.1.1 (issue 10 point 7): claims asked for individually with the `claims`
/// parameter go where they were asked for — `email` into the ID token, `phone_number` to
/// UserInfo — beside those of the scopes (none here but `openid`); an essential `acr` that
/// the server asserts is met; discovery says the parameter is supported.
#[tokio::test]
async fn claims_parameter_releases_claims_where_asked() {
    let ts = TestServer::start().await;
    add_erin(&ts).await;
    let claims = json!({
        "id_token": {"email": null, "acr": {"essential": true, "values": ["urn:other", "urn:strongroom:acr:password"]}},
        "userinfo": {"phone_number": {"essential": true}, "sub": null}
    })
    .to_string();
    let f =
        fapi2_code_flow(&ts, "erin", "password-456", "openid accounts", &[("nonce", "n1"), ("claims", &claims)]).await;
    let id = jwt_claims(f.body["id_token"].as_str().expect("id token"));
    assert_eq!(id["email"], "erin@example.com");
    assert_eq!(id["acr"], "urn:strongroom:acr:password");
    assert!(id.get("phone_number").is_none() && id.get("name").is_none(), "{id}");
    let at = f.body["access_token"].as_str().unwrap();
    let url = ts.url("/userinfo");
    let r =
        get_with(&ts.client(), &url, &format!("DPoP {at}"), Some(&dpop_proof(&f.dkey, "GET", &url, Some(at), None)))
            .await;
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["phone_number"], "+44 20 7946 0000");
    assert_eq!(info["sub"], id["sub"]);
    assert!(info.get("email").is_none() && info.get("name").is_none(), "{info}");
    let discovery: Value =
        ts.client().get(ts.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["claims_parameter_supported"], true);
}

/// OIDC-5.5.1.1, OIDC-5.5: an essential `acr` the server cannot assert fails the request
/// (`access_denied`) before anyone signs in, and a malformed `claims` is `invalid_request`.
#[tokio::test]
async fn claims_parameter_refuses_unmet_acr_and_malformed_values() {
    let ts = TestServer::start().await;
    let key = client_key(JwsAlg::ES256);
    let redirect = ts.url("/demo/callback");
    let id = register_pkjwt(&ts, &key, "fapi2-security", json!({"redirect_uris": [redirect]})).await;
    let (_, challenge) = pkce_pair();
    let dkey = client_key(JwsAlg::ES256);
    for (claims, code) in [
        (
            json!({"id_token": {"acr": {"essential": true, "values": ["urn:mace:incommon:iap:silver"]}}}).to_string(),
            "access_denied",
        ),
        ("{\"id_token\": [1]}".to_string(), "invalid_request"),
        ("not json".to_string(), "invalid_request"),
    ] {
        let form = with(
            assertion_form(&id, &assertion(&key, &assertion_claims(&id, &ts.issuer))),
            &[
                ("response_type", "code"),
                ("redirect_uri", &redirect),
                ("scope", "openid accounts"),
                ("nonce", "n"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("claims", &claims),
            ],
        );
        let proof = dpop_proof(&dkey, "POST", &ts.url("/par"), None, None);
        let r = post_form(&ts.client(), &ts.url("/par"), &form, Some(&proof)).await;
        assert_error(&r, 400, code);
    }
}
