// SPDX-License-Identifier: GPL-2.0

//! `Devres<T>` needs `T: Send`: its data is dropped by whichever thread unbinds the device
//! (rust-device v1 review, S2). A `T` holding a raw pointer is not `Send`, so this must not build.

use kernel::{
    device::{Bound, Device},
    devres::Devres,
    prelude::*,
};

/// Not `Send`: a raw pointer.
pub struct NotSend(*mut u8);

/// Would register `NotSend` as device-managed data.
pub fn keep(dev: &Device<Bound>) -> Result<Devres<NotSend>> {
    Devres::new(dev, NotSend(core::ptr::null_mut()))
}

struct Case;

impl kernel::Module for Case {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Case)
    }
}

module! {
    type: Case,
    name: "devres_of_not_send",
    author: "Nova Developers",
    description: "Devres of a type that is not Send, which must not build",
    license: "GPL",
}
