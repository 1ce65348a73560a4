// SPDX-License-Identifier: GPL-2.0

//! PCI BARs: a memory BAR claimed and mapped for the driver's binding.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)

use crate::{
    bindings, device,
    devres::Devres,
    error::Result,
    ffi::{c_int, c_void},
    io::{resource::Flags, Io, IoRaw},
    pci::Device,
    prelude::*,
    str::CStr,
    types::ARef,
};
use core::ops::Deref;

/// The number of BARs of a PCI device (C's `PCI_STD_NUM_BARS`).
const NUM_BARS: u32 = bindings::PCI_STD_NUM_BARS;

/// A memory BAR of a PCI device, claimed (`pci_request_region()`) and mapped whole
/// (`pci_iomap()`), with at least `SIZE` bytes; unmapped and released when dropped.
///
/// It derefs to [`Io`], whose accessors reach the registers. Drivers get it inside a
/// [`Devres`] from [`Device::iomap_region_sized`], so that the mapping goes when the driver
/// unbinds, whoever still holds it.
///
/// # Invariants
///
/// BAR `num` of `pdev` is claimed by this `Bar`, and `io` describes its mapping, which this
/// `Bar` owns.
pub struct Bar<const SIZE: usize = 0> {
    pdev: ARef<Device>,
    io: IoRaw<SIZE>,
    num: c_int,
}

impl<const SIZE: usize> Bar<SIZE> {
    fn new(pdev: &Device, num: u32, name: &'static CStr) -> Result<Self> {
        if num >= NUM_BARS {
            return Err(EINVAL);
        }
        let len = pdev.resource_len(num)?;
        if len == 0 {
            return Err(ENOMEM);
        }
        if !pdev.resource_flags(num)?.contains(Flags::IORESOURCE_MEM) {
            // An I/O-port BAR: the MMIO accessors must not be used on it.
            return Err(EINVAL);
        }
        let len = usize::try_from(len).map_err(|_| EINVAL)?;
        if len < SIZE {
            return Err(EINVAL);
        }
        let num = num as c_int;
        // SAFETY: `pdev` is a valid PCI device and `num` one of its BARs; `name` outlives the
        // claim, which `drop` ends.
        if unsafe { bindings::pci_request_region(pdev.as_raw(), num, name.as_char_ptr()) } != 0 {
            return Err(EBUSY);
        }
        // SAFETY: As above; the BAR is claimed by us.
        let addr = unsafe { bindings::pci_iomap(pdev.as_raw(), num, 0) };
        if addr.is_null() {
            // SAFETY: Claimed above, and not mapped.
            unsafe { bindings::pci_release_region(pdev.as_raw(), num) };
            return Err(ENOMEM);
        }
        let io = match IoRaw::new(addr as usize, len) {
            Ok(io) => io,
            Err(e) => {
                // SAFETY: Mapped and claimed above, and not used.
                unsafe {
                    bindings::pci_iounmap(pdev.as_raw(), addr);
                    bindings::pci_release_region(pdev.as_raw(), num);
                }
                return Err(e);
            }
        };
        // INVARIANT: The BAR is claimed and mapped whole at `addr`, which `io` describes.
        Ok(Self {
            pdev: pdev.into(),
            io,
            num,
        })
    }
}

impl<const SIZE: usize> Deref for Bar<SIZE> {
    type Target = Io<SIZE>;

    fn deref(&self) -> &Io<SIZE> {
        // SAFETY: By the type invariant `self.io` describes a mapping that lives as long as
        // `self`.
        unsafe { Io::from_raw(&self.io) }
    }
}

impl<const SIZE: usize> Drop for Bar<SIZE> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the mapping is ours and the BAR claimed by us; nothing
        // uses the mapping after this (`self` is going).
        unsafe {
            bindings::pci_iounmap(self.pdev.as_raw(), self.io.addr() as *mut c_void);
            bindings::pci_release_region(self.pdev.as_raw(), self.num);
        }
    }
}

impl Device<device::Bound> {
    /// Claims memory BAR `bar` for `name` and maps all of it, for the driver's binding; the BAR
    /// must have at least `SIZE` bytes, the size up to which constant offsets are checked at
    /// compile time.
    ///
    /// # Errors
    ///
    /// - `EINVAL` if the device is not enabled (enable it first, so that it is disabled only after
    ///   the BAR is unmapped at unbind), or if `bar` is not a BAR (6 or more), is an I/O-port BAR,
    ///   or is smaller than `SIZE`;
    /// - `ENOMEM` if the BAR is not implemented (its length is 0) or cannot be mapped;
    /// - `EBUSY` if it is claimed already (by this driver or another);
    /// - `ENOMEM` if the `Devres` cannot be allocated.
    ///
    /// # Examples
    ///
    /// Compile-only: it needs a bound PCI device.
    ///
    /// ```
    /// use kernel::{c_str, device::Core, devres::Devres, pci, pci::Bar};
    ///
    /// fn map_bar0(pdev: &pci::Device<Core>) -> Result<Devres<Bar<0x100>>> {
    ///     let bar = pdev.iomap_region_sized::<0x100>(0, c_str!("my_driver"))?;
    ///     // During probe the device is bound: access needs no RCU read-side section.
    ///     let regs = bar.access(pdev.as_ref())?;
    ///     regs.write32(1, 0x10); // Checked at build time against 0x100.
    ///     let id = regs.read32(0x0);
    ///     // An offset known only at run time, checked against the real size of the BAR.
    ///     let last = regs.maxsize() - 4;
    ///     let tail = regs.try_read32(last)?;
    ///     dev_info!(pdev.as_ref(), "ID {id:#x}, last word {tail:#x}\n");
    ///     Ok(bar)
    /// }
    /// ```
    pub fn iomap_region_sized<const SIZE: usize>(
        &self,
        bar: u32,
        name: &'static CStr,
    ) -> Result<Devres<Bar<SIZE>>> {
        // SAFETY: The device is valid.
        if !unsafe { bindings::pci_is_enabled(self.as_raw()) } {
            return Err(EINVAL);
        }
        Devres::new(self.as_ref(), Bar::<SIZE>::new(self, bar, name)?)
    }

    /// [`Device::iomap_region_sized`] without a size required at compile time: every access
    /// is checked at run time (the `try_` accessors).
    ///
    /// # Errors
    ///
    /// As [`Device::iomap_region_sized`].
    pub fn iomap_region(&self, bar: u32, name: &'static CStr) -> Result<Devres<Bar>> {
        self.iomap_region_sized::<0>(bar, name)
    }
}
