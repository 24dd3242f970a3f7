//! netkit's web system: a static file server that is safe by default, and
//! a small HTTP client.
//!
//! The server speaks HTTP/1.1 (keep-alive, pipelining) and HTTP/2 (prior
//! knowledge in cleartext, ALPN `h2` under TLS) through hyper. It serves a
//! directory, or a built-in site, with validators, conditional requests,
//! byte ranges and content-coding negotiation; path safety is layered
//! (`files::path`, `files::open`) after static-web-server.

mod access_log;
mod basic_auth;
mod body;
mod client;
mod conditional;
mod cors;
mod error;
mod files;
pub mod htpasswd;
mod negotiate;
mod pages;
pub mod path_rules;
pub mod range;
mod respond;
mod server;
mod settings;
mod sys;
mod upload;

pub use access_log::{AccessEntry, AccessLog};
pub use basic_auth::{BasicAuth, Gate};
pub use client::{
    Client, ClientConfig, ClientError, ClientRequest, ClientResponse, ConnectTo, Event,
    HttpVersion, IpFamily, MAX_REDIRECTS, RequestBody, RequestHead, Resolve, ResponseHead,
};
pub use cookie_store;
pub use cors::CorsOrigins;
pub use error::Error;
pub use files::{RequestPath, UploadPolicy};
pub use server::{MAX_PER_CLIENT, Reloader, Root, Server, ServerConfig, SiteConfig};
pub use settings::{SiteSettings, parse_header};
pub use url::Url;
