//! Rendering a session's events in swaks' convention: `=== ` netkit's own
//! notes, ` -> `/`<-  ` plaintext lines, ` ~> `/`<~  ` lines inside TLS,
//! `*** ` problems. The dialogue goes to stdout, problems to stderr.

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
        self.suspend(|| eprintln!("*** {text}"));
    }

    fn line(&self, line: &str) {
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
            Event::Sent { .. } | Event::Received { .. } => {}
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
