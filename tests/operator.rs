//! An administrator's day at the terminal against a real alliance: register a subject, record
//! and repair credit, bulk-import a 双公示 CSV with good and bad rows (twice), and the errors an
//! administrator can act on: wrong role, bad USCC, unknown subject, unreachable node.

mod harness;

use harness::{Alliance, run, test_uscc};
use serde_json::Value;

/// `caihong <args…> --home HOME --json` for member `i`; returns (exit code, JSON or Null, stderr).
fn as_member(a: &Alliance, i: usize, args: &[&str]) -> (i32, Value, String) {
    let home = a.members[i].home.to_str().unwrap().to_string();
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--home", &home, "--json"]);
    let (code, out, err) = run(&full);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

/// Waits until member `reader` has every block member `writer` has: a read from another member
/// than the one a transaction went to must wait for its block (read-your-writes by height).
fn caught_up(a: &Alliance, writer: usize, reader: usize) {
    let height = a.height(writer).expect("the writer answers");
    a.wait_height(reader, height, std::time::Duration::from_secs(60));
}

fn penalty_row(uscc: &str, document: &str, fine: &str) -> String {
    format!(
        "鄂尔多斯某建设有限公司,法人及非法人组织,{uscc},,,,,,李四,,,,,{document},串通投标,与他人串通投标,《中华人民共和国招标投标法》第五十三条,罚款,罚款并取消投标资格一年,{fine},,,2026/09/01,2027/08/31,2027年08月31日,鄂尔多斯市发展和改革委员会,,,,"
    )
}

#[test]
fn an_administrators_day_from_the_command_line() {
    let a = Alliance::start_new(4);
    let uscc = test_uscc("150600", 1);

    // Register a subject (Ordos keeps it) and read it back from another member.
    let (code, v, err) = as_member(
        &a,
        2,
        &[
            "tx",
            "--wait",
            "subject",
            "register",
            "--uscc",
            &uscc,
            "--name",
            "鄂尔多斯某建设有限公司",
            "--role",
            "bidder",
            "--legal-rep",
            "李四",
        ],
    );
    assert_eq!(code, 0, "{v} {err}");
    assert_eq!(v["status"], "committed", "{v}");
    caught_up(&a, 2, 0);
    let (code, subject, err) = as_member(&a, 0, &["query", "subject", &uscc]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(subject["home"], "ordos");

    // A bad USCC is caught before anything is signed: a usage error (exit 2) naming the
    // check that failed, and no nonce used.
    let mut broken = uscc.clone();
    broken.replace_range(17..18, if uscc.ends_with('0') { "1" } else { "0" });
    let (code, _, err) = as_member(
        &a,
        2,
        &[
            "tx",
            "--wait",
            "subject",
            "register",
            "--uscc",
            &broken,
            "--name",
            "某公司",
            "--role",
            "bidder",
            "--legal-rep",
            "李四",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--uscc") && err.contains("check") && err.contains("caihong uscc check"),
        "{err}"
    );

    // A key that is no member's operator is refused, and so is an operator without the role.
    let stranger = a.dir.path().join("stranger.key");
    let (code, public, _) = run(&["keygen", "--out", stranger.to_str().unwrap()]);
    assert_eq!(code, 0);
    let repair = |key: &str| {
        as_member(
            &a,
            2,
            &[
                "tx", "--wait", "--key", key, "credit", "repair", "--record", "1", "--reason", "x",
            ],
        )
    };
    let (code, _, err) = repair(stranger.to_str().unwrap());
    assert_eq!(code, 1);
    assert!(err.contains("UNKNOWN_SIGNER"), "{err}");
    // The usual slip: signing with the member's node key. Said so, with the key to use.
    let node_key = a.members[2].home.join("node_key.json");
    let (code, _, err) = repair(node_key.to_str().unwrap());
    assert_eq!(code, 1);
    assert!(
        err.contains("UNKNOWN_SIGNER")
            && err.contains("is the node key")
            && err.contains("admin_key.json"),
        "{err}"
    );
    let (code, v, err) = as_member(
        &a,
        2,
        &[
            "tx",
            "--wait",
            "operator",
            "register",
            "--operator",
            public.trim(),
            "--name",
            "登记员王五",
            "--role",
            "registrar",
        ],
    );
    assert_eq!(code, 0, "{v} {err}");
    let (code, _, err) = repair(stranger.to_str().unwrap());
    assert_eq!(code, 1);
    assert!(err.contains("UNAUTHORIZED"), "{err}");

    // An unknown subject: not found, exit 1.
    let (code, _, err) = as_member(&a, 1, &["query", "subject", &test_uscc("150600", 99)]);
    assert_eq!(code, 1, "{err}");

    // Bulk import: a bad row stops the whole file; --skip-invalid records the rest. Line 3 has
    // two problems (the subject's code fails its check, the fine is words); line 5's authority
    // code fails its check, which only drops that code.
    let csv = a.dir.path().join("penalties.csv");
    let second = test_uscc("150600", 2);
    let authority = test_uscc("150600", 90);
    let bad_authority = format!(
        "{}{}",
        &authority[..17],
        if authority.ends_with('0') { "1" } else { "0" }
    );
    let text = [
        national_header(),
        penalty_row(&uscc, "鄂发改罚〔2026〕1号", "2.5"),
        penalty_row(&broken, "鄂发改罚〔2026〕2号", "一万"),
        penalty_row(&second, "鄂发改罚〔2026〕3号", "0.5"),
        penalty_row(&second, "鄂发改罚〔2026〕4号", "0.1").replace(
            "鄂尔多斯市发展和改革委员会,,",
            &format!("鄂尔多斯市发展和改革委员会,{bad_authority},"),
        ),
    ]
    .join("\n");
    std::fs::write(&csv, text).unwrap();
    let home = a.members[2].home.to_str().unwrap().to_string();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "credit",
            "--file",
            csv.to_str().unwrap(),
            "--home",
            &home,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    // Transactions member 2 (where the imports go) has committed, failed ones included.
    let committed = || {
        a.status(2)["committed_txs"]
            .as_u64()
            .expect("committed_txs")
    };
    let before = committed();
    let (code, out, err) = import(&[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("penalties.csv:3: 统一社会信用代码"), "{err}");
    assert!(err.contains("penalties.csv:3: 罚款金额"), "{err}");
    assert!(err.contains("nothing submitted"), "{err}");
    let (code, records, _) = as_member(&a, 0, &["query", "credit", "subject", &uscc]);
    assert_eq!(code, 0);
    assert_eq!(records.as_array().unwrap().len(), 0, "{records}");
    assert_eq!(committed(), before);

    // Skipping the bad rows on request: every row sent is recorded, so exit 0, and each
    // recorded row's id is printed (the id credit repair takes). The invalid row is not sent:
    // the chain committed exactly the three recorded rows.
    let (code, out, err) = import(&["--skip-invalid"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // No progress bar when stderr is not a terminal (scripts, logs).
    assert!(!err.contains('\r'), "{err:?}");
    assert!(out.contains("recorded 3 credit records"), "{out}\n{err}");
    assert!(out.contains("3 transactions sent"), "{out}");
    assert!(
        err.contains(&format!(
            "penalties.csv:5: warning: 处罚机关统一社会信用代码 {bad_authority} dropped"
        )),
        "{err}"
    );
    let ids: Vec<(u64, String)> = out
        .lines()
        .filter_map(|l| {
            let (line, id) = l
                .strip_prefix(&format!("{}:", csv.display()))?
                .split_once(": credit record (信用记录) ")?;
            Some((line.parse().unwrap(), id.to_string()))
        })
        .collect();
    assert_eq!(
        ids.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        [2, 4, 5],
        "{out}"
    );
    assert_eq!(committed(), before + 3);
    caught_up(&a, 2, 0);
    let (_, records, _) = as_member(&a, 0, &["query", "credit", "subject", &uscc]);
    assert_eq!(records.as_array().unwrap().len(), 1, "{records}");
    assert_eq!(records[0]["record"]["fine_fen"], 2_500_000);
    let (_, records, _) = as_member(&a, 0, &["query", "credit", "subject", &second]);
    assert_eq!(records.as_array().unwrap().len(), 2, "{records}");
    assert_eq!(
        records[1]["record"]["authority_uscc"],
        Value::Null,
        "{records}"
    );
    // The penalty content cancels bidding: the subject is barred everywhere.
    caught_up(&a, 2, 3);
    let (_, restriction, _) = as_member(&a, 3, &["query", "credit", "restriction", &uscc]);
    assert_eq!(restriction["barred"], true, "{restriction}");

    // Rerun: every row is found on chain first, so nothing is sent and the chain commits no
    // transaction (no failed duplicates). With --json, stdout is one JSON report.
    let before = committed();
    let (code, out, err) = import(&["--skip-invalid", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        committed(),
        before,
        "the rerun sent transactions:\n{out}\n{err}"
    );
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let already: Vec<(u64, Option<String>)> = report["already_on_chain"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["id"].as_str().map(str::to_string),
            )
        })
        .collect();
    let recorded: Vec<(u64, Option<String>)> =
        ids.into_iter().map(|(line, id)| (line, Some(id))).collect();
    assert_eq!(already, recorded, "{report}");
    assert_eq!(report["recorded"], serde_json::json!([]), "{report}");
    assert_eq!(report["submitted"], 0, "{report}");
    assert_eq!(report["invalid_rows"][0]["line"], 3, "{report}");
    assert_eq!(
        report["invalid_rows"][0]["problems"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{report}"
    );
    assert!(
        err.contains("recorded 0 credit records (信用记录); 3 already on chain"),
        "{err}"
    );

    // A signer without the credit role (the registrar registered above): the first row fails
    // on chain and says why; the others are not sent to fail the same way.
    let more = a.dir.path().join("more-penalties.csv");
    std::fs::write(
        &more,
        [
            national_header(),
            penalty_row(&second, "鄂发改罚〔2026〕5号", "1"),
            penalty_row(&second, "鄂发改罚〔2026〕6号", "1"),
        ]
        .join("\n"),
    )
    .unwrap();
    let before = committed();
    let (code, out, err) = run(&[
        "import",
        "credit",
        "--file",
        more.to_str().unwrap(),
        "--home",
        &home,
        "--key",
        stranger.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("more-penalties.csv:2: rejected by the chain: failed (UNAUTHORIZED)"),
        "{err}"
    );
    assert!(
        err.contains("more-penalties.csv:3: rejected by the chain: not sent: line 2 was refused"),
        "{err}"
    );
    assert!(out.contains("1 transactions sent"), "{out}");
    assert_eq!(committed(), before + 1);

    // Subjects from a list: two rows, then the same file again records nothing twice.
    let subjects = a.dir.path().join("subjects.csv");
    std::fs::write(
        &subjects,
        format!(
            "统一社会信用代码,名称,主体角色,法定代表人\n{},包头甲公司,\"投标人,供应商\",王一\n{},包头乙公司,招标人,王二\n",
            test_uscc("150200", 11),
            test_uscc("150200", 12)
        ),
    )
    .unwrap();
    let baotou = a.members[1].home.to_str().unwrap().to_string();
    let list = [
        "import",
        "subjects",
        "--file",
        subjects.to_str().unwrap(),
        "--home",
        &baotou,
    ];
    let (code, out, err) = run(&list);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("recorded 2 subjects"), "{out}");
    let before = a.status(1)["committed_txs"].as_u64();
    let (code, out, _) = run(&list);
    assert_eq!(code, 0);
    assert!(
        out.contains("recorded 0 subjects (市场主体); 2 already on chain"),
        "{out}"
    );
    assert!(out.contains("0 transactions sent"), "{out}");
    assert_eq!(a.status(1)["committed_txs"].as_u64(), before);
    caught_up(&a, 1, 3);
    let (_, subject, _) = as_member(&a, 3, &["query", "subject", &test_uscc("150200", 11)]);
    assert_eq!(subject["roles"].as_array().unwrap().len(), 2, "{subject}");

    // A CA one member recognizes: recognized for that member (exit 0), not alliance-wide
    // (exit 1, the reasons printed), and an unknown member is a usage error (exit 2).
    let certs = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../chaincode/tests/fixtures/certs"
    );
    let root = format!("{certs}/sm2-root.pem");
    let home0 = a.members[0].home.to_str().unwrap();
    let (code, out, err) = run(&[
        "tx",
        "--wait",
        "--home",
        home0,
        "ca",
        "register-issuer",
        "--cert",
        &root,
    ]);
    assert_eq!(code, 0, "{err}");
    // The output names the issuer's fingerprint as such, in full (ca recognize takes it).
    assert!(
        out.contains("issuer (CA 机构) fingerprint 595456e1e200015fc32c17e1f53bffe61376b0408e41007e92869398b68e8874"),
        "{out}"
    );
    caught_up(&a, 0, 1);
    let bidder = format!("{certs}/sm2-bidder.pem");
    let verify = |member: Option<&str>| {
        let mut args = vec!["query", "ca", "verify", "--cert", &bidder];
        args.extend(member.map(|m| ["--member", m]).into_iter().flatten());
        as_member(&a, 1, &args)
    };
    let (code, v, err) = verify(Some(&a.members[0].name));
    assert_eq!(
        (code, &v["recognized"]),
        (0, &Value::Bool(true)),
        "{v} {err}"
    );
    let (code, v, err) = verify(None);
    assert_eq!(
        (code, &v["recognized"]),
        (1, &Value::Bool(false)),
        "{v} {err}"
    );
    let (code, _, err) = verify(Some("xian"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("xian is not in the alliance") && err.contains(&a.members[0].name),
        "{err}"
    );

    // Every command that needs a node says which URL it could not reach: exit 2.
    for args in [
        vec!["status", "--node", "http://127.0.0.1:9"],
        vec!["query", "members", "--node", "http://127.0.0.1:9"],
        vec!["query", "block", "latest", "--node", "http://127.0.0.1:9"],
        vec![
            "import",
            "subjects",
            "--file",
            subjects.to_str().unwrap(),
            "--node",
            "http://127.0.0.1:9",
            "--key",
            stranger.to_str().unwrap(),
        ],
        vec![
            "tx",
            "--node",
            "http://127.0.0.1:9",
            "--key",
            stranger.to_str().unwrap(),
            "governance",
            "vote",
            "--proposal",
            "1",
        ],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("http://127.0.0.1:9"), "{args:?}: {err}");
        // Once, with what to check.
        assert_eq!(
            err.matches("http://127.0.0.1:9").count(),
            1,
            "{args:?}: {err}"
        );
        assert!(err.contains("is the node running"), "{args:?}: {err}");
    }
    // A node that accepts connections but never answers: --timeout bounds the wait.
    let frozen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let frozen_url = format!("http://{}", frozen.local_addr().unwrap());
    let started = std::time::Instant::now();
    let (code, _, err) = run(&["status", "--node", &frozen_url, "--timeout", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.contains("did not answer within 1 s") && err.contains("--timeout"),
        "{err}"
    );
    // A home that is not one is named as such, once, with how to make one.
    let missing = a.dir.path().join("no-such-home");
    let (code, _, err) = run(&["status", "--home", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not a member home") && err.contains("caihong init"),
        "{err}"
    );
    assert_eq!(err.matches("no-such-home").count(), 1, "{err}");
    // A second node on a home whose node runs is refused in words, not RocksDB's.
    let (code, _, err) = run(&["start", "--home", a.members[0].home.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already running"), "{err}");
    // And without any node named, the usage error says how to name one.
    let (code, _, err) = run(&["query", "members"]);
    assert_eq!(code, 2);
    assert!(err.contains("--node"), "{err}");
}

fn national_header() -> String {
    "行政相对人名称,行政相对人类别,行政相对人代码_1（统一社会信用代码）,行政相对人代码_2(工商注册号),行政相对人代码_3(组织机构代码),行政相对人代码_4(税务登记号),行政相对人代码_5(事业单位证书号),行政相对人代码_6(社会组织登记证号),法定代表人,法定代表人证件类型,法定代表人证件号码,证件类型,证件号码,行政处罚决定书文号,违法行为类型,违法事实,处罚依据,处罚类别,处罚内容,罚款金额（万元）,没收违法所得、没收非法财物的金额（万元）,暂扣或吊销证照名称及编号,处罚决定日期,处罚有效期,公示截止期,处罚机关,处罚机关统一社会信用代码,数据来源单位,数据来源单位统一社会信用代码,备注".to_string()
}

/// `caihong bench` on a small alliance for a few seconds: it commits, and its figures are
/// real (each read while the node processes exist; rss_mb was 0 when read after they ended).
#[test]
fn a_short_bench_reports_every_figure() {
    let base = harness::free_ports(4);
    let (code, out, err) = run(&[
        "bench",
        "--members",
        "2",
        "--rate",
        "200",
        "--warmup",
        "1",
        "--duration",
        "3",
        "--signers",
        "4",
        "--clients",
        "2",
        "--base-port",
        &base.to_string(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let last = out.lines().last().unwrap_or_default();
    let figure = |name: &str| -> f64 {
        let field = last
            .split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {last:?}"));
        field.parse().unwrap()
    };
    for name in ["tps", "p50_ms", "cpu_pct", "rss_mb"] {
        assert!(figure(name) > 0.0, "{name} in {last:?}");
    }
}

/// The README's "A day at the terminal" block, as a script for an alliance whose ports start at
/// `base` and whose directory is `dir`: the README's ports (26600 + k) and directory are the
/// only things changed.
fn readme_walkthrough(base: u16, dir: &std::path::Path) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let marker = "<!-- tests/operator.rs runs the next block";
    let after = &readme[readme.find(marker).expect("the walkthrough marker")..];
    let start = after.find("```sh\n").expect("the walkthrough block") + "```sh\n".len();
    let block = &after[start..start + after[start..].find("```").expect("the block's end")];
    let mut script = block.replace("/tmp/caihong-local", dir.to_str().unwrap());
    for k in (0..20).rev() {
        script = script.replace(&format!("266{k:02}"), &(base + k).to_string());
    }
    script
}

/// Every command of the README's walkthrough works as written, in order, on a fresh alliance
/// that ran the demo (what `network-config/run-local.sh` leaves running): the script stops at
/// the first command that fails. Then its outputs say what the README says they do, and the
/// added city becomes a validator.
#[test]
fn the_readme_walkthrough_runs_as_written() {
    // Four members use base..base+7; the README's new city takes base+10 and base+11.
    let base = harness::free_ports(12);
    let mut a = Alliance::create_tls_on(4, base);
    // As `caihong testnet` writes it: an idle chain waits for transactions, and each step
    // below still sees its write at once (its block is made when the transaction arrives).
    a.empty_block_interval_ms = None;
    for i in 0..4 {
        a.start(i);
    }
    for i in 0..4 {
        a.wait_height(i, 1, std::time::Duration::from_secs(60));
    }
    let dir = a.dir.path().join("net");
    let ca = dir.join("ca.pem");
    let output = harness::caihong()
        .args(["demo", "--dir", dir.to_str().unwrap()])
        .env("CAIHONG_CA_CERT", &ca)
        .output()
        .expect("caihong runs");
    let (out, err) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "caihong demo failed:\n{out}\n{err}"
    );

    let body = readme_walkthrough(base, &dir);
    // Background jobs (the new city's node) end with the script, whatever happens.
    let script = format!(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\nset -x\n{body}\n\
         for i in $(seq 120); do\n\
           caihong status --home $H/lanzhou --json | grep -q '\"validator\": true' && exit 0\n\
           sleep 0.5\n\
         done\n\
         echo 'lanzhou did not become a validator within 60 s' >&2; exit 1\n"
    );
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CAIHONG_SESSION", a.dir.path().join("session.json"))
        .output()
        .expect("bash runs");
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walkthrough stopped ({:?}):\n{out}\n{err}\n{}",
        output.status,
        a.every_log_tail()
    );
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .map(|l| l[key.len()..].trim().to_string())
    };
    assert_eq!(line("barred").as_deref(), Some("true"), "{out}");
    // The repaired record, read last: kept, no longer published.
    // (An unpublished extraction also prints `published  -`: skip those.)
    let last_published = out
        .lines()
        .rev()
        .find(|l| l.starts_with("published ") && !l.ends_with(" -"));
    assert_eq!(
        last_published.map(|l| l["published".len()..].trim()),
        Some("false"),
        "{out}"
    );
    assert_eq!(line("recognized").as_deref(), Some("true"), "{out}");
    assert!(
        out.contains("exit 1: alliance-wide, every member must recognize the issuer"),
        "{out}"
    );
    assert_eq!(
        line("rederivation.verified").as_deref(),
        Some("true"),
        "{out}"
    );
    // Which view each member's query showed: sealed on a member with no seat, the whole
    // committee on the requester's node, published after the award.
    for shown in [
        "shown: sealed view",
        "shown: requester view",
        "shown: published view",
    ] {
        assert!(out.contains(shown), "{shown}:\n{out}");
    }
    assert!(out.contains("(20,000.00 元)"), "{out}");
    assert!(
        out.contains("行政处罚.csv:3: credit record (信用记录)"),
        "{out}"
    );
    assert!(
        out.contains("passed; takes effect at height"),
        "the second vote passes the proposal:\n{out}"
    );
    let synced = std::fs::read_to_string(dir.join("credit.jsonl")).expect("credit.jsonl");
    assert!(synced.lines().count() >= 4, "{synced}");
    // The other region's sync went over HTTPS with its own token, and is in the audit log.
    let audit = std::fs::read_to_string(dir.join("hohhot/audit/api.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"client\":\"xian-credit\"") && l.contains("\"status\":200")),
        "{audit}"
    );

    // A member id that is no member is a usage error naming the members, not an empty sync;
    // the member admitted by the walkthrough is one.
    let sync_of = |member: &str| {
        let out = a.dir.path().join(format!("{member}.jsonl"));
        run(&[
            "sync",
            "credit",
            "--from",
            a.api(0),
            "--genesis",
            dir.join("hohhot/genesis.json").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--member",
            member,
            "--ca-cert",
            ca.to_str().unwrap(),
        ])
    };
    let (code, _, err) = sync_of("xian");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--member xian: no such member") && err.contains("lanzhou"),
        "{err}"
    );
    let (code, _, err) = sync_of("ordos");
    assert_eq!(code, 0, "{err}");

    console_in_a_browser(&a, &dir);
}

/// The web console of the alliance the walkthrough leaves, in headless Chromium through its
/// WebDriver (`tests/console_browser.py`, Debian's python3-selenium): every page opened and
/// checked, links followed, a subject found by a fragment of its Chinese name, certificates
/// uploaded, a credit record's proof verified, accessibility basics checked; a screenshot of
/// each page under `$CARGO_TARGET_TMPDIR/console-screenshots`.
fn console_in_a_browser(a: &Alliance, dir: &std::path::Path) {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&out);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/console_browser.py");
    let everyone = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../chaincode/tests/fixtures/certs/sm2-bidder.der"
    );
    let output = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .args(["--url", a.api(0), "--out", out.to_str().unwrap()])
        // Five members: the walkthrough admitted lanzhou, whose node stopped with the script.
        .args(["--members", "5", "--peers", "3", "--name-fragment", "包头"])
        // The demo's SM2 bidder: every member but lanzhou, which joined after the demo.
        .args(["--certificate", everyone, "baotou,hohhot,ordos,yinchuan"])
        // The walkthrough's: registered by baotou, recognized by yinchuan.
        .arg("--certificate")
        .arg(dir.join("examples/bidder.pem"))
        .arg("baotou,yinchuan")
        .output()
        .expect(
            "/usr/bin/python3 runs (tests/setup.sh installs chromium, chromium-driver and \
             python3-selenium)",
        );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "the console failed in the browser ({:?}); screenshots in {}:\n{stdout}\n{stderr}\n{}",
        output.status,
        out.display(),
        a.log_tail(0)
    );
    println!("{stdout}");
    let shots = std::fs::read_dir(&out).unwrap().count();
    assert!(shots >= 20, "{shots} screenshots in {}", out.display());
}
