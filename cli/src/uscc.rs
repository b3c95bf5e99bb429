//! `caihong uscc check`: validate unified social credit codes offline.

use std::process::ExitCode;

use caihong_chaincode::Uscc;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum UsccCommand {
    /// Check codes against both check characters (organization code and USCC).
    /// Exit 0 when every code is valid, 1 otherwise.
    Check {
        /// One or more 18-character codes.
        #[arg(required = true)]
        codes: Vec<String>,
        /// Print one JSON object per code.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: UsccCommand) -> anyhow::Result<ExitCode> {
    let UsccCommand::Check { codes, json } = cmd;
    let mut all_valid = true;
    for code in &codes {
        let result = Uscc::parse(code);
        all_valid &= result.is_ok();
        if json {
            let line = match &result {
                Ok(u) => {
                    serde_json::json!({"code": code, "valid": true, "normalized": u.as_str(), "region_code": u.region_code()})
                }
                Err(e) => {
                    serde_json::json!({"code": code, "valid": false, "reason": e.to_string()})
                }
            };
            println!("{line}");
        } else {
            match result {
                Ok(u) => println!("{code}: valid (region {})", u.region_code()),
                Err(e) => println!("{code}: invalid: {e}"),
            }
        }
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
