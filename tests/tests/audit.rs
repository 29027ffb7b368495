//! The audit log (issue 13), black-box over real TLS: a real authorization code flow,
//! refresh, refresh-token reuse, code replay, client credentials and revocation leave the
//! expected sequence of events, queryable by client and by user through `GET /admin/audit`,
//! and no token, code, secret, password or assertion appears in any of them. The file sink
//! writes the same events as JSON lines.

use serde_json::{Value, json};
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey};
use strongroom_server::config::AuditSink;
use strongroom_tests::kit::{Reply, assert_error, post_form, send, with};
use strongroom_tests::*;

const PASSWORD: &str = "correct horse battery";
const WRONG_PASSWORD: &str = "incorrect-horse-42";

fn admin_token() -> String {
    "b".repeat(48)
}

/// `GET /admin/audit` with a query, as the admin.
async fn audit(ts: &TestServer, query: &str) -> Reply {
    send(ts.client().get(ts.url(&format!("/admin/audit?{query}"))).bearer_auth(admin_token())).await
}

/// The event names of an `/admin/audit` answer, oldest first.
fn names(r: &Reply) -> Vec<String> {
    let events = r.body["events"].as_array().unwrap_or_else(|| panic!("events in {}", r.text));
    events.iter().rev().map(|e| e["event"].as_str().expect("event name").to_string()).collect()
}

/// An `oauth2` client (private_key_jwt) registered through the admin API.
async fn register_by_admin(ts: &TestServer, key: &LocalSigningKey, redirect: &str) -> String {
    let metadata = json!({"profile": "oauth2", "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks_of(key), "redirect_uris": [redirect], "scope": "openid accounts",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"]});
    let r = send(ts.client().post(ts.url("/admin/clients")).bearer_auth(admin_token()).json(&metadata)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["client_id"].as_str().expect("client_id").to_string()
}

/// Issue 13: one event per security-relevant act of a whole client life, in order, for the
/// client and for the user; the request's IP and `x-fapi-interaction-id` are in them; none
/// holds a token, code, password, assertion or cookie value.
#[tokio::test]
async fn audit_log_follows_a_client_and_a_user_and_holds_no_secrets() {
    let ts = TestServer::start_with(|c| c.admin.token = Some(admin_token())).await;
    let store = &ts.server.state.store;
    let erin = strongroom_server::service::add_user(store, "erin", PASSWORD, json!({"name": "Erin"}), now())
        .await
        .expect("user");
    let key = client_key(JwsAlg::ES256);
    let redirect = ts.url("/demo/callback");
    let id = register_by_admin(&ts, &key, &redirect).await;
    let mut secrets: Vec<String> = vec![PASSWORD.into(), WRONG_PASSWORD.into(), admin_token()];
    let assertions = std::cell::RefCell::new(Vec::new());
    let auth = || {
        let a = assertion(&key, &assertion_claims(&id, &ts.issuer));
        assertions.borrow_mut().push(a.clone());
        assertion_form(&id, &a)
    };

    // A wrong password, then the right one, then consent.
    let (verifier, challenge) = pkce_pair();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("scope", "openid accounts"),
            ("state", "s-1"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let mut b = Browser::new(&ts);
    let login = b.get(&ts.url(&format!("/authorize?{q}"))).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let csrf = form_field(&login.body, "csrf").expect("csrf");
    let request_uri = form_field(&login.body, "request_uri").expect("request_uri");
    let sign_in = |password: &'static str| {
        [("username", "erin"), ("password", password), ("csrf", csrf.as_str()), ("request_uri", request_uri.as_str())]
    };
    let failed = b.post_form(&ts.url("/login"), &sign_in(WRONG_PASSWORD)).await;
    assert_eq!(failed.status, 200, "a failed sign-in shows the login page again");
    let signed_in = b.post_form(&ts.url("/login"), &sign_in(PASSWORD)).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let consent = b.get(&signed_in.location().expect("location")).await;
    let csrf = form_field(&consent.body, "csrf").expect("csrf");
    let request_uri = form_field(&consent.body, "request_uri").expect("request_uri");
    let done = b
        .post_form(&ts.url("/consent"), &[("csrf", &csrf), ("request_uri", &request_uri), ("decision", "approve")])
        .await;
    let code = redirect_params(&done.location().expect("redirect"))["code"].clone();
    secrets.extend([code.clone(), verifier.clone(), request_uri.clone(), csrf.clone()]);
    secrets.extend(b.cookies.values().cloned());

    // Code exchange (sent with our own interaction id), refresh, reuse of the rotated
    // refresh token, replay of the code.
    let code_form = |auth: Vec<(String, String)>| {
        with(
            auth,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect),
                ("code_verifier", &verifier),
            ],
        )
    };
    let interaction = "c0ffee00-1234-4abc-8def-000000000013";
    let tokens =
        send(ts.client().post(ts.url("/token")).header("x-fapi-interaction-id", interaction).form(&code_form(auth())))
            .await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let rt1 = tokens.body["refresh_token"].as_str().expect("refresh token").to_string();
    secrets.extend([tokens.access_token(), rt1.clone(), tokens.body["id_token"].as_str().expect("id").into()]);
    let refresh =
        |auth: Vec<(String, String)>, rt: &str| with(auth, &[("grant_type", "refresh_token"), ("refresh_token", rt)]);
    let refreshed = post_form(&ts.client(), &ts.url("/token"), &refresh(auth(), &rt1), None).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    secrets.extend([refreshed.access_token(), refreshed.body["refresh_token"].as_str().expect("rt2").into()]);
    let reused = post_form(&ts.client(), &ts.url("/token"), &refresh(auth(), &rt1), None).await;
    assert_error(&reused, 400, "invalid_grant");
    let replayed = post_form(&ts.client(), &ts.url("/token"), &code_form(auth()), None).await;
    assert_error(&replayed, 400, "invalid_grant");

    // Client credentials, and the client revokes that token.
    let cc =
        post_form(&ts.client(), &ts.url("/token"), &with(auth(), &[("grant_type", "client_credentials")]), None).await;
    assert_eq!(cc.status, 200, "{}", cc.text);
    let cc_token = cc.access_token();
    secrets.push(cc_token.clone());
    let revoked = post_form(&ts.client(), &ts.url("/revoke"), &with(auth(), &[("token", &cc_token)]), None).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);

    let by_client = audit(&ts, &format!("client_id={id}")).await;
    assert_eq!(by_client.status, 200, "{}", by_client.text);
    assert_eq!(
        names(&by_client),
        [
            "client_registered",
            "login_failed",
            "login_succeeded",
            "consent_given",
            "code_issued",
            "code_redeemed",
            "token_issued",
            "token_refreshed",
            "refresh_reuse_detected",
            "code_replayed",
            "token_issued",
            "token_revoked",
        ],
        "{}",
        by_client.text
    );
    let events: Vec<&Value> = by_client.body["events"].as_array().expect("events").iter().rev().collect();
    for e in &events[1..] {
        assert_eq!(e["ip"], "127.0.0.1", "{e}");
        assert!(e["x-fapi-interaction-id"].as_str().is_some_and(|v| !v.is_empty()), "{e}");
        assert!(e["at"].as_i64().is_some_and(|at| (now() - 300..=now() + 5).contains(&at)), "{e}");
        assert_eq!(e["profile"], "oauth2", "{e}");
    }
    assert_eq!(events[1]["subject"], erin.subject.as_str(), "a failed sign-in of a known user names the user");
    assert_eq!(events[5]["x-fapi-interaction-id"], interaction, "the client's interaction id is kept");
    assert_eq!(events[6]["grant_type"], "authorization_code");
    assert_eq!(events[6]["scope"], "openid accounts");
    let grant = events[4]["grant_id"].as_str().expect("code_issued names its grant");
    for i in [5, 6, 7, 8, 9] {
        assert_eq!(events[i]["grant_id"], grant, "{}", events[i]);
    }
    assert_eq!(events[9]["detail"]["presented_by"], "same_client");
    assert_eq!(events[10]["grant_type"], "client_credentials");
    assert!(events[10].get("subject").is_none(), "client credentials have no user: {}", events[10]);

    let by_user = audit(&ts, &format!("subject={}", erin.subject)).await;
    assert_eq!(by_user.status, 200, "{}", by_user.text);
    assert_eq!(
        names(&by_user),
        [
            "login_failed",
            "login_succeeded",
            "consent_given",
            "code_issued",
            "code_redeemed",
            "token_issued",
            "token_refreshed",
            "refresh_reuse_detected",
            "code_replayed",
        ],
    );
    let newest = audit(&ts, &format!("client_id={id}&limit=2")).await;
    assert_eq!(names(&newest), ["token_issued", "token_revoked"]);

    secrets.extend(assertions.take());
    let everything = format!("{}{}", by_client.text, by_user.text);
    for secret in &secrets {
        assert!(!everything.contains(secret.as_str()), "the audit log holds a secret: {secret}");
    }

    // Bad queries are refused; without the admin token nothing is shown.
    assert_eq!(audit(&ts, &format!("client_id={id}&subject=x")).await.status, 400);
    assert_eq!(audit(&ts, &format!("client_id={id}&limit=0")).await.status, 400);
    assert_eq!(audit(&ts, "password=x").await.status, 400);
    let anonymous = send(ts.client().get(ts.url(&format!("/admin/audit?client_id={id}")))).await;
    assert_eq!(anonymous.status, 401);
}

/// Issue 13: with `sinks = ["store", "file"]` every event is also one JSON line appended to
/// `audit.file`, the same event the store holds; admin deletions and key rotations are
/// audited too.
#[tokio::test]
async fn file_sink_writes_one_json_line_per_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let file = path.clone();
    let ts = TestServer::start_with(move |c| {
        c.admin.token = Some(admin_token());
        c.audit.sinks = vec![AuditSink::Store, AuditSink::File];
        c.audit.file = Some(file);
    })
    .await;
    let key = client_key(JwsAlg::ES256);
    let id = register_by_admin(&ts, &key, &ts.url("/demo/callback")).await;
    let form = with(
        assertion_form(&id, &assertion(&key, &assertion_claims(&id, &ts.issuer))),
        &[("grant_type", "client_credentials")],
    );
    let cc = post_form(&ts.client(), &ts.url("/token"), &form, None).await;
    assert_eq!(cc.status, 200, "{}", cc.text);
    let rotated = send(ts.client().post(ts.url("/admin/keys/rotate")).bearer_auth(admin_token())).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let deleted = send(ts.client().delete(ts.url(&format!("/admin/clients/{id}"))).bearer_auth(admin_token())).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    let text = std::fs::read_to_string(&path).expect("audit file");
    assert!(text.ends_with('\n'), "every line is complete");
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}"))).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().expect("event")).collect();
    assert_eq!(kinds, ["client_registered", "token_issued", "keys_rotated", "client_deleted"], "{text}");
    assert_eq!(lines[1]["client_id"], id.as_str());
    assert_eq!(lines[1]["grant_type"], "client_credentials");
    assert!(lines[2]["detail"]["active"].as_array().is_some_and(|k| !k.is_empty()), "{}", lines[2]);
    assert!(!text.contains(&cc.access_token()), "no access token in the file");

    let stored = audit(&ts, &format!("client_id={id}")).await;
    let stored: Vec<Value> = stored.body["events"].as_array().expect("events").iter().rev().cloned().collect();
    let for_client: Vec<Value> = lines.iter().filter(|l| l["client_id"] == id.as_str()).cloned().collect();
    assert_eq!(stored, for_client, "the store and the file hold the same events");
}

/// The value of one Prometheus sample (`name{labels}` exactly as the exporter writes it),
/// 0 when the series does not exist yet.
async fn sample(ts: &TestServer, series: &str) -> f64 {
    let addr = ts.server.metrics_addr.expect("metrics listener configured");
    let text = reqwest::get(format!("http://{addr}/metrics")).await.expect("scrape").text().await.expect("body");
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("sample value"))
}

/// Issue 13, the audit failure policy (fail-open, docs/operations.md): with the store's
/// audit table gone from under the running server, a token request still gets its token,
/// the lost event is counted in `strongroom_audit_write_failures_total{sink="store"}`, the
/// other sink (the file) still gets the event, and reading the audit log answers
/// `503 temporarily_unavailable`, not a 500.
#[tokio::test]
async fn a_failing_audit_store_leaves_the_token_request_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let file = path.clone();
    let ts = TestServer::start_with(move |c| {
        c.admin.token = Some(admin_token());
        c.metrics.listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.audit.sinks = vec![AuditSink::Store, AuditSink::File];
        c.audit.file = Some(file);
    })
    .await;
    let key = client_key(JwsAlg::ES256);
    let id = register_by_admin(&ts, &key, &ts.url("/demo/callback")).await;
    let lost = "strongroom_audit_write_failures_total{sink=\"store\"}";
    assert_eq!(sample(&ts, lost).await, 0.0, "nothing lost while the table is there");

    use sqlx::Connection;
    let db = format!("sqlite://{}", ts.dir.path().join("strongroom.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&db).await.expect("open the server's database");
    sqlx::query("ALTER TABLE audit_events RENAME TO audit_events_gone").execute(&mut conn).await.expect("rename");

    let form = with(
        assertion_form(&id, &assertion(&key, &assertion_claims(&id, &ts.issuer))),
        &[("grant_type", "client_credentials")],
    );
    let cc = post_form(&ts.client(), &ts.url("/token"), &form, None).await;
    assert_eq!(cc.status, 200, "the token request does not depend on the audit store: {}", cc.text);
    assert!(!cc.access_token().is_empty());
    assert_eq!(sample(&ts, lost).await, 1.0, "the lost event is counted");
    let text = std::fs::read_to_string(&path).expect("audit file");
    let kinds: Vec<Value> =
        text.lines().map(|l| serde_json::from_str::<Value>(l).expect("json")["event"].clone()).collect();
    assert_eq!(kinds, [json!("client_registered"), json!("token_issued")], "the file sink still writes: {text}");

    let read = audit(&ts, &format!("client_id={id}")).await;
    assert_error(&read, 503, "temporarily_unavailable");
    assert!(!read.text.contains("audit_events"), "no internals in the error: {}", read.text);
}

/// A client-credentials token request sent with `X-Forwarded-For: forwarded`, and the `ip`
/// of the `token_issued` event it caused.
async fn audited_ip_of_token_request(ts: &TestServer, forwarded: &str) -> Value {
    let key = client_key(JwsAlg::ES256);
    let id = register_by_admin(ts, &key, &ts.url("/demo/callback")).await;
    let form = with(
        assertion_form(&id, &assertion(&key, &assertion_claims(&id, &ts.issuer))),
        &[("grant_type", "client_credentials")],
    );
    let cc = send(ts.client().post(ts.url("/token")).header("x-forwarded-for", forwarded).form(&form)).await;
    assert_eq!(cc.status, 200, "{}", cc.text);
    let events = audit(ts, &format!("client_id={id}&limit=1")).await;
    assert_eq!(names(&events), ["token_issued"], "{}", events.text);
    events.body["events"][0]["ip"].clone()
}

/// Issue 13: behind a trusted proxy (`proxy.trusted`) the audit `ip` is the client's
/// address the proxy appended to `X-Forwarded-For` — the rightmost entry, not one the client
/// wrote itself in front of it; from a peer that is not a trusted proxy the header is
/// ignored and the `ip` is the TCP peer.
#[tokio::test]
async fn audit_ip_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() {
    let trusted = TestServer::start_with(|c| {
        c.admin.token = Some(admin_token());
        c.proxy.trusted = vec!["127.0.0.1".into()];
    })
    .await;
    assert_eq!(audited_ip_of_token_request(&trusted, "198.51.100.1, 203.0.113.7").await, "203.0.113.7");

    let untrusted = TestServer::start_with(|c| {
        c.admin.token = Some(admin_token());
        c.proxy.trusted = vec!["10.0.0.0/8".into()];
    })
    .await;
    assert_eq!(audited_ip_of_token_request(&untrusted, "203.0.113.7").await, "127.0.0.1");
}
