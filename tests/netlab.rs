//! A private network for a fault-injection alliance: each member's node runs in its own Linux
//! network namespace, joined to the others by a bridge, so cut links are real kernel drops.
//!
//! Layout for lab subnet `10.201.S.0/24`:
//! - the host (this test process) is `10.201.S.1` on bridge `chbrS`;
//! - member `i` is `10.201.S.(10+i)` in namespace `chSni`, its node listening for peers on
//!   port 26656 and serving its API on 26657 of that address;
//! - the address in genesis for member `i` is a link proxy on the host, `10.201.S.1:(26000+i)`,
//!   which forwards to the member and can hold every byte for a set delay (the kernel has no
//!   netem, so delay is injected in user space).
//!
//! A link between members `i` and `j` is cut by iptables rules in the dialing side's namespace:
//! every connection between them is either `i → proxy j → j` or `j → proxy i → i`, so dropping,
//! in `i`'s namespace, all packets to and from proxy `j`'s port (and in `j`'s, proxy `i`'s) cuts
//! both. Packet loss is iptables' `statistic` match on a member's interface. All rules live in
//! one chain, `FAULTS`, so healing is a flush.
//!
//! Needs root (CAP_NET_ADMIN) and the `ip` and `iptables` commands; [`NetLab::available`] says
//! why not when it cannot run. Dropping the lab deletes the namespaces and the bridge.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use caihong_node::config::MemberAddresses;

pub const P2P_PORT: u16 = 26656;
pub const API_PORT: u16 = 26657;
pub const PROXY_BASE: u16 = 26000;

/// Runs a command; returns stderr on failure.
fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(program: &str, args: &[&str]) {
    if let Err(e) = sh(program, args) {
        panic!("{e}");
    }
}

/// Delay applied by one member's inbound link proxy.
#[derive(Debug, Default)]
struct Link {
    delay_ms: AtomicU64,
}

#[derive(Debug)]
pub struct NetLab {
    subnet: u8,
    members: usize,
    links: Vec<Arc<Link>>,
    closed: Arc<AtomicBool>,
}

impl NetLab {
    /// `Err(reason)` if this machine cannot run a lab (not root, no namespaces, no iptables).
    pub fn available() -> Result<(), String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if uid != "0" {
            return Err(format!("not root (uid {uid})"));
        }
        for tool in ["ip", "iptables"] {
            if sh("sh", &["-c", &format!("command -v {tool}")]).is_err() {
                return Err(format!("`{tool}` is not installed"));
            }
        }
        let probe = format!("chprobe{}", std::process::id());
        sh("ip", &["netns", "add", &probe]).map_err(|e| format!("no network namespaces: {e}"))?;
        let iptables = sh("ip", &["netns", "exec", &probe, "iptables", "-L", "-n"]);
        let _ = sh("ip", &["netns", "del", &probe]);
        iptables.map_err(|e| format!("iptables does not work in a namespace: {e}"))
    }

    /// Creates the bridge, one namespace per member, and the link proxies.
    pub fn create(members: usize) -> NetLab {
        // One subnet per test process, so concurrent labs do not meet.
        let subnet = 20 + (std::process::id() % 200) as u8;
        let lab = NetLab {
            subnet,
            members,
            links: (0..members).map(|_| Arc::new(Link::default())).collect(),
            closed: Arc::new(AtomicBool::new(false)),
        };
        lab.teardown(); // leftovers of a run that was killed
        let bridge = lab.bridge();
        must("ip", &["link", "add", &bridge, "type", "bridge"]);
        must(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", lab.host_ip()),
                "dev",
                &bridge,
            ],
        );
        must("ip", &["link", "set", &bridge, "up"]);
        for i in 0..members {
            let ns = lab.namespace(i);
            let veth = format!("ch{subnet}v{i}");
            must("ip", &["netns", "add", &ns]);
            must(
                "ip",
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            );
            must("ip", &["link", "set", &veth, "master", &bridge]);
            must("ip", &["link", "set", &veth, "up"]);
            lab.in_ns(
                i,
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("{}/24", lab.member_ip(i)),
                    "dev",
                    "eth0",
                ],
            );
            lab.in_ns(i, "ip", &["link", "set", "eth0", "up"]);
            lab.in_ns(i, "ip", &["link", "set", "lo", "up"]);
            lab.in_ns(i, "iptables", &["-N", "FAULTS"]);
            lab.in_ns(i, "iptables", &["-I", "INPUT", "-j", "FAULTS"]);
            lab.in_ns(i, "iptables", &["-I", "OUTPUT", "-j", "FAULTS"]);
            lab.spawn_proxy(i);
        }
        lab
    }

    fn bridge(&self) -> String {
        format!("chbr{}", self.subnet)
    }

    pub fn namespace(&self, i: usize) -> String {
        format!("ch{}n{i}", self.subnet)
    }

    pub fn host_ip(&self) -> String {
        format!("10.201.{}.1", self.subnet)
    }

    pub fn member_ip(&self, i: usize) -> String {
        format!("10.201.{}.{}", self.subnet, 10 + i)
    }

    /// Member `i`'s addresses for `make_testnet_with`.
    pub fn addresses(&self, i: usize) -> MemberAddresses {
        MemberAddresses {
            p2p_listen: format!("/ip4/{}/tcp/{P2P_PORT}", self.member_ip(i)),
            p2p_public: format!("/ip4/{}/tcp/{}", self.host_ip(), PROXY_BASE + i as u16),
            api_listen: format!("{}:{API_PORT}", self.member_ip(i)),
        }
    }

    /// The command prefix that runs a program inside member `i`'s namespace.
    pub fn launcher(&self, i: usize) -> Vec<String> {
        ["ip", "netns", "exec"]
            .iter()
            .map(|s| s.to_string())
            .chain([self.namespace(i)])
            .collect()
    }

    fn in_ns(&self, i: usize, program: &str, args: &[&str]) {
        let ns = self.namespace(i);
        let mut full = vec!["netns", "exec", &ns, program];
        full.extend_from_slice(args);
        must("ip", &full);
    }

    fn drop_proxy_port(&self, i: usize, port: u16) {
        let (host, port) = (self.host_ip(), port.to_string());
        let rules: [&[&str]; 2] = [
            &[
                "-A", "FAULTS", "-p", "tcp", "-d", &host, "--dport", &port, "-j", "DROP",
            ],
            &[
                "-A", "FAULTS", "-p", "tcp", "-s", &host, "--sport", &port, "-j", "DROP",
            ],
        ];
        for rule in rules {
            self.in_ns(i, "iptables", rule);
        }
    }

    /// Cuts every connection between members `i` and `j`, now and until [`heal`](Self::heal).
    pub fn cut(&self, i: usize, j: usize) {
        self.drop_proxy_port(i, PROXY_BASE + j as u16);
        self.drop_proxy_port(j, PROXY_BASE + i as u16);
    }

    /// Cuts every link between members of different groups; members not in any group (bridge
    /// members) keep all their links.
    pub fn partition(&self, groups: &[Vec<usize>]) {
        for (a, ga) in groups.iter().enumerate() {
            for gb in &groups[a + 1..] {
                for &i in ga {
                    for &j in gb {
                        self.cut(i, j);
                    }
                }
            }
        }
    }

    /// Drops each packet member `i` receives with probability `p` (its API too).
    pub fn lose(&self, i: usize, p: f64) {
        let p = format!("{p:.3}");
        self.in_ns(
            i,
            "iptables",
            &[
                "-A",
                "FAULTS",
                "-i",
                "eth0",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ],
        );
    }

    /// Holds every byte sent to member `i` over the p2p network for `ms` milliseconds.
    pub fn delay(&self, i: usize, ms: u64) {
        self.links[i].delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Removes every cut, loss and delay.
    pub fn heal(&self) {
        for i in 0..self.members {
            self.in_ns(i, "iptables", &["-F", "FAULTS"]);
            self.links[i].delay_ms.store(0, Ordering::SeqCst);
        }
    }

    /// A proxy on the host for member `i`'s p2p port: each connection is two pumps, each a
    /// reader that stamps what it reads and a writer that sends it when the delay has passed.
    fn spawn_proxy(&self, i: usize) {
        let listener = TcpListener::bind((self.host_ip().as_str(), PROXY_BASE + i as u16))
            .expect("link proxy binds on the bridge address");
        listener.set_nonblocking(true).unwrap();
        let upstream = format!("{}:{P2P_PORT}", self.member_ip(i));
        let link = self.links[i].clone();
        let closed = self.closed.clone();
        std::thread::spawn(move || {
            while !closed.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((inbound, _)) => {
                        inbound.set_nonblocking(false).unwrap();
                        let Ok(outbound) = TcpStream::connect_timeout(
                            &upstream.parse().unwrap(),
                            Duration::from_secs(2),
                        ) else {
                            continue; // the member is down: the dialer sees the connection close
                        };
                        pump(
                            inbound.try_clone().unwrap(),
                            outbound.try_clone().unwrap(),
                            link.clone(),
                        );
                        pump(outbound, inbound, link.clone());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
    }

    fn teardown(&self) {
        for i in 0..self.members.max(16) {
            let _ = sh("ip", &["netns", "del", &self.namespace(i)]);
        }
        let _ = sh("ip", &["link", "del", &self.bridge()]);
    }
}

/// Copies `from` to `to`, each chunk no earlier than `link`'s delay after it was read.
fn pump(mut from: TcpStream, mut to: TcpStream, link: Arc<Link>) {
    let (chunks, delayed) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if chunks.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Read);
    });
    std::thread::spawn(move || {
        for (read_at, bytes) in delayed {
            let due = read_at + Duration::from_millis(link.delay_ms.load(Ordering::SeqCst));
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

impl Drop for NetLab {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        self.teardown();
    }
}

/// An alliance whose members run in a lab; the alliance is dropped (processes killed) first.
pub struct Lab {
    pub alliance: crate::harness::Alliance,
    pub net: NetLab,
}

/// A lab of `members` running and past height 1, each member set up by `prepare` (its
/// environment, say) before it starts. `None`, with the reason printed, where no lab can run
/// here; with `CAIHONG_FAULTS_REQUIRED=1` (CI as root) that is a failure instead.
pub fn lab_or_skip(
    members: usize,
    test: &str,
    prepare: &dyn Fn(&mut crate::harness::Member),
) -> Option<Lab> {
    if let Err(reason) = NetLab::available() {
        if std::env::var("CAIHONG_FAULTS_REQUIRED").is_ok_and(|v| v == "1") {
            panic!(
                "{test}: the fault lab cannot run here ({reason}) and CAIHONG_FAULTS_REQUIRED=1"
            );
        }
        eprintln!("SKIPPED {test}: the fault lab needs root and network namespaces: {reason}");
        return None;
    }
    let net = NetLab::create(members);
    let mut alliance = crate::harness::Alliance::create_with(members, &|i| net.addresses(i));
    for (i, member) in alliance.members.iter_mut().enumerate() {
        member.launcher = net.launcher(i);
        prepare(member);
    }
    for i in 0..members {
        alliance.start(i);
    }
    for i in 0..members {
        alliance.wait_height(i, 1, Duration::from_secs(60));
    }
    Some(Lab { alliance, net })
}
