//! The PostgreSQL backend, for several nodes sharing one state.
//!
//! Single-use records are claimed by one conditional `UPDATE … WHERE NOT used RETURNING
//! …`: under READ COMMITTED a second concurrent updater waits for the first one's row
//! lock, re-checks `NOT used` on the committed row and updates nothing, so two nodes can
//! never both see a record fresh. Replay caches use `INSERT … ON CONFLICT DO NOTHING`,
//! which has the same property. Migrations run under an advisory lock, so nodes starting
//! at once apply each migration exactly once.

use crate::common::{
    Migration, classify_consume, client_from_row, conflict_or_db, consent_from_row, db_err, key_from_row,
    latest_version, one_time_from_row, session_from_row, to_json, token_from_row, user_from_row, wall_clock,
};
use crate::{
    ClientRecord, ConsentRecord, Consumed, KeyRecord, KeyState, OneTimeRecord, SessionRecord, Store, StoreError,
    StoreResult, Timestamp, TokenRecord, UserRecord,
};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};
use std::str::FromStr;
use std::time::Duration;

/// PostgreSQL migrations, applied in order (see `migrations/postgres/`).
pub(crate) const MIGRATIONS: &[Migration] =
    &[Migration { version: 1, description: "initial", sql: include_str!("../migrations/postgres/0001_initial.sql") }];

/// Connections in the pool.
const MAX_CONNECTIONS: u32 = 16;

/// How long a caller waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// First key of the advisory lock that serializes migrations (the second key is a hash
/// of the current schema, so separate schemas migrate independently).
const MIGRATION_LOCK_KEY: i32 = 0x5352_4d47; // "SRMG"

const CLIENT_COLUMNS: &str = "client_id, metadata::text AS metadata, registration_token_hash, created_at";
const USER_COLUMNS: &str = "subject, username, password_hash, claims::text AS claims, created_at";
const ONE_TIME_COLUMNS: &str = "key, client_id, grant_id, expires_at, data::text AS data";
const TOKEN_COLUMNS: &str = "id, kind, grant_id, client_id, subject, issued_at, expires_at, \
                             revoked, data::text AS data";
const KEY_COLUMNS: &str = "kid, alg, state, public_jwk::text AS public_jwk, private_encrypted, \
                           created_at, state_changed_at";

/// The two tables of single-use records.
#[derive(Clone, Copy)]
enum OneTime {
    Pushed,
    Code,
}

impl OneTime {
    fn table(self) -> &'static str {
        match self {
            OneTime::Pushed => "pushed_requests",
            OneTime::Code => "codes",
        }
    }
}

/// A [`Store`] in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`, with the usual
    /// query parameters such as `sslmode`) and brings the schema up to date.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url).map_err(db_err)?;
        Self::open_with(options).await
    }

    /// Like [`PgStore::open`], but every connection uses `schema` (which must exist) as
    /// its `search_path`, so the tables live there. Meant for test isolation and for
    /// sharing one database between deployments. `schema` must be a plain identifier
    /// (ASCII letters, digits, `_`, not starting with a digit).
    pub async fn open_in_schema(url: &str, schema: &str) -> StoreResult<Self> {
        let plain = !schema.is_empty()
            && schema.len() <= 63
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain {
            return Err(StoreError::Database(format!("schema name {schema:?} is not a plain identifier")));
        }
        let options = PgConnectOptions::from_str(url).map_err(db_err)?.options([("search_path", schema)]);
        Self::open_with(options).await
    }

    async fn open_with(options: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(db_err)?;
        let store = PgStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await
            .map(|v| v.unwrap_or(0))
            .map_err(db_err)
    }

    /// Closes the pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        // A session-level advisory lock: a second node starting at the same moment waits
        // here until the first has committed, then finds every migration recorded.
        sqlx::query("SELECT pg_advisory_lock($1, hashtext(COALESCE(current_schema(), '')))")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        let result = migrate_locked(&mut conn).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext(COALESCE(current_schema(), '')))")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // Closing the session releases its locks.
            conn.close_on_drop();
        }
        drop(conn);
        result?;
        let current = self.schema_version().await?;
        if current > latest_version(MIGRATIONS) {
            tracing::warn!(current, known = latest_version(MIGRATIONS), "database schema is newer than this binary");
        }
        Ok(())
    }

    async fn fetch_one_time(&self, which: OneTime, key: &str) -> StoreResult<Option<OneTimeRecord>> {
        let sql = format!("SELECT {ONE_TIME_COLUMNS} FROM {} WHERE key = $1", which.table());
        let row = sqlx::query(AssertSqlSafe(sql)).bind(key).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(one_time_from_row).transpose()
    }

    async fn insert_one_time(&self, which: OneTime, record: &OneTimeRecord) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO {} (key, client_id, grant_id, expires_at, used, data)
             VALUES ($1, $2, $3, $4, FALSE, $5::jsonb)",
            which.table()
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(&record.key)
            .bind(&record.client_id)
            .bind(&record.grant_id)
            .bind(record.expires_at)
            .bind(to_json(&record.data)?)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or_db(e, &format!("{} {}", which.table(), record.key)))?;
        Ok(())
    }

    async fn consume_one_time(&self, which: OneTime, key: &str, now: Timestamp) -> StoreResult<Consumed> {
        let sql = format!(
            "UPDATE {} SET used = TRUE WHERE key = $1 AND NOT used RETURNING {ONE_TIME_COLUMNS}",
            which.table()
        );
        let claimed = sqlx::query(AssertSqlSafe(sql)).bind(key).fetch_optional(&self.pool).await.map_err(db_err)?;
        let claimed = claimed.as_ref().map(one_time_from_row).transpose()?;
        let existing = if claimed.is_none() { self.fetch_one_time(which, key).await? } else { None };
        Ok(classify_consume(claimed, existing, now))
    }

    async fn revoke_where(&self, column: &'static str, value: &str) -> StoreResult<u64> {
        let sql = format!("UPDATE tokens SET revoked = TRUE WHERE {column} = $1 AND NOT revoked");
        let done = sqlx::query(AssertSqlSafe(sql)).bind(value).execute(&self.pool).await.map_err(db_err)?;
        Ok(done.rows_affected())
    }
}

/// Creates `schema_migrations` and applies every migration not recorded there, each in
/// its own transaction. The caller holds the migration advisory lock.
async fn migrate_locked(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version     BIGINT PRIMARY KEY,
            description TEXT   NOT NULL,
            applied_at  BIGINT NOT NULL
        )",
    )
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    for migration in MIGRATIONS {
        let mut tx = conn.begin().await.map_err(db_err)?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if applied.is_none() {
            tracing::info!(
                version = migration.version,
                description = migration.description,
                "applying PostgreSQL migration"
            );
            sqlx::raw_sql(migration.sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Database(format!("migration {}: {e}", migration.version)))?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, description, applied_at)
                 VALUES ($1, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.description)
            .bind(wall_clock())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
    }
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&self.pool).await.map_err(db_err)?;
        if one == 1 { Ok(()) } else { Err(StoreError::Database("ping returned an unexpected value".into())) }
    }

    async fn put_client(&self, client: &ClientRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, metadata, registration_token_hash, created_at)
             VALUES ($1, $2::jsonb, $3, $4)
             ON CONFLICT (client_id) DO UPDATE SET
                metadata = excluded.metadata,
                registration_token_hash = excluded.registration_token_hash,
                created_at = excluded.created_at",
        )
        .bind(&client.client_id)
        .bind(to_json(&client.metadata)?)
        .bind(&client.registration_token_hash)
        .bind(client.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(client_id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        // COLLATE "C": byte order, the same as SQLite's default, whatever the database locale.
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY client_id COLLATE \"C\"");
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn delete_client(&self, client_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (subject, username, password_hash, claims, created_at)
             VALUES ($1, $2, $3, $4::jsonb, $5)",
        )
        .bind(&user.subject)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(to_json(&user.claims)?)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_db(e, &format!("user {} / subject {}", user.username, user.subject)))?;
        Ok(())
    }

    async fn update_user(&self, user: &UserRecord) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET password_hash = $1, claims = $2::jsonb WHERE username = $3")
            .bind(&user.password_hash)
            .bind(to_json(&user.claims)?)
            .bind(&user.username)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(username).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn get_user_by_subject(&self, subject: &str) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE subject = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(subject).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username COLLATE \"C\"");
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_jti(&self, namespace: &str, jti: &str, expires_at: Timestamp) -> StoreResult<bool> {
        // An existing row is a replay, expired or not; purge_expired removes old rows.
        let done = sqlx::query(
            "INSERT INTO jti_cache (namespace, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (namespace, jti) DO NOTHING",
        )
        .bind(namespace)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_pushed_request(&self, record: &OneTimeRecord) -> StoreResult<()> {
        self.insert_one_time(OneTime::Pushed, record).await
    }

    async fn get_pushed_request(&self, key: &str) -> StoreResult<Option<OneTimeRecord>> {
        let sql = format!("SELECT {ONE_TIME_COLUMNS} FROM {} WHERE key = $1 AND used = FALSE", OneTime::Pushed.table());
        let row = sqlx::query(AssertSqlSafe(sql)).bind(key).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(one_time_from_row).transpose()
    }

    async fn consume_pushed_request(&self, key: &str, now: Timestamp) -> StoreResult<Consumed> {
        self.consume_one_time(OneTime::Pushed, key, now).await
    }

    async fn put_code(&self, record: &OneTimeRecord) -> StoreResult<()> {
        self.insert_one_time(OneTime::Code, record).await
    }

    async fn consume_code(&self, key: &str, now: Timestamp) -> StoreResult<Consumed> {
        self.consume_one_time(OneTime::Code, key, now).await
    }

    async fn put_token(&self, token: &TokenRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tokens
                (id, kind, grant_id, client_id, subject, issued_at, expires_at, revoked, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)",
        )
        .bind(&token.id)
        .bind(token.kind.as_str())
        .bind(&token.grant_id)
        .bind(&token.client_id)
        .bind(&token.subject)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .bind(token.revoked)
        .bind(to_json(&token.data)?)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_db(e, &format!("token {}", token.id)))?;
        Ok(())
    }

    async fn get_token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn revoke_token(&self, id: &str) -> StoreResult<bool> {
        Ok(self.revoke_where("id", id).await? > 0)
    }

    async fn revoke_grant(&self, grant_id: &str) -> StoreResult<u64> {
        self.revoke_where("grant_id", grant_id).await
    }

    async fn revoke_client_tokens(&self, client_id: &str) -> StoreResult<u64> {
        self.revoke_where("client_id", client_id).await
    }

    async fn revoke_subject_tokens(&self, subject: &str) -> StoreResult<u64> {
        self.revoke_where("subject", subject).await
    }

    async fn put_session(&self, session: &SessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, subject, auth_time, expires_at, data)
             VALUES ($1, $2, $3, $4, $5::jsonb)
             ON CONFLICT (id) DO UPDATE SET
                subject = excluded.subject,
                auth_time = excluded.auth_time,
                expires_at = excluded.expires_at,
                data = excluded.data",
        )
        .bind(&session.id)
        .bind(&session.subject)
        .bind(session.auth_time)
        .bind(session.expires_at)
        .bind(to_json(&session.data)?)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_session(&self, id: &str, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT id, subject, auth_time, expires_at, data::text AS data FROM sessions
             WHERE id = $1 AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id).execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn put_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (subject, client_id, scope, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (subject, client_id) DO UPDATE SET
                scope = excluded.scope,
                granted_at = excluded.granted_at",
        )
        .bind(&consent.subject)
        .bind(&consent.client_id)
        .bind(&consent.scope)
        .bind(consent.granted_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_consent(&self, subject: &str, client_id: &str) -> StoreResult<Option<ConsentRecord>> {
        let row = sqlx::query(
            "SELECT subject, client_id, scope, granted_at FROM consents
             WHERE subject = $1 AND client_id = $2",
        )
        .bind(subject)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(consent_from_row).transpose()
    }

    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys
                (kid, alg, state, public_jwk, private_encrypted, created_at, state_changed_at)
             VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(key.state.as_str())
        .bind(to_json(&key.public_jwk)?)
        .bind(&key.private_encrypted)
        .bind(key.created_at)
        .bind(key.state_changed_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_db(e, &format!("key {}", key.kid)))?;
        Ok(())
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, seq");
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn set_key_state(&self, kid: &str, state: KeyState, at: Timestamp) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE signing_keys SET state = $1, state_changed_at = $2 WHERE kid = $3")
            .bind(state.as_str())
            .bind(at)
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_key(&self, kid: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        let mut removed = 0;
        for table in ["jti_cache", "pushed_requests", "codes", "sessions", "tokens"] {
            let sql = format!("DELETE FROM {table} WHERE expires_at <= $1");
            let done = sqlx::query(AssertSqlSafe(sql)).bind(now).execute(&self.pool).await.map_err(db_err)?;
            removed += done.rows_affected();
        }
        Ok(removed)
    }
}
