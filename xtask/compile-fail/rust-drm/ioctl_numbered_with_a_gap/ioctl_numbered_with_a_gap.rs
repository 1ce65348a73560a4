// SPDX-License-Identifier: GPL-2.0

//! Review R10 of rust-drm v1 (no negative test of the table's checks): DRM indexes a driver's
//! table by request number, so an entry numbered `COMMAND_BASE + 1` at index 0 would be
//! dispatched for another request. `declare_drm_ioctls!` checks the numbering at compile time,
//! so this must not build.

#[macro_use]
mod drivers;

use kernel::{drm, drm::ioctl, prelude::*};

/// The one ioctl, numbered as if it were the second.
const GET: u32 = ioctl::IOWR::<u64>(ioctl::COMMAND_BASE + 1);

drm_driver!(A, "a", AFile, AObject, u64, {
    // The offending line: the first entry is numbered COMMAND_BASE + 1.
    kernel::declare_drm_ioctls! { A;
        (GET, u64, ioctl::flags::RENDER_ALLOW, get),
    }
});

/// Reads the device's data.
fn get(dev: &drm::Device<A>, arg: &mut u64, _file: &drm::File<AFile>) -> Result<u32> {
    *arg = **dev;
    Ok(0)
}

struct IoctlNumberedWithAGap;

impl kernel::Module for IoctlNumberedWithAGap {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(IoctlNumberedWithAGap)
    }
}

module! {
    type: IoctlNumberedWithAGap,
    name: "ioctl_numbered_with_a_gap",
    author: "Nova Developers",
    description: "An ioctl table with a gap in its numbering, which must not build",
    license: "GPL",
}
