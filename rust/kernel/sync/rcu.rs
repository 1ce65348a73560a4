// SPDX-License-Identifier: GPL-2.0

//! RCU read-side critical sections.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h)

use crate::bindings;
use core::marker::PhantomData;

/// An RCU read-side critical section, held for as long as the guard lives.
///
/// The guard is neither [`Send`] nor [`Sync`]: the critical section belongs to the task (and,
/// without preemptible RCU, the CPU) that entered it, so it must end there.
///
/// # Invariants
///
/// The RCU read-side lock was taken when the guard was created and is released when it drops.
///
/// # Examples
///
/// ```
/// use kernel::sync::rcu;
///
/// let guard = rcu::read_lock();
/// // Data published with RCU can be read here: it is not freed before the guard drops.
/// drop(guard);
/// ```
#[must_use = "the RCU read-side critical section ends when the guard is dropped"]
pub struct Guard(PhantomData<*mut ()>);

impl Guard {
    /// Enters an RCU read-side critical section.
    #[inline]
    pub fn new() -> Self {
        // SAFETY: `rcu_read_lock` has no preconditions; the matching unlock is in `drop`.
        unsafe { bindings::rcu_read_lock() };
        // INVARIANT: The read-side lock was just taken.
        Self(PhantomData)
    }

    /// Leaves the critical section (the same as dropping the guard, but explicit).
    #[inline]
    pub fn unlock(self) {}
}

impl Default for Guard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: By the type invariant, this guard's read-side lock is held.
        unsafe { bindings::rcu_read_unlock() };
    }
}

/// Enters an RCU read-side critical section; see [`Guard`].
#[inline]
pub fn read_lock() -> Guard {
    Guard::new()
}
