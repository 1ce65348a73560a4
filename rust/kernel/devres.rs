// SPDX-License-Identifier: GPL-2.0

//! Device-managed resources.
//!
//! A [`Devres`] ties a resource to the binding of a device to its driver: the resource is revoked
//! and dropped when the driver unbinds, through the device's devres list, even if something still
//! holds the `Devres`. [`register`] hands data to the device's devres list for good: it is dropped
//! when the driver unbinds, and nothing else can reach it.
//!
//! C header: [`include/linux/device.h`](srctree/include/linux/device.h)

use crate::{
    alloc::Flags,
    bindings, c_str,
    device::{Bound, Device},
    error::{to_result, Result},
    ffi::c_void,
    init::PinInit,
    prelude::*,
    revocable::{Revocable, RevocableGuard},
    sync::Arc,
    types::{ARef, ForeignOwnable},
};
use core::ptr;

#[pin_data]
struct DevresInner<T: Send + 'static> {
    #[pin]
    data: Revocable<T>,
}

/// The type of a devres action's callback.
type Callback = unsafe extern "C" fn(*mut c_void);

/// A device-managed resource: revoked and dropped when the device's driver unbinds.
///
/// The resource is reachable anywhere through [`Devres::try_access`], which fails once the
/// resource is gone, and through [`Devres::access`] given proof that the device is bound. It is
/// dropped exactly once: when the driver unbinds (the devres action), or when the `Devres` is
/// dropped first. Whichever comes second waits until the first has finished dropping the
/// resource, so that neither the unbind nor the owner goes on while the resource still exists.
///
/// `T` is dropped on whichever thread unbinds the device, at a time the owner does not choose:
/// hence `T: Send + 'static` (a `T` that borrows could outlive what it borrows if the `Devres`
/// were leaked).
///
/// Dropping a `Devres` may sleep, whatever `T`'s `drop` does: when the unbind is revoking the
/// resource at the same time, the drop waits until the unbind has dropped it. So the last owner
/// of a `Devres` must not drop it in atomic context (under a spinlock, in an RCU read-side
/// critical section or an interrupt handler).
///
/// # Invariants
///
/// - `inner` was registered as the data of a devres action of `dev` with `callback` (holding one
///   reference to it, given back by `callback` or when the action is removed), unless it was
///   revoked.
/// - The resource stays available at most as long as the binding during which the `Devres` was
///   created: the action revokes it when that binding ends.
///
/// # Examples
///
/// Compile-only: it needs a bound device, which only a driver's probe has.
///
/// ```
/// use kernel::{device::{Bound, Device}, devres::Devres};
///
/// struct Mapping(u32);
///
/// fn setup(dev: &Device<Bound>) -> Result<Devres<Mapping>> {
///     let res = Devres::new(dev, Mapping(7))?;
///     // While `dev` is known to be bound, access needs no RCU read-side section.
///     let value = res.access(dev)?.0;
///     dev_info!(dev, "mapping {value}\n");
///     Ok(res)
/// }
///
/// fn use_later(res: &Devres<Mapping>) -> Result<u32> {
///     // Anywhere else, the access may find the resource gone.
///     res.try_access_with(|mapping| mapping.0).ok_or(ENXIO)
/// }
/// ```
pub struct Devres<T: Send + 'static> {
    inner: Arc<DevresInner<T>>,
    dev: ARef<Device>,
    /// The devres action's callback, stored once: the C side finds the action by the callback's
    /// address, and Rust does not promise that a function has one address (each crate may have its
    /// own copy of `devres_callback::<T>`).
    callback: Callback,
}

// SAFETY: A `Devres<T>` gives out `&T` only (through `access()` and `try_access()`), and moving
// it to another thread moves nothing but the right to drop `T`, which the devres action may do on
// any thread anyway: `T: Send` is enough for `Devres<T>: Send`.
unsafe impl<T: Send + 'static> Send for Devres<T> {}

// SAFETY: A shared `Devres<T>` lets every thread that has it reach `&T`, so `T` must be `Sync`;
// dropping `T` from any thread needs `T: Send` (required by the type).
unsafe impl<T: Send + Sync + 'static> Sync for Devres<T> {}

/// The devres action of a [`Devres`]: revokes the resource when the device's managed resources
/// are released.
///
/// # Safety
///
/// `ptr` must be the pointer [`Devres::new`] registered, passed once.
unsafe extern "C" fn devres_callback<T: Send + 'static>(ptr: *mut c_void) {
    // SAFETY: By the safety requirements, `ptr` comes from `Arc::into_raw` in `Devres::new` and
    // this call owns the reference it stands for.
    let inner = unsafe { Arc::from_raw(ptr.cast::<DevresInner<T>>()) };
    inner.data.revoke();
}

impl<T: Send + 'static> Devres<T> {
    /// Makes the data `data` initialises a resource managed by `dev`'s current binding.
    ///
    /// The initialiser's error type is [`Error`]: a plain value of type `T` is an initialiser too,
    /// and a generic error type would leave its type ambiguous in 6.12's `init`.
    ///
    /// # Errors
    ///
    /// Fails if `data` fails, or if the allocation or the registration of the devres action
    /// fails; the data is dropped then.
    pub fn new(dev: &Device<Bound>, data: impl PinInit<T, Error>) -> Result<Self> {
        let callback: Callback = devres_callback::<T>;
        let inner = Arc::pin_init(
            try_pin_init!(DevresInner {
                data <- Revocable::try_new(data),
            }? Error),
            GFP_KERNEL,
        )?;
        let action_ref = Arc::into_raw(inner.clone()).cast_mut().cast::<c_void>();
        // SAFETY: `dev` is a valid device; the action gets a reference of its own (`action_ref`)
        // and is registered with a callback that expects exactly that pointer.
        let ret = unsafe {
            bindings::__devm_add_action(
                dev.as_raw(),
                Some(callback),
                action_ref,
                c_str!("rust_devres").as_char_ptr(),
            )
        };
        if let Err(e) = to_result(ret) {
            // SAFETY: The action was not registered: the reference is still ours to drop.
            drop(unsafe { Arc::from_raw(action_ref.cast::<DevresInner<T>>()) });
            return Err(e);
        }
        // INVARIANT: The action, registered with `callback`, holds a reference to `inner` and
        // revokes it at unbind.
        Ok(Self {
            inner,
            dev: dev.into(),
            callback,
        })
    }

    /// The device this resource belongs to.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// Tries to access the resource; `None` once it has been revoked.
    ///
    /// The guard holds an RCU read-side critical section: keep it short and do not sleep.
    pub fn try_access(&self) -> Option<RevocableGuard<'_, T>> {
        self.inner.data.try_access()
    }

    /// Calls `f` with the resource unless it has been revoked; see
    /// [`Revocable::try_access_with`]. `f` must not sleep.
    pub fn try_access_with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.inner.data.try_access_with(f)
    }

    /// Accesses the resource, given proof that the device it belongs to is bound.
    ///
    /// No RCU read-side section is needed: the resource cannot be revoked while `dev` is bound,
    /// if it belongs to `dev`'s current binding. That is checked at run time: a `Devres` kept
    /// across an unbind and a new bind of the same device must not give the old binding's
    /// (dropped) resource to the new one.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `dev` is not the device of this resource, and `ENXIO` if the resource belongs to
    /// an earlier binding that has ended.
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

    /// The pointer that the devres action was registered with.
    fn action_ref(&self) -> *mut c_void {
        // `Arc::into_raw` gives the address of the `Arc`'s data, which is where `&*self.inner`
        // points.
        let inner: &DevresInner<T> = &self.inner;
        ptr::from_ref(inner).cast_mut().cast::<c_void>()
    }
}

impl<T: Send + 'static> Drop for Devres<T> {
    fn drop(&mut self) {
        // SAFETY: `drop` has `&mut self`, and every reader (guards of `try_access`, references from
        // `access`) borrows `self`: none exists, so no grace period is needed.
        if !unsafe { self.inner.data.revoke_nosync() } {
            // The action revoked the resource (and has finished dropping it: `revoke_nosync`
            // waited for that); it gives back its reference itself.
            return;
        }
        let action_ref = self.action_ref();
        // SAFETY: `self.dev` is a valid device; `self.callback` and `action_ref` are the callback
        // and data the action was registered with (type invariant).
        let ret = unsafe {
            bindings::devm_remove_action_nowarn(self.dev.as_raw(), Some(self.callback), action_ref)
        };
        if ret == 0 {
            // SAFETY: The action was removed before it ran, so the reference it held (from
            // `Arc::into_raw` in `new`, the same pointer as `action_ref`) is ours to drop.
            drop(unsafe { Arc::from_raw(action_ref.cast::<DevresInner<T>>()) });
        }
        // Otherwise the release of the device's resources took the action and runs it: it finds
        // the resource revoked and drops its reference itself.
    }
}

/// The devres action of [`register`]: drops the data.
///
/// # Safety
///
/// `ptr` must be the pointer [`register`] registered, passed once.
unsafe extern "C" fn register_callback<T: Send + 'static>(ptr: *mut c_void) {
    // SAFETY: By the safety requirements, `ptr` comes from `Pin<KBox<T>>::into_foreign` in
    // `register`, and ownership is taken back once.
    drop(unsafe { <Pin<KBox<T>> as ForeignOwnable>::from_foreign(ptr) });
}

/// Hands the data `data` initialises to `dev`'s current binding: it is dropped when the driver
/// unbinds, and nothing else can reach it.
///
/// Useful for what only has to live as long as the binding, such as a registration with another
/// subsystem that must end at unbind.
///
/// # Errors
///
/// Fails if `data` fails, or if the allocation or the registration of the devres action fails;
/// the data is dropped then.
///
/// # Examples
///
/// Compile-only: it needs a bound device.
///
/// ```
/// use kernel::{device::{Bound, Device}, devres};
///
/// struct Registration;
///
/// fn setup(dev: &Device<Bound>) -> Result {
///     devres::register(dev, Registration, GFP_KERNEL)
/// }
/// ```
pub fn register<T: Send + 'static>(
    dev: &Device<Bound>,
    data: impl PinInit<T, Error>,
    flags: Flags,
) -> Result {
    let data = KBox::pin_init(data, flags)?;
    let ptr = data.into_foreign().cast_mut();
    // SAFETY: `dev` is a valid device; the action owns `ptr` and is registered with the callback
    // that expects exactly that pointer.
    let ret = unsafe {
        bindings::__devm_add_action(
            dev.as_raw(),
            Some(register_callback::<T>),
            ptr,
            c_str!("rust_devres_register").as_char_ptr(),
        )
    };
    if let Err(e) = to_result(ret) {
        // SAFETY: The action was not registered: `ptr` is still ours, from `into_foreign` above.
        drop(unsafe { <Pin<KBox<T>> as ForeignOwnable>::from_foreign(ptr) });
        return Err(e);
    }
    Ok(())
}
