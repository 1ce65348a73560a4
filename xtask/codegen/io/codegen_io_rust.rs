// SPDX-License-Identifier: GPL-2.0

//! A register read-modify-write through `Io<SIZE>`; suite rust-pci disassembles
//! `codegen_io_rust()` and compares it with C's `codegen_io_c()`.

use kernel::{
    ffi::c_void,
    io::{Io, IoRaw},
    prelude::*,
};

/// What `codegen_io_c()` does, through the Rust accessors (offsets checked at build time).
///
/// # Safety
///
/// `base` must be a mapping of at least 0x100 bytes of I/O memory.
#[no_mangle]
pub unsafe extern "C" fn codegen_io_rust(base: *mut c_void) -> u32 {
    let Ok(raw) = IoRaw::<0x100>::new(base as usize, 0x100) else {
        return 0;
    };
    // SAFETY: The caller promises a mapping of 0x100 bytes, which `raw` describes.
    let io = unsafe { Io::from_raw(&raw) };
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
