//! docs/CLI.md is generated from the clap definitions: this test renders the
//! help of every command and fails when the file is stale.
//! Regenerate with `UPDATE_DOCS=1 cargo test -p caihong-cli --test cli_docs`.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_caihong"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run caihong");
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8(out.stdout).expect("utf-8 help")
}

/// Subcommand paths, found by reading the "Commands:" section of each help.
fn commands(prefix: &[String]) -> Vec<Vec<String>> {
    let args: Vec<&str> = prefix.iter().map(|s| s.as_str()).collect();
    let text = help(&args);
    let mut found = Vec::new();
    let mut in_commands = false;
    for line in text.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                break;
            }
            let name = line.split_whitespace().next().unwrap_or("");
            if !name.is_empty() && name != "help" {
                let mut path = prefix.to_vec();
                path.push(name.to_string());
                found.push(path.clone());
                found.extend(commands(&path));
            }
        }
    }
    found
}

fn render() -> String {
    let mut doc = String::from(
        "# The `caihong` command line\n\nGenerated from the clap definitions by `cli/tests/cli_docs.rs`; \
         regenerate with `UPDATE_DOCS=1 cargo test -p caihong-cli --test cli_docs`.\n\n\
         Exit codes: 0 success, 1 rejected (an invalid code, a chain rejection), 2 usage or local error.\n\n## caihong\n\n```text\n",
    );
    doc.push_str(&help(&[]));
    doc.push_str("```\n");
    for path in commands(&[]) {
        let args: Vec<&str> = path.iter().map(|s| s.as_str()).collect();
        doc.push_str(&format!("\n## caihong {}\n\n```text\n", path.join(" ")));
        doc.push_str(&help(&args));
        doc.push_str("```\n");
    }
    doc
}

#[test]
fn cli_md_matches_the_clap_definitions() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CLI.md");
    let fresh = render();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path, &fresh).unwrap();
        return;
    }
    let current = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        current == fresh,
        "docs/CLI.md is stale: run UPDATE_DOCS=1 cargo test -p caihong-cli --test cli_docs"
    );
}

/// `caihong completions SHELL` prints a completion script that knows the subcommands.
#[test]
fn completions_know_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_caihong"))
            .args(["completions", shell])
            .output()
            .expect("run caihong");
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).expect("utf-8 script");
        for command in ["import", "sync", "query", "timeout"] {
            assert!(
                script.contains(command),
                "{shell} completion lacks {command}"
            );
        }
    }
}
