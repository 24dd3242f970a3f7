//! `netkit completions SHELL`: a tab-completion script for the shell, made
//! from the same definitions the command line is parsed with, so it cannot
//! drift from the flags.

use std::process::ExitCode;

use clap::Args;
use clap_complete::Shell;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  source <(netkit completions bash)                     this bash session
  netkit completions bash > ~/.local/share/bash-completion/completions/netkit
  netkit completions zsh > ~/.zfunc/_netkit             with fpath+=~/.zfunc
  netkit completions fish > ~/.config/fish/completions/netkit.fish
  netkit completions powershell >> $PROFILE")]
pub struct CompletionsArgs {
    /// The shell to write the script for
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: CompletionsArgs, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    crate::write_stdout(&script)?;
    Ok(ExitCode::SUCCESS)
}
