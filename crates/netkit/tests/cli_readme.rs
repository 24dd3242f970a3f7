//! README's examples against the binary: the first shell block is the two
//! commands CI runs, no example reaches outside the machine, and every
//! `netkit` command line in a code block names a real command and real
//! flags of it.

#[path = "cli/support.rs"]
mod support;

use support::*;

const README: &str = include_str!("../../../README.md");

/// The code blocks' lines (```sh and ```bash), continuation lines joined.
fn code_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    let mut pending = String::new();
    for line in README.lines() {
        if line.starts_with("```") {
            inside = line == "```sh" || line == "```bash";
            continue;
        }
        if !inside {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    lines
}

fn first_block() -> Vec<&'static str> {
    README
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README has a ```sh block")
        .lines()
        .collect()
}

#[test]
fn the_first_block_is_the_demo_and_the_tests() {
    assert_eq!(
        first_block(),
        [
            "cargo run --release -- demo",
            "cargo nextest run --workspace --locked"
        ]
    );
    let install = README.find("## Install").unwrap();
    assert!(
        install < README.find("```sh").unwrap(),
        "Install comes first"
    );
}

#[test]
fn no_example_leaves_the_machine() {
    let local = ["127.0.0.1", "localhost", "[::1]", "netkit.proxy", "$h"];
    for line in code_lines() {
        for (at, _) in line.match_indices("://") {
            let mut rest = &line[at + 3..];
            // A user before the host (`postgres://chat@127.0.0.1`) is skipped.
            if let Some(user) = rest
                .find('@')
                .filter(|&end| !rest[..end].contains(['/', ' ']))
            {
                rest = &rest[user + 1..];
            }
            let host: String = rest
                .chars()
                .take_while(|c| !matches!(c, '/' | ':' | ' ' | '"' | '\'' | ')'))
                .collect();
            let host = if host.starts_with('[') {
                rest.split(']').next().unwrap().to_owned() + "]"
            } else {
                host
            };
            // `.example` names (RFC 2606) are never reached: CORS origins.
            assert!(
                local.contains(&host.as_str()) || host.is_empty() || host.ends_with(".example"),
                "{host} is not on this machine: {line}"
            );
        }
        for outside in ["example.com", "httpbin.org"] {
            assert!(!line.contains(outside), "{line}");
        }
    }
}

#[test]
fn every_netkit_line_names_real_commands_and_flags() {
    let commands = every_command();
    let mut checked = 0;
    for line in code_lines() {
        let line = line.trim_start();
        if line.starts_with('#') {
            continue;
        }
        let line = line.split("  #").next().unwrap();
        let line = line.split(" # ").next().unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        for (at, word) in words.iter().enumerate() {
            if !matches!(*word, "netkit" | "netkit)") {
                continue;
            }
            let mut help = commands.iter().find(|h| h.path.is_empty()).unwrap();
            let mut rest = &words[at + 1..];
            while let Some(next) = rest.first() {
                let mut path = help.path.clone();
                path.push((*next).to_owned());
                match commands.iter().find(|h| h.path == path) {
                    Some(sub) => {
                        help = sub;
                        rest = &rest[1..];
                    }
                    None => break,
                }
            }
            for word in rest {
                if matches!(*word, "|" | "&" | ";" | "<" | ">" | "&&") {
                    break;
                }
                if word.starts_with("--") && word.len() > 2 {
                    let flag = word.split('=').next().unwrap();
                    assert!(help.has_long(flag), "{} has no {flag}: {line}", help.name());
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} netkit command lines found");
}
