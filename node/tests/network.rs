//! The p2p network as members see it: real libp2p nodes on 127.0.0.1 (port 0), each with a tiny
//! "runtime" task that accepts gossip unless it starts with `bad`, and answers requests.

use std::time::Duration;

use caihong_node::network::{
    self, Acceptance, NetworkConfig, NetworkError, NetworkEvent, NetworkHandle, NodeKey, Responder,
    Topic,
};
use libp2p::Multiaddr;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

const CHAIN: &str = "caihong-net-test";

/// What a node's runtime saw.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Gossip {
        topic: Topic,
        data: Vec<u8>,
        from: NodeKey,
        origin: Option<NodeKey>,
    },
    Request(Vec<u8>),
    Connected(NodeKey),
    Disconnected(NodeKey),
}

struct Node {
    net: NetworkHandle,
    key: NodeKey,
    addr: Multiaddr,
    seen: mpsc::UnboundedReceiver<Seen>,
}

fn key(i: u8) -> ([u8; 32], NodeKey) {
    let secret = [i; 32];
    let public = ed25519_dalek::SigningKey::from_bytes(&secret)
        .verifying_key()
        .to_bytes();
    (secret, public)
}

fn test_config(i: u8) -> NetworkConfig {
    let mut cfg = NetworkConfig::new(CHAIN, key(i).0, "/ip4/127.0.0.1/tcp/0".parse().unwrap());
    cfg.heartbeat = Duration::from_millis(200);
    cfg.redial_min = Duration::from_millis(100);
    cfg.redial_max = Duration::from_secs(1);
    cfg.request_timeout = Duration::from_secs(2);
    cfg
}

/// The test runtime: `bad…` gossip is rejected, everything else accepted; a request `slow` is
/// never answered, `big:N` gets N bytes, anything else gets `re:` + request.
async fn runtime(mut events: mpsc::Receiver<NetworkEvent>, seen: mpsc::UnboundedSender<Seen>) {
    let mut held: Vec<Responder> = Vec::new();
    while let Some(event) = events.recv().await {
        let record = match event {
            NetworkEvent::Gossip {
                topic,
                data,
                from,
                origin,
                validation,
            } => {
                if data.starts_with(b"bad") {
                    validation.report(Acceptance::Reject);
                } else {
                    validation.accept();
                }
                Seen::Gossip {
                    topic,
                    data,
                    from,
                    origin,
                }
            }
            NetworkEvent::Request { data, respond, .. } => {
                if data == b"slow" {
                    held.push(respond);
                } else if let Some(n) = data.strip_prefix(b"big:") {
                    let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
                    // The sender's own limit may refuse it; the requester then sees an error.
                    let _ = respond.respond(vec![7; n]);
                } else {
                    respond
                        .respond([b"re:".as_slice(), &data].concat())
                        .unwrap();
                }
                Seen::Request(data)
            }
            NetworkEvent::PeerConnected(k) => Seen::Connected(k),
            NetworkEvent::PeerDisconnected(k) => Seen::Disconnected(k),
        };
        let _ = seen.send(record);
    }
}

async fn start(
    i: u8,
    allowed: &[u8],
    dial: &[&Node],
    tweak: impl FnOnce(&mut NetworkConfig),
) -> Node {
    let mut cfg = test_config(i);
    cfg.allowed = allowed.iter().map(|j| key(*j).1).collect();
    cfg.peers = dial.iter().map(|n| (n.key, n.addr.clone())).collect();
    tweak(&mut cfg);
    let (net, events) = network::spawn(cfg).await.expect("network starts");
    let addr = net.listen_addrs().await[0].clone();
    assert!(addr.to_string().starts_with("/ip4/127.0.0.1/tcp/"));
    assert_ne!(addr.to_string(), "/ip4/127.0.0.1/tcp/0");
    let (tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(runtime(events, tx));
    Node {
        net,
        key: key(i).1,
        addr,
        seen,
    }
}

/// Wait for the first event matching `pred` (other events are skipped).
async fn expect(node: &mut Node, within: Duration, what: &str, pred: impl Fn(&Seen) -> bool) {
    let found = timeout(within, async {
        while let Some(s) = node.seen.recv().await {
            if pred(&s) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "timed out waiting for {what}");
}

/// Assert that no event matching `pred` arrives for `during`.
async fn never(node: &mut Node, during: Duration, what: &str, pred: impl Fn(&Seen) -> bool) {
    let deadline = Instant::now() + during;
    while let Ok(Some(s)) = timeout(deadline - Instant::now(), node.seen.recv()).await {
        assert!(!pred(&s), "unexpected {what}: {s:?}");
    }
}

/// Poll `peers()` until it equals `want` (order ignored).
async fn until_peers(node: &Node, want: &[NodeKey]) {
    let mut want = want.to_vec();
    want.sort();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut got = node.net.peers().await;
        got.sort();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "peers stayed {got:?}, want {want:?}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// Publish, retrying while the peers' subscriptions have not arrived yet.
async fn publish(node: &Node, topic: Topic, data: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match node.net.publish(topic, data.to_vec()).await {
            Ok(()) => return,
            Err(NetworkError::NoPeers) if Instant::now() < deadline => {
                sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("publish failed: {e}"),
        }
    }
}

fn gossip(data: &[u8]) -> impl Fn(&Seen) -> bool + '_ {
    move |s| matches!(s, Seen::Gossip { data: d, .. } if d == data)
}

const LONG: Duration = Duration::from_secs(10);

#[tokio::test]
async fn three_members_form_a_mesh_and_gossip_reaches_all() {
    let a = start(1, &[1, 2, 3], &[], |_| {}).await;
    let b = start(2, &[1, 2, 3], &[&a], |_| {}).await;
    let mut c = start(3, &[1, 2, 3], &[&a, &b], |_| {}).await;
    let (mut a, mut b) = (a, b);
    until_peers(&a, &[b.key, c.key]).await;
    until_peers(&b, &[a.key, c.key]).await;
    until_peers(&c, &[a.key, b.key]).await;

    publish(&a, Topic::Transactions, b"tx from a").await;
    for n in [&mut b, &mut c] {
        let a_key = a.key;
        expect(n, LONG, "a's transaction", move |s| {
            *s == Seen::Gossip {
                topic: Topic::Transactions,
                data: b"tx from a".to_vec(),
                from: a_key,
                origin: Some(a_key),
            }
        })
        .await;
    }
    publish(&c, Topic::Consensus, b"vote from c").await;
    for n in [&mut a, &mut b] {
        let c_key = c.key;
        expect(n, LONG, "c's vote", move |s| {
            matches!(s, Seen::Gossip { topic: Topic::Consensus, data, origin, .. }
                if data == b"vote from c" && *origin == Some(c_key))
        })
        .await;
    }
    // Nobody receives its own message back.
    never(
        &mut c,
        Duration::from_millis(500),
        "own message",
        gossip(b"vote from c"),
    )
    .await;
    for n in [&a, &b, &c] {
        n.net.shutdown().await;
    }
}

#[tokio::test]
async fn rejected_gossip_is_not_forwarded() {
    // A line: a - b - c. a and c are members but never dial each other, so whatever reaches c
    // from a was forwarded by b, after b's runtime accepted it.
    let mut a = start(1, &[1, 2, 3], &[], |_| {}).await;
    let mut b = start(2, &[1, 2, 3], &[&a], |_| {}).await;
    let mut c = start(3, &[1, 2, 3], &[&b], |_| {}).await;
    until_peers(&b, &[a.key, c.key]).await;
    until_peers(&a, &[b.key]).await;
    until_peers(&c, &[b.key]).await;

    // Forwarding works once b's mesh includes c (first heartbeats): retry until c has one,
    // handed over by b but signed by a.
    let (a_key, b_key) = (a.key, b.key);
    let mut delivered = false;
    for i in 0..50 {
        let msg = format!("good-{i}");
        publish(&a, Topic::Transactions, msg.as_bytes()).await;
        let forwarded = move |s: &Seen| {
            matches!(s, Seen::Gossip { data, from, origin, .. }
                if *data == msg.as_bytes() && *from == b_key && *origin == Some(a_key))
        };
        if timeout(
            Duration::from_millis(300),
            expect(&mut c, LONG, "forwarded message", forwarded),
        )
        .await
        .is_ok()
        {
            delivered = true;
            break;
        }
    }
    assert!(
        delivered,
        "an accepted message from a never reached c via b"
    );

    publish(&a, Topic::Transactions, b"bad: not a transaction").await;
    expect(
        &mut b,
        LONG,
        "b validating the bad message",
        gossip(b"bad: not a transaction"),
    )
    .await;
    publish(&a, Topic::Transactions, b"good after bad").await;
    // c gets the later good message, and never the bad one before or after it.
    let mut got_good = false;
    let deadline = Instant::now() + LONG;
    while !got_good {
        let s = timeout(deadline - Instant::now(), c.seen.recv())
            .await
            .expect("c never got the good message")
            .unwrap();
        assert!(
            !gossip(b"bad: not a transaction")(&s),
            "b forwarded a rejected message"
        );
        got_good = gossip(b"good after bad")(&s);
    }
    never(
        &mut c,
        Duration::from_secs(1),
        "rejected message",
        gossip(b"bad: not a transaction"),
    )
    .await;
    // The sender itself is unaffected by one strike.
    never(&mut a, Duration::from_millis(100), "disconnect", |s| {
        matches!(s, Seen::Disconnected(_))
    })
    .await;
    for n in [&a, &b, &c] {
        n.net.shutdown().await;
    }
}

#[tokio::test]
async fn unknown_key_is_refused() {
    let mut a = start(1, &[1, 2], &[], |_| {}).await;
    let mut b = start(2, &[1, 2], &[&a], |_| {}).await;
    until_peers(&a, &[b.key]).await;
    // x (key 9) is not a member, yet allows a and keeps dialing it.
    let mut x = start(9, &[1, 2], &[&a], |_| {}).await;
    let x_key = x.key;
    // a publishes while x is trying; b gets it, x never does.
    for i in 0..10 {
        publish(&a, Topic::Consensus, format!("proposal {i}").as_bytes()).await;
        sleep(Duration::from_millis(100)).await;
    }
    expect(&mut b, LONG, "a's proposal at b", gossip(b"proposal 9")).await;
    never(
        &mut x,
        Duration::from_secs(1),
        "gossip at a non-member",
        |s| matches!(s, Seen::Gossip { .. }),
    )
    .await;
    never(&mut a, Duration::from_millis(100), "x connecting", |s| {
        *s == Seen::Connected(x_key)
    })
    .await;
    assert_eq!(a.net.peers().await, vec![b.key]);
    // Nor can x ask for anything.
    assert!(
        x.net
            .request(a.key, b"blocks 1..10".to_vec())
            .await
            .is_err()
    );
    never(&mut a, Duration::from_millis(300), "request from x", |s| {
        matches!(s, Seen::Request(_))
    })
    .await;
    for n in [&a, &b, &x] {
        n.net.shutdown().await;
    }
}

#[tokio::test]
async fn removing_a_member_disconnects_it_and_adding_it_back_reconnects() {
    let mut a = start(1, &[1, 2, 3], &[], |_| {}).await;
    let b = start(2, &[1, 2, 3], &[&a], |_| {}).await;
    let mut c = start(3, &[1, 2, 3], &[&a, &b], |_| {}).await;
    until_peers(&a, &[b.key, c.key]).await;
    until_peers(&b, &[a.key, c.key]).await;
    let c_key = c.key;
    let a_key = a.key;

    // Governance removes c: every member drops it at once and refuses c's redials.
    a.net.set_allowed(vec![a.key, b.key]).await.unwrap();
    b.net.set_allowed(vec![a.key, b.key]).await.unwrap();
    expect(&mut a, LONG, "c disconnected at a", move |s| {
        *s == Seen::Disconnected(c_key)
    })
    .await;
    expect(&mut c, LONG, "a disconnected at c", move |s| {
        *s == Seen::Disconnected(a_key)
    })
    .await;
    until_peers(&a, &[b.key]).await;
    until_peers(&b, &[a.key]).await;
    // c keeps redialing (its backoff tops out at 1 s in these tests) and is refused each time.
    never(&mut a, Duration::from_secs(2), "c reconnecting", move |s| {
        *s == Seen::Connected(c_key)
    })
    .await;
    assert_eq!(a.net.peers().await, vec![b.key]);
    publish(&a, Topic::Transactions, b"after removal").await;
    never(
        &mut c,
        Duration::from_millis(500),
        "gossip at the removed member",
        gossip(b"after removal"),
    )
    .await;

    // Added back: c's next redial gets through.
    a.net.set_allowed(vec![a.key, b.key, c.key]).await.unwrap();
    b.net.set_allowed(vec![a.key, b.key, c.key]).await.unwrap();
    expect(&mut a, LONG, "c reconnecting", move |s| {
        *s == Seen::Connected(c_key)
    })
    .await;
    until_peers(&a, &[b.key, c.key]).await;
    until_peers(&c, &[a.key, b.key]).await;
    for n in [&a, &b, &c] {
        n.net.shutdown().await;
    }
}

#[tokio::test]
async fn request_response_round_trip_and_timeout() {
    let a = start(1, &[1, 2], &[], |_| {}).await;
    let mut b = start(2, &[1, 2], &[&a], |_| {}).await;
    until_peers(&a, &[b.key]).await;

    let answer = a.net.request(b.key, b"blocks 1..5".to_vec()).await.unwrap();
    assert_eq!(answer, b"re:blocks 1..5");
    expect(&mut b, LONG, "the request at b", |s| {
        *s == Seen::Request(b"blocks 1..5".to_vec())
    })
    .await;
    // And the other way.
    let answer = b.net.request(a.key, b"blocks 6..9".to_vec()).await.unwrap();
    assert_eq!(answer, b"re:blocks 6..9");

    // b's runtime sits on this one: a gives up after its request timeout (2 s here).
    let started = Instant::now();
    let err = a.net.request(b.key, b"slow".to_vec()).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, NetworkError::Timeout), "{err}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "timed out after {took:?}"
    );
    // Not connected: refused at once.
    let stranger = key(42).1;
    assert!(matches!(
        a.net.request(stranger, b"x".to_vec()).await,
        Err(NetworkError::NotConnected(k)) if k == stranger
    ));
    // The connection survives a timeout.
    assert_eq!(
        a.net.request(b.key, b"again".to_vec()).await.unwrap(),
        b"re:again"
    );
    a.net.shutdown().await;
    b.net.shutdown().await;
    // A stopped service says so.
    assert!(matches!(
        a.net.request(b.key, b"x".to_vec()).await,
        Err(NetworkError::Stopped)
    ));
    assert!(a.net.peers().await.is_empty());
}

#[tokio::test]
async fn oversized_messages_are_rejected() {
    // a sends with generous limits but accepts small responses; b accepts small gossip and
    // requests but may send big responses. Each receiver enforces its own limits.
    let a = start(1, &[1, 2], &[], |c| {
        c.max_gossip_size = 1 << 20;
        c.max_request_size = 1 << 20;
        c.max_response_size = 16 << 10;
    })
    .await;
    let mut b = start(2, &[1, 2], &[&a], |c| {
        c.max_gossip_size = 64 << 10;
        c.max_request_size = 1 << 10;
        c.max_response_size = 1 << 20;
    })
    .await;
    until_peers(&a, &[b.key]).await;

    // Local limits: refused before anything is sent.
    assert!(matches!(
        b.net.publish(Topic::Transactions, vec![1; 100 << 10]).await,
        Err(NetworkError::TooLarge { .. })
    ));
    assert!(matches!(
        b.net.request(a.key, vec![1; 2 << 10]).await,
        Err(NetworkError::TooLarge { .. })
    ));

    // Receiver limits: a's 100 KiB gossip never reaches b's runtime; a small one after it does.
    let mut big = vec![b'x'; 100 << 10];
    big[0] = b'B';
    publish(&a, Topic::Transactions, &big).await;
    publish(&a, Topic::Transactions, b"small").await;
    let mut saw_small = false;
    let deadline = Instant::now() + LONG;
    while !saw_small {
        let s = timeout(deadline - Instant::now(), b.seen.recv())
            .await
            .expect("b never got the small message")
            .unwrap();
        assert!(
            !matches!(&s, Seen::Gossip { data, .. } if data.len() > 64 << 10),
            "b accepted an oversized gossip message"
        );
        saw_small = gossip(b"small")(&s);
    }

    // A 4 KiB request to b (limit 1 KiB) fails at a, and b's runtime never sees it.
    let mut req = vec![b'r'; 4 << 10];
    req[..4].copy_from_slice(b"huge");
    assert!(a.net.request(b.key, req).await.is_err());
    // A 100 KiB response to a (limit 16 KiB) fails at a.
    assert!(a.net.request(b.key, b"big:102400".to_vec()).await.is_err());
    // A response within limits still works.
    assert_eq!(
        a.net.request(b.key, b"big:1000".to_vec()).await.unwrap(),
        vec![7; 1000]
    );
    never(
        &mut b,
        Duration::from_millis(300),
        "the oversized request",
        |s| matches!(s, Seen::Request(d) if d.starts_with(b"huge")),
    )
    .await;
    a.net.shutdown().await;
    b.net.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_keeps_sending_invalid_data_is_banned_for_a_while() {
    let mut a = start(1, &[1, 2], &[], |_| {}).await;
    let mut b = start(2, &[1, 2], &[&a], |c| {
        c.ban_threshold = 3;
        c.ban_duration = Duration::from_secs(3);
    })
    .await;
    until_peers(&b, &[a.key]).await;
    let a_key = a.key;
    let b_key = b.key;

    // Two strikes: still connected.
    for i in 0..2 {
        publish(&a, Topic::Consensus, format!("bad vote {i}").as_bytes()).await;
        expect(
            &mut b,
            LONG,
            "bad vote",
            gossip(format!("bad vote {i}").as_bytes()),
        )
        .await;
    }
    sleep(Duration::from_millis(300)).await;
    assert_eq!(b.net.peers().await, vec![a.key]);
    // The third: b disconnects and bans a.
    publish(&a, Topic::Consensus, b"bad vote 2").await;
    expect(&mut b, LONG, "a disconnected at b", move |s| {
        *s == Seen::Disconnected(a_key)
    })
    .await;
    expect(&mut a, LONG, "b disconnected at a", move |s| {
        *s == Seen::Disconnected(b_key)
    })
    .await;
    // b does not dial a banned member and refuses it while the ban lasts...
    never(
        &mut b,
        Duration::from_secs(2),
        "a reconnecting while banned",
        move |s| *s == Seen::Connected(a_key),
    )
    .await;
    // ...and gets back in after it.
    expect(&mut b, LONG, "a reconnecting after the ban", move |s| {
        *s == Seen::Connected(a_key)
    })
    .await;
    until_peers(&b, &[a.key]).await;
    a.net.shutdown().await;
    b.net.shutdown().await;
}
