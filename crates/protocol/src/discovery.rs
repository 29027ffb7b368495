//! Discovery metadata (OIDD §3, RFC 8414), generated from the same [`Policy`] values that
//! enforce behaviour, so what is advertised and what is enforced cannot drift.

use crate::client_rules::ClientRules;
use crate::jose::JwsAlg;
use crate::policy::{AuthMethod, Policy, ResponseMode, SenderConstraint};
use serde_json::{Value, json};

/// Where the server's endpoints are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Issuer identifier (also the public base URL).
    pub issuer: String,
    /// Base URL of the mTLS listener.
    pub mtls_base: String,
}

/// Paths of the endpoints, shared by the router and discovery.
pub mod paths {
    /// Authorization endpoint (public listener).
    pub const AUTHORIZE: &str = "/authorize";
    /// Pushed authorization request endpoint.
    pub const PAR: &str = "/par";
    /// Token endpoint.
    pub const TOKEN: &str = "/token";
    /// UserInfo endpoint.
    pub const USERINFO: &str = "/userinfo";
    /// Introspection endpoint.
    pub const INTROSPECT: &str = "/introspect";
    /// Revocation endpoint.
    pub const REVOKE: &str = "/revoke";
    /// Dynamic client registration endpoint.
    pub const REGISTER: &str = "/register";
    /// JWKS.
    pub const JWKS: &str = "/jwks";
    /// OIDC discovery.
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    /// RFC 8414 metadata.
    pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
}

impl Endpoints {
    /// An endpoint on the public listener.
    pub fn public(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
    /// An endpoint on the mTLS listener.
    pub fn mtls(&self, path: &str) -> String {
        format!("{}{}", self.mtls_base, path)
    }
}

fn union<T: PartialEq + Copy>(policies: &[&Policy], pick: impl Fn(&Policy) -> &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for p in policies {
        for item in pick(p) {
            if !out.contains(item) {
                out.push(*item);
            }
        }
    }
    out
}

/// The discovery document for the offered profiles. FAPI-only issuers list only FAPI
/// algorithms (OIDD-3-rs256); `none` is never listed.
pub fn metadata(ep: &Endpoints, rules: &ClientRules, server_algs: &[JwsAlg]) -> Value {
    let policies: Vec<&Policy> = rules.profiles.iter().map(|p| p.policy()).collect();
    let algs: Vec<&str> = union(&policies, |p| p.signing_algs).into_iter().map(JwsAlg::as_str).collect();
    let signing: Vec<&str> = server_algs.iter().filter(|a| algs.contains(&a.as_str())).map(|a| a.as_str()).collect();
    let auth: Vec<&str> = union(&policies, |p| p.auth_methods).into_iter().map(AuthMethod::as_str).collect();
    let response_types: Vec<&str> = union(&policies, |p| p.response_types).into_iter().map(|r| r.as_str()).collect();
    let modes = union(&policies, |p| p.response_modes);
    let mut response_modes: Vec<&str> = modes.iter().map(|m| m.as_str()).collect();
    if !response_modes.contains(&"query") {
        response_modes.insert(0, "query");
    }
    let jarm = modes.iter().any(|m| m.is_jwt());
    let dpop = policies.iter().any(|p| p.sender_constraints.contains(&SenderConstraint::Dpop));
    let dpop_algs: Vec<&str> =
        union(&policies, |p| if p.sender_constraints.contains(&SenderConstraint::Dpop) { p.signing_algs } else { &[] })
            .into_iter()
            .map(JwsAlg::as_str)
            .collect();
    let par_required = policies.iter().all(|p| p.par_required);
    let mut doc = json!({
        "issuer": ep.issuer,
        "authorization_endpoint": ep.public(paths::AUTHORIZE),
        "token_endpoint": ep.public(paths::TOKEN),
        "pushed_authorization_request_endpoint": ep.public(paths::PAR),
        "userinfo_endpoint": ep.public(paths::USERINFO),
        "introspection_endpoint": ep.public(paths::INTROSPECT),
        "revocation_endpoint": ep.public(paths::REVOKE),
        "registration_endpoint": ep.public(paths::REGISTER),
        "jwks_uri": ep.public(paths::JWKS),
        "mtls_endpoint_aliases": {
            "token_endpoint": ep.mtls(paths::TOKEN),
            "pushed_authorization_request_endpoint": ep.mtls(paths::PAR),
            "userinfo_endpoint": ep.mtls(paths::USERINFO),
            "introspection_endpoint": ep.mtls(paths::INTROSPECT),
            "revocation_endpoint": ep.mtls(paths::REVOKE),
            "registration_endpoint": ep.mtls(paths::REGISTER),
        },
        "scopes_supported": rules.scopes_supported(),
        "response_types_supported": response_types,
        "response_modes_supported": response_modes,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing,
        "userinfo_signing_alg_values_supported": signing,
        "token_endpoint_auth_methods_supported": auth,
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "introspection_endpoint_auth_methods_supported": auth,
        "introspection_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_methods_supported": auth,
        "revocation_endpoint_auth_signing_alg_values_supported": algs,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "tls_client_certificate_bound_access_tokens": true,
        "require_pushed_authorization_requests": par_required,
        "claims_parameter_supported": true,
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": algs,
        "request_object_encryption_alg_values_supported": ["RSA-OAEP-256", "ECDH-ES"],
        "request_object_encryption_enc_values_supported": ["A256GCM", "A128CBC-HS256"],
        "introspection_signing_alg_values_supported": signing,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
        "claims_supported": ["sub", "iss", "auth_time", "acr", "name", "given_name", "family_name", "email", "email_verified"],
        "acr_values_supported": [crate::claims_request::PASSWORD_ACR],
        "prompt_values_supported": ["none", "login", "consent"],
    });
    doc["id_token_encryption_alg_values_supported"] = json!(crate::client::JWE_ALGS);
    doc["id_token_encryption_enc_values_supported"] = json!(crate::client::JWE_ENCS);
    if dpop {
        doc["dpop_signing_alg_values_supported"] = json!(dpop_algs);
    }
    if jarm {
        doc["authorization_signing_alg_values_supported"] = json!(signing);
        doc["authorization_encryption_alg_values_supported"] = json!(crate::client::JWE_ALGS);
        doc["authorization_encryption_enc_values_supported"] = json!(crate::client::JWE_ENCS);
    }
    if modes.contains(&ResponseMode::Query) && !jarm {
        doc["response_modes_supported"] = json!(["query"]);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Profile;

    fn ep() -> Endpoints {
        Endpoints { issuer: "https://as.example".into(), mtls_base: "https://mtls.as.example".into() }
    }

    /// OIDD-3-req, R9207-2.3, R8414-2-pkce, R8414-2-auth, OIDD-3-rs256.
    #[test]
    fn fapi2_only_document() {
        let rules = ClientRules { profiles: vec![Profile::Fapi2Security], ..ClientRules::default() };
        let d = metadata(&ep(), &rules, &[JwsAlg::ES256, JwsAlg::PS256, JwsAlg::EdDSA]);
        for k in [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
        ] {
            assert!(d.get(k).is_some(), "{k}");
        }
        assert_eq!(d["response_types_supported"], json!(["code"]));
        assert_eq!(d["authorization_response_iss_parameter_supported"], json!(true));
        assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(d["require_pushed_authorization_requests"], json!(true));
        let auth = d["token_endpoint_auth_methods_supported"].as_array().unwrap();
        assert!(auth.iter().all(|m| {
            ["private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"].contains(&m.as_str().unwrap())
        }));
        for (k, v) in d.as_object().unwrap() {
            if k.ends_with("alg_values_supported") {
                let list = v.as_array().unwrap();
                assert!(!list.contains(&json!("none")) && !list.contains(&json!("RS256")), "{k}");
            }
        }
        assert!(!d["grant_types_supported"].as_array().unwrap().contains(&json!("password")));
        assert_eq!(d["dpop_signing_alg_values_supported"], json!(["PS256", "ES256", "EdDSA"]));
    }

    #[test]
    fn mixed_issuer_lists_union() {
        let d = metadata(&ep(), &ClientRules::default(), &[JwsAlg::ES256, JwsAlg::PS256]);
        let rts = d["response_types_supported"].as_array().unwrap();
        assert!(rts.contains(&json!("code id_token")));
        assert!(d["response_modes_supported"].as_array().unwrap().contains(&json!("jwt")));
        assert_eq!(d["require_pushed_authorization_requests"], json!(false));
        // R9101-10.5 / R9701-metadata: what is enforced is advertised.
        assert_eq!(d["request_parameter_supported"], json!(true));
        assert_eq!(d["request_object_signing_alg_values_supported"], json!(["PS256", "ES256", "EdDSA"]));
        assert_eq!(d["introspection_signing_alg_values_supported"], json!(["ES256", "PS256"]));
    }
}
