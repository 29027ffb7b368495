//! The embedded SQLite backend (the default): connection settings, migrations and the
//! SQLite statement table of [`SqlStore`].
//!
//! One file, WAL journal, `synchronous=NORMAL`, a busy timeout so concurrent writers wait
//! instead of failing, foreign keys on. SQLite serializes writers, so each single-use
//! record is claimed by one conditional `UPDATE … RETURNING` and no two callers can both
//! see it fresh.

use crate::common::{Migration, db_err, latest_version, wall_clock};
use crate::sql_store::{Backend, OneTimeStatements, SqlStore, Statements, backend_queries, bind_params};
use crate::{StoreError, StoreResult};
use sqlx::Connection;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// A [`crate::Store`] in an SQLite database file (or in memory, for tests).
pub type SqliteStore = SqlStore<Sqlite>;

/// SQLite migrations, applied in order (see `migrations/sqlite/`).
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, description: "initial", sql: include_str!("../migrations/sqlite/0001_initial.sql") },
    Migration {
        version: 2,
        description: "exclusive software_id",
        sql: include_str!("../migrations/sqlite/0002_exclusive_software_id.sql"),
    },
    Migration {
        version: 3,
        description: "audit events",
        sql: include_str!("../migrations/sqlite/0003_audit_events.sql"),
    },
    Migration {
        version: 4,
        description: "login attempts",
        sql: include_str!("../migrations/sqlite/0004_login_attempts.sql"),
    },
];

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// Connections in the pool for a database file (readers run in parallel under WAL).
const MAX_CONNECTIONS: u32 = 4;

macro_rules! columns {
    (client) => {
        "client_id, metadata, registration_token_hash, created_at"
    };
    (user) => {
        "subject, username, password_hash, claims, created_at"
    };
    (one_time) => {
        "key, client_id, grant_id, expires_at, data"
    };
    (token) => {
        "id, kind, grant_id, client_id, subject, issued_at, expires_at, revoked, data"
    };
    (key) => {
        "kid, alg, state, public_jwk, private_encrypted, created_at, state_changed_at"
    };
    (audit) => {
        "at, event, client_id, subject, data"
    };
}

macro_rules! one_time_statements {
    ($table:literal) => {
        OneTimeStatements {
            put: concat!(
                "INSERT INTO ",
                $table,
                " (key, client_id, grant_id, expires_at, used, data) VALUES (?, ?, ?, ?, 0, ?)"
            ),
            get: concat!("SELECT ", columns!(one_time), " FROM ", $table, " WHERE key = ?"),
            consume: concat!(
                "UPDATE ",
                $table,
                " SET used = 1 WHERE key = ? AND used = 0 RETURNING ",
                columns!(one_time)
            ),
            // SQLite has no UPDATE inside WITH: a reuse costs a second statement.
            consume_or_get: None,
        }
    };
}

/// The SQLite dialect: `?` placeholders, booleans as INTEGER 0/1, JSON as TEXT.
static SQL: Statements = Statements {
    ping: "SELECT 1 AS one",
    schema_version: "SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations",
    put_client: "INSERT INTO clients (client_id, metadata, registration_token_hash, created_at)
                 VALUES (?, ?, ?, ?)
                 ON CONFLICT (client_id) DO UPDATE SET
                    metadata = excluded.metadata,
                    registration_token_hash = excluded.registration_token_hash,
                    created_at = excluded.created_at",
    insert_client:
        "INSERT INTO clients (client_id, metadata, registration_token_hash, created_at, exclusive_software_id)
                    VALUES (?, ?, ?, ?, ?)",
    get_client: concat!("SELECT ", columns!(client), " FROM clients WHERE client_id = ?"),
    list_clients: concat!("SELECT ", columns!(client), " FROM clients ORDER BY client_id"),
    delete_client: "DELETE FROM clients WHERE client_id = ?",
    insert_user: "INSERT INTO users (subject, username, password_hash, claims, created_at) VALUES (?, ?, ?, ?, ?)",
    update_user: "UPDATE users SET password_hash = ?, claims = ? WHERE username = ?",
    get_user_by_username: concat!("SELECT ", columns!(user), " FROM users WHERE username = ?"),
    get_user_by_subject: concat!("SELECT ", columns!(user), " FROM users WHERE subject = ?"),
    list_users: concat!("SELECT ", columns!(user), " FROM users ORDER BY username"),
    delete_user: "DELETE FROM users WHERE username = ?",
    record_jti: "INSERT INTO jti_cache (namespace, jti, expires_at) VALUES (?, ?, ?)
                 ON CONFLICT (namespace, jti) DO NOTHING",
    pushed: one_time_statements!("pushed_requests"),
    get_unused_pushed: concat!("SELECT ", columns!(one_time), " FROM pushed_requests WHERE key = ? AND used = 0"),
    code: one_time_statements!("codes"),
    put_token: "INSERT INTO tokens (id, kind, grant_id, client_id, subject, issued_at, expires_at, revoked, data)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    get_token: concat!("SELECT ", columns!(token), " FROM tokens WHERE id = ?"),
    revoke_token: "UPDATE tokens SET revoked = 1 WHERE id = ? AND revoked = 0",
    rotate_refresh_token: "UPDATE tokens SET revoked = 1, data = json_set(data, '$.rotated_at', ?)
                           WHERE id = ? AND kind = 'refresh' AND revoked = 0",
    revoke_grant: "UPDATE tokens SET revoked = 1 WHERE grant_id = ? AND revoked = 0",
    revoke_client_tokens: "UPDATE tokens SET revoked = 1 WHERE client_id = ? AND revoked = 0",
    revoke_subject_tokens: "UPDATE tokens SET revoked = 1 WHERE subject = ? AND revoked = 0",
    put_session: "INSERT INTO sessions (id, subject, auth_time, expires_at, data) VALUES (?, ?, ?, ?, ?)
                  ON CONFLICT (id) DO UPDATE SET
                     subject = excluded.subject,
                     auth_time = excluded.auth_time,
                     expires_at = excluded.expires_at,
                     data = excluded.data",
    get_session: "SELECT id, subject, auth_time, expires_at, data FROM sessions WHERE id = ? AND expires_at > ?",
    delete_session: "DELETE FROM sessions WHERE id = ?",
    delete_subject_sessions: "DELETE FROM sessions WHERE subject = ?",
    put_consent: "INSERT INTO consents (subject, client_id, scope, granted_at) VALUES (?, ?, ?, ?)
                  ON CONFLICT (subject, client_id) DO UPDATE SET
                     scope = excluded.scope,
                     granted_at = excluded.granted_at",
    get_consent: "SELECT subject, client_id, scope, granted_at FROM consents WHERE subject = ? AND client_id = ?",
    insert_key:
        "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_encrypted, created_at, state_changed_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
    list_keys: concat!("SELECT ", columns!(key), " FROM signing_keys ORDER BY created_at, seq"),
    set_key_state: "UPDATE signing_keys SET state = ?, state_changed_at = ? WHERE kid = ?",
    delete_key: "DELETE FROM signing_keys WHERE kid = ?",
    append_audit_event: "INSERT INTO audit_events (at, event, client_id, subject, data) VALUES (?, ?, ?, ?, ?)",
    audit_events_by_client: concat!(
        "SELECT ",
        columns!(audit),
        " FROM audit_events WHERE client_id = ? ORDER BY id DESC LIMIT ?"
    ),
    audit_events_by_subject: concat!(
        "SELECT ",
        columns!(audit),
        " FROM audit_events WHERE subject = ? ORDER BY id DESC LIMIT ?"
    ),
    audit_events_all: concat!("SELECT ", columns!(audit), " FROM audit_events ORDER BY id DESC LIMIT ?"),
    purge_audit_events: "DELETE FROM audit_events WHERE at < ?",
    count_login_attempt: "INSERT INTO login_attempts (key, attempts, expires_at) VALUES (?, 1, ?)
                          ON CONFLICT (key) DO UPDATE SET
                             attempts = CASE WHEN login_attempts.expires_at <= ? THEN 1
                                             ELSE login_attempts.attempts + 1 END,
                             expires_at = CASE WHEN login_attempts.expires_at <= ? THEN excluded.expires_at
                                               ELSE login_attempts.expires_at END
                          RETURNING attempts",
    release_login_attempt: "UPDATE login_attempts SET attempts = attempts - 1 WHERE key = ? AND attempts > 0",
    clear_login_attempts: "DELETE FROM login_attempts WHERE key = ?",
    purge: &[
        "DELETE FROM jti_cache WHERE expires_at <= ?",
        "DELETE FROM pushed_requests WHERE expires_at <= ?",
        "DELETE FROM codes WHERE expires_at <= ?",
        "DELETE FROM sessions WHERE expires_at <= ?",
        "DELETE FROM tokens WHERE expires_at <= ?",
        "DELETE FROM login_attempts WHERE expires_at <= ?",
    ],
};

bind_params!(Sqlite, i64::from);

impl Backend for Sqlite {
    const SQL: &'static Statements = &SQL;
    const LATEST_MIGRATION: i64 = latest_version(MIGRATIONS);

    backend_queries!(Sqlite);

    async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
        let mut conn = pool.acquire().await.map_err(db_err)?;
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
        Ok(())
    }
}

impl SqlStore<Sqlite> {
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
        Self::from_pool(pool).await
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
