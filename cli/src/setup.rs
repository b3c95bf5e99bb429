//! Setting up members: `caihong keygen`, `caihong init`, `caihong testnet`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use caihong_node::config::{self, KeyFile};
use clap::Args;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Write the key here (JSON with public and secret hex; mode 0600).
    #[arg(long)]
    pub out: PathBuf,
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
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    if args.out.exists() {
        anyhow::bail!(
            "{} exists already; not overwriting a key",
            args.out.display()
        );
    }
    let key = KeyFile::generate();
    KeyFile::write(&args.out, &key)?;
    println!("{}", hex::encode(key.verifying_key().to_bytes()));
    Ok(ExitCode::SUCCESS)
}

pub fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let genesis = config::read_genesis(&args.genesis)?;
    let node_key = config::init_home(
        &args.home,
        &args.member,
        &genesis,
        &args.p2p_listen,
        &args.api_listen,
        None,
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

pub fn testnet(args: TestnetArgs) -> anyhow::Result<ExitCode> {
    let net = config::make_testnet(&args.out, args.members, args.base_port, &args.chain_id)?;
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
    Ok(ExitCode::SUCCESS)
}
