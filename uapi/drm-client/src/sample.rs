//! The uAPI of the Rust DRM sample driver (`rust_drm`, platform driver `rust_driver_drm`):
//! five driver ioctls, all `_IOWR('d', DRM_COMMAND_BASE + n, 16 bytes)`.
//!
//! | n | ioctl | argument | flags |
//! |---|---|---|---|
//! | 0 | [`GETPARAM`] `0xC0106440` | [`GetParam`]: in `param`, out `value` | none: primary node only (`EACCES` on a render node); unknown `param` is `EINVAL` |
//! | 1 | [`GEM_CREATE`] `0xC0106441` | [`GemCreate`]: in `size`, out `handle` and `size` rounded up to `PAGE_SIZE` | `AUTH \| RENDER_ALLOW`; `pad != 0` or `size == 0` is `EINVAL`; a size that cannot be allocated `EINVAL` or `ENOMEM` |
//! | 2 | [`GEM_INFO`] `0xC0106442` | [`GemInfo`]: in `handle`, out `size` | `AUTH \| RENDER_ALLOW`; `pad != 0` is `EINVAL`, an unknown handle `ENOENT` |
//! | 3 | [`DEBUG_SLEEP_ENTERED`] `0xC0106443` | [`Sleep`]: in `ms`, out `unplugged` | `RENDER_ALLOW`; sleeps `ms` (at most 10000, else `EINVAL`) with the device entered; `ENOTTY` without `CONFIG_SAMPLE_RUST_DRIVER_DRM_DEBUG` |
//! | 4 | [`DEBUG_SLEEP`] `0xC0106444` | [`Sleep`] | the same, not entered |
//!
//! Handles are closed with DRM core's `DRM_IOCTL_GEM_CLOSE` ([`crate::Card::gem_close`]).

use crate::{Card, DriverIoctl, Errno};

/// The DRM driver's name (`DRM_IOCTL_VERSION`).
pub const DRIVER_NAME: &str = "rust_drm";
/// Its description.
pub const DRIVER_DESC: &str = "Rust DRM sample driver";
/// The date `DRM_IOCTL_VERSION` gives: DRM core 6.12.117 no longer reports drivers' dates
/// (deprecated) and answers `"0"` for every driver; the Rust abstractions have none.
pub const VERSION_DATE: &str = "0";
/// Its version: major, minor, patch level.
pub const DRIVER_VERSION: (i32, i32, i32) = (1, 0, 0);
/// The platform driver's name (`/sys/bus/platform/drivers/rust_driver_drm`), also the
/// module's.
pub const PLATFORM_DRIVER: &str = "rust_driver_drm";
/// The platform device the C module `rust_driver_drm_device` registers.
pub const PLATFORM_DEVICE: &str = "rust-drm-sample";

/// [`GETPARAM`]'s `param`: the kernel's `PAGE_SIZE`.
pub const PARAM_PAGE_SIZE: u64 = 1;
/// [`GETPARAM`]'s `param`: how many GEM objects of this DRM device are alive.
pub const PARAM_OBJECT_COUNT: u64 = 2;

/// `struct drm_rust_drm_getparam`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GetParam {
    /// In: which parameter (`PARAM_*`).
    pub param: u64,
    /// Out: its value.
    pub value: u64,
}

/// `struct drm_rust_drm_gem_create`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GemCreate {
    /// Out: the new object's handle.
    pub handle: u32,
    /// Must be 0.
    pub pad: u32,
    /// In: the size asked for; out: the size given (rounded up to `PAGE_SIZE`).
    pub size: u64,
}

/// `struct drm_rust_drm_gem_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GemInfo {
    /// In: the handle.
    pub handle: u32,
    /// Must be 0.
    pub pad: u32,
    /// Out: the object's size.
    pub size: u64,
}

/// `struct drm_rust_drm_sleep`, the argument of the debug ioctls.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Sleep {
    /// In: how long to sleep, in milliseconds.
    pub ms: u64,
    /// In: must be 0. Out: 1 if the device's unplug had begun when the sleep ended (it refuses
    /// new entries from its start, even while it waits for an entered handler), else 0.
    pub unplugged: u64,
}

const _: () = assert!(size_of::<Sleep>() == 16);
const _: () = assert!(size_of::<GetParam>() == 16);
const _: () = assert!(size_of::<GemCreate>() == 16);
const _: () = assert!(size_of::<GemInfo>() == 16);

/// `DRM_IOCTL_RUST_DRM_GETPARAM`.
pub const GETPARAM: DriverIoctl<GetParam> = DriverIoctl::read_write(0x00, "RUST_DRM_GETPARAM");
/// `DRM_IOCTL_RUST_DRM_GEM_CREATE`.
pub const GEM_CREATE: DriverIoctl<GemCreate> = DriverIoctl::read_write(0x01, "RUST_DRM_GEM_CREATE");
/// `DRM_IOCTL_RUST_DRM_GEM_INFO`.
pub const GEM_INFO: DriverIoctl<GemInfo> = DriverIoctl::read_write(0x02, "RUST_DRM_GEM_INFO");
/// `DRM_IOCTL_RUST_DRM_DEBUG_SLEEP_ENTERED`.
pub const DEBUG_SLEEP_ENTERED: DriverIoctl<Sleep> =
    DriverIoctl::read_write(0x03, "RUST_DRM_DEBUG_SLEEP_ENTERED");
/// `DRM_IOCTL_RUST_DRM_DEBUG_SLEEP`.
pub const DEBUG_SLEEP: DriverIoctl<Sleep> = DriverIoctl::read_write(0x04, "RUST_DRM_DEBUG_SLEEP");
/// How many ioctls the driver's table has: a number from here on is past it (`EINVAL`).
pub const NUM_IOCTLS: u8 = 5;

/// The value of parameter `param` (through a primary node).
pub fn getparam(card: &Card, param: u64) -> Result<u64, Errno> {
    let mut arg = GetParam { param, value: 0 };
    card.ioctl(GETPARAM, &mut arg)?;
    Ok(arg.value)
}

/// A new GEM object of at least `size` bytes: its handle and size.
pub fn gem_create(card: &Card, size: u64) -> Result<GemCreate, Errno> {
    let mut arg = GemCreate {
        size,
        ..GemCreate::default()
    };
    card.ioctl(GEM_CREATE, &mut arg)?;
    Ok(arg)
}

/// The size of the object of `handle`.
pub fn gem_info(card: &Card, handle: u32) -> Result<u64, Errno> {
    let mut arg = GemInfo {
        handle,
        ..GemInfo::default()
    };
    card.ioctl(GEM_INFO, &mut arg)?;
    Ok(arg.size)
}

/// Sleeps `ms` milliseconds in the driver, with the device entered or not: whether the device
/// was being or had been unplugged when the sleep ended.
pub fn debug_sleep(card: &Card, entered: bool, ms: u64) -> Result<bool, Errno> {
    let mut arg = Sleep { ms, unplugged: 0 };
    let ioctl = if entered {
        DEBUG_SLEEP_ENTERED
    } else {
        DEBUG_SLEEP
    };
    card.ioctl(ioctl, &mut arg)?;
    Ok(arg.unplugged != 0)
}

/// `size` rounded up to a multiple of `page` (a power of two), as the driver rounds a GEM
/// object's size; `None` when that overflows.
pub fn page_align(size: u64, page: u64) -> Option<u64> {
    debug_assert!(page.is_power_of_two());
    size.checked_add(page - 1).map(|s| s & !(page - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_are_the_headers() {
        assert_eq!(GETPARAM.opcode(), 0xC010_6440);
        assert_eq!(GEM_CREATE.opcode(), 0xC010_6441);
        assert_eq!(GEM_INFO.opcode(), 0xC010_6442);
        assert_eq!(DEBUG_SLEEP_ENTERED.opcode(), 0xC010_6443);
        assert_eq!(DEBUG_SLEEP.opcode(), 0xC010_6444);
        // The first number past the table, as the tests use it.
        let past = DriverIoctl::<[u8; 16]>::read_write(NUM_IOCTLS, "past");
        assert_eq!(past.opcode(), 0xC010_6445);
    }

    #[test]
    fn structs_are_laid_out_as_in_c() {
        assert_eq!(
            (
                std::mem::offset_of!(GetParam, param),
                std::mem::offset_of!(GetParam, value)
            ),
            (0, 8)
        );
        assert_eq!(
            (
                std::mem::offset_of!(GemCreate, handle),
                std::mem::offset_of!(GemCreate, pad),
                std::mem::offset_of!(GemCreate, size)
            ),
            (0, 4, 8)
        );
        assert_eq!(std::mem::offset_of!(GemInfo, size), 8);
        assert_eq!(align_of::<GemCreate>(), 8);
        let c = GemCreate {
            handle: 1,
            pad: 0,
            size: 0x1000,
        };
        assert_eq!(
            bytemuck::bytes_of(&c),
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn sizes_round_up_to_pages() {
        assert_eq!(page_align(1, 4096), Some(4096));
        assert_eq!(page_align(4096, 4096), Some(4096));
        assert_eq!(page_align(4097, 4096), Some(8192));
        assert_eq!(page_align((1 << 20) + 1, 4096), Some((1 << 20) + 4096));
        assert_eq!(page_align(0, 4096), Some(0));
        assert_eq!(page_align(u64::MAX, 4096), None);
        assert_eq!(page_align(1 << 63, 4096), Some(1 << 63));
        assert_eq!(page_align(5, 16384), Some(16384));
    }
}
