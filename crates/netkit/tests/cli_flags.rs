//! One name for one idea: every command's `--help` is walked, and a flag
//! spelled another way than netkit's chosen spelling for its idea fails.
//! Commands that mirror a classic tool keep that tool's letters: `web get`
//! and `curl` (curl), `capture` (tcpdump), `ping` (iputils).

#[path = "cli/support.rs"]
mod support;

use support::*;

/// Each idea, its spelling, and the spellings it must not have.
const IDEAS: &[(&str, &str, &[&str])] = &[
    (
        "a TLS certificate file",
        "--tls-cert",
        &["--cert", "--certificate", "--tls-certificate", "--ssl-cert"],
    ),
    (
        "its private key",
        "--tls-key",
        &["--key", "--private-key", "--tls-private-key", "--ssl-key"],
    ),
    (
        "a throwaway certificate",
        "--self-signed",
        &["--selfsigned", "--self-sign", "--generate-cert", "--adhoc"],
    ),
    (
        "the address a server listens on",
        "--bind",
        &[
            "--listen",
            "--addr",
            "--address",
            "--host",
            "--interface-address",
        ],
    ),
    (
        "how long to wait",
        "--timeout",
        &["--wait", "--time-out", "--timeout-ms", "--wait-time"],
    ),
    (
        "less output",
        "--quiet",
        &["--silent", "--no-output", "--mute"],
    ),
    (
        "more output",
        "--verbose",
        &["--debug", "--trace", "--loud"],
    ),
    (
        "the access log file",
        "--access-log",
        &["--log", "--log-file", "--logfile", "--request-log"],
    ),
    (
        "how log lines are written",
        "--log-format",
        &["--log-style", "--format", "--log-json"],
    ),
    (
        "JSON output",
        "--json",
        &["--json-out", "--output-json", "--as-json", "--jsonl"],
    ),
    ("how many", "--count", &["--num", "--number", "--times"]),
];

/// The classic tools' own names, kept where netkit mirrors them.
fn mirrors_a_tool(help: &Help) -> bool {
    help.is("web get") || help.is("curl") || help.is("capture") || help.is("ping")
}

#[test]
fn one_idea_one_spelling() {
    let commands = every_command();
    assert!(commands.len() > 20, "the walk found {}", commands.len());
    let mut wrong = Vec::new();
    for help in &commands {
        for (idea, spelling, others) in IDEAS {
            for other in *others {
                let allowed = mirrors_a_tool(help) && *other == "--silent";
                if help.has_long(other) && !allowed {
                    wrong.push(format!(
                        "{}: {other} for {idea} (netkit says {spelling})",
                        help.name()
                    ));
                }
            }
        }
        for flag in &help.flags {
            // -v is always --verbose and -q always --quiet, both ways.
            for (short, long) in [('v', "--verbose"), ('q', "--quiet")] {
                if flag.short == Some(short) && flag.long.as_deref().is_some_and(|l| l != long) {
                    wrong.push(format!("{}: -{short} is not {long}", help.name()));
                }
                if flag.long.as_deref() == Some(long) && flag.short.is_some_and(|s| s != short) {
                    wrong.push(format!("{}: {long} is not -{short}", help.name()));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every server (a command with `--grace`) takes the same server flags,
/// and each TLS server the same TLS flags.
#[test]
fn servers_share_their_flags() {
    let servers: Vec<Help> = every_command()
        .into_iter()
        .filter(|help| help.has_long("--grace"))
        .collect();
    let names: Vec<String> = servers.iter().map(Help::name).collect();
    assert_eq!(
        names,
        [
            "netkit chat serve",
            "netkit mail sink",
            "netkit proxy serve",
            "netkit udping serve",
            "netkit upper serve",
            "netkit web serve"
        ]
    );
    for server in &servers {
        for flag in ["--bind", "--log-format"] {
            assert!(server.has_long(flag), "{} has no {flag}", server.name());
        }
        if server.has_long("--tls-cert") {
            assert!(server.has_long("--tls-key"), "{}", server.name());
            // The sink's STARTTLS is self-signed unless given a certificate,
            // so its --self-signed is the web inbox's (--web-self-signed).
            if !server.is("mail sink") {
                assert!(server.has_long("--self-signed"), "{}", server.name());
            }
        }
    }
    let tls: Vec<String> = servers
        .iter()
        .filter(|s| s.has_long("--tls-cert"))
        .map(Help::name)
        .collect();
    assert_eq!(
        tls,
        ["netkit chat serve", "netkit mail sink", "netkit web serve"]
    );
}

/// The clients that print JSON, and the one whose flag is not `--json`
/// (curl's `--json` sends a JSON body).
#[test]
fn clients_print_json() {
    let commands = every_command();
    for path in [
        "upper send",
        "ping",
        "proxy purge",
        "udping ping",
        "udping heartbeat",
        "mail send",
        "chat join",
        "capture",
        "demo",
    ] {
        let help = commands.iter().find(|h| h.is(path)).unwrap();
        assert!(help.has_long("--json"), "netkit {path} has no --json");
    }
    for path in ["web get", "curl"] {
        let help = commands.iter().find(|h| h.is(path)).unwrap();
        assert!(help.has_long("--json-output"), "netkit {path}");
        assert!(help.has_long("--json"), "curl's --json body: netkit {path}");
    }
}

/// The old spellings still work, hidden from `--help`.
#[test]
fn old_spellings_are_hidden_aliases() {
    run_ok(&[
        "mail", "sink", "--cert", "c.pem", "--key", "k.pem", "--help",
    ]);
    run_ok(&["web", "serve", "--log", "access.log", "--help"]);
    let help = text(&run_ok(&["mail", "sink", "--help"]).stdout);
    assert!(!help.contains("--cert "), "{help}");
}
