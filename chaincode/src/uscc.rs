//! Unified social credit code (统一社会信用代码, USCC, GB 32100-2015).
//!
//! Eighteen characters from a 31-letter alphabet. Positions 9–17 are the
//! organization code (组织机构代码, GB 11714) with its own check character at 17;
//! position 18 is the USCC check character. Both checks are verified, and an
//! error says which one failed so an administrator can tell a typo from a
//! fabricated code.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The USCC alphabet; a character's value is its index (no I, O, S, V, Z).
pub const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// `W_i = 3^(i-1) mod 31` for positions 1..=17.
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// GB 11714 weights for the eight body characters of the organization code.
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Why a string is not a valid USCC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum UsccError {
    #[error("USCC must be 18 characters, got {0}")]
    Length(usize),
    #[error(
        "USCC character {ch:?} at position {position} is not allowed (alphabet 0-9 and A-Y without I, O, S, V, Z)"
    )]
    Character { position: usize, ch: char },
    #[error("USCC positions 3-8 must be a 6-digit region code (GB/T 2260), got {0:?}")]
    RegionCode(String),
    #[error(
        "organization code check (组织机构代码校验位, position 17) failed: expected {expected:?}, found {found:?}"
    )]
    OrganizationCheck { expected: char, found: char },
    #[error(
        "USCC check character (校验码, position 18) failed: expected {expected:?}, found {found:?}"
    )]
    UsccCheck { expected: char, found: char },
}

/// A validated, upper-case USCC.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uscc(String);

impl Uscc {
    /// Validates `input` (lower case is accepted and normalized to upper case).
    pub fn parse(input: &str) -> Result<Self, UsccError> {
        let upper = input.trim().to_ascii_uppercase();
        let chars: Vec<char> = upper.chars().collect();
        if chars.len() != 18 {
            return Err(UsccError::Length(chars.len()));
        }
        let mut values = [0u32; 18];
        for (i, &ch) in chars.iter().enumerate() {
            values[i] = alphabet_value(ch).ok_or(UsccError::Character {
                position: i + 1,
                ch,
            })?;
        }
        let region: String = chars[2..8].iter().collect();
        if !region.chars().all(|c| c.is_ascii_digit()) {
            return Err(UsccError::RegionCode(region));
        }
        let expected_org = organization_check(&chars[8..16]);
        if chars[16] != expected_org {
            return Err(UsccError::OrganizationCheck {
                expected: expected_org,
                found: chars[16],
            });
        }
        let expected = uscc_check(&values[..17]);
        if chars[17] != expected {
            return Err(UsccError::UsccCheck {
                expected,
                found: chars[17],
            });
        }
        Ok(Uscc(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// GB/T 2260 administrative region code, positions 3–8.
    pub fn region_code(&self) -> &str {
        &self.0[2..8]
    }

    /// Registration authority code, position 1 (1 机构编制, 5 民政, 9 市场监管, …).
    pub fn registration_authority(&self) -> char {
        self.0.as_bytes()[0] as char
    }
}

/// Completes 17 characters with the USCC check character. Used to build demo
/// and test codes; the organization-code check inside must already be right.
pub fn with_check_character(first17: &str) -> Result<Uscc, UsccError> {
    let upper = first17.to_ascii_uppercase();
    let mut values = Vec::with_capacity(17);
    for (i, ch) in upper.chars().enumerate() {
        values.push(alphabet_value(ch).ok_or(UsccError::Character {
            position: i + 1,
            ch,
        })?);
    }
    if values.len() != 17 {
        return Err(UsccError::Length(values.len() + 1));
    }
    Uscc::parse(&format!("{upper}{}", uscc_check(&values)))
}

/// Builds a valid USCC from an 8-character prefix (authority, type, region)
/// and an 8-character organization-code body, computing both checks.
pub fn build(prefix8: &str, org_body8: &str) -> Result<Uscc, UsccError> {
    let body: Vec<char> = org_body8.to_ascii_uppercase().chars().collect();
    if body.len() != 8 || prefix8.chars().count() != 8 {
        return Err(UsccError::Length(prefix8.chars().count() + body.len() + 2));
    }
    let check = organization_check(&body);
    let body: String = body.into_iter().collect();
    with_check_character(&format!("{prefix8}{body}{check}"))
}

fn alphabet_value(ch: char) -> Option<u32> {
    ALPHABET
        .iter()
        .position(|&a| a as char == ch)
        .map(|p| p as u32)
}

fn uscc_check(values17: &[u32]) -> char {
    let sum: u32 = values17.iter().zip(USCC_WEIGHTS).map(|(v, w)| v * w).sum();
    ALPHABET[((31 - sum % 31) % 31) as usize] as char
}

/// GB 11714: digits are 0–9, letters A=10 … Z=35 (the full Latin alphabet,
/// not the USCC one), `c = 11 - (Σ mod 11)`, 10 → `X`, 11 → `0`.
fn organization_check(body8: &[char]) -> char {
    let sum: u32 = body8
        .iter()
        .zip(ORG_WEIGHTS)
        .map(|(&c, w)| {
            let v = if c.is_ascii_digit() {
                c as u32 - '0' as u32
            } else {
                c as u32 - 'A' as u32 + 10
            };
            v * w
        })
        .sum();
    match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        c => char::from_digit(c, 10).expect("c < 10"),
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uscc({})", self.0)
    }
}

impl TryFrom<String> for Uscc {
    type Error = UsccError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Uscc::parse(&s)
    }
}

impl From<Uscc> for String {
    fn from(u: Uscc) -> String {
        u.0
    }
}

impl std::str::FromStr for Uscc {
    type Err = UsccError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uscc::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Worked by hand from DOMAIN.md:
    // 116100000000000195 — org body 00000001: Σ = 1·2 = 2, c = 11 − 2 = 9 → '9'.
    // USCC: 1·1 + 1·3 + 6·9 + 1·27 + 1·30 + 9·28 = 367; 367 mod 31 = 26; 31 − 26 = 5 → '5'.
    const HAND_WORKED: &str = "116100000000000195";
    // Others computed from the same rule: org check 'X' (c = 10) and letters in the body.
    const VALID: &[&str] = &[
        HAND_WORKED,
        "91150100MA0N12340B",
        "91150200123456788G",
        "52640100A1B2C3D48Q",
        "91370000163058717X",
    ];

    #[test]
    fn valid_codes_parse() {
        for code in VALID {
            let u = Uscc::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(u.as_str(), *code);
        }
    }

    #[test]
    fn lower_case_is_normalized() {
        let u = Uscc::parse("91150100ma0n12340b").unwrap();
        assert_eq!(u.as_str(), "91150100MA0N12340B");
    }

    #[test]
    fn wrong_length() {
        assert_eq!(Uscc::parse("9115"), Err(UsccError::Length(4)));
        assert_eq!(
            Uscc::parse("116100000000000195X"),
            Err(UsccError::Length(19))
        );
    }

    #[test]
    fn forbidden_letters() {
        // 'I' is not in the alphabet.
        assert_eq!(
            Uscc::parse("9115010IMA0N12340B"),
            Err(UsccError::Character {
                position: 8,
                ch: 'I'
            })
        );
    }

    #[test]
    fn organization_check_failure_named() {
        // Change the org check character (position 17) from '0' to '1'.
        let err = Uscc::parse("91150100MA0N12341B").unwrap_err();
        assert_eq!(
            err,
            UsccError::OrganizationCheck {
                expected: '0',
                found: '1'
            }
        );
        assert!(err.to_string().contains("organization code check"));
    }

    #[test]
    fn uscc_check_failure_named() {
        let err = Uscc::parse("116100000000000196").unwrap_err();
        assert_eq!(
            err,
            UsccError::UsccCheck {
                expected: '5',
                found: '6'
            }
        );
    }

    #[test]
    fn region_must_be_digits() {
        assert!(matches!(
            Uscc::parse("91A50100MA0N12340B"),
            Err(UsccError::RegionCode(_))
        ));
    }

    #[test]
    fn remainder_is_not_the_check_value() {
        // The common blog mistake uses Σ mod 31 as the check; for the hand-worked
        // code that would be 26 → 'R', which must be rejected.
        assert!(Uscc::parse("11610000000000019R").is_err());
    }

    #[test]
    fn build_matches_rule() {
        assert_eq!(build("11610000", "00000001").unwrap().as_str(), HAND_WORKED);
        assert_eq!(
            build("91370000", "16305871").unwrap().as_str(),
            "91370000163058717X"
        );
    }

    #[test]
    fn region_code_accessor() {
        assert_eq!(Uscc::parse(VALID[1]).unwrap().region_code(), "150100");
    }

    proptest::proptest! {
        #[test]
        fn any_built_code_is_valid_and_any_single_change_in_check_fails(
            body in "[0-9A-HJ-NP-RTUWXY]{8}", region in "[0-9]{6}", c in 0usize..31
        ) {
            let u = build(&format!("91{region}"), &body).unwrap();
            let mut chars: Vec<char> = u.as_str().chars().collect();
            let replacement = ALPHABET[c] as char;
            proptest::prop_assume!(replacement != chars[17]);
            chars[17] = replacement;
            let changed: String = chars.into_iter().collect();
            proptest::prop_assert!(Uscc::parse(&changed).is_err());
        }
    }
}
