// SPDX-License-Identifier: GPL-2.0

//! A handler of driver B (one that does not enter) in driver A's ioctl table would get A's
//! devices and files as B's. Handlers are typed against the table's driver, so this must not
//! build.

#[macro_use]
mod drivers;

use kernel::{drm, drm::ioctl, prelude::*};

/// The request of each driver's one ioctl.
const GET: u32 = ioctl::IOWR::<u64>(ioctl::COMMAND_BASE);

drm_driver!(A, "a", AFile, AObject, u8, {
    // The offending line: B's handler in A's table.
    kernel::declare_drm_ioctls! { A;
        (GET, u64, ioctl::flags::RENDER_ALLOW, b_get),
    }
});

drm_driver!(B, "b", BFile, BObject, u64, {
    kernel::declare_drm_ioctls! { B;
        (GET, u64, ioctl::flags::RENDER_ALLOW, b_get),
    }
});

/// B's handler: reads B's data from the device.
fn b_get(dev: &drm::Device<B>, arg: &mut u64, _file: &drm::File<BFile>) -> Result<u32> {
    *arg = **dev;
    Ok(0)
}

struct IoctlHandlerOfAnotherDriver;

impl kernel::Module for IoctlHandlerOfAnotherDriver {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(IoctlHandlerOfAnotherDriver)
    }
}

module! {
    type: IoctlHandlerOfAnotherDriver,
    name: "ioctl_handler_of_another_driver",
    author: "Nova Developers",
    description: "Another driver's ioctl handler, which must not build",
    license: "GPL",
}
