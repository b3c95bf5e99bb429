//! `caihong cert inspect`: show what a certificate says, offline, the way the chain will read
//! it (same parser, same USCC search, same fingerprint).

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use caihong_chaincode::x509::{self, CertError, Certificate, Validity};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Show issuer, subject, serial, validity, algorithms, fingerprint and USCC.
    Inspect {
        /// PEM or DER file.
        file: std::path::PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: CertCommand) -> anyhow::Result<ExitCode> {
    let CertCommand::Inspect { file, json } = cmd;
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let cert = x509::parse_certificate(&bytes).with_context(|| {
        format!(
            "{} is not a certificate caihong can read (expected X.509 in PEM or DER)",
            file.display()
        )
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let report = Report::of(&cert, now);
    if json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::SUCCESS)
}

/// What `inspect` shows, computed once for both output forms.
struct Report<'a> {
    cert: &'a Certificate,
    validity_now: Validity,
    /// For a self-issued certificate, the outcome of checking it against itself.
    self_signature: Option<Result<(), CertError>>,
}

impl<'a> Report<'a> {
    fn of(cert: &'a Certificate, now: i64) -> Self {
        Report {
            cert,
            validity_now: cert.validity_at(now),
            self_signature: cert.is_self_issued().then(|| cert.verify_signed_by(cert)),
        }
    }

    fn self_signature_text(&self) -> Option<String> {
        self.self_signature.as_ref().map(|r| match r {
            Ok(()) => "valid".to_string(),
            Err(e @ CertError::UnsupportedAlgorithm { .. }) => e.to_string(),
            Err(e) => format!("INVALID: {e}"),
        })
    }

    fn json(&self) -> serde_json::Value {
        let c = self.cert;
        serde_json::json!({
            "subject": c.subject().to_string(),
            "issuer": c.issuer().to_string(),
            "serial": c.serial_hex(),
            "not_before": rfc3339(c.not_before()),
            "not_after": rfc3339(c.not_after()),
            "validity_now": validity_word(self.validity_now),
            "version": c.version(),
            "signature_algorithm": c.signature_algorithm().name(),
            "signature_algorithm_oid": c.signature_algorithm().oid(),
            "public_key_algorithm": c.public_key_algorithm().to_string(),
            "is_ca": c.is_ca(),
            "fingerprint_sha256": c.fingerprint_sha256().to_hex(),
            "uscc": c.uscc().map(|u| u.as_str()),
            "uscc_source": c.uscc_source().map(|s| s.short_name()),
            "self_signature": self.self_signature_text(),
        })
    }

    fn text(&self) -> String {
        let c = self.cert;
        let mut lines = vec![
            ("Subject", c.subject().to_string()),
            ("Issuer", c.issuer().to_string()),
            ("Serial", c.serial_hex().to_string()),
            (
                "Validity",
                format!(
                    "{} to {} ({} now)",
                    rfc3339(c.not_before()),
                    rfc3339(c.not_after()),
                    validity_word(self.validity_now).replace('_', " ")
                ),
            ),
            ("Public key", c.public_key_algorithm().to_string()),
            (
                "Signature",
                format!(
                    "{} ({})",
                    c.signature_algorithm().name(),
                    c.signature_algorithm().oid()
                ),
            ),
            ("CA", if c.is_ca() { "yes" } else { "no" }.to_string()),
            ("SHA-256", c.fingerprint_sha256().to_hex()),
            (
                "USCC",
                match (c.uscc(), c.uscc_source()) {
                    (Some(u), Some(s)) => format!("{u} (from {})", s.short_name()),
                    _ => "none found in the subject".to_string(),
                },
            ),
        ];
        if let Some(s) = self.self_signature_text() {
            lines.push(("Self-signed", s));
        }
        lines
            .into_iter()
            .map(|(k, v)| format!("{:<13}{v}\n", format!("{k}:")))
            .collect()
    }
}

fn validity_word(v: Validity) -> &'static str {
    match v {
        Validity::NotYetValid => "not_yet_valid",
        Validity::Valid => "valid",
        Validity::Expired => "expired",
    }
}

/// `2025-01-01T00:00:00Z`; the raw number if chrono cannot represent it.
fn rfc3339(unix_secs: i64) -> String {
    chrono::DateTime::from_timestamp(unix_secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| unix_secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_z() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_600), "2025-01-01T00:00:00Z");
    }
}
