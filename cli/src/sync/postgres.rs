//! The PostgreSQL sink (`--to postgresql://…`): verified credit records into
//! `credit_records`, subject versions into `subject_versions` and `subjects`, and where the
//! sync stopped into `caihong_sync_state`, each verified range in one database transaction.
//! A kill at any moment leaves the tables and the state of the last committed range: a rerun
//! neither loses nor writes twice. docs/SQL.md describes the tables.
//!
//! The schema is created and upgraded here, one numbered migration at a time, recorded in
//! `caihong_schema_migrations`. One sync writes a database at a time (a session advisory
//! lock), so two runs cannot interleave their ranges.

use anyhow::{Context, bail};
use caihong_chaincode::Hash;
use caihong_node::light::{TrustedState, VerifiedCredit, VerifiedSubject};
use postgres::{Client, NoTls, Transaction};

use super::{Batch, Saved, Sink};

/// The schema, in order; each runs once, in its own transaction.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "
CREATE TABLE caihong_sync_state (
    chain_id      text PRIMARY KEY,
    genesis_hash  text NOT NULL,
    height        bigint NOT NULL,
    block_hash    text NOT NULL,
    validators    jsonb NOT NULL,
    last_credit   bigint,
    filter        text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE credit_records (
    record_id            bigint PRIMARY KEY,
    kind                 text NOT NULL,
    subject_uscc         text NOT NULL,
    subject_name         text NOT NULL,
    region_code          text NOT NULL,
    document_no          text NOT NULL,
    violation_type       text NOT NULL,
    legal_basis          text NOT NULL,
    penalty_categories   jsonb NOT NULL,
    content              text NOT NULL,
    fine_fen             bigint NOT NULL,
    decision_date        date NOT NULL,
    penalty_end_date     date,
    publication_end_date date NOT NULL,
    authority_name       text NOT NULL,
    authority_uscc       text,
    severity             text NOT NULL,
    rating               text,
    refers_to            bigint,
    reason               text,
    recorded_by          text NOT NULL,
    height               bigint NOT NULL,
    block_hash           text NOT NULL,
    tx_hash              text NOT NULL,
    tx_index             integer NOT NULL,
    record               jsonb NOT NULL
);
CREATE INDEX credit_records_uscc_date ON credit_records (subject_uscc, decision_date);
CREATE INDEX credit_records_region_date ON credit_records (region_code, decision_date);
CREATE INDEX credit_records_decision_date ON credit_records (decision_date);
CREATE INDEX credit_records_publication_end ON credit_records (publication_end_date);
CREATE INDEX credit_records_refers_to ON credit_records (refers_to) WHERE refers_to IS NOT NULL;
CREATE INDEX credit_records_height ON credit_records (height);
CREATE TABLE subject_versions (
    uscc                 text NOT NULL,
    version              integer NOT NULL,
    name                 text NOT NULL,
    region_code          text NOT NULL,
    legal_representative text NOT NULL,
    status               text NOT NULL,
    home                 text NOT NULL,
    height               bigint NOT NULL,
    block_hash           text NOT NULL,
    tx_hash              text NOT NULL,
    tx_index             integer NOT NULL,
    subject              jsonb NOT NULL,
    PRIMARY KEY (uscc, version)
);
CREATE TABLE subjects (
    uscc                 text PRIMARY KEY,
    version              integer NOT NULL,
    name                 text NOT NULL,
    region_code          text NOT NULL,
    legal_representative text NOT NULL,
    status               text NOT NULL,
    home                 text NOT NULL,
    height               bigint NOT NULL,
    subject              jsonb NOT NULL
);
CREATE INDEX subjects_name ON subjects (name text_pattern_ops);
CREATE INDEX subjects_region ON subjects (region_code);
",
)];

/// The advisory lock key a sync holds on its database (any fixed number: "caihong" in ASCII).
const LOCK_KEY: i64 = 0x63_6169_686f_6e67;

pub struct PgSink {
    client: Client,
    /// The URL without its password, for messages.
    shown: String,
}

impl std::fmt::Debug for PgSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSink")
            .field("database", &self.shown)
            .finish()
    }
}

/// `postgresql://user:secret@host/db` → `postgresql://user@host/db`.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

impl PgSink {
    pub fn connect(url: &str) -> anyhow::Result<PgSink> {
        let shown = without_password(url);
        let mut client = Client::connect(url, NoTls).with_context(|| {
            format!(
                "cannot connect to {shown}; check the URL (postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE) and that the server accepts connections without TLS"
            )
        })?;
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])?
            .get(0);
        if !locked {
            bail!(
                "another caihong sync is writing to {shown}; one sync per database (stop the \
                 other, or use another database)"
            );
        }
        migrate(&mut client).with_context(|| format!("creating the schema in {shown}"))?;
        Ok(PgSink { client, shown })
    }
}

/// Applies the migrations the database has not had yet.
fn migrate(client: &mut Client) -> anyhow::Result<()> {
    client.batch_execute(
        "CREATE TABLE IF NOT EXISTS caihong_schema_migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let applied: Option<i32> = client
        .query_one("SELECT max(version) FROM caihong_schema_migrations", &[])?
        .get(0);
    let applied = applied.unwrap_or(0);
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if applied > newest {
        bail!(
            "the database's schema is version {applied}, newer than this caihong knows \
             ({newest}); use the caihong that wrote it or a newer one"
        );
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        let mut tx = client.transaction()?;
        tx.batch_execute(sql)
            .with_context(|| format!("migration {version}"))?;
        tx.execute(
            "INSERT INTO caihong_schema_migrations (version) VALUES ($1)",
            &[version],
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn hex(hash: &Hash) -> String {
    hash.to_hex()
}

fn insert_credit(tx: &mut Transaction, c: &VerifiedCredit) -> anyhow::Result<()> {
    let r = &c.record;
    let json = serde_json::to_value(r)?;
    let text = |field: &str| json[field].as_str().map(str::to_string);
    tx.execute(
        "INSERT INTO credit_records (record_id, kind, subject_uscc, subject_name, region_code,
             document_no, violation_type, legal_basis, penalty_categories, content, fine_fen,
             decision_date, penalty_end_date, publication_end_date, authority_name,
             authority_uscc, severity, rating, refers_to, reason, recorded_by, height,
             block_hash, tx_hash, tx_index, record)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
             $18, $19, $20, $21, $22, $23, $24, $25, $26)",
        &[
            &(r.id as i64),
            &r.kind.as_str(),
            &r.subject_uscc.to_string(),
            &r.subject_name,
            &r.subject_uscc.region_code(),
            &r.document_no,
            &r.violation_type,
            &r.legal_basis,
            &json["penalty_categories"],
            &r.content,
            &(r.fine_fen as i64),
            &r.decision_date,
            &r.penalty_end_date,
            &r.publication_end_date,
            &r.authority_name,
            &r.authority_uscc.as_ref().map(|u| u.to_string()),
            &text("severity").unwrap_or_default(),
            &r.rating,
            &r.refers_to.map(|id| id as i64),
            &r.reason,
            &r.recorded_by.as_str(),
            &(c.height as i64),
            &hex(&c.block_hash),
            &hex(&c.tx_hash),
            &(c.index as i32),
            &json,
        ],
    )
    .with_context(|| format!("inserting credit record {}", r.id))?;
    Ok(())
}

fn insert_subject(tx: &mut Transaction, v: &VerifiedSubject) -> anyhow::Result<()> {
    let s = &v.subject;
    let json = serde_json::to_value(s)?;
    let status = json["status"].as_str().unwrap_or_default().to_string();
    let uscc = s.uscc.to_string();
    let version = s.version as i32;
    tx.execute(
        "INSERT INTO subject_versions (uscc, version, name, region_code, legal_representative,
             status, home, height, block_hash, tx_hash, tx_index, subject)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &uscc,
            &version,
            &s.name,
            &s.region_code,
            &s.legal_representative,
            &status,
            &s.home.as_str(),
            &(v.height as i64),
            &hex(&v.block_hash),
            &hex(&v.tx_hash),
            &(v.index as i32),
            &json,
        ],
    )
    .with_context(|| format!("inserting subject {uscc} version {version}"))?;
    // The current version: the row just written, copied.
    tx.execute(
        "INSERT INTO subjects (uscc, version, name, region_code, legal_representative, status,
             home, height, subject)
         SELECT uscc, version, name, region_code, legal_representative, status, home, height,
             subject
         FROM subject_versions WHERE uscc = $1 AND version = $2
         ON CONFLICT (uscc) DO UPDATE SET version = excluded.version, name = excluded.name,
             region_code = excluded.region_code,
             legal_representative = excluded.legal_representative, status = excluded.status,
             home = excluded.home, height = excluded.height, subject = excluded.subject",
        &[&uscc, &version],
    )
    .with_context(|| format!("updating subject {uscc}"))?;
    Ok(())
}

fn save_state(
    tx: &mut Transaction,
    trusted: &TrustedState,
    last_credit: Option<u64>,
    filter: &str,
) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO caihong_sync_state (chain_id, genesis_hash, height, block_hash, validators,
             last_credit, filter)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (chain_id) DO UPDATE SET genesis_hash = excluded.genesis_hash,
             height = excluded.height, block_hash = excluded.block_hash,
             validators = excluded.validators, last_credit = excluded.last_credit,
             filter = excluded.filter, updated_at = now()",
        &[
            &trusted.chain_id,
            &hex(&trusted.genesis_hash),
            &(trusted.height as i64),
            &hex(&trusted.hash),
            &serde_json::to_value(&trusted.validators)?,
            &last_credit.map(|id| id as i64),
            &filter,
        ],
    )?;
    Ok(())
}

impl Sink for PgSink {
    fn saved(&mut self) -> anyhow::Result<Option<Saved>> {
        let rows = self.client.query(
            "SELECT chain_id, genesis_hash, height, block_hash, validators, last_credit, filter
             FROM caihong_sync_state",
            &[],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        if rows.len() > 1 {
            bail!(
                "{} holds the sync state of {} chains; one database per alliance",
                self.shown,
                rows.len()
            );
        }
        let parse_hash = |text: String| {
            Hash::from_hex(&text).map_err(|e| anyhow::anyhow!("caihong_sync_state: {e}"))
        };
        let height: i64 = row.get(2);
        let last_credit: Option<i64> = row.get(5);
        let trusted = TrustedState {
            chain_id: row.get(0),
            genesis_hash: parse_hash(row.get(1))?,
            height: height as u64,
            hash: parse_hash(row.get(3))?,
            validators: serde_json::from_value(row.get(4))
                .context("caihong_sync_state.validators")?,
        };
        Ok(Some(Saved {
            trusted: Some(trusted),
            last_credit: last_credit.map(|id| id as u64),
            filter: Some(row.get(6)),
        }))
    }

    fn deliver(&mut self, batch: &Batch) -> anyhow::Result<(u64, u64)> {
        let mut tx = self.client.transaction()?;
        for c in batch.credits {
            insert_credit(&mut tx, c)?;
        }
        for s in batch.subjects {
            insert_subject(&mut tx, s)?;
        }
        save_state(&mut tx, batch.after, batch.last_credit, batch.filter)?;
        tx.commit().context("committing a verified range")?;
        Ok((batch.credits.len() as u64, batch.subjects.len() as u64))
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn messages_never_show_the_password() {
        assert_eq!(
            without_password("postgresql://sync:s3cret@db.example:5432/credit"),
            "postgresql://sync@db.example:5432/credit"
        );
        assert_eq!(
            without_password("postgresql://sync@localhost/credit"),
            "postgresql://sync@localhost/credit"
        );
        assert_eq!(
            without_password("host=/tmp dbname=credit"),
            "host=/tmp dbname=credit"
        );
    }
}
