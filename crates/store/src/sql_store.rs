//! The one [`Store`] implementation: [`SqlStore<B>`], generic over the sqlx backend `B`.
//!
//! Everything a backend differs in is in its [`Backend`] impl: a [`Statements`] table
//! (placeholders, casts, boolean literals, collations), how a flag is bound, how it
//! connects and how it migrates. The logic of every store method — which statement,
//! which parameters, how rows become records, how a consume attempt is classified — is
//! written once, here.

use crate::common::{
    audit_from_row, classify_consume, client_from_row, conflict_or_db, consent_from_row, db_err, key_from_row,
    one_time_from_row, session_from_row, to_json, token_from_row, user_from_row,
};
use crate::{
    AuditFilter, AuditRecord, ClientRecord, ConsentRecord, Consumed, KeyRecord, KeyState, OneTimeRecord, SessionRecord,
    Store, StoreError, StoreResult, Timestamp, TokenRecord, UserRecord,
};
use async_trait::async_trait;
use sqlx::Pool;
use std::future::Future;

/// One bound parameter of a statement. Backends bind each variant with their own type
/// (a [`Param::Flag`] is an INTEGER 0/1 in SQLite and a BOOLEAN in PostgreSQL; JSON is
/// bound as text and cast by the statement where the column is `jsonb`).
#[derive(Debug, Clone)]
pub enum Param<'a> {
    /// TEXT.
    Text(&'a str),
    /// Nullable TEXT.
    OptText(Option<&'a str>),
    /// BIGINT / INTEGER.
    Int(i64),
    /// BLOB / BYTEA.
    Bytes(&'a [u8]),
    /// Boolean.
    Flag(bool),
    /// Serialized JSON.
    Json(String),
}

/// The statements of one single-use table.
#[derive(Debug)]
pub struct OneTimeStatements {
    /// Inserts `(key, client_id, grant_id, expires_at, data)`, unused.
    pub put: &'static str,
    /// Selects a record by key, used or not.
    pub get: &'static str,
    /// Flips `used` from false to true for a key and returns the record, or no row.
    pub consume: &'static str,
    /// Where the dialect can (PostgreSQL: `UPDATE` in a `WITH`), `consume` and `get` in one
    /// round trip: the record plus a BIGINT column `fresh` (1 = claimed by this statement,
    /// 0 = it was used before), or no row for an unknown key.
    pub consume_or_get: Option<&'static str>,
}

/// Every statement the store runs, in one backend's dialect. Parameters are listed in
/// each field's doc in binding order; selected columns are the ones the `*_from_row`
/// decoders read (JSON columns as text).
#[derive(Debug)]
pub struct Statements {
    /// Returns one row with the BIGINT column `one` = 1.
    pub ping: &'static str,
    /// Returns `version` (BIGINT, 0 when empty) from `schema_migrations`.
    pub schema_version: &'static str,
    /// Upserts a client: `client_id, metadata, registration_token_hash, created_at`.
    pub put_client: &'static str,
    /// Inserts a new client (no upsert): `client_id, metadata, registration_token_hash,
    /// created_at, exclusive_software_id`; a taken key is a unique violation.
    pub insert_client: &'static str,
    /// `client_id`.
    pub get_client: &'static str,
    /// All clients by `client_id` in byte order.
    pub list_clients: &'static str,
    /// `client_id`.
    pub delete_client: &'static str,
    /// `subject, username, password_hash, claims, created_at`.
    pub insert_user: &'static str,
    /// `password_hash, claims, username`.
    pub update_user: &'static str,
    /// `username`.
    pub get_user_by_username: &'static str,
    /// `subject`.
    pub get_user_by_subject: &'static str,
    /// All users by `username` in byte order.
    pub list_users: &'static str,
    /// `username`.
    pub delete_user: &'static str,
    /// Inserts `namespace, jti, expires_at` unless present (0 rows affected = replay).
    pub record_jti: &'static str,
    /// Pushed authorization requests.
    pub pushed: OneTimeStatements,
    /// A pushed request by `key` only while unused.
    pub get_unused_pushed: &'static str,
    /// Authorization codes.
    pub code: OneTimeStatements,
    /// `id, kind, grant_id, client_id, subject, issued_at, expires_at, revoked, data`.
    pub put_token: &'static str,
    /// `id`.
    pub get_token: &'static str,
    /// Revokes unrevoked tokens by `id`.
    pub revoke_token: &'static str,
    /// `now, id`: marks an unrevoked refresh token revoked with `rotated_at = now` in its
    /// data (one conditional statement; 1 row = this caller rotated it).
    pub rotate_refresh_token: &'static str,
    /// … by `grant_id`.
    pub revoke_grant: &'static str,
    /// … by `client_id`.
    pub revoke_client_tokens: &'static str,
    /// … by `subject`.
    pub revoke_subject_tokens: &'static str,
    /// Upserts `id, subject, auth_time, expires_at, data`.
    pub put_session: &'static str,
    /// `id, now`: only when `expires_at > now`.
    pub get_session: &'static str,
    /// `id`.
    pub delete_session: &'static str,
    /// `subject`.
    pub delete_subject_sessions: &'static str,
    /// Upserts `subject, client_id, scope, granted_at`.
    pub put_consent: &'static str,
    /// `subject, client_id`.
    pub get_consent: &'static str,
    /// `kid, alg, state, public_jwk, private_encrypted, created_at, state_changed_at`.
    pub insert_key: &'static str,
    /// All keys, oldest first.
    pub list_keys: &'static str,
    /// `state, state_changed_at, kid`.
    pub set_key_state: &'static str,
    /// `kid`.
    pub delete_key: &'static str,
    /// Appends an audit event: `at, event, client_id, subject, data`.
    pub append_audit_event: &'static str,
    /// Audit events of `client_id`, newest first, at most `limit`.
    pub audit_events_by_client: &'static str,
    /// Audit events of `subject`, newest first, at most `limit`.
    pub audit_events_by_subject: &'static str,
    /// All audit events, newest first, at most `limit`.
    pub audit_events_all: &'static str,
    /// Deletes audit events with `at < cutoff`: `cutoff`.
    pub purge_audit_events: &'static str,
    /// Counts one sign-in attempt and returns the new `attempts`: `key, window_ends_at, now,
    /// now` (an upsert; a row whose window ended starts again at 1).
    pub count_login_attempt: &'static str,
    /// Takes one attempt back: `key`.
    pub release_login_attempt: &'static str,
    /// Forgets a key's attempts: `key`.
    pub clear_login_attempts: &'static str,
    /// Each deletes rows with `expires_at <= now` from one table: `now`.
    pub purge: &'static [&'static str],
}

/// What a sqlx backend must provide to host a [`SqlStore`]. Implemented for
/// [`sqlx::Sqlite`] (in [`crate::sqlite`]) and [`sqlx::Postgres`] (in [`crate::postgres`]).
pub trait Backend: sqlx::Database<Row: RowExt> {
    /// The statement table in this dialect.
    const SQL: &'static Statements;
    /// The highest schema version this binary knows.
    const LATEST_MIGRATION: i64;

    /// Runs a statement; returns the rows affected.
    fn execute<'a>(
        pool: &'a Pool<Self>,
        sql: &'static str,
        params: &'a [Param<'a>],
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'a;

    /// Runs a statement returning at most one row.
    fn fetch_optional<'a>(
        pool: &'a Pool<Self>,
        sql: &'static str,
        params: &'a [Param<'a>],
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send + 'a;

    /// Runs a statement returning rows.
    fn fetch_all<'a>(
        pool: &'a Pool<Self>,
        sql: &'static str,
        params: &'a [Param<'a>],
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'a;

    /// Brings the schema up to date, safely against other processes doing the same.
    fn migrate(pool: &Pool<Self>) -> impl Future<Output = StoreResult<()>> + Send + '_;
}

/// Times one statement and records the pool's occupancy (Prometheus, through the `metrics`
/// facade; free when no recorder is installed). Labels: the backend and the statement kind
/// (`select`, `insert`, …), never parameters. Listed in `docs/operations.md`.
pub(crate) async fn observed<DB: sqlx::Database, T>(
    pool: &Pool<DB>,
    sql: &'static str,
    query: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    let kind = statement_kind(sql);
    // A child of the request's span in a trace (DEBUG: created only when an exporter
    // wants it). The SQL text carries no values: they are bound separately.
    let span = tracing::debug_span!(
        "store",
        otel.name = %format_args!("store {kind}"),
        otel.kind = "client",
        db.system.name = %DB::NAME.to_ascii_lowercase(),
        db.operation.name = kind,
        db.query.text = sql,
    );
    let started = std::time::Instant::now();
    let out = tracing::Instrument::instrument(query, span).await;
    metrics::histogram!("strongroom_store_query_duration_seconds", "backend" => DB::NAME, "statement" => kind)
        .record(started.elapsed().as_secs_f64());
    if out.is_err() {
        metrics::counter!("strongroom_store_errors_total", "backend" => DB::NAME, "statement" => kind).increment(1);
    }
    let (size, idle) = (pool.size(), u32::try_from(pool.num_idle()).unwrap_or(u32::MAX));
    metrics::gauge!("strongroom_store_pool_connections", "backend" => DB::NAME, "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!("strongroom_store_pool_connections", "backend" => DB::NAME, "state" => "idle").set(f64::from(idle));
    metrics::gauge!("strongroom_store_pool_max_connections", "backend" => DB::NAME)
        .set(f64::from(pool.options().get_max_connections()));
    out
}

/// The first keyword of a statement, lower-cased, from a fixed set.
fn statement_kind(sql: &str) -> &'static str {
    let first = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    ["select", "insert", "update", "delete", "with"]
        .into_iter()
        .find(|k| first.eq_ignore_ascii_case(k))
        .unwrap_or("other")
}

/// Implements the query part of [`Backend`] inside `impl Backend for $db`, with `$db`'s
/// `bind` function (made by `bind_params!`) in scope.
macro_rules! backend_queries {
    ($db:ty) => {
        fn execute<'a>(
            pool: &'a sqlx::Pool<$db>,
            sql: &'static str,
            params: &'a [$crate::sql_store::Param<'a>],
        ) -> impl std::future::Future<Output = Result<u64, sqlx::Error>> + Send + 'a {
            $crate::sql_store::observed(pool, sql, async move {
                Ok(bind(sqlx::query::<$db>(sql), params).execute(pool).await?.rows_affected())
            })
        }

        fn fetch_optional<'a>(
            pool: &'a sqlx::Pool<$db>,
            sql: &'static str,
            params: &'a [$crate::sql_store::Param<'a>],
        ) -> impl std::future::Future<Output = Result<Option<<$db as sqlx::Database>::Row>, sqlx::Error>> + Send + 'a {
            $crate::sql_store::observed(pool, sql, bind(sqlx::query::<$db>(sql), params).fetch_optional(pool))
        }

        fn fetch_all<'a>(
            pool: &'a sqlx::Pool<$db>,
            sql: &'static str,
            params: &'a [$crate::sql_store::Param<'a>],
        ) -> impl std::future::Future<Output = Result<Vec<<$db as sqlx::Database>::Row>, sqlx::Error>> + Send + 'a {
            $crate::sql_store::observed(pool, sql, bind(sqlx::query::<$db>(sql), params).fetch_all(pool))
        }
    };
}
pub(crate) use backend_queries;

/// Defines `bind` for one sqlx database type; `$flag` turns a `bool` into the value that
/// backend binds for a boolean column.
macro_rules! bind_params {
    ($db:ty, $flag:expr) => {
        /// Binds parameters in order.
        fn bind<'q>(
            mut query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            params: &[$crate::sql_store::Param<'_>],
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
            use $crate::sql_store::Param;
            for param in params {
                query = match param {
                    Param::Text(v) => query.bind(*v),
                    Param::OptText(v) => query.bind(*v),
                    Param::Int(v) => query.bind(*v),
                    Param::Bytes(v) => query.bind(*v),
                    Param::Flag(v) => query.bind($flag(*v)),
                    Param::Json(v) => query.bind(v.as_str()),
                };
            }
            query
        }
    };
}
pub(crate) use bind_params;

/// Typed column access on a backend's row type, with errors mapped to [`StoreError`].
pub trait RowExt: sqlx::Row {
    /// A TEXT column.
    fn text(&self, column: &str) -> StoreResult<String>;
    /// A nullable TEXT column.
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>>;
    /// A BIGINT / INTEGER column.
    fn int(&self, column: &str) -> StoreResult<i64>;
    /// A BLOB / BYTEA column.
    fn bytes(&self, column: &str) -> StoreResult<Vec<u8>>;
    /// A boolean column (INTEGER 0/1 in SQLite, BOOLEAN in PostgreSQL).
    fn flag(&self, column: &str) -> StoreResult<bool>;
    /// A JSON column, selected as text.
    fn json(&self, column: &str) -> StoreResult<serde_json::Value> {
        crate::common::from_json(&self.text(column)?, column)
    }
}

/// A [`Store`] in a SQL database reached through sqlx backend `B`.
#[derive(Debug)]
pub struct SqlStore<B: Backend> {
    pub(crate) pool: Pool<B>,
}

impl<B: Backend> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        SqlStore { pool: self.pool.clone() }
    }
}

/// Which single-use table.
#[derive(Clone, Copy)]
enum OneTime {
    Pushed,
    Code,
}

impl<B: Backend> SqlStore<B> {
    /// Wraps a connected pool and migrates it.
    pub(crate) async fn from_pool(pool: Pool<B>) -> StoreResult<Self> {
        B::migrate(&pool).await?;
        let store = SqlStore { pool };
        let current = store.schema_version().await?;
        if current > B::LATEST_MIGRATION {
            tracing::warn!(current, known = B::LATEST_MIGRATION, "database schema is newer than this binary");
        }
        Ok(store)
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        let row = self.fetch_optional(B::SQL.schema_version, &[]).await?;
        row.map_or(Ok(0), |r| r.int("version"))
    }

    /// Closes the pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn execute(&self, sql: &'static str, params: &[Param<'_>]) -> StoreResult<u64> {
        B::execute(&self.pool, sql, params).await.map_err(db_err)
    }

    async fn fetch_optional(&self, sql: &'static str, params: &[Param<'_>]) -> StoreResult<Option<B::Row>> {
        B::fetch_optional(&self.pool, sql, params).await.map_err(db_err)
    }

    async fn fetch_all(&self, sql: &'static str, params: &[Param<'_>]) -> StoreResult<Vec<B::Row>> {
        B::fetch_all(&self.pool, sql, params).await.map_err(db_err)
    }

    /// Runs a one-row select and decodes the row.
    async fn fetch_record<T>(
        &self,
        sql: &'static str,
        params: &[Param<'_>],
        decode: fn(&B::Row) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.fetch_optional(sql, params).await?.as_ref().map(decode).transpose()
    }

    /// Runs a many-row select and decodes the rows.
    async fn fetch_records<T>(&self, sql: &'static str, decode: fn(&B::Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
        self.fetch_all(sql, &[]).await?.iter().map(decode).collect()
    }

    fn one_time(which: OneTime) -> &'static OneTimeStatements {
        match which {
            OneTime::Pushed => &B::SQL.pushed,
            OneTime::Code => &B::SQL.code,
        }
    }

    async fn insert_one_time(&self, which: OneTime, record: &OneTimeRecord) -> StoreResult<()> {
        let params = [
            Param::Text(&record.key),
            Param::Text(&record.client_id),
            Param::Text(&record.grant_id),
            Param::Int(record.expires_at),
            Param::Json(to_json(&record.data)?),
        ];
        B::execute(&self.pool, Self::one_time(which).put, &params).await.map_err(|e| {
            let what = match which {
                OneTime::Pushed => "pushed request",
                OneTime::Code => "code",
            };
            conflict_or_db(e, &format!("{what} {}", record.key))
        })?;
        Ok(())
    }

    async fn consume_one_time(&self, which: OneTime, key: &str, now: Timestamp) -> StoreResult<Consumed> {
        // One conditional statement: the database serializes it, so exactly one caller
        // flips `used` and gets the row back.
        let sql = Self::one_time(which);
        if let Some(both) = sql.consume_or_get {
            let Some(row) = self.fetch_optional(both, &[Param::Text(key)]).await? else {
                return Ok(Consumed::Unknown);
            };
            let record = one_time_from_row(&row)?;
            let (claimed, existing) = if row.int("fresh")? == 1 { (Some(record), None) } else { (None, Some(record)) };
            return Ok(classify_consume(claimed, existing, now));
        }
        let claimed = self.fetch_record(sql.consume, &[Param::Text(key)], one_time_from_row).await?;
        let existing = match claimed {
            Some(_) => None,
            None => self.fetch_record(sql.get, &[Param::Text(key)], one_time_from_row).await?,
        };
        Ok(classify_consume(claimed, existing, now))
    }
}

#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn ping(&self) -> StoreResult<()> {
        let row = self.fetch_optional(B::SQL.ping, &[]).await?;
        match row.map(|r| r.int("one")).transpose()? {
            Some(1) => Ok(()),
            _ => Err(StoreError::Database("ping returned an unexpected value".into())),
        }
    }

    async fn put_client(&self, client: &ClientRecord) -> StoreResult<()> {
        let params = [
            Param::Text(&client.client_id),
            Param::Json(to_json(&client.metadata)?),
            Param::OptText(client.registration_token_hash.as_deref()),
            Param::Int(client.created_at),
        ];
        self.execute(B::SQL.put_client, &params).await?;
        Ok(())
    }

    async fn insert_client(&self, client: &ClientRecord, exclusive_software_id: Option<&str>) -> StoreResult<()> {
        let params = [
            Param::Text(&client.client_id),
            Param::Json(to_json(&client.metadata)?),
            Param::OptText(client.registration_token_hash.as_deref()),
            Param::Int(client.created_at),
            Param::OptText(exclusive_software_id),
        ];
        B::execute(&self.pool, B::SQL.insert_client, &params).await.map_err(|e| {
            // Both dialects name the violated index in the message.
            let software = e.as_database_error().is_some_and(|d| d.message().contains("exclusive_software_id"));
            match exclusive_software_id {
                Some(id) if software => conflict_or_db(e, &format!("software_id {id}")),
                _ => conflict_or_db(e, &format!("client {}", client.client_id)),
            }
        })?;
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
        self.fetch_record(B::SQL.get_client, &[Param::Text(client_id)], client_from_row).await
    }

    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>> {
        self.fetch_records(B::SQL.list_clients, client_from_row).await
    }

    async fn delete_client(&self, client_id: &str) -> StoreResult<bool> {
        Ok(self.execute(B::SQL.delete_client, &[Param::Text(client_id)]).await? > 0)
    }

    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()> {
        let params = [
            Param::Text(&user.subject),
            Param::Text(&user.username),
            Param::Text(&user.password_hash),
            Param::Json(to_json(&user.claims)?),
            Param::Int(user.created_at),
        ];
        B::execute(&self.pool, B::SQL.insert_user, &params)
            .await
            .map_err(|e| conflict_or_db(e, &format!("user {} / subject {}", user.username, user.subject)))?;
        Ok(())
    }

    async fn update_user(&self, user: &UserRecord) -> StoreResult<bool> {
        let params =
            [Param::Text(&user.password_hash), Param::Json(to_json(&user.claims)?), Param::Text(&user.username)];
        Ok(self.execute(B::SQL.update_user, &params).await? > 0)
    }

    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.fetch_record(B::SQL.get_user_by_username, &[Param::Text(username)], user_from_row).await
    }

    async fn get_user_by_subject(&self, subject: &str) -> StoreResult<Option<UserRecord>> {
        self.fetch_record(B::SQL.get_user_by_subject, &[Param::Text(subject)], user_from_row).await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        self.fetch_records(B::SQL.list_users, user_from_row).await
    }

    async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        Ok(self.execute(B::SQL.delete_user, &[Param::Text(username)]).await? > 0)
    }

    async fn record_jti(&self, namespace: &str, jti: &str, expires_at: Timestamp) -> StoreResult<bool> {
        // An existing row is a replay, expired or not; purge_expired removes old rows.
        let params = [Param::Text(namespace), Param::Text(jti), Param::Int(expires_at)];
        Ok(self.execute(B::SQL.record_jti, &params).await? == 1)
    }

    async fn put_pushed_request(&self, record: &OneTimeRecord) -> StoreResult<()> {
        self.insert_one_time(OneTime::Pushed, record).await
    }

    async fn get_pushed_request(&self, key: &str) -> StoreResult<Option<OneTimeRecord>> {
        self.fetch_record(B::SQL.get_unused_pushed, &[Param::Text(key)], one_time_from_row).await
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
        let params = [
            Param::Text(&token.id),
            Param::Text(token.kind.as_str()),
            Param::Text(&token.grant_id),
            Param::Text(&token.client_id),
            Param::Text(&token.subject),
            Param::Int(token.issued_at),
            Param::Int(token.expires_at),
            Param::Flag(token.revoked),
            Param::Json(to_json(&token.data)?),
        ];
        B::execute(&self.pool, B::SQL.put_token, &params)
            .await
            .map_err(|e| conflict_or_db(e, &format!("token {}", token.id)))?;
        Ok(())
    }

    async fn get_token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        self.fetch_record(B::SQL.get_token, &[Param::Text(id)], token_from_row).await
    }

    async fn revoke_token(&self, id: &str) -> StoreResult<bool> {
        Ok(self.execute(B::SQL.revoke_token, &[Param::Text(id)]).await? > 0)
    }

    async fn rotate_refresh_token(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        // One conditional statement: of concurrent rotations exactly one sees a row change.
        Ok(self.execute(B::SQL.rotate_refresh_token, &[Param::Int(now), Param::Text(id)]).await? == 1)
    }

    async fn revoke_grant(&self, grant_id: &str) -> StoreResult<u64> {
        self.execute(B::SQL.revoke_grant, &[Param::Text(grant_id)]).await
    }

    async fn revoke_client_tokens(&self, client_id: &str) -> StoreResult<u64> {
        self.execute(B::SQL.revoke_client_tokens, &[Param::Text(client_id)]).await
    }

    async fn revoke_subject_tokens(&self, subject: &str) -> StoreResult<u64> {
        self.execute(B::SQL.revoke_subject_tokens, &[Param::Text(subject)]).await
    }

    async fn put_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let params = [
            Param::Text(&session.id),
            Param::Text(&session.subject),
            Param::Int(session.auth_time),
            Param::Int(session.expires_at),
            Param::Json(to_json(&session.data)?),
        ];
        self.execute(B::SQL.put_session, &params).await?;
        Ok(())
    }

    async fn get_session(&self, id: &str, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        self.fetch_record(B::SQL.get_session, &[Param::Text(id), Param::Int(now)], session_from_row).await
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        self.execute(B::SQL.delete_session, &[Param::Text(id)]).await?;
        Ok(())
    }

    async fn delete_subject_sessions(&self, subject: &str) -> StoreResult<u64> {
        self.execute(B::SQL.delete_subject_sessions, &[Param::Text(subject)]).await
    }

    async fn put_consent(&self, consent: &ConsentRecord) -> StoreResult<()> {
        let params = [
            Param::Text(&consent.subject),
            Param::Text(&consent.client_id),
            Param::Text(&consent.scope),
            Param::Int(consent.granted_at),
        ];
        self.execute(B::SQL.put_consent, &params).await?;
        Ok(())
    }

    async fn get_consent(&self, subject: &str, client_id: &str) -> StoreResult<Option<ConsentRecord>> {
        let params = [Param::Text(subject), Param::Text(client_id)];
        self.fetch_record(B::SQL.get_consent, &params, consent_from_row).await
    }

    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<()> {
        let params = [
            Param::Text(&key.kid),
            Param::Text(&key.alg),
            Param::Text(key.state.as_str()),
            Param::Json(to_json(&key.public_jwk)?),
            Param::Bytes(&key.private_encrypted),
            Param::Int(key.created_at),
            Param::Int(key.state_changed_at),
        ];
        B::execute(&self.pool, B::SQL.insert_key, &params)
            .await
            .map_err(|e| conflict_or_db(e, &format!("key {}", key.kid)))?;
        Ok(())
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        self.fetch_records(B::SQL.list_keys, key_from_row).await
    }

    async fn set_key_state(&self, kid: &str, state: KeyState, at: Timestamp) -> StoreResult<bool> {
        let params = [Param::Text(state.as_str()), Param::Int(at), Param::Text(kid)];
        Ok(self.execute(B::SQL.set_key_state, &params).await? > 0)
    }

    async fn delete_key(&self, kid: &str) -> StoreResult<bool> {
        Ok(self.execute(B::SQL.delete_key, &[Param::Text(kid)]).await? > 0)
    }

    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64> {
        let mut removed = 0;
        for sql in B::SQL.purge {
            removed += self.execute(sql, &[Param::Int(now)]).await?;
        }
        Ok(removed)
    }

    async fn append_audit_event(&self, event: &AuditRecord) -> StoreResult<()> {
        let params = [
            Param::Int(event.at),
            Param::Text(&event.event),
            Param::OptText(event.client_id.as_deref()),
            Param::OptText(event.subject.as_deref()),
            Param::Json(to_json(&event.data)?),
        ];
        self.execute(B::SQL.append_audit_event, &params).await?;
        Ok(())
    }

    async fn audit_events(&self, filter: AuditFilter<'_>, limit: u32) -> StoreResult<Vec<AuditRecord>> {
        let limit = Param::Int(i64::from(limit));
        let rows = match filter {
            AuditFilter::Client(id) => self.fetch_all(B::SQL.audit_events_by_client, &[Param::Text(id), limit]).await?,
            AuditFilter::Subject(s) => self.fetch_all(B::SQL.audit_events_by_subject, &[Param::Text(s), limit]).await?,
            AuditFilter::All => self.fetch_all(B::SQL.audit_events_all, &[limit]).await?,
        };
        rows.iter().map(audit_from_row).collect()
    }

    async fn purge_audit_events(&self, before: Timestamp) -> StoreResult<u64> {
        self.execute(B::SQL.purge_audit_events, &[Param::Int(before)]).await
    }

    async fn count_login_attempt(&self, key: &str, now: Timestamp, window_ends_at: Timestamp) -> StoreResult<u64> {
        // One upsert returning the new count: the database serializes concurrent attempts,
        // so no two callers see the same count.
        let params = [Param::Text(key), Param::Int(window_ends_at), Param::Int(now), Param::Int(now)];
        let row = self.fetch_optional(B::SQL.count_login_attempt, &params).await?;
        let attempts = row.ok_or_else(|| StoreError::Database("login attempt upsert returned no row".into()))?;
        Ok(u64::try_from(attempts.int("attempts")?).unwrap_or(0))
    }

    async fn release_login_attempt(&self, key: &str) -> StoreResult<()> {
        self.execute(B::SQL.release_login_attempt, &[Param::Text(key)]).await?;
        Ok(())
    }

    async fn clear_login_attempts(&self, key: &str) -> StoreResult<()> {
        self.execute(B::SQL.clear_login_attempts, &[Param::Text(key)]).await?;
        Ok(())
    }
}
