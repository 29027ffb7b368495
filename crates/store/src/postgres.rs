//! The PostgreSQL backend, for several nodes sharing one state.
//!
//! Single-use records are claimed by one conditional `UPDATE … WHERE NOT used RETURNING
//! …`: under READ COMMITTED a second concurrent updater waits for the first one's row
//! lock, re-checks `NOT used` on the committed row and updates nothing, so two nodes can
//! never both see a record fresh. Replay caches use `INSERT … ON CONFLICT DO NOTHING`,
//! which has the same property. Migrations run under an advisory lock, so nodes starting
//! at once apply each migration exactly once.

use crate::common::{Migration, db_err, latest_version, wall_clock};
use crate::sql_store::{Backend, OneTimeStatements, SqlStore, Statements, backend_queries, bind_params};
use crate::{StoreError, StoreResult};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// A [`crate::Store`] in a PostgreSQL database.
pub type PgStore = SqlStore<Postgres>;

/// PostgreSQL migrations, applied in order (see `migrations/postgres/`).
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, description: "initial", sql: include_str!("../migrations/postgres/0001_initial.sql") },
    Migration {
        version: 2,
        description: "exclusive software_id",
        sql: include_str!("../migrations/postgres/0002_exclusive_software_id.sql"),
    },
    Migration {
        version: 3,
        description: "audit events",
        sql: include_str!("../migrations/postgres/0003_audit_events.sql"),
    },
    Migration {
        version: 4,
        description: "login attempts",
        sql: include_str!("../migrations/postgres/0004_login_attempts.sql"),
    },
];

/// Connections in the pool.
const MAX_CONNECTIONS: u32 = 16;

/// How long a caller waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// First key of the advisory lock that serializes migrations (the second key is a hash
/// of the current schema, so separate schemas migrate independently).
const MIGRATION_LOCK_KEY: i32 = 0x5352_4d47; // "SRMG"

// JSONB columns are selected as text (the decoders parse text in both dialects).
macro_rules! columns {
    (client) => {
        "client_id, metadata::text AS metadata, registration_token_hash, created_at"
    };
    (user) => {
        "subject, username, password_hash, claims::text AS claims, created_at"
    };
    (one_time) => {
        "key, client_id, grant_id, expires_at, data::text AS data"
    };
    (token) => {
        "id, kind, grant_id, client_id, subject, issued_at, expires_at, revoked, data::text AS data"
    };
    (key) => {
        "kid, alg, state, public_jwk::text AS public_jwk, private_encrypted, created_at, state_changed_at"
    };
    (audit) => {
        "at, event, client_id, subject, data::text AS data"
    };
}

macro_rules! one_time_statements {
    ($table:literal) => {
        OneTimeStatements {
            put: concat!(
                "INSERT INTO ",
                $table,
                " (key, client_id, grant_id, expires_at, used, data) VALUES ($1, $2, $3, $4, FALSE, $5::jsonb)"
            ),
            get: concat!("SELECT ", columns!(one_time), " FROM ", $table, " WHERE key = $1"),
            consume: concat!(
                "UPDATE ",
                $table,
                " SET used = TRUE WHERE key = $1 AND NOT used RETURNING ",
                columns!(one_time)
            ),
            // The outer SELECT reads the statement's snapshot, so when a concurrent caller
            // claimed the row first (our UPDATE then matches nothing) it still finds the row
            // and reports the reuse: one round trip either way.
            consume_or_get: Some(concat!(
                "WITH claimed AS (UPDATE ",
                $table,
                " SET used = TRUE WHERE key = $1 AND NOT used RETURNING ",
                columns!(one_time),
                ") ",
                "SELECT key, client_id, grant_id, expires_at, data, 1::bigint AS fresh FROM claimed ",
                "UNION ALL SELECT ",
                columns!(one_time),
                ", 0::bigint AS fresh FROM ",
                $table,
                " WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM claimed)"
            )),
        }
    };
}

/// The PostgreSQL dialect: `$n` placeholders, BOOLEAN, JSONB (bound as text and cast),
/// lists ordered with `COLLATE "C"` (byte order, as SQLite, whatever the locale).
static SQL: Statements = Statements {
    ping: "SELECT 1::bigint AS one",
    schema_version: "SELECT COALESCE(MAX(version), 0)::bigint AS version FROM schema_migrations",
    put_client: "INSERT INTO clients (client_id, metadata, registration_token_hash, created_at)
                 VALUES ($1, $2::jsonb, $3, $4)
                 ON CONFLICT (client_id) DO UPDATE SET
                    metadata = excluded.metadata,
                    registration_token_hash = excluded.registration_token_hash,
                    created_at = excluded.created_at",
    insert_client:
        "INSERT INTO clients (client_id, metadata, registration_token_hash, created_at, exclusive_software_id)
                    VALUES ($1, $2::jsonb, $3, $4, $5)",
    get_client: concat!("SELECT ", columns!(client), " FROM clients WHERE client_id = $1"),
    list_clients: concat!("SELECT ", columns!(client), " FROM clients ORDER BY client_id COLLATE \"C\""),
    delete_client: "DELETE FROM clients WHERE client_id = $1",
    insert_user: "INSERT INTO users (subject, username, password_hash, claims, created_at)
                  VALUES ($1, $2, $3, $4::jsonb, $5)",
    update_user: "UPDATE users SET password_hash = $1, claims = $2::jsonb WHERE username = $3",
    get_user_by_username: concat!("SELECT ", columns!(user), " FROM users WHERE username = $1"),
    get_user_by_subject: concat!("SELECT ", columns!(user), " FROM users WHERE subject = $1"),
    list_users: concat!("SELECT ", columns!(user), " FROM users ORDER BY username COLLATE \"C\""),
    delete_user: "DELETE FROM users WHERE username = $1",
    record_jti: "INSERT INTO jti_cache (namespace, jti, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (namespace, jti) DO NOTHING",
    pushed: one_time_statements!("pushed_requests"),
    get_unused_pushed: concat!("SELECT ", columns!(one_time), " FROM pushed_requests WHERE key = $1 AND NOT used"),
    code: one_time_statements!("codes"),
    put_token: "INSERT INTO tokens (id, kind, grant_id, client_id, subject, issued_at, expires_at, revoked, data)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)",
    get_token: concat!("SELECT ", columns!(token), " FROM tokens WHERE id = $1"),
    revoke_token: "UPDATE tokens SET revoked = TRUE WHERE id = $1 AND NOT revoked",
    rotate_refresh_token:
        "UPDATE tokens SET revoked = TRUE, data = jsonb_set(data, '{rotated_at}', to_jsonb($1::bigint))
                           WHERE id = $2 AND kind = 'refresh' AND NOT revoked",
    revoke_grant: "UPDATE tokens SET revoked = TRUE WHERE grant_id = $1 AND NOT revoked",
    revoke_client_tokens: "UPDATE tokens SET revoked = TRUE WHERE client_id = $1 AND NOT revoked",
    revoke_subject_tokens: "UPDATE tokens SET revoked = TRUE WHERE subject = $1 AND NOT revoked",
    put_session: "INSERT INTO sessions (id, subject, auth_time, expires_at, data) VALUES ($1, $2, $3, $4, $5::jsonb)
                  ON CONFLICT (id) DO UPDATE SET
                     subject = excluded.subject,
                     auth_time = excluded.auth_time,
                     expires_at = excluded.expires_at,
                     data = excluded.data",
    get_session: "SELECT id, subject, auth_time, expires_at, data::text AS data FROM sessions
                  WHERE id = $1 AND expires_at > $2",
    delete_session: "DELETE FROM sessions WHERE id = $1",
    delete_subject_sessions: "DELETE FROM sessions WHERE subject = $1",
    put_consent: "INSERT INTO consents (subject, client_id, scope, granted_at) VALUES ($1, $2, $3, $4)
                  ON CONFLICT (subject, client_id) DO UPDATE SET
                     scope = excluded.scope,
                     granted_at = excluded.granted_at",
    get_consent: "SELECT subject, client_id, scope, granted_at FROM consents WHERE subject = $1 AND client_id = $2",
    insert_key:
        "INSERT INTO signing_keys (kid, alg, state, public_jwk, private_encrypted, created_at, state_changed_at)
                 VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
    list_keys: concat!("SELECT ", columns!(key), " FROM signing_keys ORDER BY created_at, seq"),
    set_key_state: "UPDATE signing_keys SET state = $1, state_changed_at = $2 WHERE kid = $3",
    delete_key: "DELETE FROM signing_keys WHERE kid = $1",
    append_audit_event: "INSERT INTO audit_events (at, event, client_id, subject, data)
                         VALUES ($1, $2, $3, $4, $5::jsonb)",
    audit_events_by_client: concat!(
        "SELECT ",
        columns!(audit),
        " FROM audit_events WHERE client_id = $1 ORDER BY id DESC LIMIT $2"
    ),
    audit_events_by_subject: concat!(
        "SELECT ",
        columns!(audit),
        " FROM audit_events WHERE subject = $1 ORDER BY id DESC LIMIT $2"
    ),
    audit_events_all: concat!("SELECT ", columns!(audit), " FROM audit_events ORDER BY id DESC LIMIT $1"),
    purge_audit_events: "DELETE FROM audit_events WHERE at < $1",
    count_login_attempt: "INSERT INTO login_attempts (key, attempts, expires_at) VALUES ($1, 1, $2)
                          ON CONFLICT (key) DO UPDATE SET
                             attempts = CASE WHEN login_attempts.expires_at <= $3 THEN 1
                                             ELSE login_attempts.attempts + 1 END,
                             expires_at = CASE WHEN login_attempts.expires_at <= $4 THEN excluded.expires_at
                                               ELSE login_attempts.expires_at END
                          RETURNING attempts",
    release_login_attempt: "UPDATE login_attempts SET attempts = attempts - 1 WHERE key = $1 AND attempts > 0",
    clear_login_attempts: "DELETE FROM login_attempts WHERE key = $1",
    purge: &[
        "DELETE FROM jti_cache WHERE expires_at <= $1",
        "DELETE FROM pushed_requests WHERE expires_at <= $1",
        "DELETE FROM codes WHERE expires_at <= $1",
        "DELETE FROM sessions WHERE expires_at <= $1",
        "DELETE FROM tokens WHERE expires_at <= $1",
        "DELETE FROM login_attempts WHERE expires_at <= $1",
    ],
};

bind_params!(Postgres, std::convert::identity::<bool>);

impl Backend for Postgres {
    const SQL: &'static Statements = &SQL;
    const LATEST_MIGRATION: i64 = latest_version(MIGRATIONS);

    backend_queries!(Postgres);

    async fn migrate(pool: &PgPool) -> StoreResult<()> {
        let mut conn = pool.acquire().await.map_err(db_err)?;
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
        result
    }
}

impl SqlStore<Postgres> {
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
        Self::from_pool(pool).await
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
