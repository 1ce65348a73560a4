// SPDX-License-Identifier: GPL-2.0

//! Review R10 of rust-drm v1 (no negative test of the table's checks): DRM indexes a driver's
//! table by request number, so an entry numbered `COMMAND_BASE + 1` at index 0 would be
//! dispatched for another request. `declare_drm_ioctls!` checks the numbering at compile time,
//! so this must not build.

use kernel::{c_str, drm, drm::ioctl, prelude::*};

/// The one ioctl, numbered as if it were the second.
const GET: u32 = ioctl::IOWR::<u64>(ioctl::COMMAND_BASE + 1);

/// The driver's file data.
struct AFile;

impl drm::DriverFile for AFile {
    type Driver = A;

    fn open(_dev: &drm::Device<A>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::pin(AFile, GFP_KERNEL)?)
    }
}

/// The driver's GEM object data.
struct AObject;

impl drm::gem::DriverObject for AObject {
    type Driver = A;
}

/// The driver.
struct A;

impl drm::Driver for A {
    type Data = u64;
    type File = AFile;
    type Object = AObject;
    const INFO: drm::DriverInfo = drm::DriverInfo {
        major: 1,
        minor: 0,
        patchlevel: 0,
        name: c_str!("a"),
        desc: c_str!("Driver A"),
    };
    // The offending line: the first entry is numbered COMMAND_BASE + 1.
    kernel::declare_drm_ioctls! { A;
        (GET, u64, ioctl::flags::RENDER_ALLOW, get),
    }
}

kernel::declare_drm_driver!(A);

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
