//! Rendering a session's events in swaks' convention: `=== ` netkit's own
//! notes, ` -> `/`<-  ` plaintext lines, ` ~> `/`<~  ` lines inside TLS,
//! `*** ` problems. The dialogue goes to stdout, problems to stderr.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use smtp::{Event, Observer};

#[derive(Debug)]
pub struct Transcript {
    quiet: bool,
    progress: Option<ProgressBar>,
}

impl Transcript {
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            progress: None,
        }
    }

    pub fn note(&mut self, text: &str) {
        if !self.quiet {
            self.line(&format!("=== {text}"));
        }
    }

    pub fn problem(&mut self, text: &str) {
        let text = printable(text);
        self.suspend(|| eprintln!("*** {text}"));
    }

    fn line(&self, line: &str) {
        let line = printable(line);
        self.suspend(|| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        });
    }

    fn suspend(&self, f: impl FnOnce()) {
        match &self.progress {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    fn progress(&mut self, sent: u64, total: u64) {
        // A bar only for a person watching, and only for a body worth it.
        if self.quiet || total < 1024 * 1024 || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = self.progress.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "DATA {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template"),
            );
            bar
        });
        bar.set_position(sent);
        if sent >= total {
            bar.finish_and_clear();
            self.progress = None;
        }
    }
}

/// The text with control characters escaped (`\u{1b}`): what a server
/// sends must not move the cursor or retitle the user's terminal.
fn printable(text: &str) -> Cow<'_, str> {
    if !text.contains(|c: char| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

impl Observer for Transcript {
    fn event(&mut self, event: Event) {
        match event {
            Event::Note(text) => self.note(&text),
            Event::Sent { line, tls } if !self.quiet => {
                self.line(&format!("{}{line}", if tls { " ~> " } else { " -> " }));
            }
            Event::Received { line, tls } if !self.quiet => {
                self.line(&format!("{}{line}", if tls { "<~  " } else { "<-  " }));
            }
            Event::Warning(text) => self.problem(&text),
            Event::Progress { sent, total } => self.progress(sent, total),
            // Shown already as the lines and notes around them.
            Event::Sent { .. }
            | Event::Received { .. }
            | Event::Stage(_)
            | Event::Quit
            | Event::TlsStarted { .. } => {}
        }
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("250 ok\tfine"), "250 ok\tfine");
        assert_eq!(
            printable("220 \u{1b}]0;owned\u{7}"),
            "220 \\u{1b}]0;owned\\u{7}"
        );
        assert_eq!(printable("a\rb"), "a\\rb");
    }
}
