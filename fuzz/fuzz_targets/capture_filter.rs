//! tcpdump filter expressions: any text parses or is refused, never a panic;
//! what parses compiles to a classic BPF program that the interpreter runs
//! on any frame without a panic and that ends in a return.
#![no_main]

use capture::LinkType;
use capture::filter::{compile, parse, vm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &[u8])| {
    let (expression, frame) = input;
    let Ok(Some(expr)) = parse(expression) else {
        return;
    };
    for link in [LinkType::Ethernet, LinkType::Raw, LinkType::LinuxSll] {
        if let Ok(program) = compile(&expr, link, 262_144) {
            let _ = vm::run(&program, frame);
        }
    }
});
