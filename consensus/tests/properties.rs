//! Property tests of the pieces every node and every outside verifier relies on.

use caihong_consensus::*;
use proptest::prelude::*;

fn signer(i: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed([i; 32])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Over one cycle of `total power` slots, every validator proposes exactly its power.
    #[test]
    fn proposer_rotation_matches_power(powers in prop::collection::vec(1u64..=5, 1..=10), height in 0u64..1000) {
        let vals: Vec<Validator> = powers
            .iter()
            .enumerate()
            .map(|(i, &power)| Validator { public_key: signer(i as u8 + 1).public_key(), power })
            .collect();
        let set = ValidatorSet::new(vals).unwrap();
        let total = set.total_power();
        let mut counts = std::collections::BTreeMap::new();
        for r in 0..total as u32 {
            *counts.entry(set.proposer(height, r).public_key).or_insert(0u64) += 1;
        }
        for v in set.validators() {
            prop_assert_eq!(counts.get(&v.public_key).copied().unwrap_or(0), v.power);
        }
    }

    /// Flipping any bit of any signature, or changing the chain id, breaks a certificate.
    #[test]
    fn certificates_do_not_survive_tampering(byte in 0usize..64, bit in 0u8..8, which in 0usize..3, round in 0u32..5) {
        let signers: Vec<_> = (1..=4).map(signer).collect();
        let set = ValidatorSet::equal_power(signers.iter().map(|s| s.public_key())).unwrap();
        let chain = ChainId::new("caihong-prop");
        let value = Hash::digest(b"block");
        let votes: Vec<SignedVote> = signers[..3]
            .iter()
            .map(|s| Vote { kind: VoteKind::Precommit, height: 9, round, value: Some(value), validator: s.public_key() }.sign(&chain, s))
            .collect();
        let cert = CommitCertificate::from_precommits(9, round, value, &votes);
        prop_assert_eq!(cert.verify(&set, &chain), Ok(()));
        prop_assert!(cert.verify(&set, &ChainId::new("caihong-other")).is_err());
        let mut bad = cert.clone();
        bad.signatures[which].signature.0[byte] ^= 1 << bit;
        prop_assert!(bad.verify(&set, &chain).is_err());
    }

    /// Sign bytes are domain-separated: a prevote's signature is not a precommit's, and a
    /// vote's is not valid on another chain.
    #[test]
    fn signatures_are_domain_separated(height in 1u64..100, round in 0u32..10, nil in any::<bool>()) {
        let s = signer(7);
        let chain = ChainId::new("caihong-prop");
        let value = if nil { None } else { Some(Hash::digest(b"v")) };
        let pv = Vote { kind: VoteKind::Prevote, height, round, value, validator: s.public_key() }.sign(&chain, &s);
        prop_assert!(pv.verify_signature(&chain));
        let mut as_precommit = pv.clone();
        as_precommit.vote.kind = VoteKind::Precommit;
        prop_assert!(!as_precommit.verify_signature(&chain));
        prop_assert!(!pv.verify_signature(&ChainId::new("caihong-prop2")));
        let bytes = bincode::serialize(&Message::Vote(pv.clone())).unwrap();
        let back: Message = bincode::deserialize(&bytes).unwrap();
        prop_assert_eq!(back, Message::Vote(pv));
    }
}
