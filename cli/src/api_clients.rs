//! `caihong api-client add|list|revoke --home H`: the API clients of one member's node (who
//! may read or submit from outside its loopback, with which scopes). They live in the home,
//! not on chain; the running node picks up changes within a second.

use std::path::PathBuf;
use std::process::ExitCode;

use caihong_node::access::{self, Scope};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum ApiClientCommand {
    /// Add a client; prints its bearer token once (the last line is the token alone).
    Add(AddArgs),
    /// List the clients, revoked ones included.
    List(HomeArgs),
    /// Revoke a client's token; the node refuses it from its next request on.
    Revoke(NameArgs),
}

#[derive(Debug, Args)]
pub struct HomeArgs {
    /// The member's home (its node reads api_clients.json there).
    #[arg(long)]
    pub home: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    #[arg(long)]
    pub home: PathBuf,
    /// The client's name, e.g. xian-credit.
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub client: NameArgs,
    /// public (sync and check credit), member (the member's own staff: also experts,
    /// extractions, governance) or submit (send transactions); repeat for several.
    #[arg(long = "scope", required = true)]
    pub scopes: Vec<String>,
}

pub fn run(cmd: ApiClientCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ApiClientCommand::Add(args) => {
            let scopes = args
                .scopes
                .iter()
                .map(|s| Scope::parse(s).map_err(|e| anyhow::anyhow!("--scope: {e}")))
                .collect::<anyhow::Result<Vec<Scope>>>()?;
            let token = access::add_client(&args.client.home, &args.client.name, &scopes)?;
            eprintln!(
                "client {} added with scope {}; its token follows, shown this once (only its \
                 hash is kept). Give it to the client: caihong --token, or CAIHONG_TOKEN.",
                args.client.name.trim(),
                args.scopes.join(", ")
            );
            println!("{token}");
        }
        ApiClientCommand::List(args) => {
            let clients = access::list_clients(&args.home)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&clients)?);
            } else if clients.is_empty() {
                println!("(no API clients; loopback callers only)");
            } else {
                println!("{:<24} {:<24} {:<20} state", "name", "scopes", "added");
                for c in clients {
                    let scopes: Vec<&str> = c.scopes.iter().map(|s| s.as_str()).collect();
                    let state = match c.revoked_ms {
                        Some(ms) => format!("revoked {}", beijing(ms)),
                        None => "active".to_string(),
                    };
                    println!(
                        "{:<24} {:<24} {:<20} {state}",
                        c.name,
                        scopes.join(","),
                        beijing(c.created_ms)
                    );
                }
            }
        }
        ApiClientCommand::Revoke(args) => {
            access::revoke_client(&args.home, &args.name)?;
            println!("client {} revoked", args.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `YYYY-MM-DD HH:MM` Beijing time of Unix milliseconds.
fn beijing(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64 + 8 * 3_600_000)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}
