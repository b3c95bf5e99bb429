//! Setting up members: `caihong keygen`, `caihong init`, `caihong testnet`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use caihong_chaincode::PublicKey;
use caihong_chaincode::genesis::{Genesis, GenesisMember};
use caihong_chaincode::types::EncryptionKey;
use caihong_node::config::{self, KeyFile};
use clap::Args;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write the key here (JSON with public and secret hex; mode 0600).
    #[arg(long)]
    pub out: PathBuf,
    /// Make the member's X25519 encryption key (sealed extraction notices) instead of an
    /// ed25519 signing key.
    #[arg(long)]
    pub encryption: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The member's home directory to create.
    #[arg(long)]
    pub home: PathBuf,
    /// The member id (成员单位标识), e.g. `lanzhou`.
    #[arg(long)]
    pub member: String,
    /// The alliance's genesis.json (from any member's home).
    #[arg(long)]
    pub genesis: PathBuf,
    /// libp2p listen address.
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/26656")]
    pub p2p_listen: String,
    /// HTTP API listen address (keep it on loopback unless behind a proxy).
    #[arg(long, default_value = "127.0.0.1:26657")]
    pub api_listen: String,
    /// Use this node key file (from `caihong keygen`) instead of generating one: the key
    /// listed for this member in genesis.
    #[arg(long)]
    pub node_key: Option<PathBuf>,
    /// Use this admin key file instead of generating one.
    #[arg(long)]
    pub admin_key: Option<PathBuf>,
    /// Use this encryption key file (`caihong keygen --encryption`) instead of generating one:
    /// the key listed for this member in genesis.
    #[arg(long)]
    pub encryption_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// The alliance's chain id, e.g. `mengning-ggzy`.
    #[arg(long)]
    pub chain_id: String,
    /// A founding member as
    /// `id=hohhot,name=呼和浩特市公共资源交易中心,region=150100,node_key=HEX,admin_key=HEX,p2p=/ip4/10.1.0.11/tcp/26656`;
    /// `admin_key` may repeat. Repeat --member for every city.
    #[arg(long = "member", required = true)]
    pub members: Vec<String>,
    /// Where to write genesis.json (not overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// How many members (成员单位).
    #[arg(long, default_value_t = 4)]
    pub members: usize,
    /// Directory for the homes and network.json.
    #[arg(long)]
    pub out: PathBuf,
    /// First port; member i uses base+2i (p2p) and base+2i+1 (API).
    #[arg(long, default_value_t = 26600)]
    pub base_port: u16,
    #[arg(long, default_value = "caihong-local")]
    pub chain_id: String,
    /// Serve every member's API over HTTPS, with certificates from a local CA written to
    /// DIR/ca.pem (what `--ca-cert` and `CAIHONG_CA_CERT` take).
    #[arg(long)]
    pub tls: bool,
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    if args.out.exists() {
        anyhow::bail!(
            "{} exists already; not overwriting a key",
            args.out.display()
        );
    }
    if args.encryption {
        let key = config::EncryptionKeyFile::generate();
        config::EncryptionKeyFile::write(&args.out, &key)?;
        println!(
            "{}",
            caihong_chaincode::experts::seal::encryption_public(&key).to_hex()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let key = KeyFile::generate();
    KeyFile::write(&args.out, &key)?;
    println!("{}", hex::encode(key.verifying_key().to_bytes()));
    Ok(ExitCode::SUCCESS)
}

pub fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let genesis = config::read_genesis(&args.genesis)?;
    if let Some(path) = &args.encryption_key {
        let key = config::EncryptionKeyFile::read(path)?;
        if config::Home::config_path(&args.home).exists() {
            bail!("{} is initialized already", args.home.display());
        }
        config::EncryptionKeyFile::write_new(&args.home, &key)?;
    }
    let node_key = config::init_home(
        &args.home,
        &args.member,
        &genesis,
        &args.p2p_listen,
        &args.api_listen,
        args.node_key.as_deref().map(KeyFile::read).transpose()?,
        args.admin_key.as_deref().map(KeyFile::read).transpose()?,
    )
    .with_context(|| format!("initializing {}", args.home.display()))?;
    let in_genesis = genesis.members.iter().any(|m| m.id == args.member);
    println!(
        "initialized {} for member {}",
        args.home.display(),
        args.member
    );
    println!("node key: {node_key}");
    if !in_genesis {
        println!(
            "{} is not in genesis: an admin of the alliance proposes adding it with this node key and \
             the admin key in {}, and the node joins once the proposal takes effect",
            args.member,
            config::Home::admin_key_path(&args.home).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses one `--member key=value,…` of `caihong genesis`.
fn genesis_member(text: &str) -> anyhow::Result<GenesisMember> {
    let (mut id, mut name, mut region, mut node_key, mut p2p) = (None, None, None, None, None);
    let mut encryption_key = None;
    let mut admin_keys = Vec::new();
    for part in text.split(',') {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("--member {text:?}: {part:?} is not key=value"))?;
        let v = v.trim().to_string();
        let key = |v: &str| {
            PublicKey::from_hex(v).map_err(|e| anyhow::anyhow!("--member {text:?}: {k}: {e}"))
        };
        match k.trim() {
            "id" => id = Some(v),
            "name" => name = Some(v),
            "region" => region = Some(v),
            "node_key" => node_key = Some(key(&v)?),
            "admin_key" => admin_keys.push(key(&v)?),
            "p2p" => p2p = Some(v),
            "encryption_key" => {
                encryption_key = Some(
                    EncryptionKey::from_hex(&v)
                        .map_err(|e| anyhow::anyhow!("--member {text:?}: {k}: {e}"))?,
                )
            }
            other => bail!(
                "--member {text:?}: unknown field {other:?} (use id, name, region, node_key, \
                 admin_key, p2p, encryption_key)"
            ),
        }
    }
    let need = |v: Option<String>, what: &str| {
        v.with_context(|| format!("--member {text:?} lacks {what}="))
    };
    Ok(GenesisMember {
        id: need(id, "id")?,
        name: need(name, "name")?,
        region_code: need(region, "region")?,
        node_key: node_key.with_context(|| format!("--member {text:?} lacks node_key="))?,
        admin_keys: if admin_keys.is_empty() {
            bail!("--member {text:?} lacks admin_key=")
        } else {
            admin_keys
        },
        p2p_address: need(p2p, "p2p")?,
        encryption_key,
    })
}

pub fn genesis(args: GenesisArgs) -> anyhow::Result<ExitCode> {
    if args.out.exists() {
        bail!(
            "{} exists already; not overwriting a genesis",
            args.out.display()
        );
    }
    let members = args
        .members
        .iter()
        .map(|m| genesis_member(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let genesis = Genesis {
        chain_id: args.chain_id,
        genesis_time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        members,
        params: Default::default(),
    };
    // The same checks every node runs when it starts from this file.
    genesis
        .initial_state()
        .map_err(|e| anyhow::anyhow!("genesis is not valid: {}", e.message))?;
    config::write_genesis(&args.out, &genesis)?;
    println!(
        "wrote {} with {} members; its hash {} identifies the alliance",
        args.out.display(),
        genesis.members.len(),
        config::genesis_hash(&genesis)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn testnet(args: TestnetArgs) -> anyhow::Result<ExitCode> {
    let mut net = config::make_testnet(&args.out, args.members, args.base_port, &args.chain_id)?;
    let ca = if args.tls {
        Some(serve_https(&args.out, &mut net)?)
    } else {
        None
    };
    println!(
        "wrote {} members under {}",
        net.members.len(),
        args.out.display()
    );
    for m in &net.members {
        println!(
            "  {:<10} home {}  p2p {}  api {}",
            m.name,
            m.home.display(),
            m.p2p,
            m.api
        );
    }
    let env = write_shell_env(&args.out, ca.as_deref())?;
    println!(
        "  `source {}` puts caihong on PATH and sets H to this directory",
        env.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A local CA and an API certificate per member; every member's config and the network file
/// then say https. Returns the CA certificate's path.
fn serve_https(dir: &Path, net: &mut config::NetworkFile) -> anyhow::Result<PathBuf> {
    let homes: Vec<PathBuf> = net.members.iter().map(|m| m.home.clone()).collect();
    let ca = caihong_node::tls::write_local_ca(dir, &homes)?;
    for member in &mut net.members {
        let path = config::Home::config_path(&member.home);
        let mut home = config::Home::load(&member.home)?;
        home.config.api.tls_cert = Some("tls/api.crt".into());
        home.config.api.tls_key = Some("tls/api.key".into());
        config::write_config(&path, &home.config)?;
        member.api = member.api.replacen("http://", "https://", 1);
    }
    let network = dir.join("network.json");
    std::fs::write(&network, serde_json::to_string_pretty(net)?)
        .with_context(|| format!("cannot write {}", network.display()))?;
    Ok(ca)
}

/// `DIR/env.sh`, which the README's walkthrough sources: this `caihong` on PATH, `H`, and
/// with TLS the CA that caihong is to trust.
fn write_shell_env(dir: &Path, ca: Option<&Path>) -> anyhow::Result<PathBuf> {
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let exe = std::env::current_exe().context("cannot tell where caihong is")?;
    let bin = exe.parent().context("caihong has no directory")?;
    let text = format!(
        "# Sourced by the README's walkthrough: this alliance's caihong on PATH, H its directory.\n\
         export PATH={}:\"$PATH\"\nH={}\n",
        quote(bin),
        quote(&dir)
    );
    let text = match ca {
        Some(ca) => format!(
            "{text}export CAIHONG_CA_CERT={}\n",
            quote(&ca.canonicalize()?)
        ),
        None => text,
    };
    let path = dir.join("env.sh");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
