//! Property tests for the parsers in `strongroom-protocol` that see untrusted bytes (issue 12
//! point 10): compact JWS (client assertions, request objects, DPoP proofs), client metadata
//! JSON, the authorization-response encoder against a URL parser, and `typ` normalisation.
//!
//! Two kinds of property: a parser never panics on any input (it answers `Ok` or an error),
//! and where we also have the encoder, decoding what we encoded gives back what we started with.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use strongroom_protocol::authz::redirect_with;
use strongroom_protocol::client::{ClientMetadata, validate_client_metadata};
use strongroom_protocol::dpop::{NonceRule, ProofContext, check_proof};
use strongroom_protocol::jose::{
    JoseError, JwsAlg, JwsSigner, JwtKind, LocalSigningKey, ParsedJws, b64url, b64url_decode, check_explicit_type,
    normalise_typ, sign_with_header,
};

const MAX_JWT: usize = 16_384;

fn es256() -> &'static LocalSigningKey {
    static KEY: OnceLock<LocalSigningKey> = OnceLock::new();
    KEY.get_or_init(|| LocalSigningKey::generate("prop", JwsAlg::ES256).expect("key").0)
}

/// JSON values of bounded depth and size, as an attacker could send them.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON objects with string, integer and nested values: claims a client could sign.
fn claims() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,10}", json_value(), 0..8).prop_map(|m| m.into_iter().collect())
}

fn b64_segment() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| b64url(&b))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any string is either a parsed JWS or a `JoseError`, never a panic.
    #[test]
    fn jws_parser_never_panics_on_text(s in ".{0,400}") {
        let _ = ParsedJws::parse(&s, MAX_JWT);
    }

    /// Three dot-separated base64url segments of arbitrary bytes (the shape that gets past the
    /// first split) never panic either; anything whose header is not a JSON object is refused.
    #[test]
    fn jws_parser_never_panics_on_segments(h in b64_segment(), p in b64_segment(), sig in b64_segment()) {
        let token = format!("{h}.{p}.{sig}");
        if let Ok(jws) = ParsedJws::parse(&token, MAX_JWT) {
            let header: Value = serde_json::from_slice(&b64url_decode(&h).expect("b64")).expect("json header");
            prop_assert!(header.is_object());
            prop_assert!(header.get("crit").is_none());
            prop_assert_ne!(jws.header_str("alg"), Some("none"));
        }
    }

    /// Arbitrary JSON headers: only the four known algorithms parse, and `crit` never does.
    #[test]
    fn jws_header_rules_hold(header in prop::collection::btree_map("[a-z]{1,5}", json_value(), 0..5),
                             alg in prop_oneof![
                                 prop::sample::select(vec!["ES256", "PS256", "EdDSA", "RS256", "none", "HS256", "ES384"])
                                     .prop_map(String::from),
                                 ".{0,6}"]) {
        let alg = alg.as_str();
        let mut header: Map<String, Value> = header.into_iter().collect();
        header.insert("alg".into(), json!(alg));
        let token = format!("{}.{}.{}", b64url(Value::Object(header.clone()).to_string().as_bytes()),
                            b64url(b"{}"), b64url(b"sig"));
        match ParsedJws::parse(&token, MAX_JWT) {
            Ok(jws) => {
                prop_assert!(JwsAlg::parse(alg).is_some());
                prop_assert_eq!(jws.alg.as_str(), alg);
                prop_assert!(!header.contains_key("crit"));
            }
            Err(e) => prop_assert!(JwsAlg::parse(alg).is_none() || header.contains_key("crit")
                                   || matches!(e, JoseError::Malformed(_)), "{e:?}"),
        }
    }

    /// Round trip: what the signer signs parses back to the same claims and verifies with the
    /// signer's public key; changing any claim breaks the signature.
    #[test]
    fn signed_claims_round_trip(c in claims(), extra in ".{1,16}") {
        let key = es256();
        let token = key.sign(Some("JWT"), &Value::Object(c.clone())).expect("sign");
        let jws = ParsedJws::parse(&token, MAX_JWT).expect("parses");
        prop_assert_eq!(&jws.claims, &c);
        prop_assert_eq!(jws.alg, JwsAlg::ES256);
        let jwk = strongroom_protocol::jose::public_jwk_from_value(&key.public_jwk()).expect("jwk");
        prop_assert!(jws.verify_with(&jwk).is_ok());

        let mut changed = c.clone();
        changed.insert("zz_changed".into(), json!(extra));
        let other = key.sign(Some("JWT"), &Value::Object(changed)).expect("sign");
        let (head, _) = token.rsplit_once('.').expect("dots");
        let (_, forged_sig) = other.rsplit_once('.').expect("dots");
        let forged = ParsedJws::parse(&format!("{head}.{forged_sig}"), MAX_JWT).expect("parses");
        prop_assert_eq!(forged.verify_with(&jwk), Err(JoseError::BadSignature));
    }

    /// DPoP proofs: arbitrary text, and proofs really signed with arbitrary headers and
    /// claims, are accepted or refused with `invalid_dpop_proof` — never a panic. A proof
    /// without `typ` `dpop+jwt` is never accepted.
    #[test]
    fn dpop_checker_never_panics(text in ".{0,300}", header in claims(), c in claims()) {
        let ctx = ProofContext {
            method: "POST",
            url: "https://as.example/token",
            now: 1_800_000_000,
            max_future_skew: 10,
            allowed_algs: &[JwsAlg::ES256, JwsAlg::PS256, JwsAlg::EdDSA],
            access_token: None,
            nonce: NonceRule::NotRequired,
            max_len: MAX_JWT,
        };
        let _ = check_proof(&text, &ctx);
        let mut header = header;
        header.insert("alg".into(), json!("ES256"));
        let typ_ok = header.get("typ") == Some(&json!("dpop+jwt"));
        if let Ok(proof) = sign_with_header(es256(), &Value::Object(header), &Value::Object(c)) {
            let r = check_proof(&proof, &ctx);
            prop_assert!(r.is_err() || typ_ok);
        }
    }

    /// Client metadata JSON from a registration request: whatever deserialises is either a
    /// client or a refusal that names a field — never a panic.
    #[test]
    fn client_metadata_never_panics(v in json_value(), fields in claims()) {
        for input in [v, Value::Object(fields)] {
            if let Ok(m) = serde_json::from_value::<ClientMetadata>(input)
                && let Err(e) = validate_client_metadata(m, "c1".into(), &strongroom_protocol::client_rules::ClientRules::default())
            {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    /// The authorization-response encoder and a URL parser agree: every parameter comes back
    /// exactly, in the query or in the fragment, after any query the registered URI has.
    #[test]
    fn redirect_parameters_round_trip(params in prop::collection::btree_map("[a-z_]{1,12}", ".{0,40}", 1..6),
                                      fragment in any::<bool>(), base_query in any::<bool>()) {
        let base = if base_query { "https://client.example/cb?tenant=a%20b" } else { "https://client.example/cb" };
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let url = url::Url::parse(&redirect_with(base, fragment, &pairs)).expect("a URL");
        let decoded: Vec<(String, String)> = if fragment {
            url::form_urlencoded::parse(url.fragment().unwrap_or("").as_bytes()).into_owned().collect()
        } else {
            url.query_pairs().into_owned().filter(|(k, _)| !(base_query && k == "tenant")).collect()
        };
        let expected: Vec<(String, String)> = params.into_iter().collect();
        prop_assert_eq!(decoded, expected);
        if base_query {
            prop_assert!(url.query_pairs().any(|(k, v)| k == "tenant" && v == "a b"));
        }
    }

    /// `typ` normalisation is idempotent, and no normalised spelling of another kind's `typ`
    /// is accepted for a kind (RFC 8725 §3.11).
    #[test]
    fn explicit_typing_is_spelling_independent(prefix in any::<bool>(), upper in prop::collection::vec(any::<bool>(), 32)) {
        let kinds = [JwtKind::ClientAssertion, JwtKind::RequestObject, JwtKind::DpopProof, JwtKind::AccessToken];
        for kind in kinds {
            for other in kinds {
                let spelled: String = format!("{}{}", if prefix { "application/" } else { "" }, other.typ())
                    .chars()
                    .zip(upper.iter().cycle())
                    .map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c })
                    .collect();
                prop_assert_eq!(normalise_typ(&normalise_typ(&spelled)), normalise_typ(&spelled));
                prop_assert_eq!(check_explicit_type(Some(&spelled), kind).is_ok(), kind == other);
            }
        }
    }

    /// base64url: decode(encode(b)) == b.
    #[test]
    fn base64url_round_trip(b in prop::collection::vec(any::<u8>(), 0..256)) {
        prop_assert_eq!(b64url_decode(&b64url(&b)), Some(b));
    }
}
