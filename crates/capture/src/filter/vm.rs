//! A classic BPF interpreter for the instructions the compiler emits (and
//! the rest of the load/ALU/jump set): filters frames read from a file with
//! the very program that would run in the kernel.

use super::Insn;

/// Runs `program` over `packet`; the result is how many bytes to keep, 0 to
/// drop. A load past the end drops the packet, as in the kernel.
pub fn run(program: &[Insn], packet: &[u8]) -> u32 {
    let mut a: u32 = 0;
    let mut x: u32 = 0;
    let mut scratch = [0u32; 16];
    let mut pc = 0usize;
    let load = |off: u32, size: usize| -> Option<u32> {
        let start = usize::try_from(off).ok()?;
        let bytes = packet.get(start..start.checked_add(size)?)?;
        Some(bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    };
    while let Some(insn) = program.get(pc) {
        pc += 1;
        let k = insn.k;
        let class = insn.code & 0x07;
        let size = match insn.code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            _ => 1,
        };
        let operand = if insn.code & 0x08 != 0 { x } else { k };
        match class {
            0x00 | 0x01 => {
                let value = match insn.code & 0xe0 {
                    0x00 => Some(k),
                    0x20 => load(k, size),
                    0x40 => load(x.wrapping_add(k), size),
                    0x60 => scratch.get(k as usize).copied(),
                    0x80 => u32::try_from(packet.len()).ok(),
                    0xa0 => load(k, 1).map(|b| (b & 0xf) * 4),
                    _ => None,
                };
                let Some(value) = value else { return 0 };
                if class == 0x00 {
                    a = value;
                } else {
                    x = value;
                }
            }
            0x02 | 0x03 => {
                let Some(slot) = scratch.get_mut(k as usize) else {
                    return 0;
                };
                *slot = if class == 0x02 { a } else { x };
            }
            0x04 => {
                a = match insn.code & 0xf0 {
                    0x00 => a.wrapping_add(operand),
                    0x10 => a.wrapping_sub(operand),
                    0x20 => a.wrapping_mul(operand),
                    0x30 => match a.checked_div(operand) {
                        Some(value) => value,
                        None => return 0,
                    },
                    0x40 => a | operand,
                    0x50 => a & operand,
                    0x60 => a.checked_shl(operand).unwrap_or(0),
                    0x70 => a.checked_shr(operand).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0x90 => match a.checked_rem(operand) {
                        Some(value) => value,
                        None => return 0,
                    },
                    0xa0 => a ^ operand,
                    _ => return 0,
                }
            }
            0x05 => {
                let jump = match insn.code & 0xf0 {
                    0x00 => {
                        pc = pc.saturating_add(k as usize);
                        continue;
                    }
                    0x10 => a == operand,
                    0x20 => a > operand,
                    0x30 => a >= operand,
                    0x40 => a & operand != 0,
                    _ => return 0,
                };
                pc += usize::from(if jump { insn.jt } else { insn.jf });
            }
            0x06 => return if insn.code & 0x18 == 0x10 { a } else { k },
            _ => {
                if insn.code & 0xf8 == 0x80 {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
    0
}
