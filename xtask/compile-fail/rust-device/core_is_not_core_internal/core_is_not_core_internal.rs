// SPDX-License-Identifier: GPL-2.0

//! A driver may name `Device<CoreInternal>` but never get one: nothing turns the `Core` device
//! its callbacks receive into the adapter's context (rust-device v1 review, S4). This must not
//! build.

use kernel::{
    device::{Core, CoreInternal, Device},
    prelude::*,
};

/// Would give a driver the bus adapter's context.
pub fn promote(dev: &Device<Core>) -> &Device<CoreInternal> {
    dev
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "core_is_not_core_internal",
    author: "Nova Developers",
    description: "A Core device used as CoreInternal, which must not build",
    license: "GPL",
}
