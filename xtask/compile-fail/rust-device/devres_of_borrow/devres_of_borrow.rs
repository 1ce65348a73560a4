// SPDX-License-Identifier: GPL-2.0

//! `Devres<T>` needs `T: 'static`: the data lives until the device is unbound, which can be
//! after anything it borrows is gone (rust-device v1 review, S2). A `Devres` of a reference to a
//! local must not build.

use kernel::{
    device::{Bound, Device},
    devres::Devres,
    prelude::*,
};

/// Would register a reference to a local as device-managed data.
pub fn keep(dev: &Device<Bound>) -> Result {
    let local = 1u32;
    let _kept = Devres::new(dev, &local)?;
    Ok(())
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "devres_of_borrow",
    author: "Nova Developers",
    description: "Devres of a borrowed value, which must not build",
    license: "GPL",
}
