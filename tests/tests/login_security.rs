//! Security of the login page (issue 10), black-box over real TLS: the attempt limit cannot
//! be raced by parallel guesses, because each attempt is counted in the store before any
//! password is checked.

use serde_json::json;
use strongroom_protocol::jose::JwsAlg;
use strongroom_store::AuditFilter;
use strongroom_tests::kit::{pkjwt_form, register_pkjwt, with};
use strongroom_tests::*;

const PASSWORD: &str = "correct horse battery";
/// The per-user attempt limit of `strongroom_server::http::login`.
const MAX_ATTEMPTS: usize = 5;

/// A fresh authorization URL of a new FAPI 2.0 client (PAR with DPoP).
async fn authorize_url(ts: &TestServer) -> String {
    let key = client_key(JwsAlg::ES256);
    let redirect = ts.url("/demo/callback");
    let id = register_pkjwt(ts, &key, "fapi2-security", json!({"redirect_uris": [redirect]})).await;
    let (_, challenge) = pkce_pair();
    let par = with(
        pkjwt_form(ts, &id, &key),
        &[
            ("response_type", "code"),
            ("redirect_uri", &redirect),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    push_with_dpop(ts, &id, &client_key(JwsAlg::ES256), &par).await
}

/// Issue 10: 40 parallel wrong guesses for one user run at most five password checks (the
/// rest are refused with 429 before Argon2), and the right password afterwards is refused
/// too. Before the fix every guess was checked, as the count was read before the check and
/// written after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_cannot_race_the_attempt_limit() {
    let ts = TestServer::start().await;
    let store = &ts.server.state.store;
    let bob = strongroom_server::service::add_user(store, "bob", PASSWORD, json!({}), now()).await.expect("user");
    let mut b = Browser::new(&ts);
    let page = b.get(&authorize_url(&ts).await).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = form_field(&page.body, "csrf").expect("csrf");
    let request_uri = form_field(&page.body, "request_uri").expect("request_uri");
    let cookies = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (http, url, cookies) = (ts.client(), ts.url("/login"), cookies.clone());
        let form = [
            ("username".to_string(), "bob".to_string()),
            ("password".to_string(), format!("wrong-guess-{i}")),
            ("csrf".to_string(), csrf.clone()),
            ("request_uri".to_string(), request_uri.clone()),
        ];
        tasks.push(tokio::spawn(async move {
            http.post(url).header("cookie", cookies).form(&form).send().await.expect("login").status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    let checked = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 40, "only wrong-password pages and 429s: {statuses:?}");
    assert!(checked <= MAX_ATTEMPTS, "{checked} guesses were checked: {statuses:?}");

    // The audit log shows the checks that ran: no more than the limit.
    let events = store.audit_events(AuditFilter::Subject(&bob.subject), 100).await.expect("audit");
    let failed = events.iter().filter(|e| e.event == "login_failed").count();
    assert!(failed <= MAX_ATTEMPTS, "{failed} password checks ran");

    // The right password now is refused without signing in.
    let r = b
        .post_form(
            &ts.url("/login"),
            &[("username", "bob"), ("password", PASSWORD), ("csrf", &csrf), ("request_uri", &request_uri)],
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.headers.get("location").is_none());
}
