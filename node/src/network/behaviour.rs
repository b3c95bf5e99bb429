//! The libp2p behaviours the swarm runs, composed in one struct, and their configuration.
//!
//! Field order matters: the derived [`NetworkBehaviour`] asks each field in turn whether a new
//! connection may be established, so the allow list and the ban list come first and refuse an
//! unknown or banned peer before any protocol handler exists for it.

use std::time::Duration;

use libp2p::allow_block_list::{self, AllowedPeers, BlockedPeers};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, ping};
use sha2::{Digest, Sha256};

use super::codec::{BytesCodec, SYNC_PROTOCOL};
use super::{NetworkConfig, Topic};

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Current members' node keys: everyone else is refused.
    pub allowed: allow_block_list::Behaviour<AllowedPeers>,
    /// Members temporarily banned for sending invalid data.
    pub banned: allow_block_list::Behaviour<BlockedPeers>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub sync: request_response::Behaviour<BytesCodec>,
}

/// identify's protocol version: peers of another chain are disconnected on identify.
pub(crate) fn identify_version(chain_id: &str) -> String {
    format!("/caihong/{chain_id}/1.0.0")
}

pub(crate) fn gossip_topic(chain_id: &str, topic: Topic) -> IdentTopic {
    IdentTopic::new(format!("/caihong/{chain_id}/{}/1", topic.name()))
}

/// Message id: SHA-256 over the topic and the data, so the same bytes published twice (by the
/// same or by another member, e.g. a transaction submitted at two nodes) are one message.
fn message_id(message: &gossipsub::Message) -> MessageId {
    let mut h = Sha256::new();
    h.update(message.topic.as_str().as_bytes());
    h.update([0]);
    h.update(&message.data);
    MessageId::from(h.finalize().to_vec())
}

/// Room for a gossip message's protobuf envelope: topic, source, sequence number, signature and
/// public key (about 200 bytes in practice).
pub(crate) const ENVELOPE: usize = 1024;

/// gossipsub for 4 to 30 peers. The reasons are in the module docs (`# Design`).
pub(crate) fn gossipsub_config(cfg: &NetworkConfig) -> Result<gossipsub::Config, String> {
    let mut builder = gossipsub::ConfigBuilder::default();
    // Each topic's messages are limited to the configured size (plus room for the signed
    // envelope); a message over it is decoded and dropped on its own. Whole frames may be twice
    // as large, so one oversized message does not break the stream that carries the next ones.
    for topic in Topic::ALL {
        builder.set_topic_max_transmit_size(
            gossip_topic(&cfg.chain_id, topic).hash(),
            cfg.max_gossip_size + ENVELOPE,
        );
    }
    builder
        .mesh_outbound_min(1)
        .mesh_n_low(2)
        .mesh_n(4)
        .mesh_n_high(8)
        .gossip_lazy(4)
        .heartbeat_initial_delay(Duration::from_millis(100))
        .heartbeat_interval(cfg.heartbeat)
        .prune_backoff(Duration::from_secs(10))
        .history_length(5)
        .history_gossip(3)
        .duplicate_cache_time(Duration::from_secs(60))
        .flood_publish(true)
        .max_transmit_size(2 * (cfg.max_gossip_size + ENVELOPE))
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(message_id)
        .build()
        .map_err(|e| format!("gossipsub configuration: {e}"))
}

pub(crate) fn build(keypair: &Keypair, cfg: &NetworkConfig) -> Result<Behaviour, String> {
    let gossipsub = gossipsub::Behaviour::new(
        MessageAuthenticity::Signed(keypair.clone()),
        gossipsub_config(cfg)?,
    )
    .map_err(|e| format!("gossipsub: {e}"))?;
    let identify = identify::Behaviour::new(
        identify::Config::new(identify_version(&cfg.chain_id), keypair.public())
            .with_agent_version(format!("caihong/{}", env!("CARGO_PKG_VERSION"))),
    );
    let sync = request_response::Behaviour::with_codec(
        BytesCodec {
            max_request: cfg.max_request_size,
            max_response: cfg.max_response_size,
        },
        [(SYNC_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(cfg.request_timeout),
    );
    Ok(Behaviour {
        allowed: allow_block_list::Behaviour::default(),
        banned: allow_block_list::Behaviour::default(),
        identify,
        ping: ping::Behaviour::default(),
        gossipsub,
        sync,
    })
}
