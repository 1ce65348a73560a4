//! The userspace side of Nova, the Rust DRM driver for NVIDIA GPUs with a GSP (Turing and
//! newer): its uAPI (`include/uapi/drm/nova_drm.h`, DRM driver `nova`), the names its probe
//! line gives chips ([`chip`]), the discovery of its devices ([`discover`]) and their names in
//! the PCI ID database ([`pci_ids`]).
//!
//! # The uAPI
//!
//! Three driver ioctls, all `DRM_IOWR(DRM_COMMAND_BASE + n, 16 bytes)`:
//!
//! | n | ioctl | argument | flags |
//! |---|---|---|---|
//! | 0 | [`GETPARAM`] `0xC0106440` | [`GetParam`]: in `param`, out `value` | `RENDER_ALLOW` (primary and render nodes, no authentication); an unknown `param` is `EINVAL` |
//! | 1 | [`GEM_CREATE`] `0xC0106441` | [`GemCreate`]: in `size`, out `handle` and `size` rounded up to `PAGE_SIZE` | `AUTH \| RENDER_ALLOW`; `pad != 0` or `size == 0` is `EINVAL`; a size too large (`u64::MAX`, 2^63) `EINVAL` (or `ENOMEM`) |
//! | 2 | [`GEM_INFO`] `0xC0106442` | [`GemInfo`]: in `handle`, out `size` | `AUTH \| RENDER_ALLOW`; `pad != 0` is `EINVAL`, an unknown handle `ENOENT` |
//!
//! `AUTH` on a primary node: the first file opened on it is DRM master and so authenticated;
//! another file opened while that one is open is not, and gets `EACCES`. Render nodes need no
//! authentication. GEM handles are closed with DRM core's `DRM_IOCTL_GEM_CLOSE`
//! ([`drm_client::Card::gem_close`]). Once the device is unbound or unplugged, every ioctl on a
//! file still open is `ENODEV`.
//!
//! GETPARAM has one parameter ([`param`]): [`param::VRAM_BAR_SIZE`] (1, the length of PCI BAR1,
//! the VRAM aperture). This is mainline's uAPI of the stub, nothing more: the same ioctls,
//! structures and numbers; the header marks it as not stable (for testing only). Userspace
//! tells GPUs apart by their PCI address and IDs, as for any DRM driver ([`discover`],
//! [`pci_ids`]).
//!
//! ```no_run
//! use drm_client::{Card, NodeKind};
//!
//! let card = Card::open_driver(nova::DRIVER_NAME, NodeKind::Render)?;
//! println!("BAR1: {}", nova::chip::format_size(nova::vram_bar_size(&card)?));
//! let gem = nova::gem_create(&card, 4097)?;
//! assert_eq!(nova::gem_info(&card, gem.handle)?, gem.size);
//! card.gem_close(gem.handle)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod chip;
pub mod discover;
pub mod pci_ids;

pub use chip::{Chipset, Revision};
pub use discover::{Device, PciAddress};

use drm_client::{Card, DriverIoctl, Errno};

/// The DRM driver's name (`DRM_IOCTL_VERSION`), also the PCI driver's
/// (`/sys/bus/pci/drivers/nova`) and the module's.
pub const DRIVER_NAME: &str = "nova";
/// The DRM driver's description (`DRM_IOCTL_VERSION`).
pub const DRIVER_DESC: &str = "NVIDIA GPUs with a GSP (stub)";
/// The DRM driver's version: major, minor, patch level.
pub const DRIVER_VERSION: (i32, i32, i32) = (0, 0, 0);

/// The parameters of [`GETPARAM`]: any other is `EINVAL`.
pub mod param {
    /// `NOVA_GETPARAM_VRAM_BAR_SIZE`: the length of PCI BAR1 (the VRAM aperture) in bytes.
    pub const VRAM_BAR_SIZE: u64 = 1;
}

/// `struct drm_nova_getparam`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GetParam {
    /// In: which parameter ([`param`]).
    pub param: u64,
    /// Out: its value.
    pub value: u64,
}

/// `struct drm_nova_gem_create`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GemCreate {
    /// Out: the new object's handle.
    pub handle: u32,
    /// Must be 0 (`EINVAL` otherwise).
    pub pad: u32,
    /// In: the size asked for; out: the size given (rounded up to `PAGE_SIZE`).
    pub size: u64,
}

/// `struct drm_nova_gem_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GemInfo {
    /// In: the handle.
    pub handle: u32,
    /// Must be 0 (`EINVAL` otherwise).
    pub pad: u32,
    /// Out: the object's size.
    pub size: u64,
}

const _: () = assert!(size_of::<GetParam>() == 16);
const _: () = assert!(size_of::<GemCreate>() == 16);
const _: () = assert!(size_of::<GemInfo>() == 16);

/// `DRM_IOCTL_NOVA_GETPARAM`.
pub const GETPARAM: DriverIoctl<GetParam> = DriverIoctl::read_write(0x00, "NOVA_GETPARAM");
/// `DRM_IOCTL_NOVA_GEM_CREATE`.
pub const GEM_CREATE: DriverIoctl<GemCreate> = DriverIoctl::read_write(0x01, "NOVA_GEM_CREATE");
/// `DRM_IOCTL_NOVA_GEM_INFO`.
pub const GEM_INFO: DriverIoctl<GemInfo> = DriverIoctl::read_write(0x02, "NOVA_GEM_INFO");
/// How many ioctls the driver's table has: a driver ioctl number from here on is past it
/// (`EINVAL` from DRM core).
pub const NUM_IOCTLS: u8 = 3;

// The request numbers of the header.
const _: () = assert!(GETPARAM.opcode() == 0xC010_6440);
const _: () = assert!(GEM_CREATE.opcode() == 0xC010_6441);
const _: () = assert!(GEM_INFO.opcode() == 0xC010_6442);

/// [`GETPARAM`] with the argument as given (the driver writes `value`).
pub fn getparam_raw(card: &Card, arg: &mut GetParam) -> Result<(), Errno> {
    card.ioctl(GETPARAM, arg)
}

/// The value of parameter `param` ([`param`]).
pub fn getparam(card: &Card, param: u64) -> Result<u64, Errno> {
    let mut arg = GetParam { param, value: 0 };
    getparam_raw(card, &mut arg)?;
    Ok(arg.value)
}

/// The length of BAR1, the VRAM aperture, in bytes ([`param::VRAM_BAR_SIZE`]).
pub fn vram_bar_size(card: &Card) -> Result<u64, Errno> {
    getparam(card, param::VRAM_BAR_SIZE)
}

/// [`GEM_CREATE`] with the argument as given (a non-zero `pad`, say); the driver writes
/// `handle` and `size`.
pub fn gem_create_raw(card: &Card, arg: &mut GemCreate) -> Result<(), Errno> {
    card.ioctl(GEM_CREATE, arg)
}

/// A new GEM object of at least `size` bytes: its handle and size.
pub fn gem_create(card: &Card, size: u64) -> Result<GemCreate, Errno> {
    let mut arg = GemCreate {
        size,
        ..GemCreate::default()
    };
    gem_create_raw(card, &mut arg)?;
    Ok(arg)
}

/// [`GEM_INFO`] with the argument as given (a non-zero `pad`, say); the driver writes `size`.
pub fn gem_info_raw(card: &Card, arg: &mut GemInfo) -> Result<(), Errno> {
    card.ioctl(GEM_INFO, arg)
}

/// The size of the object of `handle`.
pub fn gem_info(card: &Card, handle: u32) -> Result<u64, Errno> {
    let mut arg = GemInfo {
        handle,
        ..GemInfo::default()
    };
    gem_info_raw(card, &mut arg)?;
    Ok(arg.size)
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
        assert_eq!(format!("{GEM_INFO:?}"), "NOVA_GEM_INFO (0xc0106442)");
        let past = DriverIoctl::<[u8; 16]>::read_write(NUM_IOCTLS, "past");
        assert_eq!(past.opcode(), 0xC010_6443);
    }

    #[test]
    fn structs_are_laid_out_as_in_c() {
        use std::mem::offset_of;
        assert_eq!(
            (offset_of!(GetParam, param), offset_of!(GetParam, value)),
            (0, 8)
        );
        assert_eq!(
            (
                offset_of!(GemCreate, handle),
                offset_of!(GemCreate, pad),
                offset_of!(GemCreate, size)
            ),
            (0, 4, 8)
        );
        assert_eq!(
            (
                offset_of!(GemInfo, handle),
                offset_of!(GemInfo, pad),
                offset_of!(GemInfo, size)
            ),
            (0, 4, 8)
        );
        assert_eq!(align_of::<GemInfo>(), 8);
        let c = GemCreate {
            handle: 2,
            pad: 0,
            size: 0x1000,
        };
        assert_eq!(
            bytemuck::bytes_of(&c),
            [2, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0]
        );
    }

    /// The `#define`s of the series' header (its tip view) whose names start with `prefix`,
    /// with their values.
    fn header_defines(prefix: &str) -> Vec<(String, u64)> {
        const HEADER: &str = include_str!("../../../include/uapi/drm/nova_drm.h");
        HEADER
            .lines()
            .filter_map(|l| l.strip_prefix("#define "))
            .filter_map(|l| l.split_once(char::is_whitespace))
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, value)| {
                let v = value.trim();
                let v = match v.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => v.parse(),
                };
                (name.to_string(), v.expect("a number"))
            })
            .collect()
    }

    #[test]
    fn params_and_commands_are_the_headers() {
        // Mainline's: one parameter, three commands; nothing else in the header.
        assert_eq!(
            header_defines("NOVA_GETPARAM_"),
            [(
                "NOVA_GETPARAM_VRAM_BAR_SIZE".to_string(),
                param::VRAM_BAR_SIZE
            )]
        );
        let commands: Vec<u64> = [GETPARAM.nr(), GEM_CREATE.nr(), GEM_INFO.nr()]
            .map(u64::from)
            .into();
        assert_eq!(
            header_defines("DRM_NOVA_"),
            [
                ("DRM_NOVA_GETPARAM".to_string(), commands[0]),
                ("DRM_NOVA_GEM_CREATE".to_string(), commands[1]),
                ("DRM_NOVA_GEM_INFO".to_string(), commands[2]),
            ]
        );
    }

    #[test]
    fn sizes_round_up_to_pages() {
        assert_eq!(page_align(1, 4096), Some(4096));
        assert_eq!(page_align(4095, 4096), Some(4096));
        assert_eq!(page_align(4096, 4096), Some(4096));
        assert_eq!(page_align(4097, 4096), Some(8192));
        assert_eq!(page_align((1 << 20) + 1, 4096), Some((1 << 20) + 4096));
        assert_eq!(page_align(u64::MAX, 4096), None);
        assert_eq!(page_align(5, 65536), Some(65536));
    }
}
