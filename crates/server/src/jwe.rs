//! Encrypted request objects (JWE, RFC 9101 §6.1): a nested JWT, encrypted to one of the
//! server's published encryption keys with RSA-OAEP-256 or ECDH-ES and A256GCM or
//! A128CBC-HS256, decrypted here (josekit) before the signature checks.

use crate::keys::DecryptionKey;
use strongroom_protocol::jose::b64url_decode;
use strongroom_protocol::{ErrorCode, OAuthError};

/// Content-encryption algorithms accepted.
pub const ENC_VALUES: &[&str] = &["A256GCM", "A128CBC-HS256"];

fn invalid(d: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequestObject, d)
}

/// Whether a compact serialization is a JWE (five parts) rather than a JWS (three).
pub fn is_jwe(token: &str) -> bool {
    token.split('.').count() == 5
}

/// Decrypts a JWE request object and returns the nested JWS it carries.
#[cfg(feature = "jwe")]
pub fn decrypt_request_object(jwe: &str, keys: &[DecryptionKey], max_len: usize) -> Result<String, OAuthError> {
    use josekit::jwe::{ECDH_ES, JweDecrypter, RSA_OAEP_256};
    if jwe.len() > max_len {
        return Err(invalid("the request object is too large"));
    }
    let header_b64 = jwe.split('.').next().unwrap_or("");
    let header: serde_json::Value = b64url_decode(header_b64)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid("the encrypted request object has no readable header"))?;
    let alg = header["alg"].as_str().unwrap_or("");
    let enc = header["enc"].as_str().unwrap_or("");
    if !ENC_VALUES.contains(&enc) {
        return Err(invalid("the content encryption algorithm is not allowed"));
    }
    let kid = header["kid"].as_str();
    let key = keys
        .iter()
        .find(|k| k.alg == alg && kid.is_none_or(|id| id == k.kid))
        .ok_or_else(|| invalid("the request object is not encrypted to a key of this server"))?;
    let decrypter: Box<dyn JweDecrypter> = match alg {
        "RSA-OAEP-256" => {
            Box::new(RSA_OAEP_256.decrypter_from_der(&key.pkcs8).map_err(|_| OAuthError::server_error())?)
        }
        "ECDH-ES" => Box::new(ECDH_ES.decrypter_from_der(&key.pkcs8).map_err(|_| OAuthError::server_error())?),
        _ => return Err(invalid("the key management algorithm is not allowed")),
    };
    let (payload, _) = josekit::jwe::deserialize_compact(jwe, decrypter.as_ref())
        .map_err(|_| invalid("the request object cannot be decrypted"))?;
    let nested = String::from_utf8(payload).map_err(|_| invalid("the decrypted request object is not a JWT"))?;
    if nested.split('.').count() != 3 {
        return Err(invalid("an encrypted request object must contain a signed JWT"));
    }
    Ok(nested)
}

/// Without the `jwe` feature encrypted request objects are refused.
#[cfg(not(feature = "jwe"))]
pub fn decrypt_request_object(_jwe: &str, _keys: &[DecryptionKey], _max_len: usize) -> Result<String, OAuthError> {
    Err(invalid("encrypted request objects are not supported by this build"))
}

/// Encrypts a signed JWT (ID token, JARM response) to the client's `use: enc` key for the
/// registered algorithm: a nested JWT with `cty: JWT` (OIDC Core §10.2, JARM §4.2).
#[cfg(feature = "jwe")]
pub fn encrypt_to_client(
    jws: &str,
    encryption: &strongroom_protocol::client::Encryption,
    keys: &jsonwebtoken::jwk::JwkSet,
) -> Result<String, OAuthError> {
    use josekit::jwe::{ECDH_ES, JweHeader, RSA_OAEP_256};
    let wanted_kty = if encryption.alg == "RSA-OAEP-256" { "RSA" } else { "EC" };
    let key = keys
        .keys
        .iter()
        .filter_map(|k| serde_json::to_value(k).ok())
        .find(|k| k["use"] == "enc" && k["kty"] == wanted_kty)
        .ok_or_else(|| OAuthError::invalid_request("the client has no encryption key for its registered algorithm"))?;
    // Only the public parameters: josekit checks a JWK's `alg` against its own names.
    let mut map = serde_json::Map::new();
    for name in ["kty", "crv", "x", "y", "n", "e", "kid"] {
        if let Some(v) = key.get(name).filter(|v| v.is_string()) {
            map.insert(name.to_string(), v.clone());
        }
    }
    let jwk = josekit::jwk::Jwk::from_map(map)
        .map_err(|_| OAuthError::invalid_request("the client's encryption key is unusable"))?;
    let mut header = JweHeader::new();
    header.set_content_encryption(&encryption.enc);
    header.set_content_type("JWT");
    if let Some(kid) = jwk.key_id() {
        header.set_key_id(kid);
    }
    let unusable = |_| OAuthError::invalid_request("the client's encryption key is unusable");
    let out = match encryption.alg.as_str() {
        "RSA-OAEP-256" => josekit::jwe::serialize_compact(
            jws.as_bytes(),
            &header,
            &RSA_OAEP_256.encrypter_from_jwk(&jwk).map_err(unusable)?,
        ),
        _ => josekit::jwe::serialize_compact(
            jws.as_bytes(),
            &header,
            &ECDH_ES.encrypter_from_jwk(&jwk).map_err(unusable)?,
        ),
    };
    out.map_err(|e| {
        tracing::error!(error = %e, "JWE encryption failed");
        OAuthError::server_error()
    })
}

/// Without the `jwe` feature nothing is encrypted to clients.
#[cfg(not(feature = "jwe"))]
pub fn encrypt_to_client(
    _jws: &str,
    _encryption: &strongroom_protocol::client::Encryption,
    _keys: &jsonwebtoken::jwk::JwkSet,
) -> Result<String, OAuthError> {
    Err(OAuthError::server_error())
}

/// Encrypts `jws` when the client registered encryption for it (`encryption` is `Some`).
pub fn maybe_encrypt(
    jws: String,
    encryption: Option<&strongroom_protocol::client::Encryption>,
    keys: Option<&jsonwebtoken::jwk::JwkSet>,
) -> Result<String, OAuthError> {
    match (encryption, keys) {
        (None, _) => Ok(jws),
        (Some(e), Some(k)) => encrypt_to_client(&jws, e, k),
        (Some(_), None) => Err(OAuthError::invalid_request("the client's encryption keys could not be obtained")),
    }
}
