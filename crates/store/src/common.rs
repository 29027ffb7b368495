//! Pieces both backends share: the migration list type, error mapping, JSON columns,
//! row decoding and the classification of a consume attempt.

use crate::sql_store::RowExt;
use crate::{
    AuditRecord, ClientRecord, ConsentRecord, Consumed, KeyRecord, KeyState, OneTimeRecord, SessionRecord, StoreError,
    StoreResult, Timestamp, TokenKind, TokenRecord, UserRecord,
};
use sqlx::Row;

/// One schema migration: applied once, in `version` order, inside a transaction, and
/// recorded in `schema_migrations`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Monotonic version number (the file's numeric prefix).
    pub version: i64,
    /// Short description (the file's name).
    pub description: &'static str,
    /// The SQL, possibly several statements.
    pub sql: &'static str,
}

/// The highest version in a migration list (0 when empty).
pub(crate) const fn latest_version(migrations: &[Migration]) -> i64 {
    let mut latest = 0;
    let mut i = 0;
    while i < migrations.len() {
        if migrations[i].version > latest {
            latest = migrations[i].version;
        }
        i += 1;
    }
    latest
}

/// Seconds since the Unix epoch, for `schema_migrations.applied_at` only (store
/// operations take their time from the caller).
pub(crate) fn wall_clock() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Maps any sqlx error to [`StoreError::Database`].
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Maps a unique-key violation to [`StoreError::Conflict`] (with `what` as the
/// message) and anything else to [`StoreError::Database`].
pub(crate) fn conflict_or_db(e: sqlx::Error, what: &str) -> StoreError {
    let unique = e.as_database_error().is_some_and(|d| d.is_unique_violation());
    if unique { StoreError::Conflict(what.to_owned()) } else { db_err(e) }
}

/// Serializes a JSON column.
pub(crate) fn to_json(value: &serde_json::Value) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("json: {e}")))
}

/// Parses a JSON column.
pub(crate) fn from_json(text: &str, column: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn column_err(column: &str, e: sqlx::Error) -> StoreError {
    StoreError::Corrupt(format!("column {column}: {e}"))
}

macro_rules! impl_row_ext {
    ($row:ty, |$r:ident, $c:ident| $flag:expr) => {
        impl RowExt for $row {
            fn text(&self, column: &str) -> StoreResult<String> {
                self.try_get(column).map_err(|e| column_err(column, e))
            }
            fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
                self.try_get(column).map_err(|e| column_err(column, e))
            }
            fn int(&self, column: &str) -> StoreResult<i64> {
                self.try_get(column).map_err(|e| column_err(column, e))
            }
            fn bytes(&self, column: &str) -> StoreResult<Vec<u8>> {
                self.try_get(column).map_err(|e| column_err(column, e))
            }
            fn flag(&self, column: &str) -> StoreResult<bool> {
                let $r = self;
                let $c = column;
                $flag
            }
        }
    };
}

impl_row_ext!(sqlx::sqlite::SqliteRow, |r, c| r.try_get::<i64, _>(c).map(|v| v != 0).map_err(|e| column_err(c, e)));
impl_row_ext!(sqlx::postgres::PgRow, |r, c| r.try_get::<bool, _>(c).map_err(|e| column_err(c, e)));

/// Decodes `client_id, metadata, registration_token_hash, created_at`.
pub(crate) fn client_from_row<R: RowExt>(row: &R) -> StoreResult<ClientRecord> {
    Ok(ClientRecord {
        client_id: row.text("client_id")?,
        metadata: row.json("metadata")?,
        registration_token_hash: row.opt_text("registration_token_hash")?,
        created_at: row.int("created_at")?,
    })
}

/// Decodes `subject, username, password_hash, claims, created_at`.
pub(crate) fn user_from_row<R: RowExt>(row: &R) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        subject: row.text("subject")?,
        username: row.text("username")?,
        password_hash: row.text("password_hash")?,
        claims: row.json("claims")?,
        created_at: row.int("created_at")?,
    })
}

/// Decodes `key, client_id, grant_id, expires_at, data`.
pub(crate) fn one_time_from_row<R: RowExt>(row: &R) -> StoreResult<OneTimeRecord> {
    Ok(OneTimeRecord {
        key: row.text("key")?,
        client_id: row.text("client_id")?,
        grant_id: row.text("grant_id")?,
        expires_at: row.int("expires_at")?,
        data: row.json("data")?,
    })
}

/// Decodes a `tokens` row.
pub(crate) fn token_from_row<R: RowExt>(row: &R) -> StoreResult<TokenRecord> {
    let kind = row.text("kind")?;
    Ok(TokenRecord {
        id: row.text("id")?,
        kind: TokenKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("token kind {kind:?}")))?,
        grant_id: row.text("grant_id")?,
        client_id: row.text("client_id")?,
        subject: row.text("subject")?,
        issued_at: row.int("issued_at")?,
        expires_at: row.int("expires_at")?,
        revoked: row.flag("revoked")?,
        data: row.json("data")?,
    })
}

/// Decodes a `sessions` row.
pub(crate) fn session_from_row<R: RowExt>(row: &R) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: row.text("id")?,
        subject: row.text("subject")?,
        auth_time: row.int("auth_time")?,
        expires_at: row.int("expires_at")?,
        data: row.json("data")?,
    })
}

/// Decodes a `consents` row.
pub(crate) fn consent_from_row<R: RowExt>(row: &R) -> StoreResult<ConsentRecord> {
    Ok(ConsentRecord {
        subject: row.text("subject")?,
        client_id: row.text("client_id")?,
        scope: row.text("scope")?,
        granted_at: row.int("granted_at")?,
    })
}

/// Decodes a `signing_keys` row.
pub(crate) fn key_from_row<R: RowExt>(row: &R) -> StoreResult<KeyRecord> {
    let state = row.text("state")?;
    Ok(KeyRecord {
        kid: row.text("kid")?,
        alg: row.text("alg")?,
        state: KeyState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("key state {state:?}")))?,
        public_jwk: row.json("public_jwk")?,
        private_encrypted: row.bytes("private_encrypted")?,
        created_at: row.int("created_at")?,
        state_changed_at: row.int("state_changed_at")?,
    })
}

/// Decodes an `audit_events` row.
pub(crate) fn audit_from_row<R: RowExt>(row: &R) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        at: row.int("at")?,
        event: row.text("event")?,
        client_id: row.opt_text("client_id")?,
        subject: row.opt_text("subject")?,
        data: row.json("data")?,
    })
}

/// Classifies a consume attempt.
///
/// `claimed` is the record returned by the conditional `UPDATE … SET used = … WHERE
/// used = false RETURNING …` (this call flipped the flag, so no other call ever will);
/// `existing` is read only when `claimed` is `None`, to tell a reuse from an unknown key.
/// A claimed record past its expiry is `Expired` (and stays marked used).
pub(crate) fn classify_consume(
    claimed: Option<OneTimeRecord>,
    existing: Option<OneTimeRecord>,
    now: Timestamp,
) -> Consumed {
    match (claimed, existing) {
        (Some(record), _) if record.expires_at <= now => Consumed::Expired,
        (Some(record), _) => Consumed::Fresh(record),
        (None, Some(record)) => Consumed::AlreadyUsed(record),
        (None, None) => Consumed::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(expires_at: Timestamp) -> OneTimeRecord {
        OneTimeRecord {
            key: "k".into(),
            client_id: "c".into(),
            grant_id: "g".into(),
            expires_at,
            data: serde_json::json!({}),
        }
    }

    #[test]
    fn classify_fresh_expired_used_unknown() {
        assert_eq!(classify_consume(Some(rec(11)), None, 10), Consumed::Fresh(rec(11)));
        assert_eq!(classify_consume(Some(rec(10)), None, 10), Consumed::Expired);
        assert_eq!(classify_consume(None, Some(rec(5)), 10), Consumed::AlreadyUsed(rec(5)));
        assert_eq!(classify_consume(None, None, 10), Consumed::Unknown);
    }

    #[test]
    fn latest_version_of_empty_list_is_zero() {
        assert_eq!(latest_version(&[]), 0);
    }
}
