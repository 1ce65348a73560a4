// SPDX-License-Identifier: GPL-2.0

//! DRM: the Direct Rendering Manager, the kernel's interface to GPUs.
//!
//! A DRM driver implements [`Driver`], creates a [`Device`] for each device it binds to, and
//! registers it with a [`Registration`], which unplugs it when the parent device unbinds. Each
//! open of one of its nodes gets a [`File`] with the driver's per-file data, buffers are
//! [`gem::Object`]s behind per-file handles, and the driver's ioctls are declared with
//! [`declare_drm_ioctls!`](crate::declare_drm_ioctls).
//!
//! C header: [`include/drm/drm_drv.h`](srctree/include/drm/drm_drv.h)

pub mod device;
pub mod driver;
pub mod file;
pub mod gem;
pub mod ioctl;

pub use self::device::{Device, Entered};
pub use self::driver::{Driver, DriverInfo, Registration};
pub use self::file::{DriverFile, File};
