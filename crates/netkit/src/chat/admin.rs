//! `netkit chat admin`: server admins, disabled and deleted accounts, and
//! room bans, in the database, offline (a running server may have it open).

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use chat::AccountStore;
use chat::store::SanctionKind;
use clap::{Args, Subcommand};
use tracing::info;

use super::accounts::utc;
use super::db::{Db, open_existing};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The account database: an SQLite file, or postgres://USER@HOST:PORT/DBNAME
    #[arg(
        long,
        value_name = "FILE|URL",
        default_value = "chat.sqlite3",
        global = true
    )]
    db: Db,
    #[command(subcommand)]
    action: AdminAction,
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Make an account a server admin: it may moderate every room and
    /// disable, enable and delete accounts
    GrantAdmin { user: String },
    /// Take the admin role away from an account
    RevokeAdmin { user: String },
    /// Stop an account from logging in
    Disable { user: String },
    /// Let a disabled account log in again
    Enable { user: String },
    /// Delete an account with its bans and mutes
    Delete { user: String },
    /// List room bans
    Bans {
        /// Only this room's
        #[arg(long, value_name = "#ROOM")]
        room: Option<String>,
    },
    /// Lift a room ban
    Unban {
        /// The room, as #name
        room: String,
        user: String,
    },
}

pub fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    let accounts = open_existing(&args.db)?;
    let db = &args.db;
    let (user, done) = match args.action {
        AdminAction::GrantAdmin { user } => {
            let found = accounts.set_admin(&user, true)?;
            (user, found.then_some("is now an admin"))
        }
        AdminAction::RevokeAdmin { user } => {
            let found = accounts.set_admin(&user, false)?;
            (user, found.then_some("is no longer an admin"))
        }
        AdminAction::Disable { user } => {
            let found = accounts.set_disabled(&user, true)?;
            (user, found.then_some("is disabled"))
        }
        AdminAction::Enable { user } => {
            let found = accounts.set_disabled(&user, false)?;
            (user, found.then_some("is enabled"))
        }
        AdminAction::Delete { user } => {
            let found = accounts.delete(&user)?;
            (user, found.then_some("is deleted"))
        }
        AdminAction::Bans { room } => return bans(accounts.as_ref(), room.as_deref()),
        AdminAction::Unban { room, user } => {
            if !accounts.remove_sanction(SanctionKind::Ban, &room, &user)? {
                bail!("{user} is not banned from {room} in {db}");
            }
            info!(%room, %user, "unbanned");
            eprintln!("{user} may join {room} again");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let Some(done) = done else {
        bail!("no account `{user}` in {db}");
    };
    info!(%user, done, "account changed");
    eprintln!("{user} {done}");
    Ok(ExitCode::SUCCESS)
}

fn bans(accounts: &dyn AccountStore, room: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    for ban in accounts.sanctions(SanctionKind::Ban, room)? {
        let reason = ban
            .reason
            .map(|r| format!("  ({})", r.escape_debug()))
            .unwrap_or_default();
        writeln!(
            stdout,
            "{:<33}  {:<32}  by {} at {}{reason}",
            ban.room,
            ban.account,
            ban.moderator,
            utc(ban.time)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
