// SPDX-License-Identifier: GPL-2.0

//! An out-of-tree Rust module: what a driver author builds against a branch of the series with
//! `cargo xtask module examples/rust_hello [--branch B] [--run]`.
//!
//! It owns a vector allocated at load time and reports it when it is unloaded: `Drop` of the
//! module's type is its exit function.

use kernel::prelude::*;

module! {
    type: RustHello,
    name: "rust_hello",
    author: "Nova developers",
    description: "Out-of-tree Rust module example",
    license: "GPL",
}

struct RustHello {
    numbers: KVec<u32>,
}

impl kernel::Module for RustHello {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut numbers = KVec::new();
        for n in [2, 3, 5] {
            numbers.push(n, GFP_KERNEL)?;
        }
        pr_info!("hello from an out-of-tree module\n");
        Ok(Self { numbers })
    }
}

impl Drop for RustHello {
    fn drop(&mut self) {
        pr_info!("goodbye, numbers {:?}\n", self.numbers);
    }
}
