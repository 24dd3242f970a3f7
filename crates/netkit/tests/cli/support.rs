//! What the cli_* tests share: running netkit, and the check that JSON
//! output follows the one documented style.

#![allow(dead_code)]

use std::process::{Command, Output};

pub fn netkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netkit"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs netkit and returns its output, asserting it exited 0.
pub fn run_ok(args: &[&str]) -> Output {
    let out = netkit().args(args).output().expect("netkit runs");
    assert!(
        out.status.success(),
        "netkit {args:?} failed: {:?}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// netkit's JSON style, checked by Python's json module: every line one
/// object; keys snake_case; `time`, `timestamp` and `*_time` values RFC 3339
/// strings; `*_ms` values floats (or null, or objects of floats). Prints the
/// objects back as a JSON array, which is returned parsed.
const STYLE: &str = r#"
import json, re, sys
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
KEY = re.compile(r"^[a-z][a-z0-9_]*$")
free = set(sys.argv[1:])

def check(value, where):
    if isinstance(value, list):
        for i, item in enumerate(value):
            check(item, f"{where}[{i}]")
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        at = f"{where}.{key}"
        assert KEY.match(key), f"{at}: key is not snake_case"
        if key in ("time", "timestamp") or key.endswith("_time"):
            assert item is None or (isinstance(item, str) and RFC3339.match(item)), f"{at}: {item!r} is not RFC 3339"
        if key.endswith("_ms"):
            numbers = item.values() if isinstance(item, dict) else [item]
            for number in numbers:
                assert number is None or isinstance(number, float), f"{at}: {number!r} is not float milliseconds"
        if key not in free:
            check(item, at)

objects = []
for n, line in enumerate(sys.stdin.read().splitlines(), 1):
    if not line.strip():
        continue
    value = json.loads(line)
    assert isinstance(value, dict), f"line {n} is not an object: {line}"
    check(value, f"line {n}")
    objects.append(value)
assert objects, "no JSON at all"
print(json.dumps(objects))
"#;

/// Checks `output` (JSON lines) against the style and returns the objects.
/// Keys in `free` hold maps whose keys come from elsewhere (HTTP header
/// names), which are not checked.
pub fn json_lines(output: &str, free: &[&str]) -> Vec<serde_json::Value> {
    let out = testkit::python(STYLE, free, output.as_bytes());
    assert!(
        out.status.success(),
        "JSON style check failed: {}\non:\n{output}",
        text(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).expect("the checker prints JSON") {
        serde_json::Value::Array(objects) => objects,
        other => panic!("not an array: {other}"),
    }
}

/// One flag as `--help` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub short: Option<char>,
    pub long: Option<String>,
}

/// One command's listing in `--help`: the words after `netkit`, its
/// subcommands and its flags.
#[derive(Debug, Clone)]
pub struct Help {
    pub path: Vec<String>,
    pub subcommands: Vec<String>,
    pub flags: Vec<Flag>,
}

impl Help {
    pub fn name(&self) -> String {
        format!("netkit {}", self.path.join(" "))
            .trim_end()
            .to_owned()
    }

    pub fn has_long(&self, long: &str) -> bool {
        self.flags.iter().any(|f| f.long.as_deref() == Some(long))
    }

    pub fn is(&self, path: &str) -> bool {
        self.path.join(" ") == path
    }
}

/// Every command of netkit, found by walking `--help` from the top.
pub fn every_command() -> Vec<Help> {
    let mut found = Vec::new();
    let mut queue = vec![Vec::<String>::new()];
    while let Some(path) = queue.pop() {
        let out = run_ok(
            &path
                .iter()
                .map(String::as_str)
                .chain(["--help"])
                .collect::<Vec<_>>(),
        );
        let help = parse_help(path, &text(&out.stdout));
        for sub in &help.subcommands {
            let mut next = help.path.clone();
            next.push(sub.clone());
            queue.push(next);
        }
        found.push(help);
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

fn parse_help(path: Vec<String>, help: &str) -> Help {
    let mut subcommands = Vec::new();
    let mut flags = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line == "Commands:" {
            in_commands = true;
            continue;
        }
        if in_commands {
            match line
                .strip_prefix("  ")
                .and_then(|l| l.split_whitespace().next())
            {
                Some(name) if !line.starts_with("   ") => {
                    if name != "help" {
                        subcommands.push(name.to_owned());
                    }
                }
                Some(_) => {}
                None => in_commands = false,
            }
            continue;
        }
        // Flags start at column 2 (`-x, --long`, `-x`) or 6 (`--long`);
        // wrapped descriptions are indented further.
        if let Some(rest) = line.strip_prefix("      --") {
            flags.push(Flag {
                short: None,
                long: Some(long_name(rest)),
            });
        } else if let Some(rest) = line.strip_prefix("  -") {
            let mut chars = rest.chars();
            let Some(short) = chars.next().filter(|c| *c != '-') else {
                continue;
            };
            let rest = chars.as_str();
            flags.push(Flag {
                short: Some(short),
                long: rest.strip_prefix(", --").map(long_name),
            });
        }
    }
    Help {
        path,
        subcommands,
        flags,
    }
}

fn long_name(rest: &str) -> String {
    let end = rest.find([' ', '<', '[']).unwrap_or(rest.len());
    format!("--{}", rest[..end].trim_end_matches("..."))
}
