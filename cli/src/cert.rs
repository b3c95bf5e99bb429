//! `caihong cert inspect`: show what a certificate says. (In progress.)

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Show issuer, subject, serial, validity, algorithms, fingerprint and USCC.
    Inspect {
        /// PEM or DER file.
        file: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: CertCommand) -> anyhow::Result<ExitCode> {
    let CertCommand::Inspect { file, .. } = cmd;
    anyhow::bail!("cert inspect is not built yet ({})", file.display())
}
