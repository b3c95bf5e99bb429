//! Sealed seat notices (密封席位通知): the cryptography that keeps an evaluation committee
//! secret until the award and lets the chain check every notice after the reveal.
//!
//! Each drawn slot (a primary seat or a backup) gets a notice encrypted to the member that
//! is the expert's home, under that member's X25519 key registered through governance:
//!
//! - `blind = SHA-256("caihong/seat-blind/v1" ‖ u64_be(id) ‖ u32_be(r) ‖ u32_be(j) ‖ secret)`,
//!   the slot's opening value; `r` is the requirement and `j` the slot (0-based, primaries
//!   then backups in draw order);
//! - `commitment = SHA-256("caihong/seat/v1" ‖ u64_be(id) ‖ u32_be(r) ‖ u32_be(j) ‖ expert ‖
//!   blind)`, public, binds the slot to one expert without naming it (the blind makes
//!   enumerating the public pool useless);
//! - the notice: an ephemeral X25519 key `e = SHA-256("caihong/seat-ephemeral/v1" ‖ … ‖
//!   secret)` (as an RFC 7748 scalar), `k = HKDF-SHA256(salt = none, ikm = X25519(e, member
//!   key), info = "caihong/seat-notice/v1" ‖ e·G ‖ member key ‖ u64_be(id) ‖ u32_be(r) ‖
//!   u32_be(j))`, and `ChaCha20-Poly1305(k, nonce = 0, aad = u64_be(id) ‖ u32_be(r) ‖
//!   u32_be(j), plaintext = expert ‖ blind)`. A key is used for one message only, so the zero
//!   nonce is safe.
//!
//! The home decrypts with its private key and learns the expert and the blind (so it can
//! answer); nobody else can. Because the ephemeral keys and blinds derive from the secret the
//! requester committed to before the anchor, revealing the secret lets the chain recompute
//! every notice, decrypt it and open every commitment: a notice for the wrong expert, to the
//! wrong member or in the wrong order cannot survive the reveal.
//!
//! The requester's own copy of the secret is sealed the same way to its own key (slot
//! `u32::MAX, u32::MAX`), so its node can show the whole committee without the secret file.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x25519_dalek::{PublicKey as XPublic, StaticSecret};

use crate::members::MemberId;
use crate::types::{EncryptionKey, Hash};

const BLIND_TAG: &[u8] = b"caihong/seat-blind/v1";
const SEAT_TAG: &[u8] = b"caihong/seat/v1";
const RESPONSE_TAG: &[u8] = b"caihong/seat-response/v1";
const EPHEMERAL_TAG: &[u8] = b"caihong/seat-ephemeral/v1";
const NOTICE_INFO: &[u8] = b"caihong/seat-notice/v1";
/// The slot of the requester's own copy.
pub const REQUESTER_COPY: (u32, u32) = (u32::MAX, u32::MAX);
/// Bytes of a notice's ciphertext: expert and blind, plus the Poly1305 tag.
pub const NOTICE_LEN: usize = 32 + 32 + 16;

/// Ciphertext for one member, with the ephemeral public key it was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBox {
    pub ephemeral: EncryptionKey,
    #[serde(with = "hex_bytes")]
    pub ciphertext: Vec<u8>,
}

/// One slot's public part: who must read it, the key it was sealed to, and the commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatNotice {
    /// The expert's home member (public: seats per member are public).
    pub recipient: MemberId,
    /// The recipient's encryption key when the notice was sealed.
    pub recipient_key: EncryptionKey,
    pub sealed: SealedBox,
    pub commitment: Hash,
}

/// What the requester submits after the anchor: per requirement, `count` primary notices
/// then `backups` backup notices in draw order, and its own sealed copy of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub requirements: Vec<Vec<SeatNotice>>,
    pub requester_copy: SealedBox,
}

/// A notice as its home reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    pub expert: Hash,
    pub blind: Hash,
}

fn slot_parts(id: u64, r: u32, j: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.to_be_bytes());
    b[8..12].copy_from_slice(&r.to_be_bytes());
    b[12..].copy_from_slice(&j.to_be_bytes());
    b
}

/// The opening value of slot `(r, j)`.
pub fn seat_blind(secret: &[u8], id: u64, r: u32, j: u32) -> Hash {
    Hash::of_parts(&[BLIND_TAG, &slot_parts(id, r, j), secret])
}

/// The public commitment of slot `(r, j)` to `expert`.
pub fn seat_commitment(id: u64, r: u32, j: u32, expert: &Hash, blind: &Hash) -> Hash {
    Hash::of_parts(&[SEAT_TAG, &slot_parts(id, r, j), &expert.0, &blind.0])
}

/// The commitment a home sends with its answer: binds the answer to the seat's expert.
pub fn response_commitment(seat: &Hash, accept: bool, blind: &Hash) -> Hash {
    Hash::of_parts(&[RESPONSE_TAG, &seat.0, &[u8::from(accept)], &blind.0])
}

fn ephemeral(secret: &[u8], id: u64, r: u32, j: u32) -> StaticSecret {
    StaticSecret::from(Hash::of_parts(&[EPHEMERAL_TAG, &slot_parts(id, r, j), secret]).0)
}

/// Whether `key` is a point whose shared secrets are not all zero (rejects low-order points).
pub fn valid_encryption_key(key: &EncryptionKey) -> bool {
    let probe = StaticSecret::from([7u8; 32]);
    probe
        .diffie_hellman(&XPublic::from(key.0))
        .was_contributory()
}

/// The public key of a member's private encryption key.
pub fn encryption_public(private: &StaticSecret) -> EncryptionKey {
    EncryptionKey(XPublic::from(private).to_bytes())
}

fn cipher(
    shared: &[u8; 32],
    eph: &EncryptionKey,
    to: &EncryptionKey,
    parts: &[u8; 16],
) -> ChaCha20Poly1305 {
    let mut info = Vec::with_capacity(NOTICE_INFO.len() + 80);
    info.extend_from_slice(NOTICE_INFO);
    info.extend_from_slice(&eph.0);
    info.extend_from_slice(&to.0);
    info.extend_from_slice(parts);
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(None, shared)
        .expand(&info, &mut okm)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    ChaCha20Poly1305::new(Key::from_slice(&okm))
}

/// Seals `plaintext` for slot `(r, j)` to `to`, with the ephemeral key derived from `secret`.
pub fn seal_to(
    secret: &[u8],
    id: u64,
    r: u32,
    j: u32,
    to: &EncryptionKey,
    plaintext: &[u8],
) -> SealedBox {
    let e = ephemeral(secret, id, r, j);
    let eph = encryption_public(&e);
    let shared = e.diffie_hellman(&XPublic::from(to.0));
    let parts = slot_parts(id, r, j);
    let ciphertext = cipher(shared.as_bytes(), &eph, to, &parts)
        .encrypt(
            Nonce::from_slice(&[0u8; 12]),
            Payload {
                msg: plaintext,
                aad: &parts,
            },
        )
        .expect("ChaCha20-Poly1305 encrypts any short message");
    SealedBox {
        ephemeral: eph,
        ciphertext,
    }
}

fn open(
    shared: &[u8; 32],
    b: &SealedBox,
    to: &EncryptionKey,
    id: u64,
    r: u32,
    j: u32,
) -> Option<Vec<u8>> {
    let parts = slot_parts(id, r, j);
    cipher(shared, &b.ephemeral, to, &parts)
        .decrypt(
            Nonce::from_slice(&[0u8; 12]),
            Payload {
                msg: &b.ciphertext,
                aad: &parts,
            },
        )
        .ok()
}

/// Opens a box addressed to the holder of `private` (a home reading its notice).
pub fn open_as_member(
    private: &StaticSecret,
    b: &SealedBox,
    id: u64,
    r: u32,
    j: u32,
) -> Option<Vec<u8>> {
    let shared = private.diffie_hellman(&XPublic::from(b.ephemeral.0));
    open(shared.as_bytes(), b, &encryption_public(private), id, r, j)
}

/// Opens a box with the requester's revealed secret (the chain after the reveal); `None` when
/// the box was not made from this secret for `to`.
pub fn open_with_secret(
    secret: &[u8],
    b: &SealedBox,
    to: &EncryptionKey,
    id: u64,
    r: u32,
    j: u32,
) -> Option<Vec<u8>> {
    let e = ephemeral(secret, id, r, j);
    if encryption_public(&e) != b.ephemeral {
        return None;
    }
    let shared = e.diffie_hellman(&XPublic::from(to.0));
    open(shared.as_bytes(), b, to, id, r, j)
}

/// Splits a notice's plaintext into expert and blind.
pub fn parse_notice(plain: &[u8]) -> Option<Opened> {
    (plain.len() == 64).then(|| Opened {
        expert: Hash(plain[..32].try_into().expect("32 bytes")),
        blind: Hash(plain[32..].try_into().expect("32 bytes")),
    })
}

/// The notice of slot `(r, j)` for `expert`, whose home is `recipient` with key `key`.
pub fn notice(
    secret: &[u8],
    id: u64,
    r: u32,
    j: u32,
    expert: &Hash,
    recipient: &MemberId,
    key: &EncryptionKey,
) -> SeatNotice {
    let blind = seat_blind(secret, id, r, j);
    let mut plain = [0u8; 64];
    plain[..32].copy_from_slice(&expert.0);
    plain[32..].copy_from_slice(&blind.0);
    SeatNotice {
        recipient: recipient.clone(),
        recipient_key: *key,
        sealed: seal_to(secret, id, r, j, key, &plain),
        commitment: seat_commitment(id, r, j, expert, &blind),
    }
}

/// A home's reading of its notice: the expert and blind, if the notice decrypts and its
/// commitment opens to them (a notice that does not is the requester's fault, shown as such).
pub fn read_notice(
    private: &StaticSecret,
    n: &SeatNotice,
    id: u64,
    r: u32,
    j: u32,
) -> Option<Opened> {
    let o = parse_notice(&open_as_member(private, &n.sealed, id, r, j)?)?;
    (seat_commitment(id, r, j, &o.expert, &o.blind) == n.commitment).then_some(o)
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(v))
        } else {
            v.serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
        } else {
            Vec::<u8>::deserialize(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member_key(seed: u8) -> StaticSecret {
        StaticSecret::from([seed; 32])
    }

    #[test]
    fn a_notice_opens_for_its_home_and_for_the_secret_only() {
        let home = member_key(1);
        let other = member_key(2);
        let key = encryption_public(&home);
        let expert = Hash::of(b"expert");
        let secret = [9u8; 32];
        let m = MemberId::parse("baotou").unwrap();
        let n = notice(&secret, 7, 0, 2, &expert, &m, &key);
        assert_eq!(n.sealed.ciphertext.len(), NOTICE_LEN);
        let o = read_notice(&home, &n, 7, 0, 2).expect("home reads its notice");
        assert_eq!(o.expert, expert);
        assert_eq!(o.blind, seat_blind(&secret, 7, 0, 2));
        assert!(
            read_notice(&other, &n, 7, 0, 2).is_none(),
            "another member cannot"
        );
        assert!(
            read_notice(&home, &n, 7, 0, 3).is_none(),
            "bound to its slot"
        );
        let plain = open_with_secret(&secret, &n.sealed, &key, 7, 0, 2).unwrap();
        assert_eq!(parse_notice(&plain).unwrap(), o);
        assert!(open_with_secret(&[8u8; 32], &n.sealed, &key, 7, 0, 2).is_none());
        // The ciphertext does not carry the expert id in clear.
        assert!(!n.sealed.ciphertext.windows(32).any(|w| w == expert.0));
    }

    #[test]
    fn responses_bind_to_the_answer() {
        let c = Hash::of(b"seat");
        let b = Hash::of(b"blind");
        assert_ne!(
            response_commitment(&c, true, &b),
            response_commitment(&c, false, &b)
        );
    }

    #[test]
    fn low_order_keys_are_refused() {
        assert!(!valid_encryption_key(&EncryptionKey([0; 32])));
        assert!(valid_encryption_key(&encryption_public(&member_key(3))));
    }
}
