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
