// SPDX-License-Identifier: GPL-2.0

//! The faux bus: devices that exist only in software.
//!
//! A faux device is bound to the bus's one driver from its creation to its destruction, so a
//! [`Registration`] gives a [`Device<Bound>`] for as long as it lives: enough to hold
//! device-managed resources, or to be the parent of class devices, without pretending to be a
//! platform device.
//!
//! C header: [`include/linux/device/faux.h`](srctree/include/linux/device/faux.h)

use crate::{
    bindings,
    device::{self, Bound, Device},
    prelude::*,
    str::CStr,
};
use core::ptr::{self, NonNull};

/// A faux device, created and bound for as long as this lives, destroyed when it drops.
///
/// # Invariants
///
/// `self.0` is a faux device created by `faux_device_create()`, not destroyed yet, and bound to
/// the faux driver (faux devices cannot be unbound before they are destroyed).
///
/// # Examples
///
/// A device-managed resource lives as long as the faux device is bound:
///
/// ```
/// use kernel::{c_str, device::{Bound, Device}, devres::Devres, faux};
///
/// let reg = faux::Registration::new(c_str!("rust-faux-example"), None)?;
/// let dev: &Device<Bound> = reg.as_ref();
/// let res = Devres::new(dev, 42u32)?;
/// assert_eq!(*res.access(dev)?, 42);
///
/// // Destroying the device unbinds it: its managed resources are released.
/// drop(reg);
/// assert!(res.try_access().is_none());
/// # Ok::<(), Error>(())
/// ```
pub struct Registration(NonNull<bindings::faux_device>);

impl Registration {
    /// Creates a faux device named `name`, a child of `parent` or, without one, of
    /// `/sys/devices/faux`.
    ///
    /// # Errors
    ///
    /// `ENODEV` if the device could not be created (its name is taken, or memory ran out).
    pub fn new(name: &CStr, parent: Option<&Device>) -> Result<Self> {
        let parent = parent.map_or(ptr::null_mut(), |p| p.as_raw());
        // SAFETY: `name` is a NUL-terminated string (the C side copies it), `parent` is null or a
        // valid device, and no callbacks are given.
        let dev = unsafe { bindings::faux_device_create(name.as_char_ptr(), parent, ptr::null()) };
        // INVARIANT: A non-null result is a created faux device, bound to the faux driver.
        Ok(Self(NonNull::new(dev).ok_or(ENODEV)?))
    }
}

impl AsRef<Device<Bound>> for Registration {
    fn as_ref(&self) -> &Device<Bound> {
        // SAFETY: By the type invariant, the device is valid and bound until `self` drops, which
        // cannot happen while `self` is borrowed.
        unsafe { device::Device::from_raw(ptr::addr_of_mut!((*self.0.as_ptr()).dev)) }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, the device was created and not destroyed yet; this is
        // the only destroy.
        unsafe { bindings::faux_device_destroy(self.0.as_ptr()) };
    }
}

// SAFETY: A faux device may be destroyed from any thread.
unsafe impl Send for Registration {}

// SAFETY: Shared access only reaches the device, whose `Device<Bound>` is `Sync`.
unsafe impl Sync for Registration {}
