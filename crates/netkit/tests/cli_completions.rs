//! `netkit completions SHELL` driven in a real bash: the script is sourced
//! and its completion function called as bash calls it on <TAB>.

#[path = "cli/support.rs"]
mod support;

use std::process::Command;

use support::*;

/// The words bash would offer after `netkit WORDS...` with the cursor at the
/// end of the last word.
fn complete(words: &[&str]) -> Vec<String> {
    let script = text(&run_ok(&["completions", "bash"]).stdout);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("netkit.bash");
    std::fs::write(&file, script).unwrap();
    let quoted: Vec<String> = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect();
    let driver = format!(
        r#"set -e
source "$1"
function=$(complete -p netkit | sed -E 's/.* -F ([^ ]+) .*/\1/')
COMP_WORDS=(netkit {words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
"$function" netkit "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        words = quoted.join(" ")
    );
    let out = Command::new("bash")
        .args(["-c", &driver, "driver"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_systems_verbs_and_flags() {
    if !testkit::require("bash") {
        return;
    }
    assert_eq!(complete(&["we"]), ["web"]);
    let verbs = complete(&["web", ""]);
    for verb in ["serve", "get"] {
        assert!(verbs.contains(&verb.to_owned()), "{verbs:?}");
    }
    assert!(!verbs.contains(&"send".to_owned()), "{verbs:?}");
    assert_eq!(complete(&["mail", "sink", "--tls-c"]), ["--tls-cert"]);
    let shells = complete(&["completions", ""]);
    for shell in ["bash", "zsh", "fish", "powershell"] {
        assert!(shells.contains(&shell.to_owned()), "{shells:?}");
    }
}

#[test]
fn every_shell_gets_a_script_naming_the_commands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = text(&run_ok(&["completions", shell]).stdout);
        for word in ["netkit", "web", "heartbeat", "--tls-cert"] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
    let out = netkit().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
