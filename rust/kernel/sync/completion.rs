// SPDX-License-Identifier: GPL-2.0

//! Completions: one-shot events that threads wait for.
//!
//! C header: [`include/linux/completion.h`](srctree/include/linux/completion.h)

use crate::{bindings, prelude::*, time::Jiffies, types::Opaque};

/// A completion: threads wait in [`Completion::wait_for_completion`] until another one signals
/// it with [`Completion::complete_all`].
///
/// Once signalled with `complete_all`, the completion stays done: later waits return at once.
///
/// # Invariants
///
/// `inner` is a `struct completion` initialised by `init_completion`.
///
/// # Examples
///
/// A work item signals the completion that the current thread waits for:
///
/// ```
/// use kernel::sync::{Arc, Completion};
/// use kernel::workqueue;
///
/// let done = Arc::pin_init(Completion::new(), GFP_KERNEL)?;
/// let signaller = done.clone();
/// workqueue::system().try_spawn(GFP_KERNEL, move || signaller.complete_all())?;
/// done.wait_for_completion();
/// // It stays done.
/// done.wait_for_completion();
/// # Ok::<(), Error>(())
/// ```
#[pin_data]
pub struct Completion {
    #[pin]
    inner: Opaque<bindings::completion>,
}

// SAFETY: A `struct completion` may be signalled and waited for from any thread; it synchronises
// with its own lock.
unsafe impl Send for Completion {}

// SAFETY: As for `Send`: every method takes `&self` and the C side synchronises.
unsafe impl Sync for Completion {}

impl Completion {
    /// Creates a completion that has not been signalled.
    pub fn new() -> impl PinInit<Self> {
        // INVARIANT: `init_completion` initialises `inner`.
        pin_init!(Self {
            inner <- Opaque::ffi_init(|slot: *mut bindings::completion| {
                // SAFETY: `slot` is valid for writes and pinned, as `ffi_init` guarantees.
                unsafe { bindings::init_completion(slot) }
            }),
        })
    }

    fn as_raw(&self) -> *mut bindings::completion {
        self.inner.get()
    }

    /// Signals the completion: wakes every waiter, and every later wait returns at once.
    pub fn complete_all(&self) {
        // SAFETY: `self.as_raw()` is an initialised completion (type invariant).
        unsafe { bindings::complete_all(self.as_raw()) };
    }

    /// Waits, uninterruptibly and without a timeout, until the completion is signalled.
    ///
    /// Sleeps: must not be called in atomic context.
    pub fn wait_for_completion(&self) {
        // SAFETY: `self.as_raw()` is an initialised completion (type invariant).
        unsafe { bindings::wait_for_completion(self.as_raw()) };
    }

    /// Waits, uninterruptibly, until the completion is signalled or `timeout` jiffies have
    /// passed; returns whether it was signalled.
    ///
    /// Sleeps: must not be called in atomic context.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::sync::Completion;
    /// use kernel::time::msecs_to_jiffies;
    ///
    /// let done = KBox::pin_init(Completion::new(), GFP_KERNEL)?;
    /// // Nothing signals it: the wait gives up after 10 ms.
    /// assert!(!done.wait_for_completion_timeout(msecs_to_jiffies(10)));
    /// done.complete_all();
    /// assert!(done.wait_for_completion_timeout(msecs_to_jiffies(10)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn wait_for_completion_timeout(&self, timeout: Jiffies) -> bool {
        // SAFETY: `self.as_raw()` is an initialised completion (type invariant).
        unsafe { bindings::wait_for_completion_timeout(self.as_raw(), timeout) != 0 }
    }
}
