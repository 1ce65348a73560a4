// SPDX-License-Identifier: GPL-2.0

//! I/O resources: the ranges of physical addresses (memory or I/O ports) that a device decodes.
//!
//! C header: [`include/linux/ioport.h`](srctree/include/linux/ioport.h)

use crate::{bindings, ffi::c_ulong, str::CStr, types::Opaque};
use core::ops::BitOr;

/// A physical address or size of a resource, as C's `resource_size_t`.
pub type ResourceSize = bindings::resource_size_t;

/// The flags of a [`Resource`] (C's `IORESOURCE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(c_ulong);

impl Flags {
    /// I/O ports.
    pub const IORESOURCE_IO: Flags = Flags(bindings::IORESOURCE_IO as c_ulong);
    /// Memory (MMIO).
    pub const IORESOURCE_MEM: Flags = Flags(bindings::IORESOURCE_MEM as c_ulong);
    /// Memory without side effects on reads.
    pub const IORESOURCE_PREFETCH: Flags = Flags(bindings::IORESOURCE_PREFETCH as c_ulong);
    /// Memory above 4 GiB possible (a 64-bit PCI BAR).
    pub const IORESOURCE_MEM_64: Flags = Flags(bindings::IORESOURCE_MEM_64 as c_ulong);
    /// A driver has claimed the range.
    pub const IORESOURCE_BUSY: Flags = Flags(bindings::IORESOURCE_BUSY as c_ulong);

    /// The flags from C's bits.
    pub const fn from_raw(bits: c_ulong) -> Self {
        Self(bits)
    }

    /// The C bits.
    pub const fn as_raw(self) -> c_ulong {
        self.0
    }

    /// Whether every flag of `flags` is set in `self`.
    pub const fn contains(self, flags: Flags) -> bool {
        self.0 & flags.0 == flags.0
    }
}

impl BitOr for Flags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A resource, as `struct resource`: a range of physical addresses with flags and a name.
///
/// # Invariants
///
/// The wrapped `struct resource` is valid, and its range, flags and name do not change, for as
/// long as a reference to this exists.
///
/// # Examples
///
/// ```
/// use kernel::bindings;
/// use kernel::io::resource::{Flags, Resource};
///
/// // A resource as a bus would describe a device's 4 KiB register window.
/// let mut raw = bindings::resource {
///     start: 0xfe00_0000,
///     end: 0xfe00_0fff,
///     name: kernel::c_str!("regs").as_char_ptr(),
///     flags: Flags::IORESOURCE_MEM.as_raw(),
///     // SAFETY: All-zeroes is a valid `struct resource` (no parent, siblings or children).
///     ..unsafe { core::mem::zeroed() }
/// };
/// // SAFETY: `raw` is valid and not changed while `res` lives.
/// let res = unsafe { Resource::from_raw(&mut raw) };
/// assert_eq!(res.start(), 0xfe00_0000);
/// assert_eq!(res.size(), 0x1000);
/// assert!(res.flags().contains(Flags::IORESOURCE_MEM));
/// assert!(!res.flags().contains(Flags::IORESOURCE_IO));
/// assert_eq!(res.name().map(|n| n.as_bytes()), Some(&b"regs"[..]));
/// ```
#[repr(transparent)]
pub struct Resource(Opaque<bindings::resource>);

impl Resource {
    /// The resource at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct resource` whose range, flags and name do not change for
    /// the lifetime `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::resource) -> &'a Self {
        // SAFETY: `Resource` is a transparent wrapper of `struct resource`; the caller promises
        // the rest.
        // INVARIANT: The caller promises validity and stability for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_raw(&self) -> *mut bindings::resource {
        self.0.get()
    }

    /// The first address of the range.
    pub fn start(&self) -> ResourceSize {
        // SAFETY: By the type invariant the resource is valid and `start` does not change; only
        // that field is read (the tree links around it may change).
        unsafe { (*self.as_raw()).start }
    }

    /// The size of the range in bytes (C's `resource_size()`): zero for an empty resource.
    pub fn size(&self) -> ResourceSize {
        // SAFETY: As in `start`, for `end`.
        let end = unsafe { (*self.as_raw()).end };
        // As C's `end - start + 1`: an empty resource has `end == start - 1`.
        end.wrapping_sub(self.start()).wrapping_add(1)
    }

    /// The resource's flags.
    pub fn flags(&self) -> Flags {
        // SAFETY: As in `start`, for `flags`.
        Flags(unsafe { (*self.as_raw()).flags })
    }

    /// The resource's name, if it has one.
    pub fn name(&self) -> Option<&CStr> {
        // SAFETY: As in `start`, for `name`.
        let name = unsafe { (*self.as_raw()).name };
        if name.is_null() {
            return None;
        }
        // SAFETY: A non-NULL name of a valid resource is a NUL-terminated string that lives as
        // long as the resource (type invariant).
        Some(unsafe { CStr::from_char_ptr(name) })
    }
}
