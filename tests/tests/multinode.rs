//! Several nodes, one state: two Strongroom processes on one PostgreSQL database behave as
//! one service — single-use things stay single-use across nodes.

use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey, sha256_b64url};
use strongroom_protocol::random::random_token;
use strongroom_store::OneTimeRecord;
use strongroom_tests::*;

const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

/// Node A and node B: same database, same issuer, same key-encryption key and PKI.
/// The kit's development set-up (its test PKI) on PostgreSQL is a mix start-up refuses
/// unless asked for; these nodes ask, as a test of the store, not of a deployment.
async fn two_nodes() -> Option<(TestServer, TestServer)> {
    let db = fresh_pg_database().await?;
    let db_a = db.clone();
    let a = TestServer::start_with(move |c| {
        c.development_allow_production_settings = true;
        c.database_url = Some(db_a);
        c.key_encryption_key = Some(KEK.into());
    })
    .await;
    let (issuer, mtls_base, data_dir) = (a.issuer.clone(), a.mtls_base.clone(), a.dir.path().to_path_buf());
    let b = TestServer::start_with(move |c| {
        c.development_allow_production_settings = true;
        c.database_url = Some(db);
        c.key_encryption_key = Some(KEK.into());
        c.issuer = issuer;
        c.listen.mtls_base_url = mtls_base;
        c.data_dir = data_dir;
    })
    .await;
    Some((a, b))
}

/// The URL of `path` on node B's public listener (B serves A's issuer, as behind one
/// load balancer).
fn on_b(b: &TestServer, path: &str) -> String {
    format!("https://localhost:{}{}", b.server.public_addr.port(), path)
}

/// Stores an authorization code for `client_id` directly (as the authorization endpoint
/// would after consent), PKCE-bound to `verifier`, and returns the code.
async fn stored_code(a: &TestServer, client_id: &str, verifier: &str) -> String {
    let code = random_token();
    let request = json!({"client_id": client_id, "response_type": "code", "response_mode": null, "redirect_uri": "https://app.example/cb",
        "scope": "openid accounts", "state": "s", "nonce": "n", "code_challenge": sha256_b64url(verifier.as_bytes()), "dpop_jkt": null,
        "prompt": [], "max_age": null, "acr_values": []});
    a.server
        .state
        .store
        .put_code(&OneTimeRecord {
            key: sha256_b64url(code.as_bytes()),
            client_id: client_id.to_owned(),
            grant_id: random_token(),
            expires_at: now() + 60,
            data: json!({"request": request, "subject": "user-1", "auth_time": now(), "acr": null, "sid": null, "scope": "openid accounts"}),
        })
        .await
        .unwrap();
    code
}

/// An `authorization_code` token request form with a fresh client assertion.
fn code_form(a: &TestServer, id: &str, key: &LocalSigningKey, code: &str, verifier: &str) -> Vec<(String, String)> {
    kit::with(
        assertion_form(id, &assertion(key, &assertion_claims(id, &a.issuer))),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "https://app.example/cb"),
            ("code_verifier", verifier),
        ],
    )
}

/// Sends every `(node, form, DPoP proof)` request to the token endpoint of node A (even
/// index) or node B (odd index) at once and returns the replies.
async fn token_requests_on_both_nodes(
    a: &TestServer,
    b: &TestServer,
    requests: Vec<(Vec<(String, String)>, String)>,
) -> Vec<kit::Reply> {
    let (client_a, client_b) = (a.client(), b.client());
    let (url_a, url_b) = (a.url("/token"), on_b(b, "/token"));
    let sends = requests.into_iter().enumerate().map(|(i, (form, proof))| {
        let (client, url) = if i % 2 == 0 { (&client_a, &url_a) } else { (&client_b, &url_b) };
        async move { kit::post_form(client, url, &form, Some(&proof)).await }
    });
    futures::future::join_all(sends).await
}

/// Asserts exactly one successful token response and `status`/`error` on all others.
#[track_caller]
fn assert_exactly_one_token(replies: &[kit::Reply], status: u16, error: &str) {
    let ok: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "exactly one of {} attempts succeeds", replies.len());
    kit::assert_token(ok[0]);
    for r in replies.iter().filter(|r| r.status != 200) {
        kit::assert_error(r, status, error);
    }
}

/// F2SP-5.3.2.2-9 / F1B-5.2.2-13 across nodes: the same code redeemed concurrently on both
/// nodes yields exactly one token response.
#[tokio::test]
async fn concurrent_redemption_on_two_nodes_yields_one_token() {
    let Some((a, b)) = two_nodes().await else { return };
    let key = client_key(JwsAlg::ES256);
    let id = kit::register_pkjwt(&a, &key, "fapi2-security", json!({})).await;
    let verifier = random_token();
    for round in 0..5 {
        let code = stored_code(&a, &id, &verifier).await;
        let dkey = client_key(JwsAlg::ES256);
        let requests = (0..2)
            .map(|_| {
                (code_form(&a, &id, &key, &code, &verifier), dpop_proof(&dkey, "POST", &a.url("/token"), None, None))
            })
            .collect();
        let replies = token_requests_on_both_nodes(&a, &b, requests).await;
        eprintln!("round {round}");
        assert_exactly_one_token(&replies, 400, "invalid_grant");
    }
}

/// F2SP-5.3.2.2-9 and R9449-11.1 across nodes (issue 11): one code presented 100 times,
/// then one DPoP proof presented 100 times (each time with a fresh client assertion), all
/// at once and alternating between the two nodes: each is accepted exactly once.
#[tokio::test]
async fn one_code_and_one_dpop_proof_used_100_times_on_two_nodes_succeed_once_each() {
    let Some((a, b)) = two_nodes().await else { return };
    let (id, key) = fapi2_client(&a).await;
    let dkey = client_key(JwsAlg::ES256);

    let verifier = random_token();
    let code = stored_code(&a, &id, &verifier).await;
    let requests = (0..100)
        .map(|_| (code_form(&a, &id, &key, &code, &verifier), dpop_proof(&dkey, "POST", &a.url("/token"), None, None)))
        .collect();
    assert_exactly_one_token(&token_requests_on_both_nodes(&a, &b, requests).await, 400, "invalid_grant");

    let proof = dpop_proof(&dkey, "POST", &a.url("/token"), None, None);
    let requests = (0..100).map(|_| (kit::pkjwt_form(&a, &id, &key), proof.clone())).collect();
    assert_exactly_one_token(&token_requests_on_both_nodes(&a, &b, requests).await, 400, "invalid_dpop_proof");
}

/// A `private_key_jwt` client registered through node A: (client id, key).
async fn fapi2_client(a: &TestServer) -> (String, LocalSigningKey) {
    let key = client_key(JwsAlg::ES256);
    (kit::register_pkjwt(a, &key, "fapi2-security", json!({})).await, key)
}

/// OIDC-9-jti across nodes: an assertion accepted by one node is a replay at the other.
#[tokio::test]
async fn assertion_replay_is_detected_across_nodes() {
    let Some((a, b)) = two_nodes().await else { return };
    let (id, key) = fapi2_client(&a).await;
    let dkey = client_key(JwsAlg::ES256);
    let form = kit::pkjwt_form(&a, &id, &key);
    let proof = || dpop_proof(&dkey, "POST", &a.url("/token"), None, None);
    let first = kit::post_form(&a.client(), &a.url("/token"), &form, Some(&proof())).await;
    kit::assert_token(&first);
    let replay = kit::post_form(&b.client(), &on_b(&b, "/token"), &form, Some(&proof())).await;
    kit::assert_error(&replay, 401, "invalid_client");
}

/// Tokens issued by one node are known to the other: node B introspects node A's token,
/// and keys created by A verify at B.
#[tokio::test]
async fn tokens_from_one_node_introspect_at_the_other() {
    let Some((a, b)) = two_nodes().await else { return };
    let (id, key) = fapi2_client(&a).await;
    let dkey = client_key(JwsAlg::ES256);
    let issued = kit::post_form(
        &a.client(),
        &a.url("/token"),
        &kit::pkjwt_form(&a, &id, &key),
        Some(&dpop_proof(&dkey, "POST", &a.url("/token"), None, None)),
    )
    .await;
    kit::assert_token(&issued);
    // R7662-4: only a resource server learns anything at introspection.
    let rs_key = client_key(JwsAlg::ES256);
    let rs = kit::register_pkjwt(&a, &rs_key, "fapi2-security", json!({"introspection_allowed": true})).await;
    let form = kit::with(
        assertion_form(&rs, &assertion(&rs_key, &assertion_claims(&rs, &a.issuer))),
        &[("token", &issued.access_token())],
    );
    let r = kit::post_form(&b.client(), &on_b(&b, "/introspect"), &form, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["cnf"]["jkt"], json!(thumbprint(&dkey)));
}

/// Issue "FAPI 2.0 flow", several nodes: PAR on node A, sign-in and consent on node B,
/// the token from node A, UserInfo at node B — one service.
#[tokio::test]
async fn a_flow_across_two_nodes_succeeds() {
    let Some((a, b)) = two_nodes().await else { return };
    strongroom_server::service::add_user(&a.server.state.store, "nina", "password-123", json!({"name": "Nina"}), now())
        .await
        .unwrap();
    let key = client_key(JwsAlg::ES256);
    let redirect = a.url("/demo/callback");
    let id = a
        .register(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks_of(&key), "redirect_uris": [redirect]}))
        .await;
    let dkey = client_key(JwsAlg::ES256);
    let (verifier, challenge) = pkce_pair();
    let mut form = assertion_form(&id, &assertion(&key, &assertion_claims(&id, &a.issuer)));
    form.extend(
        [
            ("response_type", "code"),
            ("redirect_uri", redirect.as_str()),
            ("scope", "openid profile"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "xs"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let par: Value = a
        .client()
        .post(a.url("/par"))
        .header("DPoP", dpop_proof(&dkey, "POST", &a.url("/par"), None, None))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request_uri = par["request_uri"].as_str().expect("request_uri").to_string();
    // The browser talks to node B only.
    let mut browser = Browser::new(&b);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &id)
        .append_pair("request_uri", &request_uri)
        .finish();
    let login = browser.get(&on_b(&b, &format!("/authorize?{q}"))).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let csrf = form_field(&login.body, "csrf").unwrap();
    let signed_in = browser
        .post_form(
            &on_b(&b, "/login"),
            &[("username", "nina"), ("password", "password-123"), ("csrf", &csrf), ("request_uri", &request_uri)],
        )
        .await;
    assert_eq!(signed_in.status, 303);
    let next = signed_in.location().unwrap().replace(&a.issuer, &on_b(&b, ""));
    let consent = browser.get(&next).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let csrf = form_field(&consent.body, "csrf").unwrap();
    let done = browser
        .post_form(&on_b(&b, "/consent"), &[("csrf", &csrf), ("request_uri", &request_uri), ("decision", "approve")])
        .await;
    assert_eq!(done.status, 303);
    let params = redirect_params(&done.location().unwrap());
    assert_eq!(params["iss"], a.issuer);
    // The code is redeemed at node A.
    let mut form = assertion_form(&id, &assertion(&key, &assertion_claims(&id, &a.issuer)));
    form.extend(
        [
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier.as_str()),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let resp = a
        .client()
        .post(a.url("/token"))
        .header("DPoP", dpop_proof(&dkey, "POST", &a.url("/token"), None, None))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    let at = tokens["access_token"].as_str().unwrap();
    // And used at node B.
    let info = b
        .client()
        .get(on_b(&b, "/userinfo"))
        .header("authorization", format!("DPoP {at}"))
        .header("dpop", dpop_proof(&dkey, "GET", &a.url("/userinfo"), Some(at), None))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(info["name"], "Nina");
}
