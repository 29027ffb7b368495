//! The JSON admin API, black-box over real TLS: absent without a configured token,
//! refusing unauthenticated calls, managing clients, users and keys through the same
//! service layer as the CLI, revoking grants; and `docs/openapi-admin.json` checked against
//! the routes both ways.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use strongroom_protocol::jose::JwsAlg;
use strongroom_tests::kit::*;
use strongroom_tests::*;

/// The routes this API implements (method, OpenAPI path). Kept here, independently of the
/// server, and compared both with the server's list and with the OpenAPI description.
const IMPLEMENTED: [(&str, &str); 14] = [
    ("GET", "/admin"),
    ("GET", "/admin/clients"),
    ("POST", "/admin/clients"),
    ("GET", "/admin/clients/{client_id}"),
    ("DELETE", "/admin/clients/{client_id}"),
    ("GET", "/admin/users"),
    ("POST", "/admin/users"),
    ("GET", "/admin/users/{username}"),
    ("DELETE", "/admin/users/{username}"),
    ("POST", "/admin/users/{username}/password"),
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys/rotate"),
    ("POST", "/admin/revoke"),
    ("GET", "/admin/audit"),
];

fn admin_token() -> String {
    "a".repeat(48)
}

async fn with_admin() -> TestServer {
    TestServer::start_with(|c| c.admin.token = Some(admin_token())).await
}

/// A request to the admin API on the public listener, with the admin token.
fn call(ts: &TestServer, method: &str, path: &str, body: Option<&Value>) -> reqwest::RequestBuilder {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = ts.client().request(m, ts.url(path)).bearer_auth(admin_token());
    if let Some(b) = body {
        rb = rb.json(b);
    }
    rb
}

fn concrete(path: &str) -> String {
    path.replace("{client_id}", "some-client").replace("{username}", "some-user")
}

/// Admin API: never reachable without a configured `admin.token` — every admin path and
/// method answers 404, as if it did not exist.
#[tokio::test]
async fn admin_api_is_absent_without_a_configured_token() {
    let ts = TestServer::start().await;
    for (method, path) in IMPLEMENTED {
        let r = send(call(&ts, method, &concrete(path), Some(&json!({})))).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
    }
    let r = send(ts.client().patch(ts.url("/admin/clients")).bearer_auth(admin_token())).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = send(ts.client().get(ts.mtls_url("/admin/keys"))).await;
    assert_eq!(r.status, 404, "{}", r.text);
}

/// Admin API: a missing or wrong token is 401 (with a Bearer challenge) on every route,
/// before anything else — including unsupported methods.
#[tokio::test]
async fn admin_api_refuses_unauthenticated_calls() {
    let ts = with_admin().await;
    for (method, path) in IMPLEMENTED {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let url = ts.url(&concrete(path));
        for token in [None, Some("b".repeat(48)), Some("a".repeat(47))] {
            let mut rb = ts.client().request(m.clone(), &url).json(&json!({}));
            if let Some(t) = &token {
                rb = rb.bearer_auth(t);
            }
            let r = send(rb).await;
            assert_error(&r, 401, "invalid_token");
            assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "challenge");
        }
    }
    let r = send(ts.client().patch(ts.url("/admin/clients"))).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = send(call(&ts, "PATCH", "/admin/clients", None)).await;
    assert_eq!(r.status, 405, "{}", r.text);
    // Also on the mTLS listener.
    let r = send(ts.client().get(ts.mtls_url("/admin/clients"))).await;
    assert_eq!(r.status, 401, "{}", r.text);
}

/// Admin API + issue 6 ("the CLI and the admin API share one service layer"): a client
/// created through the API is validated against its profile like `clients add` (refusals
/// name the field, DCR-FAPI-redirect, DCR-FAPI-auth) and then gets a token; users are
/// added, listed, re-passworded and removed.
#[tokio::test]
async fn admin_api_manages_clients_and_users() {
    let ts = with_admin().await;
    let key = client_key(JwsAlg::ES256);
    let m = json!({"client_id": "payments-app", "profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks_of(&key), "redirect_uris": ["https://app.example/cb"],
        "grant_types": ["authorization_code", "client_credentials"], "scope": "openid accounts"});
    let r = send(call(&ts, "POST", "/admin/clients", Some(&m))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["client_id"], "payments-app");
    assert_eq!(r.body["metadata"]["dpop_bound_access_tokens"], true);
    let dkey = client_key(JwsAlg::ES256);
    let url = ts.url("/token");
    let proof = dpop_proof(&dkey, "POST", &url, None, None);
    assert_token(&post_form(&ts.client(), &url, &pkjwt_form(&ts, "payments-app", &key), Some(&proof)).await);

    let dup = send(call(&ts, "POST", "/admin/clients", Some(&m))).await;
    assert_eq!(dup.status, 409, "{}", dup.text);
    let mut bad = m.clone();
    bad["client_id"] = json!("other");
    bad["redirect_uris"] = json!(["http://app.example/cb"]);
    let r = send(call(&ts, "POST", "/admin/clients", Some(&bad))).await;
    assert_error(&r, 400, "invalid_redirect_uri");
    assert!(r.text.contains("redirect_uris"), "{}", r.text);
    bad["redirect_uris"] = json!(["https://app.example/cb"]);
    bad["token_endpoint_auth_method"] = json!("client_secret_basic");
    let r = send(call(&ts, "POST", "/admin/clients", Some(&bad))).await;
    assert_error(&r, 400, "invalid_client_metadata");
    assert!(r.text.contains("token_endpoint_auth_method"), "{}", r.text);
    let r = send(call(&ts, "POST", "/admin/clients", None).header("content-type", "application/json").body("[")).await;
    assert_error(&r, 400, "invalid_request");

    let oauth = json!({"profile": "oauth2", "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": ["https://app.example/cb"]});
    let r = send(call(&ts, "POST", "/admin/clients", Some(&oauth))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body["client_secret"].is_string(), "{}", r.text);
    assert!(r.body["metadata"].get("client_secret_hash").is_none(), "{}", r.text);

    let list = send(call(&ts, "GET", "/admin/clients", None)).await;
    assert_eq!(list.status, 200);
    let ids: Vec<&str> =
        list.body["clients"].as_array().expect("clients").iter().filter_map(|c| c["client_id"].as_str()).collect();
    assert!(ids.contains(&"payments-app"), "{}", list.text);
    let one = send(call(&ts, "GET", "/admin/clients/payments-app", None)).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["profile"], "fapi2-security");
    assert_eq!(send(call(&ts, "GET", "/admin/clients/nope", None)).await.status, 404);

    // Users.
    let u = json!({"username": "bob", "password": "long enough pw", "claims": {"name": "Bob"}});
    let r = send(call(&ts, "POST", "/admin/users", Some(&u))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.body["sub"].is_string());
    assert!(r.body.get("password_hash").is_none(), "{}", r.text);
    assert_eq!(send(call(&ts, "POST", "/admin/users", Some(&u))).await.status, 409);
    let short = json!({"username": "carol", "password": "short"});
    assert_error(&send(call(&ts, "POST", "/admin/users", Some(&short))).await, 400, "invalid_request");
    let users = send(call(&ts, "GET", "/admin/users", None)).await;
    assert!(users.text.contains("\"bob\""), "{}", users.text);
    let r = send(call(&ts, "POST", "/admin/users/bob/password", Some(&json!({"password": "another long pw"})))).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        send(call(&ts, "POST", "/admin/users/nobody/password", Some(&json!({"password": "another long pw"}))))
            .await
            .status,
        404
    );
    assert_eq!(send(call(&ts, "DELETE", "/admin/users/bob", None)).await.status, 204);
    assert_eq!(send(call(&ts, "GET", "/admin/users/bob", None)).await.status, 404);

    // Removing a client: its token requests fail afterwards.
    assert_eq!(send(call(&ts, "DELETE", "/admin/clients/payments-app", None)).await.status, 204);
    assert_eq!(send(call(&ts, "DELETE", "/admin/clients/payments-app", None)).await.status, 404);
    let proof = dpop_proof(&dkey, "POST", &url, None, None);
    let r = post_form(&ts.client(), &url, &pkjwt_form(&ts, "payments-app", &key), Some(&proof)).await;
    assert_eq!(r.body["error"], "invalid_client", "{}", r.text);
}

fn kids(jwks: &Value) -> BTreeSet<String> {
    jwks["keys"].as_array().expect("keys").iter().filter_map(|k| k["kid"].as_str().map(str::to_string)).collect()
}

/// Admin API, F2SP-6-keys: rotating the keys publishes a new staged key, keeps the retired
/// one published, and new tokens are signed with the newly active key.
#[tokio::test]
async fn rotating_keys_changes_the_jwks() {
    let ts = with_admin().await;
    let before: Value = send(ts.client().get(ts.url("/jwks"))).await.body;
    let listed = send(call(&ts, "GET", "/admin/keys", None)).await;
    assert_eq!(listed.status, 200);
    assert!(listed.text.contains("\"active\"") && listed.text.contains("\"next\""), "{}", listed.text);
    assert!(!listed.text.contains("private"), "no private material: {}", listed.text);

    let r = send(call(&ts, "POST", "/admin/keys/rotate", None)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let active: BTreeSet<String> =
        r.body["active"].as_array().expect("active").iter().filter_map(|k| k.as_str().map(str::to_string)).collect();
    assert!(!active.is_empty());
    let after: Value = send(ts.client().get(ts.url("/jwks"))).await.body;
    assert_ne!(kids(&before), kids(&after), "the JWKS changed");
    assert!(kids(&before).is_subset(&kids(&after)), "retired keys stay published for the overlap");
    assert!(active.is_subset(&kids(&before)), "the staged keys became active");

    let (token, ..) = dpop_token(&ts).await;
    let kid = jwt_header(&token)["kid"].as_str().expect("kid").to_string();
    assert!(active.contains(&kid), "new tokens use a newly active key: {kid}");
}

/// Admin API, R7009-2-rt (joint revocation): revoking a client's grants makes its tokens
/// inactive at introspection; `subject` revocation is accepted; both or neither is a 400.
#[tokio::test]
async fn revoking_a_clients_grants_deactivates_its_tokens() {
    let ts = with_admin().await;
    let rs =
        register_tls(&ts, "rs-admin", json!({"introspection_allowed": true, "grant_types": ["client_credentials"]}))
            .await;
    let (cert, key) = ts.trusted_cert("rs-admin");
    let rs_http = ts.mtls_client(&cert, &key);
    let introspect = |token: String| {
        let form = with(vec![], &[("client_id", rs.as_str()), ("token", token.as_str())]);
        let http = rs_http.clone();
        let url = ts.mtls_url("/introspect");
        async move { post_form(&http, &url, &form, None).await }
    };
    let (token, _, client_id, _) = dpop_token(&ts).await;
    let (other, ..) = dpop_token(&ts).await;
    assert_eq!(introspect(token.clone()).await.body["active"], true);

    let r = send(call(&ts, "POST", "/admin/revoke", Some(&json!({"client_id": client_id})))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["revoked"].as_u64().is_some_and(|n| n >= 1), "{}", r.text);
    assert_eq!(introspect(token).await.body["active"], false);
    assert_eq!(introspect(other).await.body["active"], true, "other clients' tokens are untouched");

    let r = send(call(&ts, "POST", "/admin/revoke", Some(&json!({"subject": "nobody"})))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for body in [json!({}), json!({"client_id": "a", "subject": "b"}), json!({"user": "x"})] {
        let r = send(call(&ts, "POST", "/admin/revoke", Some(&body))).await;
        assert_error(&r, 400, "invalid_request");
    }
}

/// Every (method, path) the OpenAPI description documents.
fn documented(spec: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Admin API (issue 6: "its OpenAPI description is in docs/ and is checked against the
/// implementation"): documented and implemented routes are the same set; every documented
/// operation, called with the admin token and its documented example body, is served (not
/// 404/405) and answers with a status its description lists.
#[tokio::test]
async fn openapi_description_matches_the_implementation() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi-admin.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("docs/openapi-admin.json"))
        .expect("the OpenAPI description is JSON");
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "OpenAPI 3");

    let docs = documented(&spec);
    let ours: BTreeSet<(String, String)> = IMPLEMENTED.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let server: BTreeSet<(String, String)> =
        strongroom_server::http::admin::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(ours, server, "the test's list and the server's routes");
    let undocumented: Vec<_> = ours.difference(&docs).collect();
    let unimplemented: Vec<_> = docs.difference(&ours).collect();
    assert!(undocumented.is_empty(), "implemented but not documented: {undocumented:?}");
    assert!(unimplemented.is_empty(), "documented but not implemented: {unimplemented:?}");

    // Call each documented operation for real, on resources that exist; deletions last.
    let ts = with_admin().await;
    let key = client_key(JwsAlg::ES256);
    let id = register_pkjwt(&ts, &key, "fapi2-security", json!({})).await;
    strongroom_server::service::add_user(&ts.server.state.store, "doc-user", "long enough pw", json!({}), now())
        .await
        .expect("user");
    let mut ops: Vec<(String, String)> = docs.into_iter().collect();
    ops.sort_by_key(|(m, _)| m == "DELETE");
    for (method, p) in ops {
        let op = &spec["paths"][&p][method.to_lowercase()];
        let example = op["requestBody"]["content"]["application/json"]["example"].clone();
        let concrete = p.replace("{client_id}", &id).replace("{username}", "doc-user");
        let body = if example.is_null() { None } else { Some(&example) };
        let r = send(call(&ts, &method, &concrete, body)).await;
        eprintln!("{method} {concrete} -> {} {}", r.status, r.text);
        assert!(r.status != 404 && r.status != 405, "{method} {p} is not served: {}", r.text);
        assert!(r.status < 300, "{method} {p} with its documented example: {} {}", r.status, r.text);
        let documented_statuses: Vec<&String> = op["responses"].as_object().expect("responses").keys().collect();
        assert!(
            documented_statuses.iter().any(|s| **s == r.status.to_string()),
            "{method} {p} answered {} which is not documented ({documented_statuses:?})",
            r.status
        );
    }
}
