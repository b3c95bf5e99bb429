//! The push sink (`--post URL --state FILE`): each verified credit record POSTed as JSON to
//! an endpoint (a provincial platform), one at a time in chain order, with the header
//! `Idempotency-Key: CHAIN_ID/credit/RECORD_ID`. The state file is replaced after every
//! accepted record, so a rerun starts at the first record the endpoint has not accepted; a
//! record accepted just before a kill may be POSTed again with the same key, which the
//! endpoint uses to keep it once.
//!
//! A 2xx answer is acceptance. Network errors, 408, 429 and 5xx are retried with exponential
//! backoff (1 s doubling to 60 s, or the endpoint's Retry-After), for `--retry-for` or, when
//! following, until accepted: a receiver down for an hour gets everything in order when it is
//! back. Any other answer stops the run: the endpoint refuses the record, which needs a
//! person, and skipping it would break the order.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::{Batch, Saved, Sink, credit_json, write_atomically};

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct PushSink {
    url: String,
    state: PathBuf,
    headers: Vec<(String, String)>,
    /// How long to retry one record; `None`: until it is accepted.
    retry_for: Option<Duration>,
    agent: ureq::Agent,
}

/// The state file.
#[derive(Serialize, Deserialize)]
struct PushState {
    /// The endpoint: a state file belongs to one.
    url: String,
    #[serde(flatten)]
    saved: Saved,
}

impl PushSink {
    pub fn open(
        url: &str,
        state: &Path,
        headers: &[String],
        retry_for: Option<Duration>,
    ) -> anyhow::Result<PushSink> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--post {url}: give an http:// or https:// URL");
        }
        let headers = headers
            .iter()
            .map(|h| match h.split_once(':') {
                Some((name, value)) if !name.trim().is_empty() => {
                    Ok((name.trim().to_string(), value.trim().to_string()))
                }
                _ => bail!("--post-header {h:?}: write it as `Name: value`"),
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(PushSink {
            url: url.to_string(),
            state: state.to_path_buf(),
            headers,
            retry_for,
            // The endpoint is not a node: web roots, and never the node's token.
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
        })
    }

    fn save(&self, saved: Saved) -> anyhow::Result<()> {
        let state = PushState {
            url: self.url.clone(),
            saved,
        };
        write_atomically(
            &self.state,
            serde_json::to_string_pretty(&state)
                .expect("json")
                .as_bytes(),
        )
    }

    /// POSTs one record until the endpoint accepts it or the retry time runs out.
    fn post(&self, key: &str, body: &serde_json::Value) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut backoff = Duration::from_secs(1);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut request = self
                .agent
                .post(&self.url)
                .set("Idempotency-Key", key)
                .set("Content-Type", "application/json");
            for (name, value) in &self.headers {
                request = request.set(name, value);
            }
            let problem = match request.send_string(&body.to_string()) {
                Ok(_) => return Ok(()),
                Err(ureq::Error::Status(status, response))
                    if status == 408 || status == 429 || status >= 500 =>
                {
                    if let Some(after) = response
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                    {
                        backoff = Duration::from_secs(after).min(MAX_BACKOFF);
                    }
                    format!("HTTP {status}")
                }
                Err(ureq::Error::Status(status, response)) => {
                    let text = response.into_string().unwrap_or_default();
                    bail!(
                        "{} refused record {key} with HTTP {status}: {}; fix the endpoint or \
                         the record's delivery, then rerun (it resumes at this record)",
                        self.url,
                        text.trim()
                    );
                }
                Err(e) => e.to_string(),
            };
            if let Some(limit) = self.retry_for
                && started.elapsed() + backoff > limit
            {
                bail!(
                    "{} did not accept record {key} in {} attempts over {:.0} s (last: \
                     {problem}); rerun to go on from this record",
                    self.url,
                    attempts,
                    started.elapsed().as_secs_f64()
                );
            }
            eprintln!(
                "{}: record {key}: {problem}; retrying in {} s",
                self.url,
                backoff.as_secs()
            );
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

impl Sink for PushSink {
    fn saved(&mut self) -> anyhow::Result<Option<Saved>> {
        let bytes = match std::fs::read(&self.state) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.state.display())),
        };
        let state: PushState = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a push state file", self.state.display()))?;
        if state.url != self.url {
            bail!(
                "{} keeps the delivery to {}, not {}; give each endpoint its own --state",
                self.state.display(),
                state.url,
                self.url
            );
        }
        Ok(Some(state.saved))
    }

    fn deliver(&mut self, batch: &Batch) -> anyhow::Result<(u64, u64)> {
        let filter = Some(batch.filter.to_string());
        for c in batch.credits {
            let key = format!("{}/credit/{}", batch.after.chain_id, c.record.id);
            self.post(&key, &credit_json(c, &batch.after.chain_id))?;
            // Still at `before`: the range's later records are not delivered yet.
            self.save(Saved {
                trusted: Some(batch.before.clone()),
                last_credit: Some(c.record.id),
                filter: filter.clone(),
            })?;
        }
        self.save(Saved {
            trusted: Some(batch.after.clone()),
            last_credit: batch.last_credit,
            filter,
        })?;
        Ok((batch.credits.len() as u64, 0))
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}
