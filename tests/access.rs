//! Who may call a member's API from outside its loopback: API clients with bearer tokens and
//! scopes, kept in the home and picked up without a restart, and the audit log of every call.
//! One single-member alliance whose node gives loopback no free pass, as a hardened
//! deployment would, so every call here is treated as another region's; and one whose API
//! serves HTTPS with a certificate of the alliance's own CA.

mod harness;

use harness::{Alliance, run};
use serde_json::Value;

/// (status, JSON body) of `method path` on member 0 with an optional bearer token.
fn call(a: &Alliance, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = ureq::request(method, &format!("{}{path}", a.api(0)))
        .timeout(std::time::Duration::from_secs(10));
    if let Some(t) = token {
        request = request.set("authorization", &format!("Bearer {t}"));
    }
    let result = if method == "POST" {
        request
            .set("content-type", "application/json")
            .send_string(body)
    } else {
        request.call()
    };
    match result {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(s, r)) => (s, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// (status, Location header, body) of a console page on member 0, with the login cookie
/// holding `token` when given; redirects are not followed.
fn console(a: &Alliance, path: &str, token: Option<&str>) -> (u16, String, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut request = agent
        .get(&format!("{}{path}", a.api(0)))
        .timeout(std::time::Duration::from_secs(10));
    if let Some(t) = token {
        request = request.set("cookie", &format!("caihong_console={t}"));
    }
    let r = match request.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let location = r.header("location").unwrap_or("").to_string();
    (r.status(), location, r.into_string().unwrap_or_default())
}

/// `caihong api-client add`: the token is the last line of its output.
fn add_client(home: &str, name: &str, scopes: &[&str]) -> String {
    let mut args = vec!["api-client", "add", "--home", home, "--name", name];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    out.lines().last().expect("a token").trim().to_string()
}

/// Another region's `caihong sync credit` from member 0 with `token` (and `extra` flags).
fn sync_credit(a: &Alliance, token: &str, extra: &[&str]) -> (i32, String, String) {
    let out_file = a.dir.path().join("credit.jsonl");
    let genesis = a.members[0].home.join("genesis.json");
    let mut args = vec![
        "sync",
        "credit",
        "--from",
        a.api(0),
        "--genesis",
        genesis.to_str().unwrap(),
        "--out",
        out_file.to_str().unwrap(),
        "--token",
        token,
    ];
    args.extend(extra);
    run(&args)
}

#[test]
fn tokens_scopes_revocation_and_the_audit_log() {
    let mut a = Alliance::create(1);
    let home = a.members[0].home.to_str().unwrap().to_string();
    // No free pass for loopback, and tight limits for public clients.
    let config = a.members[0].home.join("config.toml");
    let mut node: caihong_node::config::NodeConfig =
        toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    node.api.loopback_full_access = false;
    node.api.limits.public = caihong_node::config::RateLimit {
        per_second: 5,
        burst: 5,
        concurrent_long: 1,
    };
    std::fs::write(&config, toml::to_string(&node).unwrap()).unwrap();
    let region = add_client(&home, "region-b", &["public"]);
    let staff = add_client(&home, "ops", &["member", "submit"]);
    let flooder = add_client(&home, "flooder", &["public"]);
    // A public client at the console (its own request budget).
    let desk = add_client(&home, "front-desk", &["public"]);
    assert!(region.starts_with("chk_") && region != staff);
    a.start(0);
    // This test is another region: the harness's own token is withdrawn.
    let (code, _, err) = run(&["api-client", "revoke", "--home", &home, "--name", "harness"]);
    assert_eq!(code, 0, "{err}");
    caihong_cli::api_client::set_token(None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while call(&a, "GET", "/v1/status", Some(&region), "").1["height"]
        .as_u64()
        .unwrap_or(0)
        < 1
    {
        assert!(std::time::Instant::now() < deadline, "{}", a.log_tail(0));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // Open, unauthenticated, forbidden: each says what to do.
    assert_eq!(call(&a, "GET", "/healthz", None, "").0, 200);
    let (status, body) = call(&a, "GET", "/v1/status", None, "");
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    assert!(
        body["error"].as_str().unwrap().contains("no token"),
        "{body}"
    );
    let (status, body) = call(&a, "GET", "/v1/status", Some("chk_forged"), "");
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not one this node issued")
    );
    assert_eq!(
        call(&a, "GET", "/v1/credit/since/0", Some(&region), "").0,
        200
    );
    let (status, body) = call(
        &a,
        "GET",
        "/v1/experts?specialty=A010101",
        Some(&region),
        "",
    );
    assert_eq!((status, body["code"].as_str()), (403, Some("FORBIDDEN")));
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("needs scope member")
    );
    let (status, _) = call(&a, "POST", "/v1/tx", Some(&region), "{}");
    assert_eq!(status, 403, "a public token cannot submit");
    assert_eq!(
        call(&a, "GET", "/v1/experts?specialty=A010101", Some(&staff), "").0,
        200
    );

    // The CLI: without a token a read is refused (exit 1, naming the cause); with one it works,
    // and a member+submit token signs and commits.
    let (code, _, err) = run(&["query", "members", "--home", &home]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("UNAUTHENTICATED"), "{err}");
    let uscc = harness::test_uscc("150100", 42);
    let (code, out, err) = run(&[
        "tx",
        "--home",
        &home,
        "--token",
        &staff,
        "--wait",
        "subject",
        "register",
        "--uscc",
        &uscc,
        "--name",
        "某公司",
        "--role",
        "bidder",
        "--legal-rep",
        "张三",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // The web console, as another region's and the member's staff open it in a browser.
    console_scopes(&a, &desk, &staff);
    // Another region syncs credit with its public token.
    let sync = |token: &str| sync_credit(&a, token, &[]);
    let (code, out, err) = sync(&region);
    assert_eq!(code, 0, "{out}{err}");

    // Revoked: refused from the next request on, without a restart, and said so.
    let (code, _, err) = run(&[
        "api-client",
        "revoke",
        "--home",
        &home,
        "--name",
        "region-b",
    ]);
    assert_eq!(code, 0, "{err}");
    let (status, body) = call(&a, "GET", "/v1/credit/since/0", Some(&region), "");
    assert_eq!(status, 401);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("client region-b was revoked"),
        "{body}"
    );
    let (code, _, _) = sync(&region);
    assert_ne!(code, 0, "a revoked token syncs nothing");

    // A client over its limit gets 429 with Retry-After; another client, flooded alongside,
    // keeps being served within its own limits (bound: every answer within 1 s, on a shared
    // two-core machine; typically a few ms).
    let flood = {
        let url = format!("{}/v1/status", a.api(0));
        let token = flooder.clone();
        std::thread::spawn(move || {
            let (mut served, mut limited, mut retry_after) = (0, 0, None);
            let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while std::time::Instant::now() < until {
                let r = ureq::get(&url)
                    .set("authorization", &format!("Bearer {token}"))
                    .call();
                match r {
                    Ok(_) => served += 1,
                    Err(ureq::Error::Status(429, r)) => {
                        limited += 1;
                        retry_after = r.header("retry-after").map(str::to_string);
                    }
                    Err(e) => panic!("flood: {e}"),
                }
            }
            (served, limited, retry_after)
        })
    };
    let mut slowest = std::time::Duration::ZERO;
    for _ in 0..40 {
        let start = std::time::Instant::now();
        assert_eq!(call(&a, "GET", "/v1/members", Some(&staff), "").0, 200);
        slowest = slowest.max(start.elapsed());
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let (served, limited, retry_after) = flood.join().unwrap();
    assert!(limited > 0, "never limited: {served} served");
    assert!(
        served <= 5 + 5 * 3,
        "{served} served over 2 s at 5/s, burst 5"
    );
    assert!(
        retry_after.as_deref().and_then(|s| s.parse::<u64>().ok()) >= Some(1),
        "{retry_after:?}"
    );
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "another client's slowest answer during the flood: {slowest:?}"
    );

    // One audit line per request, with the client's name and the path asked.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let audit = std::fs::read_to_string(a.members[0].home.join("audit/api.jsonl")).unwrap();
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by = |client: &str, path: &str, status: u64| {
        lines
            .iter()
            .any(|l| l["client"] == client && l["path"] == path && l["status"] == status)
    };
    assert!(by("region-b", "/v1/credit/since/0", 200), "{audit}");
    assert!(by("region-b", "/v1/experts", 403), "{audit}");
    assert!(by("ops", "/v1/tx", 200), "{audit}");
    assert!(by("anonymous", "/v1/status", 401), "{audit}");
    assert!(
        by("region-b", "/v1/credit/since/0", 401),
        "revoked, by name: {audit}"
    );
    assert!(by("flooder", "/v1/status", 429), "{audit}");
    assert!(by("front-desk", "/console/subjects", 200), "{audit}");
    assert!(by("anonymous", "/console/credit", 303), "{audit}");
    assert!(by("anonymous", "/v1/experts", 401), "{audit}");
}

/// The console follows the API's access rules: without a token a browser is sent to the login
/// page with the reason; the login keeps the token in an HTTP-only cookie; a `public` token
/// reads subjects but not extractions; a `member` token reads both.
fn console_scopes(a: &Alliance, public: &str, member: &str) {
    let (status, location, _) = console(a, "/console/credit?kind=blacklist", None);
    assert_eq!(status, 303, "{location}");
    assert!(
        location.starts_with("/console/login?next=%2Fconsole%2Fcredit%3Fkind%3Dblacklist&why=")
            && location.contains("no+token"),
        "the login comes back to the page with its query: {location}"
    );
    // The cookie opens console pages only: the JSON API, and so a transaction sent from a
    // browser, still needs the bearer header.
    let with_cookie = |path: &str| match ureq::get(&format!("{}{path}", a.api(0)))
        .set("cookie", &format!("caihong_console={member}"))
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{path}: {e}"),
    };
    assert_eq!(with_cookie("/v1/experts?specialty=A010101"), 401);
    assert_eq!(with_cookie("/v1/status"), 401);
    let (status, _, body) = console(a, &location, None);
    assert_eq!(status, 200, "the login page is open");
    assert!(body.contains("<label for=\"token\">"), "{body}");
    let (status, location, _) = console(a, "/console", Some("chk_forged"));
    assert_eq!(status, 303);
    assert!(location.contains("not+one+this+node+issued"), "{location}");

    // The login sets the cookie (HTTP-only, SameSite) and returns to the page asked for.
    let answer = match ureq::AgentBuilder::new()
        .redirects(0)
        .build()
        .post(&format!("{}/console/login", a.api(0)))
        .send_form(&[("token", public), ("next", "/console/subjects")])
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST /console/login: {e}"),
    };
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.header("location"), Some("/console/subjects"));
    let cookie = answer.header("set-cookie").unwrap_or("");
    assert!(
        cookie.starts_with(&format!("caihong_console={public};"))
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    // Public: the subject registered above, found by a fragment of its name; no extractions.
    let (status, _, body) = console(a, "/console/subjects?q=%E5%85%AC%E5%8F%B8", Some(public));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("某公司"), "{body}");
    assert!(
        body.contains("front-desk"),
        "the page names its viewer: {body}"
    );
    let (status, _, body) = console(a, "/console/experts", Some(public));
    assert_eq!(status, 200);
    assert!(
        body.contains("id=\"pool\""),
        "pool sizes are shown to all: {body}"
    );
    assert!(
        body.contains("需要 <code>member</code> 权限") && !body.contains("id=\"extractions\""),
        "{body}"
    );
    let (status, _, body) = console(a, "/console/extractions/1", Some(public));
    assert_eq!(status, 200);
    assert!(body.contains("需要 <code>member</code> 权限"), "{body}");
    // Bad input is a page that says what was wrong.
    // (With the member token: the public one is over its tight limit by now.)
    let (status, _, body) = console(a, "/console/credit?from=2026-13-01", Some(member));
    assert_eq!(status, 400);
    assert!(body.contains("不是日期: 请写成 2026-12-03"), "{body}");
    let (status, _, body) = console(a, "/console/subjects/91150100MA0N12340C", Some(member));
    assert_eq!(status, 400);
    assert!(body.contains("统一社会信用代码"), "{body}");
    let (status, _, body) = console(a, "/console/credit/999999", Some(member));
    assert_eq!(status, 404);
    assert!(body.contains("没有编号为 999999 的信用记录"), "{body}");
    // Member: the extraction section is there (empty on this chain), and the metrics.
    let (_, _, body) = console(a, "/console/experts", Some(member));
    assert!(body.contains("没有抽取记录"), "{body}");
    let (_, _, body) = console(a, "/console/node", Some(member));
    assert!(body.contains("id=\"metrics\""), "{body}");
    let (_, _, body) = console(a, "/console/node", Some(public));
    assert!(!body.contains("id=\"metrics\""), "{body}");
}

/// An API behind TLS (`caihong testnet --tls`): the CLI and another region's sync trust the
/// alliance's CA; without it the error names the certificate; plain HTTP to the port is told
/// to use https; a client that never finishes its handshake, and garbage, hold nobody up.
#[test]
fn the_api_over_tls() {
    let mut a = Alliance::create_tls(1);
    assert!(a.api(0).starts_with("https://"), "{}", a.api(0));
    let home = a.members[0].home.to_str().unwrap().to_string();
    let ca = a.dir.path().join("net/ca.pem");
    let ca = ca.to_str().unwrap();
    a.start(0);
    a.wait_height(0, 1, std::time::Duration::from_secs(60));

    let (code, out, err) = run(&["status", "--home", &home, "--ca-cert", ca]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run(&["status", "--home", &home]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("TLS certificate") && err.contains("--ca-cert"),
        "{err}"
    );
    // Plain HTTP to the TLS port: a clear answer, from the CLI too.
    let plain = a.api(0).replacen("https://", "http://", 1);
    let (code, _, err) = run(&["query", "members", "--node", &plain]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("serves HTTPS only"), "{err}");

    // Hostile: a connection that never says a word, and one that sends garbage.
    let port: u16 = a.api(0).rsplit(':').next().unwrap().parse().unwrap();
    let silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut garbage = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut garbage, &[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3]).unwrap();
    let start = std::time::Instant::now();
    let public = add_client(&home, "region-b", &["public"]);
    let (code, out, err) = sync_credit(&a, &public, &["--ca-cert", ca]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "served while a handshake hangs: {:?}",
        start.elapsed()
    );
    drop((silent, garbage));
}
