//! Who may call the API, and the record of who did.
//!
//! Access to one member's node is that member's decision, so API clients live in the node's
//! home (`api_clients.json`), not on chain. `caihong api-client add` makes a bearer token,
//! shows it once and keeps only its SHA-256; each client has scopes:
//! - `public`: what another region needs to sync and check credit (blocks, proofs, credit,
//!   subjects, CA verification, the committed-event feed);
//! - `member`: everything the member's own staff read (experts, extractions, governance);
//! - `submit`: sending transactions.
//!
//! The node rereads the file when it changes, so added and revoked clients count from the next
//! request, without a restart. Each client has a token bucket of requests and a cap on long requests in flight
//! (`[api.limits.<scope>]`); over them it gets 429 with `Retry-After`, and other clients are
//! not slowed. Callers on loopback have every scope unless `[api] loopback_full_access = false`;
//! `/healthz` is open to all. Every request is written to the audit log
//! (`audit/api.jsonl`, rotated), with the client's name, because who read which subject's
//! credit is a question a center gets asked.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::extract::{ConnectInfo, MatchedPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{RateLimit, ScopeLimits};
use crate::contract::{ErrorBody, route};

/// What a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Public,
    Member,
    Submit,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Public, Scope::Member, Scope::Submit];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Public => "public",
            Scope::Member => "member",
            Scope::Submit => "submit",
        }
    }

    pub fn parse(text: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == text.trim())
            .ok_or_else(|| format!("unknown scope {text:?}; scopes: public, member, submit"))
    }
}

/// The scope a route needs; `None` for routes open to everyone. The `member` scope includes
/// what `public` allows.
pub fn required_scope(route_template: &str) -> Option<Scope> {
    use route::*;
    Some(match route_template {
        HEALTHZ | CONSOLE_LOGIN | CONSOLE_STYLE => return None,
        // Each console page then shows what the caller's scopes allow (experts and
        // extractions need `member`).
        t if t.starts_with(CONSOLE) => Scope::Public,
        TX | TXS | NONCE => Scope::Submit,
        STATUS | TX_BY_HASH | LATEST_BLOCK | BLOCK | LIGHT_BLOCKS | VALIDATORS | MEMBERS
        | SUBJECT | SUBJECT_HISTORY | CREDIT_RECORD | CREDIT_BY_SUBJECT | CREDIT_RESTRICTION
        | CREDIT_SCORE | CREDIT_SINCE | CA_ISSUERS | CA_VERIFY | STATE_PROOF | EVENTS => {
            Scope::Public
        }
        // Metrics, evidence, governance, experts and extractions, and any route added later.
        _ => Scope::Member,
    })
}

/// Whether `/metrics` is served: always to loopback; to a client only when `[api] metrics`
/// names a scope the client has.
fn metrics_open(setting: Option<Scope>, from_loopback: bool, scopes: Option<&[Scope]>) -> bool {
    from_loopback || setting.is_some_and(|needed| scopes.is_some_and(|s| grants(s, needed)))
}

fn grants(scopes: &[Scope], needed: Scope) -> bool {
    scopes.contains(&needed) || (needed == Scope::Public && scopes.contains(&Scope::Member))
}

/// One API client as the home keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiClient {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// SHA-256 of the token (hex); the token itself is shown once and never stored.
    pub token_sha256: String,
    pub created_ms: u64,
    /// When it was revoked; a revoked client is kept so the audit log's names stay meaningful.
    pub revoked_ms: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ClientsFile {
    clients: Vec<ApiClient>,
}

pub fn clients_path(home: &Path) -> PathBuf {
    home.join("api_clients.json")
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

fn now_ms() -> u64 {
    crate::chain::now_ms()
}

fn read_file(home: &Path) -> anyhow::Result<ClientsFile> {
    let path = clients_path(home);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a client list: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ClientsFile::default()),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces the file whole (write, then rename): the node never reads half of it.
fn write_file(home: &Path, file: &ClientsFile) -> anyhow::Result<()> {
    let path = clients_path(home);
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(file).expect("json");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// Adds a client and returns its new token (shown once).
pub fn add_client(home: &Path, name: &str, scopes: &[Scope]) -> anyhow::Result<String> {
    let mut secret = [0u8; 32];
    crate::config::getrandom_seed(&mut secret);
    let token = format!("chk_{}", hex::encode(secret));
    add_client_token(home, name, scopes, &token)?;
    Ok(token)
}

/// Adds a client whose token the caller chose (at least 32 characters): one token for the
/// same client on several members' nodes, e.g. a test harness's.
pub fn add_client_token(
    home: &Path,
    name: &str,
    scopes: &[Scope],
    token: &str,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        token.trim().len() >= 32,
        "a token needs at least 32 characters"
    );
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "--name {name:?}: use letters, digits, '-', '_' or '.'"
    );
    anyhow::ensure!(!scopes.is_empty(), "give the client at least one --scope");
    let mut file = read_file(home)?;
    if file
        .clients
        .iter()
        .any(|c| c.name == name && c.revoked_ms.is_none())
    {
        anyhow::bail!("a client named {name} exists; revoke it first or choose another name");
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    file.clients.push(ApiClient {
        name: name.to_string(),
        scopes,
        token_sha256: token_hash(token),
        created_ms: now_ms(),
        revoked_ms: None,
    });
    write_file(home, &file)
}

pub fn list_clients(home: &Path) -> anyhow::Result<Vec<ApiClient>> {
    Ok(read_file(home)?.clients)
}

/// Revokes the client's token; the node refuses it from its next request on.
pub fn revoke_client(home: &Path, name: &str) -> anyhow::Result<()> {
    let mut file = read_file(home)?;
    let client = file
        .clients
        .iter_mut()
        .find(|c| c.name == name && c.revoked_ms.is_none())
        .ok_or_else(|| anyhow::anyhow!("no active client named {name} (see api-client list)"))?;
    client.revoked_ms = Some(now_ms());
    write_file(home, &file)
}

/// Who is calling.
#[derive(Debug, Clone)]
enum Caller {
    Client { name: String, scopes: Vec<Scope> },
    Loopback,
    Anonymous,
}

/// Which version of the clients file was read: file timestamps tick coarsely (two writes in
/// one tick share one), but every write replaces the file, so its inode tells them apart.
type FileVersion = (u64, SystemTime, u64);

fn file_version(path: &Path) -> Option<FileVersion> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.ino(), meta.modified().ok()?, meta.len()))
}

/// The clients file as last read.
#[derive(Debug)]
struct Cache {
    modified: Option<FileVersion>,
    /// Token hash → client, revoked ones included.
    by_hash: BTreeMap<String, ApiClient>,
}

/// The node's access state: its clients, its policy, their request budgets and its audit log.
#[derive(Debug, Clone)]
pub struct Access {
    home: PathBuf,
    loopback_full_access: bool,
    /// The scope whose clients may read `/metrics` besides loopback; `None`: loopback only.
    metrics: Option<Scope>,
    limits: ScopeLimits,
    budgets: Arc<Mutex<BTreeMap<String, Budget>>>,
    cache: Arc<Mutex<Cache>>,
    audit: AuditLog,
}

/// One client's token bucket and its long requests in flight.
#[derive(Debug)]
struct Budget {
    tokens: f64,
    refilled: Instant,
    long_in_flight: usize,
}

/// Routes whose answers can take long (many blocks, many records, a wait for a commit or, for
/// the event feed, a long-poll).
fn is_long(route_template: &str) -> bool {
    matches!(
        route_template,
        route::LIGHT_BLOCKS | route::CREDIT_SINCE | route::TX | route::TXS | route::EVENTS
    )
}

/// The most generous limit among a client's scopes.
fn limit_of(limits: &ScopeLimits, scopes: &[Scope]) -> RateLimit {
    scopes
        .iter()
        .map(|s| match s {
            Scope::Public => limits.public,
            Scope::Member => limits.member,
            Scope::Submit => limits.submit,
        })
        .max_by_key(|l| l.per_second)
        .unwrap_or(limits.public)
}

/// A long request in flight, given back when its answer is done (or the caller went away).
#[derive(Debug)]
struct LongSlot {
    budgets: Arc<Mutex<BTreeMap<String, Budget>>>,
    client: String,
}

impl Drop for LongSlot {
    fn drop(&mut self) {
        if let Some(b) = self.budgets.lock().expect("budgets").get_mut(&self.client) {
            b.long_in_flight = b.long_in_flight.saturating_sub(1);
        }
    }
}

impl Access {
    pub fn new(
        home: &Path,
        loopback_full_access: bool,
        limits: ScopeLimits,
    ) -> anyhow::Result<Access> {
        let access = Access {
            home: home.to_path_buf(),
            loopback_full_access,
            metrics: None,
            limits,
            budgets: Arc::new(Mutex::new(BTreeMap::new())),
            cache: Arc::new(Mutex::new(Cache {
                modified: None,
                by_hash: BTreeMap::new(),
            })),
            audit: AuditLog::open(&home.join("audit"))?,
        };
        // A broken file is an error at start; later, the last good list stays in force.
        read_file(home)?;
        Ok(access)
    }

    /// `[api] metrics`: `loopback`, or the scope whose clients may also read `/metrics`.
    pub fn with_metrics(mut self, setting: &str) -> anyhow::Result<Access> {
        self.metrics =
            match setting.trim() {
                "loopback" => None,
                scope => Some(Scope::parse(scope).map_err(|e| {
                    anyhow::anyhow!("[api] metrics: {e}, or loopback (the default)")
                })?),
            };
        Ok(self)
    }

    /// Takes one request from the client's bucket (and a long slot for a long route), or
    /// says how many seconds to wait.
    fn spend(&self, client: &str, scopes: &[Scope], long: bool) -> Result<Option<LongSlot>, u64> {
        let limit = limit_of(&self.limits, scopes);
        let mut budgets = self.budgets.lock().expect("budgets");
        let now = Instant::now();
        let b = budgets.entry(client.to_string()).or_insert(Budget {
            tokens: f64::from(limit.burst),
            refilled: now,
            long_in_flight: 0,
        });
        let rate = f64::from(limit.per_second.max(1));
        b.tokens = (b.tokens + now.duration_since(b.refilled).as_secs_f64() * rate)
            .min(f64::from(limit.burst.max(1)));
        b.refilled = now;
        if b.tokens < 1.0 {
            return Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64);
        }
        if long && b.long_in_flight >= limit.concurrent_long {
            return Err(1);
        }
        b.tokens -= 1.0;
        if !long {
            return Ok(None);
        }
        b.long_in_flight += 1;
        Ok(Some(LongSlot {
            budgets: self.budgets.clone(),
            client: client.to_string(),
        }))
    }

    fn lookup(&self, token: &str) -> Option<ApiClient> {
        // One stat per request (about a microsecond): an added or revoked client counts from
        // the next request on.
        let mut cache = self.cache.lock().expect("access cache");
        {
            let modified = file_version(&clients_path(&self.home));
            if modified != cache.modified {
                match read_file(&self.home) {
                    Ok(file) => {
                        cache.by_hash = file
                            .clients
                            .into_iter()
                            .map(|c| (c.token_sha256.clone(), c))
                            .collect();
                        cache.modified = modified;
                    }
                    Err(e) => tracing::warn!("API clients not reloaded: {e:#}"),
                }
            }
        }
        cache.by_hash.get(&token_hash(token)).cloned()
    }
}

fn refuse(status: StatusCode, code: &str, message: String) -> Response {
    let body = ErrorBody {
        error: message,
        code: Some(code.to_string()),
    };
    (status, axum::Json(body)).into_response()
}

/// The API's gate: finds the caller, checks the route's scope, and writes the audit line.
pub async fn guard(
    State(access): State<Access>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    matched: Option<MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let template = matched.as_ref().map_or("", |m| m.as_str()).to_string();
    let path = request.uri().path().to_string();
    let request_query = request.uri().query().map(str::to_string);
    let method = request.method().to_string();
    let console = template.starts_with(route::CONSOLE);
    let bearer = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string())
        // A browser cannot send the header: the console's login keeps the token in a cookie.
        .or_else(|| console.then(|| token_cookie(request.headers())).flatten());
    let mut refused_client = None;
    let loopback = access.loopback_full_access && peer.ip().is_loopback();
    let caller = match &bearer {
        Some(token) => match access.lookup(token) {
            Some(c) if c.revoked_ms.is_none() => Caller::Client {
                name: c.name,
                scopes: c.scopes,
            },
            // A token meant for another node, sent from this machine, takes nothing away.
            _ if loopback => Caller::Loopback,
            found => {
                refused_client = found.map(|c| c.name);
                Caller::Anonymous
            }
        },
        None if loopback => Caller::Loopback,
        None => Caller::Anonymous,
    };
    let mut request = request;
    request.extensions_mut().insert(match &caller {
        Caller::Client { name, scopes } => Viewer {
            client: name.clone(),
            scopes: scopes.clone(),
        },
        Caller::Loopback => Viewer {
            client: "loopback".into(),
            scopes: Scope::ALL.to_vec(),
        },
        Caller::Anonymous => Viewer {
            client: "anonymous".into(),
            scopes: Vec::new(),
        },
    });
    let metrics = template == route::METRICS;
    let needed = if metrics {
        Some(access.metrics.unwrap_or(Scope::Member))
    } else {
        required_scope(&template)
    };
    let response = match (&caller, needed) {
        _ if template == route::ADMIN_BACKUP && !peer.ip().is_loopback() => refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "backups are made on the node's own machine: run `caihong backup --home HOME` there"
                .to_string(),
        ),
        (_, None) | (Caller::Loopback, _) => next.run(request).await,
        _ if metrics && metrics_open(access.metrics, peer.ip().is_loopback(), None) => {
            next.run(request).await
        }
        (Caller::Client { name, scopes }, _)
            if metrics && !metrics_open(access.metrics, false, Some(scopes)) =>
        {
            refuse(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!(
                    "client {name}: this node serves /metrics to loopback only, or to the scope \
                     its operator names with [api] metrics"
                ),
            )
        }
        (Caller::Client { name, scopes }, Some(scope)) if grants(scopes, scope) => {
            match access.spend(name, scopes, is_long(&template)) {
                Ok(slot) => {
                    let response = next.run(request).await;
                    drop(slot);
                    response
                }
                Err(wait_secs) => {
                    let mut r = refuse(
                        StatusCode::TOO_MANY_REQUESTS,
                        "RATE_LIMITED",
                        format!(
                            "client {name} is over its request limit; retry in {wait_secs} s \
                             (the member sets limits per scope in [api.limits])"
                        ),
                    );
                    r.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from(wait_secs),
                    );
                    r
                }
            }
        }
        (Caller::Client { name, scopes }, Some(scope)) => refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!(
                "client {name} has scope {}; {template} needs scope {}: ask the member's \
                 operator for it (caihong api-client add)",
                scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                scope.as_str()
            ),
        ),
        (_, Some(scope)) => {
            let why = match (&bearer, &refused_client) {
                (Some(_), Some(name)) => format!("the token of client {name} was revoked"),
                (Some(_), None) => "the token is not one this node issued".to_string(),
                (None, _) => "no token was sent".to_string(),
            };
            refuse(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                format!(
                    "{why}; {template} needs a bearer token with scope {} (Authorization: \
                     Bearer …, or caihong --token / CAIHONG_TOKEN)",
                    scope.as_str()
                ),
            )
        }
    };
    // A person at the console is sent to its login page, with the reason, not shown JSON.
    let response = match response.status() {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if console => {
            // After the login the browser comes back to the page (with its query), or for a
            // form it had sent, to the console's first page.
            let back = match (method.as_str(), request_query) {
                ("GET", Some(q)) => format!("{path}?{q}"),
                ("GET", None) => path.clone(),
                _ => route::CONSOLE.to_string(),
            };
            to_login(&back, &response_error(response).await)
        }
        _ => response,
    };
    let client = match caller {
        Caller::Client { name, .. } => name,
        Caller::Loopback => "loopback".to_string(),
        Caller::Anonymous => refused_client.unwrap_or_else(|| "anonymous".to_string()),
    };
    let bytes = response
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    access.audit.write(&AuditLine {
        time_ms: now_ms(),
        client: &client,
        peer: &peer.to_string(),
        method: &method,
        path: &path,
        status: response.status().as_u16(),
        bytes,
    });
    response
}

/// The cookie the console's login keeps a client's token in (a browser cannot send the
/// `Authorization` header on its own).
pub const CONSOLE_COOKIE: &str = "caihong_console";

/// The token in the console's cookie, if the request has one.
pub fn token_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == CONSOLE_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Where a refused console request goes: the login page, with why.
fn to_login(path: &str, why: &str) -> Response {
    let query = serde_urlencoded::to_string([("next", path), ("why", why)]).unwrap_or_default();
    axum::response::Redirect::to(&format!("{}?{query}", route::CONSOLE_LOGIN)).into_response()
}

/// The `error` of a refusal's JSON body.
async fn response_error(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    serde_json::from_slice::<ErrorBody>(&bytes)
        .map(|b| b.error)
        .unwrap_or_default()
}

/// Who is asking, as the gate found it: handlers that show more to some scopes than to
/// others (the console) read it from the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The client's name, `loopback` or `anonymous`.
    pub client: String,
    pub scopes: Vec<Scope>,
}

impl Viewer {
    pub fn may(&self, needed: Scope) -> bool {
        grants(&self.scopes, needed)
    }
}

/// One line of the audit log.
#[derive(Debug, Serialize)]
struct AuditLine<'a> {
    time_ms: u64,
    client: &'a str,
    peer: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    /// The answer's length, when it was known up front.
    bytes: Option<u64>,
}

/// JSON lines appended by one writer thread, so a slow disk never holds a request; the file
/// is rotated at [`AUDIT_ROTATE_BYTES`], keeping [`AUDIT_KEEP`] old files.
#[derive(Debug, Clone)]
struct AuditLog {
    lines: std::sync::mpsc::SyncSender<String>,
}

const AUDIT_ROTATE_BYTES: u64 = 64 << 20;
const AUDIT_KEEP: usize = 9;

impl AuditLog {
    fn open(dir: &Path) -> anyhow::Result<AuditLog> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("api.jsonl");
        let (lines, queue) = std::sync::mpsc::sync_channel::<String>(65_536);
        std::thread::Builder::new()
            .name("api-audit".into())
            .spawn(move || write_audit(&path, queue))?;
        Ok(AuditLog { lines })
    }

    fn write(&self, line: &AuditLine<'_>) {
        let text = serde_json::to_string(line).expect("json");
        if self.lines.try_send(text).is_err() {
            tracing::warn!("the API audit log is behind; a line was dropped");
        }
    }
}

fn write_audit(path: &Path, queue: std::sync::mpsc::Receiver<String>) {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    };
    let mut file = match open() {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("cannot open the API audit log {}: {e}", path.display());
            return;
        }
    };
    while let Ok(line) = queue.recv() {
        if let Err(e) = writeln!(file, "{line}") {
            tracing::error!("cannot write the API audit log: {e}");
        }
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size >= AUDIT_ROTATE_BYTES {
            rotate(path);
            match open() {
                Ok(f) => file = f,
                Err(e) => tracing::error!("cannot reopen the API audit log: {e}"),
            }
        }
    }
}

/// api.jsonl → api.jsonl.1 → … → api.jsonl.N (the oldest is dropped).
fn rotate(path: &Path) {
    let numbered = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
    let _ = std::fs::remove_file(numbered(AUDIT_KEEP));
    for n in (1..AUDIT_KEEP).rev() {
        let _ = std::fs::rename(numbered(n), numbered(n + 1));
    }
    let _ = std::fs::rename(path, numbered(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_setting_is_loopback_or_a_scope() {
        let dir = tempfile::tempdir().unwrap();
        let access = || Access::new(dir.path(), true, ScopeLimits::default()).unwrap();
        assert_eq!(access().with_metrics("loopback").unwrap().metrics, None);
        assert_eq!(
            access().with_metrics("public").unwrap().metrics,
            Some(Scope::Public)
        );
        let member = [Scope::Member];
        assert!(metrics_open(None, true, None), "loopback always");
        assert!(!metrics_open(None, false, Some(&member)), "loopback only");
        assert!(metrics_open(Some(Scope::Member), false, Some(&member)));
        assert!(!metrics_open(Some(Scope::Submit), false, Some(&member)));
        let err = access().with_metrics("everyone").unwrap_err().to_string();
        assert!(
            err.contains("[api] metrics") && err.contains("loopback"),
            "{err}"
        );
    }

    #[test]
    fn every_route_has_a_scope_and_submitting_needs_its_own() {
        assert_eq!(required_scope(route::HEALTHZ), None);
        assert_eq!(required_scope(route::TX), Some(Scope::Submit));
        assert_eq!(required_scope(route::CREDIT_SINCE), Some(Scope::Public));
        assert_eq!(required_scope(route::EVENTS), Some(Scope::Public));
        assert_eq!(required_scope(route::EXPERTS), Some(Scope::Member));
        assert!(grants(&[Scope::Member], Scope::Public));
        assert!(!grants(&[Scope::Public], Scope::Member));
        assert!(!grants(&[Scope::Public, Scope::Member], Scope::Submit));
    }

    /// A token is shown once, only its hash is kept, and a revoked one no longer maps to an
    /// active client; the node sees changes without a restart.
    #[test]
    fn clients_are_added_found_and_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let access = Access::new(dir.path(), false, ScopeLimits::default()).unwrap();
        let token = add_client(dir.path(), "xian-credit", &[Scope::Public]).unwrap();
        let stored = std::fs::read_to_string(clients_path(dir.path())).unwrap();
        assert!(!stored.contains(&token), "the token itself is not stored");
        let found = access.lookup(&token).expect("found after the file changed");
        assert_eq!(found.scopes, vec![Scope::Public]);
        assert!(add_client(dir.path(), "xian-credit", &[Scope::Public]).is_err());
        revoke_client(dir.path(), "xian-credit").unwrap();
        let after = access.lookup(&token);
        assert!(
            after.is_some_and(|c| c.revoked_ms.is_some()),
            "revoked without a restart"
        );
        assert!(access.lookup("chk_00").is_none());
        assert!(revoke_client(dir.path(), "nobody").is_err());
    }

    /// A client over its bucket waits; its long requests are capped; others are untouched.
    #[test]
    fn budgets_are_per_client() {
        let dir = tempfile::tempdir().unwrap();
        let tight = RateLimit {
            per_second: 1,
            burst: 3,
            concurrent_long: 1,
        };
        let limits = ScopeLimits {
            public: tight,
            ..ScopeLimits::default()
        };
        let access = Access::new(dir.path(), false, limits).unwrap();
        let public = [Scope::Public];
        for _ in 0..3 {
            assert!(access.spend("a", &public, false).is_ok());
        }
        assert_eq!(access.spend("a", &public, false).unwrap_err(), 1);
        assert!(
            access.spend("b", &public, false).is_ok(),
            "b has its own bucket"
        );
        let slot = access.spend("b", &public, true).unwrap();
        assert!(
            access.spend("b", &public, true).is_err(),
            "one long at a time"
        );
        drop(slot);
        assert!(
            access.spend("b", &public, true).is_ok(),
            "the slot came back"
        );
        // The most generous scope counts.
        assert_eq!(
            limit_of(&limits, &[Scope::Public, Scope::Submit]),
            limits.submit
        );
    }

    #[test]
    fn the_audit_log_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::write(dir.path().join("api.jsonl.1"), "older\n").unwrap();
        rotate(&path);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("api.jsonl.1")).unwrap(),
            "old\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("api.jsonl.2")).unwrap(),
            "older\n"
        );
        assert!(!path.exists());
    }
}
