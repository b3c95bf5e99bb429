//! Distinguished names (subject and issuer) and the USCC hidden in a subject.
//!
//! A name is kept as its attributes in encoded order with their values decoded to text
//! (UTF8String, PrintableString, IA5String, BMPString, … all become Rust strings), and shown
//! RFC 4514 style: the last RDN first, `,` between RDNs, `+` inside a multi-valued RDN, special
//! characters escaped, and Chinese and other non-ASCII text kept as UTF-8, not `\XX` escapes.
//! For example `CN=张三,organizationIdentifier=NTRCN-91150100MA0N12340B,O=内蒙古彩虹建设有限公司,C=CN`.
//!
//! Two names are equal when they have the same attributes in the same order with the same
//! decoded values, so an issuer written as PrintableString in one certificate and UTF8String
//! in another still matches; no case folding is done.

use std::fmt;

use x509_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::x509::X509Name;

use crate::Uscc;

/// One attribute of a name, e.g. `CN=张三`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAttribute {
    /// Dotted attribute type OID, e.g. `"2.5.4.3"`.
    pub oid: String,
    pub value: AttributeValue,
}

/// An attribute value: text when it is one of the ASN.1 string types, else the DER bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    Text(String),
    /// The full DER (tag, length, contents) of a value that is not a decodable string;
    /// shown as `#hex` per RFC 4514 §2.4.
    Der(Vec<u8>),
}

impl AttributeValue {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            AttributeValue::Text(s) => Some(s),
            AttributeValue::Der(_) => None,
        }
    }
}

impl NameAttribute {
    /// The short name used when showing the attribute (`CN`, `O`, `organizationIdentifier`…),
    /// or the dotted OID for types without one.
    pub fn short_name(&self) -> &str {
        short_name(&self.oid).unwrap_or(&self.oid)
    }
}

/// A subject or issuer name: a sequence of RDNs, each one or more attributes, in encoded order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DistinguishedName {
    rdns: Vec<Vec<NameAttribute>>,
}

impl DistinguishedName {
    pub(crate) fn from_x509(name: &X509Name<'_>) -> DistinguishedName {
        let rdns = name
            .iter_rdn()
            .map(|rdn| {
                rdn.iter()
                    .map(|atv| NameAttribute {
                        oid: atv.attr_type().to_id_string(),
                        value: decode_value(atv.attr_value()),
                    })
                    .collect()
            })
            .collect();
        DistinguishedName { rdns }
    }

    /// Builds a name from `(oid, text)` attributes, one per RDN, in encoded order (C first).
    /// For tests and for callers that construct expected names.
    pub fn from_attributes<'a>(attributes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        DistinguishedName {
            rdns: attributes
                .into_iter()
                .map(|(oid, text)| {
                    vec![NameAttribute {
                        oid: oid.to_string(),
                        value: AttributeValue::Text(text.to_string()),
                    }]
                })
                .collect(),
        }
    }

    /// RDNs in encoded order (usually country first, common name last).
    pub fn rdns(&self) -> &[Vec<NameAttribute>] {
        &self.rdns
    }

    /// All attributes in encoded order.
    pub fn attributes(&self) -> impl Iterator<Item = &NameAttribute> {
        self.rdns.iter().flatten()
    }

    /// Text values of attributes whose type is `oid_or_short_name` (`"CN"`, `"2.5.4.97"`,
    /// `"organizationIdentifier"`), in encoded order.
    pub fn values<'a>(&'a self, oid_or_short_name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes()
            .filter(move |a| a.oid == oid_or_short_name || a.short_name() == oid_or_short_name)
            .filter_map(|a| a.value.as_text())
    }

    /// The first common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.values("CN").next()
    }

    pub fn is_empty(&self) -> bool {
        self.rdns.is_empty()
    }
}

/// RFC 4514 string (last RDN first).
impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            for (j, attr) in rdn.iter().enumerate() {
                if j > 0 {
                    f.write_str("+")?;
                }
                write!(f, "{}=", attr.short_name())?;
                match &attr.value {
                    AttributeValue::Text(s) => write_escaped(f, s)?,
                    AttributeValue::Der(der) => write!(f, "#{}", hex::encode(der))?,
                }
            }
        }
        Ok(())
    }
}

/// RFC 4514 §2.4 escaping. Non-ASCII characters are left as UTF-8.
fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => write!(f, "\\{c}")?,
            '#' | ' ' if i == 0 => write!(f, "\\{c}")?,
            ' ' if i == last => f.write_str("\\ ")?,
            '\0' => f.write_str("\\00")?,
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
}

/// Short names: RFC 4514 §3 for the first ones, then the names OpenSSL and the CA/B forum use.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return None,
    })
}

fn decode_value(any: &Any<'_>) -> AttributeValue {
    let data = any.data;
    let text = if any.header.class() != Class::Universal || any.header.is_constructed() {
        None
    } else {
        match any.header.tag() {
            Tag::Utf8String
            | Tag::PrintableString
            | Tag::Ia5String
            | Tag::NumericString
            | Tag::VisibleString => std::str::from_utf8(data).ok().map(str::to_string),
            // T.61 in practice carries Latin-1.
            Tag::TeletexString => Some(data.iter().map(|&b| b as char).collect()),
            Tag::BmpString => {
                let units = data.chunks(2).map(|c| match c {
                    [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
                    _ => None,
                });
                units
                    .collect::<Option<Vec<u16>>>()
                    .and_then(|u| String::from_utf16(&u).ok())
            }
            Tag::UniversalString => data
                .chunks(4)
                .map(|c| match c {
                    [a, b, c, d] => char::from_u32(u32::from_be_bytes([*a, *b, *c, *d])),
                    _ => None,
                })
                .collect::<Option<String>>(),
            _ => None,
        }
    };
    match text {
        Some(t) => AttributeValue::Text(t),
        None => AttributeValue::Der(reencode(any)),
    }
}

/// The DER TLV of a value (for tags below 31, which covers every universal type).
fn reencode(any: &Any<'_>) -> Vec<u8> {
    let class_bits = (any.header.class() as u8) << 6;
    let constructed = if any.header.is_constructed() { 0x20 } else { 0 };
    let tag = any.header.tag().0;
    let mut out = Vec::with_capacity(any.data.len() + 6);
    out.push(class_bits | constructed | (tag.min(30) as u8));
    let len = any.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(any.data);
    out
}

/// The subject attribute a USCC was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum UsccSource {
    /// organizationIdentifier, 2.5.4.97 (often `NTRCN-` + code).
    OrganizationIdentifier,
    /// serialNumber, 2.5.4.5.
    SerialNumber,
    CommonName,
    OrganizationalUnit,
    Organization,
}

impl UsccSource {
    /// Attribute types searched, in this order.
    pub const SEARCH_ORDER: [UsccSource; 5] = [
        UsccSource::OrganizationIdentifier,
        UsccSource::SerialNumber,
        UsccSource::CommonName,
        UsccSource::OrganizationalUnit,
        UsccSource::Organization,
    ];

    pub fn oid(self) -> &'static str {
        match self {
            UsccSource::OrganizationIdentifier => "2.5.4.97",
            UsccSource::SerialNumber => "2.5.4.5",
            UsccSource::CommonName => "2.5.4.3",
            UsccSource::OrganizationalUnit => "2.5.4.11",
            UsccSource::Organization => "2.5.4.10",
        }
    }

    /// `organizationIdentifier`, `serialNumber`, `CN`, `OU` or `O`.
    pub fn short_name(self) -> &'static str {
        short_name(self.oid()).unwrap_or("?")
    }
}

/// Finds the unified social credit code in a subject.
///
/// Looks in organizationIdentifier, serialNumber, CN, OU, then O (each in encoded order).
/// A value is cut at every character that is not an ASCII letter or digit, so prefixes such as
/// `NTRCN-`, `VATCN-`, `USCC:` and Chinese text or brackets around the code fall away; each
/// piece of exactly 18 characters, or the last then first 18 characters of a longer piece
/// (`NTRCN91150100MA0N12340B`), is a candidate. The first candidate that passes both checks of
/// [`Uscc::parse`] wins.
///
/// A candidate that is a well-formed 18-digit resident ID number (居民身份证号码, GB 11643: a
/// plausible birth date and its own check digit) is skipped, since personal certificates often
/// carry one in serialNumber or CN and about one in 340 of them would also pass the USCC
/// checks. A real all-digit USCC is skipped this way only if positions 7–14 also read as a
/// date and its ID check digit happens to fit, which is rare.
pub fn find_uscc(subject: &DistinguishedName) -> Option<(Uscc, UsccSource)> {
    UsccSource::SEARCH_ORDER.into_iter().find_map(|source| {
        subject
            .values(source.oid())
            .find_map(uscc_in_text)
            .map(|u| (u, source))
    })
}

/// The first USCC candidate in one attribute value (see [`find_uscc`]).
pub fn uscc_in_text(text: &str) -> Option<Uscc> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .flat_map(|piece| {
            let n = piece.len(); // ASCII only, so bytes = chars
            let whole = (n == 18).then_some(piece);
            let tail = (n > 18).then(|| &piece[n - 18..]);
            let head = (n > 18).then(|| &piece[..18]);
            [whole, tail, head].into_iter().flatten()
        })
        .filter(|c| !is_resident_id_number(c))
        .find_map(|c| Uscc::parse(c).ok())
}

/// GB 11643-1999 citizen ID number: 17 digits (6 region, 8 birth date, 3 sequence) and a check
/// character `1 0 X 9 8 7 6 5 4 3 2` indexed by `Σ(d_i · 2^(17-i) mod 11) mod 11`.
fn is_resident_id_number(s: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(&d, w)| u32::from(d - b'0') * w)
        .sum();
    b[17].to_ascii_uppercase() == CHECK[(sum % 11) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uscc::build;

    fn dn(attrs: &[(&str, &str)]) -> DistinguishedName {
        DistinguishedName::from_attributes(attrs.iter().copied())
    }

    #[test]
    fn rfc4514_order_and_escaping() {
        let name = dn(&[
            ("2.5.4.6", "CN"),
            ("2.5.4.10", "内蒙古彩虹建设有限公司"),
            ("2.5.4.11", "a,b+c"),
            ("2.5.4.3", " #lead and trail "),
            ("1.2.3.4", "x"),
        ]);
        assert_eq!(
            name.to_string(),
            r"1.2.3.4=x,CN=\ #lead and trail\ ,OU=a\,b\+c,O=内蒙古彩虹建设有限公司,C=CN"
        );
    }

    #[test]
    fn uscc_found_in_each_location_form() {
        let code = build("91150100", "MA0N1234").unwrap();
        let c = code.as_str();
        let cases: Vec<(DistinguishedName, UsccSource)> = vec![
            (dn(&[("2.5.4.3", c)]), UsccSource::CommonName),
            (
                dn(&[("2.5.4.11", &format!("USCC:{c}"))]),
                UsccSource::OrganizationalUnit,
            ),
            (
                dn(&[("2.5.4.10", &format!("某某公司（{c}）"))]),
                UsccSource::Organization,
            ),
            (
                dn(&[("2.5.4.5", &format!("VATCN-{c}"))]),
                UsccSource::SerialNumber,
            ),
            (
                dn(&[("2.5.4.97", &format!("NTRCN-{c}"))]),
                UsccSource::OrganizationIdentifier,
            ),
            (
                dn(&[("2.5.4.97", &format!("NTRCN{c}"))]),
                UsccSource::OrganizationIdentifier,
            ),
            (
                dn(&[("2.5.4.3", &c.to_ascii_lowercase())]),
                UsccSource::CommonName,
            ),
        ];
        for (name, source) in cases {
            assert_eq!(find_uscc(&name), Some((code.clone(), source)), "{name}");
        }
    }

    #[test]
    fn organization_identifier_wins_over_common_name() {
        let a = build("91150100", "MA0N1234").unwrap();
        let b = build("91110105", "MA01AB2C").unwrap();
        let name = dn(&[("2.5.4.3", b.as_str()), ("2.5.4.97", &format!("NTRCN-{a}"))]);
        assert_eq!(
            find_uscc(&name),
            Some((a, UsccSource::OrganizationIdentifier))
        );
    }

    #[test]
    fn near_misses_are_not_codes() {
        // Right shape, wrong checks; other attribute types; too short.
        let name = dn(&[
            ("2.5.4.3", "911501001234567890"),
            ("2.5.4.7", "91150100MA0N12340B"),
            ("2.5.4.11", "91150100MA0N1234"),
        ]);
        assert_eq!(find_uscc(&name), None);
    }

    #[test]
    fn resident_id_number_is_not_taken_for_a_uscc() {
        // A valid ID number (born 1990-03-07) that happens to pass both USCC checks too.
        let id = "150102199003071042";
        assert!(Uscc::parse(id).is_ok(), "the case this rule exists for");
        assert!(is_resident_id_number(id));
        let company = build("91150100", "MA0N1234").unwrap();
        let name = dn(&[
            ("2.5.4.10", &format!("某某公司 {company}")),
            ("2.5.4.5", &format!("SF{id}")),
            ("2.5.4.3", id),
        ]);
        assert_eq!(find_uscc(&name), Some((company, UsccSource::Organization)));
        // And all-digit codes that are not ID numbers are still found.
        let digits = build("12150000", "01145678").unwrap();
        assert!(!is_resident_id_number(digits.as_str()));
        assert_eq!(uscc_in_text(digits.as_str()), Some(digits));
    }
}
