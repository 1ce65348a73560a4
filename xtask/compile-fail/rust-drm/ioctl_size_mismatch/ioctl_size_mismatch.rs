// SPDX-License-Identifier: GPL-2.0

//! Review R10 of rust-drm v1 (no negative test of the table's checks): DRM copies as many bytes
//! as the request number encodes, so a request that encodes 4 bytes for a `u64` argument would
//! let the handler read 4 bytes past what DRM copied. `declare_drm_ioctls!` checks the size at
//! compile time, so this must not build.

#[macro_use]
mod drivers;

use kernel::{drm, drm::ioctl, prelude::*};

/// The one ioctl, whose request number encodes a `u32`.
const GET: u32 = ioctl::IOWR::<u32>(ioctl::COMMAND_BASE);

drm_driver!(A, "a", AFile, AObject, u64, {
    // The offending line: a `u64` argument for a request of 4 bytes.
    kernel::declare_drm_ioctls! { A;
        (GET, u64, ioctl::flags::RENDER_ALLOW, get),
    }
});

/// Reads the device's data.
fn get(dev: &drm::Device<A>, arg: &mut u64, _file: &drm::File<AFile>) -> Result<u32> {
    *arg = **dev;
    Ok(0)
}

struct IoctlSizeMismatch;

impl kernel::Module for IoctlSizeMismatch {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(IoctlSizeMismatch)
    }
}

module! {
    type: IoctlSizeMismatch,
    name: "ioctl_size_mismatch",
    author: "Nova Developers",
    description: "An ioctl whose request does not encode its argument's size, which must not build",
    license: "GPL",
}
