//! Running and asking nodes: `caihong start`, `localnet`, `status`, `query block`, and the
//! untyped GET and POST the query commands print from (typed calls are
//! [`caihong_cli::Client`]'s).

use std::path::PathBuf;
use std::process::{Child, ExitCode};
use std::time::Duration;

use anyhow::Context;
use caihong_node::config::{Home, NetworkFile};
use clap::Args;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The member's home (config.toml, keys, genesis.json, data/).
    #[arg(long)]
    pub home: PathBuf,
    /// Log lines as JSON (overrides config.toml).
    #[arg(long)]
    pub log_json: bool,
    /// With an empty data/ (a new member), start from a state snapshot the members serve,
    /// verified from genesis, instead of replaying every block; ignored when data/ holds the
    /// chain.
    #[arg(long)]
    pub state_sync: bool,
}

#[derive(Debug, Args)]
pub struct LocalnetArgs {
    /// A directory made by `caihong testnet`.
    #[arg(long)]
    pub dir: PathBuf,
}

/// Where to reach a node: `--node URL`, or the API of the member at `--home`.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// Node API URL, e.g. http://127.0.0.1:26601
    #[arg(long, global = true)]
    pub node: Option<String>,
    /// A member home whose own node to ask.
    #[arg(long, global = true)]
    pub home: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for each answer from the node before giving up (exit 2).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
    /// An API client's bearer token (`caihong api-client add` on the node's home), for a
    /// node that is not on this machine's loopback.
    #[arg(long, global = true, env = "CAIHONG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The CA certificate (PEM) that signs the nodes' API certificates, for `https://` nodes
    /// with a CA of the alliance's own (default: the usual web roots).
    #[arg(long, global = true, env = "CAIHONG_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

impl NodeArgs {
    /// `--home`, or `$CAIHONG_HOME`.
    pub fn home_dir(&self) -> Option<PathBuf> {
        self.home
            .clone()
            .or_else(|| std::env::var_os("CAIHONG_HOME").map(PathBuf::from))
    }

    /// The node's URL. Every command that talks to a node asks for it first, so this is also
    /// where `--timeout` takes effect for the process.
    pub fn url(&self) -> anyhow::Result<String> {
        if self.timeout == 0 {
            anyhow::bail!("--timeout must be at least 1 second");
        }
        caihong_cli::api_client::set_timeout(Duration::from_secs(self.timeout));
        caihong_cli::api_client::set_token(self.token.clone());
        if let Some(ca) = &self.ca_cert {
            caihong_cli::api_client::set_ca_cert(ca)?;
        }
        if let Some(url) = &self.node {
            return Ok(url.trim_end_matches('/').to_string());
        }
        match self.home_dir() {
            Some(h) => {
                let home = Home::load(&h)?;
                let scheme = if home.config.api.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                Ok(format!("{scheme}://{}", home.config.api.listen))
            }
            None => anyhow::bail!(
                "say which node to ask: --node URL or --home HOME (or set CAIHONG_HOME)"
            ),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub use caihong_cli::Failure;

/// GETs any route's JSON answer, for commands that print it as it comes.
pub fn http_get(url: &str) -> Result<Value, Failure> {
    caihong_cli::api_client::get_json(url)
}

/// POSTs raw bytes and returns the JSON answer.
pub fn http_post_bytes(url: &str, body: &[u8]) -> Result<Value, Failure> {
    caihong_cli::api_client::post_bytes(url, body)
}

/// Turns a failure into the exit code, printing what went wrong.
pub fn finish(result: Result<(), Failure>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Failure::Rejected { status, body }) => {
            let message = body
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("request failed");
            match body.get("code").and_then(|c| c.as_str()) {
                Some(code) => eprintln!("rejected ({status}, {code}): {message}"),
                None => eprintln!("rejected ({status}): {message}"),
            }
            Ok(ExitCode::from(1))
        }
        Err(Failure::Local(e)) => Err(e),
    }
}

pub fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    init_logging(
        &home.config.log.filter,
        args.log_json || home.config.log.json,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        let options = caihong_node::runtime::RunOptions {
            state_sync: args.state_sync,
        };
        caihong_node::runtime::run(home, options, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    // Colour codes only for a person at a terminal: a redirected node.log stays plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Reads `DIR/network.json` written by `caihong testnet`.
pub fn read_network(dir: &std::path::Path) -> anyhow::Result<NetworkFile> {
    let path = dir.join("network.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: run `caihong testnet --out {}` first",
            path.display(),
            dir.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| path.display().to_string())
}

pub fn localnet(args: LocalnetArgs) -> anyhow::Result<ExitCode> {
    let net = read_network(&args.dir)?;
    let exe = std::env::current_exe()?;
    let mut children: Vec<(String, Child)> = Vec::new();
    for m in &net.members {
        let log = std::fs::File::create(m.home.join("node.log"))?;
        let child = std::process::Command::new(&exe)
            .arg("start")
            .arg("--home")
            .arg(&m.home)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", m.name))?;
        println!(
            "started {:<10} pid {:<7} api {}  log {}",
            m.name,
            child.id(),
            m.api,
            m.home.join("node.log").display()
        );
        children.push((m.name.clone(), child));
    }
    println!(
        "alliance {} running; Ctrl-C stops every member",
        net.chain_id
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
    for (name, child) in &mut children {
        // SIGTERM for a graceful stop, then wait.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
        println!("stopped {name}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(args: NodeArgs) -> anyhow::Result<ExitCode> {
    let url = args.url()?;
    finish((|| {
        let s = http_get(&format!("{url}/v1/status"))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&s).expect("json"));
        } else {
            let field = |k: &str| {
                s.get(k)
                    .map(|v| v.to_string().trim_matches('"').to_string())
                    .unwrap_or_default()
            };
            println!("chain      {}", field("chain_id"));
            println!("member     {}", field("member"));
            println!("height     {}", field("height"));
            println!("latest     {}", field("latest_block_hash"));
            println!(
                "peers      {}",
                s.get("peers")
                    .and_then(|p| p.as_array())
                    .map_or(0, |p| p.len())
            );
            println!("syncing    {}", field("syncing"));
            println!("validator  {}", field("validator"));
            println!("mempool    {}", field("mempool_size"));
        }
        Ok(())
    })())
}

pub fn query_block(args: NodeArgs, height: String) -> anyhow::Result<ExitCode> {
    let url = args.url()?;
    let path = if height == "latest" {
        "latest".to_string()
    } else {
        height
            .parse::<u64>()
            .map_err(|_| anyhow::anyhow!("height {height:?} is not a number or `latest`"))?
            .to_string()
    };
    finish((|| {
        let b = http_get(&format!("{url}/v1/blocks/{path}"))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&b).expect("json"));
        } else {
            for k in [
                "height",
                "hash",
                "time_ms",
                "parent_hash",
                "proposer",
                "state_root",
                "txs_root",
                "receipts_root",
            ] {
                println!(
                    "{k:<14} {}",
                    b.get(k)
                        .map(|v| v.to_string().trim_matches('"').to_string())
                        .unwrap_or_default()
                );
            }
            let txs = b
                .get("txs")
                .and_then(|t| t.as_array())
                .cloned()
                .unwrap_or_default();
            println!("{:<14} {}", "txs", txs.len());
            for t in txs {
                println!("  {}", t.as_str().unwrap_or_default());
            }
        }
        Ok(())
    })())
}
