// SPDX-License-Identifier: GPL-2.0

//! Interrupt handlers: an IRQ line requested with a handler that runs in hard interrupt context.
//!
//! C header: [`include/linux/interrupt.h`](srctree/include/linux/interrupt.h)

use crate::{
    bindings,
    error::{to_result, Error},
    ffi::{c_int, c_ulong, c_void},
    init::{self, PinInit},
    str::CStr,
};
use core::{marker::PhantomPinned, ptr};

/// What a [`Handler`] did with an interrupt (C's `irqreturn_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqReturn {
    /// The interrupt was not from this device (`IRQ_NONE`): on a shared line, another handler's.
    None,
    /// The interrupt was from this device and has been handled (`IRQ_HANDLED`).
    Handled,
}

/// Flags of a [`Registration`] (C's `IRQF_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(c_ulong);

impl Flags {
    /// No flags: the line is the handler's alone.
    pub const NONE: Flags = Flags(0);
    /// The line may be shared with other devices' handlers (`IRQF_SHARED`); the handler then
    /// returns [`IrqReturn::None`] for interrupts that are not its device's.
    pub const SHARED: Flags = Flags(bindings::IRQF_SHARED as c_ulong);
}

/// An interrupt handler.
///
/// `handle` runs in hard interrupt context, on any CPU and concurrently with the rest of the
/// driver: it must not sleep, and the handler is shared (`Sync`).
///
/// # Examples
///
/// A handler that counts its device's interrupts; buses request a line for it (for PCI,
/// `pci::Device::request_irq`).
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use kernel::irq::{Handler, IrqReturn};
///
/// struct Counter(AtomicU32);
///
/// impl Handler for Counter {
///     fn handle(&self) -> IrqReturn {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         IrqReturn::Handled
///     }
/// }
///
/// let counter = Counter(AtomicU32::new(0));
/// assert_eq!(counter.handle(), IrqReturn::Handled);
/// assert_eq!(counter.0.load(Ordering::Relaxed), 1);
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Handles an interrupt of the line.
    fn handle(&self) -> IrqReturn;
}

/// An IRQ line requested with a handler (`request_irq()`), freed (`free_irq()`) when dropped.
///
/// The registration is pinned: the handler's address is the cookie the IRQ core passes to it and
/// finds the registration by. Buses give it out inside a [`Devres`](crate::devres::Devres), so
/// that it is freed when the driver unbinds at the latest, before the IRQ itself goes.
///
/// # Invariants
///
/// `irq` is requested with `handler` as its cookie, and `handle_irq_callback::<T>` as its
/// handler, until the registration is dropped.
pub struct Registration<T: Handler> {
    irq: u32,
    handler: T,
    _pin: PhantomPinned,
}

/// The C handler of a [`Registration`]: calls the Rust one.
///
/// # Safety
///
/// `ptr` must be the cookie of a live [`Registration<T>`], a pointer to its handler.
unsafe extern "C" fn handle_irq_callback<T: Handler>(_irq: c_int, ptr: *mut c_void) -> u32 {
    // SAFETY: By the safety requirements `ptr` points to the handler of a live registration,
    // which is only shared (`T: Sync`) while it is requested.
    let handler = unsafe { &*ptr.cast::<T>() };
    match handler.handle() {
        IrqReturn::None => bindings::irqreturn_IRQ_NONE,
        IrqReturn::Handled => bindings::irqreturn_IRQ_HANDLED,
    }
}

impl<T: Handler> Registration<T> {
    /// An initialiser that requests `irq` with `flags` and `name` (shown in
    /// `/proc/interrupts`) for the handler `handler` initialises.
    ///
    /// The handler is initialised before the line is requested, since a shared line may call
    /// it at once.
    ///
    /// # Safety
    ///
    /// `irq` must stay allocated (e.g. the PCI vector it is must not be freed) until the
    /// registration is dropped.
    pub unsafe fn new(
        irq: u32,
        flags: Flags,
        name: &'static CStr,
        handler: impl PinInit<T, Error>,
    ) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| {
            // SAFETY: `slot` is valid for writes and pinned (the initialiser's contract).
            let handler_slot = unsafe { ptr::addr_of_mut!((*slot).handler) };
            // SAFETY: `handler_slot` is valid for writes and pinned, as part of `slot`.
            unsafe { handler.__pinned_init(handler_slot)? };
            // SAFETY: As above.
            unsafe { ptr::addr_of_mut!((*slot).irq).write(irq) };
            // SAFETY: The handler is initialised and pinned, and stays there until `drop` frees
            // the line; `name` is `'static`; the caller keeps `irq` allocated.
            let ret = unsafe {
                bindings::request_irq(
                    irq,
                    Some(handle_irq_callback::<T>),
                    flags.0,
                    name.as_char_ptr(),
                    handler_slot.cast(),
                )
            };
            if let Err(e) = to_result(ret) {
                // SAFETY: The handler was initialised above and nothing else refers to it.
                unsafe { ptr::drop_in_place(handler_slot) };
                return Err(e);
            }
            // INVARIANT: The line is requested with the handler as cookie.
            Ok(())
        };
        // SAFETY: `init` initialises every field of `*slot` but `_pin` (a ZST) when it
        // succeeds, and leaves nothing behind when it fails.
        unsafe { init::pin_init_from_closure(init) }
    }

    /// The handler.
    pub fn handler(&self) -> &T {
        &self.handler
    }

    /// The IRQ number.
    pub fn irq(&self) -> u32 {
        self.irq
    }

    /// Waits until running calls of the handler have returned (C's `synchronize_irq()`).
    ///
    /// It may sleep.
    pub fn synchronize(&self) {
        // SAFETY: `irq` is requested (type invariant).
        unsafe { bindings::synchronize_irq(self.irq) };
    }
}

impl<T: Handler> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `irq` is requested with the handler as cookie; after
        // `free_irq` returns, no call of the handler is running or will start, so the handler
        // may be dropped (next, with the struct).
        unsafe { bindings::free_irq(self.irq, ptr::from_ref(&self.handler).cast_mut().cast()) };
    }
}
