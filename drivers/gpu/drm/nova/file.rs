// SPDX-License-Identifier: GPL-2.0

//! The DRM files of Nova's devices, and the ioctl about the GPU: GETPARAM.

use crate::{
    driver::NovaDrm,
    uapi::{self, GetParam},
};
use kernel::{drm, prelude::*};

/// Nova's data of an open DRM file (none yet).
pub(crate) struct File;

impl drm::DriverFile for File {
    type Driver = NovaDrm;

    fn open(_dev: &drm::Device<NovaDrm>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::pin(File, GFP_KERNEL)?)
    }
}

impl File {
    /// `DRM_IOCTL_NOVA_GETPARAM`: a value of the GPU; `EINVAL` for an unknown parameter.
    pub(crate) fn getparam(
        dev: &drm::Entered<'_, NovaDrm>,
        arg: &mut GetParam,
        _file: &drm::File<File>,
    ) -> Result<u32> {
        let arg = &mut arg.0;
        arg.value = match arg.param {
            uapi::PARAM_VRAM_BAR_SIZE => dev.bar1_size,
            _ => return Err(EINVAL),
        };
        Ok(0)
    }
}
