// SPDX-License-Identifier: GPL-2.0

//! Review R1 of rust-drm v1: an ioctl table declared for driver B inside driver A's `impl`
//! would let A's devices run B's handler on A's data (a `u8` read as a `u64`). The table's type
//! names its driver, so this must not build.

use kernel::{c_str, drm, drm::ioctl, prelude::*};

/// The request of each driver's one ioctl.
const GET: u32 = ioctl::IOWR::<u64>(ioctl::COMMAND_BASE);

/// Driver A's file data.
struct AFile;

impl drm::DriverFile for AFile {
    type Driver = A;

    fn open(_dev: &drm::Device<A>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::pin(AFile, GFP_KERNEL)?)
    }
}

/// Driver A's GEM object data.
struct AObject;

impl drm::gem::DriverObject for AObject {
    type Driver = A;
}

/// Driver A, whose devices' data is a `u8`.
struct A;

impl drm::Driver for A {
    type Data = u8;
    type File = AFile;
    type Object = AObject;
    const INFO: drm::DriverInfo = drm::DriverInfo {
        major: 1,
        minor: 0,
        patchlevel: 0,
        name: c_str!("a"),
        desc: c_str!("Driver A"),
    };
    // The offending line: B's table as A's.
    kernel::declare_drm_ioctls! { B;
        (GET, u64, ioctl::flags::RENDER_ALLOW, b_get),
    }
}

kernel::declare_drm_driver!(A);

/// Driver B's file data.
struct BFile;

impl drm::DriverFile for BFile {
    type Driver = B;

    fn open(_dev: &drm::Device<B>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::pin(BFile, GFP_KERNEL)?)
    }
}

/// Driver B's GEM object data.
struct BObject;

impl drm::gem::DriverObject for BObject {
    type Driver = B;
}

/// Driver B, whose devices' data is a `u64`.
struct B;

impl drm::Driver for B {
    type Data = u64;
    type File = BFile;
    type Object = BObject;
    const INFO: drm::DriverInfo = drm::DriverInfo {
        major: 1,
        minor: 0,
        patchlevel: 0,
        name: c_str!("b"),
        desc: c_str!("Driver B"),
    };
    kernel::declare_drm_ioctls! { B;
        (GET, u64, ioctl::flags::RENDER_ALLOW, b_get),
    }
}

kernel::declare_drm_driver!(B);

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
