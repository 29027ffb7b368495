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
