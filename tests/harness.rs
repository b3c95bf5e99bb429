//! Test harness: a local alliance of real `caihong` processes on 127.0.0.1.
//!
//! `Alliance::create(n)` writes a testnet with `caihong testnet` into a temporary directory on
//! free ports; `start`, `kill` (SIGKILL), `stop` (SIGTERM) and `wipe` act on one member's
//! process and data; the HTTP helpers talk to a member's API. Every process started is killed
//! when the `Alliance` is dropped, so a failing test leaves nothing running. Failure messages
//! include the tail of the member's log.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use caihong_chaincode::tx::Action;
use caihong_chaincode::{PublicKey, SignedTransaction};
use caihong_cli::{Client, Failure};
use caihong_node::config::{Home, KeyFile, NetworkFile};
#[allow(unused_imports)] // Not every test binary that includes the harness reads answers.
pub use caihong_node::contract::{TxAnswer, TxState};
use ed25519_dalek::SigningKey;
use serde_json::Value;

/// The `caihong` binary cargo built for these tests, sending the harness's API token.
pub fn caihong() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_caihong"));
    command.env("CAIHONG_TOKEN", HARNESS_TOKEN);
    command
}

/// The harness's API client token, granted on every member it starts (scopes member and
/// submit): members in network namespaces are not on the harness's loopback.
pub const HARNESS_TOKEN: &str = "chk_harness_0123456789abcdef0123456789abcdef";

/// Grants the harness's token on a member's node (once) and sends it from this process. The
/// harness's workloads poll hard, so the `submit` scope it holds gets no request limit (a test
/// of limits sets the other scopes'). `empty_block_interval_ms`, when given, replaces the
/// node's (see [`Alliance::empty_block_interval_ms`]).
fn prepare_home(home: &Path, empty_block_interval_ms: Option<u64>) {
    use caihong_node::access::{self, Scope};
    use caihong_node::config::{NodeConfig, RateLimit};
    caihong_cli::api_client::set_token(Some(HARNESS_TOKEN.to_string()));
    let path = home.join("config.toml");
    let mut config: NodeConfig =
        toml::from_str(&std::fs::read_to_string(&path).expect("config.toml")).expect("config");
    let unlimited = RateLimit {
        per_second: 1_000_000,
        burst: 1_000_000,
        concurrent_long: 100_000,
    };
    let before = toml::to_string(&config).expect("toml");
    config.api.limits.submit = unlimited;
    if let Some(ms) = empty_block_interval_ms {
        config.consensus.empty_block_interval_ms = ms;
    }
    let after = toml::to_string(&config).expect("toml");
    if after != before {
        std::fs::write(&path, after).expect("config.toml");
    }
    let listed = access::list_clients(home).expect("the member's API clients");
    if !listed
        .iter()
        .any(|c| c.name == "harness" && c.revoked_ms.is_none())
    {
        access::add_client_token(
            home,
            "harness",
            &[Scope::Member, Scope::Submit],
            HARNESS_TOKEN,
        )
        .expect("the harness's API client");
    }
}

/// Runs `caihong args…` to completion; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = caihong().args(args).output().expect("caihong runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A block of `count` consecutive free TCP ports on 127.0.0.1, between 20000 and 32000: below
/// Linux's ephemeral range (32768 up), so an outgoing connection cannot take a member's port
/// while it is down and make its restart fail. Blocks are spread by process id so concurrent
/// test processes rarely collide, and each port is checked by binding it.
pub fn free_ports(count: u16) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let spread = (std::process::id() % 200) as u16 * 60;
    loop {
        let offset = NEXT.fetch_add(count, Ordering::SeqCst);
        let base = 20_000 + (spread + offset) % (12_000 - count);
        let all_free =
            (base..base + count).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return base;
        }
    }
}

/// One member's process and where it lives.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub home: PathBuf,
    pub api: String,
    pub p2p: String,
    /// A command that `caihong start` runs under (e.g. `ip netns exec NS`); empty for none.
    pub launcher: Vec<String>,
    /// Extra environment for the node (e.g. a faked clock).
    pub env: Vec<(String, String)>,
    /// Extra arguments of `caihong start` (e.g. `--state-sync`).
    pub start_args: Vec<String>,
    process: Option<Child>,
}

/// A local alliance in a temporary directory.
#[derive(Debug)]
pub struct Alliance {
    /// Alliances in one test binary run one at a time: four nodes already share two cores.
    _serial: std::sync::MutexGuard<'static, ()>,
    pub dir: tempfile::TempDir,
    pub chain_id: String,
    pub members: Vec<Member>,
    /// What each member's `consensus.empty_block_interval_ms` is set to when it starts:
    /// `Some(0)` (blocks at the block interval even when idle, the pace the suites' waits were
    /// written for) unless a test sets it, or `None` to keep the node's default (idle chains
    /// wait for transactions).
    pub empty_block_interval_ms: Option<u64>,
}

impl Alliance {
    /// Writes an `n`-member testnet (nothing started).
    pub fn create(n: usize) -> Alliance {
        Alliance::create_on(n, free_ports(2 * n as u16))
    }

    /// Writes an `n`-member testnet whose APIs serve HTTPS with certificates of a local CA,
    /// `DIR/net/ca.pem`, which this process then trusts (nothing started).
    pub fn create_tls(n: usize) -> Alliance {
        Alliance::create_tls_on(n, free_ports(2 * n as u16))
    }

    /// As [`Alliance::create_tls`], with ports from `base`.
    pub fn create_tls_on(n: usize, base: u16) -> Alliance {
        Alliance::create_args(n, base, &["--tls"])
    }

    /// Writes an `n`-member testnet whose ports start at `base` (nothing started).
    pub fn create_on(n: usize, base: u16) -> Alliance {
        Alliance::create_args(n, base, &[])
    }

    fn create_args(n: usize, base: u16, extra: &[&str]) -> Alliance {
        let serial = serial_lock();
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = dir.path().join("net");
        let (code, _, stderr) = run(&[
            "testnet",
            "--members",
            &n.to_string(),
            "--out",
            out.to_str().unwrap(),
            "--base-port",
            &base.to_string(),
            "--chain-id",
            "caihong-test",
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .collect::<Vec<_>>());
        assert_eq!(code, 0, "caihong testnet failed: {stderr}");
        let ca = out.join("ca.pem");
        if ca.exists() {
            caihong_cli::api_client::set_ca_cert(&ca).expect("the alliance's CA");
        }
        let text = std::fs::read_to_string(out.join("network.json")).unwrap();
        let net: NetworkFile = serde_json::from_str(&text).unwrap();
        Alliance::of(serial, dir, net)
    }

    /// Writes an `n`-member testnet whose member `i` has `layout(i)`'s addresses (nothing
    /// started).
    pub fn create_with(
        n: usize,
        layout: &dyn Fn(usize) -> caihong_node::config::MemberAddresses,
    ) -> Alliance {
        let serial = serial_lock();
        let dir = tempfile::tempdir().expect("temporary directory");
        let net = caihong_node::config::make_testnet_with(
            &dir.path().join("net"),
            n,
            "caihong-test",
            layout,
        )
        .expect("testnet is written");
        Alliance::of(serial, dir, net)
    }

    fn of(
        serial: std::sync::MutexGuard<'static, ()>,
        dir: tempfile::TempDir,
        net: NetworkFile,
    ) -> Alliance {
        Alliance {
            _serial: serial,
            chain_id: net.chain_id.clone(),
            members: net
                .members
                .into_iter()
                .map(|m| Member {
                    name: m.name,
                    home: m.home,
                    api: m.api,
                    p2p: m.p2p,
                    launcher: Vec::new(),
                    env: Vec::new(),
                    start_args: Vec::new(),
                    process: None,
                })
                .collect(),
            dir,
            empty_block_interval_ms: Some(0),
        }
    }

    /// Creates and starts an `n`-member alliance and waits until every member committed
    /// height 1.
    pub fn start_new(n: usize) -> Alliance {
        let mut alliance = Alliance::create(n);
        for i in 0..n {
            alliance.start(i);
        }
        for i in 0..n {
            alliance.wait_height(i, 1, Duration::from_secs(60));
        }
        alliance
    }

    /// Makes a home for a city that is not a member yet with `caihong init` against this
    /// alliance's genesis, on free ports; returns its index (it is not started).
    pub fn add_home(&mut self, id: &str) -> usize {
        let base = free_ports(2);
        let home = self.dir.path().join("net").join(id);
        let genesis = self.members[0].home.join("genesis.json");
        let p2p = format!("/ip4/127.0.0.1/tcp/{base}");
        let api = format!("127.0.0.1:{}", base + 1);
        let (code, _, stderr) = run(&[
            "init",
            "--home",
            home.to_str().unwrap(),
            "--member",
            id,
            "--genesis",
            genesis.to_str().unwrap(),
            "--p2p-listen",
            &p2p,
            "--api-listen",
            &api,
        ]);
        assert_eq!(code, 0, "caihong init failed: {stderr}");
        self.members.push(Member {
            name: id.to_string(),
            home,
            api: format!("http://{api}"),
            p2p,
            launcher: Vec::new(),
            env: Vec::new(),
            start_args: Vec::new(),
            process: None,
        });
        self.members.len() - 1
    }

    /// The height member `i` started from by state sync, as its log says.
    pub fn snapshot_height(&self, i: usize) -> Option<u64> {
        std::fs::read_to_string(self.log_path(i))
            .ok()?
            .lines()
            .find(|l| l.contains("started from a state snapshot"))
            .and_then(|l| l.split("height=").nth(1))
            .and_then(|h| h.split_whitespace().next())
            .and_then(|h| h.parse().ok())
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.members[i].home.join("node.log")
    }

    /// The last lines of member `i`'s log, for failure messages.
    pub fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Every started member's height and log tail: a stalled chain is explained by what the
    /// other members saw, not only by the one that was waited on.
    pub fn every_log_tail(&self) -> String {
        (0..self.members.len())
            .filter(|&i| self.members[i].process.is_some())
            .map(|i| {
                format!(
                    "--- member {i} ({}), height {:?}:\n{}",
                    self.members[i].home.display(),
                    self.height(i),
                    self.log_tail(i)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Starts member `i` (`caihong start --home …`), appending to its log.
    pub fn start(&mut self, i: usize) {
        assert!(self.members[i].process.is_none(), "member {i} is running");
        prepare_home(&self.members[i].home, self.empty_block_interval_ms);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let member = &self.members[i];
        let mut command = match member.launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_caihong"));
                c
            }
            None => caihong(),
        };
        let child = command
            .args(["start", "--home"])
            .arg(&member.home)
            .args(&member.start_args)
            .env("RUST_LOG", "info,libp2p=warn")
            .envs(member.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("caihong start");
        self.members[i].process = Some(child);
        self.wait_api(i, Duration::from_secs(30));
    }

    /// Waits until member `i` answers /healthz.
    pub fn wait_api(&mut self, i: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if get(&format!("{}/healthz", self.members[i].api)).is_ok() {
                return;
            }
            if let Some(child) = self.members[i].process.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "member {i} exited with {status} before its API came up:\n{}",
                    self.log_tail(i)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "member {i}'s API did not come up in {timeout:?}:\n{}",
            self.log_tail(i)
        );
    }

    /// SIGKILLs member `i`: no chance to flush or say goodbye.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a graceful exit; returns its exit code.
    pub fn stop(&mut self, i: usize) -> Option<i32> {
        let mut child = self.members[i].process.take()?;
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("member {i} did not stop within 20 s of SIGTERM");
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].process.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        match self.members[i].process.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Deletes member `i`'s data directory (it must be stopped).
    pub fn wipe(&self, i: usize) {
        let data = self.members[i].home.join("data");
        let _ = std::fs::remove_dir_all(data);
    }

    pub fn home(&self, i: usize) -> Home {
        Home::load(&self.members[i].home).expect("member home loads")
    }

    pub fn admin_key(&self, i: usize) -> SigningKey {
        KeyFile::read(&Home::admin_key_path(&self.members[i].home)).unwrap()
    }

    pub fn api(&self, i: usize) -> &str {
        &self.members[i].api
    }

    /// GET `path` on member `i`'s API (panics on a transport error or non-2xx).
    pub fn get(&self, i: usize, path: &str) -> Value {
        match get(&format!("{}{path}", self.api(i))) {
            Ok(v) => v,
            Err(e) => panic!("GET {path} on member {i}: {e}\n{}", self.log_tail(i)),
        }
    }

    pub fn status(&self, i: usize) -> Value {
        self.get(i, "/v1/status")
    }

    /// Member `i`'s committed height, or `None` if its API does not answer.
    pub fn height(&self, i: usize) -> Option<u64> {
        get(&format!("{}/v1/status", self.api(i)))
            .ok()
            .and_then(|s| s["height"].as_u64())
    }

    /// Waits until member `i` has committed `height`.
    pub fn wait_height(&self, i: usize, height: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let h = self.height(i);
            if let Some(h) = h
                && h >= height
            {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "member {i} at height {h:?}, not {height}, after {timeout:?}:\n{}",
                self.every_log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// (block hash, state root) of `height` on member `i`.
    pub fn block_ids(&self, i: usize, height: u64) -> (String, String) {
        let b = self.get(i, &format!("/v1/blocks/{height}"));
        (
            b["hash"].as_str().unwrap().to_string(),
            b["state_root"].as_str().unwrap().to_string(),
        )
    }

    /// Asserts every listed member has the same block hash and state root at every height
    /// from 0 to `up_to`.
    pub fn assert_same_chain(&self, members: &[usize], up_to: u64) {
        for h in 0..=up_to {
            let first = self.block_ids(members[0], h);
            for &m in &members[1..] {
                assert_eq!(
                    self.block_ids(m, h),
                    first,
                    "member {m} differs from member {} at height {h}",
                    members[0]
                );
            }
        }
    }

    /// The API client of member `i` (the one `caihong` uses).
    pub fn client(&self, i: usize) -> Client {
        Client {
            url: self.api(i).to_string(),
            chain_id: self.chain_id.clone(),
        }
    }

    /// The next nonce for `key` that no pending transaction uses, from member `i`.
    pub fn next_nonce(&self, i: usize, key: &SigningKey) -> u64 {
        let public = PublicKey::from(&key.verifying_key());
        self.client(i)
            .next_nonce(&public)
            .unwrap_or_else(|e| panic!("nonce from member {i}: {e}"))
    }

    /// Signs `action` with `key` at `nonce`.
    pub fn sign(&self, key: &SigningKey, nonce: u64, action: Action) -> SignedTransaction {
        self.client(0).sign(key, nonce, action)
    }

    /// POSTs a transaction to member `i`. `Ok` has the node's answer (2xx); `Err` the status
    /// code and JSON error.
    pub fn submit(
        &self,
        i: usize,
        tx: &SignedTransaction,
        wait: bool,
    ) -> Result<TxAnswer, HttpError> {
        self.client(i).post(tx, wait).map_err(HttpError::from)
    }
}

impl Drop for Alliance {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// Alliances in one test binary run one at a time.
fn serial_lock() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends a signal with `kill(1)` (the crate forbids unsafe code, so no libc).
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

/// An HTTP failure: a status with the JSON body, or a transport error (status 0).
#[derive(Debug)]
pub struct HttpError {
    pub status: u16,
    pub body: Value,
}

impl From<Failure> for HttpError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Rejected { status, body } => HttpError { status, body },
            Failure::Local(e) => HttpError {
                status: 0,
                body: Value::String(format!("{e:#}")),
            },
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.body)
    }
}

fn answer(result: Result<ureq::Response, ureq::Error>) -> Result<Value, HttpError> {
    match result {
        Ok(r) => Ok(r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(status, r)) => Err(HttpError {
            status,
            body: r.into_json().unwrap_or(Value::Null),
        }),
        Err(ureq::Error::Transport(t)) => Err(HttpError {
            status: 0,
            body: Value::String(t.to_string()),
        }),
    }
}

pub fn get(url: &str) -> Result<Value, HttpError> {
    // Through the CLI library's agent: it trusts an alliance's own CA when a test set one.
    answer(
        caihong_cli::api_client::get(url)
            .set("authorization", &format!("Bearer {HARNESS_TOKEN}"))
            .timeout(Duration::from_secs(10))
            .call(),
    )
}

pub fn post(url: &str, body: &Value) -> Result<Value, HttpError> {
    answer(
        ureq::post(url)
            .set("authorization", &format!("Bearer {HARNESS_TOKEN}"))
            .timeout(Duration::from_secs(60))
            .send_json(body.clone()),
    )
}

/// POSTs raw bytes with a content type (for malformed-input tests).
pub fn post_raw(url: &str, content_type: &str, body: &[u8]) -> Result<Value, HttpError> {
    answer(
        ureq::post(url)
            .set("authorization", &format!("Bearer {HARNESS_TOKEN}"))
            .timeout(Duration::from_secs(30))
            .set("content-type", content_type)
            .send_bytes(body),
    )
}

/// Paths of the files under `dir`, for checking nothing was written.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A valid USCC for test subject `n` in region `region` (6 digits).
pub fn test_uscc(region: &str, n: u32) -> String {
    caihong_chaincode::uscc::build(&format!("91{region}"), &format!("MA{n:06}"))
        .expect("a valid test code")
        .as_str()
        .to_string()
}

/// Registering test subject `n` (a bidder, 投标人) in region `region`.
pub fn register_subject(region: &str, n: u32) -> Action {
    use caihong_chaincode::subjects::{SubjectAction, SubjectInfo, SubjectRole, SubjectStatus};
    Action::Subject(SubjectAction::Register(SubjectInfo {
        uscc: test_uscc(region, n),
        name: format!("测试投标人{n}有限公司"),
        roles: [SubjectRole::Bidder].into_iter().collect(),
        legal_representative: format!("法人{n}"),
        qualifications: vec![],
        status: SubjectStatus::Active,
    }))
}
