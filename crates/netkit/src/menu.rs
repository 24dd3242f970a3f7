//! `netkit` with no arguments on a terminal: a menu that asks which system
//! and verb to run and the few things that verb needs (each with a
//! default), runs it as the same `netkit` command typed by hand would, and
//! comes back for the next one until the user quits.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Context;
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, Select};
use tokio::signal::unix::{SignalKind, signal};

/// What the menu offers, in the order `netkit --help` lists the systems.
const VERBS: &[Verb] = &[
    Verb {
        path: &["upper", "send"],
        questions: &[
            Question::value("Server (HOST:PORT)", Arg::Positional, "127.0.0.1:12000"),
            Question::value("Text to send", Arg::Positional, "hello, world"),
        ],
    },
    Verb {
        path: &["upper", "serve"],
        questions: &[Question::value(
            "Address (TCP and UDP)",
            Arg::Flag("--bind"),
            "127.0.0.1:12000",
        )],
    },
    Verb {
        path: &["ping"],
        questions: &[
            Question::value("Host", Arg::Positional, "127.0.0.1"),
            Question::value("Probes", Arg::Flag("-c"), "3"),
        ],
    },
    Verb {
        path: &["proxy", "serve"],
        questions: &[Question::value(
            "Address",
            Arg::Flag("--bind"),
            "127.0.0.1:8888",
        )],
    },
    Verb {
        path: &["proxy", "purge"],
        questions: &[Question::value(
            "URL to remove from the cache",
            Arg::Positional,
            "http://127.0.0.1:8080/",
        )],
    },
    Verb {
        path: &["udping", "ping"],
        questions: &[
            Question::value("Server (HOST:PORT)", Arg::Positional, "127.0.0.1:12000"),
            Question::value("Probes", Arg::Flag("-c"), "10"),
        ],
    },
    Verb {
        path: &["udping", "serve"],
        questions: &[
            Question::value("Address", Arg::Flag("--bind"), "127.0.0.1:12000"),
            Question::value("Share of replies to drop (0-1)", Arg::Flag("--loss"), "0"),
        ],
    },
    Verb {
        path: &["udping", "heartbeat"],
        questions: &[
            Question::value("Server (HOST:PORT)", Arg::Positional, "127.0.0.1:12000"),
            Question::value("Heartbeats (0: until Ctrl-C)", Arg::Flag("-c"), "5"),
        ],
    },
    Verb {
        path: &["mail", "send"],
        questions: &[
            Question::value("SMTP server", Arg::Flag("--server"), "127.0.0.1:2525"),
            Question::value("From", Arg::Flag("--from"), "me@example.org"),
            Question::value("To", Arg::Flag("--to"), "you@example.org"),
            Question::value("Subject", Arg::Flag("--subject"), "Hello"),
            Question::value("Body", Arg::Flag("--body"), "Hello from netkit."),
            Question::yes(
                "Accept any TLS certificate (a test server such as mail sink)?",
                "--insecure",
                true,
            ),
        ],
    },
    Verb {
        path: &["mail", "sink"],
        questions: &[
            Question::value("Address", Arg::Flag("--bind"), "127.0.0.1:2525"),
            Question::value("Maildir", Arg::Flag("--maildir"), "maildir"),
        ],
    },
    Verb {
        path: &["web", "get"],
        questions: &[
            Question::value("URL", Arg::Positional, "http://127.0.0.1:8080/"),
            Question::yes("Show the response's status and headers?", "-i", false),
        ],
    },
    Verb {
        path: &["web", "serve"],
        questions: &[
            Question::value("Directory (empty: the built-in site)", Arg::Positional, ""),
            Question::value("Address", Arg::Flag("--bind"), "127.0.0.1:8080"),
        ],
    },
    Verb {
        path: &["chat", "join"],
        questions: &[
            Question::value(
                "Server (HOST:PORT)",
                Arg::Flag("--server"),
                "127.0.0.1:5000",
            ),
            Question::value("Your user name", Arg::Flag("--user"), "alice"),
            Question::yes("Create the account first?", "--register", false),
        ],
    },
    Verb {
        path: &["chat", "serve"],
        questions: &[
            Question::value("Address", Arg::Flag("--bind"), "127.0.0.1:5000"),
            Question::value("Accounts database", Arg::Flag("--db"), "chat.sqlite3"),
        ],
    },
    Verb {
        path: &["chat", "users"],
        questions: &[Question::value(
            "Accounts database",
            Arg::Flag("--db"),
            "chat.sqlite3",
        )],
    },
    Verb {
        path: &["capture"],
        questions: &[
            Question::value("Interface", Arg::Flag("-i"), "lo"),
            Question::value("Packets", Arg::Flag("-c"), "10"),
            Question::value("Filter (tcpdump's words)", Arg::Words, "tcp or udp"),
        ],
    },
    Verb {
        path: &["demo"],
        questions: &[],
    },
];

const QUIT: &str = "quit";

#[derive(Debug)]
struct Verb {
    /// The words after `netkit`.
    path: &'static [&'static str],
    questions: &'static [Question],
}

#[derive(Debug)]
enum Question {
    /// A value, with its default; an empty answer leaves the argument out.
    Value {
        prompt: &'static str,
        arg: Arg,
        default: &'static str,
    },
    /// A yes/no question that adds a flag when answered yes.
    Yes {
        prompt: &'static str,
        flag: &'static str,
        default: bool,
    },
}

impl Question {
    const fn value(prompt: &'static str, arg: Arg, default: &'static str) -> Self {
        Question::Value {
            prompt,
            arg,
            default,
        }
    }

    const fn yes(prompt: &'static str, flag: &'static str, default: bool) -> Self {
        Question::Yes {
            prompt,
            flag,
            default,
        }
    }
}

/// Where an answer goes on the command line.
#[derive(Debug, Clone, Copy)]
enum Arg {
    Positional,
    Flag(&'static str),
    /// Several arguments, split at spaces (a filter's words).
    Words,
}

/// Runs the menu until the user picks `quit` (or presses Esc, or Ctrl-C).
/// `command` is netkit's command line, for each verb's description.
pub fn run(command: &clap::Command) -> anyhow::Result<ExitCode> {
    match choose_and_run(command) {
        Err(err) if is_interrupt(&err) => Ok(ExitCode::from(130)),
        done => done,
    }
}

/// Ctrl-C at a prompt, once a command has run (and so SIGINT is handled).
fn is_interrupt(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<dialoguer::Error>(),
        Some(dialoguer::Error::IO(io)) if io.kind() == std::io::ErrorKind::Interrupted
    )
}

fn choose_and_run(command: &clap::Command) -> anyhow::Result<ExitCode> {
    let theme = ColorfulTheme::default();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    println!(
        "netkit: choose what to run (Esc or `{QUIT}` to leave; `netkit --help` for the commands)"
    );
    loop {
        let mut systems: Vec<&str> = Vec::new();
        for verb in VERBS {
            if !systems.contains(&verb.path[0]) {
                systems.push(verb.path[0]);
            }
        }
        let mut items: Vec<String> = systems
            .iter()
            .map(|system| format!("{system:<8} {}", about(command, &[system])))
            .collect();
        items.push(QUIT.to_owned());
        let Some(chosen) = Select::with_theme(&theme)
            .with_prompt("System")
            .items(&items)
            .default(0)
            .interact_opt()?
        else {
            return Ok(ExitCode::SUCCESS);
        };
        let Some(system) = systems.get(chosen) else {
            return Ok(ExitCode::SUCCESS);
        };
        let verbs: Vec<&Verb> = VERBS
            .iter()
            .filter(|verb| verb.path[0] == *system)
            .collect();
        let verb = if verbs.len() == 1 {
            verbs[0]
        } else {
            let mut items: Vec<String> = verbs
                .iter()
                .map(|verb| format!("{:<10} {}", verb.path[1], about(command, verb.path)))
                .collect();
            items.push("back".to_owned());
            let Some(chosen) = Select::with_theme(&theme)
                .with_prompt(format!("netkit {system}"))
                .items(&items)
                .default(0)
                .interact_opt()?
            else {
                continue;
            };
            match verbs.get(chosen) {
                Some(verb) => *verb,
                None => continue,
            }
        };
        let args = ask(&theme, verb)?;
        println!(
            "$ netkit {}",
            args.iter()
                .map(|arg| quoted(&arg.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let status = runtime.block_on(execute(&args))?;
        println!("netkit: {status}; back to the menu");
    }
}

/// The words after `netkit` for `verb`, from the user's answers.
fn ask(theme: &ColorfulTheme, verb: &Verb) -> anyhow::Result<Vec<OsString>> {
    let mut args: Vec<OsString> = verb.path.iter().map(OsString::from).collect();
    let mut words = Vec::new();
    for question in verb.questions {
        match *question {
            Question::Value {
                prompt,
                arg,
                default,
            } => {
                let answer: String = Input::with_theme(theme)
                    .with_prompt(prompt)
                    .default(default.to_owned())
                    .allow_empty(true)
                    .interact_text()?;
                let answer = answer.trim();
                if answer.is_empty() {
                    continue;
                }
                match arg {
                    Arg::Positional => args.push(answer.into()),
                    Arg::Flag(flag) => args.extend([flag.into(), answer.into()]),
                    Arg::Words => words.extend(answer.split_whitespace().map(OsString::from)),
                }
            }
            Question::Yes {
                prompt,
                flag,
                default,
            } => {
                if Confirm::with_theme(theme)
                    .with_prompt(prompt)
                    .default(default)
                    .interact()?
                {
                    args.push(flag.into());
                }
            }
        }
    }
    // Positional words last, after every flag.
    args.extend(words);
    Ok(args)
}

/// Runs `netkit ARGS` on this terminal. Ctrl-C reaches it (it is in the
/// terminal's foreground group with us) and ends it, a server included,
/// while the menu carries on.
async fn execute(args: &[OsString]) -> anyhow::Result<std::process::ExitStatus> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let program = std::env::current_exe().context("cannot find the netkit executable")?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .spawn()
        .context("cannot start netkit")?;
    loop {
        tokio::select! {
            status = child.wait() => return Ok(status?),
            _ = interrupt.recv() => {}
        }
    }
}

/// A command's description as `netkit --help` gives it.
fn about(command: &clap::Command, path: &[&str]) -> String {
    let mut found = command;
    for name in path {
        match found.find_subcommand(name) {
            Some(sub) => found = sub,
            None => return String::new(),
        }
    }
    // Without the example in brackets that `netkit --help` adds.
    let about = found
        .get_about()
        .map(|about| about.to_string())
        .unwrap_or_default();
    match about.split_once(" (netkit") {
        Some((about, _)) => about.to_owned(),
        None => about,
    }
}

/// An argument as a shell would need it typed.
fn quoted(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@=,+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::{VERBS, quoted};
    use clap::CommandFactory;

    /// Every verb the menu offers exists, so the menu cannot drift from the
    /// command line.
    #[test]
    fn verbs_exist() {
        let command = crate::cli::Cli::command();
        for verb in VERBS {
            let mut found = &command;
            for name in verb.path {
                found = found
                    .find_subcommand(name)
                    .unwrap_or_else(|| panic!("no `netkit {}`", verb.path.join(" ")));
            }
        }
    }

    #[test]
    fn arguments_are_shown_as_typed() {
        assert_eq!(quoted("127.0.0.1:12000"), "127.0.0.1:12000");
        assert_eq!(quoted("hello, world"), "'hello, world'");
        assert_eq!(quoted("it's"), r"'it'\''s'");
    }
}
