//! A member's home directory: its config, keys and the alliance genesis.
//!
//! ```text
//! HOME/config.toml     this member's settings (addresses, limits, logging)
//! HOME/genesis.json    the alliance genesis, identical on every member
//! HOME/node_key.json   the node's ed25519 key (consensus votes, p2p identity)
//! HOME/admin_key.json  an admin key of this member (signs transactions)
//! HOME/encryption_key.json  the member's X25519 key: reads sealed extraction notices
//! HOME/data/           the RocksDB store
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use caihong_chaincode::genesis::Genesis;
use caihong_chaincode::{Hash, PublicKey, codec};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// Errors reading or writing a home directory, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The IO error is part of the message, not a separate source, so a report of the
    /// whole chain (`{:#}`) says it once.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{} is not a member home (it has no config.toml); make one with `caihong init` or \
         `caihong testnet`, or give the right --home",
        .0.display()
    )]
    NotAHome(PathBuf),
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |error| ConfigError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn invalid(path: &Path, message: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This member's id in genesis (e.g. `hohhot`).
    pub member: String,
    pub p2p: P2pConfig,
    pub api: ApiConfig,
    #[serde(default)]
    pub consensus: ConsensusConfig,
    #[serde(default)]
    pub mempool: MempoolConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub storage: StorageConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pConfig {
    /// libp2p listen address, e.g. `/ip4/0.0.0.0/tcp/26656`.
    pub listen: String,
    /// Addresses to dial besides those members published on chain, as
    /// `(node public key hex, multiaddr)`; useful behind NAT or for tests.
    #[serde(default)]
    pub extra_peers: Vec<PeerAddress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerAddress {
    pub key: String,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// HTTP listen address; loopback by default. Callers other than loopback need a bearer
    /// token of an API client (`caihong api-client add`, see docs/API.md).
    pub listen: String,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Whether callers on loopback (the member's own CLI) have every scope without a token.
    #[serde(default = "default_true")]
    pub loopback_full_access: bool,
    /// Who may read `/metrics`: `loopback` (the default: the machine's own monitoring only) or
    /// a scope (`public`, `member`, `submit`) whose clients may, besides loopback.
    #[serde(default = "default_metrics")]
    pub metrics: String,
    /// Request limits of API clients, by scope (a client gets its most generous scope's).
    #[serde(default)]
    pub limits: ScopeLimits,
    /// The API's TLS certificate chain (PEM; relative to the home or absolute). With
    /// `tls_key`, the API serves HTTPS only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

/// Limits of one scope's clients: a token bucket of requests, and how many long requests
/// (light blocks, the credit feed, transactions that wait) may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests that may come at once after a quiet spell.
    pub burst: u32,
    /// Long requests in flight at once.
    pub concurrent_long: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopeLimits {
    pub public: RateLimit,
    pub member: RateLimit,
    pub submit: RateLimit,
}

impl Default for ScopeLimits {
    fn default() -> Self {
        let limit = |per_second, concurrent_long| RateLimit {
            per_second,
            burst: 2 * per_second,
            concurrent_long,
        };
        ScopeLimits {
            public: limit(20, 2),
            member: limit(50, 4),
            // A platform pushing or importing submits in bursts.
            submit: limit(200, 16),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_metrics() -> String {
    "loopback".to_string()
}

fn default_max_body() -> usize {
    8 * 1024 * 1024
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    /// Least time between consecutive proposals (a block that takes longer to agree on and
    /// store is followed at once).
    pub block_interval_ms: u64,
    /// Longest wait for something to order: with no runnable transaction in the mempool and
    /// no work that counts blocks (an extraction's anchor or seal deadline, a governance
    /// change taking effect), the next height starts after this long since the last block,
    /// or at once when a transaction or a peer's message for it arrives. `0` makes blocks at
    /// `block_interval_ms` even when empty.
    pub empty_block_interval_ms: u64,
    pub max_block_txs: usize,
    pub max_block_bytes: usize,
    pub timeout_propose_ms: u64,
    pub timeout_prevote_ms: u64,
    pub timeout_precommit_ms: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            block_interval_ms: 200,
            empty_block_interval_ms: 60_000,
            max_block_txs: 10_000,
            max_block_bytes: 3 * 1024 * 1024,
            timeout_propose_ms: 2000,
            timeout_prevote_ms: 1000,
            timeout_precommit_ms: 1000,
        }
    }
}

/// Largest `max_block_bytes` a node accepts: a proposed block travels as one gossip message,
/// so its transactions plus header and envelope must fit the network's gossip limit, or the
/// other members would never see the body and the height would stall.
pub const MAX_BLOCK_BYTES_LIMIT: usize =
    crate::network::DEFAULT_MAX_GOSSIP_SIZE - crate::network::BLOCK_MESSAGE_OVERHEAD;

impl ConsensusConfig {
    fn check(&self) -> Result<(), String> {
        if self.max_block_bytes > MAX_BLOCK_BYTES_LIMIT {
            return Err(format!(
                "consensus.max_block_bytes = {} is above {MAX_BLOCK_BYTES_LIMIT}: a block is gossiped as one message and must fit the {} byte gossip limit",
                self.max_block_bytes,
                crate::network::DEFAULT_MAX_GOSSIP_SIZE
            ));
        }
        if self.max_block_txs == 0 || self.max_block_bytes == 0 {
            return Err("consensus.max_block_txs and max_block_bytes must be at least 1".into());
        }
        Ok(())
    }

    pub fn consensus(&self) -> caihong_consensus::Config {
        caihong_consensus::Config {
            timeout_propose: Duration::from_millis(self.timeout_propose_ms),
            timeout_prevote: Duration::from_millis(self.timeout_prevote_ms),
            timeout_precommit: Duration::from_millis(self.timeout_precommit_ms),
            ..caihong_consensus::Config::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Most transactions held; a full mempool rejects new ones.
    pub capacity: usize,
    /// Most transactions held per signer.
    pub per_signer: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            capacity: 100_000,
            per_signer: 10_000,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// State-tree versions kept for proofs: those of the latest this many heights. `0` keeps
    /// every version: an archive member, which can prove state at any height (another
    /// region's `sync credit` from genesis needs one). Blocks, certificates, receipts and the
    /// history of state writes are always kept: they are the audit record.
    pub keep_state_versions: u64,
}

/// Fewest versions a pruning member keeps: a light client following the chain asks for
/// proofs a few blocks behind the tip.
pub const MIN_KEEP_STATE_VERSIONS: u64 = 10;

impl StorageConfig {
    fn check(&self) -> Result<(), String> {
        match self.keep_state_versions {
            0 => Ok(()),
            n if n < MIN_KEEP_STATE_VERSIONS => Err(format!(
                "storage.keep_state_versions = {n} is too few: keep 0 (every version) or at \
                 least {MIN_KEEP_STATE_VERSIONS}"
            )),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `RUST_LOG`-style filter; the `RUST_LOG` variable wins when set.
    pub filter: String,
    /// Log lines as JSON objects.
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
            json: false,
        }
    }
}

/// An ed25519 key file: `{"public": hex, "secret": hex}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    pub public: String,
    pub secret: String,
}

impl KeyFile {
    pub fn from_key(key: &SigningKey) -> Self {
        KeyFile {
            public: hex::encode(key.verifying_key().to_bytes()),
            secret: hex::encode(key.to_bytes()),
        }
    }

    pub fn generate() -> SigningKey {
        let mut seed = [0u8; 32];
        getrandom_seed(&mut seed);
        SigningKey::from_bytes(&seed)
    }

    pub fn write(path: &Path, key: &SigningKey) -> Result<(), ConfigError> {
        let json = serde_json::to_string_pretty(&KeyFile::from_key(key)).expect("serializable");
        write_private(path, json.as_bytes())
    }

    pub fn read(path: &Path) -> Result<SigningKey, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(path, e))?;
        let bytes: [u8; 32] = hex::decode(file.secret.trim())
            .map_err(|e| invalid(path, format!("secret is not hex: {e}")))?
            .try_into()
            .map_err(|_| invalid(path, "secret must be 32 bytes"))?;
        let key = SigningKey::from_bytes(&bytes);
        if hex::encode(key.verifying_key().to_bytes()) != file.public.trim().to_lowercase() {
            return Err(invalid(path, "public key does not match the secret"));
        }
        Ok(key)
    }
}

/// A member's X25519 encryption key on disk: `{"public": hex, "secret": hex}`, mode 0600.
#[derive(Debug, Serialize, Deserialize)]
pub struct EncryptionKeyFile {
    pub public: String,
    pub secret: String,
}

impl EncryptionKeyFile {
    pub fn generate() -> x25519_dalek::StaticSecret {
        let mut seed = [0u8; 32];
        getrandom_seed(&mut seed);
        x25519_dalek::StaticSecret::from(seed)
    }

    pub fn write(path: &Path, key: &x25519_dalek::StaticSecret) -> Result<(), ConfigError> {
        let file = EncryptionKeyFile {
            public: caihong_chaincode::experts::seal::encryption_public(key).to_hex(),
            secret: hex::encode(key.to_bytes()),
        };
        let json = serde_json::to_string_pretty(&file).expect("serializable");
        write_private(path, json.as_bytes())
    }

    /// Writes `key` as `home`'s encryption key, making the directory.
    pub fn write_new(home: &Path, key: &x25519_dalek::StaticSecret) -> Result<(), ConfigError> {
        std::fs::create_dir_all(home).map_err(io(home))?;
        Self::write(&Home::encryption_key_path(home), key)
    }

    pub fn read(path: &Path) -> Result<x25519_dalek::StaticSecret, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let file: EncryptionKeyFile = serde_json::from_str(&text).map_err(|e| invalid(path, e))?;
        let bytes: [u8; 32] = hex::decode(file.secret.trim())
            .map_err(|e| invalid(path, format!("secret is not hex: {e}")))?
            .try_into()
            .map_err(|_| invalid(path, "secret must be 32 bytes"))?;
        let key = x25519_dalek::StaticSecret::from(bytes);
        let public = caihong_chaincode::experts::seal::encryption_public(&key);
        if public.to_hex() != file.public.trim().to_lowercase() {
            return Err(invalid(path, "public key does not match the secret"));
        }
        Ok(key)
    }
}

/// Fresh randomness for key generation, from the OS.
pub(crate) fn getrandom_seed(seed: &mut [u8; 32]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(seed))
        .expect("the OS random source /dev/urandom is readable");
}

/// Writes a file readable only by its owner (keys).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))
}

/// The whole of a member's home, loaded and checked.
#[derive(Clone)]
pub struct Home {
    pub dir: PathBuf,
    pub config: NodeConfig,
    pub genesis: Genesis,
    pub node_key: SigningKey,
    /// The member's X25519 key for sealed extraction notices; `None` in a home made before
    /// sealed extractions (make one with `caihong keygen --encryption`).
    pub encryption_key: Option<x25519_dalek::StaticSecret>,
}

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Home")
            .field("dir", &self.dir)
            .field("config", &self.config)
            .field("encryption_key", &self.encryption_key.is_some())
            .finish_non_exhaustive()
    }
}

impl Home {
    pub fn config_path(dir: &Path) -> PathBuf {
        dir.join("config.toml")
    }
    pub fn genesis_path(dir: &Path) -> PathBuf {
        dir.join("genesis.json")
    }
    pub fn node_key_path(dir: &Path) -> PathBuf {
        dir.join("node_key.json")
    }
    pub fn admin_key_path(dir: &Path) -> PathBuf {
        dir.join("admin_key.json")
    }
    pub fn encryption_key_path(dir: &Path) -> PathBuf {
        dir.join("encryption_key.json")
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn load(dir: &Path) -> Result<Home, ConfigError> {
        let config_path = Self::config_path(dir);
        let text = std::fs::read_to_string(&config_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ConfigError::NotAHome(dir.to_path_buf())
            } else {
                io(&config_path)(e)
            }
        })?;
        let config: NodeConfig = toml::from_str(&text).map_err(|e| invalid(&config_path, e))?;
        config
            .consensus
            .check()
            .and_then(|()| config.storage.check())
            .map_err(|e| invalid(&config_path, e))?;
        let genesis = read_genesis(&Self::genesis_path(dir))?;
        let node_key = KeyFile::read(&Self::node_key_path(dir))?;
        // Whether the node key is this member's is checked against the chain's state when the
        // node starts (runtime::check_node_key): governance may have rotated it since genesis.
        let encryption_path = Self::encryption_key_path(dir);
        let encryption_key = if encryption_path.exists() {
            Some(EncryptionKeyFile::read(&encryption_path)?)
        } else {
            None
        };
        Ok(Home {
            dir: dir.to_path_buf(),
            config,
            genesis,
            node_key,
            encryption_key,
        })
    }
}

pub fn write_config(path: &Path, config: &NodeConfig) -> Result<(), ConfigError> {
    let text = toml::to_string_pretty(config).map_err(|e| invalid(path, e))?;
    std::fs::write(path, text).map_err(io(path))
}

pub fn read_genesis(path: &Path) -> Result<Genesis, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let genesis: Genesis = serde_json::from_str(&text).map_err(|e| invalid(path, e))?;
    genesis
        .initial_state()
        .map_err(|e| invalid(path, format!("invalid genesis: {e}")))?;
    Ok(genesis)
}

pub fn write_genesis(path: &Path, genesis: &Genesis) -> Result<(), ConfigError> {
    let text = serde_json::to_string_pretty(genesis).expect("serializable");
    std::fs::write(path, text).map_err(io(path))
}

/// The identity of an alliance's history: SHA-256 of the canonical genesis.
pub fn genesis_hash(genesis: &Genesis) -> Hash {
    Hash::of(&codec::encode(genesis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_and_detect_mismatch() {
        let dir = std::env::temp_dir().join(format!("caihong-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.json");
        let key = KeyFile::generate();
        KeyFile::write(&path, &key).unwrap();
        assert_eq!(KeyFile::read(&path).unwrap().to_bytes(), key.to_bytes());
        let mut file: KeyFile =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        file.public = hex::encode([1u8; 32]);
        std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
        let err = KeyFile::read(&path).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_config_fields_are_refused() {
        let text = r#"
member = "hohhot"
typo = 1
[p2p]
listen = "/ip4/127.0.0.1/tcp/1"
[api]
listen = "127.0.0.1:1"
"#;
        let err = toml::from_str::<NodeConfig>(text).unwrap_err().to_string();
        assert!(err.contains("typo"), "{err}");
    }
}

/// `DIR/network.json` of a local testnet: where each member lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFile {
    pub chain_id: String,
    pub members: Vec<NetworkMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkMember {
    pub name: String,
    pub home: PathBuf,
    pub p2p: String,
    pub api: String,
}

/// Writes a local alliance of `members` members under `dir`: one home per
/// member (config, fresh keys, the shared genesis) and `dir/network.json`.
/// Member `i` listens for peers on `base_port + 2i` and serves its API on
/// `base_port + 2i + 1`, all on 127.0.0.1.
pub fn make_testnet(
    dir: &Path,
    members: usize,
    base_port: u16,
    chain_id: &str,
) -> Result<NetworkFile, ConfigError> {
    if base_port as usize + 2 * members > u16::MAX as usize {
        return Err(invalid(
            dir,
            format!("base port {base_port} leaves no room for {members} members"),
        ));
    }
    make_testnet_with(dir, members, chain_id, &|i| {
        let p2p = format!("/ip4/127.0.0.1/tcp/{}", base_port + 2 * i as u16);
        MemberAddresses {
            p2p_listen: p2p.clone(),
            p2p_public: p2p,
            api_listen: format!("127.0.0.1:{}", base_port + 2 * i as u16 + 1),
        }
    })
}

/// Where one member of a generated alliance listens and how the others reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAddresses {
    /// The node's libp2p listen address (its config).
    pub p2p_listen: String,
    /// The address the other members dial (genesis): differs from `p2p_listen` behind a
    /// NAT, a relay, or a fault-injecting proxy.
    pub p2p_public: String,
    /// The API's `host:port`.
    pub api_listen: String,
}

/// [`make_testnet`] with the addresses of member `i` given by `layout(i)`.
pub fn make_testnet_with(
    dir: &Path,
    members: usize,
    chain_id: &str,
    layout: &dyn Fn(usize) -> MemberAddresses,
) -> Result<NetworkFile, ConfigError> {
    use caihong_chaincode::genesis::GenesisMember;
    use caihong_chaincode::sandbox::CITIES;
    if members == 0 || members > 64 {
        return Err(invalid(
            dir,
            format!("members must be 1 to 64, got {members}"),
        ));
    }
    let network_path = dir.join("network.json");
    if network_path.exists() {
        return Err(invalid(
            &network_path,
            "exists already; choose an empty directory",
        ));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut homes = Vec::new();
    let mut genesis_members = Vec::new();
    for i in 0..members {
        let (id, name, region) = match CITIES.get(i) {
            Some((id, name, region)) => (id.to_string(), name.to_string(), region.to_string()),
            None => (
                format!("member{}", i + 1),
                format!("成员单位{}", i + 1),
                "150100".to_string(),
            ),
        };
        let addresses = layout(i);
        let node_key = KeyFile::generate();
        let admin_key = KeyFile::generate();
        let encryption_key = EncryptionKeyFile::generate();
        genesis_members.push(GenesisMember {
            id: id.clone(),
            name,
            region_code: region,
            node_key: PublicKey::from(&node_key.verifying_key()),
            admin_keys: vec![PublicKey::from(&admin_key.verifying_key())],
            p2p_address: addresses.p2p_public.clone(),
            encryption_key: Some(caihong_chaincode::experts::seal::encryption_public(
                &encryption_key,
            )),
        });
        homes.push((id, addresses, node_key, admin_key, encryption_key));
    }
    let genesis = Genesis {
        chain_id: chain_id.to_string(),
        genesis_time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        members: genesis_members,
        params: Default::default(),
    };
    let mut file = NetworkFile {
        chain_id: chain_id.to_string(),
        members: Vec::new(),
    };
    for (id, addresses, node_key, admin_key, encryption_key) in homes {
        let home = dir.join(&id);
        EncryptionKeyFile::write_new(&home, &encryption_key)?;
        init_home(
            &home,
            &id,
            &genesis,
            &addresses.p2p_listen,
            &addresses.api_listen,
            Some(node_key),
            Some(admin_key),
        )?;
        file.members.push(NetworkMember {
            name: id,
            home,
            p2p: addresses.p2p_public,
            api: format!("http://{}", addresses.api_listen),
        });
    }
    let text = serde_json::to_string_pretty(&file).expect("serializable");
    std::fs::write(&network_path, text).map_err(io(&network_path))?;
    Ok(file)
}

/// Writes one member's home for an existing alliance (`genesis`): a joining
/// city, or a member on its own host. Keys are generated unless given.
pub fn init_home(
    home: &Path,
    member: &str,
    genesis: &Genesis,
    p2p_listen: &str,
    api_listen: &str,
    node_key: Option<SigningKey>,
    admin_key: Option<SigningKey>,
) -> Result<PublicKey, ConfigError> {
    if Home::config_path(home).exists() {
        return Err(invalid(
            &Home::config_path(home),
            "exists already; this home is initialized",
        ));
    }
    std::fs::create_dir_all(home).map_err(io(home))?;
    if !Home::encryption_key_path(home).exists() {
        // A joining member registers its public half by governance (set-encryption-key).
        EncryptionKeyFile::write(
            &Home::encryption_key_path(home),
            &EncryptionKeyFile::generate(),
        )?;
    }
    let node_key = node_key.unwrap_or_else(KeyFile::generate);
    KeyFile::write(&Home::node_key_path(home), &node_key)?;
    KeyFile::write(
        &Home::admin_key_path(home),
        &admin_key.unwrap_or_else(KeyFile::generate),
    )?;
    write_genesis(&Home::genesis_path(home), genesis)?;
    write_config(
        &Home::config_path(home),
        &NodeConfig {
            member: member.to_string(),
            p2p: P2pConfig {
                listen: p2p_listen.to_string(),
                extra_peers: Vec::new(),
            },
            api: ApiConfig {
                listen: api_listen.to_string(),
                max_body_bytes: default_max_body(),
                loopback_full_access: true,
                metrics: default_metrics(),
                limits: ScopeLimits::default(),
                tls_cert: None,
                tls_key: None,
            },
            consensus: ConsensusConfig::default(),
            mempool: MempoolConfig::default(),
            log: LogConfig::default(),
            storage: StorageConfig::default(),
        },
    )?;
    Ok(PublicKey::from(&node_key.verifying_key()))
}

#[cfg(test)]
mod testnet_tests {
    use super::*;

    #[test]
    fn testnet_homes_load_and_share_one_genesis() {
        let dir = std::env::temp_dir().join(format!("caihong-testnet-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let net = make_testnet(&dir, 4, 27000, "caihong-test").unwrap();
        assert_eq!(net.members.len(), 4);
        assert_eq!(net.members[1].api, "http://127.0.0.1:27003");
        let homes: Vec<Home> = net
            .members
            .iter()
            .map(|m| Home::load(&m.home).unwrap())
            .collect();
        assert!(homes.iter().all(|h| h.genesis == homes[0].genesis));
        assert_eq!(homes[2].config.member, "ordos");
        let again = make_testnet(&dir, 4, 27000, "caihong-test")
            .unwrap_err()
            .to_string();
        assert!(again.contains("exists already"), "{again}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A block must fit one gossip message: a config that allows bigger blocks is refused at
    /// load, naming the setting and the bound, instead of stalling the chain later.
    #[test]
    fn blocks_larger_than_a_gossip_message_are_refused() {
        let dir = std::env::temp_dir().join(format!("caihong-blockcap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let net = make_testnet(&dir, 1, 27100, "caihong-test").unwrap();
        let home = &net.members[0].home;
        let mut config = Home::load(home).unwrap().config;
        config.consensus.max_block_bytes = MAX_BLOCK_BYTES_LIMIT;
        write_config(&Home::config_path(home), &config).unwrap();
        Home::load(home).expect("the largest allowed block size loads");
        config.consensus.max_block_bytes = MAX_BLOCK_BYTES_LIMIT + 1;
        write_config(&Home::config_path(home), &config).unwrap();
        let e = Home::load(home).unwrap_err().to_string();
        assert!(
            e.contains("consensus.max_block_bytes") && e.contains("gossip"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// After governance rotates a member's node key, its home keeps the genesis file (with the
    /// old key) and gets the new key file: that home must still load; the runtime checks the
    /// key against the chain's state instead.
    #[test]
    fn a_home_with_a_rotated_node_key_loads() {
        let dir = std::env::temp_dir().join(format!("caihong-rotated-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let net = make_testnet(&dir, 1, 27200, "caihong-test").unwrap();
        let home = &net.members[0].home;
        let genesis_key = Home::load(home).unwrap().genesis.members[0].node_key;
        KeyFile::write(&Home::node_key_path(home), &KeyFile::generate()).unwrap();
        let loaded = Home::load(home).expect("a rotated node key loads");
        assert_ne!(
            PublicKey::from(&loaded.node_key.verifying_key()),
            genesis_key
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
