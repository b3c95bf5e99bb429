//! The peer-to-peer network: libp2p among the alliance's member nodes, and nobody else.
//!
//! This module moves bytes between member node keys. It knows nothing of transactions, votes or
//! blocks: the runtime encodes what it sends and decodes (and validates) what it receives.
//!
//! # Using it
//! ```no_run
//! # async fn run(secret: [u8; 32], members: Vec<([u8; 32], libp2p::Multiaddr)>) -> Result<(), caihong_node::network::NetworkError> {
//! use caihong_node::network::{self, Acceptance, NetworkConfig, NetworkEvent, Topic};
//!
//! let mut config = NetworkConfig::new("caihong-test", secret, "/ip4/0.0.0.0/tcp/26656".parse().unwrap());
//! config.allowed = members.iter().map(|(key, _)| *key).collect();
//! config.peers = members;
//! let (net, mut events) = network::spawn(config).await?;
//! net.publish(Topic::Transactions, b"signed tx bytes".to_vec()).await.ok();
//! while let Some(event) = events.recv().await {
//!     match event {
//!         NetworkEvent::Gossip { topic, data, from, validation, .. } => {
//!             // decode and check `data`, then:
//!             validation.report(Acceptance::Accept);
//!         }
//!         NetworkEvent::Request { from, data, respond } => {
//!             respond.respond(b"blocks a..b with certificates".to_vec()).ok();
//!         }
//!         NetworkEvent::PeerConnected(key) | NetworkEvent::PeerDisconnected(key) => {}
//!     }
//! }
//! net.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! | [`NetworkHandle`] method | what it does |
//! |---|---|
//! | [`publish`](NetworkHandle::publish) | gossip bytes on a [`Topic`] to every member |
//! | [`request`](NetworkHandle::request) | ask one connected member, wait for its answer or the timeout |
//! | [`set_allowed`](NetworkHandle::set_allowed) | replace the allow list; members no longer on it are disconnected |
//! | [`set_peers`](NetworkHandle::set_peers) | replace the list of members to dial (key and address) |
//! | [`penalize`](NetworkHandle::penalize) | count invalid data from a peer the runtime found (e.g. a bad sync response) |
//! | [`peers`](NetworkHandle::peers) | node keys of the members connected now |
//! | [`listen_addrs`](NetworkHandle::listen_addrs) | the addresses bound (useful with port 0) |
//! | [`shutdown`](NetworkHandle::shutdown) | close every connection and stop the service |
//!
//! | [`NetworkEvent`] | the runtime must |
//! |---|---|
//! | `Gossip { topic, data, from, origin, validation }` | check `data` and call [`Validation::report`] (or `accept`/`reject`/`ignore`) soon: only accepted messages are forwarded; dropping the handle counts as `Ignore` |
//! | `Request { from, data, respond }` | call [`Responder::respond`] within [`NetworkConfig::request_timeout`]; dropping it makes the peer's request fail |
//! | `PeerConnected(key)` / `PeerDisconnected(key)` | nothing required; first connection opened / last one closed |
//!
//! # Design
//! **One actor.** [`spawn`] moves the libp2p `Swarm` into a tokio task that owns it alone; the
//! [`NetworkHandle`] sends it commands over a bounded channel, and events come out on a bounded
//! channel. When the runtime is slow the task does not block (it would stop answering pings and
//! commands): peer events wait in a queue, and gossip or requests beyond the queue's bound are
//! dropped (as `Ignore`, or as a failed request for the peer) with a warning.
//!
//! **The allow list is a behaviour, checked when a connection is established.** The member's
//! identity is only known after the noise handshake proves it holds the node key, so that is the
//! first moment a connection can be judged. `libp2p::allow_block_list` sits first in the
//! composed behaviour and denies the connection there, before identify, gossipsub or the sync
//! protocol have a handler for it: a refused peer never exchanges a protocol message, and the
//! refusal is logged with its peer id and address. It is also checked before we dial. The same
//! mechanism (a block list) carries temporary bans. The list lives in the network service, not
//! in a transport wrapper, so replacing it at runtime ([`NetworkHandle::set_allowed`]) is one
//! command that also closes the connections of removed members.
//!
//! **gossipsub tuned for 4 to 30 members.** The defaults (`mesh_n` 6, `mesh_n_low` 5,
//! `mesh_outbound_min` 2) assume a large open network: with a four-city alliance (3 peers) the
//! mesh would be permanently "under-full" and every heartbeat would try to graft peers that do
//! not exist. We use `mesh_n_low` 2, `mesh_n` 4, `mesh_n_high` 8, `mesh_outbound_min` 1 and
//! `gossip_lazy` 4, so that 2 or 3 peers already form a healthy mesh and 30 members keep a
//! bounded forwarding degree. **Flood publishing** is on: the origin sends its own message to
//! every subscribed member directly, so in a fully connected alliance everything arrives in one
//! hop and the mesh is the redundant path (for members not directly connected). The **message
//! id** is SHA-256 of topic and data, so the same transaction submitted at two nodes, or a vote
//! rebroadcast, is one message (republishing identical bytes within a minute returns
//! [`NetworkError::Duplicate`], which the runtime may ignore). Messages are **signed** by the
//! origin's node key (strict validation), giving `origin`. Each topic's message limit is
//! [`NetworkConfig::max_gossip_size`] (plus 1 KiB for the signed envelope); a bigger message
//! is dropped by the receiver, and frames are allowed twice that so one oversized message does
//! not poison the stream behind it. All members must use the same limit (it is a chain
//! parameter in effect): what one member may publish, every other must accept.
//!
//! **Validation before forwarding.** gossipsub runs with `validate_messages()`: a received
//! message goes to the runtime with a [`Validation`] handle and is forwarded only after the
//! runtime accepts it (`report_message_validation_result`). Since honest members only forward
//! what they accepted, the member that handed us an invalid message is the one to blame.
//!
//! **Penalties are our own counter, not gossipsub peer scoring.** Scoring has dozens of weights
//! tuned for open networks; an alliance wants a rule an operator can read in a log: each
//! rejected gossip message, malformed or oversized request or response, or runtime
//! [`penalize`](NetworkHandle::penalize) is a strike; [`NetworkConfig::ban_threshold`] strikes
//! within [`NetworkConfig::ban_window`] disconnect the peer and ban it for
//! [`NetworkConfig::ban_duration`] (connections refused both ways, gossipsub ignores it), after
//! which it may reconnect with a clean slate.
//!
//! **Dialing** is static: the members' (node key, address) pairs from genesis or governance.
//! Each disconnected, allowed, unbanned member is redialed with exponential backoff
//! ([`NetworkConfig::redial_min`] doubling to [`NetworkConfig::redial_max`]); a connection that
//! stays up for a while resets its backoff. There is no peer discovery: an alliance knows its
//! members.
//!
//! **Request-response** uses a 4-byte length prefix and checks it against
//! [`NetworkConfig::max_request_size`] / [`NetworkConfig::max_response_size`] before reading, so a
//! peer cannot make us buffer more than the limit.
//!
//! Left out: QUIC, relays, NAT traversal and DHT discovery (members have fixed public
//! addresses), and connection limits beyond the allow list (at most 30 peers can ever connect).

mod behaviour;
mod codec;
mod service;

use std::fmt;
use std::time::Duration;

use libp2p::identity::{self, Keypair, PublicKey};
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

/// A member's ed25519 node key (the public key registered on chain).
pub type NodeKey = [u8; 32];

/// The two gossip topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Signed transactions on their way to every mempool.
    Transactions,
    /// Proposals, votes, evidence.
    Consensus,
}

impl Topic {
    pub const ALL: [Topic; 2] = [Topic::Transactions, Topic::Consensus];

    pub fn name(self) -> &'static str {
        match self {
            Topic::Transactions => "tx",
            Topic::Consensus => "consensus",
        }
    }
}

/// How the runtime judged a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: deliver and forward to other members.
    Accept,
    /// Invalid: do not forward, and count a strike against the member that sent it.
    Reject,
    /// Not forwarded, no penalty (e.g. stale, or already known).
    Ignore,
}

/// Everything the network service needs; [`NetworkConfig::new`] fills in the defaults.
#[derive(Clone)]
pub struct NetworkConfig {
    /// Part of the gossip topic names and identify's protocol version: nodes of another chain
    /// never see our messages and are disconnected.
    pub chain_id: String,
    /// The member's ed25519 node secret key (32-byte seed). PeerId derives from its public key.
    pub secret_key: [u8; 32],
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/26656` (port 0 picks a free port; see
    /// [`NetworkHandle::listen_addrs`]).
    pub listen: Multiaddr,
    /// Members to dial: node key and address. Our own key is skipped.
    pub peers: Vec<(NodeKey, Multiaddr)>,
    /// Node keys that may connect: the current members'.
    pub allowed: Vec<NodeKey>,
    /// Largest gossip message (data bytes) published or accepted; the same on every member.
    pub max_gossip_size: usize,
    /// Largest request sent or accepted.
    pub max_request_size: usize,
    /// Largest response sent or accepted.
    pub max_response_size: usize,
    /// How long a request may wait for its response (both directions).
    pub request_timeout: Duration,
    /// gossipsub heartbeat.
    pub heartbeat: Duration,
    /// First redial delay after a failed dial or a lost connection.
    pub redial_min: Duration,
    /// Redial delays double up to this.
    pub redial_max: Duration,
    /// Strikes within `ban_window` that get a peer banned.
    pub ban_threshold: usize,
    pub ban_window: Duration,
    pub ban_duration: Duration,
    /// Capacity of the event channel to the runtime.
    pub event_buffer: usize,
}

/// Default [`NetworkConfig::max_gossip_size`]: 4 MiB.
pub const DEFAULT_MAX_GOSSIP_SIZE: usize = 4 << 20;
/// Room a gossiped block needs beyond its transactions (header, envelope, lengths).
pub const BLOCK_MESSAGE_OVERHEAD: usize = 64 << 10;

impl NetworkConfig {
    pub fn new(chain_id: impl Into<String>, secret_key: [u8; 32], listen: Multiaddr) -> Self {
        NetworkConfig {
            chain_id: chain_id.into(),
            secret_key,
            listen,
            peers: Vec::new(),
            allowed: Vec::new(),
            max_gossip_size: DEFAULT_MAX_GOSSIP_SIZE,
            max_request_size: 64 << 10,
            max_response_size: 16 << 20,
            request_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(1),
            redial_min: Duration::from_millis(500),
            redial_max: Duration::from_secs(30),
            ban_threshold: 10,
            ban_window: Duration::from_secs(60),
            ban_duration: Duration::from_secs(300),
            event_buffer: 1024,
        }
    }
}

impl fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("chain_id", &self.chain_id)
            .field("secret_key", &"<redacted>")
            .field("listen", &self.listen)
            .field("peers", &self.peers.len())
            .field("allowed", &self.allowed.len())
            .field("max_gossip_size", &self.max_gossip_size)
            .field("max_request_size", &self.max_request_size)
            .field("max_response_size", &self.max_response_size)
            .field("request_timeout", &self.request_timeout)
            .field("heartbeat", &self.heartbeat)
            .field("redial", &(self.redial_min, self.redial_max))
            .field(
                "ban",
                &(self.ban_threshold, self.ban_window, self.ban_duration),
            )
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid node key: {0}")]
    InvalidKey(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("network setup failed: {0}")]
    Setup(String),
    #[error("{what} of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error("identical message already published recently")]
    Duplicate,
    #[error("no connected member subscribes to this topic")]
    NoPeers,
    #[error("peer {} is not connected", hex::encode(.0))]
    NotConnected(NodeKey),
    #[error("request timed out")]
    Timeout,
    #[error("request failed: {0}")]
    Request(String),
    #[error("publish failed: {0}")]
    Publish(String),
    #[error("the network service has stopped")]
    Stopped,
}

/// What the network tells the runtime. See the table in the module docs.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossip message, not yet forwarded: report a verdict through `validation`.
    Gossip {
        topic: Topic,
        data: Vec<u8>,
        /// The member that handed us the message (and gets the strike on `Reject`).
        from: NodeKey,
        /// The member that published it (its signature was checked).
        origin: Option<NodeKey>,
        validation: Validation,
    },
    /// A catch-up request from a member: answer through `respond`.
    Request {
        from: NodeKey,
        data: Vec<u8>,
        respond: Responder,
    },
    /// First connection to this member opened.
    PeerConnected(NodeKey),
    /// Last connection to this member closed.
    PeerDisconnected(NodeKey),
}

/// Messages from handles held by the runtime back to the service, outside the command channel
/// so that reporting never waits.
#[derive(Debug)]
enum Internal {
    Validated {
        id: libp2p::gossipsub::MessageId,
        source: PeerId,
        acceptance: Acceptance,
    },
    Respond {
        channel: ResponseChannel<Vec<u8>>,
        data: Vec<u8>,
    },
}

/// The verdict slot of one gossip message. Report once; dropping it reports `Ignore`.
#[must_use = "report a verdict: the message is forwarded only after Accept"]
#[derive(Debug)]
pub struct Validation {
    id: libp2p::gossipsub::MessageId,
    source: PeerId,
    tx: mpsc::UnboundedSender<Internal>,
    reported: bool,
}

impl Validation {
    pub fn report(mut self, acceptance: Acceptance) {
        self.send(acceptance);
    }
    pub fn accept(self) {
        self.report(Acceptance::Accept)
    }
    pub fn reject(self) {
        self.report(Acceptance::Reject)
    }
    pub fn ignore(self) {
        self.report(Acceptance::Ignore)
    }
    fn send(&mut self, acceptance: Acceptance) {
        if !self.reported {
            self.reported = true;
            // The service may have stopped; then nobody needs the verdict.
            let _ = self.tx.send(Internal::Validated {
                id: self.id.clone(),
                source: self.source,
                acceptance,
            });
        }
    }
}

#[cfg(test)]
impl Validation {
    /// A verdict slot outside any network, and a way to read the verdict it was given.
    pub(crate) fn detached() -> (Self, impl FnMut() -> Option<Acceptance>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let validation = Validation {
            id: libp2p::gossipsub::MessageId::new(b"test"),
            source: PeerId::random(),
            tx,
            reported: false,
        };
        let verdict = move || match rx.try_recv() {
            Ok(Internal::Validated { acceptance, .. }) => Some(acceptance),
            _ => None,
        };
        (validation, verdict)
    }
}

impl Drop for Validation {
    fn drop(&mut self) {
        self.send(Acceptance::Ignore);
    }
}

/// The answer slot of one inbound request. Dropping it fails the peer's request.
#[must_use = "answer the request, or the peer waits until its timeout"]
#[derive(Debug)]
pub struct Responder {
    channel: ResponseChannel<Vec<u8>>,
    tx: mpsc::UnboundedSender<Internal>,
    max: usize,
}

impl Responder {
    /// Send the response. A response over [`NetworkConfig::max_response_size`] is not sent
    /// (the peer's request fails) and the error says so.
    pub fn respond(self, data: Vec<u8>) -> Result<(), NetworkError> {
        if data.len() > self.max {
            return Err(NetworkError::TooLarge {
                what: "response",
                size: data.len(),
                max: self.max,
            });
        }
        self.tx
            .send(Internal::Respond {
                channel: self.channel,
                data,
            })
            .map_err(|_| NetworkError::Stopped)
    }
}

#[derive(Debug)]
enum Command {
    Publish {
        topic: Topic,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Request {
        peer: NodeKey,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetworkError>>,
    },
    SetAllowed(Vec<NodeKey>, oneshot::Sender<()>),
    SetPeers(Vec<(NodeKey, Multiaddr)>, oneshot::Sender<()>),
    Penalize(NodeKey),
    Peers(oneshot::Sender<Vec<NodeKey>>),
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Shutdown(oneshot::Sender<()>),
}

/// Talks to the network service task. Cheap to clone; every method is a message to the task.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    local_key: NodeKey,
    max_request_size: usize,
    max_response_size: usize,
    max_gossip_size: usize,
    request_timeout: Duration,
}

impl NetworkHandle {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.ok()?;
        rx.await.ok()
    }

    /// This node's key.
    pub fn local_key(&self) -> NodeKey {
        self.local_key
    }

    /// Gossip `data` on `topic`. [`NetworkError::NoPeers`] (nobody connected yet) and
    /// [`NetworkError::Duplicate`] (same bytes within a minute) are harmless for rebroadcasts.
    /// Largest gossip message this node publishes or accepts.
    pub fn max_gossip_size(&self) -> usize {
        self.max_gossip_size
    }

    /// Largest response this node sends or accepts.
    pub fn max_response_size(&self) -> usize {
        self.max_response_size
    }

    pub async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), NetworkError> {
        if data.len() > self.max_gossip_size {
            return Err(NetworkError::TooLarge {
                what: "gossip message",
                size: data.len(),
                max: self.max_gossip_size,
            });
        }
        self.call(|reply| Command::Publish { topic, data, reply })
            .await
            .unwrap_or(Err(NetworkError::Stopped))
    }

    /// Send `data` to the connected member `peer` and wait for its response, at most
    /// [`NetworkConfig::request_timeout`].
    pub async fn request(&self, peer: NodeKey, data: Vec<u8>) -> Result<Vec<u8>, NetworkError> {
        if data.len() > self.max_request_size {
            return Err(NetworkError::TooLarge {
                what: "request",
                size: data.len(),
                max: self.max_request_size,
            });
        }
        // libp2p enforces the timeout; this outer one only guards against a lost reply.
        let outer = self.request_timeout + Duration::from_secs(5);
        match tokio::time::timeout(
            outer,
            self.call(|reply| Command::Request { peer, data, reply }),
        )
        .await
        {
            Ok(Some(result)) => result,
            Ok(None) => Err(NetworkError::Stopped),
            Err(_) => Err(NetworkError::Timeout),
        }
    }

    /// Replace the allow list. Members no longer on it are disconnected at once and refused
    /// from now on; new ones may connect (and are dialed if [`set_peers`](Self::set_peers)
    /// knows their address).
    pub async fn set_allowed(&self, keys: Vec<NodeKey>) -> Result<(), NetworkError> {
        self.call(|ack| Command::SetAllowed(keys, ack))
            .await
            .ok_or(NetworkError::Stopped)
    }

    /// Replace the members to dial.
    pub async fn set_peers(&self, peers: Vec<(NodeKey, Multiaddr)>) -> Result<(), NetworkError> {
        self.call(|ack| Command::SetPeers(peers, ack))
            .await
            .ok_or(NetworkError::Stopped)
    }

    /// Count a strike against `peer` (the runtime found its data invalid, e.g. a sync response
    /// whose certificate does not verify).
    pub async fn penalize(&self, peer: NodeKey) {
        let _ = self.commands.send(Command::Penalize(peer)).await;
    }

    /// Node keys of the members connected now (empty once stopped).
    pub async fn peers(&self) -> Vec<NodeKey> {
        self.call(Command::Peers).await.unwrap_or_default()
    }

    /// The addresses the service listens on (empty once stopped).
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.call(Command::ListenAddrs).await.unwrap_or_default()
    }

    /// Close all connections and stop the service task. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.call(Command::Shutdown).await;
    }
}

/// The libp2p identity for a member's 32-byte ed25519 secret key (seed).
pub fn keypair_from_secret(secret: [u8; 32]) -> Result<Keypair, NetworkError> {
    Keypair::ed25519_from_bytes(secret).map_err(|e| NetworkError::InvalidKey(e.to_string()))
}

/// The PeerId of a member, from its on-chain node key.
pub fn peer_id_of(node_key: &NodeKey) -> Result<PeerId, NetworkError> {
    let key = identity::ed25519::PublicKey::try_from_bytes(node_key)
        .map_err(|e| NetworkError::InvalidKey(e.to_string()))?;
    Ok(PublicKey::from(key).to_peer_id())
}

/// The node key inside an ed25519 PeerId (which inlines the public key), if it is one.
pub fn node_key_of(peer: &PeerId) -> Option<NodeKey> {
    let multihash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    // Code 0 is the identity hash: the digest is the protobuf-encoded public key itself.
    if multihash.code() != 0 {
        return None;
    }
    let key = PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    Some(key.try_into_ed25519().ok()?.to_bytes())
}

/// Start the network service on the current tokio runtime: bind the listener, start dialing
/// the configured members, and return the handle and the event stream.
pub async fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    service::spawn(config).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_round_trips_through_the_node_key() {
        let kp = keypair_from_secret([3; 32]).unwrap();
        let public = kp.public().try_into_ed25519().unwrap().to_bytes();
        // The same key as ed25519-dalek derives, i.e. the member's on-chain node key.
        let dalek = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert_eq!(public, dalek.to_bytes());
        let peer = peer_id_of(&public).unwrap();
        assert_eq!(peer, kp.public().to_peer_id());
        assert_eq!(node_key_of(&peer), Some(public));
        assert_ne!(peer_id_of(&[4; 32]).ok(), Some(peer));
    }

    #[test]
    fn config_debug_hides_the_secret() {
        let cfg = NetworkConfig::new("c", [9; 32], "/ip4/127.0.0.1/tcp/0".parse().unwrap());
        assert!(!format!("{cfg:?}").contains("9, 9"));
    }
}
