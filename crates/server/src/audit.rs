//! The audit log (issue 13): one structured JSON event per security-relevant act, written
//! to the sinks `[audit]` names (the store, stdout, a file) and queryable by the admin API.
//!
//! An [`AuditEvent`] can only be built from typed parts: ids (client, subject, grant, key),
//! a [`GrantType`], a profile, a validated scope and `detail` entries whose keys and string
//! values are `&'static str` — so no request string, token, code, secret, password or
//! assertion can end up in it by accident. The IP and `x-fapi-interaction-id` of the request
//! being served are added by [`AuditLog::record`] from a task-local set by the HTTP layer.
//!
//! Failure policy: writing an event never fails the user's request. A sink that fails logs
//! an error (`audit event lost`, with the event name and the sink) and counts
//! `strongroom_audit_write_failures_total{sink}`; the other sinks are still written.

use crate::config::{AuditConfig, AuditSink};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Write;
use std::net::IpAddr;
use std::sync::Mutex;
use strongroom_protocol::client::GrantType;
use strongroom_store::{AuditRecord, SharedStore};

/// What happened. The names are the `event` values in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A user signed in on the login page.
    LoginSucceeded,
    /// A sign-in was refused (unknown user or wrong password).
    LoginFailed,
    /// A sign-in was refused because too many had failed for the username.
    LoginThrottled,
    /// The user approved the client's request.
    ConsentGiven,
    /// The user refused the client's request.
    ConsentDenied,
    /// An authorization code was issued.
    CodeIssued,
    /// An authorization code was exchanged.
    CodeRedeemed,
    /// An authorization code was presented a second time; its grant was revoked.
    CodeReplayed,
    /// Tokens were issued at the token endpoint (code exchange or client credentials).
    TokenIssued,
    /// Tokens were issued for a refresh token.
    TokenRefreshed,
    /// A token was revoked by its client (RFC 7009).
    TokenRevoked,
    /// A rotated refresh token was presented again; its grant was revoked.
    RefreshReuseDetected,
    /// A client was registered (dynamic registration or admin).
    ClientRegistered,
    /// A client's metadata was changed.
    ClientUpdated,
    /// A client was deleted.
    ClientDeleted,
    /// Any other change made through the admin API (users, revocation).
    AdminAction,
    /// The signing keys were rotated (admin, CLI or automatic rotation).
    KeysRotated,
}

impl AuditKind {
    /// The snake_case name, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginSucceeded => "login_succeeded",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::LoginThrottled => "login_throttled",
            AuditKind::ConsentGiven => "consent_given",
            AuditKind::ConsentDenied => "consent_denied",
            AuditKind::CodeIssued => "code_issued",
            AuditKind::CodeRedeemed => "code_redeemed",
            AuditKind::CodeReplayed => "code_replayed",
            AuditKind::TokenIssued => "token_issued",
            AuditKind::TokenRefreshed => "token_refreshed",
            AuditKind::TokenRevoked => "token_revoked",
            AuditKind::RefreshReuseDetected => "refresh_reuse_detected",
            AuditKind::ClientRegistered => "client_registered",
            AuditKind::ClientUpdated => "client_updated",
            AuditKind::ClientDeleted => "client_deleted",
            AuditKind::AdminAction => "admin_action",
            AuditKind::KeysRotated => "keys_rotated",
        }
    }
}

/// A value in an event's `detail`: fixed words, numbers, flags and key ids only.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// A word from the server's own vocabulary (a reason, an action name, a source).
    Word(&'static str),
    /// A count.
    Count(u64),
    /// A flag.
    Flag(bool),
    /// Signing key ids (public).
    Kids(Vec<String>),
}

impl From<&'static str> for Detail {
    fn from(v: &'static str) -> Self {
        Detail::Word(v)
    }
}
impl From<u64> for Detail {
    fn from(v: u64) -> Self {
        Detail::Count(v)
    }
}
impl From<bool> for Detail {
    fn from(v: bool) -> Self {
        Detail::Flag(v)
    }
}

impl Detail {
    fn to_json(&self) -> Value {
        match self {
            Detail::Word(w) => Value::from(*w),
            Detail::Count(n) => Value::from(*n),
            Detail::Flag(b) => Value::from(*b),
            Detail::Kids(k) => Value::from(k.clone()),
        }
    }
}

/// One audit event, as written to every sink and returned by `GET /admin/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unix time in seconds.
    pub at: i64,
    /// What happened.
    pub event: AuditKind,
    /// The client concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user concerned (`sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The grant type at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    /// The client's profile (`fapi2-security`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The grant (authorization) the tokens belong to: a server-chosen id, not a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// Scope granted or requested (scope tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client's address: the TCP peer, or behind a trusted proxy the address it forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// The request's `x-fapi-interaction-id` (echoed or created by the server).
    #[serde(default, rename = "x-fapi-interaction-id", skip_serializing_if = "Option::is_none")]
    pub interaction_id: Option<String>,
    /// Small event-specific facts.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub detail: Map<String, Value>,
}

impl AuditEvent {
    /// A new event of `kind`, stamped with the current time.
    pub fn new(kind: AuditKind) -> Self {
        AuditEvent {
            at: crate::state::now(),
            event: kind,
            client_id: None,
            subject: None,
            grant_type: None,
            profile: None,
            grant_id: None,
            scope: None,
            ip: None,
            interaction_id: None,
            detail: Map::new(),
        }
    }

    /// The client, with its profile.
    pub fn client(self, client: &strongroom_protocol::client::Client) -> Self {
        self.client_id(&client.client_id).profile(client.profile.as_str())
    }

    /// The client by id (when no validated client is at hand, e.g. a deletion).
    pub fn client_id(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    /// The user's subject identifier.
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    /// The grant type.
    pub fn grant_type(mut self, grant: GrantType) -> Self {
        self.grant_type = Some(grant.as_str().to_owned());
        self
    }

    /// The profile name.
    pub fn profile(mut self, profile: &'static str) -> Self {
        self.profile = Some(profile.to_owned());
        self
    }

    /// The grant id (server-generated, not a bearer value).
    pub fn grant_id(mut self, grant_id: &str) -> Self {
        self.grant_id = Some(grant_id.to_owned());
        self
    }

    /// A scope; kept only when it is a list of RFC 6749 §3.3 scope tokens.
    pub fn scope(mut self, scope: &str) -> Self {
        let is_scope = scope.split(' ').all(strongroom_protocol::client_rules::is_scope_token);
        if is_scope && scope.len() <= 1024 {
            self.scope = Some(scope.to_owned());
        }
        self
    }

    /// One `detail` entry.
    pub fn detail(mut self, key: &'static str, value: impl Into<Detail>) -> Self {
        self.detail.insert(key.to_owned(), value.into().to_json());
        self
    }

    fn to_record(&self) -> Result<AuditRecord, serde_json::Error> {
        Ok(AuditRecord {
            at: self.at,
            event: self.event.as_str().to_owned(),
            client_id: self.client_id.clone(),
            subject: self.subject.clone(),
            data: serde_json::to_value(self)?,
        })
    }
}

/// What the HTTP layer knows about the request being served, for the events it causes.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The client's address ([`crate::tls::ConnectionInfo::client_ip`]).
    pub ip: Option<IpAddr>,
    /// `x-fapi-interaction-id`.
    pub interaction_id: Option<String>,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// Runs a request's handling with its context visible to [`AuditLog::record`].
pub async fn in_request<F: std::future::Future>(context: RequestContext, f: F) -> F::Output {
    REQUEST.scope(context, f).await
}

/// The configured sinks.
pub struct AuditLog {
    store: Option<SharedStore>,
    stdout: bool,
    file: Option<(std::path::PathBuf, Mutex<std::fs::File>)>,
}

impl AuditLog {
    /// Opens the sinks `[audit]` names (the file in append mode, created if missing).
    pub fn open(config: &AuditConfig, store: SharedStore) -> anyhow::Result<AuditLog> {
        let file = match (config.sinks.contains(&AuditSink::File), &config.file) {
            (true, Some(path)) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| anyhow::anyhow!("audit.file: cannot open {}: {e}", path.display()))?;
                Some((path.clone(), Mutex::new(f)))
            }
            (true, None) => anyhow::bail!("audit.file: required when audit.sinks lists \"file\""),
            (false, _) => None,
        };
        Ok(AuditLog {
            store: config.sinks.contains(&AuditSink::Store).then_some(store),
            stdout: config.sinks.contains(&AuditSink::Stdout),
            file,
        })
    }

    /// Writes one event to every sink, adding the current request's IP and interaction id.
    /// Never fails: a sink that cannot be written logs an error and counts a failure.
    pub async fn record(&self, mut event: AuditEvent) {
        if let Ok(ctx) = REQUEST.try_with(Clone::clone) {
            event.ip = event.ip.or(ctx.ip);
            event.interaction_id = event.interaction_id.or(ctx.interaction_id);
        }
        let name = event.event.as_str();
        let record = match event.to_record() {
            Ok(r) => r,
            Err(e) => return lost(name, "all", &e),
        };
        if self.stdout || self.file.is_some() {
            let mut line = record.data.to_string();
            line.push('\n');
            if self.stdout {
                let mut out = std::io::stdout().lock();
                if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
                    lost(name, "stdout", &e);
                }
            }
            if let Some((path, file)) = &self.file {
                let written = match file.lock() {
                    Ok(mut f) => f.write_all(line.as_bytes()).and_then(|()| f.flush()),
                    Err(_) => Err(std::io::Error::other("file lock poisoned")),
                };
                if let Err(e) = written {
                    lost(name, "file", &format!("{}: {e}", path.display()));
                }
            }
        }
        if let Some(store) = &self.store
            && let Err(e) = store.append_audit_event(&record).await
        {
            lost(name, "store", &e);
        }
    }
}

/// Who made an administrative change: `detail.by` of its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// The admin API (`/admin`).
    AdminApi,
    /// The `strongroom` command line.
    Cli,
}

impl Operator {
    /// The `by` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::AdminApi => "admin",
            Operator::Cli => "cli",
        }
    }
}

/// An administrative change. The admin API and the CLI both describe what they did with
/// it and record it with [`AuditLog::admin_change`], so the same change leaves the same
/// event whichever way it was made.
#[derive(Debug, Clone, Copy)]
pub enum AdminChange<'a> {
    /// A client was added.
    ClientAdded {
        /// The new client.
        client_id: &'a str,
    },
    /// A client's metadata was replaced.
    ClientUpdated {
        /// The client.
        client_id: &'a str,
    },
    /// A client was removed (and its tokens revoked).
    ClientRemoved {
        /// The removed client.
        client_id: &'a str,
    },
    /// A user was added.
    UserAdded {
        /// The new user's `sub`.
        subject: &'a str,
    },
    /// A user was removed (tokens revoked, sessions ended).
    UserRemoved {
        /// The removed user's `sub`.
        subject: &'a str,
    },
    /// A user's password was set (sessions ended).
    PasswordSet {
        /// The user's `sub`.
        subject: &'a str,
    },
    /// Every token of a client or of a user was revoked.
    GrantsRevoked {
        /// Whose.
        target: &'a crate::service::RevokeTarget,
        /// How many tokens.
        revoked: u64,
    },
    /// The signing keys were rotated.
    KeysRotated {
        /// The kids now active.
        active: &'a [String],
    },
}

impl AdminChange<'_> {
    /// The event that records this change made by `by`.
    pub fn event(&self, by: Operator) -> AuditEvent {
        let user_action = |action: &'static str, subject: &str| {
            AuditEvent::new(AuditKind::AdminAction).detail("action", action).subject(subject)
        };
        let event = match *self {
            AdminChange::ClientAdded { client_id } => AuditEvent::new(AuditKind::ClientRegistered).client_id(client_id),
            AdminChange::ClientUpdated { client_id } => AuditEvent::new(AuditKind::ClientUpdated).client_id(client_id),
            AdminChange::ClientRemoved { client_id } => AuditEvent::new(AuditKind::ClientDeleted).client_id(client_id),
            AdminChange::UserAdded { subject } => user_action("user_created", subject),
            AdminChange::UserRemoved { subject } => user_action("user_deleted", subject),
            AdminChange::PasswordSet { subject } => user_action("password_set", subject),
            AdminChange::GrantsRevoked { target, revoked } => {
                let event = AuditEvent::new(AuditKind::AdminAction).detail("action", "grants_revoked");
                let event = match target {
                    crate::service::RevokeTarget::Client(c) => event.client_id(c),
                    crate::service::RevokeTarget::Subject(s) => event.subject(s),
                };
                event.detail("revoked_tokens", revoked)
            }
            AdminChange::KeysRotated { active } => {
                AuditEvent::new(AuditKind::KeysRotated).detail("active", Detail::Kids(active.to_vec()))
            }
        };
        event.detail("by", by.as_str())
    }
}

impl AuditLog {
    /// Records an administrative change made by `by`.
    pub async fn admin_change(&self, by: Operator, change: AdminChange<'_>) {
        self.record(change.event(by)).await;
    }
}

/// Most events one query of the audit log returns.
pub const QUERY_LIMIT_MAX: u32 = 1000;
/// Events returned when the query names no limit.
pub const QUERY_LIMIT_DEFAULT: u32 = 100;

/// Why the audit log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query itself is wrong.
    #[error("{0}")]
    Invalid(&'static str),
    /// `audit.sinks` does not list the store, so there is nothing to read.
    #[error("the audit log is not kept in the store (audit.sinks)")]
    NotKept,
    /// The store failed.
    #[error("storage: {0}")]
    Store(#[from] strongroom_store::StoreError),
}

/// The stored events of a client or a user (of everyone with neither), newest first, at
/// most `limit` (default [`QUERY_LIMIT_DEFAULT`], 1 to [`QUERY_LIMIT_MAX`]). Serves
/// `GET /admin/audit` and `strongroom audit`.
pub async fn query(
    store: &SharedStore,
    config: &AuditConfig,
    client_id: Option<&str>,
    subject: Option<&str>,
    limit: Option<u32>,
) -> Result<Vec<Value>, QueryError> {
    use strongroom_store::AuditFilter;
    let filter = match (client_id, subject) {
        (Some(c), None) if !c.is_empty() => AuditFilter::Client(c),
        (None, Some(s)) if !s.is_empty() => AuditFilter::Subject(s),
        (None, None) => AuditFilter::All,
        _ => return Err(QueryError::Invalid("give at most one of client_id and subject")),
    };
    let limit = limit.unwrap_or(QUERY_LIMIT_DEFAULT);
    if !(1..=QUERY_LIMIT_MAX).contains(&limit) {
        return Err(QueryError::Invalid("limit must be between 1 and 1000"));
    }
    if !config.sinks.contains(&AuditSink::Store) {
        return Err(QueryError::NotKept);
    }
    Ok(store.audit_events(filter, limit).await?.into_iter().map(|e| e.data).collect())
}

fn lost(event: &str, sink: &'static str, error: &dyn std::fmt::Display) {
    tracing::error!(event, sink, error = %error, "audit event lost");
    metrics::counter!("strongroom_audit_write_failures_total", "sink" => sink).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_the_serde_names() {
        for kind in [AuditKind::LoginSucceeded, AuditKind::RefreshReuseDetected, AuditKind::KeysRotated] {
            assert_eq!(serde_json::to_value(kind).expect("json"), Value::from(kind.as_str()));
        }
    }

    #[test]
    fn serialized_event_has_only_set_fields() {
        let e = AuditEvent::new(AuditKind::CodeReplayed)
            .client_id("c1")
            .grant_type(GrantType::AuthorizationCode)
            .detail("revoked", 2u64);
        let v = serde_json::to_value(&e).expect("json");
        assert_eq!(v["event"], "code_replayed");
        assert_eq!(v["client_id"], "c1");
        assert_eq!(v["grant_type"], "authorization_code");
        assert_eq!(v["detail"]["revoked"], 2);
        assert!(v.get("subject").is_none() && v.get("ip").is_none());
    }

    #[test]
    fn admin_changes_name_who_made_them() {
        let by_cli = AdminChange::ClientRemoved { client_id: "c1" }.event(Operator::Cli);
        assert_eq!((by_cli.event, by_cli.client_id.as_deref()), (AuditKind::ClientDeleted, Some("c1")));
        assert_eq!(by_cli.detail["by"], "cli");
        let target = crate::service::RevokeTarget::Subject("u1".into());
        let revoked = AdminChange::GrantsRevoked { target: &target, revoked: 3 }.event(Operator::AdminApi);
        assert_eq!((revoked.event, revoked.subject.as_deref()), (AuditKind::AdminAction, Some("u1")));
        assert_eq!(revoked.detail["action"], "grants_revoked");
        assert_eq!(revoked.detail["revoked_tokens"], 3);
        assert_eq!(revoked.detail["by"], "admin");
    }

    #[test]
    fn scope_that_is_not_scope_tokens_is_dropped() {
        assert_eq!(
            AuditEvent::new(AuditKind::TokenIssued).scope("openid accounts").scope,
            Some("openid accounts".into())
        );
        assert_eq!(AuditEvent::new(AuditKind::TokenIssued).scope("a\"b").scope, None);
        assert_eq!(AuditEvent::new(AuditKind::TokenIssued).scope("a  b").scope, None);
    }
}
