//! Crash safety (issue 13), black-box: a server process is killed with SIGKILL while
//! clients run client-credentials and complete FAPI 2.0 code flows against it, restarted on
//! the same data (SQLite, then PostgreSQL), and everything the clients received still
//! works while nothing single-use works twice. And PostgreSQL going away under load (a TCP
//! proxy in the test is cut) gives `503 temporarily_unavailable`, leaves no half-written
//! grant, and the server recovers by itself when the database returns.

use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strongroom_protocol::jose::{JwsAlg, LocalSigningKey};
use strongroom_server::config::Config;
use strongroom_server::pki::DevPki;
use strongroom_tests::kit::{Reply, assert_error, post_form, with};
use strongroom_tests::*;

/// The environment variable that turns this test binary into the server process.
const CONFIG_ENV: &str = "STRONGROOM_CRASH_TEST_CONFIG";
const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
const PASSWORD: &str = "crash-test-password";
const FLOW_SCOPE: &str = "openid accounts";

/// Not a test: the server process the crash tests start — this binary run again with a
/// configuration in `STRONGROOM_CRASH_TEST_CONFIG` — so that it can be killed with
/// SIGKILL. It runs `strongroom_server::start`, as `strongroom serve` does. Without the
/// variable it returns at once.
#[test]
#[ignore = "the crash tests' server process, started by them"]
fn server_process() {
    let Ok(json) = std::env::var(CONFIG_ENV) else { return };
    let config: Config = serde_json::from_str(&json).expect("configuration");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let server = strongroom_server::start(config).await.expect("server starts");
        server.wait().await.expect("server runs");
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

/// How the clients reach a server: its issuer and the CA its certificate is from.
#[derive(Clone)]
struct Endpoint {
    issuer: String,
    pki: Arc<DevPki>,
}

impl Served for Endpoint {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
    fn client(&self) -> reqwest::Client {
        https_client_builder(&self.pki).build().expect("client")
    }
}

/// A server running as a child process on `config`.
struct ServerProcess {
    config: Config,
    child: Option<std::process::Child>,
}

impl ServerProcess {
    fn spawn(config: &Config) -> ServerProcess {
        let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "server_process", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CONFIG_ENV, serde_json::to_string(config).expect("configuration as JSON"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("server process starts");
        ServerProcess { config: config.clone(), child: Some(child) }
    }

    /// SIGKILL, and reap the process.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `/readyz` until it answers 200; false when `within` passes first.
async fn ready_within(endpoint: &Endpoint, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let http = endpoint.client();
    while Instant::now() < deadline {
        let answer = http.get(endpoint.url("/readyz")).timeout(Duration::from_secs(1)).send().await;
        if answer.is_ok_and(|r| r.status() == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A configuration like the kit's, in `dir`, on SQLite or on `database_url`.
fn config_in(dir: &Path, database_url: Option<String>) -> Config {
    let (public, mtls) = (free_port(), free_port());
    let defaults = Config::default();
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        issuer: format!("https://localhost:{public}"),
        listen: strongroom_server::config::ListenConfig {
            public: SocketAddr::from(([127, 0, 0, 1], public)),
            mtls: SocketAddr::from(([127, 0, 0, 1], mtls)),
            mtls_base_url: format!("https://localhost:{mtls}"),
            ..defaults.listen.clone()
        },
        ..defaults
    };
    config.key_encryption_key = Some(KEK.into());
    if database_url.is_some() {
        // The kit's development PKI on PostgreSQL, as in multinode.rs: a test of the store.
        config.development_allow_production_settings = true;
        config.database_url = database_url;
    }
    config
}

/// A `private_key_jwt` client.
#[derive(Clone)]
struct TestClient {
    id: String,
    key: Arc<LocalSigningKey>,
    dkey: Arc<LocalSigningKey>,
}

impl TestClient {
    async fn register(config: &Config, store: &strongroom_store::SharedStore, mut metadata: Value) -> TestClient {
        let key = client_key(JwsAlg::ES256);
        metadata["token_endpoint_auth_method"] = "private_key_jwt".into();
        metadata["jwks"] = jwks_of(&key);
        let created = strongroom_server::service::add_client(store, &config.client_rules(), metadata, now())
            .await
            .expect("client registers");
        TestClient { id: created.client_id, key: Arc::new(key), dkey: Arc::new(client_key(JwsAlg::ES256)) }
    }

    fn auth(&self, endpoint: &Endpoint) -> Vec<(String, String)> {
        assertion_form(&self.id, &assertion(&self.key, &assertion_claims(&self.id, &endpoint.issuer)))
    }

    /// `POST /token` with `params`, DPoP-bound.
    async fn token(&self, endpoint: &Endpoint, params: &[(&str, &str)]) -> Reply {
        let url = endpoint.url("/token");
        let proof = dpop_proof(&self.dkey, "POST", &url, None, None);
        post_form(&endpoint.client(), &url, &with(self.auth(endpoint), params), Some(&proof)).await
    }

    async fn introspect(&self, endpoint: &Endpoint, token: &str) -> Reply {
        post_form(
            &endpoint.client(),
            &endpoint.url("/introspect"),
            &with(self.auth(endpoint), &[("token", token)]),
            None,
        )
        .await
    }
}

/// The clients of one test: a resource server that also uses client credentials, and the
/// FAPI 2.0 clients that run code flows.
struct Clients {
    resource: TestClient,
    flows: Vec<TestClient>,
}

async fn set_up(config: &Config, flow_clients: usize) -> Clients {
    let store = strongroom_server::open_store(config).await.expect("store");
    strongroom_server::service::add_user(&store, "carol", PASSWORD, json!({}), now()).await.expect("user");
    let resource = TestClient::register(
        config,
        &store,
        json!({"profile": "oauth2", "introspection_allowed": true,
        "grant_types": ["client_credentials"], "scope": "accounts", "redirect_uris": ["https://rs.example/cb"]}),
    )
    .await;
    let mut flows = Vec::new();
    for _ in 0..flow_clients {
        let metadata = json!({"profile": "fapi2-security", "redirect_uris": [format!("{}/demo/callback", config.issuer)],
            "grant_types": ["authorization_code", "refresh_token"], "scope": FLOW_SCOPE});
        flows.push(TestClient::register(config, &store, metadata).await);
    }
    Clients { resource, flows }
}

/// A code obtained from a complete front channel: PAR, sign-in, approval.
struct Code {
    code: String,
    verifier: String,
    request_uri: String,
}

/// The pushed authorization request of a flow client, for a PKCE `challenge`.
fn par_form(endpoint: &Endpoint, client: &TestClient, challenge: &str) -> Vec<(String, String)> {
    let redirect = endpoint.url("/demo/callback");
    with(
        client.auth(endpoint),
        &[
            ("response_type", "code"),
            ("redirect_uri", &redirect),
            ("scope", FLOW_SCOPE),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
    )
}

async fn authorize(endpoint: &Endpoint, client: &TestClient) -> Code {
    let (verifier, challenge) = pkce_pair();
    let par = par_form(endpoint, client, &challenge);
    let authorize_url = push_with_dpop(endpoint, &client.id, &client.dkey, &par).await;
    let request_uri = url::Url::parse(&authorize_url)
        .expect("authorize url")
        .query_pairs()
        .find(|(k, _)| k == "request_uri")
        .map(|(_, v)| v.into_owned())
        .expect("request_uri");
    let done = sign_in_and_decide(endpoint, &authorize_url, "carol", PASSWORD, "approve").await;
    let code = redirect_params(&done.location().expect("redirect"))["code"].clone();
    Code { code, verifier, request_uri }
}

async fn redeem(endpoint: &Endpoint, client: &TestClient, code: &Code) -> Reply {
    let redirect = endpoint.url("/demo/callback");
    client
        .token(
            endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code.code),
                ("redirect_uri", &redirect),
                ("code_verifier", &code.verifier),
            ],
        )
        .await
}

/// Everything the clients received (only from answers they read completely).
#[derive(Default)]
struct Received {
    access_tokens: Vec<String>,
    /// (flow client index, refresh token).
    refresh_tokens: Vec<(usize, String)>,
    /// (flow client index, the redeemed code).
    redeemed: Vec<(usize, Code)>,
}

/// One flow client's load: code flows with a refresh each, until the server goes away (a
/// failed request panics the task, which the test expects only after the kill).
async fn flow_load(
    endpoint: Endpoint,
    index: usize,
    client: TestClient,
    got: Arc<Mutex<Received>>,
    done: Arc<AtomicUsize>,
) {
    loop {
        let code = authorize(&endpoint, &client).await;
        let tokens = redeem(&endpoint, &client, &code).await;
        assert_eq!(tokens.status, 200, "{}", tokens.text);
        let rt = tokens.body["refresh_token"].as_str().expect("refresh token").to_string();
        {
            let mut got = got.lock().expect("lock");
            got.access_tokens.push(tokens.access_token());
            got.refresh_tokens.push((index, rt.clone()));
            got.redeemed.push((index, code));
        }
        let refreshed = client.token(&endpoint, &[("grant_type", "refresh_token"), ("refresh_token", &rt)]).await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.text);
        let mut got = got.lock().expect("lock");
        got.access_tokens.push(refreshed.access_token());
        if let Some(new) = refreshed.body["refresh_token"].as_str() {
            got.refresh_tokens.push((index, new.to_string()));
        }
        done.fetch_add(1, Ordering::SeqCst);
    }
}

/// Client-credentials load by the resource client.
async fn client_credentials_load(
    endpoint: Endpoint,
    client: TestClient,
    got: Arc<Mutex<Received>>,
    done: Arc<AtomicUsize>,
) {
    loop {
        let r = post_form(
            &endpoint.client(),
            &endpoint.url("/token"),
            &with(client.auth(&endpoint), &[("grant_type", "client_credentials")]),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        got.lock().expect("lock").access_tokens.push(r.access_token());
        done.fetch_add(1, Ordering::SeqCst);
    }
}

/// Kill under load, restart, check. `database_url` None: SQLite in the data directory.
async fn killed_under_load_and_restarted(database_url: Option<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_in(dir.path(), database_url);
    let pki = Arc::new(DevPki::load_or_create(&config.data_dir).expect("pki"));
    let clients = set_up(&config, 3).await;
    let endpoint = Endpoint { issuer: config.issuer.clone(), pki };
    let mut server = ServerProcess::spawn(&config);
    assert!(ready_within(&endpoint, Duration::from_secs(60)).await, "the server process came up");

    let got = Arc::new(Mutex::new(Received::default()));
    let (flows_done, cc_done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for (i, client) in clients.flows.iter().enumerate() {
        load.push(tokio::spawn(flow_load(endpoint.clone(), i, client.clone(), got.clone(), flows_done.clone())));
    }
    for _ in 0..3 {
        let task = client_credentials_load(endpoint.clone(), clients.resource.clone(), got.clone(), cc_done.clone());
        load.push(tokio::spawn(task));
    }
    // Kill once every flow client has finished a few flows, in the middle of the next ones.
    let deadline = Instant::now() + Duration::from_secs(120);
    while flows_done.load(Ordering::SeqCst) < 2 * clients.flows.len() || cc_done.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "the load made no progress");
        assert!(load.iter().all(|t| !t.is_finished()), "a client failed before the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(load.iter().all(|t| !t.is_finished()), "a client failed before the kill");
    server.kill();
    for task in load {
        // Every client stops at its first request to the dead server.
        let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
    }
    let got = Arc::try_unwrap(got).ok().expect("load stopped").into_inner().expect("lock");

    let restarted = ServerProcess::spawn(&server.config);
    let restart = Instant::now();
    assert!(ready_within(&endpoint, Duration::from_secs(5)).await, "ready within 5 s of the restart");
    eprintln!("ready {:?} after the restart", restart.elapsed());

    eprintln!(
        "killed under load: {} access tokens, {} refresh tokens, {} redeemed codes received",
        got.access_tokens.len(),
        got.refresh_tokens.len(),
        got.redeemed.len()
    );
    assert!(got.access_tokens.len() >= 26, "load ran: {} access tokens", got.access_tokens.len());
    for at in &got.access_tokens {
        let r = clients.resource.introspect(&endpoint, at).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["active"], true, "an access token received before the crash works: {}", r.text);
    }
    for (i, rt) in &got.refresh_tokens {
        let r = clients.flows[*i].token(&endpoint, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
        assert_eq!(r.status, 200, "a refresh token received before the crash works: {}", r.text);
    }
    // Single-use things stay used (last: a replayed code revokes its grant).
    for (i, code) in &got.redeemed {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("client_id", clients.flows[*i].id.as_str()), ("request_uri", code.request_uri.as_str())])
            .finish();
        let page = Browser::new(&endpoint).get(&endpoint.url(&format!("/authorize?{q}"))).await;
        // RFC 9126 §4: a used request_uri is refused (an error page, as it cannot be trusted to redirect).
        assert_eq!(page.status, 400, "a used request_uri does not show the login page again: {}", page.body);
        assert!(form_field(&page.body, "csrf").is_none(), "{}", page.body);
        let again = redeem(&endpoint, &clients.flows[*i], code).await;
        assert_error(&again, 400, "invalid_grant");
    }
    drop(restarted);
}

/// Issue 13: SIGKILL under load on SQLite, restart on the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_server_killed_under_load_keeps_what_it_issued() {
    killed_under_load_and_restarted(None).await;
}

/// Issue 13: SIGKILL under load on PostgreSQL, restart on the same database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_killed_under_load_keeps_what_it_issued() {
    let Some(db) = fresh_pg_database().await else { return };
    killed_under_load_and_restarted(Some(db)).await;
}

/// A TCP proxy between the server and PostgreSQL that the test can cut (closing every
/// connection and refusing new ones) and restore.
struct CuttableProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl CuttableProxy {
    async fn start(upstream: String) -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (is_cut, conns) = (cut.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().expect("lock").push(task.abort_handle());
            }
        });
        CuttableProxy { addr, cut, connections }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.connections.lock().expect("lock").drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// True when `r` is `503 temporarily_unavailable` without internals in it.
fn is_unavailable(r: &Reply) -> bool {
    let lower = r.text.to_lowercase();
    r.status == 503
        && r.body["error"] == "temporarily_unavailable"
        && !["sqlx", "postgres", "connection", "io error", "pool"].iter().any(|w| lower.contains(w))
}

/// Issue 13: PostgreSQL going away under load (the proxy to it is cut) answers every token,
/// PAR and introspection request `503 temporarily_unavailable` — never a 500, never
/// internals — the login page and `/readyz` 503; a code redeemed and a refresh token used during the outage are not half-used (both
/// work once the database is back); and the server recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_gives_503_and_the_server_recovers() {
    let Some(db) = fresh_pg_database().await else { return };
    let mut db_url = url::Url::parse(&db).expect("database url");
    let upstream = format!("{}:{}", db_url.host_str().expect("host"), db_url.port().unwrap_or(5432));
    let proxy = CuttableProxy::start(upstream).await;
    db_url.set_host(Some("127.0.0.1")).expect("host");
    db_url.set_port(Some(proxy.addr.port())).expect("port");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_in(dir.path(), Some(db_url.to_string()));
    let clients = set_up(&config, 1).await;
    let ts = TestServer::start_with(move |c| *c = config).await;
    let endpoint =
        Endpoint { issuer: ts.issuer.clone(), pki: Arc::new(DevPki::load_or_create(dir.path()).expect("pki")) };
    let flow = &clients.flows[0];
    let first = redeem(&endpoint, flow, &authorize(&endpoint, flow).await).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let rt = first.body["refresh_token"].as_str().expect("refresh token").to_string();
    let pending = authorize(&endpoint, flow).await;
    let (_, challenge) = pkce_pair();
    let pushed_before = par_form(&endpoint, flow, &challenge);
    let login_page = push_with_dpop(&endpoint, &flow.id, &flow.dkey, &pushed_before).await;

    proxy.cut();
    let cc = || async {
        let form = with(clients.resource.auth(&endpoint), &[("grant_type", "client_credentials")]);
        post_form(&endpoint.client(), &endpoint.url("/token"), &form, None).await
    };
    let refresh = || async { flow.token(&endpoint, &[("grant_type", "refresh_token"), ("refresh_token", &rt)]).await };
    let par = || async {
        let (_, challenge) = pkce_pair();
        let form = par_form(&endpoint, flow, &challenge);
        let proof = dpop_proof(&flow.dkey, "POST", &endpoint.url("/par"), None, None);
        post_form(&endpoint.client(), &endpoint.url("/par"), &form, Some(&proof)).await
    };
    let introspected = || clients.resource.introspect(&endpoint, &rt);
    let (a, b, c, code, refreshed, pushed, inspected) =
        tokio::join!(cc(), cc(), cc(), redeem(&endpoint, flow, &pending), refresh(), par(), introspected());
    for r in [&a, &b, &c, &code, &refreshed, &pushed, &inspected] {
        assert!(is_unavailable(r), "{} {}", r.status, r.text);
    }
    let ready = endpoint.client().get(endpoint.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 503);
    let page = Browser::new(&endpoint).get(&login_page).await;
    assert_eq!(page.status, 503, "the login page during the outage: {}", page.body);
    let lower = page.body.to_lowercase();
    assert!(!lower.contains("sqlx") && !lower.contains("postgres"), "no internals: {}", page.body);

    proxy.restore();
    assert!(ready_within(&endpoint, Duration::from_secs(30)).await, "the server recovers by itself");
    let code = redeem(&endpoint, flow, &pending).await;
    assert_eq!(code.status, 200, "the code redeemed during the outage is still unused: {}", code.text);
    let refreshed = refresh().await;
    assert_eq!(refreshed.status, 200, "the refresh token used during the outage still works: {}", refreshed.text);
    let after = cc().await;
    assert_eq!(after.status, 200, "{}", after.text);
}
