// SPDX-License-Identifier: GPL-2.0

//! Review R1 of rust-drm v1: an ioctl table declared for driver B inside driver A's `impl`
//! would let A's devices run B's handler on A's data (a `u8` read as a `u64`). The table's type
//! names its driver, so this must not build.

#[macro_use]
mod drivers;

use kernel::{drm, drm::ioctl, prelude::*};

/// The request of each driver's one ioctl.
const GET: u32 = ioctl::IOWR::<u64>(ioctl::COMMAND_BASE);

drm_driver!(A, "a", AFile, AObject, u8, {
    // The offending line: B's table as A's.
    kernel::declare_drm_ioctls! { B;
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

struct IoctlsDeclaredForAnotherDriver;

impl kernel::Module for IoctlsDeclaredForAnotherDriver {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(IoctlsDeclaredForAnotherDriver)
    }
}

module! {
    type: IoctlsDeclaredForAnotherDriver,
    name: "ioctls_declared_for_another_driver",
    author: "Nova Developers",
    description: "An ioctl table declared for another driver, which must not build",
    license: "GPL",
}
