//! tcpdump's filter language compiled to classic BPF. The same program is
//! attached to the capture socket (`SO_ATTACH_FILTER`) and run by [`vm`] over
//! frames read from a file, so a filter means the same thing live and offline.

mod emit;
mod lower;
mod parse;
pub mod vm;

pub use parse::{Dir, Expr, Kind, Prim, Proto};

use crate::LinkType;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A filter that cannot be compiled, naming the token where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter: {reason} at {token:?}")]
pub struct FilterError {
    pub token: String,
    pub reason: String,
}

impl FilterError {
    fn new(token: impl Into<String>, reason: impl Into<String>) -> FilterError {
        FilterError {
            token: token.into(),
            reason: reason.into(),
        }
    }
}

/// Parses a filter written as tcpdump takes it (the words may be split
/// across arguments). An empty filter is `None`: keep everything.
pub fn parse(text: &str) -> Result<Option<Expr>, FilterError> {
    parse::parse(text)
}

/// Compiles a parsed filter for frames of `link`, keeping at most `snaplen`
/// bytes of each packet that passes.
pub fn compile(expr: &Expr, link: LinkType, snaplen: u32) -> Result<Vec<Insn>, FilterError> {
    let node = lower::lower(expr, link)?;
    emit::emit(&node, snaplen)
}

/// A program that keeps every packet (no filter given).
pub fn accept_all(snaplen: u32) -> Vec<Insn> {
    vec![Insn {
        code: emit::RET_K,
        jt: 0,
        jf: 0,
        k: snaplen,
    }]
}
