//! `netkit man [SUBCOMMAND...]`: the manual page of netkit or of one of its
//! commands, in roff for `man -l -` or a man directory.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netkit man | man -l -                      netkit's own page
  netkit man web get | man -l -              the page of `netkit web get`
  netkit man ping > ~/.local/share/man/man1/netkit-ping.1")]
pub struct ManArgs {
    /// The command whose page to write, as typed after `netkit` (`web get`);
    /// none: netkit's own page
    #[arg(value_name = "SUBCOMMAND")]
    path: Vec<String>,
}

pub fn run(args: ManArgs, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    // Building fills in each subcommand's page name (netkit-web-get).
    command.build();
    let mut page = command;
    for name in &args.path {
        let Some(sub) = page.find_subcommand(name).cloned() else {
            eprintln!(
                "netkit man: there is no `netkit {}`; `netkit --help` lists the commands",
                args.path.join(" ")
            );
            return Ok(ExitCode::from(2));
        };
        page = sub;
    }
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .source(format!("netkit {}", env!("CARGO_PKG_VERSION")))
        .manual("netkit manual")
        .render(&mut roff)?;
    crate::write_stdout(&roff)?;
    Ok(ExitCode::SUCCESS)
}
