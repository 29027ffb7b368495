//! Distinguished names as values (R8705-2.1.2): a registered `tls_client_auth_subject_dn`
//! (an RFC 4514 string) and a certificate's subject (an X.509 `Name`) are both turned into
//! one parsed form — a sequence of RDNs, each a set of (attribute OID, prepared value) —
//! and compared there, never as strings.
//!
//! Matching rules per attribute type (RFC 4519 / RFC 4517), applied after the RFC 4518
//! string preparation (map, NFKC, insignificant space handling):
//!
//! | type | OID | rule |
//! |---|---|---|
//! | CN, L, ST, STREET, O, OU, serialNumber, UID, title, businessCategory, organizationIdentifier | 2.5.4.x, 0.9.2342.19200300.100.1.1 | caseIgnoreMatch (RFC 4517 §4.2.11) |
//! | C | 2.5.4.6 | caseIgnoreMatch: RFC 4519 §2.2 derives `c` from `name` |
//! | DC | 0.9.2342.19200300.100.1.25 | caseIgnoreIA5Match (RFC 4519 §2.4, RFC 4517 §4.2.12): DNS labels are case-insensitive |
//! | emailAddress | 1.2.840.113549.1.9.1 | pkcs9CaseIgnoreMatch (RFC 2985 §B.3.5), i.e. case-insensitive |
//! | any other dotted OID | — | caseExactMatch (RFC 4517 §4.2.4): with no known rule, case is kept |
//!
//! So C and DC are compared case-insensitively, as their RFC rules say; only attribute
//! types Strongroom does not know are compared case-sensitively.

use unicode_normalization::UnicodeNormalization;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// A parsed distinguished name in X.509 order (most significant RDN first, e.g. `C` before
/// `CN`). Each RDN is a set, held sorted so that equal sets compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn(Vec<Vec<Ava>>);

/// One attribute-value assertion: the attribute type as a dotted OID and the value after
/// the string preparation of its matching rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ava {
    oid: String,
    value: String,
}

/// Why a DN could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    /// The string is empty or has an empty RDN.
    #[error("empty DN or empty RDN")]
    Empty,
    /// An attribute type that is neither a known name nor a dotted OID.
    #[error("unknown attribute type {0:?}")]
    UnknownType(String),
    /// An RDN component without `=`.
    #[error("attribute without '='")]
    MissingEquals,
    /// A bad escape, an unescaped special character, or bytes that are not UTF-8.
    #[error("invalid attribute value: {0}")]
    BadValue(&'static str),
    /// A `#hex` (BER-encoded) value: not supported, so never matched.
    #[error("#hex (BER-encoded) attribute values are not supported")]
    BerValue,
    /// A certificate attribute whose value is not a character string we can read.
    #[error("certificate attribute value is not a supported string type")]
    UnsupportedString,
}

/// How values of an attribute type are compared (RFC 4517).
#[derive(Clone, Copy)]
enum Rule {
    CaseIgnore,
    CaseExact,
}

/// Short names of RFC 4514 §3 and RFC 4519, plus the ones certificates commonly carry, with
/// their OIDs and matching rules (see the module table).
const KNOWN_TYPES: &[(&str, &str, Rule)] = &[
    ("CN", "2.5.4.3", Rule::CaseIgnore),
    ("SERIALNUMBER", "2.5.4.5", Rule::CaseIgnore),
    ("C", "2.5.4.6", Rule::CaseIgnore),
    ("L", "2.5.4.7", Rule::CaseIgnore),
    ("ST", "2.5.4.8", Rule::CaseIgnore),
    ("STREET", "2.5.4.9", Rule::CaseIgnore),
    ("O", "2.5.4.10", Rule::CaseIgnore),
    ("OU", "2.5.4.11", Rule::CaseIgnore),
    ("TITLE", "2.5.4.12", Rule::CaseIgnore),
    ("BUSINESSCATEGORY", "2.5.4.15", Rule::CaseIgnore),
    ("ORGANIZATIONIDENTIFIER", "2.5.4.97", Rule::CaseIgnore),
    ("UID", "0.9.2342.19200300.100.1.1", Rule::CaseIgnore),
    ("DC", "0.9.2342.19200300.100.1.25", Rule::CaseIgnore),
    ("EMAILADDRESS", "1.2.840.113549.1.9.1", Rule::CaseIgnore),
    ("E", "1.2.840.113549.1.9.1", Rule::CaseIgnore),
    ("JURISDICTIONC", "1.3.6.1.4.1.311.60.2.1.3", Rule::CaseIgnore),
];

impl Dn {
    /// RFC 4514 §3: parses a DN string. The string lists the most specific RDN first
    /// (`CN=…,O=…,C=…`); the result is in X.509 order. `+` joins the members of a
    /// multi-valued RDN; escapes are `\` followed by a special character or two hex digits
    /// (UTF-8 bytes). Unescaped spaces around types, values and separators are ignored.
    pub fn parse(s: &str) -> Result<Dn, DnError> {
        let mut rdns = Vec::new();
        let mut rdn = Vec::new();
        let mut rest = s;
        loop {
            let (ava, sep, after) = parse_ava(rest)?;
            rdn.push(ava);
            rest = after;
            match sep {
                Some('+') => {}
                Some(_) | None => {
                    rdn.sort();
                    rdns.push(std::mem::take(&mut rdn));
                }
            }
            if sep.is_none() {
                break;
            }
        }
        rdns.reverse();
        Ok(Dn(rdns))
    }

    /// A certificate's subject (or issuer) in the same form, from the attribute OIDs and
    /// values themselves (no round trip through a string).
    pub fn from_x509(name: &X509Name<'_>) -> Result<Dn, DnError> {
        let mut rdns = Vec::new();
        for rdn in name.iter() {
            let mut set = rdn.iter().map(ava_from_x509).collect::<Result<Vec<_>, _>>()?;
            if set.is_empty() {
                return Err(DnError::Empty);
            }
            set.sort();
            rdns.push(set);
        }
        if rdns.is_empty() {
            return Err(DnError::Empty);
        }
        Ok(Dn(rdns))
    }

    /// Whether two DNs are equal: the same RDNs in the same order, each RDN the same set.
    /// A registered DN written in X.509 order (`C=…,O=…,CN=…`, as OpenSSL prints it) also
    /// matches, since ecosystems write both; the RDN sets themselves must still be equal.
    pub fn matches(&self, other: &Dn) -> bool {
        self.0 == other.0 || self.0.iter().rev().eq(other.0.iter())
    }
}

fn ava_from_x509(attr: &AttributeTypeAndValue<'_>) -> Result<Ava, DnError> {
    let oid = attr.attr_type().to_id_string();
    let value = match attr.attr_value().tag() {
        Tag::BmpString => decode_utf16be(attr.as_slice())?,
        Tag::UniversalString => decode_utf32be(attr.as_slice())?,
        _ => attr.as_str().map_err(|_| DnError::UnsupportedString)?.to_string(),
    };
    Ok(Ava { value: prepare(&value, rule_for_oid(&oid)), oid })
}

fn decode_utf16be(b: &[u8]) -> Result<String, DnError> {
    if !b.len().is_multiple_of(2) {
        return Err(DnError::UnsupportedString);
    }
    let units = b.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units).collect::<Result<String, _>>().map_err(|_| DnError::UnsupportedString)
}

fn decode_utf32be(b: &[u8]) -> Result<String, DnError> {
    if !b.len().is_multiple_of(4) {
        return Err(DnError::UnsupportedString);
    }
    b.chunks_exact(4)
        .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])).ok_or(DnError::UnsupportedString))
        .collect()
}

/// Parses `type=value` up to an unescaped `,` or `+`; returns the AVA, the separator met
/// (if any) and the rest after it.
fn parse_ava(s: &str) -> Result<(Ava, Option<char>, &str), DnError> {
    let (name, value_and_rest) = s.split_once('=').ok_or(DnError::MissingEquals)?;
    let name = name.trim_matches(' ');
    if name.is_empty() {
        return Err(DnError::Empty);
    }
    let (oid, rule) = attribute_type(name)?;
    let v = value_and_rest.trim_start_matches(' ');
    if v.starts_with('#') {
        // RFC 4514 §2.4: a BER encoding; refused rather than guessed at.
        return Err(DnError::BerValue);
    }
    let mut bytes = Vec::new();
    // Length of `bytes` that ends with an escaped character: trailing unescaped spaces
    // after it are dropped, escaped ones kept.
    let mut kept = 0;
    let mut iter = v.char_indices();
    let mut sep = None;
    let mut rest = "";
    while let Some((i, c)) = iter.next() {
        match c {
            ',' | '+' => {
                sep = Some(c);
                rest = &v[i + 1..];
                break;
            }
            '\\' => {
                let (_, e) = iter.next().ok_or(DnError::BadValue("trailing backslash"))?;
                if " \"#+,;<=>\\".contains(e) {
                    push_char(&mut bytes, e);
                } else {
                    let (_, lo) = iter.next().ok_or(DnError::BadValue("incomplete hex escape"))?;
                    let hex = |c: char| c.to_digit(16).ok_or(DnError::BadValue("invalid escape"));
                    bytes.push((hex(e)? * 16 + hex(lo)?) as u8);
                }
                kept = bytes.len();
            }
            // RFC 4514 §3: these must be escaped inside a value.
            '"' | ';' | '<' | '>' => return Err(DnError::BadValue("unescaped special character")),
            '\0' => return Err(DnError::BadValue("NUL character")),
            _ => {
                push_char(&mut bytes, c);
                if c != ' ' {
                    kept = bytes.len();
                }
            }
        }
    }
    bytes.truncate(kept);
    if bytes.is_empty() {
        return Err(DnError::Empty);
    }
    if sep.is_some() && rest.trim_matches(' ').is_empty() {
        return Err(DnError::Empty);
    }
    let value = String::from_utf8(bytes).map_err(|_| DnError::BadValue("escaped bytes are not UTF-8"))?;
    Ok((Ava { oid, value: prepare(&value, rule) }, sep, rest))
}

fn push_char(bytes: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// RFC 4514 §3 `attributeType`: a known short name (case-insensitive) or a dotted OID.
fn attribute_type(name: &str) -> Result<(String, Rule), DnError> {
    if let Some((_, oid, rule)) = KNOWN_TYPES.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)) {
        return Ok((oid.to_string(), *rule));
    }
    let oid = name.strip_prefix("OID.").or_else(|| name.strip_prefix("oid.")).unwrap_or(name);
    if is_numeric_oid(oid) {
        return Ok((oid.to_string(), rule_for_oid(oid)));
    }
    Err(DnError::UnknownType(name.to_string()))
}

/// RFC 4512 §1.4 `numericoid`: at least two arcs, digits without leading zeros.
fn is_numeric_oid(s: &str) -> bool {
    let arcs: Vec<&str> = s.split('.').collect();
    arcs.len() >= 2
        && arcs
            .iter()
            .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) && (a.len() == 1 || !a.starts_with('0')))
}

fn rule_for_oid(oid: &str) -> Rule {
    KNOWN_TYPES.iter().find(|(_, o, _)| *o == oid).map_or(Rule::CaseExact, |(_, _, r)| *r)
}

/// RFC 4518 §2: map (controls and zero-width characters to nothing, other white space to
/// SPACE, case folding for caseIgnore rules), normalize (NFKC), and insignificant space
/// handling (no leading or trailing space, inner runs as one space).
fn prepare(value: &str, rule: Rule) -> String {
    let mapped: String = value
        .chars()
        .filter(|c| !matches!(c, '\u{00AD}' | '\u{180E}' | '\u{200B}' | '\u{FEFF}' | '\u{034F}'))
        .filter(|c| !c.is_control() || c.is_whitespace())
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let folded = match rule {
        Rule::CaseIgnore => mapped.to_lowercase(),
        Rule::CaseExact => mapped,
    };
    let normalized: String = folded.nfkc().collect();
    normalized.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ava(oid: &str, value: &str) -> Ava {
        Ava { oid: oid.into(), value: value.into() }
    }

    /// RFC 4514 §3: order, sets, escapes and types of the string form.
    #[test]
    fn rfc4514_strings_parse_into_rdn_sets() {
        let dn = Dn::parse("CN=a+O=b,C=GB").unwrap();
        assert_eq!(dn, Dn(vec![vec![ava("2.5.4.6", "gb")], vec![ava("2.5.4.10", "b"), ava("2.5.4.3", "a")]]));
        assert_eq!(Dn::parse("O=b+CN=a,C=GB").unwrap(), dn, "an RDN is a set");
        assert_ne!(Dn::parse("CN=a,O=b,C=GB").unwrap(), dn, "CN=a+O=b is one RDN, not two");
        let cases = [
            ("CN=Acme\\, Inc.", "acme, inc."),
            ("CN=a\\+b", "a+b"),
            ("CN=\\\"q\\\"", "\"q\""),
            ("CN=back\\\\slash", "back\\slash"),
            ("CN=x\\2Dy", "x-y"),
            ("CN=Z\\C3\\BCrich", "zürich"),
            ("CN=Zürich", "zürich"),
            ("cn =  Two   Spaces  ", "two spaces"),
            ("2.5.4.3=oid", "oid"),
            ("OID.2.5.4.3=oid", "oid"),
            ("CN=\\ lead", "lead"),
        ];
        for (s, want) in cases {
            assert_eq!(Dn::parse(s).unwrap(), Dn(vec![vec![ava("2.5.4.3", want)]]), "{s}");
        }
        assert_eq!(Dn::parse("1.2.3.4=CaSe").unwrap(), Dn(vec![vec![ava("1.2.3.4", "CaSe")]]), "unknown: exact");
        for bad in [
            "",
            "CN",
            "CN=",
            "=x",
            "CN=a,",
            "CN=a+",
            "XX=a",
            "CN=#04026869",
            "CN=a\\",
            "CN=a\\4",
            "CN=a\\zz",
            "CN=\\C3",
            "CN=a;O=b",
            "CN=a<b",
            "1.02.3=x",
            "1=x",
        ] {
            assert!(Dn::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn string_preparation_per_rule() {
        assert_eq!(prepare(" Acme \t Ltd\u{200B} ", Rule::CaseIgnore), "acme ltd");
        assert_eq!(prepare("\u{FB01}le", Rule::CaseIgnore), "file", "NFKC");
        assert_eq!(prepare("Exact  Case", Rule::CaseExact), "Exact Case");
        assert!(matches!(rule_for_oid("2.5.4.6"), Rule::CaseIgnore));
        assert!(matches!(rule_for_oid("0.9.2342.19200300.100.1.25"), Rule::CaseIgnore));
        assert!(matches!(rule_for_oid("1.2.3.4"), Rule::CaseExact));
    }
}
