//! What Strongroom issues: sender-constrained access tokens (RFC 9068 JWTs), ID tokens,
//! and the binding decision between mTLS and DPoP.

use crate::client::Client;
use crate::error::{OAuthError, OAuthResult};
use crate::jose::JwsAlg;
use crate::policy::SenderConstraint;
use serde_json::{Map, Value, json};

/// RFC 9068 §2.1 media type for JWT access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// How an access token is bound to its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// RFC 8705 §3: certificate thumbprint.
    Mtls {
        /// `x5t#S256`.
        x5t_s256: String,
    },
    /// RFC 9449 §6: JWK thumbprint.
    Dpop {
        /// `jkt`.
        jkt: String,
    },
    /// No binding (only where the profile allows Bearer tokens).
    Bearer,
}

impl Binding {
    /// The `cnf` claim (RFC 8705 §3.1, RFC 9449 §6.1).
    pub fn cnf(&self) -> Option<Value> {
        match self {
            Binding::Mtls { x5t_s256 } => Some(json!({"x5t#S256": x5t_s256})),
            Binding::Dpop { jkt } => Some(json!({"jkt": jkt})),
            Binding::Bearer => None,
        }
    }
    /// `token_type` of the token response (R9449-5-type).
    pub fn token_type(&self) -> &'static str {
        match self {
            Binding::Dpop { .. } => "DPoP",
            _ => "Bearer",
        }
    }
    /// Reads a binding back from a `cnf` claim.
    pub fn from_cnf(cnf: Option<&Value>) -> Binding {
        let Some(c) = cnf else { return Binding::Bearer };
        if let Some(jkt) = c.get("jkt").and_then(Value::as_str) {
            return Binding::Dpop { jkt: jkt.to_string() };
        }
        if let Some(x) = c.get("x5t#S256").and_then(Value::as_str) {
            return Binding::Mtls { x5t_s256: x.to_string() };
        }
        Binding::Bearer
    }
}

/// F2SP-5.3.2.1-4/5, F1A-5.2.2-5/6, R9449-5.2, R8705-3.4: decides how a new access token
/// is bound. A DPoP proof binds to its key where the profile allows DPoP; otherwise the
/// connection's client certificate binds. A client registered for DPoP must send a proof;
/// a FAPI client never gets an unbound token.
pub fn choose_binding(client: &Client, dpop_jkt: Option<&str>, cert_thumbprint: Option<&str>) -> OAuthResult<Binding> {
    let policy = client.policy();
    if let Some(jkt) = dpop_jkt
        && policy.allows_sender_constraint(SenderConstraint::Dpop)
        && !client.mtls_bound()
    {
        return Ok(Binding::Dpop { jkt: jkt.to_string() });
    }
    if client.dpop_bound() {
        return Err(OAuthError::invalid_dpop_proof("this client must send a DPoP proof"));
    }
    if let Some(x5t) = cert_thumbprint
        && policy.allows_sender_constraint(SenderConstraint::Mtls)
    {
        return Ok(Binding::Mtls { x5t_s256: x5t.to_string() });
    }
    if policy.sender_constraint_required || client.mtls_bound() {
        return Err(OAuthError::invalid_request(
            "a sender-constrained token needs a client certificate on the mTLS endpoint or a DPoP proof",
        ));
    }
    Ok(Binding::Bearer)
}

/// Everything an access token says.
#[derive(Debug, Clone)]
pub struct AccessTokenInput<'a> {
    /// Issuer.
    pub issuer: &'a str,
    /// Audience (the resource servers).
    pub audience: &'a str,
    /// User, or the client for `client_credentials`.
    pub subject: &'a str,
    /// Client.
    pub client_id: &'a str,
    /// Granted scope.
    pub scope: &'a str,
    /// Issue time.
    pub iat: i64,
    /// Lifetime in seconds.
    pub ttl: i64,
    /// Unique id (≥ 128 bits of randomness, F2SP-5.4.1-4).
    pub jti: &'a str,
    /// Binding.
    pub binding: &'a Binding,
    /// `auth_time` for user tokens.
    pub auth_time: Option<i64>,
    /// `acr` for user tokens.
    pub acr: Option<&'a str>,
}

/// RFC 9068 §2.2 claims, with `cnf` (R8705-3, R9449-6.1/6.2).
pub fn access_token_claims(i: &AccessTokenInput<'_>) -> Value {
    let mut m = Map::new();
    m.insert("iss".into(), i.issuer.into());
    m.insert("sub".into(), i.subject.into());
    m.insert("aud".into(), i.audience.into());
    m.insert("client_id".into(), i.client_id.into());
    m.insert("scope".into(), i.scope.into());
    m.insert("iat".into(), i.iat.into());
    m.insert("exp".into(), (i.iat + i.ttl).into());
    m.insert("jti".into(), i.jti.into());
    if let Some(cnf) = i.binding.cnf() {
        m.insert("cnf".into(), cnf);
    }
    if let Some(t) = i.auth_time {
        m.insert("auth_time".into(), t.into());
    }
    if let Some(a) = i.acr {
        m.insert("acr".into(), a.into());
    }
    Value::Object(m)
}

/// Everything an ID token says.
#[derive(Debug, Clone, Default)]
pub struct IdTokenInput<'a> {
    /// Issuer.
    pub issuer: &'a str,
    /// User.
    pub subject: &'a str,
    /// Client (`aud`, `azp`).
    pub client_id: &'a str,
    /// Issue time.
    pub iat: i64,
    /// Lifetime in seconds.
    pub ttl: i64,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The request's `nonce`.
    pub nonce: Option<&'a str>,
    /// Authentication context class.
    pub acr: Option<&'a str>,
    /// Session id.
    pub sid: Option<&'a str>,
    /// The access token issued with it (`at_hash`).
    pub access_token: Option<&'a str>,
    /// Front-channel code (`c_hash`, hybrid flow).
    pub code: Option<&'a str>,
    /// Front-channel state (`s_hash`, FAPI 1.0 Advanced §5.2.2.1).
    pub state: Option<&'a str>,
    /// User claims the consented scopes release.
    pub user_claims: Option<&'a Map<String, Value>>,
}

/// OIDC Core §2 / §3.3.2.11 ID token claims; the hashes use the signing algorithm's
/// hash (F1B-5.2.2.1-6, F2SP-5.3.2.3).
pub fn id_token_claims(i: &IdTokenInput<'_>, alg: JwsAlg) -> Value {
    let mut m = Map::new();
    if let Some(extra) = i.user_claims {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    m.insert("iss".into(), i.issuer.into());
    m.insert("sub".into(), i.subject.into());
    m.insert("aud".into(), i.client_id.into());
    m.insert("azp".into(), i.client_id.into());
    m.insert("iat".into(), i.iat.into());
    m.insert("exp".into(), (i.iat + i.ttl).into());
    m.insert("auth_time".into(), i.auth_time.into());
    if let Some(n) = i.nonce {
        m.insert("nonce".into(), n.into());
    }
    if let Some(a) = i.acr {
        m.insert("acr".into(), a.into());
    }
    if let Some(s) = i.sid {
        m.insert("sid".into(), s.into());
    }
    if let Some(t) = i.access_token {
        m.insert("at_hash".into(), alg.half_hash(t).into());
    }
    if let Some(c) = i.code {
        m.insert("c_hash".into(), alg.half_hash(c).into());
    }
    if let Some(s) = i.state {
        m.insert("s_hash".into(), alg.half_hash(s).into());
    }
    Value::Object(m)
}

/// The user claims released by the granted scopes (OIDC Core §5.4).
pub fn claims_for_scope(scope: &str, user_claims: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for s in scope.split(' ') {
        let names: &[&str] = match s {
            "profile" => &[
                "name",
                "family_name",
                "given_name",
                "middle_name",
                "nickname",
                "preferred_username",
                "profile",
                "picture",
                "website",
                "gender",
                "birthdate",
                "zoneinfo",
                "locale",
                "updated_at",
            ],
            "email" => &["email", "email_verified"],
            "address" => &["address"],
            "phone" => &["phone_number", "phone_number_verified"],
            _ => &[],
        };
        for n in names {
            if let Some(v) = user_claims.get(*n) {
                out.insert((*n).to_string(), v.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientMetadata, validate_client_metadata};
    use crate::error::ErrorCode;
    use crate::jose::LocalSigningKey;

    fn client(v: Value) -> Client {
        let (k, _) = LocalSigningKey::generate("k", JwsAlg::ES256).unwrap();
        let mut v = v;
        v["jwks"] = json!({"keys": [k.public_jwk()]});
        v["redirect_uris"] = json!(["https://c.example/cb"]);
        let m: ClientMetadata = serde_json::from_value(v).unwrap();
        validate_client_metadata(m, "c".into(), &crate::client_rules::ClientRules::default()).unwrap()
    }

    /// F2SP-5.3.2.1-4/5, R9449-5.2: FAPI clients never get Bearer tokens.
    #[test]
    fn fapi2_binding_rules() {
        let dpop_client = client(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt"}));
        assert_eq!(choose_binding(&dpop_client, Some("jkt"), None).unwrap(), Binding::Dpop { jkt: "jkt".into() });
        assert_eq!(choose_binding(&dpop_client, None, Some("x5t")).unwrap_err().code, ErrorCode::InvalidDpopProof);
        assert!(choose_binding(&dpop_client, None, None).is_err());
        let mtls =
            client(json!({"profile": "fapi2-security", "token_endpoint_auth_method": "self_signed_tls_client_auth"}));
        assert_eq!(choose_binding(&mtls, None, Some("x5t")).unwrap(), Binding::Mtls { x5t_s256: "x5t".into() });
        assert_eq!(choose_binding(&mtls, None, None).unwrap_err().code, ErrorCode::InvalidRequest);
    }

    /// F1A-5.2.2-5/6: FAPI 1.0 Advanced binds with mTLS only.
    #[test]
    fn fapi1_binds_with_mtls_only() {
        let c = client(json!({"profile": "fapi1-advanced", "token_endpoint_auth_method": "private_key_jwt"}));
        assert_eq!(choose_binding(&c, Some("jkt"), Some("x5t")).unwrap(), Binding::Mtls { x5t_s256: "x5t".into() });
        assert!(choose_binding(&c, Some("jkt"), None).is_err());
    }

    #[test]
    fn oauth2_may_get_bearer() {
        let c = client(json!({"profile": "oauth2", "token_endpoint_auth_method": "private_key_jwt"}));
        assert_eq!(choose_binding(&c, None, None).unwrap(), Binding::Bearer);
    }

    #[test]
    fn id_token_has_hashes_and_nonce() {
        let v = id_token_claims(
            &IdTokenInput {
                issuer: "i",
                subject: "s",
                client_id: "c",
                iat: 10,
                ttl: 5,
                auth_time: 9,
                nonce: Some("n"),
                access_token: Some("at"),
                code: Some("code"),
                state: Some("st"),
                ..Default::default()
            },
            JwsAlg::ES256,
        );
        assert_eq!(v["exp"], 15);
        assert_eq!(v["nonce"], "n");
        assert_eq!(v["at_hash"], JwsAlg::ES256.half_hash("at"));
        assert_eq!(v["c_hash"], JwsAlg::ES256.half_hash("code"));
        assert_eq!(v["s_hash"], JwsAlg::ES256.half_hash("st"));
    }

    #[test]
    fn cnf_round_trip() {
        for b in [Binding::Mtls { x5t_s256: "x".into() }, Binding::Dpop { jkt: "j".into() }, Binding::Bearer] {
            assert_eq!(Binding::from_cnf(b.cnf().as_ref()), b);
        }
    }
}
