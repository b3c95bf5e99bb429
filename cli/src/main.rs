//! `caihong`: the operator's tool. Offline commands (USCC checks, certificate
//! inspection) need no node; node commands come with the node crate.
//!
//! Exit codes: 0 success, 1 rejected (an invalid code, a chain rejection),
//! 2 usage or local error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cert;
mod uscc;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Uscc(cmd) => uscc::run(cmd),
        Command::Cert(cmd) => cert::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
