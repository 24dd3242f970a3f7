//! Clients for both transports. The reply to `n` bytes is exactly `n` bytes,
//! so a round trip knows when its answer is complete without any framing.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::Error;

#[derive(Debug)]
pub struct TcpClient {
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    closed: bool,
}

impl TcpClient {
    /// Connects to the first address that accepts; `timeout` bounds each
    /// connection attempt and, later, each wait for reply bytes.
    pub async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<Self, Error> {
        let mut last = None;
        for &addr in addrs {
            match connect_one(addr, timeout).await {
                Ok(stream) => {
                    return Ok(Self {
                        stream,
                        peer: addr,
                        timeout,
                        closed: false,
                    });
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.expect("resolve never returns an empty list"))
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// True once the server has closed the connection, as the lab's server
    /// does after every reply.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends `request` and waits for the same number of bytes back, or for the
    /// server to close, whichever comes first.
    pub async fn round_trip(&mut self, request: &[u8]) -> Result<Vec<u8>, Error> {
        let peer = self.peer;
        let io = |source| Error::Io { addr: peer, source };
        self.stream.write_all(request).await.map_err(io)?;
        let mut reply = vec![0u8; request.len()];
        let mut filled = 0;
        while filled < reply.len() {
            let n = timeout(self.timeout, self.stream.read(&mut reply[filled..]))
                .await
                .map_err(|_| Error::Timeout {
                    addr: peer,
                    timeout: self.timeout,
                })?
                .map_err(io)?;
            if n == 0 {
                self.closed = true;
                break;
            }
            filled += n;
        }
        reply.truncate(filled);
        Ok(reply)
    }

    /// Streams `input` to the server and the replies to `output` at the same
    /// time, so arbitrarily large input needs no buffering. Once `input` ends,
    /// waits until every byte sent has come back, the server closes, or
    /// nothing arrives for the timeout. Returns the bytes received.
    pub async fn stream<R, W>(self, mut input: R, mut output: W) -> Result<u64, Error>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        const UNKNOWN: u64 = u64::MAX;
        let peer = self.peer;
        let wait = self.timeout;
        let io = |source| Error::Io { addr: peer, source };
        let (mut from_server, mut to_server) = self.stream.into_split();
        let sent_total = AtomicU64::new(UNKNOWN);

        let send = async {
            let sent = tokio::io::copy(&mut input, &mut to_server).await?;
            to_server.shutdown().await?;
            sent_total.store(sent, Ordering::Relaxed);
            Ok::<(), io::Error>(())
        };
        let receive = async {
            let mut buf = vec![0u8; 16 * 1024];
            let mut received = 0u64;
            loop {
                let sent = sent_total.load(Ordering::Relaxed);
                if received >= sent {
                    break;
                }
                let n = match timeout(wait, from_server.read(&mut buf)).await {
                    Ok(n) => n.map_err(io)?,
                    // Still sending: a quiet server is just waiting for input.
                    Err(_) if sent == UNKNOWN => continue,
                    Err(_) => {
                        return Err(Error::Timeout {
                            addr: peer,
                            timeout: wait,
                        });
                    }
                };
                if n == 0 {
                    break;
                }
                output.write_all(&buf[..n]).await.map_err(io)?;
                received += n as u64;
            }
            output.flush().await.map_err(io)?;
            Ok(received)
        };
        tokio::pin!(send, receive);

        let received = tokio::select! {
            received = &mut receive => received?,
            sent = &mut send => {
                sent.map_err(io)?;
                receive.await?
            }
        };
        match sent_total.load(Ordering::Relaxed) {
            UNKNOWN => Err(io(io::Error::new(
                ErrorKind::UnexpectedEof,
                "server closed the connection before all input was sent",
            ))),
            sent if received < sent => Err(io(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("server closed after returning {received} of {sent} bytes"),
            ))),
            _ => Ok(received),
        }
    }
}

async fn connect_one(addr: SocketAddr, limit: Duration) -> Result<TcpStream, Error> {
    let stream = match timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => {
            return Err(Error::ConnectTimeout {
                addr,
                timeout: limit,
            });
        }
        Ok(Err(err)) if err.kind() == ErrorKind::ConnectionRefused => {
            return Err(Error::Refused { addr });
        }
        Ok(Err(source)) => return Err(Error::Connect { addr, source }),
        Ok(Ok(stream)) => stream,
    };
    stream
        .set_nodelay(true)
        .map_err(|source| Error::Io { addr, source })?;
    Ok(stream)
}

#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    peer: SocketAddr,
    timeout: Duration,
}

impl UdpClient {
    /// Binds an ephemeral port and connects it to the first address, so
    /// datagrams from anyone else are filtered out by the kernel.
    pub async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<Self, Error> {
        let peer = addrs[0];
        let socket = dial::udp(peer, None).await?;
        Ok(Self {
            socket,
            peer,
            timeout,
        })
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends one datagram and waits up to the timeout for the answer. An
    /// ICMP port-unreachable for it ends the wait at once, as it means no
    /// server is bound there to answer.
    pub async fn round_trip(&mut self, request: &[u8]) -> Result<Vec<u8>, Error> {
        let peer = self.peer;
        let failed = |source: io::Error| match source.kind() {
            ErrorKind::ConnectionRefused => Error::PortUnreachable { addr: peer },
            _ => Error::Io { addr: peer, source },
        };
        self.socket.send(request).await.map_err(failed)?;
        let mut reply = vec![0u8; 65_535];
        match timeout(self.timeout, self.socket.recv(&mut reply)).await {
            Err(_) => Err(Error::Timeout {
                addr: peer,
                timeout: self.timeout,
            }),
            Ok(Err(source)) => Err(failed(source)),
            Ok(Ok(n)) => {
                reply.truncate(n);
                Ok(reply)
            }
        }
    }
}
