//! `caihong`: the operator's tool. Offline commands (USCC checks, certificate
//! inspection) need no node; setup commands write member homes.
//!
//! Exit codes: 0 success, 1 rejected (an invalid code, a chain rejection),
//! 2 usage or local error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc: see the workspace Cargo.toml (measured in docs/PERFORMANCE-HISTORY.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod api_clients;
mod backup;
mod bench;
mod cert;
mod client;
mod demo;
mod import;
mod node;
mod query;
mod sealing;
mod session;
mod setup;
mod sync;
mod tx;
mod uscc;
mod walkthrough;

#[derive(Debug, Parser)]
#[command(
    name = "caihong",
    version,
    about = "Caihong (彩虹) alliance chain for public resource trading centers (公共资源交易中心)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Unified social credit codes (统一社会信用代码).
    #[command(subcommand)]
    Uscc(uscc::UsccCommand),
    /// X.509 certificates (数字证书) of CAs and bidders.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Generate an ed25519 key file (node or operator key).
    Keygen(setup::KeygenArgs),
    /// Create one member's home for an existing alliance genesis.
    Init(setup::InitArgs),
    /// Write an alliance's genesis.json from its founding members' public keys.
    Genesis(setup::GenesisArgs),
    /// Write a local alliance: one home per member and network.json.
    Testnet(setup::TestnetArgs),
    /// Run a member node until Ctrl-C or SIGTERM.
    Start(node::StartArgs),
    /// Start every member of a testnet directory; Ctrl-C stops them all.
    Localnet(node::LocalnetArgs),
    /// Measure a fresh local alliance under load (committed tx/s, latency, CPU, memory).
    Bench(bench::BenchArgs),
    /// Load demo subjects and credit records into a running local alliance.
    Demo(demo::DemoArgs),
    /// A node's height, peers and sync state.
    Status(node::NodeArgs),
    /// Back up a running member's data at one height (RocksDB checkpoint, on its machine).
    Backup(backup::BackupArgs),
    /// Restore a backup into a stopped member's home; it then catches up from its peers.
    Restore(backup::RestoreArgs),
    /// Sign and submit a transaction (交易) for any chaincode action.
    Tx(tx::TxCommand),
    /// Read committed chain data and every chaincode query.
    Query(query::QueryCommand),
    /// Bulk import from CSV files centers already keep.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Pull data for another region, verified from genesis.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// API clients of a member's node (API 访问): tokens with scopes, kept in its home.
    #[command(subcommand)]
    ApiClient(api_clients::ApiClientCommand),
    /// Print a shell completion script, e.g. `caihong completions bash >
    /// /etc/bash_completion.d/caihong`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Prints the completion script. Written from a buffer: clap_complete panics on a write
/// error, and a reader that stops early (`| head`) is not an error.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "caihong", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Uscc(cmd) => uscc::run(cmd),
        Command::Cert(cmd) => cert::run(cmd),
        Command::Keygen(args) => setup::keygen(args),
        Command::Init(args) => setup::init(args),
        Command::Genesis(args) => setup::genesis(args),
        Command::Testnet(args) => setup::testnet(args),
        Command::Start(args) => node::start(args),
        Command::Localnet(args) => node::localnet(args),
        Command::Demo(args) => demo::demo(args),
        Command::Bench(args) => bench::bench(args),
        Command::Status(args) => node::status(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Tx(cmd) if matches!(cmd.domain, tx::Domain::Extraction(_)) => sealing::run(cmd),
        Command::Tx(cmd) => tx::run(cmd),
        Command::Query(cmd) => query::run(cmd),
        Command::Sync(cmd) => sync::run(cmd),
        Command::Import(cmd) => import::run(cmd),
        Command::ApiClient(cmd) => api_clients::run(cmd),
        Command::Completions { shell } => completions(shell),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
