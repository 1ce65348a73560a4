// SPDX-License-Identifier: GPL-2.0

//! Review R1 of rust-drm v1: driver A taking driver B's ioctl table would let A's devices run
//! B's handler on A's data (a `u8` read as a `u64`). The table's type names its driver, so this
//! must not build.

#[macro_use]
mod drivers;

use kernel::{drm, drm::ioctl, prelude::*};

/// The request of each driver's one ioctl.
const GET: u32 = ioctl::IOWR::<u64>(ioctl::COMMAND_BASE);

drm_driver!(A, "a", AFile, AObject, u8, {
    // The offending line: B's table as A's.
    const IOCTLS: &'static [ioctl::Ioctl<Self>] = <B as drm::Driver>::IOCTLS;
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

struct IoctlTableOfAnotherDriver;

impl kernel::Module for IoctlTableOfAnotherDriver {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(IoctlTableOfAnotherDriver)
    }
}

module! {
    type: IoctlTableOfAnotherDriver,
    name: "ioctl_table_of_another_driver",
    author: "Nova Developers",
    description: "Another driver's ioctl table, which must not build",
    license: "GPL",
}
