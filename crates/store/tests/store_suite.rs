//! The shared store test suite: every check in `checks` runs against both backends.
//!
//! * `sqlite::<check>` — always, on a fresh database file in a temporary directory.
//! * `postgres::<check>` — when `STRONGROOM_TEST_PG_URL` is set (e.g.
//!   `postgres://strongroom:strongroom@127.0.0.1:5432/strongroom_test`), each test in a
//!   fresh schema of its own that is dropped afterwards. Without the variable the
//!   PostgreSQL tests print a skip note, except when `CI=true`, where they fail so CI can
//!   never skip them silently.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;
use strongroom_store::SharedStore;
use strongroom_store::postgres::PgStore;
use strongroom_store::sqlite::SqliteStore;

/// A check from the shared list, boxed so the harness can spawn it.
type BoxedCheck = Pin<Box<dyn Future<Output = ()> + Send>>;

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    // An absolute path, so the URL has the `sqlite:///abs/path` form.
    format!("sqlite://{}", dir.path().join("strongroom.db").display())
}

/// Runs one check on a fresh SQLite database file.
async fn run_sqlite(check: fn(SharedStore) -> BoxedCheck) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = strongroom_store::open(&sqlite_url(&dir)).await.expect("open sqlite store");
    check(store).await;
    drop(dir);
}

/// The PostgreSQL URL, or `None` (with a note) when the tests are to be skipped.
/// Panics when `CI=true` and no URL is given.
fn pg_url() -> Option<String> {
    match std::env::var("STRONGROOM_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but STRONGROOM_TEST_PG_URL is not set: \
                     the PostgreSQL store tests must run in CI"
                );
            }
            eprintln!("note: skipping PostgreSQL store test (STRONGROOM_TEST_PG_URL is not set)");
            None
        }
    }
}

/// A schema name no other test (in this or another process) uses.
fn fresh_schema_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("t_{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos)
}

async fn admin_exec(url: &str, sql: String) {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect to PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("admin statement");
    conn.close().await.expect("close admin connection");
}

/// Creates a fresh schema, runs `body` with it, drops the schema (also when `body`
/// panicked) and re-raises any panic.
async fn with_pg_schema<F, Fut>(body: F)
where
    F: FnOnce(String, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = pg_url() else { return };
    let schema = fresh_schema_name();
    admin_exec(&url, format!("CREATE SCHEMA {schema}")).await;
    let outcome = tokio::spawn(body(url.clone(), schema.clone())).await;
    admin_exec(&url, format!("DROP SCHEMA {schema} CASCADE")).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs one check on a fresh PostgreSQL schema.
async fn run_postgres(check: fn(SharedStore) -> BoxedCheck) {
    with_pg_schema(move |url, schema| async move {
        let store = PgStore::open_in_schema(&url, &schema).await.expect("open postgres store");
        let handle = store.clone();
        check(std::sync::Arc::new(store)).await;
        handle.close().await;
    })
    .await;
}

/// Generates `sqlite::<check>` and `postgres::<check>` for every check.
macro_rules! suite {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    crate::run_sqlite(|s| Box::pin(crate::checks::$check(s))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    crate::run_postgres(|s| Box::pin(crate::checks::$check(s))).await;
                }
            )*
        }
    };
}

suite!(
    ping,
    client_crud,
    exclusive_software_id,
    user_crud,
    user_conflicts,
    record_jti_replay,
    concurrent_record_jti,
    pushed_request_once,
    consume_code_once,
    one_time_expired,
    one_time_unknown,
    one_time_duplicate_put,
    concurrent_consume_code,
    concurrent_consume_pushed_request,
    tokens_put_get,
    token_revocation,
    concurrent_rotate_refresh_token,
    sessions,
    consent,
    keys,
    purge_expired,
    json_roundtrip,
    audit_events,
    login_attempts,
    concurrent_login_attempts,
);

/// The checks, each written once against the `Store` trait.
mod checks {
    use serde_json::json;
    use std::sync::Arc;
    use strongroom_store::{
        AuditFilter, AuditRecord, ClientRecord, ConsentRecord, Consumed, KeyRecord, KeyState, OneTimeRecord,
        SessionRecord, SharedStore, StoreError, Timestamp, TokenKind, TokenRecord, UserRecord,
    };
    use tokio::sync::Barrier;

    const NOW: Timestamp = 1_700_000_000;
    /// Concurrent callers in the race checks.
    const RACERS: usize = 16;

    fn client(id: &str, name: &str) -> ClientRecord {
        ClientRecord {
            client_id: id.into(),
            metadata: json!({ "client_name": name, "profile": "fapi2-security",
                              "redirect_uris": ["https://rp.example/cb"] }),
            registration_token_hash: None,
            created_at: NOW,
        }
    }

    fn user(username: &str, subject: &str) -> UserRecord {
        UserRecord {
            subject: subject.into(),
            username: username.into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            claims: json!({ "name": format!("User {username}"), "email": format!("{username}@example.com") }),
            created_at: NOW,
        }
    }

    fn one_time(key: &str, grant: &str, expires_at: Timestamp) -> OneTimeRecord {
        OneTimeRecord {
            key: key.into(),
            client_id: "client-1".into(),
            grant_id: grant.into(),
            expires_at,
            data: json!({ "scope": "openid", "code_challenge": "abc", "nonce": key }),
        }
    }

    fn token(id: &str, kind: TokenKind, grant: &str, client: &str, subject: &str) -> TokenRecord {
        TokenRecord {
            id: id.into(),
            kind,
            grant_id: grant.into(),
            client_id: client.into(),
            subject: subject.into(),
            issued_at: NOW,
            expires_at: NOW + 300,
            revoked: false,
            data: json!({ "scope": "openid accounts", "cnf": { "x5t#S256": "thumb" } }),
        }
    }

    fn key(kid: &str, state: KeyState, created_at: Timestamp) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            alg: "ES256".into(),
            state,
            public_jwk: json!({ "kty": "EC", "crv": "P-256", "kid": kid, "x": "xx", "y": "yy" }),
            private_encrypted: vec![0x00, 0xff, 0x10, 0x80, 0x00, kid.len() as u8],
            created_at,
            state_changed_at: created_at,
        }
    }

    pub async fn ping(store: SharedStore) {
        store.ping().await.expect("ping");
        // The schema is there and empty.
        assert!(store.list_clients().await.expect("list").is_empty());
    }

    pub async fn client_crud(store: SharedStore) {
        store.put_client(&client("zeta", "Zeta")).await.expect("put");
        store.put_client(&client("alpha", "Alpha")).await.expect("put");
        assert_eq!(store.get_client("alpha").await.expect("get"), Some(client("alpha", "Alpha")));
        assert_eq!(store.get_client("nobody").await.expect("get"), None);

        let ids: Vec<String> = store.list_clients().await.expect("list").into_iter().map(|c| c.client_id).collect();
        assert_eq!(ids, ["alpha", "zeta"]);

        // Put replaces.
        let mut changed = client("alpha", "Alpha 2");
        changed.registration_token_hash = Some("rat-hash".into());
        store.put_client(&changed).await.expect("replace");
        assert_eq!(store.get_client("alpha").await.expect("get"), Some(changed));
        assert_eq!(store.list_clients().await.expect("list").len(), 2);

        assert!(store.delete_client("alpha").await.expect("delete"));
        assert!(!store.delete_client("alpha").await.expect("delete again"));
        assert_eq!(store.get_client("alpha").await.expect("get"), None);
        assert_eq!(store.list_clients().await.expect("list").len(), 1);
    }

    pub async fn user_crud(store: SharedStore) {
        let bob = user("bob", "sub-bob");
        let alice = user("alice", "sub-alice");
        store.insert_user(&bob).await.expect("insert bob");
        store.insert_user(&alice).await.expect("insert alice");

        assert_eq!(store.get_user_by_username("bob").await.expect("get"), Some(bob.clone()));
        assert_eq!(store.get_user_by_subject("sub-alice").await.expect("get"), Some(alice.clone()));
        assert_eq!(store.get_user_by_username("carol").await.expect("get"), None);
        assert_eq!(store.get_user_by_subject("bob").await.expect("get"), None);

        let names: Vec<String> = store.list_users().await.expect("list").into_iter().map(|u| u.username).collect();
        assert_eq!(names, ["alice", "bob"]);

        let mut bob2 = bob.clone();
        bob2.password_hash = "$argon2id$new".into();
        bob2.claims = json!({ "name": "Robert" });
        assert!(store.update_user(&bob2).await.expect("update"));
        let stored = store.get_user_by_username("bob").await.expect("get").expect("bob");
        assert_eq!(stored.password_hash, "$argon2id$new");
        assert_eq!(stored.claims, json!({ "name": "Robert" }));
        assert_eq!(stored.subject, "sub-bob");
        assert!(!store.update_user(&user("carol", "sub-carol")).await.expect("update unknown"));

        assert!(store.delete_user("bob").await.expect("delete"));
        assert!(!store.delete_user("bob").await.expect("delete again"));
        assert_eq!(store.get_user_by_subject("sub-bob").await.expect("get"), None);
        assert_eq!(store.list_users().await.expect("list"), vec![alice]);
    }

    pub async fn user_conflicts(store: SharedStore) {
        store.insert_user(&user("bob", "sub-bob")).await.expect("insert");
        let same_name = store.insert_user(&user("bob", "sub-other")).await;
        assert!(matches!(same_name, Err(StoreError::Conflict(_))), "duplicate username: {same_name:?}");
        let same_subject = store.insert_user(&user("robert", "sub-bob")).await;
        assert!(matches!(same_subject, Err(StoreError::Conflict(_))), "duplicate subject: {same_subject:?}");
        // The original is untouched and nothing else was added.
        assert_eq!(store.list_users().await.expect("list"), vec![user("bob", "sub-bob")]);
    }

    /// Issue 12: an exclusive software_id is held by one client; of concurrent inserts exactly
    /// one succeeds; deleting the client frees it; non-exclusive inserts never clash.
    pub async fn exclusive_software_id(store: SharedStore) {
        store.insert_client(&client("a", "A"), Some("sw-1")).await.expect("first");
        let again = store.insert_client(&client("b", "B"), Some("sw-1")).await;
        assert!(matches!(&again, Err(StoreError::Conflict(m)) if m.starts_with("software_id")), "{again:?}");
        let same_id = store.insert_client(&client("a", "A2"), Some("sw-2")).await;
        assert!(matches!(&same_id, Err(StoreError::Conflict(m)) if m.starts_with("client")), "{same_id:?}");
        store.insert_client(&client("c", "C"), None).await.expect("not exclusive");
        store.insert_client(&client("d", "D"), None).await.expect("not exclusive");
        // An update (upsert) keeps the claim.
        store.put_client(&client("a", "renamed")).await.expect("update");
        assert!(store.insert_client(&client("e", "E"), Some("sw-1")).await.is_err(), "still held");
        assert!(store.delete_client("a").await.expect("delete"));
        store.insert_client(&client("e", "E"), Some("sw-1")).await.expect("freed by delete");

        let barrier = Arc::new(Barrier::new(RACERS));
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            let (store, barrier) = (store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.insert_client(&client(&format!("race-{i}"), "R"), Some("sw-race")).await
            }));
        }
        let mut ok = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => ok += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("unexpected: {e:?}"),
            }
        }
        assert_eq!(ok, 1, "exactly one concurrent registration of one software");
    }

    pub async fn record_jti_replay(store: SharedStore) {
        assert!(store.record_jti("dpop", "j1", NOW + 60).await.expect("first"));
        assert!(!store.record_jti("dpop", "j1", NOW + 60).await.expect("replay"));
        assert!(!store.record_jti("dpop", "j1", NOW + 999).await.expect("replay, other exp"));
        // Namespaces are separate.
        assert!(store.record_jti("assertion:client-1", "j1", NOW + 60).await.expect("other ns"));
        assert!(store.record_jti("dpop", "j2", NOW + 60).await.expect("other jti"));
        // An existing row stays a replay until it is purged.
        assert!(!store.record_jti("dpop", "j1", NOW - 1_000).await.expect("still replay"));
        assert_eq!(store.purge_expired(NOW + 61).await.expect("purge"), 3);
        assert!(store.record_jti("dpop", "j1", NOW + 120).await.expect("after purge"));
    }

    pub async fn concurrent_record_jti(store: SharedStore) {
        for round in 0..5 {
            let jti = format!("race-{round}");
            let barrier = Arc::new(Barrier::new(RACERS));
            let mut tasks = Vec::new();
            for _ in 0..RACERS {
                let (store, barrier, jti) = (store.clone(), barrier.clone(), jti.clone());
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    store.record_jti("dpop", &jti, NOW + 60).await.expect("record_jti")
                }));
            }
            let mut new = 0;
            for task in tasks {
                if task.await.expect("task") {
                    new += 1;
                }
            }
            assert_eq!(new, 1, "round {round}: exactly one caller may see the jti as new");
        }
    }

    pub async fn pushed_request_once(store: SharedStore) {
        let uri = "urn:ietf:params:oauth:request_uri:abc";
        let record = one_time(uri, "", NOW + 60);
        store.put_pushed_request(&record).await.expect("put");
        // Reading does not consume (the login page may load twice).
        assert_eq!(store.get_pushed_request(uri).await.expect("get"), Some(record.clone()));
        assert_eq!(store.get_pushed_request(uri).await.expect("get"), Some(record.clone()));
        assert_eq!(store.get_pushed_request("urn:other").await.expect("get"), None);

        assert_eq!(store.consume_pushed_request(uri, NOW).await.expect("consume"), Consumed::Fresh(record.clone()));
        assert_eq!(
            store.consume_pushed_request(uri, NOW + 1).await.expect("consume again"),
            Consumed::AlreadyUsed(record)
        );
        // Once consumed, it can no longer be read (R9126-4-once).
        assert_eq!(store.get_pushed_request(uri).await.expect("get after consume"), None);
    }

    pub async fn consume_code_once(store: SharedStore) {
        let record = one_time("code-hash-1", "grant-1", NOW + 60);
        store.put_code(&record).await.expect("put");
        assert_eq!(store.consume_code("code-hash-1", NOW).await.expect("consume"), Consumed::Fresh(record.clone()));
        // The reuse returns the record, so its grant can be revoked.
        match store.consume_code("code-hash-1", NOW + 1).await.expect("reuse") {
            Consumed::AlreadyUsed(r) => {
                assert_eq!(r.grant_id, "grant-1");
                assert_eq!(r, record);
            }
            other => panic!("expected AlreadyUsed, got {other:?}"),
        }
        // Still used even after it has expired.
        assert!(matches!(
            store.consume_code("code-hash-1", NOW + 120).await.expect("late reuse"),
            Consumed::AlreadyUsed(_)
        ));
        // Codes and pushed requests are separate namespaces.
        assert_eq!(store.consume_pushed_request("code-hash-1", NOW).await.expect("other table"), Consumed::Unknown);
    }

    pub async fn one_time_expired(store: SharedStore) {
        store.put_code(&one_time("c-exp", "g", NOW)).await.expect("put code");
        store.put_pushed_request(&one_time("p-exp", "", NOW - 5)).await.expect("put par");
        // expires_at <= now is expired.
        assert_eq!(store.consume_code("c-exp", NOW).await.expect("consume"), Consumed::Expired);
        assert_eq!(store.consume_pushed_request("p-exp", NOW).await.expect("consume"), Consumed::Expired);
        // Consuming an expired record still marks it used.
        assert!(matches!(store.consume_code("c-exp", NOW).await.expect("again"), Consumed::AlreadyUsed(_)));
        assert!(matches!(store.consume_pushed_request("p-exp", NOW).await.expect("again"), Consumed::AlreadyUsed(_)));
        // One second before expiry it would have been fresh.
        store.put_code(&one_time("c-live", "g", NOW + 1)).await.expect("put");
        assert!(matches!(store.consume_code("c-live", NOW).await.expect("consume"), Consumed::Fresh(_)));
    }

    pub async fn one_time_unknown(store: SharedStore) {
        assert_eq!(store.consume_code("nope", NOW).await.expect("code"), Consumed::Unknown);
        assert_eq!(store.consume_pushed_request("nope", NOW).await.expect("par"), Consumed::Unknown);
        assert_eq!(store.get_pushed_request("nope").await.expect("get"), None);
    }

    pub async fn one_time_duplicate_put(store: SharedStore) {
        store.put_code(&one_time("dup", "g1", NOW + 60)).await.expect("put");
        let again = store.put_code(&one_time("dup", "g2", NOW + 60)).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        store.put_pushed_request(&one_time("dup", "", NOW + 60)).await.expect("put par");
        let again = store.put_pushed_request(&one_time("dup", "", NOW + 60)).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        // The first code is intact.
        match store.consume_code("dup", NOW).await.expect("consume") {
            Consumed::Fresh(r) => assert_eq!(r.grant_id, "g1"),
            other => panic!("expected Fresh, got {other:?}"),
        }
    }

    /// Races RACERS consumers on one record per round; exactly one may win.
    async fn race_consume(store: &SharedStore, code: bool) {
        for round in 0..5 {
            let key = format!("race-{round}");
            let record = one_time(&key, &format!("grant-{round}"), NOW + 60);
            if code {
                store.put_code(&record).await.expect("put");
            } else {
                store.put_pushed_request(&record).await.expect("put");
            }
            let barrier = Arc::new(Barrier::new(RACERS));
            let mut tasks = Vec::new();
            for _ in 0..RACERS {
                let (store, barrier, key) = (store.clone(), barrier.clone(), key.clone());
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    if code {
                        store.consume_code(&key, NOW).await.expect("consume")
                    } else {
                        store.consume_pushed_request(&key, NOW).await.expect("consume")
                    }
                }));
            }
            let (mut fresh, mut used) = (0, 0);
            for task in tasks {
                match task.await.expect("task") {
                    Consumed::Fresh(r) => {
                        assert_eq!(r, record);
                        fresh += 1;
                    }
                    Consumed::AlreadyUsed(r) => {
                        assert_eq!(r, record);
                        used += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(fresh, 1, "round {round}: exactly one consumer may get Fresh");
            assert_eq!(used, RACERS - 1, "round {round}");
        }
    }

    pub async fn concurrent_consume_code(store: SharedStore) {
        race_consume(&store, true).await;
    }

    pub async fn concurrent_consume_pushed_request(store: SharedStore) {
        race_consume(&store, false).await;
    }

    pub async fn tokens_put_get(store: SharedStore) {
        let access = token("at-1", TokenKind::Access, "g1", "c1", "alice");
        let mut refresh = token("rt-hash-1", TokenKind::Refresh, "g1", "c1", "alice");
        refresh.expires_at = NOW + 86_400;
        store.put_token(&access).await.expect("put access");
        store.put_token(&refresh).await.expect("put refresh");
        assert_eq!(store.get_token("at-1").await.expect("get"), Some(access.clone()));
        assert_eq!(store.get_token("rt-hash-1").await.expect("get"), Some(refresh));
        assert_eq!(store.get_token("nope").await.expect("get"), None);

        let dup = store.put_token(&access).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

        // A token recorded as revoked reads back revoked.
        let mut revoked = token("at-2", TokenKind::Access, "g1", "c1", "alice");
        revoked.revoked = true;
        store.put_token(&revoked).await.expect("put revoked");
        assert!(store.get_token("at-2").await.expect("get").expect("at-2").revoked);
    }

    /// RFC 9700 §4.14.2: of many concurrent rotations of one refresh token exactly one
    /// succeeds; the token then reads back revoked with its rotation time. Access tokens
    /// and revoked tokens are never rotated.
    pub async fn concurrent_rotate_refresh_token(store: SharedStore) {
        const RACERS: usize = 12;
        for round in 0..3 {
            let id = format!("rt-race-{round}");
            store.put_token(&token(&id, TokenKind::Refresh, "g", "c1", "alice")).await.expect("put");
            let barrier = Arc::new(Barrier::new(RACERS));
            let mut tasks = Vec::new();
            for _ in 0..RACERS {
                let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    store.rotate_refresh_token(&id, NOW + 1).await.expect("rotate")
                }));
            }
            let mut won = 0;
            for task in tasks {
                won += usize::from(task.await.expect("task"));
            }
            assert_eq!(won, 1, "round {round}: exactly one rotation may succeed");
            let after = store.get_token(&id).await.expect("get").expect("exists");
            assert!(after.revoked);
            assert_eq!(after.data["rotated_at"], json!(NOW + 1));
            assert_eq!(after.data["scope"], json!("openid accounts"), "the rest of the data stays");
        }
        store.put_token(&token("at-norot", TokenKind::Access, "g", "c1", "alice")).await.expect("put");
        assert!(!store.rotate_refresh_token("at-norot", NOW).await.expect("rotate access"));
        assert!(!store.rotate_refresh_token("unknown", NOW).await.expect("rotate unknown"));
    }

    pub async fn token_revocation(store: SharedStore) {
        let tokens = [
            token("a1", TokenKind::Access, "g1", "c1", "alice"),
            token("r1", TokenKind::Refresh, "g1", "c1", "alice"),
            token("a2", TokenKind::Access, "g2", "c2", "alice"),
            token("a3", TokenKind::Access, "g3", "c1", "bob"),
            token("a4", TokenKind::Access, "g4", "c2", "bob"),
            token("a5", TokenKind::Access, "g5", "c3", "carol"),
        ];
        for t in &tokens {
            store.put_token(t).await.expect("put");
        }
        let revoked = |id: &'static str| {
            let store = store.clone();
            async move { store.get_token(id).await.expect("get").expect("exists").revoked }
        };

        assert!(store.revoke_token("a1").await.expect("revoke"));
        assert!(revoked("a1").await);
        assert!(!store.revoke_token("a1").await.expect("revoke twice"));
        assert!(!store.revoke_token("unknown").await.expect("revoke unknown"));

        // Only r1 is newly revoked in g1.
        assert_eq!(store.revoke_grant("g1").await.expect("grant"), 1);
        assert!(revoked("r1").await);
        assert!(!revoked("a2").await);
        assert_eq!(store.revoke_grant("g1").await.expect("grant again"), 0);

        // c1 has a1, r1 (revoked already) and a3.
        assert_eq!(store.revoke_client_tokens("c1").await.expect("client"), 1);
        assert!(revoked("a3").await);
        assert!(!revoked("a4").await);

        // bob: a3 (revoked already) and a4.
        assert_eq!(store.revoke_subject_tokens("bob").await.expect("subject"), 1);
        assert!(revoked("a4").await);
        // alice: only a2 is left.
        assert_eq!(store.revoke_subject_tokens("alice").await.expect("subject"), 1);
        assert!(revoked("a2").await);
        assert_eq!(store.revoke_subject_tokens("nobody").await.expect("subject"), 0);
        // carol's token was never touched.
        assert!(!revoked("a5").await);
        let a5 = store.get_token("a5").await.expect("get").expect("a5");
        assert_eq!(a5, tokens[5]);
    }

    pub async fn sessions(store: SharedStore) {
        let session = SessionRecord {
            id: "sess-hash".into(),
            subject: "alice".into(),
            auth_time: NOW,
            expires_at: NOW + 3_600,
            data: json!({ "acr": "urn:mace:incommon:iap:silver", "amr": ["pwd"] }),
        };
        store.put_session(&session).await.expect("put");
        assert_eq!(store.get_session("sess-hash", NOW + 10).await.expect("get"), Some(session.clone()));
        assert_eq!(store.get_session("sess-hash", NOW + 3_600).await.expect("expired"), None);
        assert_eq!(store.get_session("sess-hash", NOW + 9_999).await.expect("expired"), None);
        assert_eq!(store.get_session("other", NOW).await.expect("unknown"), None);

        // Put replaces (e.g. re-authentication).
        let mut renewed = session.clone();
        renewed.auth_time = NOW + 100;
        renewed.expires_at = NOW + 7_200;
        store.put_session(&renewed).await.expect("replace");
        assert_eq!(store.get_session("sess-hash", NOW + 5_000).await.expect("get"), Some(renewed));

        store.delete_session("sess-hash").await.expect("delete");
        assert_eq!(store.get_session("sess-hash", NOW).await.expect("get"), None);
        store.delete_session("sess-hash").await.expect("delete is idempotent");

        // Ending a subject's sessions (password change) leaves other subjects' alone.
        for (id, subject) in [("a1", "alice"), ("a2", "alice"), ("b1", "bob")] {
            let s = SessionRecord { id: id.into(), subject: subject.into(), ..session.clone() };
            store.put_session(&s).await.expect("put");
        }
        assert_eq!(store.delete_subject_sessions("alice").await.expect("delete subject"), 2);
        assert_eq!(store.get_session("a1", NOW).await.expect("get"), None);
        assert_eq!(store.get_session("a2", NOW).await.expect("get"), None);
        assert!(store.get_session("b1", NOW).await.expect("get").is_some());
        assert_eq!(store.delete_subject_sessions("alice").await.expect("again"), 0);
    }

    pub async fn consent(store: SharedStore) {
        let c = ConsentRecord {
            subject: "alice".into(),
            client_id: "c1".into(),
            scope: "openid accounts".into(),
            granted_at: NOW,
        };
        assert_eq!(store.get_consent("alice", "c1").await.expect("get"), None);
        store.put_consent(&c).await.expect("put");
        assert_eq!(store.get_consent("alice", "c1").await.expect("get"), Some(c.clone()));
        assert_eq!(store.get_consent("alice", "c2").await.expect("get"), None);
        assert_eq!(store.get_consent("bob", "c1").await.expect("get"), None);

        let wider = ConsentRecord { scope: "openid accounts payments".into(), granted_at: NOW + 50, ..c };
        store.put_consent(&wider).await.expect("replace");
        assert_eq!(store.get_consent("alice", "c1").await.expect("get"), Some(wider));
    }

    pub async fn keys(store: SharedStore) {
        let k1 = key("k1", KeyState::Active, NOW);
        let k2 = key("k2-longer", KeyState::Next, NOW + 10);
        // Same second as k1, inserted later: listed after it.
        let k0 = key("k0", KeyState::Next, NOW);
        for k in [&k1, &k2, &k0] {
            store.insert_key(k).await.expect("insert");
        }
        let kids: Vec<String> = store.list_keys().await.expect("list").into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, ["k1", "k0", "k2-longer"]);
        assert_eq!(store.list_keys().await.expect("list")[0], k1);

        let dup = store.insert_key(&key("k1", KeyState::Next, NOW + 99)).await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

        assert!(store.set_key_state("k1", KeyState::Retired, NOW + 500).await.expect("set"));
        assert!(!store.set_key_state("nope", KeyState::Active, NOW).await.expect("set unknown"));
        let listed = store.list_keys().await.expect("list");
        let k1_now = listed.iter().find(|k| k.kid == "k1").expect("k1");
        assert_eq!(k1_now.state, KeyState::Retired);
        assert_eq!(k1_now.state_changed_at, NOW + 500);
        assert_eq!(k1_now.created_at, NOW);
        assert_eq!(k1_now.private_encrypted, k1.private_encrypted);
        assert_eq!(k1_now.public_jwk, k1.public_jwk);

        assert!(store.delete_key("k1").await.expect("delete"));
        assert!(!store.delete_key("k1").await.expect("delete again"));
        assert_eq!(store.list_keys().await.expect("list"), vec![k0, k2]);
    }

    pub async fn purge_expired(store: SharedStore) {
        // Expired (expires_at <= NOW): 1 jti, 1 code, 1 pushed request, 1 session, 1 token.
        assert!(store.record_jti("dpop", "old", NOW - 1).await.expect("jti"));
        assert!(store.record_jti("dpop", "new", NOW + 60).await.expect("jti"));
        store.put_code(&one_time("old-code", "g", NOW)).await.expect("code");
        store.put_code(&one_time("new-code", "g", NOW + 60)).await.expect("code");
        store.put_pushed_request(&one_time("old-par", "", NOW - 30)).await.expect("par");
        store.put_pushed_request(&one_time("new-par", "", NOW + 30)).await.expect("par");
        for (id, exp) in [("old-sess", NOW - 1), ("new-sess", NOW + 60)] {
            store
                .put_session(&SessionRecord {
                    id: id.into(),
                    subject: "alice".into(),
                    auth_time: NOW - 100,
                    expires_at: exp,
                    data: json!({}),
                })
                .await
                .expect("session");
        }
        let mut old_token = token("old-at", TokenKind::Access, "g", "c", "alice");
        old_token.expires_at = NOW - 10;
        store.put_token(&old_token).await.expect("token");
        store.put_token(&token("new-at", TokenKind::Access, "g", "c", "alice")).await.expect("token");
        // Kept regardless of time: clients, users, consent, keys.
        store.put_client(&client("c", "C")).await.expect("client");
        store.insert_key(&key("k", KeyState::Active, NOW - 99_999)).await.expect("key");

        assert_eq!(store.purge_expired(NOW).await.expect("purge"), 5);
        assert_eq!(store.purge_expired(NOW).await.expect("purge again"), 0);

        assert_eq!(store.consume_code("old-code", NOW).await.expect("c"), Consumed::Unknown);
        assert!(matches!(store.consume_code("new-code", NOW).await.expect("c"), Consumed::Fresh(_)));
        assert_eq!(store.get_pushed_request("old-par").await.expect("p"), None);
        assert!(store.get_pushed_request("new-par").await.expect("p").is_some());
        assert_eq!(store.get_session("old-sess", NOW - 100).await.expect("s"), None);
        assert!(store.get_session("new-sess", NOW).await.expect("s").is_some());
        assert_eq!(store.get_token("old-at").await.expect("t"), None);
        assert!(store.get_token("new-at").await.expect("t").is_some());
        assert!(store.record_jti("dpop", "old", NOW + 60).await.expect("purged jti is new"));
        assert!(!store.record_jti("dpop", "new", NOW + 60).await.expect("live jti replays"));
        assert!(store.get_client("c").await.expect("client").is_some());
        assert_eq!(store.list_keys().await.expect("keys").len(), 1);
    }

    fn audit(at: Timestamp, event: &str, client_id: Option<&str>, subject: Option<&str>) -> AuditRecord {
        AuditRecord {
            at,
            event: event.into(),
            client_id: client_id.map(Into::into),
            subject: subject.map(Into::into),
            data: json!({ "event": event, "detail": { "n": at } }),
        }
    }

    pub async fn audit_events(store: SharedStore) {
        let appended = [
            audit(NOW - 900, "client_registered", Some("c1"), None),
            audit(NOW - 10, "login_failed", None, Some("alice")),
            audit(NOW, "token_issued", Some("c1"), Some("alice")),
            // Same second as the one before: append order still decides "newest".
            audit(NOW, "token_revoked", Some("c1"), Some("alice")),
            audit(NOW + 1, "token_issued", Some("c2"), Some("bob")),
        ];
        for event in &appended {
            store.append_audit_event(event).await.expect("append");
        }
        let c1 = store.audit_events(AuditFilter::Client("c1"), 100).await.expect("by client");
        assert_eq!(c1, vec![appended[3].clone(), appended[2].clone(), appended[0].clone()]);
        let alice = store.audit_events(AuditFilter::Subject("alice"), 100).await.expect("by subject");
        assert_eq!(alice, vec![appended[3].clone(), appended[2].clone(), appended[1].clone()]);
        let newest = store.audit_events(AuditFilter::Client("c1"), 1).await.expect("limited");
        assert_eq!(newest, vec![appended[3].clone()]);
        assert!(store.audit_events(AuditFilter::Client("nobody"), 10).await.expect("none").is_empty());
        // A subject filter never matches on client_id and vice versa.
        assert!(store.audit_events(AuditFilter::Subject("c1"), 10).await.expect("none").is_empty());
        let all = store.audit_events(AuditFilter::All, 2).await.expect("all");
        assert_eq!(all, vec![appended[4].clone(), appended[3].clone()]);

        // Retention: events before the cutoff go, the rest stay; expiry purging leaves them alone.
        assert_eq!(store.purge_expired(NOW + 10_000).await.expect("purge expired"), 0);
        assert_eq!(store.purge_audit_events(NOW - 10).await.expect("purge audit"), 1);
        let c1 = store.audit_events(AuditFilter::Client("c1"), 100).await.expect("by client");
        assert_eq!(c1, vec![appended[3].clone(), appended[2].clone()]);
        assert_eq!(store.audit_events(AuditFilter::Subject("alice"), 100).await.expect("alice").len(), 3);
    }

    /// Issue 10: attempts count up within a window, restart after it, are taken back one at
    /// a time (never below zero), are forgotten on clear, and ended windows are purged.
    pub async fn login_attempts(store: SharedStore) {
        let ends = NOW + 900;
        for expected in 1..=3 {
            assert_eq!(
                store.count_login_attempt("user:bob", NOW + expected as i64, ends).await.expect("count"),
                expected
            );
        }
        // Keys are separate.
        assert_eq!(store.count_login_attempt("ip:192.0.2.1", NOW, ends).await.expect("count"), 1);
        store.release_login_attempt("user:bob").await.expect("release");
        assert_eq!(store.count_login_attempt("user:bob", NOW + 10, ends).await.expect("count"), 3);
        // Cleared: the next attempt is the first again.
        store.clear_login_attempts("user:bob").await.expect("clear");
        assert_eq!(store.count_login_attempt("user:bob", NOW + 20, NOW + 920).await.expect("count"), 1);
        // Released below zero stays at zero.
        store.release_login_attempt("ip:192.0.2.1").await.expect("release");
        store.release_login_attempt("ip:192.0.2.1").await.expect("release");
        assert_eq!(store.count_login_attempt("ip:192.0.2.1", NOW + 30, ends).await.expect("count"), 1);
        // The window of `user:bob` ends at NOW + 920 (set by its first attempt, not moved by
        // later ones): at that moment counting starts again, with a new window.
        assert_eq!(store.count_login_attempt("user:bob", NOW + 919, NOW + 2000).await.expect("count"), 2);
        assert_eq!(store.count_login_attempt("user:bob", NOW + 920, NOW + 1820).await.expect("count"), 1);
        assert_eq!(store.count_login_attempt("user:bob", NOW + 921, NOW + 9999).await.expect("count"), 2);
        // Purge removes ended windows only: ip (ends NOW + 900) goes, bob (NOW + 1820) stays.
        assert_eq!(store.purge_expired(NOW + 1000).await.expect("purge"), 1);
        assert_eq!(store.count_login_attempt("user:bob", NOW + 1001, NOW + 9999).await.expect("count"), 3);
        assert_eq!(store.count_login_attempt("ip:192.0.2.1", NOW + 1001, NOW + 1900).await.expect("count"), 1);
    }

    /// Issue 10: concurrent attempts each get a distinct count, so a limit on the count
    /// admits exactly that many however the attempts race.
    pub async fn concurrent_login_attempts(store: SharedStore) {
        const LIMIT: u64 = 5;
        let barrier = Arc::new(Barrier::new(RACERS));
        let mut tasks = Vec::new();
        for _ in 0..RACERS {
            let (store, barrier) = (store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.count_login_attempt("user:race", NOW, NOW + 900).await.expect("count")
            }));
        }
        let mut counts = Vec::new();
        for task in tasks {
            counts.push(task.await.expect("task"));
        }
        counts.sort_unstable();
        assert_eq!(counts, (1..=RACERS as u64).collect::<Vec<_>>());
        assert_eq!(counts.iter().filter(|n| **n <= LIMIT).count() as u64, LIMIT);
    }

    pub async fn json_roundtrip(store: SharedStore) {
        let data = json!({
            "unicode": "Grüße, 東京, emoji 🔐, quote \" backslash \\",
            "nested": { "a": [1, 2.5, -3, null, true, false], "b": { "c": {} } },
            "big": 9_007_199_254_740_993_u64,
            "empty": [],
        });
        let mut record = one_time("json", "g", NOW + 60);
        record.data = data.clone();
        store.put_code(&record).await.expect("put");
        match store.consume_code("json", NOW).await.expect("consume") {
            Consumed::Fresh(r) => assert_eq!(r.data, data),
            other => panic!("expected Fresh, got {other:?}"),
        }
        let mut c = client("json-client", "x");
        c.metadata = data.clone();
        store.put_client(&c).await.expect("put client");
        assert_eq!(store.get_client("json-client").await.expect("get").expect("c").metadata, data);
    }
}

// ---- Backend-specific checks -------------------------------------------------------

/// The version of the newest migration file shipped for a backend (`NNNN_name.sql`).
fn latest_migration(backend: &str) -> i64 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
    std::fs::read_dir(dir)
        .expect("migrations directory")
        .filter_map(|e| e.ok()?.file_name().to_str()?.split('_').next()?.parse::<i64>().ok())
        .max()
        .expect("at least one migration")
}

/// Two stores opening the same new SQLite file at once both succeed, and the schema is
/// applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_open_migrates_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(&dir);
    let (a, b) = tokio::join!(SqliteStore::open(&url), SqliteStore::open(&url));
    let (a, b) = (a.expect("open a"), b.expect("open b"));
    assert_eq!(a.schema_version().await.expect("version"), latest_migration("sqlite"));
    assert_eq!(b.schema_version().await.expect("version"), latest_migration("sqlite"));
    // Reopening is a no-op and the data is shared through the file.
    use strongroom_store::Store;
    assert!(a.record_jti("ns", "j", 1).await.expect("jti"));
    let c = SqliteStore::open(&url).await.expect("reopen");
    assert!(!c.record_jti("ns", "j", 1).await.expect("seen through the file"));
}

/// `sqlite::memory:` and relative-path URLs open, and a relative path's directory is
/// created.
#[tokio::test]
async fn sqlite_url_forms() {
    let mem = strongroom_store::open("sqlite::memory:").await.expect("memory");
    mem.ping().await.expect("ping");
    assert!(mem.record_jti("ns", "j", 1).await.expect("jti"));
    assert!(!mem.record_jti("ns", "j", 1).await.expect("same memory database"));

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub").join("dir").join("s.db");
    // A relative URL (from the current directory, through `..`) names the same file.
    let cwd = std::env::current_dir().expect("cwd");
    let ups = "../".repeat(cwd.components().count().saturating_sub(1));
    let rel = format!("{ups}{}", path.strip_prefix("/").expect("absolute temp path").display());
    let opened = strongroom_store::open(&format!("sqlite://{rel}")).await;
    opened.expect("relative").ping().await.expect("ping");
    assert!(path.exists(), "database file created at {}", path.display());

    let bad = strongroom_store::open("mysql://x").await;
    assert!(bad.is_err());
}

/// Two nodes migrating one fresh PostgreSQL schema at the same moment both succeed; the
/// advisory lock makes the second find the migration applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_open_migrates_once() {
    with_pg_schema(|url, schema| async move {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let (url, schema) = (url.clone(), schema.clone());
                tokio::spawn(async move { PgStore::open_in_schema(&url, &schema).await })
            })
            .collect();
        for open in opens {
            let store = open.await.expect("task").expect("open");
            assert_eq!(store.schema_version().await.expect("version"), latest_migration("postgres"));
            store.close().await;
        }
        let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 \
             AND table_name = 'schema_migrations'",
        )
        .bind(&schema)
        .fetch_one(&mut conn)
        .await
        .expect("count");
        assert_eq!(n, 1);
    })
    .await;
}

/// A schema name that is not a plain identifier is refused before any SQL is sent.
#[tokio::test]
async fn postgres_open_in_schema_rejects_bad_names() {
    for bad in ["", "a;drop", "1abc", "x\"y", "a b"] {
        let r = PgStore::open_in_schema("postgres://u:p@127.0.0.1:1/db", bad).await;
        match r {
            Err(strongroom_store::StoreError::Database(msg)) => {
                assert!(msg.contains("not a plain identifier"), "{bad:?}: {msg}")
            }
            other => panic!("{bad:?}: expected a refusal, got {:?}", other.map(|_| ())),
        }
    }
}
