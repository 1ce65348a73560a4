// SPDX-License-Identifier: GPL-2.0

//! Polling a device until it reaches a state, with a time bound (C's `read_poll_timeout()`).
//!
//! C header: [`include/linux/iopoll.h`](srctree/include/linux/iopoll.h)

use crate::{bindings, error::code::ETIMEDOUT, error::Result};

/// Calls `op` until `cond` holds for its value, sleeping about `sleep_us` microseconds between
/// calls, for at most `timeout_us` microseconds; returns the value that satisfied `cond`.
///
/// It sleeps, so it must not be called in atomic context. A last call of `op` after the timeout
/// makes a device that got there while the caller slept count as ready.
///
/// # Errors
///
/// `ETIMEDOUT` if `cond` never held; the error of `op` if it fails.
///
/// # Examples
///
/// A register that becomes ready on the third read; a driver passes a closure reading its
/// mapping, such as `|| Ok(regs.read32(STATUS))`.
///
/// ```
/// use kernel::io::poll::read_poll_timeout;
///
/// let mut reads = 0;
/// let status = read_poll_timeout(
///     || {
///         reads += 1;
///         Ok(if reads < 3 { 0x1 } else { 0x0 })
///     },
///     |status| status & 0x1 == 0,
///     10,
///     100_000,
/// )?;
/// assert_eq!((status, reads), (0, 3));
///
/// // A device that never gets there.
/// assert_eq!(read_poll_timeout(|| Ok(0x1), |s| s & 0x1 == 0, 100, 1_000), Err(ETIMEDOUT));
/// # Ok::<(), Error>(())
/// ```
pub fn read_poll_timeout<T>(
    mut op: impl FnMut() -> Result<T>,
    cond: impl Fn(&T) -> bool,
    sleep_us: u64,
    timeout_us: u64,
) -> Result<T> {
    // SAFETY: `ktime_get()` may be called in any context once timekeeping is up.
    let deadline = unsafe { bindings::ktime_get() }
        .saturating_add(i64::try_from(timeout_us.saturating_mul(1000)).unwrap_or(i64::MAX));
    loop {
        let value = op()?;
        if cond(&value) {
            return Ok(value);
        }
        // SAFETY: As above.
        if unsafe { bindings::ktime_get() } > deadline {
            let value = op()?;
            return if cond(&value) {
                Ok(value)
            } else {
                Err(ETIMEDOUT)
            };
        }
        let min = sleep_us.max(1);
        // SAFETY: The caller may sleep (documented requirement of this function).
        unsafe {
            bindings::usleep_range_state(
                min as _,
                min.saturating_mul(2) as _,
                bindings::TASK_UNINTERRUPTIBLE,
            )
        };
    }
}
