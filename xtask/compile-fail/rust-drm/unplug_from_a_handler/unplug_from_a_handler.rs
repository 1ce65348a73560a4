// SPDX-License-Identifier: GPL-2.0

//! An ioctl handler that unplugs its device would wait for itself: the unplug waits for every
//! entered section, the handler's own among them (review R3 of rust-drm v1, with R2's entered
//! handlers). `drm::Device::unplug` takes the parent in a bus callback (`Core`), which no
//! handler has, so this must not build.

#[macro_use]
mod drivers;

use kernel::{drm, drm::ioctl, prelude::*};

/// The request of the driver's one ioctl.
const UNPLUG: u32 = ioctl::IOWR::<u64>(ioctl::COMMAND_BASE);

drm_driver!(A, "a", AFile, AObject, u8, {
    kernel::declare_drm_ioctls! { A;
        (UNPLUG, u64, ioctl::flags::RENDER_ALLOW, unplug),
    }
});

/// A handler that unplugs its device.
fn unplug(dev: &drm::Entered<'_, A>, _arg: &mut u64, _file: &drm::File<AFile>) -> Result<u32> {
    // The offending line: the parent a handler has is not in a bus callback.
    dev.unplug(dev.parent())?;
    Ok(0)
}

struct UnplugFromAHandler;

impl kernel::Module for UnplugFromAHandler {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(UnplugFromAHandler)
    }
}

module! {
    type: UnplugFromAHandler,
    name: "unplug_from_a_handler",
    author: "Nova Developers",
    description: "An ioctl handler that unplugs its device, which must not build",
    license: "GPL",
}
