//! A tree of tests to classic BPF: each test jumps to the code for "true" or
//! "false" of its parent, so `and`/`or`/`not` cost no instructions of their
//! own. Jumps only go forward, as the kernel's verifier demands.

use super::{FilterError, Insn};

pub const LD_W_ABS: u16 = 0x20;
pub const LD_H_ABS: u16 = 0x28;
pub const LD_B_ABS: u16 = 0x30;
pub const LD_H_IND: u16 = 0x48;
pub const LDX_B_MSH: u16 = 0xb1;
pub const ALU_AND_K: u16 = 0x54;
pub const JA: u16 = 0x05;
pub const JEQ_K: u16 = 0x15;
pub const JGT_K: u16 = 0x25;
pub const JGE_K: u16 = 0x35;
pub const JSET_K: u16 = 0x45;
pub const RET_K: u16 = 0x06;

/// A value to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load {
    Byte(u32),
    Half(u32),
    Word(u32),
    Masked(Box<Load>, u32),
    /// A 16-bit field `off` bytes into the header after an IPv4 header
    /// at `nh` (whose length is read from its IHL).
    Transport {
        nh: u32,
        off: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Gt,
    Ge,
    /// Any of the bits in `k` set.
    Set,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub load: Load,
    pub op: Op,
    pub k: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    True,
    False,
    Test(Cond),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
}

impl Node {
    pub fn and(a: Node, b: Node) -> Node {
        match (a, b) {
            (Node::True, other) | (other, Node::True) => other,
            (Node::False, _) | (_, Node::False) => Node::False,
            (a, b) => Node::And(Box::new(a), Box::new(b)),
        }
    }

    pub fn or(a: Node, b: Node) -> Node {
        match (a, b) {
            (Node::False, other) | (other, Node::False) => other,
            (Node::True, _) | (_, Node::True) => Node::True,
            (a, b) => Node::Or(Box::new(a), Box::new(b)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

#[derive(Debug)]
struct Pending {
    insn: Insn,
    /// For conditional jumps: where true and false go; for `ja`, `jt` only.
    targets: Option<(Label, Label)>,
}

#[derive(Debug, Default)]
struct Emitter {
    code: Vec<Pending>,
    labels: Vec<Option<usize>>,
}

impl Emitter {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    fn place(&mut self, label: Label) {
        self.labels[label.0] = Some(self.code.len());
    }

    fn plain(&mut self, code: u16, k: u32) {
        self.code.push(Pending {
            insn: Insn {
                code,
                jt: 0,
                jf: 0,
                k,
            },
            targets: None,
        });
    }

    fn jump(&mut self, code: u16, k: u32, t: Label, f: Label) {
        self.code.push(Pending {
            insn: Insn {
                code,
                jt: 0,
                jf: 0,
                k,
            },
            targets: Some((t, f)),
        });
    }

    fn load(&mut self, load: &Load) {
        match load {
            Load::Byte(off) => self.plain(LD_B_ABS, *off),
            Load::Half(off) => self.plain(LD_H_ABS, *off),
            Load::Word(off) => self.plain(LD_W_ABS, *off),
            Load::Masked(inner, mask) => {
                self.load(inner);
                self.plain(ALU_AND_K, *mask);
            }
            Load::Transport { nh, off } => {
                self.plain(LDX_B_MSH, *nh);
                self.plain(LD_H_IND, nh + off);
            }
        }
    }

    fn node(&mut self, node: &Node, t: Label, f: Label) {
        match node {
            Node::True => self.jump(JA, 0, t, t),
            Node::False => self.jump(JA, 0, f, f),
            Node::Not(inner) => self.node(inner, f, t),
            Node::And(a, b) => {
                let middle = self.label();
                self.node(a, middle, f);
                self.place(middle);
                self.node(b, t, f);
            }
            Node::Or(a, b) => {
                let middle = self.label();
                self.node(a, t, middle);
                self.place(middle);
                self.node(b, t, f);
            }
            Node::Test(cond) => {
                self.load(&cond.load);
                let code = match cond.op {
                    Op::Eq => JEQ_K,
                    Op::Gt => JGT_K,
                    Op::Ge => JGE_K,
                    Op::Set => JSET_K,
                };
                self.jump(code, cond.k, t, f);
            }
        }
    }
}

pub fn emit(node: &Node, snaplen: u32) -> Result<Vec<Insn>, FilterError> {
    let mut out = Emitter::default();
    let accept = out.label();
    let reject = out.label();
    out.node(node, accept, reject);
    out.place(accept);
    out.plain(RET_K, snaplen);
    out.place(reject);
    out.plain(RET_K, 0);
    let labels = out.labels;
    let mut program = Vec::with_capacity(out.code.len());
    for (index, pending) in out.code.into_iter().enumerate() {
        let mut insn = pending.insn;
        if let Some((t, f)) = pending.targets {
            let distance = |label: Label| labels[label.0].unwrap_or(index + 1) - (index + 1);
            if insn.code == JA {
                insn.k = distance(t) as u32;
            } else {
                let too_far = || FilterError::new("", "filter too large for classic BPF jumps");
                insn.jt = u8::try_from(distance(t)).map_err(|_| too_far())?;
                insn.jf = u8::try_from(distance(f)).map_err(|_| too_far())?;
            }
        }
        program.push(insn);
    }
    Ok(program)
}
