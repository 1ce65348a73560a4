// SPDX-License-Identifier: GPL-2.0

//! A driver's callbacks get the device in the `Core` context; storing driver data is only for
//! the bus adapter, in `CoreInternal` (rust-device v1 review, S4). A driver replacing the data
//! the adapter stored must not build.

use kernel::{
    device::{Core, Device},
    prelude::*,
};

/// Would replace the driver data behind the bus adapter's back.
pub fn replace(dev: &Device<Core>) -> Result {
    dev.set_drvdata(0u32)
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "core_cannot_set_drvdata",
    author: "Nova Developers",
    description: "set_drvdata on a Core device, which must not build",
    license: "GPL",
}
