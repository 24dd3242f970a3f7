use std::io;

/// What can go wrong reading, writing or capturing packets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("not a pcap or pcapng file: {0}")]
    NotCapture(String),
    #[error("link type {0} is not one netkit decodes")]
    UnsupportedLink(u32),
    #[error("cannot write the capture: {0}")]
    Write(String),
    #[error(
        "no permission to open a packet socket: capturing needs CAP_NET_RAW \
         (run as root, or `sudo setcap cap_net_raw+ep $(command -v netkit)` once)"
    )]
    Permission,
    #[error("no interface named {0:?} (netkit capture -D lists them)")]
    NoInterface(String),
    #[error("{what}: {source}")]
    Socket {
        what: &'static str,
        source: io::Error,
    },
}
