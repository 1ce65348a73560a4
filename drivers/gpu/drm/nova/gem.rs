// SPDX-License-Identifier: GPL-2.0

//! Nova's GEM objects, and the ioctls that create and look them up.
//!
//! The objects are backed by shmem and hold nothing of the GPU yet.

use crate::{
    driver::NovaDrm,
    file::File,
    uapi::{GemCreate, GemInfo},
};
use kernel::{drm, drm::gem, prelude::*};

/// Nova's data of a GEM object (none yet).
pub(crate) struct NovaObject;

impl gem::DriverObject for NovaObject {
    type Driver = NovaDrm;
}

type Object = gem::Object<NovaObject>;

impl NovaObject {
    /// `DRM_IOCTL_NOVA_GEM_CREATE`: an object of at least `size` bytes, rounded up to the page
    /// size; returns its handle and size.
    ///
    /// `EINVAL` for a non-zero `pad`, a size of 0 or one too large to round up or back.
    pub(crate) fn create(
        dev: &drm::Entered<'_, NovaDrm>,
        arg: &mut GemCreate,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let arg = &mut arg.0;
        if arg.pad != 0 {
            return Err(EINVAL);
        }
        let size = usize::try_from(arg.size).map_err(|_| EINVAL)?;
        let obj = Object::new(dev, size, NovaObject)?;
        arg.handle = obj.create_handle(file)?;
        arg.size = obj.size() as u64;
        Ok(0)
    }

    /// `DRM_IOCTL_NOVA_GEM_INFO`: the size of the object `handle` of `file`.
    ///
    /// `EINVAL` for a non-zero `pad`, `ENOENT` for a handle the file does not have.
    pub(crate) fn info(
        _dev: &drm::Entered<'_, NovaDrm>,
        arg: &mut GemInfo,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let arg = &mut arg.0;
        if arg.pad != 0 {
            return Err(EINVAL);
        }
        arg.size = Object::lookup_handle(file, arg.handle)?.size() as u64;
        Ok(0)
    }
}
