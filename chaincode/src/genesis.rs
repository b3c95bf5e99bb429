//! Genesis (创世): the alliance's first members, their keys and the chain
//! parameters, turned into the initial state.

use serde::{Deserialize, Serialize};

use crate::codec::encode;
use crate::error::{ErrorCode, TxError, ensure};
use crate::keys;
use crate::members::{Member, MemberId, check_region_code, insert_member};
use crate::params::ChainParams;
use crate::state::{MemState, Overlay, StateReader, WriteSet};
use crate::types::{EncryptionKey, PublicKey, TimestampMs};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisMember {
    pub id: String,
    pub name: String,
    pub region_code: String,
    pub node_key: PublicKey,
    pub admin_keys: Vec<PublicKey>,
    pub p2p_address: String,
    /// X25519 public key for sealed extraction notices (see `experts::seal`).
    #[serde(default)]
    pub encryption_key: Option<EncryptionKey>,
}

/// What every node starts from; its hash identifies the alliance's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: String,
    pub genesis_time_ms: TimestampMs,
    pub members: Vec<GenesisMember>,
    pub params: ChainParams,
}

impl Genesis {
    /// The state at height 0, or what is wrong with the genesis.
    pub fn initial_state(&self) -> Result<WriteSet, TxError> {
        ensure(
            !self.chain_id.is_empty() && self.chain_id.len() <= 64,
            ErrorCode::InvalidInput,
            || "chain id must be 1-64 characters".into(),
        )?;
        ensure(!self.members.is_empty(), ErrorCode::InvalidInput, || {
            "genesis needs at least one member".into()
        })?;
        let empty = MemState::new();
        let mut overlay = Overlay::new(&empty);
        overlay.put(keys::CHAIN_ID.to_vec(), encode(&self.chain_id));
        overlay.put(keys::PARAMS.to_vec(), encode(&self.params));
        let mut seen_keys = std::collections::BTreeSet::new();
        for gm in &self.members {
            let id = MemberId::parse(&gm.id)?;
            check_region_code(&gm.region_code)?;
            ensure(
                overlay.get(&keys::member(&gm.id)).is_none(),
                ErrorCode::AlreadyExists,
                || format!("member {} appears twice in genesis", gm.id),
            )?;
            ensure(!gm.admin_keys.is_empty(), ErrorCode::InvalidInput, || {
                format!("member {} needs at least one admin key", gm.id)
            })?;
            for key in std::iter::once(&gm.node_key).chain(&gm.admin_keys) {
                ensure(seen_keys.insert(*key), ErrorCode::AlreadyExists, || {
                    format!("key {key} is used twice in genesis")
                })?;
                key.verifying_key().map_err(|_| {
                    TxError::new(
                        ErrorCode::InvalidInput,
                        format!("{key} is not an ed25519 key"),
                    )
                })?;
            }
            insert_member(
                &mut overlay,
                &Member {
                    id,
                    name: gm.name.clone(),
                    region_code: gm.region_code.clone(),
                    node_key: gm.node_key,
                    admin_keys: gm.admin_keys.clone(),
                    p2p_address: gm.p2p_address.clone(),
                    joined_height: 0,
                    encryption_key: gm.encryption_key,
                },
            );
        }
        Ok(overlay.into_writes())
    }
}
