//! The embedded SQLite backend (the default).
//!
//! One file, WAL journal, `synchronous=NORMAL`, a busy timeout so concurrent writers wait
//! instead of failing, foreign keys on. SQLite serializes writers, so each single-use
//! record is claimed by one conditional `UPDATE … RETURNING` and no two callers can both
//! see it fresh.

use crate::common::{
    Migration, classify_consume, client_from_row, conflict_or_db, consent_from_row, db_err, key_from_row,
    latest_version, one_time_from_row, session_from_row, to_json, token_from_row, user_from_row, wall_clock,
};
use crate::{
    ClientRecord, ConsentRecord, Consumed, KeyRecord, KeyState, OneTimeRecord, SessionRecord, Store, StoreError,
    StoreResult, Timestamp, TokenRecord, UserRecord,
};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection};
use std::str::FromStr;
use std::time::Duration;

/// SQLite migrations, applied in order (see `migrations/sqlite/`).
pub(crate) const MIGRATIONS: &[Migration] =
    &[Migration { version: 1, description: "initial", sql: include_str!("../migrations/sqlite/0001_initial.sql") }];

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// Connections in the pool for a database file (readers run in parallel under WAL).
const MAX_CONNECTIONS: u32 = 4;

const CLIENT_COLUMNS: &str = "client_id, metadata, registration_token_hash, created_at";
const USER_COLUMNS: &str = "subject, username, password_hash, claims, created_at";
const ONE_TIME_COLUMNS: &str = "key, client_id, grant_id, expires_at, data";
const TOKEN_COLUMNS: &str = "id, kind, grant_id, client_id, subject, issued_at, expires_at, revoked, data";
const KEY_COLUMNS: &str = "kid, alg, state, public_jwk, private_encrypted, created_at, state_changed_at";

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

/// A [`Store`] in an SQLite database file (or in memory, for tests).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database named by `url` and brings its schema up
    /// to date.
    ///
    /// Accepted forms: `sqlite:///abs/path.db`, `sqlite://relative/path.db`,
    /// `sqlite:path.db` and `sqlite::memory:` (one private in-memory database per store).
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = if in_memory {
            // An in-memory database lives as long as a connection to it: keep exactly one.
            SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
        } else {
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Database(format!("creating {}: {e}", parent.display())))?;
            }
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        };
        let pool = pool_options
            .acquire_timeout(BUSY_TIMEOUT + Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(db_err)?;
        let store = SqliteStore { pool };
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
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version     INTEGER PRIMARY KEY NOT NULL,
                description TEXT    NOT NULL,
                applied_at  INTEGER NOT NULL
            )",
        )
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
        for migration in MIGRATIONS {
            apply_migration(&mut conn, migration).await?;
        }
        // Give the connection back first: an in-memory pool has only this one.
        drop(conn);
        let current = self.schema_version().await?;
        if current > latest_version(MIGRATIONS) {
            tracing::warn!(current, known = latest_version(MIGRATIONS), "database schema is newer than this binary");
        }
        Ok(())
    }

    async fn fetch_one_time(&self, which: OneTime, key: &str) -> StoreResult<Option<OneTimeRecord>> {
        let sql = format!("SELECT {ONE_TIME_COLUMNS} FROM {} WHERE key = ?", which.table());
        let row = sqlx::query(AssertSqlSafe(sql)).bind(key).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(one_time_from_row).transpose()
    }

    async fn insert_one_time(&self, which: OneTime, record: &OneTimeRecord) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO {} (key, client_id, grant_id, expires_at, used, data)
             VALUES (?, ?, ?, ?, 0, ?)",
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
        // One statement: SQLite holds the write lock for it, so exactly one caller flips
        // `used` from 0 to 1 and gets the row back.
        let sql =
            format!("UPDATE {} SET used = 1 WHERE key = ? AND used = 0 RETURNING {ONE_TIME_COLUMNS}", which.table());
        let claimed = sqlx::query(AssertSqlSafe(sql)).bind(key).fetch_optional(&self.pool).await.map_err(db_err)?;
        let claimed = claimed.as_ref().map(one_time_from_row).transpose()?;
        let existing = if claimed.is_none() { self.fetch_one_time(which, key).await? } else { None };
        Ok(classify_consume(claimed, existing, now))
    }

    async fn revoke_where(&self, column: &'static str, value: &str) -> StoreResult<u64> {
        let sql = format!("UPDATE tokens SET revoked = 1 WHERE {column} = ? AND revoked = 0");
        let done = sqlx::query(AssertSqlSafe(sql)).bind(value).execute(&self.pool).await.map_err(db_err)?;
        Ok(done.rows_affected())
    }
}

/// Applies one migration unless it is recorded already. `BEGIN IMMEDIATE` takes the
/// write lock before the check, so two processes opening the same file at once cannot
/// both apply it.
async fn apply_migration(conn: &mut SqliteConnection, migration: &Migration) -> StoreResult<()> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
        .bind(migration.version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    if applied.is_none() {
        tracing::info!(version = migration.version, description = migration.description, "applying SQLite migration");
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Database(format!("migration {}: {e}", migration.version)))?;
        sqlx::query("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)")
            .bind(migration.version)
            .bind(migration.description)
            .bind(wall_clock())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&self.pool).await.map_err(db_err)?;
        if one == 1 { Ok(()) } else { Err(StoreError::Database("ping returned an unexpected value".into())) }
    }

    async fn put_client(&self, client: &ClientRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, metadata, registration_token_hash, created_at)
             VALUES (?, ?, ?, ?)
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
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(client_id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY client_id");
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn delete_client(&self, client_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM clients WHERE client_id = ?")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (subject, username, password_hash, claims, created_at)
             VALUES (?, ?, ?, ?, ?)",
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
        let done = sqlx::query("UPDATE users SET password_hash = ?, claims = ? WHERE username = ?")
            .bind(&user.password_hash)
            .bind(to_json(&user.claims)?)
            .bind(&user.username)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(username).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn get_user_by_subject(&self, subject: &str) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE subject = ?");
        let row = sqlx::query(AssertSqlSafe(sql)).bind(subject).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM users WHERE username = ?")
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_jti(&self, namespace: &str, jti: &str, expires_at: Timestamp) -> StoreResult<bool> {
        // An existing row is a replay, expired or not; purge_expired removes old rows.
        let done = sqlx::query(
            "INSERT INTO jti_cache (namespace, jti, expires_at) VALUES (?, ?, ?)
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
        let sql = format!("SELECT {ONE_TIME_COLUMNS} FROM {} WHERE key = ? AND used = 0", OneTime::Pushed.table());
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(token.kind.as_str())
        .bind(&token.grant_id)
        .bind(&token.client_id)
        .bind(&token.subject)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .bind(i64::from(token.revoked))
        .bind(to_json(&token.data)?)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_db(e, &format!("token {}", token.id)))?;
        Ok(())
    }

    async fn get_token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?");
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
             VALUES (?, ?, ?, ?, ?)
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
            "SELECT id, subject, auth_time, expires_at, data FROM sessions
             WHERE id = ? AND expires_at > ?",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = ?").bind(id).execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn put_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (subject, client_id, scope, granted_at) VALUES (?, ?, ?, ?)
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
             WHERE subject = ? AND client_id = ?",
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
             VALUES (?, ?, ?, ?, ?, ?, ?)",
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
        let done = sqlx::query("UPDATE signing_keys SET state = ?, state_changed_at = ? WHERE kid = ?")
            .bind(state.as_str())
            .bind(at)
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_key(&self, kid: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE kid = ?")
            .bind(kid)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        let mut removed = 0;
        for table in ["jti_cache", "pushed_requests", "codes", "sessions", "tokens"] {
            let sql = format!("DELETE FROM {table} WHERE expires_at <= ?");
            let done = sqlx::query(AssertSqlSafe(sql)).bind(now).execute(&self.pool).await.map_err(db_err)?;
            removed += done.rows_affected();
        }
        Ok(removed)
    }
}
