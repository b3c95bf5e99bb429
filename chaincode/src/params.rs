//! Chain parameters (链上参数): set in genesis, changed only by governance.

use serde::{Deserialize, Serialize};

/// Weights of the credit score (信用分). A record contributes its weight while
/// active; the score is clamped to `[min, max]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreParams {
    pub base: i64,
    pub violation_general: i64,
    pub violation_serious: i64,
    pub blacklist: i64,
    pub commendation: i64,
    pub performance: i64,
    pub min: i64,
    pub max: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainParams {
    /// Blocks a proposal stays open for votes.
    pub proposal_ttl_blocks: u64,
    /// Blocks between a proposal passing and its change taking effect (≥ 1).
    pub activation_delay_blocks: u64,
    /// Days a general record must have run before credit repair (信用修复).
    pub repair_min_days_general: u64,
    /// Days a serious record must have run before credit repair.
    pub repair_min_days_serious: u64,
    /// Days during which an expert who served a tenderee is recused for it again.
    pub expert_tenderee_cooldown_days: u64,
    /// Blocks after an extraction's anchor within which the requester must seal the draw
    /// (publish the encrypted seat notices); after that the extraction fails as abandoned.
    pub extraction_seal_blocks: u64,
    /// Days after the evaluation window ends by which the requester must reveal its secret
    /// (after `publish result`, or at the latest then); after that the extraction is marked
    /// "reveal missed" for every member to see.
    pub extraction_reveal_days: u64,
    /// Share of current members (in basis points) that must recognize a CA
    /// issuer for it to be alliance-recognized; 10000 = every member.
    pub ca_recognition_threshold_bp: u64,
    /// Smallest evaluation committee (评标委员会): at least 5, odd.
    pub min_committee_size: u64,
    pub score: ScoreParams,
    /// Whether credit repair (信用修复) may end a record's publication while its penalty's term
    /// (处罚有效期) still runs: 0 (the default) refuses it, following the national rule that
    /// repair comes once the penalty's obligations are fulfilled; 1 allows it. Repair never
    /// shortens the term itself either way.
    #[serde(default)]
    pub repair_during_penalty_term: u64,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            proposal_ttl_blocks: 10_000,
            activation_delay_blocks: 2,
            repair_min_days_general: 90,
            repair_min_days_serious: 365,
            expert_tenderee_cooldown_days: 180,
            extraction_seal_blocks: 600,
            extraction_reveal_days: 30,
            ca_recognition_threshold_bp: 10_000,
            min_committee_size: 5,
            score: ScoreParams {
                base: 100,
                violation_general: -5,
                violation_serious: -20,
                blacklist: -60,
                commendation: 5,
                performance: 2,
                min: 0,
                max: 120,
            },
            repair_during_penalty_term: 0,
        }
    }
}

/// Names accepted by [`ChainParams::set`], for help texts.
pub const PARAMETER_NAMES: &[&str] = &[
    "proposal_ttl_blocks",
    "activation_delay_blocks",
    "repair_min_days_general",
    "repair_min_days_serious",
    "expert_tenderee_cooldown_days",
    "extraction_seal_blocks",
    "extraction_reveal_days",
    "ca_recognition_threshold_bp",
    "min_committee_size",
    "repair_during_penalty_term",
    "score.base",
    "score.violation_general",
    "score.violation_serious",
    "score.blacklist",
    "score.commendation",
    "score.performance",
    "score.min",
    "score.max",
];

impl ChainParams {
    /// Sets one parameter by name, checking its range; on error nothing changes.
    pub fn set(&mut self, name: &str, value: i64) -> Result<(), String> {
        let mut next = self.clone();
        next.set_unchecked(name, value)?;
        if next.score.min > next.score.max {
            return Err(format!(
                "score.min ({}) must not exceed score.max ({})",
                next.score.min, next.score.max
            ));
        }
        *self = next;
        Ok(())
    }

    fn set_unchecked(&mut self, name: &str, value: i64) -> Result<(), String> {
        let positive = |v: i64| -> Result<u64, String> {
            if v >= 1 {
                Ok(v as u64)
            } else {
                Err(format!("{name} must be at least 1, got {v}"))
            }
        };
        match name {
            "proposal_ttl_blocks" => self.proposal_ttl_blocks = positive(value)?,
            "activation_delay_blocks" => self.activation_delay_blocks = positive(value)?,
            "repair_min_days_general" => self.repair_min_days_general = positive(value)?,
            "repair_min_days_serious" => self.repair_min_days_serious = positive(value)?,
            "expert_tenderee_cooldown_days" => {
                self.expert_tenderee_cooldown_days = positive(value)?
            }
            "extraction_seal_blocks" => self.extraction_seal_blocks = positive(value)?,
            "extraction_reveal_days" => self.extraction_reveal_days = positive(value)?,
            "ca_recognition_threshold_bp" => {
                let v = positive(value)?;
                if v > 10_000 {
                    return Err(format!("{name} is in basis points (1..=10000), got {v}"));
                }
                self.ca_recognition_threshold_bp = v;
            }
            "min_committee_size" => {
                let v = positive(value)?;
                if v < 5 || v % 2 == 0 {
                    return Err(format!("{name} must be odd and at least 5, got {v}"));
                }
                self.min_committee_size = v;
            }
            "repair_during_penalty_term" => {
                if !(0..=1).contains(&value) {
                    return Err(format!("{name} is 0 (refused) or 1 (allowed), got {value}"));
                }
                self.repair_during_penalty_term = value as u64;
            }
            "score.base" => self.score.base = value,
            "score.violation_general" => self.score.violation_general = value,
            "score.violation_serious" => self.score.violation_serious = value,
            "score.blacklist" => self.score.blacklist = value,
            "score.commendation" => self.score.commendation = value,
            "score.performance" => self.score.performance = value,
            "score.min" => self.score.min = value,
            "score.max" => self.score.max = value,
            _ => {
                return Err(format!(
                    "unknown parameter {name:?}; known: {}",
                    PARAMETER_NAMES.join(", ")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_is_settable() {
        for name in PARAMETER_NAMES {
            let mut p = ChainParams::default();
            let v = match *name {
                "min_committee_size" => 7,
                "repair_during_penalty_term" => 1,
                _ => 50,
            };
            p.set(name, v).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn ranges_are_checked() {
        let mut p = ChainParams::default();
        assert!(p.set("min_committee_size", 6).unwrap_err().contains("odd"));
        assert!(
            p.set("proposal_ttl_blocks", 0)
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(p.set("nope", 1).unwrap_err().contains("unknown parameter"));
        assert!(
            p.set("score.min", 1000)
                .unwrap_err()
                .contains("must not exceed")
        );
    }
}
