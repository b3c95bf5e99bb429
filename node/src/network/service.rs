//! The service task: owns the swarm, carries out commands, turns swarm events into
//! [`NetworkEvent`]s, keeps the dial schedule and the strike counts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError, TopicHash};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, noise, tcp, yamux};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use super::behaviour::{self, Behaviour, BehaviourEvent};
use super::{
    Acceptance, Command, Internal, NetworkConfig, NetworkError, NetworkEvent, NetworkHandle,
    NodeKey, Responder, Topic, Validation, keypair_from_secret, node_key_of, peer_id_of,
};

/// How often the dial schedule and bans are looked at.
const TICK: Duration = Duration::from_millis(200);
/// A connection that lasted this long resets the member's redial backoff.
const STABLE: Duration = Duration::from_secs(10);
/// Idle connections among members are kept: gossip may be quiet for a while.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

struct DialState {
    addr: Multiaddr,
    backoff: Duration,
    next_attempt: Instant,
    dialing: bool,
    connected_since: Option<Instant>,
}

struct Service {
    swarm: Swarm<Behaviour>,
    cfg: NetworkConfig,
    local_peer: PeerId,
    topics: HashMap<TopicHash, Topic>,
    commands: mpsc::Receiver<Command>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
    events: mpsc::Sender<NetworkEvent>,
    /// Events waiting for room in `events`, in order.
    pending: VecDeque<NetworkEvent>,
    allowed: HashSet<PeerId>,
    dial: HashMap<PeerId, DialState>,
    strikes: HashMap<PeerId, VecDeque<Instant>>,
    banned: HashMap<PeerId, Instant>,
    requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, NetworkError>>>,
    listen_addrs: Vec<Multiaddr>,
}

/// Builds the swarm and starts its task. Long because libp2p's builder configures one
/// behaviour per protocol in sequence; the whole configuration reads in one place.
pub(super) async fn spawn(
    cfg: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    let keypair = keypair_from_secret(cfg.secret_key)?;
    let local_key = keypair
        .public()
        .try_into_ed25519()
        .map_err(|e| NetworkError::InvalidKey(e.to_string()))?
        .to_bytes();
    let behaviour = behaviour::build(&keypair, &cfg).map_err(NetworkError::Setup)?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetworkError::Setup(e.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| NetworkError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build();

    let mut topics = HashMap::new();
    for topic in Topic::ALL {
        let t = behaviour::gossip_topic(&cfg.chain_id, topic);
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&t)
            .map_err(|e| NetworkError::Setup(format!("subscribe {}: {e}", topic.name())))?;
        topics.insert(t.hash(), topic);
    }

    swarm
        .listen_on(cfg.listen.clone())
        .map_err(|e| NetworkError::Listen {
            addr: cfg.listen.clone(),
            reason: e.to_string(),
        })?;
    // Wait for the bound address, so that callers (and tests using port 0) can read it at once.
    let listen_addrs = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(vec![address]),
                SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(format!("listener closed: {reason:?}"));
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no listen address within 5 s".into()))
    .map_err(|reason| NetworkError::Listen {
        addr: cfg.listen.clone(),
        reason,
    })?;
    info!(peer = %swarm.local_peer_id(), addrs = ?listen_addrs, "p2p listening");

    let (commands_tx, commands) = mpsc::channel(256);
    let (events, events_rx) = mpsc::channel(cfg.event_buffer.max(1));
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    let handle = NetworkHandle {
        commands: commands_tx,
        local_key,
        max_request_size: cfg.max_request_size,
        max_response_size: cfg.max_response_size,
        max_gossip_size: cfg.max_gossip_size,
        request_timeout: cfg.request_timeout,
    };
    let mut service = Service {
        local_peer: *swarm.local_peer_id(),
        swarm,
        topics,
        commands,
        internal_tx,
        internal_rx,
        events,
        pending: VecDeque::new(),
        allowed: HashSet::new(),
        dial: HashMap::new(),
        strikes: HashMap::new(),
        banned: HashMap::new(),
        requests: HashMap::new(),
        listen_addrs,
        cfg: cfg.clone(),
    };
    service.set_allowed(&cfg.allowed);
    service.set_peers(&cfg.peers);
    tokio::spawn(service.run());
    Ok((handle, events_rx))
}

enum Step {
    Swarm(Box<SwarmEvent<BehaviourEvent>>),
    Command(Option<Command>),
    Internal(Internal),
    Flush(bool),
    Tick,
}

impl Service {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let step = tokio::select! {
                event = self.swarm.select_next_some() => Step::Swarm(Box::new(event)),
                command = self.commands.recv() => Step::Command(command),
                Some(internal) = self.internal_rx.recv() => Step::Internal(internal),
                permit = self.events.reserve(), if !self.pending.is_empty() => {
                    match permit {
                        Ok(permit) => {
                            if let Some(event) = self.pending.pop_front() {
                                permit.send(event);
                            }
                            Step::Flush(true)
                        }
                        Err(_) => Step::Flush(false),
                    }
                }
                _ = tick.tick() => Step::Tick,
            };
            match step {
                Step::Swarm(event) => self.on_swarm_event(*event),
                Step::Command(Some(Command::Shutdown(ack))) => {
                    info!("p2p shutting down");
                    let _ = ack.send(());
                    break;
                }
                // Every handle dropped: nobody can use the network any more.
                Step::Command(None) => break,
                Step::Command(Some(command)) => self.on_command(command),
                Step::Internal(internal) => self.on_internal(internal),
                Step::Flush(true) => {}
                // The runtime dropped the event receiver.
                Step::Flush(false) => self.pending.clear(),
                Step::Tick => self.on_tick(),
            }
        }
        for (_, reply) in self.requests.drain() {
            let _ = reply.send(Err(NetworkError::Stopped));
        }
        // Dropping the swarm closes every connection.
    }

    fn emit(&mut self, event: NetworkEvent) {
        if self.pending.is_empty() {
            match self.events.try_send(event) {
                Ok(()) | Err(TrySendError::Closed(_)) => return,
                Err(TrySendError::Full(event)) => return self.queue(event),
            }
        }
        self.queue(event)
    }

    fn queue(&mut self, event: NetworkEvent) {
        let droppable = matches!(
            event,
            NetworkEvent::Gossip { .. } | NetworkEvent::Request { .. }
        );
        if droppable && self.pending.len() >= self.cfg.event_buffer {
            // Dropping the event's Validation reports Ignore; dropping a Responder fails the
            // peer's request. Both are safe; the runtime is simply too slow.
            warn!("p2p event queue full (runtime too slow): dropping a gossip message or request");
            return;
        }
        self.pending.push_back(event);
    }

    fn key(&self, peer: &PeerId) -> NodeKey {
        // Only ed25519 peers pass the allow list, so this always succeeds for connected peers.
        node_key_of(peer).unwrap_or([0; 32])
    }

    // ---- commands -------------------------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { topic, data, reply } => {
                let t = behaviour::gossip_topic(&self.cfg.chain_id, topic);
                let size = data.len();
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(t.hash(), data)
                    .map(|_| ())
                    .map_err(|e| match e {
                        PublishError::Duplicate => NetworkError::Duplicate,
                        PublishError::NoPeersSubscribedToTopic => NetworkError::NoPeers,
                        PublishError::MessageTooLarge => NetworkError::TooLarge {
                            what: "gossip message",
                            size,
                            max: self.cfg.max_gossip_size,
                        },
                        other => NetworkError::Publish(other.to_string()),
                    });
                let _ = reply.send(result);
            }
            Command::Request { peer, data, reply } => {
                let peer_id = match peer_id_of(&peer) {
                    Ok(p) if self.swarm.is_connected(&p) => p,
                    Ok(_) => {
                        let _ = reply.send(Err(NetworkError::NotConnected(peer)));
                        return;
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                let id = self.swarm.behaviour_mut().sync.send_request(&peer_id, data);
                self.requests.insert(id, reply);
            }
            Command::SetAllowed(keys, ack) => {
                self.set_allowed(&keys);
                let _ = ack.send(());
            }
            Command::SetPeers(peers, ack) => {
                self.set_peers(&peers);
                let _ = ack.send(());
            }
            Command::Penalize(key) => {
                if let Ok(peer) = peer_id_of(&key) {
                    self.strike(peer, "penalized by the runtime");
                }
            }
            Command::Peers(reply) => {
                let peers = self.swarm.connected_peers().map(|p| self.key(p)).collect();
                let _ = reply.send(peers);
            }
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    fn set_allowed(&mut self, keys: &[NodeKey]) {
        let new: HashSet<PeerId> = keys
            .iter()
            .filter_map(|k| match peer_id_of(k) {
                Ok(p) => Some(p),
                Err(e) => {
                    warn!(key = %hex::encode(k), "ignoring invalid node key in the allow list: {e}");
                    None
                }
            })
            .collect();
        let list = &mut self.swarm.behaviour_mut().allowed;
        for removed in self.allowed.difference(&new) {
            // Closes every connection to it at once.
            list.disallow_peer(*removed);
            info!(peer = %removed, "member removed from the allow list: disconnecting");
        }
        for added in new.difference(&self.allowed) {
            list.allow_peer(*added);
        }
        self.allowed = new;
    }

    fn set_peers(&mut self, peers: &[(NodeKey, Multiaddr)]) {
        let mut dial = HashMap::new();
        for (key, addr) in peers {
            let Ok(peer) = peer_id_of(key) else {
                warn!(key = %hex::encode(key), "ignoring invalid node key in the peer list");
                continue;
            };
            if peer == self.local_peer {
                continue;
            }
            let state = match self.dial.remove(&peer) {
                Some(mut old) => {
                    if old.addr != *addr {
                        old.addr = addr.clone();
                        old.next_attempt = Instant::now();
                    }
                    old
                }
                None => DialState {
                    addr: addr.clone(),
                    backoff: self.cfg.redial_min,
                    next_attempt: Instant::now(),
                    dialing: false,
                    connected_since: None,
                },
            };
            dial.insert(peer, state);
        }
        self.dial = dial;
        self.on_tick();
    }

    // ---- verdicts and responses from the runtime -------------------------------------------

    fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::Validated {
                id,
                source,
                acceptance,
            } => {
                let verdict = match acceptance {
                    Acceptance::Accept => MessageAcceptance::Accept,
                    Acceptance::Reject => MessageAcceptance::Reject,
                    Acceptance::Ignore => MessageAcceptance::Ignore,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, verdict);
                if acceptance == Acceptance::Reject {
                    self.strike(source, "sent a gossip message the runtime rejected");
                }
            }
            Internal::Respond { channel, data } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, data)
                    .is_err()
                {
                    debug!("response not sent: the request timed out or its connection closed");
                }
            }
        }
    }

    // ---- strikes and bans -----------------------------------------------------------------

    fn strike(&mut self, peer: PeerId, why: &str) {
        if self.banned.contains_key(&peer) {
            return;
        }
        let now = Instant::now();
        let window = self.cfg.ban_window;
        let strikes = self.strikes.entry(peer).or_default();
        strikes.push_back(now);
        while strikes
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            strikes.pop_front();
        }
        let count = strikes.len();
        warn!(%peer, strikes = count, "p2p strike: {why}");
        if count >= self.cfg.ban_threshold {
            self.strikes.remove(&peer);
            self.banned.insert(peer, now + self.cfg.ban_duration);
            let b = self.swarm.behaviour_mut();
            b.banned.block_peer(peer); // closes its connections and refuses new ones
            b.gossipsub.blacklist_peer(&peer);
            warn!(%peer, ban = ?self.cfg.ban_duration, "peer keeps sending invalid data: disconnected and banned");
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            self.banned.remove(&peer);
            let b = self.swarm.behaviour_mut();
            b.banned.unblock_peer(peer);
            b.gossipsub.remove_blacklisted_peer(&peer);
            info!(%peer, "ban expired");
        }
        let due: Vec<(PeerId, Multiaddr)> = self
            .dial
            .iter()
            .filter(|(peer, s)| {
                !s.dialing
                    && s.next_attempt <= now
                    && self.allowed.contains(peer)
                    && !self.banned.contains_key(peer)
                    && !self.swarm.is_connected(peer)
            })
            .map(|(p, s)| (*p, s.addr.clone()))
            .collect();
        for (peer, addr) in due {
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    debug!(%peer, %addr, "dialing member");
                    if let Some(s) = self.dial.get_mut(&peer) {
                        s.dialing = true;
                    }
                }
                Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => {
                    debug!(%peer, %addr, "dial refused: {e}");
                    self.backoff(peer);
                }
            }
        }
    }

    /// Schedule the next dial of `peer` after its current backoff, and double the backoff.
    fn backoff(&mut self, peer: PeerId) {
        if let Some(s) = self.dial.get_mut(&peer) {
            s.dialing = false;
            s.next_attempt = Instant::now() + s.backoff;
            s.backoff = (s.backoff * 2).min(self.cfg.redial_max);
        }
    }

    // ---- swarm events ---------------------------------------------------------------------

    /// One arm per swarm event this service acts on (a long match, each arm short).
    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_sync(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let expected = behaviour::identify_version(&self.cfg.chain_id);
                if info.protocol_version != expected {
                    warn!(peer = %peer_id, theirs = %info.protocol_version, ours = %expected,
                        "peer runs another chain or protocol version: disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                }
            }
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if let Some(s) = self.dial.get_mut(&peer_id) {
                    s.dialing = false;
                    s.connected_since.get_or_insert(Instant::now());
                }
                if num_established.get() == 1 {
                    info!(peer = %peer_id, addr = %endpoint.get_remote_address(), "member connected");
                    let key = self.key(&peer_id);
                    self.emit(NetworkEvent::PeerConnected(key));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                info!(peer = %peer_id, cause = ?cause, "member disconnected");
                if let Some(s) = self.dial.get_mut(&peer_id) {
                    let stable = s
                        .connected_since
                        .take()
                        .is_some_and(|t| t.elapsed() >= STABLE);
                    if stable {
                        s.backoff = self.cfg.redial_min;
                    }
                    self.backoff(peer_id);
                }
                let key = self.key(&peer_id);
                self.emit(NetworkEvent::PeerDisconnected(key));
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                peer_id,
                ..
            } => match error {
                ListenError::Denied { cause } => {
                    warn!(peer = ?peer_id, addr = %send_back_addr, "refused connection: {cause}");
                }
                other => {
                    debug!(peer = ?peer_id, addr = %send_back_addr, "inbound connection failed: {other}")
                }
            },
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                match &error {
                    DialError::Denied { cause } => {
                        debug!(peer = ?peer_id, "dial not allowed: {cause}");
                    }
                    other => debug!(peer = ?peer_id, "dial failed: {other}"),
                }
                if let Some(peer) = peer_id {
                    self.backoff(peer);
                }
            }
            SwarmEvent::NewListenAddr { address, .. } if !self.listen_addrs.contains(&address) => {
                self.listen_addrs.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| *a != address);
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let Some(topic) = self.topics.get(&message.topic).copied() else {
                    // Not one of ours: nothing to validate, nobody to forward to.
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                    return;
                };
                let validation = Validation {
                    id: message_id,
                    source: propagation_source,
                    tx: self.internal_tx.clone(),
                    reported: false,
                };
                self.emit(NetworkEvent::Gossip {
                    topic,
                    data: message.data,
                    from: self.key(&propagation_source),
                    origin: message.source.as_ref().and_then(node_key_of),
                    validation,
                });
            }
            gossipsub::Event::SlowPeer { peer_id, .. } => {
                debug!(peer = %peer_id, "gossipsub: slow peer");
            }
            _ => {}
        }
    }

    fn on_sync(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let respond = Responder {
                        channel,
                        tx: self.internal_tx.clone(),
                        max: self.cfg.max_response_size,
                    };
                    self.emit(NetworkEvent::Request {
                        from: self.key(&peer),
                        data: request,
                        respond,
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let err = match error {
                    request_response::OutboundFailure::Timeout => NetworkError::Timeout,
                    request_response::OutboundFailure::Io(e) => {
                        // Malformed or oversized response.
                        if e.kind() == std::io::ErrorKind::InvalidData {
                            self.strike(peer, "sent an invalid or oversized response");
                        }
                        NetworkError::Request(e.to_string())
                    }
                    other => NetworkError::Request(other.to_string()),
                };
                if let Some(reply) = self.requests.remove(&request_id) {
                    let _ = reply.send(Err(err));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => match error {
                request_response::InboundFailure::Io(e)
                    if e.kind() == std::io::ErrorKind::InvalidData =>
                {
                    self.strike(peer, &format!("sent an invalid request: {e}"));
                }
                other => debug!(%peer, "inbound request failed: {other}"),
            },
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}
