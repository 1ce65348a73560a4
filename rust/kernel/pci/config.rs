// SPDX-License-Identifier: GPL-2.0

//! PCI configuration space: typed reads and writes, and capability lookup.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)

use crate::{
    bindings, device,
    error::{to_result, Result},
    ffi::c_int,
    pci::Device,
    prelude::*,
};

/// Turns the return value of a config space accessor (a positive `PCIBIOS_*` code on failure)
/// into a `Result`.
fn pcibios_result(ret: c_int) -> Result {
    // SAFETY: `pcibios_err_to_errno` only computes on its argument.
    to_result(unsafe { bindings::pcibios_err_to_errno(ret) })
}

macro_rules! define_config_read {
    ($name:ident, $c_fn:ident -> $type_name:ty) => {
        #[doc = concat!("Reads the `", stringify!($type_name), "` at `offset` of the \
                         configuration space (C's `", stringify!($c_fn), "()`).")]
        ///
        /// # Errors
        ///
        /// `EINVAL` if the access is misaligned or does not fit the configuration space (256
        /// bytes, or 4096 with extended configuration space), or the accessor's error (e.g.
        /// `ENODEV` for a device that is gone).
        pub fn $name(&self, offset: u16) -> Result<$type_name> {
            self.config_check::<$type_name>(offset)?;
            let mut value: $type_name = 0;
            // SAFETY: The device is valid (type invariant) and `value` is a valid place for the
            // result.
            pcibios_result(unsafe {
                bindings::$c_fn(self.as_raw(), c_int::from(offset), &mut value)
            })?;
            Ok(value)
        }
    };
}

macro_rules! define_config_write {
    ($name:ident, $c_fn:ident <- $type_name:ty) => {
        #[doc = concat!("Writes the `", stringify!($type_name), "` `value` at `offset` of the \
                         configuration space (C's `", stringify!($c_fn), "()`).")]
        ///
        /// # Errors
        ///
        /// As the reads.
        pub fn $name(&self, offset: u16, value: $type_name) -> Result {
            self.config_check::<$type_name>(offset)?;
            // SAFETY: The device is valid (type invariant).
            pcibios_result(unsafe { bindings::$c_fn(self.as_raw(), c_int::from(offset), value) })
        }
    };
}

/// Reads of the configuration space, and capability lookup: any context.
///
/// # Examples
///
/// Compile-only: it needs a PCI device.
///
/// ```
/// use kernel::{bindings, device::Core, pci};
///
/// fn show_config(pdev: &pci::Device<Core>) -> Result {
///     let vendor = pdev.read_config_u16(bindings::PCI_VENDOR_ID as u16)?;
///     let command = pdev.read_config_u16(bindings::PCI_COMMAND as u16)?;
///     let msi = pdev.find_capability(bindings::PCI_CAP_ID_MSI as u8);
///     dev_info!(pdev.as_ref(), "vendor {vendor:#06x} command {command:#06x} MSI at {msi:?}\n");
///     Ok(())
/// }
/// ```
impl<Ctx: device::DeviceContext> Device<Ctx> {
    /// Checks that an access of a `T` at `offset` is aligned and fits the configuration space.
    fn config_check<T>(&self, offset: u16) -> Result {
        let size = core::mem::size_of::<T>();
        let offset = usize::from(offset);
        // SAFETY: The device is valid (type invariant); `cfg_size` is set at enumeration.
        let cfg_size = unsafe { (*self.as_raw()).cfg_size };
        let cfg_size = usize::try_from(cfg_size).map_err(|_| EINVAL)?;
        if offset % size != 0 || offset + size > cfg_size {
            return Err(EINVAL);
        }
        Ok(())
    }

    define_config_read!(read_config_u8, pci_read_config_byte -> u8);
    define_config_read!(read_config_u16, pci_read_config_word -> u16);
    define_config_read!(read_config_u32, pci_read_config_dword -> u32);

    /// The offset of capability `cap` (a `PCI_CAP_ID_*`) in the configuration space, if the
    /// device has it (C's `pci_find_capability()`).
    pub fn find_capability(&self, cap: u8) -> Option<u8> {
        // SAFETY: The device is valid (type invariant).
        let offset = unsafe { bindings::pci_find_capability(self.as_raw(), c_int::from(cap)) };
        (offset != 0).then_some(offset)
    }

    /// The offset of extended capability `cap` (a `PCI_EXT_CAP_ID_*`) in the extended
    /// configuration space, if the device has it (C's `pci_find_ext_capability()`).
    pub fn find_ext_capability(&self, cap: u16) -> Option<u16> {
        // SAFETY: The device is valid (type invariant).
        let offset = unsafe { bindings::pci_find_ext_capability(self.as_raw(), c_int::from(cap)) };
        (offset != 0).then_some(offset)
    }
}

/// Writes change the device's state, so they need the driver to be bound to it.
///
/// They reach the whole configuration space, as C's do: the BARs, `PCI_COMMAND` and the MSI and
/// MSI-X control registers included, which the PCI core keeps its own state about. A driver
/// writes its device's own registers only, and leaves those to the core's functions
/// (`enable_device_mem()`, `alloc_irq_vectors()`).
impl Device<device::Bound> {
    define_config_write!(write_config_u8, pci_write_config_byte <- u8);
    define_config_write!(write_config_u16, pci_write_config_word <- u16);
    define_config_write!(write_config_u32, pci_write_config_dword <- u32);
}
