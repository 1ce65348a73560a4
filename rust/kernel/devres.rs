// SPDX-License-Identifier: GPL-2.0

//! Device-managed resources.
//!
//! A [`Devres`] ties a resource to the binding of a device to its driver: the resource is revoked
//! and dropped when the driver unbinds, through the device's devres list, even if something still
//! holds the `Devres`.
//!
//! C header: [`include/linux/device.h`](srctree/include/linux/device.h)

use crate::{
    alloc::Flags,
    bindings, c_str,
    device::{Bound, Device},
    error::{to_result, Result},
    ffi::c_void,
    prelude::*,
    revocable::{Revocable, RevocableGuard},
    sync::Arc,
    types::ARef,
};
use core::ptr;

#[pin_data]
struct DevresInner<T> {
    #[pin]
    data: Revocable<T>,
}

/// A device-managed resource: revoked and dropped when the device's driver unbinds.
///
/// The resource is reachable anywhere through [`Devres::try_access`], which fails once the
/// resource is gone, and without a runtime check through [`Devres::access`] given proof that the
/// device is bound. It is dropped exactly once: when the driver unbinds (the devres action), or
/// when the `Devres` is dropped first. Dropping a `Devres` waits for an RCU grace period, so it
/// may sleep.
///
/// # Invariants
///
/// - `inner` was registered as the data of a devres action of `dev` (holding one reference to it,
///   given back by `devres_callback` or when the action is removed), unless it was revoked.
/// - The resource stays available at most as long as the binding during which the `Devres` was
///   created: the action revokes it when that binding ends.
///
/// # Examples
///
/// ```
/// use kernel::{device::{Bound, Device}, devres::Devres};
///
/// struct Mapping(u32);
///
/// fn setup(dev: &Device<Bound>) -> Result<Devres<Mapping>> {
///     let res = Devres::new(dev, Mapping(7), GFP_KERNEL)?;
///     // While `dev` is known to be bound, no runtime check is needed.
///     assert_eq!(res.access(dev)?.0, 7);
///     Ok(res)
/// }
///
/// fn use_later(res: &Devres<Mapping>) -> Result<u32> {
///     // Anywhere else, the access may find the resource gone.
///     let mapping = res.try_access().ok_or(ENXIO)?;
///     Ok(mapping.0)
/// }
/// ```
pub struct Devres<T> {
    inner: Arc<DevresInner<T>>,
    dev: ARef<Device>,
}

/// The devres action: revokes the resource when the device's managed resources are released.
///
/// # Safety
///
/// `ptr` must be the pointer [`Devres::new`] registered, passed once.
unsafe extern "C" fn devres_callback<T>(ptr: *mut c_void) {
    // SAFETY: By the safety requirements, `ptr` comes from `Arc::into_raw` in `Devres::new` and
    // this call owns the reference it stands for.
    let inner = unsafe { Arc::from_raw(ptr.cast::<DevresInner<T>>()) };
    inner.data.revoke();
}

impl<T> Devres<T> {
    /// Makes `data` a resource managed by `dev`'s current binding.
    pub fn new(dev: &Device<Bound>, data: T, flags: Flags) -> Result<Self> {
        let inner = Arc::pin_init(
            pin_init!(DevresInner {
                data <- Revocable::new(data)
            }),
            flags,
        )?;
        let action_ref = Arc::into_raw(inner.clone()).cast_mut().cast::<c_void>();
        // SAFETY: `dev` is a valid device; the action gets a reference of its own (`action_ref`)
        // and is registered with a callback that expects exactly that pointer.
        let ret = unsafe {
            bindings::__devm_add_action(
                dev.as_raw(),
                Some(devres_callback::<T>),
                action_ref,
                c_str!("rust_devres").as_char_ptr(),
            )
        };
        if let Err(e) = to_result(ret) {
            // SAFETY: The action was not registered: the reference is still ours to drop.
            drop(unsafe { Arc::from_raw(action_ref.cast::<DevresInner<T>>()) });
            return Err(e);
        }
        // INVARIANT: The action holds a reference to `inner` and revokes it at unbind.
        Ok(Self {
            inner,
            dev: (&**dev).into(),
        })
    }

    /// Tries to access the resource; `None` once it has been revoked.
    ///
    /// The guard holds an RCU read-side critical section: keep it short and do not sleep.
    pub fn try_access(&self) -> Option<RevocableGuard<'_, T>> {
        self.inner.data.try_access()
    }

    /// Accesses the resource, given proof that the device it belongs to is bound.
    ///
    /// Fails with `EINVAL` if `dev` is not the device of this resource, and with `ENXIO` if the
    /// resource belongs to an earlier binding that has ended.
    pub fn access<'a>(&'a self, dev: &'a Device<Bound>) -> Result<&'a T> {
        if self.dev.as_raw() != dev.as_raw() {
            return Err(EINVAL);
        }
        if !self.inner.data.is_available() {
            return Err(ENXIO);
        }
        // SAFETY: The resource was available while `dev` is bound, so it belongs to the current
        // binding (type invariant), which cannot end while `dev: &Device<Bound>` lives; and
        // `Devres::drop` cannot run while `self` is borrowed.
        Ok(unsafe { self.inner.data.access() })
    }
}

impl<T> Drop for Devres<T> {
    fn drop(&mut self) {
        if !self.inner.data.revoke() {
            // The action revoked it and gave back its reference.
            return;
        }
        let action_ref = ptr::from_ref::<DevresInner<T>>(&self.inner);
        // SAFETY: `self.dev` is a valid device; callback and data identify our action.
        let ret = unsafe {
            bindings::devm_remove_action_nowarn(
                self.dev.as_raw(),
                Some(devres_callback::<T>),
                action_ref.cast_mut().cast::<c_void>(),
            )
        };
        if ret == 0 {
            // SAFETY: The action was removed before it ran, so the reference it held (from
            // `Arc::into_raw` in `new`, the same pointer as `action_ref`) is ours to drop.
            drop(unsafe { Arc::from_raw(action_ref) });
        }
        // Otherwise the release of the device's resources took the action and runs it: it finds
        // the data revoked and drops its reference itself.
    }
}

// SAFETY: `Devres` hands out `&T` (through guards) and drops `T` from whichever thread drops it or
// unbinds the device; the device reference is thread-safe.
unsafe impl<T: Send + Sync> Send for Devres<T> {}

// SAFETY: See `Send`: shared access only gives `&T`.
unsafe impl<T: Send + Sync> Sync for Devres<T> {}
