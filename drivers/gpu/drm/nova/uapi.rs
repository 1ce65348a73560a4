// SPDX-License-Identifier: GPL-2.0

//! The arguments of Nova's ioctls (`include/uapi/drm/nova_drm.h`), as the ioctl table takes
//! them: the header's structures, which the DRM core copies from and to userspace.

use core::mem::{offset_of, size_of};
use kernel::{
    types::{AsBytes, FromBytes},
    uapi,
};

/// `NOVA_GETPARAM_VRAM_BAR_SIZE`: the length of BAR1, in bytes.
pub(crate) const PARAM_VRAM_BAR_SIZE: u64 = uapi::NOVA_GETPARAM_VRAM_BAR_SIZE as u64;

/// Declares the ioctl argument type `$name` over the header's structure `$c`, whose fields are
/// `$field: $ty`, in order.
///
/// Fails to compile unless the fields are the structure's own, of those types, and laid out
/// one after the other from offset 0 to its end: no padding, which the `unsafe impl`s rely on.
macro_rules! ioctl_arg {
    ($(#[$doc:meta])* $name:ident($c:ident) { $($field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[repr(transparent)]
        pub(crate) struct $name(pub(crate) uapi::$c);

        const _: () = {
            // Each field is the structure's, of that type.
            #[allow(dead_code)]
            fn fields(s: &uapi::$c) -> ($(&$ty,)*) {
                ($(&s.$field,)*)
            }
            // And they tile the structure: each starts where the one before ends, the last
            // ends at its size.
            let mut end = 0;
            $(
                assert!(offset_of!(uapi::$c, $field) == end);
                end += size_of::<$ty>();
            )*
            assert!(end == size_of::<uapi::$c>());
        };

        // SAFETY: The structure is the listed integer fields and no padding (checked above):
        // any bytes are a valid value.
        unsafe impl FromBytes for $name {}
        // SAFETY: As above: every byte of a value is a byte of an initialised integer.
        unsafe impl AsBytes for $name {}
    };
}

ioctl_arg!(
    /// The argument of `DRM_IOCTL_NOVA_GETPARAM`.
    GetParam(drm_nova_getparam) { param: u64, value: u64 }
);
ioctl_arg!(
    /// The argument of `DRM_IOCTL_NOVA_GEM_CREATE`.
    GemCreate(drm_nova_gem_create) { handle: u32, pad: u32, size: u64 }
);
ioctl_arg!(
    /// The argument of `DRM_IOCTL_NOVA_GEM_INFO`.
    GemInfo(drm_nova_gem_info) { handle: u32, pad: u32, size: u64 }
);

/// `DRM_IOCTL_NOVA_GETPARAM`.
pub(crate) const GETPARAM: u32 = uapi::DRM_IOCTL_NOVA_GETPARAM;
/// `DRM_IOCTL_NOVA_GEM_CREATE`.
pub(crate) const GEM_CREATE: u32 = uapi::DRM_IOCTL_NOVA_GEM_CREATE;
/// `DRM_IOCTL_NOVA_GEM_INFO`.
pub(crate) const GEM_INFO: u32 = uapi::DRM_IOCTL_NOVA_GEM_INFO;
