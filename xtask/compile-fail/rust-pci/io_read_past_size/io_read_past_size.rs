// SPDX-License-Identifier: GPL-2.0

//! A constant offset past an `Io<SIZE>`'s compile-time size: `build_assert!` must refuse it, so
//! this module must not build, and modpost must name `rust_build_error`.

use kernel::{io::Io, prelude::*};

/// Reads the `u32` right after the 0x100 bytes the mapping is known to have.
#[no_mangle]
pub extern "C" fn io_read_past_size(io: &Io<0x100>) -> u32 {
    io.read32(0x100)
}

struct IoReadPastSize;

impl kernel::Module for IoReadPastSize {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(IoReadPastSize)
    }
}

module! {
    type: IoReadPastSize,
    name: "io_read_past_size",
    author: "Nova Developers",
    description: "An MMIO access past the compile-time size, which must not build",
    license: "GPL",
}
