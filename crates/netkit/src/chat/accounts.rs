//! `netkit chat users` and `netkit chat passwd`: the account database,
//! offline (a running server may have it open: SQLite allows both).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chat::Accounts;
use chat::name::check_password;
use clap::Args;

#[derive(Debug, Args)]
pub struct UsersArgs {
    /// The account database
    #[arg(long, value_name = "FILE", default_value = "chat.sqlite3")]
    db: PathBuf,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// The account whose password to set
    name: String,
    /// The account database
    #[arg(long, value_name = "FILE", default_value = "chat.sqlite3")]
    db: PathBuf,
}

pub fn users(args: UsersArgs) -> anyhow::Result<ExitCode> {
    let accounts = open_existing(&args.db)?;
    let mut stdout = std::io::stdout().lock();
    for account in accounts.list()? {
        writeln!(
            stdout,
            "{:<32}  created {}  password set {}",
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
        bail!("no account `{}` in {}", args.name, args.db.display());
    }
    let password = super::password(&format!("New password for {}: ", args.name), true)?;
    check_password(password.expose())?;
    if !accounts.set_password(&args.name, password.expose())? {
        bail!("no account `{}` in {}", args.name, args.db.display());
    }
    eprintln!("password for {} changed", args.name);
    Ok(ExitCode::SUCCESS)
}

/// Administration never creates a database: a typo in --db should fail.
fn open_existing(path: &std::path::Path) -> anyhow::Result<Accounts> {
    if !path.exists() {
        bail!(
            "{} does not exist (the server creates it: netkit chat serve --db FILE)",
            path.display()
        );
    }
    Accounts::open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(seconds: u64) -> String {
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
