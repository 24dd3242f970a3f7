//! `netkit chat users` and `netkit chat passwd`: the account database,
//! offline (a running server may have it open: SQLite and PostgreSQL
//! allow both).

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use chat::name::check_password;
use clap::Args;

use super::db::{Db, open_existing};

#[derive(Debug, Args)]
pub struct UsersArgs {
    /// The account database: an SQLite file, or postgres://USER@HOST:PORT/DBNAME
    #[arg(long, value_name = "FILE|URL", default_value = "chat.sqlite3")]
    db: Db,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// The account whose password to set
    name: String,
    /// The account database: an SQLite file, or postgres://USER@HOST:PORT/DBNAME
    #[arg(long, value_name = "FILE|URL", default_value = "chat.sqlite3")]
    db: Db,
}

pub fn users(args: UsersArgs) -> anyhow::Result<ExitCode> {
    let accounts = open_existing(&args.db)?;
    let mut stdout = std::io::stdout().lock();
    for account in accounts.list()? {
        let admin = if account.standing.admin {
            "  admin"
        } else {
            ""
        };
        let disabled = if account.standing.disabled {
            "  disabled"
        } else {
            ""
        };
        writeln!(
            stdout,
            "{:<32}  created {}  password set {}{admin}{disabled}",
            account.name,
            utc(account.created),
            utc(account.updated)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn passwd(args: PasswdArgs) -> anyhow::Result<ExitCode> {
    let accounts = open_existing(&args.db)?;
    if accounts.lookup(&args.name)?.is_none() {
        bail!("no account `{}` in {}", args.name, args.db);
    }
    let password = super::password(&format!("New password for {}: ", args.name), true)?;
    check_password(password.expose())?;
    if !accounts.set_password(&args.name, password.expose())? {
        bail!("no account `{}` in {}", args.name, args.db);
    }
    eprintln!("password for {} changed", args.name);
    Ok(ExitCode::SUCCESS)
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(super) fn utc(seconds: u64) -> String {
    let time = i64::try_from(seconds)
        .ok()
        .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok());
    time.and_then(|time| {
        time.format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .ok()
    })
    .unwrap_or_else(|| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn formats_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
