//! An expression to a tree of single tests for one link type: where the
//! network header starts, how the IP version is found, which fields to load.

use std::net::IpAddr;

use super::emit::{Cond, Load, Node, Op};
use super::{Dir, Expr, FilterError, Kind, Prim, Proto};
use crate::LinkType;

const ETH_IPV4: u32 = 0x0800;
const ETH_IPV6: u32 = 0x86dd;
const ETH_ARP: u32 = 0x0806;
const ETH_RARP: u32 = 0x8035;
const TCP: u32 = 6;
const UDP: u32 = 17;
const SCTP: u32 = 132;
const ICMP: u32 = 1;
const ICMPV6: u32 = 58;
const IPV6_FRAGMENT: u32 = 44;

/// Where a link type puts things.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Offset of a 16-bit EtherType, if the link header has one.
    ethertype: Option<u32>,
    /// Offset of the network header.
    nh: u32,
}

fn layout(link: LinkType) -> Layout {
    match link {
        LinkType::Ethernet => Layout {
            ethertype: Some(12),
            nh: 14,
        },
        LinkType::LinuxSll => Layout {
            ethertype: Some(14),
            nh: 16,
        },
        LinkType::LinuxSll2 => Layout {
            ethertype: Some(0),
            nh: 20,
        },
        LinkType::Raw => Layout {
            ethertype: None,
            nh: 0,
        },
        LinkType::Null => Layout {
            ethertype: None,
            nh: 4,
        },
    }
}

pub fn lower(expr: &Expr, link: LinkType) -> Result<Node, FilterError> {
    let at = layout(link);
    Ok(match expr {
        Expr::And(a, b) => Node::and(lower(a, link)?, lower(b, link)?),
        Expr::Or(a, b) => Node::or(lower(a, link)?, lower(b, link)?),
        Expr::Not(a) => Node::Not(Box::new(lower(a, link)?)),
        Expr::Prim(prim) => primitive(prim, at),
    })
}

fn test(load: Load, op: Op, k: u32) -> Node {
    Node::Test(Cond { load, op, k })
}

fn byte(off: u32) -> Load {
    Load::Byte(off)
}

fn ethertype(at: Layout, value: u32) -> Node {
    match (at.ethertype, value) {
        (Some(off), _) => test(Load::Half(off), Op::Eq, value),
        // No link header: the IP version nibble tells.
        (None, ETH_IPV4) => test(Load::Masked(Box::new(byte(at.nh)), 0xf0), Op::Eq, 0x40),
        (None, ETH_IPV6) => test(Load::Masked(Box::new(byte(at.nh)), 0xf0), Op::Eq, 0x60),
        (None, _) => Node::False,
    }
}

fn ipv4(at: Layout) -> Node {
    ethertype(at, ETH_IPV4)
}

fn ipv6(at: Layout) -> Node {
    ethertype(at, ETH_IPV6)
}

fn ipv4_proto(at: Layout, proto: u32) -> Node {
    Node::and(ipv4(at), test(byte(at.nh + 9), Op::Eq, proto))
}

/// The next header, directly or after one fragment header, as tcpdump does.
fn ipv6_proto(at: Layout, proto: u32) -> Node {
    Node::and(
        ipv6(at),
        Node::or(
            test(byte(at.nh + 6), Op::Eq, proto),
            Node::and(
                test(byte(at.nh + 6), Op::Eq, IPV6_FRAGMENT),
                test(byte(at.nh + 40), Op::Eq, proto),
            ),
        ),
    )
}

fn either(dir: Dir, src: Node, dst: Node) -> Node {
    match dir {
        Dir::Src => src,
        Dir::Dst => dst,
        Dir::SrcOrDst => Node::or(src, dst),
        Dir::SrcAndDst => Node::and(src, dst),
    }
}

fn primitive(prim: &Prim, at: Layout) -> Node {
    match (&prim.kind, prim.proto) {
        (Kind::Proto, Some(proto)) => protocol(proto, at),
        (Kind::Proto, None) => Node::True,
        (Kind::Host(addr), proto) => address(*addr, prefix_all(*addr), prim.dir, proto, at),
        (Kind::Net(addr, prefix), proto) => address(*addr, *prefix, prim.dir, proto, at),
        (Kind::Port(port), proto) => ports(u32::from(*port), u32::from(*port), prim.dir, proto, at),
        (Kind::PortRange(low, high), proto) => {
            ports(u32::from(*low), u32::from(*high), prim.dir, proto, at)
        }
    }
}

fn protocol(proto: Proto, at: Layout) -> Node {
    match proto {
        Proto::Ip => ipv4(at),
        Proto::Ip6 => ipv6(at),
        Proto::Arp => ethertype(at, ETH_ARP),
        Proto::Tcp => Node::or(ipv4_proto(at, TCP), ipv6_proto(at, TCP)),
        Proto::Udp => Node::or(ipv4_proto(at, UDP), ipv6_proto(at, UDP)),
        Proto::Icmp => ipv4_proto(at, ICMP),
        Proto::Icmp6 => ipv6_proto(at, ICMPV6),
    }
}

fn prefix_all(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// Compares `prefix` leading bits of the address at `off` with `addr`.
fn masked_words(off: u32, addr: IpAddr, prefix: u8) -> Node {
    let words: Vec<u32> = match addr {
        IpAddr::V4(v4) => vec![u32::from(v4)],
        IpAddr::V6(v6) => v6
            .octets()
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    let mut node = Node::True;
    let mut left = u32::from(prefix);
    for (index, word) in words.into_iter().enumerate() {
        if left == 0 {
            break;
        }
        let bits = left.min(32);
        left -= bits;
        let mask = if bits == 32 {
            u32::MAX
        } else {
            !(u32::MAX >> bits)
        };
        let load = Load::Word(off + 4 * index as u32);
        let load = if mask == u32::MAX {
            load
        } else {
            Load::Masked(Box::new(load), mask)
        };
        node = Node::and(node, test(load, Op::Eq, word & mask));
    }
    node
}

fn address(addr: IpAddr, prefix: u8, dir: Dir, proto: Option<Proto>, at: Layout) -> Node {
    match addr {
        IpAddr::V4(_) => {
            let ip = Node::and(
                ipv4(at),
                either(
                    dir,
                    masked_words(at.nh + 12, addr, prefix),
                    masked_words(at.nh + 16, addr, prefix),
                ),
            );
            // tcpdump's `host`/`net` also match ARP and RARP sender/target.
            let arp = |ethertype_value| {
                Node::and(
                    ethertype(at, ethertype_value),
                    either(
                        dir,
                        masked_words(at.nh + 14, addr, prefix),
                        masked_words(at.nh + 24, addr, prefix),
                    ),
                )
            };
            match proto {
                Some(Proto::Ip) => ip,
                Some(Proto::Arp) => arp(ETH_ARP),
                _ => Node::or(Node::or(ip, arp(ETH_ARP)), arp(ETH_RARP)),
            }
        }
        IpAddr::V6(_) => Node::and(
            ipv6(at),
            either(
                dir,
                masked_words(at.nh + 8, addr, prefix),
                masked_words(at.nh + 24, addr, prefix),
            ),
        ),
    }
}

fn ports(low: u32, high: u32, dir: Dir, proto: Option<Proto>, at: Layout) -> Node {
    let wanted: &[u32] = match proto {
        Some(Proto::Tcp) => &[TCP],
        Some(Proto::Udp) => &[UDP],
        _ => &[TCP, UDP, SCTP],
    };
    let in_range = |load: Load| {
        if low == high {
            test(load, Op::Eq, low)
        } else {
            Node::and(
                test(load.clone(), Op::Ge, low),
                Node::Not(Box::new(test(load, Op::Gt, high))),
            )
        }
    };
    let any_of = |off: u32| {
        wanted
            .iter()
            .map(|proto| test(byte(off), Op::Eq, *proto))
            .reduce(Node::or)
            .unwrap_or(Node::False)
    };
    let v6 = Node::and(
        Node::and(ipv6(at), any_of(at.nh + 6)),
        either(
            dir,
            in_range(Load::Half(at.nh + 40)),
            in_range(Load::Half(at.nh + 42)),
        ),
    );
    // Only the first fragment of an IPv4 datagram carries the ports.
    let first_fragment = Node::Not(Box::new(test(Load::Half(at.nh + 6), Op::Set, 0x1fff)));
    let v4 = Node::and(
        Node::and(Node::and(ipv4(at), any_of(at.nh + 9)), first_fragment),
        either(
            dir,
            in_range(Load::Transport { nh: at.nh, off: 0 }),
            in_range(Load::Transport { nh: at.nh, off: 2 }),
        ),
    );
    Node::or(v6, v4)
}
