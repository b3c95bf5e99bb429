//! State keys, typed by domain. Each table has its own ASCII prefix; integer
//! parts are big-endian so byte order is numeric order, and text parts (member
//! ids, USCCs, specialty codes) never contain `/`.

use crate::types::{Hash, PublicKey};
use crate::uscc::Uscc;

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            key.push(b'/');
        }
        key.extend_from_slice(p);
    }
    key
}

/// Big-endian bytes of a u64 (ordering and fixed width).
pub fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Reads the big-endian u64 at the end of a key.
pub fn trailing_u64(key: &[u8]) -> u64 {
    let tail: [u8; 8] = key[key.len() - 8..]
        .try_into()
        .expect("key ends with 8 bytes");
    u64::from_be_bytes(tail)
}

/// Reads the 32-byte hash at the end of a key.
pub fn trailing_hash(key: &[u8]) -> Hash {
    Hash(
        key[key.len() - 32..]
            .try_into()
            .expect("key ends with 32 bytes"),
    )
}

pub const CHAIN_ID: &[u8] = b"meta/chain_id";
pub const PARAMS: &[u8] = b"meta/params";

// Members, operators, nonces.
pub fn member(id: &str) -> Vec<u8> {
    join(&[b"mem", id.as_bytes()])
}
pub const MEMBER_PREFIX: &[u8] = b"mem/";
pub fn member_by_node_key(key: &PublicKey) -> Vec<u8> {
    join(&[b"mem_node", &key.0])
}
pub fn operator(key: &PublicKey) -> Vec<u8> {
    join(&[b"op", &key.0])
}
pub const OPERATOR_PREFIX: &[u8] = b"op/";
pub fn nonce(key: &PublicKey) -> Vec<u8> {
    join(&[b"nonce", &key.0])
}

// Governance.
pub const PROPOSAL_NEXT_ID: &[u8] = b"gov_next";
pub fn proposal(id: u64) -> Vec<u8> {
    join(&[b"gov", &be(id)])
}
pub const PROPOSAL_PREFIX: &[u8] = b"gov/";
pub const PENDING_PREFIX: &[u8] = b"gov_pending/";
pub fn pending_change(effective_height: u64, id: u64) -> Vec<u8> {
    join(&[b"gov_pending", &be(effective_height), &be(id)])
}

// Subjects.
pub fn subject(uscc: &Uscc) -> Vec<u8> {
    join(&[b"subj", uscc.as_str().as_bytes()])
}
pub const SUBJECT_PREFIX: &[u8] = b"subj/";
pub fn subject_version(uscc: &Uscc, version: u32) -> Vec<u8> {
    join(&[b"subj_v", uscc.as_str().as_bytes(), &version.to_be_bytes()])
}
pub fn subject_versions(uscc: &Uscc) -> Vec<u8> {
    let mut k = join(&[b"subj_v", uscc.as_str().as_bytes()]);
    k.push(b'/');
    k
}

// Credit records.
pub const CREDIT_NEXT_ID: &[u8] = b"cr_next";
pub fn credit(id: u64) -> Vec<u8> {
    join(&[b"cr", &be(id)])
}
pub fn credit_by_uscc(uscc: &Uscc, id: u64) -> Vec<u8> {
    join(&[b"cr_uscc", uscc.as_str().as_bytes(), &be(id)])
}
pub fn credit_by_uscc_prefix(uscc: &Uscc) -> Vec<u8> {
    let mut k = join(&[b"cr_uscc", uscc.as_str().as_bytes()]);
    k.push(b'/');
    k
}
/// How a record's publication ended early (repair, blacklist removal, or revocation).
pub fn credit_end(id: u64) -> Vec<u8> {
    join(&[b"cr_end", &be(id)])
}
/// The revocation (撤销) of a record's decision, which also ends its penalty's term.
pub fn credit_revocation(id: u64) -> Vec<u8> {
    join(&[b"cr_revoked", &be(id)])
}
/// Deduplication of a decision: the same document for the same subject and kind.
pub fn credit_document(uscc: &Uscc, kind: u8, document_no: &str) -> Vec<u8> {
    let doc = Hash::of(document_no.as_bytes());
    join(&[b"cr_doc", uscc.as_str().as_bytes(), &[kind], &doc.0])
}

// CA recognition.
pub fn issuer(fingerprint: &Hash) -> Vec<u8> {
    join(&[b"ca", &fingerprint.0])
}
pub const ISSUER_PREFIX: &[u8] = b"ca/";
pub fn recognition(fingerprint: &Hash, member: &str) -> Vec<u8> {
    join(&[b"ca_rec", &fingerprint.0, member.as_bytes()])
}
pub fn recognition_prefix(fingerprint: &Hash) -> Vec<u8> {
    let mut k = join(&[b"ca_rec", &fingerprint.0]);
    k.push(b'/');
    k
}
pub fn certificate(fingerprint: &Hash) -> Vec<u8> {
    join(&[b"cert", &fingerprint.0])
}
pub fn certificate_by_serial(issuer: &Hash, serial_hex: &str) -> Vec<u8> {
    join(&[b"cert_sn", &issuer.0, serial_hex.as_bytes()])
}
pub fn certificate_by_uscc(uscc: &Uscc, fingerprint: &Hash) -> Vec<u8> {
    join(&[b"cert_uscc", uscc.as_str().as_bytes(), &fingerprint.0])
}
pub fn certificate_by_uscc_prefix(uscc: &Uscc) -> Vec<u8> {
    let mut k = join(&[b"cert_uscc", uscc.as_str().as_bytes()]);
    k.push(b'/');
    k
}
pub fn revocation(issuer: &Hash, serial_hex: &str) -> Vec<u8> {
    join(&[b"revoked", &issuer.0, serial_hex.as_bytes()])
}

// Experts and extractions.
pub fn expert(id: &Hash) -> Vec<u8> {
    join(&[b"exp", &id.0])
}
pub const EXPERT_PREFIX: &[u8] = b"exp/";
/// Experts by specialty code; scanning `expert_specialty_prefix(code)` finds
/// every expert whose code starts with `code`.
pub fn expert_by_specialty(code: &str, id: &Hash) -> Vec<u8> {
    let mut k = expert_specialty_prefix(code);
    k.push(b'/');
    k.extend_from_slice(&id.0);
    k
}
pub fn expert_specialty_prefix(code: &str) -> Vec<u8> {
    join(&[b"exp_spec", code.as_bytes()])
}
pub fn expert_conduct(id: &Hash, seq: u64) -> Vec<u8> {
    join(&[b"exp_cond", &id.0, &be(seq)])
}
pub fn expert_conduct_prefix(id: &Hash) -> Vec<u8> {
    let mut k = join(&[b"exp_cond", &id.0]);
    k.push(b'/');
    k
}
pub fn expert_assignment(id: &Hash, extraction: u64) -> Vec<u8> {
    join(&[b"exp_busy", &id.0, &be(extraction)])
}
pub fn expert_assignment_prefix(id: &Hash) -> Vec<u8> {
    let mut k = join(&[b"exp_busy", &id.0]);
    k.push(b'/');
    k
}
pub const EXTRACTION_NEXT_ID: &[u8] = b"ext_next";
pub fn extraction(id: u64) -> Vec<u8> {
    join(&[b"ext", &be(id)])
}
pub const EXTRACTION_PREFIX: &[u8] = b"ext/";
/// Extractions waiting for the hash of the block that included them.
pub fn extraction_anchor(height: u64, id: u64) -> Vec<u8> {
    join(&[b"ext_anchor", &be(height), &be(id)])
}
pub const EXTRACTION_ANCHOR_PREFIX: &[u8] = b"ext_anchor/";
/// Anchored extractions waiting for the requester's seal, by the last height a seal is taken.
pub fn extraction_seal(deadline: u64, id: u64) -> Vec<u8> {
    join(&[b"ext_seal", &be(deadline), &be(id)])
}
pub const EXTRACTION_SEAL_PREFIX: &[u8] = b"ext_seal/";
/// Sealed extractions not yet revealed, by the time (ms) the reveal is due at the latest.
/// Time-based, so not block work: the next block after the time closes it.
pub fn extraction_reveal_due(deadline_ms: u64, id: u64) -> Vec<u8> {
    join(&[b"ext_due", &be(deadline_ms), &be(id)])
}
pub const EXTRACTION_REVEAL_DUE_PREFIX: &[u8] = b"ext_due/";
/// The eligible candidate lists computed at an extraction's anchor (the draw's input). Public
/// knowledge (anyone can compute them from the pool and the request), kept apart from the
/// record so that the sealed view carries no expert identifier.
pub fn extraction_candidates(id: u64) -> Vec<u8> {
    join(&[b"ext_cand", &be(id)])
}

/// One service of an expert for a tenderee (回避 cooldown), per extraction;
/// written when the committee becomes public (the reveal, or a home's disclosure).
pub fn expert_service(id: &Hash, tenderee: &Uscc, extraction: u64) -> Vec<u8> {
    join(&[
        b"exp_served",
        &id.0,
        tenderee.as_str().as_bytes(),
        &be(extraction),
    ])
}
pub fn expert_service_prefix(id: &Hash, tenderee: &Uscc) -> Vec<u8> {
    let mut k = join(&[b"exp_served", &id.0, tenderee.as_str().as_bytes()]);
    k.push(b'/');
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_parts_sort_numerically() {
        assert!(credit(255) < credit(256));
        assert!(pending_change(9, 1) < pending_change(10, 0));
        assert_eq!(trailing_u64(&credit(4242)), 4242);
    }

    #[test]
    fn specialty_prefix_matches_longer_codes_only() {
        let id = Hash::of(b"e");
        let k = expert_by_specialty("A010101", &id);
        assert!(k.starts_with(&expert_specialty_prefix("A0101")));
        assert!(!k.starts_with(&expert_specialty_prefix("A02")));
    }
}
