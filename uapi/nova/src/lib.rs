//! The userspace side of Nova, the Rust DRM driver for NVIDIA GPUs with a GSP (Turing and
//! newer): its uAPI (`include/uapi/drm/nova_drm.h`, DRM driver `nova`), the names of its chips
//! ([`chip`]) and the discovery of its devices ([`discover`]).
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
//! GETPARAM parameters ([`param`]): [`param::VRAM_BAR_SIZE`] (1, the length of PCI BAR1, the VRAM
//! aperture) is the one of the uAPI as first published, with the three ioctls above.
//! [`param::CHIPSET`] (2) and [`param::REVISION`] (3) are this series' proposal on top of it: the
//! chip as `NV_PMC_BOOT_0` identifies it (architecture << 4 | implementation, 0x180 for GH100)
//! and its revision (major << 4 | minor, 0xa1 for "A1"), so that userspace can name the GPU
//! without parsing the kernel log or PCI IDs. The published header marks this uAPI as not
//! stable (for testing only).
//!
//! ```no_run
//! use drm_client::{Card, NodeKind};
//!
//! let card = Card::open_driver(nova::DRIVER_NAME, NodeKind::Render)?;
//! let chip = nova::chipset(&card)?;
//! println!("{} rev {}", chip.describe(), nova::revision(&card)?);
//! let gem = nova::gem_create(&card, 4097)?;
//! assert_eq!(nova::gem_info(&card, gem.handle)?, gem.size);
//! card.gem_close(gem.handle)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod chip;
pub mod discover;

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

/// The parameters of [`GETPARAM`].
pub mod param {
    /// `NOVA_GETPARAM_VRAM_BAR_SIZE`: the length of PCI BAR1 (the VRAM aperture) in bytes. As
    /// first published.
    pub const VRAM_BAR_SIZE: u64 = 1;
    /// `NOVA_GETPARAM_CHIPSET`: the chipset, `architecture << 4 | implementation` as
    /// `NV_PMC_BOOT_0` gives them (0x180 for GH100); see [`crate::Chipset`]. Our proposal.
    pub const CHIPSET: u64 = 2;
    /// `NOVA_GETPARAM_REVISION`: the chip revision, `major << 4 | minor` (0xa1 is "A1"); see
    /// [`crate::Revision`]. Our proposal.
    pub const REVISION: u64 = 3;
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

/// The chipset ([`param::CHIPSET`]).
pub fn chipset(card: &Card) -> Result<Chipset, Errno> {
    getparam(card, param::CHIPSET).map(Chipset)
}

/// The chip revision ([`param::REVISION`]).
pub fn revision(card: &Card) -> Result<Revision, Errno> {
    getparam(card, param::REVISION).map(Revision)
}

/// What GETPARAM says about a GPU: its chipset, revision and BAR1 size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// [`param::CHIPSET`].
    pub chipset: Chipset,
    /// [`param::REVISION`].
    pub revision: Revision,
    /// [`param::VRAM_BAR_SIZE`], in bytes.
    pub vram_bar_size: u64,
}

/// The [`Identity`] of the GPU of `card`: three GETPARAM calls, the first error ends it.
pub fn identify(card: &Card) -> Result<Identity, Errno> {
    Ok(Identity {
        chipset: chipset(card)?,
        revision: revision(card)?,
        vram_bar_size: vram_bar_size(card)?,
    })
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

    #[test]
    fn params_are_the_headers() {
        assert_eq!(
            (param::VRAM_BAR_SIZE, param::CHIPSET, param::REVISION),
            (1, 2, 3)
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
