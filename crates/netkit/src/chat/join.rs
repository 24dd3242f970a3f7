//! `netkit chat join`: the line interface. On a terminal, rustyline edits
//! the input line and incoming messages print above it; otherwise commands
//! are read line by line from stdin and output is plain, for scripts.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chat::client::{ClientOptions, Delivery, Event, Mode};
use chat::frame::Action;
use chat::{Client, ErrorCode, LeaveReason};
use clap::Args;
use rustyline::ExternalPrinter;
use tokio::sync::mpsc;

use super::json;
use crate::duration;

const HELP: &str = "\
* commands: text goes to the current room; @name: text sends a direct message;
*           #ls lists who is online; #quit leaves; #help shows this;
*           #join #room joins (creating) a room and makes it current;
*           #part [#room] leaves it; #room #name switches the current room;
*           #rooms lists rooms; #members [#room] lists a room's members;
*           #topic #room text sets a topic (room operators only);
*           #history [#room [ID]] shows the 50 messages before ID (or the latest);
* operators (room defaults to the current one):
*           #kick [#room] name [reason], #ban [#room] name [reason], #unban [#room] name,
*           #mute [#room] name [reason], #unmute [#room] name, #op [#room] name,
*           #deop [#room] name, #bans [#room];
* admins:   #bans (every room), #disable name, #enable name, #delete name";

/// How long `#quit` waits for the server's goodbye.
const QUIT_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The chat server, as HOST:PORT
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5000")]
    server: String,
    /// Your user name
    #[arg(long, value_name = "NAME")]
    user: String,
    /// Create the account first
    #[arg(long)]
    register: bool,
    /// Use TLS, verifying the server's certificate
    #[arg(long)]
    tls: bool,
    /// With --tls: accept any certificate (for test servers only)
    #[arg(long, requires = "tls")]
    insecure: bool,
    /// With --tls: also trust the CA certificates in this PEM file
    #[arg(long, value_name = "FILE", requires = "tls")]
    cacert: Option<PathBuf>,
    /// Show direct messages that fail verification, marked unverified
    #[arg(long)]
    show_unverified: bool,
    /// Use no UDP: direct messages go through the server both ways (still
    /// signed end to end), as a browser's do
    #[arg(long)]
    relay_only: bool,
    /// How long to wait to connect and log in
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration::parse)]
    timeout: Duration,
    /// Print each event as one JSON object a line (type, and its fields);
    /// lines are read from stdin as when it is piped
    #[arg(long)]
    json: bool,
}

pub async fn run(args: JoinArgs) -> anyhow::Result<ExitCode> {
    let interactive =
        !args.json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let password = super::password(
        &format!("Password for {}: ", args.user),
        args.register && interactive,
    )?;
    let options = ClientOptions {
        server: args.server.clone(),
        tls: args.tls.then(|| tls::ClientOptions {
            insecure: args.insecure,
            ca_file: args.cacert.clone(),
        }),
        timeout: args.timeout,
        udp: !args.relay_only,
    };
    let mode = if args.register {
        Mode::Register
    } else {
        Mode::Login
    };
    let (client, mut events) = Client::connect(&options, &args.user, password, mode)
        .await
        .map_err(|err| match err {
            chat::Error::SpeaksTls { .. } => anyhow::anyhow!("{err}: try --tls"),
            err => err.into(),
        })
        .with_context(|| format!("cannot join {}", args.server))?;

    let tls = client
        .tls()
        .map(|described| format!(", {described}"))
        .unwrap_or_default();
    // Printed before the line editor starts: it owns the terminal after.
    let admin = if client.admin() { ", an admin" } else { "" };
    Output::Plain.line(if args.json {
        json::connected(
            &client.server().to_string(),
            client.name(),
            client.names().len(),
            client.tls().map(|described| described.to_string()),
        )
        .to_string()
    } else {
        format!(
            "* connected to {} as {}{admin} ({} online{tls}); #help for commands",
            client.server(),
            client.name(),
            client.names().len()
        )
    });
    let (mut output, mut input) = if interactive { terminal()? } else { plain() };

    let mut quitting = false;
    // The named room plain text goes to; `None` is the default room.
    let mut current: Option<String> = None;
    let quit_by = tokio::time::sleep(Duration::MAX);
    tokio::pin!(quit_by);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return Ok(ExitCode::FAILURE) };
                if args.json && let Some(shown) = json::event(&event) {
                    output.line(shown.to_string());
                }
                if let Event::Closed { code, text } = event {
                    if args.json {
                        return Ok(if quitting || code == Some(ErrorCode::LoggedOut) {
                            ExitCode::SUCCESS
                        } else {
                            ExitCode::FAILURE
                        });
                    }
                    if quitting || code == Some(ErrorCode::LoggedOut) {
                        return Ok(ExitCode::SUCCESS);
                    }
                    let code = code.map(|code| format!(" ({code})")).unwrap_or_default();
                    output.line(format!("! disconnected: {}{code}", clean(&text)));
                    output.finish(&mut input).await;
                    return Ok(ExitCode::FAILURE);
                }
                match &event {
                    Event::RoomJoined { room, .. } if !room.eq_ignore_ascii_case(DEFAULT_ROOM) => {
                        current = Some(room.clone());
                    }
                    Event::RoomParted { room } if current.as_deref() == Some(room.as_str()) => {
                        current = None;
                    }
                    _ => {}
                }
                if args.json {
                    continue;
                }
                if let Some(line) = render(event, args.show_unverified) {
                    output.line(line);
                }
            }
            _ = &mut quit_by, if quitting => return Ok(ExitCode::SUCCESS),
            line = input.recv(), if !quitting => {
                let line = line.flatten();
                let command = line.as_deref().map_or(Command::Quit, Command::parse);
                if let Command::Quit = command {
                    quitting = true;
                    if client.logout().await.is_err() {
                        return Ok(ExitCode::SUCCESS);
                    }
                    // The server's `bye` ends the loop; don't wait forever.
                    quit_by.as_mut().reset(tokio::time::Instant::now() + QUIT_WAIT);
                    continue;
                }
                if let Some(reply) = execute(&client, command, &mut current).await {
                    output.line(if args.json { json::notice(&reply).to_string() } else { reply });
                }
            }
        }
    }
}

/// The server's name for the room everyone is in.
const DEFAULT_ROOM: &str = "#lobby";

enum Command<'a> {
    Say(&'a str),
    Join(&'a str),
    Part(Option<&'a str>),
    Switch(&'a str),
    Rooms,
    Members(Option<&'a str>),
    Topic {
        room: &'a str,
        text: &'a str,
    },
    History {
        room: Option<&'a str>,
        before: Option<u64>,
    },
    Direct {
        to: &'a str,
        text: &'a str,
    },
    /// A room moderation action; the room is the current one if not named.
    Moderate {
        action: Action,
        room: Option<&'a str>,
        user: &'a str,
        reason: Option<&'a str>,
    },
    Bans(Option<&'a str>),
    /// An admin's account action.
    Account {
        action: Action,
        user: &'a str,
    },
    List,
    Help,
    Quit,
    Nothing,
    Unknown(&'a str),
}

impl<'a> Command<'a> {
    fn parse(line: &'a str) -> Self {
        let trimmed = line.trim();
        match trimmed {
            "" => Command::Nothing,
            "#ls" => Command::List,
            "#quit" => Command::Quit,
            "#help" => Command::Help,
            "#rooms" => Command::Rooms,
            "#part" => Command::Part(None),
            "#members" => Command::Members(None),
            "#bans" => Command::Bans(None),
            "#history" => Command::History {
                room: None,
                before: None,
            },
            _ if trimmed.starts_with('#') => {
                let (word, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
                let rest = rest.trim();
                if let Some(command) = Self::moderation(word, rest) {
                    return command;
                }
                match (word, rest.split_once(' ')) {
                    ("#join", None) if !rest.is_empty() => Command::Join(rest),
                    ("#part", None) => Command::Part(Some(rest)),
                    ("#room", None) if !rest.is_empty() => Command::Switch(rest),
                    ("#members", None) => Command::Members(Some(rest)),
                    ("#history", None) => Command::History {
                        room: Some(rest),
                        before: None,
                    },
                    ("#history", Some((room, before))) => match before.trim().parse() {
                        Ok(before) => Command::History {
                            room: Some(room),
                            before: Some(before),
                        },
                        Err(_) => Command::Unknown(trimmed),
                    },
                    ("#topic", Some((room, text))) => Command::Topic {
                        room,
                        text: text.trim(),
                    },
                    ("#topic", None) if !rest.is_empty() => Command::Topic {
                        room: rest,
                        text: "",
                    },
                    _ => Command::Unknown(trimmed),
                }
            }
            _ => match trimmed
                .strip_prefix('@')
                .and_then(|rest| rest.split_once(':'))
            {
                Some((to, text)) => Command::Direct {
                    to: to.trim(),
                    text: text.trim_start(),
                },
                None if trimmed.starts_with('@') => Command::Unknown(trimmed),
                None => Command::Say(line),
            },
        }
    }
}

impl<'a> Command<'a> {
    /// `#kick [#room] name [reason]` and the like; `None` if `word` is not
    /// a moderation command.
    fn moderation(word: &'a str, rest: &'a str) -> Option<Self> {
        let action = match word {
            "#kick" => Action::Kick,
            "#ban" => Action::Ban,
            "#unban" => Action::Unban,
            "#mute" => Action::Mute,
            "#unmute" => Action::Unmute,
            "#op" => Action::Op,
            "#deop" => Action::Deop,
            "#disable" => Action::Disable,
            "#enable" => Action::Enable,
            "#delete" => Action::Delete,
            "#bans" if rest.starts_with('#') && !rest.contains(' ') => {
                return Some(Command::Bans(Some(rest)));
            }
            _ => return None,
        };
        let unknown = Command::Unknown(word);
        let mut words = rest.splitn(2, ' ');
        let first = words.next().filter(|w| !w.is_empty());
        let after = words.next().map(str::trim).filter(|w| !w.is_empty());
        if matches!(action, Action::Disable | Action::Enable | Action::Delete) {
            return Some(match (first, after) {
                (Some(user), None) => Command::Account { action, user },
                _ => unknown,
            });
        }
        let (room, rest) = match first {
            Some(room) if room.starts_with('#') => (Some(room), after),
            _ => (None, Some(rest).filter(|r| !r.is_empty())),
        };
        let Some(rest) = rest else {
            return Some(unknown);
        };
        let (user, reason) = match rest.split_once(' ') {
            Some((user, reason)) => (user, Some(reason.trim()).filter(|r| !r.is_empty())),
            None => (rest, None),
        };
        let takes_reason = matches!(action, Action::Kick | Action::Ban | Action::Mute);
        if reason.is_some() && !takes_reason {
            return Some(unknown);
        }
        Some(Command::Moderate {
            action,
            room,
            user,
            reason,
        })
    }
}

/// Runs a command; returns what to print, if anything.
async fn execute(
    client: &Client,
    command: Command<'_>,
    current: &mut Option<String>,
) -> Option<String> {
    let result = match command {
        Command::Nothing | Command::Quit => return None,
        Command::Help => return Some(HELP.into()),
        Command::Unknown(line) if line.starts_with('@') => {
            return Some("! to send a direct message: @name: text".into());
        }
        Command::Unknown(line) => {
            return Some(format!(
                "! unknown command {} (#help lists them)",
                clean(line)
            ));
        }
        Command::List => {
            let names = client.names();
            return Some(format!("* online ({}): {}", names.len(), names.join(", ")));
        }
        Command::Moderate {
            action,
            room,
            user,
            reason,
        } => match room.or(current.as_deref()) {
            Some(room) => client.moderate(action, room, user, reason).await,
            None => return Some(format!("! which room? #{action} #room {}", clean(user))),
        },
        Command::Bans(room) => client.request_bans(room).await,
        Command::Account { action, user } => client.moderate(action, "", user, None).await,
        Command::Say(text) => client.say(current.as_deref(), text).await,
        Command::Join(room) => client.join_room(room).await,
        Command::Part(room) => match room.or(current.as_deref()) {
            Some(room) => client.part_room(room).await,
            None => return Some("! which room? #part #room".into()),
        },
        Command::Switch(room) if room.eq_ignore_ascii_case(DEFAULT_ROOM) => {
            *current = None;
            return Some(format!("* now talking in {DEFAULT_ROOM}"));
        }
        Command::Switch(room) => {
            *current = Some(room.to_owned());
            return Some(format!("* now talking in {}", clean(room)));
        }
        Command::Rooms => client.request_rooms().await,
        Command::Members(room) => {
            let room = room.or(current.as_deref()).unwrap_or(DEFAULT_ROOM);
            client.request_members(room).await
        }
        Command::Topic { room, text } => client.set_topic(room, text).await,
        Command::History { room, before } => {
            let room = room.or(current.as_deref()).unwrap_or(DEFAULT_ROOM);
            client.request_history(room, before, None).await
        }
        Command::Direct { text: "", .. } => return Some("! nothing to send".into()),
        Command::Direct { to, text } => match client.direct(to, text).await {
            Ok(Delivery::Relayed) => {
                return Some(format!(
                    "* direct message to {} relayed through the server",
                    clean(to)
                ));
            }
            other => other.map(drop),
        },
    };
    result
        .err()
        .map(|err| format!("! {}", clean(&err.to_string())))
}

/// How an event is shown; `None` for events that only update state.
fn render(event: Event, show_unverified: bool) -> Option<String> {
    Some(match event {
        Event::Message {
            from,
            text,
            room,
            history,
            id,
            ..
        } => {
            let room = room.map_or_else(|| "room".into(), |room| clean(&room));
            let (from, text) = (clean(&from), clean(&text));
            match (history, id) {
                (true, Some(id)) => format!("[{room} history {id}] {from}: {text}"),
                _ => format!("[{room}] {from}: {text}"),
            }
        }
        Event::HistoryEnd { room, count } => {
            format!("* history of {}: {count} messages", clean(&room))
        }
        Event::Direct {
            from,
            text,
            relayed,
        } => {
            let how = if relayed { " relayed" } else { "" };
            format!("[direct{how}] {}: {}", clean(&from), clean(&text))
        }
        Event::Relayed { to } => format!(
            "* no answer over UDP from {}: direct message relayed through the server",
            clean(&to)
        ),
        Event::Unverified {
            source,
            claimed,
            text,
            why,
        } => {
            if !show_unverified {
                return None;
            }
            let claimed = claimed.map_or_else(|| "?".into(), |name| clean(&name));
            let text = text.map_or_else(String::new, |text| clean(&text));
            let source = source.map_or_else(|| "relayed".into(), |source| source.to_string());
            format!(
                "[direct] unverified {claimed} ({source}, {}): {text}",
                why.describe()
            )
        }
        Event::Joined { name, room } => format!("* {} joined{}", clean(&name), in_room(room)),
        Event::Left { name, reason, room } => {
            // In a named room, the server's kick is an operator's.
            let why = match (reason, &room) {
                (LeaveReason::Kicked, Some(_)) => "kicked",
                _ => reason.describe(),
            };
            format!("* {} left{} ({why})", clean(&name), in_room(room))
        }
        Event::RoomJoined {
            room,
            topic,
            created,
            operators,
        } => {
            let created = if created { " (created)" } else { "" };
            let operators = if operators.is_empty() {
                String::new()
            } else {
                format!("; operators: {}", clean(&operators.join(", ")))
            };
            format!(
                "* you joined {}{created}; topic: {}{operators}",
                clean(&room),
                clean(&topic)
            )
        }
        Event::RoomParted { room } => format!("* you left {}", clean(&room)),
        Event::Rooms(rooms) => {
            let mut shown = format!("* rooms ({}):", rooms.len());
            for room in rooms {
                shown.push_str(&format!(
                    "\n*   {} ({}) {}",
                    clean(&room.name),
                    room.members,
                    clean(&room.topic)
                ));
            }
            shown
        }
        Event::Members { room, names } => format!(
            "* in {} ({}): {}",
            clean(&room),
            names.len(),
            clean(&names.join(", "))
        ),
        Event::Topic { room, topic, by } => format!(
            "* {} set the topic of {}: {}",
            clean(&by),
            clean(&room),
            clean(&topic)
        ),
        Event::Moderation {
            action,
            user,
            by,
            room,
            reason,
        } => {
            let (user, by) = (clean(&user), clean(&by));
            let room = room.map_or_else(String::new, |room| clean(&room));
            let mut shown = match action {
                Action::Kick => format!("* {by} kicked {user} from {room}"),
                Action::Ban => format!("* {by} banned {user} from {room}"),
                Action::Unban => format!("* {by} lifted the ban on {user} in {room}"),
                Action::Mute => format!("* {by} muted {user} in {room}"),
                Action::Unmute => format!("* {by} unmuted {user} in {room}"),
                Action::Op => format!("* {by} made {user} an operator of {room}"),
                Action::Deop => format!("* {by} removed {user} as an operator of {room}"),
                Action::Disable => format!("* {by} disabled the account {user}"),
                Action::Enable => format!("* {by} enabled the account {user}"),
                Action::Delete => format!("* {by} deleted the account {user}"),
            };
            if let Some(reason) = reason {
                shown.push_str(&format!(": {}", clean(&reason)));
            }
            shown
        }
        Event::Bans(bans) => {
            let mut shown = format!("* bans ({}):", bans.len());
            for ban in bans {
                let reason = ban
                    .reason
                    .map_or_else(String::new, |reason| format!(": {}", clean(&reason)));
                shown.push_str(&format!(
                    "\n*   {} {} (by {}){reason}",
                    clean(&ban.room),
                    clean(&ban.user),
                    clean(&ban.by)
                ));
            }
            shown
        }
        Event::Users(_) => return None,
        Event::Status { text, .. } => format!("* {}", clean(&text)),
        Event::Error { code, text } => format!("! {} ({code})", clean(&text)),
        Event::Closed { .. } => return None,
    })
}

/// " #room" for a named room's event; nothing for the default room's.
fn in_room(room: Option<String>) -> String {
    room.map(|room| format!(" {}", clean(&room)))
        .unwrap_or_default()
}

/// Text from the network as it may reach a terminal: control characters
/// (escape sequences, newlines that could fake a line), line and paragraph
/// separators, and invisible formatting characters such as bidirectional
/// overrides (which can make a line read differently from what it says)
/// are shown escaped.
fn clean(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if (c.is_control() && c != '\t') || is_invisible_format(c) {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Unicode's format characters (category Cf) and separators (Zl, Zp) that
/// a terminal draws as nothing or uses to reorder text: the bidirectional
/// embeddings, overrides, isolates and marks, zero-width characters, the
/// byte order mark, interlinear annotation marks and tag characters.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Where lines are shown.
enum Output {
    Plain,
    Terminal(Box<dyn ExternalPrinter + Send>),
}

impl Output {
    fn line(&mut self, line: String) {
        match self {
            Output::Plain => {
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{line}");
                let _ = stdout.flush();
            }
            Output::Terminal(printer) => {
                // Between two lines the editor is out of raw mode and the
                // printer writes straight through; without its newline the
                // next prompt would be drawn over it.
                let _ = printer.print(line + "\n");
            }
        }
    }

    /// On a terminal the editor thread still owns the tty in raw mode; let
    /// the user end it (Enter) so the terminal is restored before exiting.
    async fn finish(&mut self, input: &mut mpsc::Receiver<Option<String>>) {
        if let Output::Terminal(_) = self {
            self.line("* press Enter to exit".into());
            let _ = input.recv().await;
        }
    }
}

/// Lines typed or piped in; `None` is end of input (Ctrl-D, Ctrl-C, EOF).
type Input = mpsc::Receiver<Option<String>>;

/// Reads stdin on a thread of its own rather than the runtime's blocking
/// pool, which the runtime would wait for at exit: a session the server
/// ends must not hang until more input arrives.
fn plain() -> (Output, Input) {
    let (lines, input) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\n').trim_end_matches('\r');
            if lines.blocking_send(Some(text.to_owned())).is_err() {
                return;
            }
        }
        let _ = lines.blocking_send(None);
    });
    (Output::Plain, input)
}

fn terminal() -> anyhow::Result<(Output, Input)> {
    let mut editor = rustyline::DefaultEditor::new().context("cannot set up the terminal")?;
    let printer = editor
        .create_external_printer()
        .context("cannot set up the terminal")?;
    let (lines, input) = mpsc::channel(16);
    std::thread::spawn(move || {
        loop {
            match editor.readline("> ") {
                Ok(line) => {
                    let _ = editor.add_history_entry(line.as_str());
                    if lines.blocking_send(Some(line)).is_err() {
                        return;
                    }
                }
                Err(_) => {
                    let _ = lines.blocking_send(None);
                    return;
                }
            }
        }
    });
    Ok((Output::Terminal(Box::new(printer)), input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert!(matches!(Command::parse("#ls"), Command::List));
        assert!(matches!(Command::parse(" #quit "), Command::Quit));
        assert!(matches!(
            Command::parse("@bob: hi there"),
            Command::Direct {
                to: "bob",
                text: "hi there"
            }
        ));
        assert!(matches!(Command::parse("@bob hi"), Command::Unknown(_)));
        assert!(matches!(Command::parse("#dance"), Command::Unknown(_)));
        assert!(matches!(
            Command::parse("hello: world"),
            Command::Say("hello: world")
        ));
        assert!(matches!(Command::parse("   "), Command::Nothing));
        assert!(matches!(
            Command::parse("#join #rust"),
            Command::Join("#rust")
        ));
        assert!(matches!(Command::parse("#part"), Command::Part(None)));
        assert!(matches!(
            Command::parse("#topic #rust all about Rust"),
            Command::Topic {
                room: "#rust",
                text: "all about Rust"
            }
        ));
        assert!(matches!(Command::parse("#join"), Command::Unknown(_)));
        assert!(matches!(
            Command::parse("#kick #rust bob too loud"),
            Command::Moderate {
                action: Action::Kick,
                room: Some("#rust"),
                user: "bob",
                reason: Some("too loud")
            }
        ));
        assert!(matches!(
            Command::parse("#ban bob"),
            Command::Moderate {
                action: Action::Ban,
                room: None,
                user: "bob",
                reason: None
            }
        ));
        assert!(matches!(
            Command::parse("#unban #rust bob why"),
            Command::Unknown(_)
        ));
        assert!(matches!(Command::parse("#kick"), Command::Unknown(_)));
        assert!(matches!(Command::parse("#kick #rust"), Command::Unknown(_)));
        assert!(matches!(Command::parse("#bans"), Command::Bans(None)));
        assert!(matches!(
            Command::parse("#bans #rust"),
            Command::Bans(Some("#rust"))
        ));
        assert!(matches!(
            Command::parse("#disable mallory"),
            Command::Account {
                action: Action::Disable,
                user: "mallory"
            }
        ));
        assert!(matches!(Command::parse("#delete a b"), Command::Unknown(_)));
        assert!(matches!(Command::parse("#join #a #b"), Command::Unknown(_)));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\nb"), "a\\nb");
        assert_eq!(clean("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(clean("tab\tok ünï"), "tab\tok ünï");
        // A right-to-left override would show "txt.exe" as "exe.txt".
        assert_eq!(clean("a\u{202e}txt.exe"), "a\\u{202e}txt.exe");
        assert_eq!(
            clean("\u{2066}x\u{2069}\u{200b}\u{2028}\u{feff}\u{85}"),
            "\\u{2066}x\\u{2069}\\u{200b}\\u{2028}\\u{feff}\\u{85}"
        );
        // Right-to-left text itself is not touched.
        assert_eq!(clean("שלום مرحبا"), "שלום مرحبا");
    }
}
