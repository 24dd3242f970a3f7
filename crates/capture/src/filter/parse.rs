//! Words to an expression tree. As in pcap-filter(7): `not` binds tightest,
//! `and` and `or` have equal precedence and associate left to right, and a
//! bare value after `and`/`or` takes the qualifiers of the one before
//! (`host 10.0.0.1 or 10.0.0.2`).

use std::net::IpAddr;

use super::FilterError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Prim(Prim),
}

/// One primitive: `[proto] [dir] [kind] value`, or a protocol alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prim {
    pub proto: Option<Proto>,
    pub dir: Dir,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Ip,
    Ip6,
    Arp,
    Tcp,
    Udp,
    Icmp,
    Icmp6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    SrcOrDst,
    Src,
    Dst,
    SrcAndDst,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The protocol alone (`tcp`, `icmp6`).
    Proto,
    Host(IpAddr),
    /// An address and a prefix length; no bits set past the prefix.
    Net(IpAddr, u8),
    Port(u16),
    PortRange(u16, u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KindWord {
    Host,
    Net,
    Port,
    PortRange,
}

pub fn parse(text: &str) -> Result<Option<Expr>, FilterError> {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        last: None,
    };
    let expr = parser.expr()?;
    if let Some(token) = parser.peek() {
        return Err(FilterError::new(token, "unexpected word"));
    }
    Ok(Some(expr))
}

fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let single = match c {
            '(' | ')' => Some(c.to_string()),
            '!' => Some("!".to_owned()),
            '&' | '|' if chars.peek() == Some(&c) => {
                chars.next();
                Some(format!("{c}{c}"))
            }
            _ => None,
        };
        if c.is_whitespace() || single.is_some() {
            if !word.is_empty() {
                tokens.push(std::mem::take(&mut word));
            }
            tokens.extend(single);
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
    /// The qualifiers of the last primitive, for a bare value after it.
    last: Option<(Option<Proto>, Dir, KindWord)>,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn peek_at(&self, ahead: usize) -> Option<&str> {
        self.tokens.get(self.at + ahead).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let token = self.tokens.get(self.at).cloned();
        self.at += usize::from(token.is_some());
        token
    }

    fn expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                Some("and" | "&&") => {
                    self.next();
                    left = Expr::And(Box::new(left), Box::new(self.unary()?));
                }
                Some("or" | "||") => {
                    self.next();
                    left = Expr::Or(Box::new(left), Box::new(self.unary()?));
                }
                _ => return Ok(left),
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        match self.peek() {
            Some("not" | "!") => {
                self.next();
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some("(") => {
                self.next();
                let inner = self.expr()?;
                match self.next().as_deref() {
                    Some(")") => Ok(inner),
                    Some(other) => Err(FilterError::new(other, "expected ')'")),
                    None => Err(FilterError::new("(", "unclosed parenthesis")),
                }
            }
            Some(_) => self.primitive(),
            None => Err(FilterError::new(
                "",
                "filter ends where a primitive is expected",
            )),
        }
    }

    fn primitive(&mut self) -> Result<Expr, FilterError> {
        let proto = match self.peek() {
            Some(word) => proto_word(word),
            None => None,
        };
        if proto.is_some() {
            self.next();
        }
        let dir = self.dir();
        let kind = match self.peek().and_then(kind_word) {
            Some(kind) => {
                self.next();
                Some(kind)
            }
            None => None,
        };
        let (proto, dir, kind) = match (proto, dir, kind) {
            (Some(proto), None, None) => {
                self.last = None;
                return Ok(Expr::Prim(Prim {
                    proto: Some(proto),
                    dir: Dir::SrcOrDst,
                    kind: Kind::Proto,
                }));
            }
            // A bare value is a host, as tcpdump takes it.
            (None, None, None) => self.last.unwrap_or((None, Dir::SrcOrDst, KindWord::Host)),
            (proto, dir, kind) => (
                proto,
                dir.unwrap_or(Dir::SrcOrDst),
                kind.unwrap_or(KindWord::Host),
            ),
        };
        let value = self
            .next()
            .ok_or_else(|| FilterError::new("", "filter ends where a value is expected"))?;
        let kind = value_of(kind, &value)?;
        check_proto(proto, &kind, &value)?;
        self.last = Some((proto, dir, kind_word_of(&kind)));
        Ok(Expr::Prim(Prim { proto, dir, kind }))
    }

    fn dir(&mut self) -> Option<Dir> {
        let first = match self.peek()? {
            "src" => Dir::Src,
            "dst" => Dir::Dst,
            _ => return None,
        };
        self.next();
        let joined = match (self.peek(), self.peek_at(1), first) {
            (Some("or"), Some("dst"), Dir::Src) | (Some("or"), Some("src"), Dir::Dst) => {
                Some(Dir::SrcOrDst)
            }
            (Some("and"), Some("dst"), Dir::Src) | (Some("and"), Some("src"), Dir::Dst) => {
                Some(Dir::SrcAndDst)
            }
            _ => None,
        };
        if joined.is_some() {
            self.at += 2;
        }
        Some(joined.unwrap_or(first))
    }
}

fn proto_word(word: &str) -> Option<Proto> {
    Some(match word {
        "ip" => Proto::Ip,
        "ip6" => Proto::Ip6,
        "arp" => Proto::Arp,
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        "icmp" => Proto::Icmp,
        "icmp6" => Proto::Icmp6,
        _ => return None,
    })
}

fn kind_word(word: &str) -> Option<KindWord> {
    Some(match word {
        "host" => KindWord::Host,
        "net" => KindWord::Net,
        "port" => KindWord::Port,
        "portrange" => KindWord::PortRange,
        _ => return None,
    })
}

fn kind_word_of(kind: &Kind) -> KindWord {
    match kind {
        Kind::Net(..) => KindWord::Net,
        Kind::Port(_) => KindWord::Port,
        Kind::PortRange(..) => KindWord::PortRange,
        Kind::Proto | Kind::Host(_) => KindWord::Host,
    }
}

fn value_of(kind: KindWord, value: &str) -> Result<Kind, FilterError> {
    match kind {
        KindWord::Host => value
            .parse()
            .map(Kind::Host)
            .map_err(|_| FilterError::new(value, "not an IPv4 or IPv6 address")),
        KindWord::Net => net(value),
        KindWord::Port => port(value).map(Kind::Port),
        KindWord::PortRange => {
            let (low, high) = value
                .split_once('-')
                .ok_or_else(|| FilterError::new(value, "a port range is LOW-HIGH"))?;
            let (low, high) = (port(low)?, port(high)?);
            Ok(Kind::PortRange(low.min(high), low.max(high)))
        }
    }
}

fn port(value: &str) -> Result<u16, FilterError> {
    value
        .parse()
        .map_err(|_| FilterError::new(value, "not a port number (0-65535)"))
}

fn net(value: &str) -> Result<Kind, FilterError> {
    let (addr, prefix) = match value.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (value, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| FilterError::new(value, "not a network (ADDRESS/PREFIX)"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(prefix) => prefix
            .parse::<u8>()
            .ok()
            .filter(|len| *len <= max)
            .ok_or_else(|| FilterError::new(value, "prefix length out of range"))?,
        None => max,
    };
    let bits = match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    };
    let host_bits = bits.checked_shl(u32::from(prefix)).unwrap_or(0);
    if host_bits != 0 {
        return Err(FilterError::new(
            value,
            "non-network bits set in the address",
        ));
    }
    Ok(Kind::Net(addr, prefix))
}

fn check_proto(proto: Option<Proto>, kind: &Kind, value: &str) -> Result<(), FilterError> {
    let fits = matches!(
        (proto, kind),
        (None, _)
            | (
                Some(Proto::Tcp | Proto::Udp),
                Kind::Port(_) | Kind::PortRange(..)
            )
            | (
                Some(Proto::Ip | Proto::Arp),
                Kind::Host(IpAddr::V4(_)) | Kind::Net(IpAddr::V4(_), _)
            )
            | (
                Some(Proto::Ip6),
                Kind::Host(IpAddr::V6(_)) | Kind::Net(IpAddr::V6(_), _)
            )
    );
    if fits {
        Ok(())
    } else {
        Err(FilterError::new(
            value,
            "this protocol and qualifier do not go together",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prim(text: &str) -> Prim {
        match parse(text).unwrap().unwrap() {
            Expr::Prim(prim) => prim,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn qualifiers() {
        assert_eq!(
            prim("tcp dst port 80"),
            Prim {
                proto: Some(Proto::Tcp),
                dir: Dir::Dst,
                kind: Kind::Port(80)
            }
        );
        assert_eq!(
            prim("src 10.0.0.1").kind,
            Kind::Host("10.0.0.1".parse().unwrap())
        );
        assert_eq!(prim("src or dst port 5").dir, Dir::SrcOrDst);
        assert_eq!(prim("portrange 9-3").kind, Kind::PortRange(3, 9));
    }

    #[test]
    fn equal_precedence_left_to_right() {
        let expr = parse("tcp or udp and port 5").unwrap().unwrap();
        assert!(matches!(expr, Expr::And(left, _) if matches!(*left, Expr::Or(..))));
    }

    #[test]
    fn bare_value_inherits() {
        let expr = parse("port 1 or 2").unwrap().unwrap();
        let Expr::Or(_, right) = expr else { panic!() };
        assert_eq!(
            *right,
            Expr::Prim(Prim {
                proto: None,
                dir: Dir::SrcOrDst,
                kind: Kind::Port(2)
            })
        );
    }

    #[test]
    fn errors_name_the_token() {
        assert_eq!(parse("tcp port http").unwrap_err().token, "http");
        assert_eq!(parse("frobnicate").unwrap_err().token, "frobnicate");
        assert_eq!(parse("tcp and").unwrap_err().token, "");
        assert_eq!(parse("net 10.0.0.1/8").unwrap_err().token, "10.0.0.1/8");
        assert_eq!(parse("(tcp").unwrap_err().token, "(");
        assert_eq!(parse("icmp port 5").unwrap_err().token, "5");
        assert!(parse("  ").unwrap().is_none());
    }
}
