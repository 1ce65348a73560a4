// SPDX-License-Identifier: GPL-2.0

//! An entered handler of driver B in driver A's ioctl table would get A's device, entered, as
//! B's (review R1 of rust-drm v1, with R2's entered handlers). Handlers of either kind are
//! typed against the table's driver, so this must not build.

#[macro_use]
mod drivers;

use kernel::{drm, drm::ioctl, prelude::*};

/// The request of each driver's one ioctl.
const GET: u32 = ioctl::IOWR::<u64>(ioctl::COMMAND_BASE);

drm_driver!(A, "a", AFile, AObject, u8, {
    // The offending line: B's entered handler in A's table.
    kernel::declare_drm_ioctls! { A;
        (GET, u64, ioctl::flags::RENDER_ALLOW, b_get),
    }
});

drm_driver!(B, "b", BFile, BObject, u64, {
    kernel::declare_drm_ioctls! { B;
        (GET, u64, ioctl::flags::RENDER_ALLOW, b_get),
    }
});

/// B's handler, entered: reads B's data from the device.
fn b_get(dev: &drm::Entered<'_, B>, arg: &mut u64, _file: &drm::File<BFile>) -> Result<u32> {
    *arg = ***dev;
    Ok(0)
}

struct EnteredHandlerOfAnotherDriver;

impl kernel::Module for EnteredHandlerOfAnotherDriver {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(EnteredHandlerOfAnotherDriver)
    }
}

module! {
    type: EnteredHandlerOfAnotherDriver,
    name: "entered_handler_of_another_driver",
    author: "Nova Developers",
    description: "Another driver's entered ioctl handler, which must not build",
    license: "GPL",
}
