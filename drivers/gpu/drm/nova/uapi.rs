// SPDX-License-Identifier: GPL-2.0

//! The arguments of Nova's ioctls (`include/uapi/drm/nova_drm.h`), as the ioctl table takes
//! them: the header's structures, which the DRM core copies from and to userspace.

use core::mem::size_of;
use kernel::{
    types::{AsBytes, FromBytes},
    uapi,
};

/// `NOVA_GETPARAM_VRAM_BAR_SIZE`: the length of BAR1, in bytes.
pub(crate) const PARAM_VRAM_BAR_SIZE: u64 = uapi::NOVA_GETPARAM_VRAM_BAR_SIZE as u64;
/// `NOVA_GETPARAM_CHIPSET`: the chipset, `architecture << 4 | implementation`.
pub(crate) const PARAM_CHIPSET: u64 = uapi::NOVA_GETPARAM_CHIPSET as u64;
/// `NOVA_GETPARAM_REVISION`: the revision, `major << 4 | minor`.
pub(crate) const PARAM_REVISION: u64 = uapi::NOVA_GETPARAM_REVISION as u64;

/// Declares the ioctl argument type `$name` over the header's structure `$c`.
macro_rules! ioctl_arg {
    ($(#[$doc:meta])* $name:ident($c:ident)) => {
        $(#[$doc])*
        #[repr(transparent)]
        pub(crate) struct $name(pub(crate) uapi::$c);

        // Every structure of the header is 16 bytes of `__u32`/`__u64` fields, aligned without
        // padding: the unsafe impls below rely on it.
        const _: () = assert!(size_of::<uapi::$c>() == 16);

        // SAFETY: The structure is integers only, without padding (size checked above): any
        // bytes are a valid value.
        unsafe impl FromBytes for $name {}
        // SAFETY: As above: every byte of a value is initialised.
        unsafe impl AsBytes for $name {}
    };
}

ioctl_arg!(
    /// The argument of `DRM_IOCTL_NOVA_GETPARAM`.
    GetParam(drm_nova_getparam)
);
ioctl_arg!(
    /// The argument of `DRM_IOCTL_NOVA_GEM_CREATE`.
    GemCreate(drm_nova_gem_create)
);
ioctl_arg!(
    /// The argument of `DRM_IOCTL_NOVA_GEM_INFO`.
    GemInfo(drm_nova_gem_info)
);

/// `DRM_IOCTL_NOVA_GETPARAM`.
pub(crate) const GETPARAM: u32 = uapi::DRM_IOCTL_NOVA_GETPARAM;
/// `DRM_IOCTL_NOVA_GEM_CREATE`.
pub(crate) const GEM_CREATE: u32 = uapi::DRM_IOCTL_NOVA_GEM_CREATE;
/// `DRM_IOCTL_NOVA_GEM_INFO`.
pub(crate) const GEM_INFO: u32 = uapi::DRM_IOCTL_NOVA_GEM_INFO;
