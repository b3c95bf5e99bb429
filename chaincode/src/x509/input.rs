//! PEM or DER: find the DER bytes of the structure the caller asked for, and say clearly
//! what the input was when it is not that.

use x509_parser::pem::Pem;

use super::CertError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Certificate,
    Crl,
}

impl Kind {
    /// PEM labels accepted for this kind, the first being the canonical one (RFC 7468).
    fn labels(self) -> &'static [&'static str] {
        match self {
            Kind::Certificate => &["CERTIFICATE", "X509 CERTIFICATE"],
            Kind::Crl => &["X509 CRL", "CRL"],
        }
    }
}

/// At most this many PEM blocks are looked at before giving up (a bound on work, not a limit
/// any real file reaches).
const MAX_PEM_BLOCKS: usize = 64;

/// Returns the DER of the first block of `kind` (PEM) or the input itself (DER), after
/// checking that DER is one complete top-level SEQUENCE.
pub(crate) fn der_from(input: &[u8], kind: Kind) -> Result<Vec<u8>, CertError> {
    if input.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(CertError::Empty);
    }
    if contains(input, b"-----BEGIN ") {
        let der = pem_block(input, kind)?;
        check_der_envelope(&der)?;
        return Ok(der);
    }
    check_der_envelope(input)?;
    Ok(input.to_vec())
}

fn pem_block(input: &[u8], kind: Kind) -> Result<Vec<u8>, CertError> {
    let mut found = Vec::new();
    for block in Pem::iter_from_buffer(input).take(MAX_PEM_BLOCKS) {
        let pem = block.map_err(|e| CertError::Malformed {
            field: "PEM",
            reason: e.to_string(),
        })?;
        if kind.labels().contains(&pem.label.as_str()) {
            return Ok(pem.contents);
        }
        found.push(pem.label);
    }
    Err(CertError::NoPemBlock {
        expected: kind.labels()[0],
        found,
    })
}

/// Checks that `der` starts with a SEQUENCE whose length fits the input, so that "random
/// bytes" and "truncated file" get their own errors before the X.509 parser runs.
fn check_der_envelope(der: &[u8]) -> Result<(), CertError> {
    let not_der = |reason: String| CertError::NotPemOrDer { reason };
    let first = *der.first().ok_or(CertError::Empty)?;
    if first != 0x30 {
        return Err(not_der(format!(
            "no -----BEGIN line, and the first byte is 0x{first:02x}, not a DER SEQUENCE (0x30)"
        )));
    }
    let (header, content) = match der.get(1) {
        None => return Err(not_der("a single byte".into())),
        Some(&l) if l < 0x80 => (2usize, l as usize),
        Some(&l) if l == 0x80 || l > 0x84 => {
            return Err(not_der(format!("unsupported DER length byte 0x{l:02x}")));
        }
        Some(&l) => {
            let n = (l & 0x7f) as usize;
            let bytes = der.get(2..2 + n).ok_or_else(|| CertError::Malformed {
                field: "DER",
                reason: "truncated in the length of the outer SEQUENCE".into(),
            })?;
            let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
            (2 + n, len)
        }
    };
    let have = der.len() - header;
    if content > have {
        return Err(CertError::Malformed {
            field: "DER",
            reason: format!(
                "truncated: the outer SEQUENCE needs {content} bytes, only {have} present"
            ),
        });
    }
    Ok(())
}

/// One DER tag-length-value with a one-byte tag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    /// Tag, length and contents.
    pub whole: &'a [u8],
    pub contents: &'a [u8],
}

/// Reads one strict-DER TLV and returns it with the bytes after it. Lengths must be definite
/// and minimally encoded (at most 4 length bytes).
pub(crate) fn der_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, after_tag) = input.split_first()?;
    let (&l, after_len) = after_tag.split_first()?;
    let (len, header) = if l < 0x80 {
        (l as usize, 2)
    } else {
        let n = (l & 0x7f) as usize;
        let bytes = after_len.get(..n)?;
        if n == 0 || n > 4 || bytes[0] == 0 {
            return None; // indefinite, too long, or a leading zero length byte
        }
        let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        if len < 0x80 {
            return None; // long form where the short form fits
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    let tlv = Tlv {
        tag,
        whole,
        contents: &whole[header..],
    };
    Some((tlv, &input[end..]))
}

/// Checks the part of a certificate or CRL that the signature does not cover:
/// `SEQUENCE { tbs SEQUENCE, signatureAlgorithm SEQUENCE, signatureValue BIT STRING }` in
/// strict DER with nothing after it, and the outer signatureAlgorithm byte-identical to the
/// one inside the TBS (RFC 5280 §4.1.1.2, §5.1.1.2).
///
/// Without this, a lenient parse would let someone re-encode these unsigned bytes and get a
/// second DER, with a second fingerprint, for the same signed certificate.
pub(crate) fn check_unsigned_envelope(der: &[u8], kind: Kind) -> Result<(), CertError> {
    let field = match kind {
        Kind::Certificate => "certificate",
        Kind::Crl => "CRL",
    };
    let fail = |reason: &str| CertError::Malformed {
        field,
        reason: reason.to_string(),
    };
    let not_der = || fail("the outer structure is not strict DER");
    let expect = |input, tag| match der_tlv(input) {
        Some((tlv, rest)) if tlv.tag == tag => Ok((tlv, rest)),
        _ => Err(not_der()),
    };
    let (outer, rest) = expect(der, 0x30)?;
    if !rest.is_empty() {
        return Err(fail("trailing bytes after the outer SEQUENCE"));
    }
    let (tbs, rest) = expect(outer.contents, 0x30)?;
    let (outer_alg, rest) = expect(rest, 0x30)?;
    let (_signature, rest) = expect(rest, 0x03)?;
    if !rest.is_empty() {
        return Err(not_der());
    }
    // TBS: certificate = [0] version?, serial INTEGER, signature AlgorithmIdentifier, …
    //      CRL         = version INTEGER?, signature AlgorithmIdentifier, …
    let skip: &[u8] = match kind {
        Kind::Certificate => &[0xa0, 0x02],
        Kind::Crl => &[0x02],
    };
    let (mut field, mut rest) = der_tlv(tbs.contents).ok_or_else(not_der)?;
    for &optional_or_skipped in skip {
        if field.tag == optional_or_skipped {
            (field, rest) = der_tlv(rest).ok_or_else(not_der)?;
        }
    }
    if field.tag != 0x30 || field.whole != outer_alg.whole {
        return Err(CertError::Malformed {
            field: "signatureAlgorithm",
            reason: "the outer signature algorithm is not byte-identical to the signed one".into(),
        });
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A short reason from an x509-parser error.
pub(crate) fn nom_reason<E: std::fmt::Display>(e: x509_parser::nom::Err<E>) -> String {
    match e {
        x509_parser::nom::Err::Incomplete(_) => "truncated".into(),
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e.to_string(),
    }
}
