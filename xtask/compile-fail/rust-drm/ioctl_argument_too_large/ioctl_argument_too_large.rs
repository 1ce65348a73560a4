// SPDX-License-Identifier: GPL-2.0

//! Review R6 of rust-drm v1: the handler gets a copy of its argument on the stack, so a large
//! argument makes a large stack frame. `declare_drm_ioctls!` refuses arguments larger than the
//! 128 bytes DRM keeps on its own stack, so this 136-byte argument must not build.

#[macro_use]
mod drivers;

use kernel::{drm, drm::ioctl, prelude::*};

/// The argument: 17 `u64`s, 136 bytes.
type Big = [u64; 17];

/// The one ioctl, with its large argument.
const GET: u32 = ioctl::IOWR::<Big>(ioctl::COMMAND_BASE);

drm_driver!(A, "a", AFile, AObject, u64, {
    // The offending line: an argument of 136 bytes.
    kernel::declare_drm_ioctls! { A;
        (GET, Big, ioctl::flags::RENDER_ALLOW, get),
    }
});

/// Reads the device's data.
fn get(dev: &drm::Device<A>, arg: &mut Big, _file: &drm::File<AFile>) -> Result<u32> {
    arg[0] = **dev;
    Ok(0)
}

struct IoctlArgumentTooLarge;

impl kernel::Module for IoctlArgumentTooLarge {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(IoctlArgumentTooLarge)
    }
}

module! {
    type: IoctlArgumentTooLarge,
    name: "ioctl_argument_too_large",
    author: "Nova Developers",
    description: "An ioctl argument larger than DRM's stack buffer, which must not build",
    license: "GPL",
}
