// SPDX-License-Identifier: GPL-2.0

//! Register accesses through `Io<SIZE>`; suite rust-pci disassembles every
//! `codegen_rust_<case>()` and compares it with C's `codegen_c_<case>()` (see
//! `codegen_io_c.c` for the cases).

use kernel::{io::Io, prelude::*};

/// The cases of one width and accessor kind, as in `codegen_io_c.c`'s `CODEGEN_CASES`.
macro_rules! codegen_cases {
    ($t:ty, $read:ident, $write:ident, $is_zero:ident, $rmw:ident, $doorbell:ident) => {
        /// A read compared with zero.
        #[no_mangle]
        pub extern "C" fn $is_zero(io: &Io<0x100>) -> bool {
            io.$read(0x20) == 0
        }

        /// A read-modify-write.
        #[no_mangle]
        pub extern "C" fn $rmw(io: &Io<0x100>) -> $t {
            let v = io.$read(0x10);
            io.$write(v | 1, 0x18);
            v
        }

        /// A store to normal memory, then a doorbell register write.
        #[no_mangle]
        pub extern "C" fn $doorbell(io: &Io<0x100>, desc: &mut $t, val: $t) {
            *desc = val;
            io.$write(1, 0x28);
        }
    };
}

codegen_cases!(
    u8,
    read8,
    write8,
    codegen_rust_is_zero8,
    codegen_rust_rmw8,
    codegen_rust_doorbell8
);
codegen_cases!(
    u16,
    read16,
    write16,
    codegen_rust_is_zero16,
    codegen_rust_rmw16,
    codegen_rust_doorbell16
);
codegen_cases!(
    u32,
    read32,
    write32,
    codegen_rust_is_zero32,
    codegen_rust_rmw32,
    codegen_rust_doorbell32
);
codegen_cases!(
    u64,
    read64,
    write64,
    codegen_rust_is_zero64,
    codegen_rust_rmw64,
    codegen_rust_doorbell64
);
codegen_cases!(
    u8,
    read8_relaxed,
    write8_relaxed,
    codegen_rust_is_zero8_relaxed,
    codegen_rust_rmw8_relaxed,
    codegen_rust_doorbell8_relaxed
);
codegen_cases!(
    u16,
    read16_relaxed,
    write16_relaxed,
    codegen_rust_is_zero16_relaxed,
    codegen_rust_rmw16_relaxed,
    codegen_rust_doorbell16_relaxed
);
codegen_cases!(
    u32,
    read32_relaxed,
    write32_relaxed,
    codegen_rust_is_zero32_relaxed,
    codegen_rust_rmw32_relaxed,
    codegen_rust_doorbell32_relaxed
);
codegen_cases!(
    u64,
    read64_relaxed,
    write64_relaxed,
    codegen_rust_is_zero64_relaxed,
    codegen_rust_rmw64_relaxed,
    codegen_rust_doorbell64_relaxed
);

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
