// SPDX-License-Identifier: GPL-2.0

//! A register read-modify-write through `Io<SIZE>`; suite rust-pci disassembles
//! `codegen_io_rust()` and compares it with C's `codegen_io_c()`.

use kernel::{io::Io, prelude::*};

/// What `codegen_io_c()` does, through the Rust accessors on a mapping a driver keeps (offsets
/// checked at build time).
#[no_mangle]
pub extern "C" fn codegen_io_rust(io: &Io<0x100>) -> u32 {
    let v = io.read32(0x10);
    io.write32(v | 1, 0x14);
    v
}

struct CodegenIo;

impl kernel::Module for CodegenIo {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(CodegenIo)
    }
}

module! {
    type: CodegenIo,
    name: "codegen_io_rust",
    author: "Nova Developers",
    description: "Rust side of the MMIO codegen comparison",
    license: "GPL",
}
