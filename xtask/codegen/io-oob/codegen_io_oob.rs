// SPDX-License-Identifier: GPL-2.0

//! A constant offset past an `Io<SIZE>`'s compile-time size: `build_assert!` must refuse it, so
//! this module must not build (suite rust-pci checks that the build fails on
//! `rust_build_error`).

use kernel::{io::Io, prelude::*};

/// Reads the `u32` right after the 0x100 bytes the mapping is known to have.
#[no_mangle]
pub extern "C" fn codegen_io_oob(io: &Io<0x100>) -> u32 {
    io.read32(0x100)
}

struct CodegenIoOob;

impl kernel::Module for CodegenIoOob {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(CodegenIoOob)
    }
}

module! {
    type: CodegenIoOob,
    name: "codegen_io_oob",
    author: "Nova Developers",
    description: "An MMIO access past the compile-time size, which must not build",
    license: "GPL",
}
