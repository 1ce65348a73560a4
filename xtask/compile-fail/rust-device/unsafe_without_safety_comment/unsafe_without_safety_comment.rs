// SPDX-License-Identifier: GPL-2.0

//! Every `unsafe` block has its safety comment and every public unsafe function its safety
//! section (#24, section 5): the kernel's Makefile turns on `clippy::undocumented_unsafe_blocks`
//! (and `clippy::all`, which has `missing_safety_doc`), and the harness refuses a build with
//! warnings. A module with neither must be refused.

use kernel::prelude::*;

/// Reads the value `p` points to.
pub unsafe fn read(p: *const u32) -> u32 {
    unsafe { p.read() }
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let x = 1u32;
        let _ = unsafe { read(&x) };
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "unsafe_without_safety_comment",
    author: "Nova Developers",
    description: "Unsafe code without its safety documentation, which must be refused",
    license: "GPL",
}
