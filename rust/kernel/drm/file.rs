// SPDX-License-Identifier: GPL-2.0

//! DRM files: one per open of a DRM node, with the driver's data for it.
//!
//! C header: [`include/drm/drm_file.h`](srctree/include/drm/drm_file.h)

use crate::{
    alloc::KBox,
    bindings, drm,
    error::{code::ENODEV, Result},
    types::{ForeignOwnable, Opaque},
};
use core::{ffi::c_int, marker::PhantomData, pin::Pin};

/// A driver's data of each open file.
///
/// Created when a node of the driver's device is opened and dropped when the file is closed,
/// after the file's GEM handles were released. The close may come after the device was unplugged
/// (its parent unbound), so dropping the data must not need the parent's resources.
pub trait DriverFile: Send + Sync + Sized + 'static {
    /// The driver this is the file data of.
    type Driver: drm::Driver;

    /// Creates the data of a file opened on `dev`; an error fails the `open()`.
    ///
    /// It runs with the device entered (see [`drm::Device::enter`]): never on an unplugged
    /// device; an open that loses the race with the unplug fails with `ENODEV` first.
    fn open(dev: &drm::Device<Self::Driver>) -> Result<Pin<KBox<Self>>>;
}

/// An open DRM file whose driver data is a `T`.
///
/// # Invariants
///
/// `self.0` is a `struct drm_file` of a device of `T::Driver` whose `driver_priv` is a
/// `Pin<KBox<T>>` from [`DriverFile::open`], valid until the file's `postclose`.
#[repr(transparent)]
pub struct File<T: DriverFile>(Opaque<bindings::drm_file>, PhantomData<T>);

impl<T: DriverFile> File<T> {
    /// The file that `ptr` points to.
    ///
    /// # Safety
    ///
    /// `ptr` points to an open `struct drm_file` of a device of `T::Driver`, opened
    /// successfully (its `driver_priv` set by the driver's `open`), and not closed for `'a`.
    #[doc(hidden)]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::drm_file) -> &'a Self {
        // SAFETY: `File` is a transparent wrapper of `struct drm_file`; the safety requirements
        // give the type invariant.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The C `struct drm_file`.
    pub(crate) fn as_raw(&self) -> *mut bindings::drm_file {
        self.0.get()
    }

    /// The driver's data of this file.
    pub fn inner(&self) -> Pin<&T> {
        // SAFETY: By the type invariant, `driver_priv` is a `Pin<KBox<T>>` that lives as long
        // as the file, so at least as long as `self`.
        unsafe { <Pin<KBox<T>> as ForeignOwnable>::borrow((*self.as_raw()).driver_priv) }
    }
}

/// `drm_driver.open`: creates the driver's data of a file.
///
/// # Safety
///
/// Called by DRM with a device of `T::Driver` and a file being opened on it.
pub(super) unsafe extern "C" fn open_callback<T: DriverFile>(
    raw_dev: *mut bindings::drm_device,
    raw_file: *mut bindings::drm_file,
) -> c_int {
    // SAFETY: By the safety requirements, `raw_dev` is a device of `T::Driver`, referenced by
    // the file being opened.
    let dev = unsafe { drm::Device::<T::Driver>::from_raw(raw_dev) };
    // DRM refuses opens of an unplugged device before calling this, but the unplug may come
    // between its check and here.
    let Some(_entered) = dev.enter() else {
        return ENODEV.to_errno();
    };
    match T::open(dev) {
        Ok(data) => {
            // SAFETY: The file is being opened: nothing else uses its `driver_priv` yet.
            // INVARIANT: `driver_priv` is set to a `Pin<KBox<T>>`, taken back in `postclose`.
            unsafe { (*raw_file).driver_priv = data.into_foreign().cast_mut() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `drm_driver.postclose`: drops the driver's data of a file.
///
/// # Safety
///
/// Called by DRM once per file whose `open` succeeded, when it is closed.
pub(super) unsafe extern "C" fn postclose_callback<T: DriverFile>(
    _raw_dev: *mut bindings::drm_device,
    raw_file: *mut bindings::drm_file,
) {
    // SAFETY: By the safety requirements and the invariant, `driver_priv` is the
    // `Pin<KBox<T>>` set at open, and nothing uses it any more.
    drop(unsafe { <Pin<KBox<T>> as ForeignOwnable>::from_foreign((*raw_file).driver_priv) });
}
