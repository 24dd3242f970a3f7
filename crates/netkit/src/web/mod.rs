//! `netkit web`: the static file server and the HTTP client.

mod get;
mod serve;

use std::process::ExitCode;

use clap::Subcommand;

pub use get::{GetArgs, WRITE_ERROR, get};

#[derive(Debug, Subcommand)]
pub enum WebCommand {
    /// Serve a directory (or a built-in site) over HTTP/1.1 and HTTP/2
    #[command(after_help = "\
Examples:
  netkit web serve                              the built-in site on 127.0.0.1:8080
  netkit web serve ./public --list              a directory, with listings
  netkit web serve . --bind 0.0.0.0:8443 --self-signed    HTTPS for testing
  netkit web serve ./public --access-log access.log --max-connections 500
  netkit web serve --config site.toml           settings from a file (kill -HUP rereads it)")]
    Serve(Box<serve::ServeArgs>),
    /// Fetch a URL over HTTP/1.1 or HTTP/2, like a small curl
    #[command(after_help = "\
Examples:
  netkit web get http://127.0.0.1:8080/                   print the body
  netkit web get -i http://127.0.0.1:8080/netkit.png -o logo.png
  netkit web get -v -L http://127.0.0.1:8080/docs         show heads, follow redirects
  netkit web get --insecure https://localhost:8443/       a --self-signed server
  netkit web get -x http://127.0.0.1:3128 http://example.com/   through a proxy
  netkit web get -d name=ada -d lang=en http://127.0.0.1:8080/form     POST a form
  netkit web get --json '{\"k\":1}' -u me https://api.example/       JSON, Basic auth
  netkit web get -F file=@notes.txt http://127.0.0.1:8080/upload       multipart
  netkit web get -T big.iso http://127.0.0.1:8080/put/              streamed PUT
  netkit web get -b jar.txt -c jar.txt -L https://example.com/login  cookies
  netkit web get -w '%{http_code} %{time_total}\n' -o /dev/null URL    timings
  netkit web get --retry 3 --compressed -O https://example.com/file.tar

-u USER takes the password from NETKIT_HTTP_PASSWORD or asks on the terminal;
--oauth2-bearer takes @FILE or env:VARIABLE: secrets never go on the command
line. -v shows credentials as `Authorization: Basic ****`.

Exit status, as curl's: 0 done (whatever the HTTP status, unless --fail),
1 unsupported protocol or other failure, 2 usage, 3 malformed URL, 6 cannot
resolve the host, 7 cannot connect, 8 unexpected reply (a TLS server asked
for http://), 22 HTTP status of 400 or more with --fail/--fail-with-body,
23 cannot write the output (a closed pipe included), 28 timed out,
35 TLS handshake failed, 47 too many redirects, 56 failure receiving data
(a proxy refusing CONNECT included), 60 the server's certificate is not
trusted.")]
    Get(Box<get::GetArgs>),
}

impl WebCommand {
    pub fn is_server(&self) -> bool {
        matches!(self, WebCommand::Serve(_))
    }

    pub fn log_format(&self) -> crate::serve::LogFormat {
        match self {
            WebCommand::Serve(args) => args.log_format(),
            WebCommand::Get(_) => crate::serve::LogFormat::Text,
        }
    }

    pub fn is_client(&self) -> bool {
        matches!(self, WebCommand::Get(_))
    }
}

pub async fn run(command: WebCommand) -> anyhow::Result<ExitCode> {
    match command {
        WebCommand::Serve(args) => serve::serve(*args).await,
        WebCommand::Get(args) => Ok(get::get(*args).await),
    }
}
