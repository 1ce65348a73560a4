// SPDX-License-Identifier: GPL-2.0

//! DRM drivers: what a driver declares, the C vtables built from it, and the registration of a
//! device with userspace.
//!
//! C header: [`include/drm/drm_drv.h`](srctree/include/drm/drm_drv.h)

use crate::{
    alloc::flags::GFP_KERNEL,
    bindings, device, devres,
    drm::{self, device::Plug, file::DriverFile, gem},
    error::{to_result, Result},
    prelude::*,
    str::CStr,
    types::ARef,
};
use core::mem::MaybeUninit;

/// The driver's identity, as `DRM_IOCTL_VERSION` reports it to userspace.
pub struct DriverInfo {
    /// The major version number.
    pub major: i32,
    /// The minor version number.
    pub minor: i32,
    /// The patch level.
    pub patchlevel: i32,
    /// The driver's name (the `name` of `DRM_IOCTL_VERSION`, and what userspace looks for).
    pub name: &'static CStr,
    /// A one-line description.
    pub desc: &'static CStr,
}

/// The driver asks for a render node besides the primary node.
///
/// Render nodes need no authentication and accept only ioctls marked
/// [`RENDER_ALLOW`](drm::ioctl::flags::RENDER_ALLOW).
pub const FEAT_RENDER: u32 = bindings::drm_driver_feature_DRIVER_RENDER;

/// A DRM driver.
///
/// Every driver uses GEM for its buffers; the optional features it may ask for are the `FEAT_*`
/// constants of this module. Its C vtables are declared in its module with
/// [`declare_drm_driver!`](crate::declare_drm_driver), which implements [`DriverVTable`].
pub trait Driver: DriverVTable + Sized + Send + Sync + 'static {
    /// The data of each of the driver's devices, reached by dereferencing a
    /// [`drm::Device`]; shared by every ioctl, and dropped when the device's last reference
    /// goes: the driver's own, each open file's and each GEM object's. For a registered device
    /// that is after its unplug; for one never registered it can be at any time.
    ///
    /// The data must not own references to the device's GEM objects: each object holds a
    /// reference to the device, so the three would keep each other alive and leak.
    type Data: Send + Sync;

    /// The driver's per-open-file data.
    type File: DriverFile<Driver = Self>;

    /// The driver's data of each GEM object.
    type Object: gem::DriverObject<Driver = Self>;

    /// The driver's identity.
    const INFO: DriverInfo;

    /// Optional features (the `FEAT_*` constants).
    const FEATURES: u32 = 0;

    /// The driver's ioctls, declared with [`declare_drm_ioctls!`](crate::declare_drm_ioctls).
    ///
    /// The table's type names the driver, so that its handlers only ever get this driver's
    /// devices and files: another driver's table does not compile here.
    const IOCTLS: &'static [drm::ioctl::Ioctl<Self>];
}

/// A driver's C vtables: its `struct drm_driver` and the file operations of its nodes.
///
/// # Safety
///
/// Implemented only by [`declare_drm_driver!`](crate::declare_drm_driver):
/// [`DriverVTable::vtable`] returns a [`VTable`] built by `VTable::new()` for `Self`, whose
/// file operations' owner is the module that contains the driver (so that an open file pins
/// the module's code and the vtables).
pub unsafe trait DriverVTable {
    /// The driver's `struct drm_driver`.
    fn vtable() -> &'static VTable;
}

/// The file operations of a DRM driver's nodes: DRM's own, owned by the driver's module.
#[repr(transparent)]
pub struct FileOperations(bindings::file_operations);

// SAFETY: The file operations are only read, by DRM and the VFS, from any thread.
unsafe impl Sync for FileOperations {}

impl FileOperations {
    /// DRM's file operations with GEM's `mmap`, owned by `owner` (the driver's module, or null
    /// for a driver built into the kernel).
    #[doc(hidden)]
    pub const fn new(owner: *mut bindings::module) -> Self {
        // SAFETY: All-zero is a valid `file_operations`: null pointers and `None` callbacks.
        let mut fops: bindings::file_operations = unsafe { MaybeUninit::zeroed().assume_init() };
        fops.owner = owner;
        fops.open = Some(bindings::drm_open);
        fops.release = Some(bindings::drm_release);
        fops.unlocked_ioctl = Some(bindings::drm_ioctl);
        #[cfg(CONFIG_COMPAT)]
        {
            fops.compat_ioctl = Some(bindings::drm_compat_ioctl);
        }
        fops.poll = Some(bindings::drm_poll);
        fops.read = Some(bindings::drm_read);
        fops.llseek = Some(bindings::noop_llseek);
        fops.mmap = Some(bindings::drm_gem_mmap);
        fops.fop_flags = bindings::FOP_UNSIGNED_OFFSET;
        Self(fops)
    }
}

/// A DRM driver's `struct drm_driver`.
#[repr(transparent)]
pub struct VTable(bindings::drm_driver);

// SAFETY: The vtable is only read, by DRM, from any thread.
unsafe impl Sync for VTable {}

impl VTable {
    /// The vtable of driver `T`, whose nodes have the file operations `fops`.
    ///
    /// Fails to compile if `T` asks for a feature other than the `FEAT_*` ones.
    #[doc(hidden)]
    pub const fn new<T: Driver>(fops: &'static FileOperations) -> Self {
        assert!(
            T::FEATURES & !FEAT_RENDER == 0,
            "a DRM driver may only ask for the FEAT_* features"
        );
        // SAFETY: All-zero is a valid `drm_driver`: null pointers, `None` callbacks and zero
        // numbers.
        let mut drv: bindings::drm_driver = unsafe { MaybeUninit::zeroed().assume_init() };
        drv.open = Some(drm::file::open_callback::<T::File>);
        drv.postclose = Some(drm::file::postclose_callback::<T::File>);
        drv.major = T::INFO.major;
        drv.minor = T::INFO.minor;
        drv.patchlevel = T::INFO.patchlevel;
        drv.name = T::INFO.name.as_char_ptr().cast_mut();
        drv.desc = T::INFO.desc.as_char_ptr().cast_mut();
        drv.driver_features = bindings::drm_driver_feature_DRIVER_GEM | T::FEATURES;
        // `Ioctl<T>` is a transparent `drm_ioctl_desc`; each entry's handler takes `T`'s devices
        // and files (its invariant), which are the only ones DRM gives the table.
        drv.ioctls = T::IOCTLS.as_ptr().cast::<bindings::drm_ioctl_desc>();
        drv.num_ioctls = T::IOCTLS.len() as i32;
        drv.fops = &fops.0;
        Self(drv)
    }

    /// The vtable for the C side.
    pub(crate) fn as_raw(&self) -> *const bindings::drm_driver {
        &self.0
    }
}

/// Declares the C vtables of DRM driver `$driver` in the module that contains it, implementing
/// [`DriverVTable`] for it.
///
/// Use it once, next to the driver's [`Driver`] implementation. The vtables are statics of the
/// calling module, so that the file operations of the driver's nodes are owned by that module:
/// a file open on one of its nodes keeps the module from being removed.
#[macro_export]
macro_rules! declare_drm_driver {
    ($driver:ty) => {
        const _: () = {
            #[cfg(MODULE)]
            extern "C" {
                static __this_module: $crate::types::Opaque<$crate::bindings::module>;
            }

            #[cfg(MODULE)]
            static FOPS: $crate::drm::driver::FileOperations =
                // SAFETY: `__this_module` is the module that contains this code; only its
                // address is taken.
                $crate::drm::driver::FileOperations::new(unsafe { __this_module.get() });
            #[cfg(not(MODULE))]
            static FOPS: $crate::drm::driver::FileOperations =
                $crate::drm::driver::FileOperations::new(::core::ptr::null_mut());

            static VTABLE: $crate::drm::driver::VTable =
                $crate::drm::driver::VTable::new::<$driver>(&FOPS);

            // SAFETY: `VTABLE` is built by `VTable::new` for `$driver`, with file operations
            // owned by the module that contains it.
            unsafe impl $crate::drm::driver::DriverVTable for $driver {
                fn vtable() -> &'static $crate::drm::driver::VTable {
                    &VTABLE
                }
            }
        };
    };
}

/// A DRM device's registration with userspace: its nodes exist while this lives.
///
/// It belongs to the parent's binding (devres), and its drop unplugs the device
/// ([`drm_dev_unplug`]) when the parent unbinds, unless [`drm::Device::unplug`] did before: the
/// nodes go away, ioctls on files still open fail with `ENODEV`, and the drop waits for the
/// entered sections running (the ioctl handlers that take an [`Entered`], among them).
///
/// Devres is released after the bus driver's `unbind()` returned and its data was dropped, so
/// without [`drm::Device::unplug`] the device is still plugged while the driver tears down its
/// resources, and an entered handler may run then: what it uses of the hardware must be a
/// [`Devres`](crate::devres::Devres) in [`Driver::Data`].
///
/// [`drm_dev_unplug`]: srctree/drivers/gpu/drm/drm_drv.c
/// [`Entered`]: drm::device::Entered
///
/// # Invariants
///
/// `self.0` was registered by [`Registration::new_foreign_owned`].
pub struct Registration<T: Driver>(ARef<drm::Device<T>>);

impl<T: Driver> Registration<T> {
    /// Registers `drm` with userspace until its parent, `dev`, unbinds.
    ///
    /// `flags` is passed on to `drm_dev_register()` (0 for a driver without a `load`
    /// callback, which Rust drivers do not have). Registering is the last step of a probe:
    /// userspace can use the device from here on.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `dev` is not `drm`'s parent, `EBUSY` if `drm` was registered or unplugged
    /// before (a DRM device is registered at most once in its life), or the error of the
    /// registration, after which `drm` cannot be registered any more; `drm` is unplugged again
    /// if the devres action cannot be added.
    pub fn new_foreign_owned(
        drm: &drm::Device<T>,
        dev: &device::Device<device::Bound>,
        flags: usize,
    ) -> Result {
        // SAFETY: `drm.as_raw()` is a valid DRM device; its parent pointer is set at
        // initialisation and not changed before its release.
        if unsafe { (*drm.as_raw()).dev } != dev.as_raw() {
            return Err(EINVAL);
        }
        {
            let mut plug = drm.plug.lock();
            if *plug != Plug::New {
                return Err(EBUSY);
            }
            // INVARIANT: Registered now or never: `Plug` moves forward only.
            *plug = Plug::Unplugged;
            // SAFETY: `drm.as_raw()` is a valid, initialised DRM device that was not
            // registered before (its state was `New`, under the lock still held).
            to_result(unsafe { bindings::drm_dev_register(drm.as_raw(), flags as _) })?;
            // INVARIANT: The device was just registered, under the lock.
            *plug = Plug::Registered;
        }
        // INVARIANT: The device was just registered.
        devres::register(dev, Registration(drm.into()), GFP_KERNEL)
    }
}

impl<T: Driver> Drop for Registration<T> {
    fn drop(&mut self) {
        let mut plug = self.0.plug.lock();
        if *plug == Plug::Registered {
            // SAFETY: The device is registered and not unplugged (its state, under the lock
            // held until the state below says unplugged).
            unsafe { bindings::drm_dev_unplug(self.0.as_raw()) };
        }
        // INVARIANT: The device is unplugged, for good.
        *plug = Plug::Unplugged;
    }
}

// SAFETY: A DRM device can be unplugged from any thread; `drm::Device<T>` is `Send`.
unsafe impl<T: Driver> Send for Registration<T> {}
