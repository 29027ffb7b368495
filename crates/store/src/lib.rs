//! Strongroom's storage: one async [`Store`] trait and one implementation of it,
//! [`SqlStore<B>`](sql_store::SqlStore), generic over the sqlx backend: an embedded SQLite
//! database ([`sqlite::SqliteStore`], the default) or PostgreSQL ([`postgres::PgStore`],
//! for several nodes sharing one state). Each backend contributes only its statement
//! table, its connection settings and its migration routine.
//!
//! Records carry the columns the store must index or act on atomically (ids, owners,
//! expiry, state); everything else travels in a JSON `data` column that the protocol
//! layer owns. Single-use things (codes, request URIs, assertion and DPoP `jti`s) are
//! consumed by one conditional statement in the database, so two nodes can never both
//! accept the same one.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod common;
pub mod postgres;
pub mod sql_store;
pub mod sqlite;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Unix time in seconds, as every timestamp in the store.
pub type Timestamp = i64;

/// A failure of the storage layer. Never shown to a client: the HTTP layer maps it to
/// `server_error` / `temporarily_unavailable` and logs the detail.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(String),
    /// A record with this key already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// Stored data could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// A registered client. `metadata` is the full client metadata JSON (RFC 7591 plus our
/// `profile`), validated by the protocol layer before it reaches the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The `client_id`.
    pub client_id: String,
    /// Client metadata JSON.
    pub metadata: serde_json::Value,
    /// SHA-256 (base64url) of the RFC 7592 registration access token, if registered by DCR.
    pub registration_token_hash: Option<String>,
    /// When the client was created.
    pub created_at: Timestamp,
}

/// An end user who can sign in on the login page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Stable subject identifier (`sub`).
    pub subject: String,
    /// Login name, unique.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Profile claims (`name`, `email`, …) as a JSON object.
    pub claims: serde_json::Value,
    /// When the user was created.
    pub created_at: Timestamp,
}

/// A single-use record with an expiry: a pushed authorization request (keyed by its
/// `request_uri`) or an authorization code (keyed by a hash of the code).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneTimeRecord {
    /// The key: the request URI, or the SHA-256 of the code.
    pub key: String,
    /// The client the record is bound to.
    pub client_id: String,
    /// The grant this record belongs to (codes only; empty for pushed requests).
    pub grant_id: String,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Protocol-owned JSON.
    pub data: serde_json::Value,
}

/// What happened when a client tried to consume a one-time record.
#[derive(Debug, Clone, PartialEq)]
pub enum Consumed {
    /// This call consumed it; nobody else ever will.
    Fresh(OneTimeRecord),
    /// It had been consumed before (the record is returned so its grant can be revoked).
    AlreadyUsed(OneTimeRecord),
    /// It expired before this call.
    Expired,
    /// No such record.
    Unknown,
}

/// Kind of an issued token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// An access token (recorded by its `jti`).
    Access,
    /// A refresh token (recorded by a hash of its value).
    Refresh,
}

impl TokenKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

/// An issued token, so revocation and introspection work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Access token `jti`, or SHA-256 of the refresh token value.
    pub id: String,
    /// Access or refresh.
    pub kind: TokenKind,
    /// The grant it was issued from; revoking the grant ends all its tokens.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user (`sub`), or the client id for `client_credentials`.
    pub subject: String,
    /// Issue time.
    pub issued_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Whether it has been revoked.
    pub revoked: bool,
    /// Protocol-owned JSON (scope, `cnf`, claims…).
    pub data: serde_json::Value,
}

/// A browser session after a successful login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// SHA-256 of the session cookie value.
    pub id: String,
    /// The signed-in user.
    pub subject: String,
    /// When the user authenticated (`auth_time`).
    pub auth_time: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Protocol-owned JSON (acr, amr…).
    pub data: serde_json::Value,
}

/// State of a signing key in its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published, not yet used to sign.
    Next,
    /// Published and used to sign.
    Active,
    /// Published until its overlap ends, never used to sign.
    Retired,
}

impl KeyState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "next" => Some(KeyState::Next),
            "active" => Some(KeyState::Active),
            "retired" => Some(KeyState::Retired),
            _ => None,
        }
    }
}

/// A server signing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Key id.
    pub kid: String,
    /// JWS algorithm (`ES256`, `PS256`, `EdDSA`).
    pub alg: String,
    /// Rotation state.
    pub state: KeyState,
    /// Public JWK JSON.
    pub public_jwk: serde_json::Value,
    /// Private key (PKCS#8 DER) encrypted with the key-encryption key.
    pub private_encrypted: Vec<u8>,
    /// Creation time.
    pub created_at: Timestamp,
    /// When the state last changed.
    pub state_changed_at: Timestamp,
}

/// Remembered consent of a user for a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// The user.
    pub subject: String,
    /// The client.
    pub client_id: String,
    /// Space-separated scopes consented to.
    pub scope: String,
    /// When it was given.
    pub granted_at: Timestamp,
}

/// One audit log entry as stored (issue 13). The server builds it from its typed audit
/// event, which is what keeps secrets out; the store only indexes `client_id` and
/// `subject` and keeps `data` (the whole event) as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it happened.
    pub at: Timestamp,
    /// The event name (`login_failed`, `token_issued`, …).
    pub event: String,
    /// The client it concerns, if any.
    pub client_id: Option<String>,
    /// The user it concerns, if any.
    pub subject: Option<String>,
    /// The full event as JSON.
    pub data: serde_json::Value,
}

/// Which audit events to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFilter<'a> {
    /// Events concerning this client.
    Client(&'a str),
    /// Events concerning this user (`sub`).
    Subject(&'a str),
    /// Every event.
    All,
}

/// Everything Strongroom keeps. Both backends pass the same test suite
/// (`tests/store_suite.rs` in this crate).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// Inserts or replaces a client.
    async fn put_client(&self, client: &ClientRecord) -> StoreResult<()>;
    /// Inserts a new client; `Conflict` when the `client_id` is taken, or when
    /// `exclusive_software_id` is given and another client holds it (issue 12: atomic in the
    /// database, so of two concurrent registrations of one software exactly one succeeds).
    /// The message of a software conflict starts with `software_id`.
    async fn insert_client(&self, client: &ClientRecord, exclusive_software_id: Option<&str>) -> StoreResult<()>;
    /// Looks a client up.
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<ClientRecord>>;
    /// All clients, ordered by `client_id`.
    async fn list_clients(&self) -> StoreResult<Vec<ClientRecord>>;
    /// Removes a client; true when it existed.
    async fn delete_client(&self, client_id: &str) -> StoreResult<bool>;

    /// Inserts a user; `Conflict` when the username or subject is taken.
    async fn insert_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Replaces a user's password hash and claims (matched by username); true when found.
    async fn update_user(&self, user: &UserRecord) -> StoreResult<bool>;
    /// Looks a user up by login name.
    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Looks a user up by subject.
    async fn get_user_by_subject(&self, subject: &str) -> StoreResult<Option<UserRecord>>;
    /// All users, ordered by username.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Removes a user; true when it existed.
    async fn delete_user(&self, username: &str) -> StoreResult<bool>;

    /// Records a `jti` in a namespace (`assertion:<client>`, `dpop`, …) until
    /// `expires_at`. Returns true when it was new, false when it had been seen (a replay).
    /// Atomic: of two concurrent calls with the same jti exactly one gets true.
    async fn record_jti(&self, namespace: &str, jti: &str, expires_at: Timestamp) -> StoreResult<bool>;

    /// Stores a pushed authorization request.
    async fn put_pushed_request(&self, record: &OneTimeRecord) -> StoreResult<()>;
    /// Reads a pushed request that has not been consumed yet, without consuming it (the
    /// login page may load twice).
    async fn get_pushed_request(&self, key: &str) -> StoreResult<Option<OneTimeRecord>>;
    /// Consumes a pushed request atomically at decision time.
    async fn consume_pushed_request(&self, key: &str, now: Timestamp) -> StoreResult<Consumed>;

    /// Stores an authorization code (keyed by its hash).
    async fn put_code(&self, record: &OneTimeRecord) -> StoreResult<()>;
    /// Consumes a code atomically.
    async fn consume_code(&self, key: &str, now: Timestamp) -> StoreResult<Consumed>;

    /// Records an issued token.
    async fn put_token(&self, token: &TokenRecord) -> StoreResult<()>;
    /// Looks a token up by id.
    async fn get_token(&self, id: &str) -> StoreResult<Option<TokenRecord>>;
    /// Revokes one token; true when it existed and was not yet revoked.
    async fn revoke_token(&self, id: &str) -> StoreResult<bool>;
    /// Rotates a refresh token away: revokes it and records `rotated_at = now` in its data,
    /// only if it is an unrevoked refresh token. True when this call did it. Atomic: of
    /// concurrent calls with the same id exactly one gets true (RFC 9700 §4.14.2).
    async fn rotate_refresh_token(&self, id: &str, now: Timestamp) -> StoreResult<bool>;
    /// Revokes every token of a grant; returns how many were newly revoked.
    async fn revoke_grant(&self, grant_id: &str) -> StoreResult<u64>;
    /// Revokes every token issued to a client; returns how many.
    async fn revoke_client_tokens(&self, client_id: &str) -> StoreResult<u64>;
    /// Revokes every token of a user; returns how many.
    async fn revoke_subject_tokens(&self, subject: &str) -> StoreResult<u64>;

    /// Stores a browser session.
    async fn put_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// Looks a session up (expired sessions are not returned).
    async fn get_session(&self, id: &str, now: Timestamp) -> StoreResult<Option<SessionRecord>>;
    /// Ends a session.
    async fn delete_session(&self, id: &str) -> StoreResult<()>;
    /// Ends every session of a subject (e.g. after a password change); returns how many.
    async fn delete_subject_sessions(&self, subject: &str) -> StoreResult<u64>;

    /// Inserts or replaces remembered consent.
    async fn put_consent(&self, consent: &ConsentRecord) -> StoreResult<()>;
    /// Looks remembered consent up.
    async fn get_consent(&self, subject: &str, client_id: &str) -> StoreResult<Option<ConsentRecord>>;

    /// Inserts a signing key.
    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<()>;
    /// All signing keys, oldest first.
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// Changes a key's state; true when found.
    async fn set_key_state(&self, kid: &str, state: KeyState, at: Timestamp) -> StoreResult<bool>;
    /// Deletes a key; true when found.
    async fn delete_key(&self, kid: &str) -> StoreResult<bool>;

    /// Deletes expired one-time records, jtis, sessions and tokens; returns rows removed.
    async fn purge_expired(&self, now: Timestamp) -> StoreResult<u64>;

    /// Appends one audit event.
    async fn append_audit_event(&self, event: &AuditRecord) -> StoreResult<()>;
    /// Audit events matching `filter`, newest first (in append order), at most `limit`.
    async fn audit_events(&self, filter: AuditFilter<'_>, limit: u32) -> StoreResult<Vec<AuditRecord>>;
    /// Deletes audit events older than `before` (retention); returns how many.
    async fn purge_audit_events(&self, before: Timestamp) -> StoreResult<u64>;

    /// Counts one sign-in attempt for `key` (a username or a client address) and returns
    /// the count in its current window, this attempt included. A window opens with the
    /// first attempt after the previous window ended and lasts until the `window_ends_at`
    /// given then (issue 10). Atomic: of N concurrent calls each gets a different count, so
    /// a limit checked on the result cannot be raced; `purge_expired` removes ended windows.
    async fn count_login_attempt(&self, key: &str, now: Timestamp, window_ends_at: Timestamp) -> StoreResult<u64>;
    /// Takes one counted attempt back (never below zero).
    async fn release_login_attempt(&self, key: &str) -> StoreResult<()>;
    /// Forgets every attempt counted for `key`.
    async fn clear_login_attempts(&self, key: &str) -> StoreResult<()>;
}

/// A shared handle to whichever store the configuration chose.
pub type SharedStore = Arc<dyn Store>;

/// Opens the store named by a database URL: `sqlite://path` (created if missing) or
/// `postgres://…`. Runs migrations.
pub async fn open(url: &str) -> StoreResult<SharedStore> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStore::open(url).await?))
    } else {
        Err(StoreError::Database("database URL must start with sqlite:// or postgres://".into()))
    }
}
