// SPDX-License-Identifier: GPL-2.0

//! Revocable objects.
//!
//! A [`Revocable`] holds data that readers reach through a guard and that one call to
//! [`Revocable::revoke`] takes away, for instance a resource that must not be used once the device
//! it belongs to is unbound.

use crate::{
    bindings,
    init::{self, PinInit},
    prelude::*,
    sync::{rcu, Completion},
    types::Opaque,
};
use core::{
    convert::Infallible,
    marker::PhantomData,
    ops::Deref,
    ptr::drop_in_place,
    sync::atomic::{AtomicBool, Ordering},
};

/// Data that can be revoked: readers reach it until [`Revocable::revoke`] takes it away.
///
/// Readers access the data through [`Revocable::try_access`] (or
/// [`Revocable::try_access_with_guard`]), inside an RCU read-side critical section. Revoking marks
/// the data unavailable, waits for an RCU grace period so that every reader that could still see
/// it is gone, and drops it. The data is dropped exactly once: by the first call to `revoke`, or
/// when the `Revocable` itself is dropped if it was never revoked.
///
/// Two revokers may race (for instance the owner dropping a device-managed resource and the
/// driver core releasing the device's resources at unbind): the one that loses waits until
/// the winner has dropped the data, so that when either returns, the data is gone.
///
/// # Invariants
///
/// - `data` holds an initialised `T` while `is_available` is `true`, and `is_available` never
///   goes back to `true` once it is `false`.
/// - Once `is_available` is `false`, `data` is dropped after an RCU grace period, so a reader that
///   saw `true` inside an RCU read-side critical section can use it until that section ends
///   (unless the revoker proved that no reader exists, see [`Revocable::revoke_nosync`]).
/// - `dropped` is signalled once the revoker that swapped `is_available` to `false` has dropped
///   `data`.
///
/// # Examples
///
/// ```
/// use kernel::revocable::Revocable;
///
/// struct Example {
///     a: u32,
///     b: u32,
/// }
///
/// fn add_two(v: &Revocable<Example>) -> Option<u32> {
///     let guard = v.try_access()?;
///     Some(guard.a + guard.b)
/// }
///
/// let v = KBox::pin_init(Revocable::new(Example { a: 10, b: 20 }), GFP_KERNEL)?;
/// assert_eq!(add_two(&v), Some(30));
/// assert_eq!(v.try_access_with(|e| e.b), Some(20));
/// assert!(v.revoke());
/// assert_eq!(add_two(&v), None);
/// assert_eq!(v.try_access_with(|e| e.b), None);
/// // A second revoke finds nothing to revoke.
/// assert!(!v.revoke());
/// # Ok::<(), Error>(())
/// ```
///
/// The data is dropped exactly once, by the revoke or by the drop of the `Revocable`:
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use kernel::revocable::Revocable;
///
/// static DROPS: AtomicU32 = AtomicU32::new(0);
///
/// struct Counted;
///
/// impl Drop for Counted {
///     fn drop(&mut self) {
///         DROPS.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let revoked = KBox::pin_init(Revocable::new(Counted), GFP_KERNEL)?;
/// revoked.revoke();
/// assert_eq!(DROPS.load(Ordering::Relaxed), 1);
/// drop(revoked);
/// assert_eq!(DROPS.load(Ordering::Relaxed), 1);
///
/// let kept = KBox::pin_init(Revocable::new(Counted), GFP_KERNEL)?;
/// drop(kept);
/// assert_eq!(DROPS.load(Ordering::Relaxed), 2);
/// # Ok::<(), Error>(())
/// ```
#[pin_data(PinnedDrop)]
pub struct Revocable<T> {
    is_available: AtomicBool,
    #[pin]
    dropped: Completion,
    #[pin]
    data: Opaque<T>,
}

// SAFETY: A `Revocable<T>` owns its `T`: moving it to another thread moves the `T`.
unsafe impl<T: Send> Send for Revocable<T> {}

// SAFETY: Sharing a `Revocable<T>` shares `&T` with readers (so `T: Sync`) and lets any thread
// holding a reference drop the `T` through `revoke` (so `T: Send`).
unsafe impl<T: Sync + Send> Sync for Revocable<T> {}

impl<T> Revocable<T> {
    /// Creates a new revocable instance of the given data.
    pub fn new(data: impl PinInit<T>) -> impl PinInit<Self> {
        Self::try_new(data)
    }

    /// Creates a new revocable instance from an initialiser of the data that may fail.
    pub fn try_new<E>(data: impl PinInit<T, E>) -> impl PinInit<Self, E> {
        // INVARIANT: `data` is initialised and available, and `dropped` not signalled.
        try_pin_init!(Self {
            is_available: AtomicBool::new(true),
            dropped <- Self::completion_init(),
            data <- Self::data_init(data),
        }? E)
    }

    /// Initialises the `T` inside the `Opaque` in place.
    fn data_init<E>(data: impl PinInit<T, E>) -> impl PinInit<Opaque<T>, E> {
        let init = move |slot: *mut Opaque<T>| {
            // SAFETY: `slot` is valid for writes and pinned (the contract of
            // `pin_init_from_closure`), and so is the `T` inside the `Opaque`.
            unsafe { data.__pinned_init(Opaque::raw_get(slot)) }
        };
        // SAFETY: On success the closure has initialised the `T` inside the slot, which is all an
        // `Opaque<T>` needs; on failure `data` has cleaned up after itself and the slot stays
        // uninitialised, which is fine for an `Opaque`.
        unsafe { init::pin_init_from_closure(init) }
    }

    /// Initialises the completion; it cannot fail, whatever error type `E` the caller uses.
    fn completion_init<E>() -> impl PinInit<Completion, E> {
        let completion = Completion::new();
        let init = move |slot: *mut Completion| {
            // SAFETY: `slot` is valid for writes and pinned (the contract of
            // `pin_init_from_closure`).
            let res: Result<(), Infallible> = unsafe { completion.__pinned_init(slot) };
            match res {
                Ok(()) => Ok(()),
                Err(never) => match never {},
            }
        };
        // SAFETY: The closure initialises the slot exactly as `Completion::new()` does, and
        // never fails.
        unsafe { init::pin_init_from_closure(init) }
    }

    /// Tries to access the data.
    ///
    /// Returns a guard that gives shared access to the data while it lives, or `None` when the
    /// data has been revoked. The guard holds an RCU read-side critical section: keep it short
    /// and do not sleep while holding it.
    pub fn try_access(&self) -> Option<RevocableGuard<'_, T>> {
        let guard = rcu::read_lock();
        if self.is_available.load(Ordering::Relaxed) {
            // INVARIANT: `is_available` was `true` inside the critical section that the guard
            // holds, so by the type invariant the data stays valid until the guard drops.
            Some(RevocableGuard::new(self.data.get(), guard))
        } else {
            None
        }
    }

    /// Calls `f` with the data, inside an RCU read-side critical section, unless it was revoked.
    ///
    /// Returns what `f` returns, or `None` when the data has been revoked. `f` must not sleep.
    pub fn try_access_with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.try_access().map(|guard| f(&guard))
    }

    /// Tries to access the data inside an RCU read-side critical section the caller holds.
    ///
    /// Returns a reference that lives as long as the caller's guard, or `None` when the data has
    /// been revoked. Useful to access several revocable objects under one critical section.
    pub fn try_access_with_guard<'a>(&'a self, _guard: &'a rcu::Guard) -> Option<&'a T> {
        if self.is_available.load(Ordering::Relaxed) {
            // SAFETY: `is_available` was `true` inside the critical section `_guard` holds, so by
            // the type invariant the data is not dropped before the guard (and `'a`) ends.
            Some(unsafe { &*self.data.get() })
        } else {
            None
        }
    }

    /// Returns whether the data is still available, i.e. not revoked yet.
    ///
    /// The answer may be stale as soon as it is returned, unless the caller knows that nothing
    /// can revoke the data meanwhile.
    pub fn is_available(&self) -> bool {
        self.is_available.load(Ordering::Relaxed)
    }

    /// Accesses the data without checking whether it was revoked.
    ///
    /// # Safety
    ///
    /// The caller must ensure that the data is not revoked for as long as the returned reference
    /// lives, for example because whatever would revoke it cannot run before then.
    pub unsafe fn access(&self) -> &T {
        // SAFETY: By the safety requirements the data is available (so initialised, by the type
        // invariant) and stays so while the reference lives.
        unsafe { &*self.data.get() }
    }

    /// Revokes access to the data and drops it.
    ///
    /// Waits for an RCU grace period, so it sleeps: it must not be called in atomic context, nor
    /// inside an RCU read-side critical section (the grace period would wait for the caller).
    /// Returns `true` if this call revoked the data, `false` if another call did; in both cases
    /// the data has been dropped when it returns.
    pub fn revoke(&self) -> bool {
        self.revoke_internal::<true>()
    }

    /// Revokes access to the data and drops it, without waiting for an RCU grace period.
    ///
    /// Returns like [`Revocable::revoke`]. It still waits, when another revoke won, until that
    /// one has dropped the data, so it may sleep.
    ///
    /// # Safety
    ///
    /// No reader may be accessing the data: no [`RevocableGuard`] and no reference from
    /// [`Revocable::try_access_with_guard`] or [`Revocable::access`] may exist.
    pub unsafe fn revoke_nosync(&self) -> bool {
        self.revoke_internal::<false>()
    }

    fn revoke_internal<const SYNC: bool>(&self) -> bool {
        let revoke = self.is_available.swap(false, Ordering::Relaxed);
        if revoke {
            if SYNC {
                // SAFETY: `synchronize_rcu` only waits; `revoke` may sleep (documented above).
                unsafe { bindings::synchronize_rcu() };
            }
            // SAFETY: This call swapped `is_available` from `true` to `false`, so it is the only
            // one that drops the data, which was initialised (type invariant). Readers that saw
            // `true` have left their critical sections during the grace period (or, without one,
            // do not exist by the safety requirements of `revoke_nosync`); later ones see `false`.
            unsafe { drop_in_place(self.data.get()) };
            // INVARIANT: The data has been dropped by the winning revoker.
            self.dropped.complete_all();
        } else {
            // Another revoker won: wait until it has dropped the data, so that our caller can
            // rely on the data being gone (its resources released) when this returns.
            self.dropped.wait_for_completion();
        }
        revoke
    }
}

#[pinned_drop]
impl<T> PinnedDrop for Revocable<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: The data is only dropped in place below; nothing is moved out of `self`.
        let this = unsafe { Pin::get_unchecked_mut(self) };
        if *this.is_available.get_mut() {
            // SAFETY: The data is available, hence initialised (type invariant), and `&mut self`
            // proves there are no readers left.
            unsafe { drop_in_place(this.data.get()) };
        }
    }
}

/// A guard that gives shared access to revocable data; see [`Revocable::try_access`].
///
/// # Invariants
///
/// `data_ref` points to initialised data of a [`Revocable`] that stays valid while `_rcu_guard`
/// holds the RCU read-side critical section.
pub struct RevocableGuard<'a, T> {
    data_ref: *const T,
    _rcu_guard: rcu::Guard,
    _p: PhantomData<&'a ()>,
}

impl<T> RevocableGuard<'_, T> {
    fn new(data_ref: *const T, rcu_guard: rcu::Guard) -> Self {
        Self {
            data_ref,
            _rcu_guard: rcu_guard,
            _p: PhantomData,
        }
    }
}

impl<T> Deref for RevocableGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &Self::Target {
        // SAFETY: By the type invariant, the data is valid while the guard lives.
        unsafe { &*self.data_ref }
    }
}
