//! `netkit web`: the static file server and the HTTP client.

mod get;
mod serve;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum WebCommand {
    /// Serve a directory (or a built-in site) over HTTP/1.1 and HTTP/2
    #[command(after_help = "\
Examples:
  netkit web serve                              the built-in site on 127.0.0.1:8080
  netkit web serve ./public --list              a directory, with listings
  netkit web serve . --bind 0.0.0.0:8443 --self-signed    HTTPS for testing
  netkit web serve ./public --log access.log --max-connections 500")]
    Serve(Box<serve::ServeArgs>),
    /// Fetch a URL over HTTP/1.1 or HTTP/2, like a small curl
    #[command(after_help = "\
Examples:
  netkit web get http://127.0.0.1:8080/                   print the body
  netkit web get -i http://127.0.0.1:8080/netkit.png -o logo.png
  netkit web get -v -L http://127.0.0.1:8080/docs         show heads, follow redirects
  netkit web get --insecure https://localhost:8443/       a --self-signed server
  netkit web get -x http://127.0.0.1:3128 http://example.com/   through a proxy

Exit status: 1 on connection failure or an HTTP status of 400 or more.")]
    Get(get::GetArgs),
}

impl WebCommand {
    pub fn is_server(&self) -> bool {
        matches!(self, WebCommand::Serve(_))
    }
}

pub async fn run(command: WebCommand) -> anyhow::Result<ExitCode> {
    match command {
        WebCommand::Serve(args) => serve::serve(*args).await,
        WebCommand::Get(args) => get::get(args).await,
    }
}
