//! `netkit mail`: send a message over SMTP showing the whole dialogue, or
//! run a small receiving server as a local test inbox.

mod report;
mod send;
mod sink;
mod transcript;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Compose a message and send it over SMTP, showing the dialogue
    #[command(after_help = send::AFTER_HELP)]
    Send(Box<send::SendArgs>),
    /// Run a receiving SMTP server that stores each message in a Maildir
    #[command(after_help = sink::AFTER_HELP)]
    Sink(Box<sink::SinkArgs>),
}

impl MailCommand {
    pub fn is_server(&self) -> bool {
        matches!(self, MailCommand::Sink(_))
    }

    pub fn log_format(&self) -> crate::serve::LogFormat {
        match self {
            MailCommand::Sink(args) => args.log_format(),
            MailCommand::Send(_) => crate::serve::LogFormat::Text,
        }
    }
}

pub async fn run(command: MailCommand) -> anyhow::Result<ExitCode> {
    match command {
        MailCommand::Send(args) => send::run(*args).await,
        MailCommand::Sink(args) => sink::run(*args).await.map(|()| ExitCode::SUCCESS),
    }
}
