// SPDX-License-Identifier: GPL-2.0

//! Mappings of memory resources: claim a range of MMIO and map it.
//!
//! C header: [`include/linux/io.h`](srctree/include/linux/io.h)

use crate::{
    bindings,
    device::{Bound, Device},
    devres::Devres,
    error::Result,
    ffi::c_void,
    io::{
        resource::{Flags, Resource, ResourceSize},
        Io, IoRaw,
    },
    prelude::*,
    str::CStr,
};
use core::ops::Deref;

/// A memory resource, claimed (`request_mem_region()`) and mapped (`ioremap()`), with at least
/// `SIZE` bytes; unmapped and released when dropped.
///
/// It derefs to [`Io`], whose accessors reach the registers. A driver gets it only from a bound
/// device and only inside a [`Devres`], so that the mapping and the claim go when the driver
/// unbinds at the latest, even if the `Devres` is leaked (the claim's name, in the driver's
/// module, must not outlive the binding).
///
/// # Invariants
///
/// The `size` bytes at `start` are claimed by this `IoMem` in `iomem_resource`, and `io`
/// describes their mapping, which this `IoMem` owns.
///
/// # Examples
///
/// Compile-only: it needs a memory resource that a device decodes.
///
/// ```
/// use kernel::{
///     c_str,
///     device::{Bound, Device},
///     devres::Devres,
///     io::{mem::IoMem, resource::Resource},
/// };
///
/// fn map_registers(dev: &Device<Bound>, res: &Resource) -> Result<Devres<IoMem<0x100>>> {
///     let regs = IoMem::<0x100>::new(dev, res, c_str!("my_driver"))?;
///     let id = regs.access(dev)?.read32(0x0);
///     dev_info!(dev, "ID register: {id:#x}\n");
///     Ok(regs)
/// }
/// ```
pub struct IoMem<const SIZE: usize = 0> {
    io: IoRaw<SIZE>,
    start: ResourceSize,
    size: ResourceSize,
}

impl<const SIZE: usize> IoMem<SIZE> {
    /// Claims the memory resource `res` for `name` and maps all of it, for `dev`'s binding.
    ///
    /// # Errors
    ///
    /// - `EINVAL` if `res` is not a memory resource, is empty, is smaller than `SIZE` or does
    ///   not start aligned to [`IO_ALIGN`](crate::io::IO_ALIGN);
    /// - `EBUSY` if the range, or part of it, is claimed already;
    /// - `ENOMEM` if it cannot be mapped, or the `Devres` cannot be allocated.
    pub fn new(dev: &Device<Bound>, res: &Resource, name: &'static CStr) -> Result<Devres<Self>> {
        Devres::new(dev, Self::map(res, name)?)
    }

    /// Claims and maps `res` (see [`IoMem::new`]).
    fn map(res: &Resource, name: &'static CStr) -> Result<Self> {
        let (start, size) = (res.start(), res.size());
        let len = usize::try_from(size).map_err(|_| EINVAL)?;
        if !res.flags().contains(Flags::IORESOURCE_MEM) || len == 0 || len < SIZE {
            return Err(EINVAL);
        }
        // SAFETY: `iomem_resource` is the root of the memory resources; `name` outlives the
        // claim, which `drop` ends.
        let claim = unsafe {
            bindings::__request_region(
                core::ptr::addr_of_mut!(bindings::iomem_resource),
                start,
                size,
                name.as_char_ptr(),
                0,
            )
        };
        if claim.is_null() {
            return Err(EBUSY);
        }
        // SAFETY: The range is a memory resource, now claimed by us.
        let addr = unsafe { bindings::ioremap(start, len) };
        if addr.is_null() {
            // SAFETY: Claimed above, and not mapped.
            unsafe {
                bindings::__release_region(
                    core::ptr::addr_of_mut!(bindings::iomem_resource),
                    start,
                    size,
                )
            };
            return Err(ENOMEM);
        }
        let io = match IoRaw::new(addr as usize, len) {
            Ok(io) => io,
            Err(e) => {
                // SAFETY: Mapped and claimed above, and not used.
                unsafe {
                    bindings::iounmap(addr);
                    bindings::__release_region(
                        core::ptr::addr_of_mut!(bindings::iomem_resource),
                        start,
                        size,
                    );
                }
                return Err(e);
            }
        };
        // INVARIANT: The range is claimed and mapped at `addr`, which `io` describes.
        Ok(Self { io, start, size })
    }
}

impl<const SIZE: usize> Deref for IoMem<SIZE> {
    type Target = Io<SIZE>;

    fn deref(&self) -> &Io<SIZE> {
        // SAFETY: By the type invariant `self.io` describes a mapping that lives as long as
        // `self`.
        unsafe { Io::from_raw(&self.io) }
    }
}

impl<const SIZE: usize> Drop for IoMem<SIZE> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the mapping is ours and the range claimed by us; nothing
        // uses the mapping after this (`self` is going).
        unsafe {
            bindings::iounmap(self.io.addr() as *mut c_void);
            bindings::__release_region(
                core::ptr::addr_of_mut!(bindings::iomem_resource),
                self.start,
                self.size,
            );
        }
    }
}
