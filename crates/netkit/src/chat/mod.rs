//! `netkit chat`: the chat server, its client, account administration and
//! the load generator.

mod accounts;
mod admin;
mod bench;
mod db;
mod join;
mod json;
mod serve;

use std::process::ExitCode;

use anyhow::{Context, ensure};
use chat::Password;
use clap::Subcommand;

/// Where passwords come from when there is no terminal to ask on.
const PASSWORD_ENV: &str = "NETKIT_CHAT_PASSWORD";

#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// Run the chat server
    #[command(after_help = "\
Examples:
  netkit chat serve                              127.0.0.1:5000, accounts in ./chat.sqlite3
  netkit chat serve --bind 0.0.0.0:5000 --db /var/lib/chat.sqlite3
  netkit chat serve --db postgres://chat@127.0.0.1:5432/chat   PGPASSWORD or ~/.pgpass
  netkit chat serve --self-signed                TLS with a throwaway certificate
  netkit chat serve --tls-cert cert.pem --tls-key key.pem
  netkit chat serve --db postgres://chat@127.0.0.1/chat --bus redis://127.0.0.1:6379
                                                 one node of a cluster; NETKIT_REDIS_PASSWORD")]
    Serve(Box<serve::ServeArgs>),
    /// Join a chat server: type to talk, #ls lists users, @name: text sends
    /// a direct message, #quit leaves
    #[command(after_help = "\
Examples:
  netkit chat join --user alice --register       first time: create the account
  netkit chat join --server chat.example:5000 --user alice
  netkit chat join --user alice --tls --insecure   a server with --self-signed
  NETKIT_CHAT_PASSWORD=... netkit chat join --user bot < script.txt

The password is asked for on the terminal, or read from NETKIT_CHAT_PASSWORD.")]
    Join(join::JoinArgs),
    /// List the accounts in a chat database
    #[command(after_help = "\
Examples:
  netkit chat users --db chat.sqlite3")]
    Users(accounts::UsersArgs),
    /// Set a new password for an account
    #[command(after_help = "\
Examples:
  netkit chat passwd alice --db chat.sqlite3      asks for the new password twice
  NETKIT_CHAT_PASSWORD=... netkit chat passwd alice")]
    Passwd(accounts::PasswdArgs),
    /// Administer accounts and bans in a chat database: admins, disabled
    /// and deleted accounts, room bans
    #[command(after_help = "\
Examples:
  netkit chat admin --db chat.sqlite3 grant-admin alice   alice may moderate every room
  netkit chat admin --db chat.sqlite3 disable mallory     mallory can no longer log in
  netkit chat admin --db chat.sqlite3 bans                every room ban
  netkit chat admin --db chat.sqlite3 unban '#rust' bob

A running server sees account changes at the account's next login, and a
lifted ban at the account's next join; admins logged in act at once from
the client (#disable, #unban ...).")]
    Admin(admin::AdminArgs),
    /// Load-test a chat server (netkit's protocol or IRC): N clients each
    /// sending R room messages per second
    #[command(after_help = "\
Examples:
  netkit chat bench --server 127.0.0.1:5000 --clients 1000 --rate 1 --duration 10
  netkit chat bench --server 127.0.0.1:6667 --irc --clients 1000 --rate 0.5,1,2

Reports messages delivered per second, delivery latency (p50, p99, max) and
the server's resident memory. Against netkit, clients register (or log in)
with NETKIT_CHAT_PASSWORD, or a random password for a fresh database; the
server's rate limit must allow the rate (netkit chat serve --rate).")]
    Bench(bench::BenchArgs),
}

impl ChatCommand {
    pub fn is_server(&self) -> bool {
        matches!(self, ChatCommand::Serve(_))
    }

    pub fn log_format(&self) -> crate::serve::LogFormat {
        match self {
            ChatCommand::Serve(args) => args.log_format(),
            _ => crate::serve::LogFormat::Text,
        }
    }
}

pub async fn run(command: ChatCommand) -> anyhow::Result<ExitCode> {
    match command {
        ChatCommand::Serve(args) => serve::run(*args).await,
        ChatCommand::Join(args) => join::run(args).await,
        // Administration blocks on its database (PostgreSQL's queries run
        // on this runtime), so it runs off the runtime's threads.
        ChatCommand::Users(args) => offline(move || accounts::users(args)).await,
        ChatCommand::Passwd(args) => offline(move || accounts::passwd(args)).await,
        ChatCommand::Admin(args) => offline(move || admin::run(args)).await,
        ChatCommand::Bench(args) => bench::run(args).await,
    }
}

async fn offline(
    work: impl FnOnce() -> anyhow::Result<ExitCode> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(work)
        .await
        .context("the administration task failed")?
}

/// A password from NETKIT_CHAT_PASSWORD, or asked for on the terminal
/// (twice when `confirm`). Never from the command line.
fn password(prompt: &str, confirm: bool) -> anyhow::Result<Password> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(Password::new(password));
    }
    let no_terminal = || format!("cannot ask for a password (no terminal?): set {PASSWORD_ENV}");
    let first = crate::prompt::hidden(prompt).with_context(no_terminal)?;
    if confirm {
        let again = crate::prompt::hidden("Repeat it: ").with_context(no_terminal)?;
        ensure!(first == again, "the two passwords differ");
    }
    Ok(Password::new(first))
}
