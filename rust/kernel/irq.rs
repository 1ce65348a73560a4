// SPDX-License-Identifier: GPL-2.0

//! Interrupt handlers: an IRQ line of a bound device requested with a handler that runs in hard
//! interrupt context ([`Registration`]), or with one that also has a half running in a kernel
//! thread, where it may sleep ([`ThreadedRegistration`]).
//!
//! A bus gives out an [`IrqRequest`] for an IRQ of a bound device (for PCI,
//! `pci::IrqVector::request()`); the registration frees the line when it is dropped, or when the
//! driver unbinds at the latest, and its handler gets the bound device on every call.
//!
//! C header: [`include/linux/interrupt.h`](srctree/include/linux/interrupt.h)

use crate::{
    alloc::{Allocator, Box},
    bindings,
    device::{Bound, Device},
    devres::Devres,
    error::{to_result, Error, Result},
    ffi::{c_int, c_ulong, c_void},
    init::{self, PinInit},
    str::CStr,
    sync::Arc,
    types::ARef,
};
use core::{marker::PhantomPinned, ops::BitOr, ptr};

/// What a handler did with an interrupt (C's `irqreturn_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqReturn {
    /// The interrupt was not from this device (`IRQ_NONE`): on a shared line, another handler's.
    None,
    /// The interrupt was from this device and has been handled (`IRQ_HANDLED`).
    Handled,
}

impl IrqReturn {
    fn into_raw(self) -> bindings::irqreturn_t {
        match self {
            IrqReturn::None => bindings::irqreturn_IRQ_NONE,
            IrqReturn::Handled => bindings::irqreturn_IRQ_HANDLED,
        }
    }
}

/// What the hard-interrupt half of a [`ThreadedHandler`] did with an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadedIrqReturn {
    /// The interrupt was not from this device (`IRQ_NONE`).
    None,
    /// The interrupt was from this device and has been handled; the thread is not woken
    /// (`IRQ_HANDLED`).
    Handled,
    /// The interrupt was from this device: wake the thread to handle it (`IRQ_WAKE_THREAD`).
    WakeThread,
}

impl ThreadedIrqReturn {
    fn into_raw(self) -> bindings::irqreturn_t {
        match self {
            ThreadedIrqReturn::None => bindings::irqreturn_IRQ_NONE,
            ThreadedIrqReturn::Handled => bindings::irqreturn_IRQ_HANDLED,
            ThreadedIrqReturn::WakeThread => bindings::irqreturn_IRQ_WAKE_THREAD,
        }
    }
}

/// Flags of a request (C's `IRQF_*`), combined with `|`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(c_ulong);

impl Flags {
    const fn new(flags: u32) -> Self {
        Flags(flags as c_ulong)
    }

    /// No flags: the line is the handler's alone, with the trigger it has.
    pub const NONE: Flags = Flags(0);
    /// Keep the trigger the line is configured with (`IRQF_TRIGGER_NONE`).
    pub const TRIGGER_NONE: Flags = Flags::new(bindings::IRQF_TRIGGER_NONE);
    /// Trigger on a rising edge (`IRQF_TRIGGER_RISING`).
    pub const TRIGGER_RISING: Flags = Flags::new(bindings::IRQF_TRIGGER_RISING);
    /// Trigger on a falling edge (`IRQF_TRIGGER_FALLING`).
    pub const TRIGGER_FALLING: Flags = Flags::new(bindings::IRQF_TRIGGER_FALLING);
    /// Trigger while the level is high (`IRQF_TRIGGER_HIGH`).
    pub const TRIGGER_HIGH: Flags = Flags::new(bindings::IRQF_TRIGGER_HIGH);
    /// Trigger while the level is low (`IRQF_TRIGGER_LOW`).
    pub const TRIGGER_LOW: Flags = Flags::new(bindings::IRQF_TRIGGER_LOW);
    /// The line may be shared with other devices' handlers (`IRQF_SHARED`); the handler then
    /// returns `None` for interrupts that are not its device's.
    pub const SHARED: Flags = Flags::new(bindings::IRQF_SHARED);
    /// The caller expects sharing mismatches (`IRQF_PROBE_SHARED`).
    pub const PROBE_SHARED: Flags = Flags::new(bindings::IRQF_PROBE_SHARED);
    /// A timer interrupt (`IRQF_TIMER`).
    pub const TIMER: Flags =
        Flags::new(bindings::__IRQF_TIMER | bindings::IRQF_NO_SUSPEND | bindings::IRQF_NO_THREAD);
    /// A per-CPU interrupt (`IRQF_PERCPU`).
    pub const PERCPU: Flags = Flags::new(bindings::IRQF_PERCPU);
    /// Exclude the line from IRQ balancing (`IRQF_NOBALANCING`).
    pub const NOBALANCING: Flags = Flags::new(bindings::IRQF_NOBALANCING);
    /// The line is used for polling (`IRQF_IRQPOLL`).
    pub const IRQPOLL: Flags = Flags::new(bindings::IRQF_IRQPOLL);
    /// Keep the line masked until the thread has run (`IRQF_ONESHOT`), for level-triggered
    /// lines whose device is quietened only by the thread.
    pub const ONESHOT: Flags = Flags::new(bindings::IRQF_ONESHOT);
    /// Do not disable the line during suspend (`IRQF_NO_SUSPEND`).
    pub const NO_SUSPEND: Flags = Flags::new(bindings::IRQF_NO_SUSPEND);
    /// Enable the line on resume even with `NO_SUSPEND` (`IRQF_FORCE_RESUME`).
    pub const FORCE_RESUME: Flags = Flags::new(bindings::IRQF_FORCE_RESUME);
    /// The handler cannot be threaded (`IRQF_NO_THREAD`).
    pub const NO_THREAD: Flags = Flags::new(bindings::IRQF_NO_THREAD);
    /// Resume the line early, during syscore (`IRQF_EARLY_RESUME`).
    pub const EARLY_RESUME: Flags = Flags::new(bindings::IRQF_EARLY_RESUME);
    /// Run the handler on suspend if the line is shared with a `NO_SUSPEND` user
    /// (`IRQF_COND_SUSPEND`).
    pub const COND_SUSPEND: Flags = Flags::new(bindings::IRQF_COND_SUSPEND);
    /// Do not enable the line when it is requested (`IRQF_NO_AUTOEN`).
    pub const NO_AUTOEN: Flags = Flags::new(bindings::IRQF_NO_AUTOEN);
    /// Exclude the line from runaway detection (`IRQF_NO_DEBUG`).
    pub const NO_DEBUG: Flags = Flags::new(bindings::IRQF_NO_DEBUG);
}

impl BitOr for Flags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Flags(self.0 | rhs.0)
    }
}

/// An interrupt handler.
///
/// `handle` runs in hard interrupt context, on any CPU and concurrently with the rest of the
/// driver: it must not sleep, and the handler is shared (`Sync`). It gets the device, which is
/// bound for as long as the line is requested, so that it can reach the device's resources with
/// `Devres::access()`.
///
/// # Examples
///
/// Compile-only: the IRQ core calls a handler, with a bound device. A handler that counts its
/// device's interrupts; a bus requests a line for it (for PCI, `pci::IrqVector::request()`).
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use kernel::device::{Bound, Device};
/// use kernel::irq::{Handler, IrqReturn};
///
/// struct Counter(AtomicU32);
///
/// impl Handler for Counter {
///     fn handle(&self, _dev: &Device<Bound>) -> IrqReturn {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         IrqReturn::Handled
///     }
/// }
/// ```
pub trait Handler: Sync {
    /// Handles an interrupt of the line, raised by `dev` or (on a shared line) another device.
    fn handle(&self, dev: &Device<Bound>) -> IrqReturn;
}

impl<T: ?Sized + Handler + Send> Handler for Arc<T> {
    fn handle(&self, dev: &Device<Bound>) -> IrqReturn {
        T::handle(self, dev)
    }
}

impl<T: ?Sized + Handler, A: Allocator> Handler for Box<T, A>
where
    Box<T, A>: Sync,
{
    fn handle(&self, dev: &Device<Bound>) -> IrqReturn {
        T::handle(self, dev)
    }
}

/// A handler in two halves: [`ThreadedHandler::handle`] in hard interrupt context, and
/// [`ThreadedHandler::handle_threaded`] in the line's kernel thread, where it may sleep, when the
/// first half asks for it.
pub trait ThreadedHandler: Sync {
    /// The hard-interrupt half: must not sleep. By default it wakes the thread.
    fn handle(&self, _dev: &Device<Bound>) -> ThreadedIrqReturn {
        ThreadedIrqReturn::WakeThread
    }

    /// The threaded half, run after `handle` returned [`ThreadedIrqReturn::WakeThread`]; it may
    /// sleep.
    fn handle_threaded(&self, dev: &Device<Bound>) -> IrqReturn;
}

impl<T: ?Sized + ThreadedHandler + Send> ThreadedHandler for Arc<T> {
    fn handle(&self, dev: &Device<Bound>) -> ThreadedIrqReturn {
        T::handle(self, dev)
    }

    fn handle_threaded(&self, dev: &Device<Bound>) -> IrqReturn {
        T::handle_threaded(self, dev)
    }
}

impl<T: ?Sized + ThreadedHandler, A: Allocator> ThreadedHandler for Box<T, A>
where
    Box<T, A>: Sync,
{
    fn handle(&self, dev: &Device<Bound>) -> ThreadedIrqReturn {
        T::handle(self, dev)
    }

    fn handle_threaded(&self, dev: &Device<Bound>) -> IrqReturn {
        T::handle_threaded(self, dev)
    }
}

/// A request for an IRQ line of a bound device, which bus abstractions give out (it is unsafe to
/// make one).
///
/// # Invariants
///
/// `irq` is an IRQ of `dev`, and stays allocated at least until the device's managed resources
/// added after the request was made are released (at unbind at the latest).
pub struct IrqRequest<'a> {
    dev: &'a Device<Bound>,
    irq: u32,
}

impl<'a> IrqRequest<'a> {
    /// A request for line `irq` of `dev`.
    ///
    /// # Safety
    ///
    /// `irq` must be an IRQ of `dev` that stays allocated at least until the device's managed
    /// resources added from now on are released: what frees it must run after them (it is a
    /// managed resource added before, or outlives the binding).
    pub unsafe fn new(dev: &'a Device<Bound>, irq: u32) -> Self {
        // INVARIANT: By the safety requirements.
        IrqRequest { dev, irq }
    }

    /// The IRQ number.
    pub fn irq(&self) -> u32 {
        self.irq
    }
}

/// The requested line, freed when dropped: what a registration's [`Devres`] revokes.
///
/// # Invariants
///
/// `irq` is requested with `cookie` as its cookie until this is dropped.
struct RequestedLine {
    irq: u32,
    cookie: *mut c_void,
}

// SAFETY: The cookie is only an identity passed back to `free_irq()`, which may be called from any
// thread; nothing is reached through it here.
unsafe impl Send for RequestedLine {}

// SAFETY: As for `Send`; a shared `RequestedLine` gives out only the IRQ number.
unsafe impl Sync for RequestedLine {}

impl RequestedLine {
    fn synchronize(&self) {
        // SAFETY: `irq` is requested (type invariant).
        unsafe { bindings::synchronize_irq(self.irq) };
    }
}

impl Drop for RequestedLine {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `irq` is requested with `cookie`. When `free_irq` returns
        // no call of the handler is running or will start.
        unsafe { bindings::free_irq(self.irq, self.cookie) };
    }
}

/// The C functions a registration requests its line with: the hard-interrupt handler and, for a
/// threaded one, the thread's.
struct Callbacks {
    handler: bindings::irq_handler_t,
    thread: bindings::irq_handler_t,
}

/// The initialiser of a registration of either kind: initialises `handler` in the slot's
/// `handler` field, requests the line with the slot's address as the cookie, then registers the
/// line's release with the device.
///
/// # Safety
///
/// `slot` must be valid for writes and pinned, with `dev_field`, `handler_field`, `irq_field` and
/// `line_field` pointing to its fields of those names; `callbacks` must expect the slot's address
/// as their cookie and read only the `dev` and `handler` fields through it.
unsafe fn init_registration<T>(
    request: IrqRequest<'_>,
    flags: Flags,
    name: &'static CStr,
    handler: impl PinInit<T, Error>,
    callbacks: Callbacks,
    slot: *mut c_void,
    fields: (
        *mut ARef<Device>,
        *mut T,
        *mut u32,
        *mut Devres<RequestedLine>,
    ),
) -> Result {
    let (dev_field, handler_field, irq_field, line_field) = fields;
    // SAFETY: The fields are valid for writes (the safety requirements).
    unsafe { dev_field.write(request.dev.into()) };
    // SAFETY: `handler_field` is valid for writes and pinned, as part of the slot.
    if let Err(e) = unsafe { handler.__pinned_init(handler_field) } {
        // SAFETY: Written above, and nothing else refers to it.
        unsafe { ptr::drop_in_place(dev_field) };
        return Err(e);
    }
    // SAFETY: As above.
    unsafe { irq_field.write(request.irq) };
    // SAFETY: The device and the handler, which the callbacks read through the cookie, are
    // initialised and pinned, and stay until the line is freed (the registration drops its
    // `line` first); `name` is `'static`; `irq` stays allocated for as long as the registration's
    // `Devres` can hold the line (invariant of `IrqRequest`).
    let ret = unsafe {
        bindings::request_threaded_irq(
            request.irq,
            callbacks.handler,
            callbacks.thread,
            flags.0,
            name.as_char_ptr(),
            slot,
        )
    };
    let requested = to_result(ret).and_then(|()| {
        // INVARIANT: Requested above with `slot` as the cookie. On failure `Devres::new` drops
        // the line, which frees it.
        Devres::new(
            request.dev,
            RequestedLine {
                irq: request.irq,
                cookie: slot,
            },
        )
    });
    match requested {
        Ok(line) => {
            // SAFETY: As above.
            unsafe { line_field.write(line) };
            Ok(())
        }
        Err(e) => {
            // The line is not requested (any more): nothing calls the handler.
            // SAFETY: Initialised above, and nothing else refers to them.
            unsafe {
                ptr::drop_in_place(handler_field);
                ptr::drop_in_place(dev_field);
            }
            Err(e)
        }
    }
}

macro_rules! define_registration {
    (
        $(#[$attr:meta])*
        $name:ident, $handler_trait:ident, $callbacks:expr
    ) => {
        $(#[$attr])*
        pub struct $name<T: $handler_trait + 'static> {
            // Declared first, dropped first: the line is freed (and no call of the handler is
            // running) before the handler is dropped.
            line: Devres<RequestedLine>,
            handler: T,
            dev: ARef<Device>,
            irq: u32,
            _pin: PhantomPinned,
        }

        impl<T: $handler_trait + 'static> $name<T> {
            /// An initialiser that requests the line of `request` with `flags` and `name` (shown
            /// in `/proc/interrupts`) for the handler `handler` initialises.
            ///
            /// The handler is initialised before the line is requested, since a shared line may
            /// call it at once; the line is freed when the registration is dropped, or when the
            /// device's driver unbinds at the latest.
            pub fn new<'a>(
                request: IrqRequest<'a>,
                flags: Flags,
                name: &'static CStr,
                handler: impl PinInit<T, Error> + 'a,
            ) -> impl PinInit<Self, Error> + 'a {
                let init = move |slot: *mut Self| {
                    // SAFETY: `slot` is valid for writes and pinned (the initialiser's contract),
                    // the field pointers are its fields, and the callbacks read only `dev` and
                    // `handler` through the cookie, which is `slot`.
                    unsafe {
                        init_registration(
                            request,
                            flags,
                            name,
                            handler,
                            $callbacks,
                            slot.cast(),
                            (
                                ptr::addr_of_mut!((*slot).dev),
                                ptr::addr_of_mut!((*slot).handler),
                                ptr::addr_of_mut!((*slot).irq),
                                ptr::addr_of_mut!((*slot).line),
                            ),
                        )
                    }
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

            /// Waits until running calls of the handler have returned (C's
            /// `synchronize_irq()`). It sleeps: it takes the bound device rather than an RCU
            /// read-side section.
            ///
            /// # Errors
            ///
            /// `ENXIO` if the line was freed (the driver unbound), `EINVAL` if `dev` is another
            /// device.
            pub fn synchronize(&self, dev: &Device<Bound>) -> Result {
                self.line.access(dev)?.synchronize();
                Ok(())
            }
        }

        impl<T: $handler_trait + 'static> FromCookie for $name<T> {
            type Handler = T;

            unsafe fn from_cookie<'a>(ptr: *mut c_void) -> (&'a Device<Bound>, &'a T) {
                let reg = ptr.cast::<Self>();
                // SAFETY: By the safety requirements the line of the registration at `ptr` is
                // requested: its `dev` and `handler` are initialised and pinned (its `line` may
                // not be yet, and is not read), and the device is bound, as the line is freed at
                // unbind at the latest (by the registration's `Devres`).
                unsafe {
                    (
                        Device::<Bound>::from_raw((*ptr::addr_of!((*reg).dev)).as_raw()),
                        &*ptr::addr_of!((*reg).handler),
                    )
                }
            }
        }
    };
}

/// The callbacks' view of a registration: its device and its handler.
trait FromCookie {
    /// The handler type.
    type Handler;

    /// The device and the handler of the registration whose cookie is `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be the cookie (the address) of a registration of this type whose line is
    /// requested, and the references must not outlive that call of the callback.
    unsafe fn from_cookie<'a>(ptr: *mut c_void) -> (&'a Device<Bound>, &'a Self::Handler);
}

/// The hard-interrupt callback of a [`Registration`].
///
/// # Safety
///
/// `ptr` must be the cookie of a [`Registration<T>`] whose line is requested: its address.
unsafe extern "C" fn handle_irq_callback<T: Handler + 'static>(
    _irq: c_int,
    ptr: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: By the safety requirements; the references live for this call.
    let (dev, handler) = unsafe { Registration::<T>::from_cookie(ptr) };
    handler.handle(dev).into_raw()
}

/// The hard-interrupt callback of a [`ThreadedRegistration`].
///
/// # Safety
///
/// As for [`handle_irq_callback`], of a [`ThreadedRegistration<T>`].
unsafe extern "C" fn handle_threaded_irq_primary<T: ThreadedHandler + 'static>(
    _irq: c_int,
    ptr: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: By the safety requirements; the references live for this call.
    let (dev, handler) = unsafe { ThreadedRegistration::<T>::from_cookie(ptr) };
    handler.handle(dev).into_raw()
}

/// The thread callback of a [`ThreadedRegistration`].
///
/// # Safety
///
/// As for [`handle_irq_callback`], of a [`ThreadedRegistration<T>`] (`free_irq()` also waits for
/// the thread's call).
unsafe extern "C" fn handle_threaded_irq_thread<T: ThreadedHandler + 'static>(
    _irq: c_int,
    ptr: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: By the safety requirements; the references live for this call.
    let (dev, handler) = unsafe { ThreadedRegistration::<T>::from_cookie(ptr) };
    handler.handle_threaded(dev).into_raw()
}

define_registration!(
    /// A line requested with a [`Handler`] (C's `request_irq()`), freed (`free_irq()`) when
    /// dropped or when the device's driver unbinds, whichever comes first.
    ///
    /// It is pinned: its address is the cookie the IRQ core passes to the handler (unique per
    /// registration, even for a zero-sized handler). Only freeing the line is device-managed:
    /// the handler stays with the registration, so that process context reaches its state
    /// directly, and it is dropped with the registration, after the line is freed.
    ///
    /// # Invariants
    ///
    /// `line` frees line `irq`, requested with the registration's address as cookie and
    /// `handle_irq_callback::<T>` as handler, for the device `dev` while it is bound; `dev` and
    /// `handler` are initialised before the line is requested.
    ///
    /// # Examples
    ///
    /// Compile-only: a line needs a bound device's [`IrqRequest`], which only a bus gives out.
    ///
    /// ```
    /// use core::sync::atomic::{AtomicU32, Ordering};
    /// use kernel::{c_str, device::{Bound, Device}, irq};
    ///
    /// struct Counter(AtomicU32);
    ///
    /// impl irq::Handler for Counter {
    ///     fn handle(&self, _dev: &Device<Bound>) -> irq::IrqReturn {
    ///         self.0.fetch_add(1, Ordering::Relaxed);
    ///         irq::IrqReturn::Handled
    ///     }
    /// }
    ///
    /// fn register(
    ///     request: irq::IrqRequest<'_>,
    /// ) -> Result<Pin<KBox<irq::Registration<Counter>>>> {
    ///     let handler = Counter(AtomicU32::new(0));
    ///     let name = c_str!("my_driver");
    ///     KBox::pin_init(irq::Registration::new(request, irq::Flags::SHARED, name, handler),
    ///                    GFP_KERNEL)
    /// }
    /// ```
    Registration,
    Handler,
    Callbacks {
        handler: Some(handle_irq_callback::<T>),
        thread: None,
    }
);

define_registration!(
    /// A line requested with a [`ThreadedHandler`] (C's `request_threaded_irq()`), freed
    /// (`free_irq()`) when dropped or when the device's driver unbinds, whichever comes first.
    ///
    /// As [`Registration`], with a thread that runs [`ThreadedHandler::handle_threaded`] when the
    /// hard-interrupt half asks for it. `free_irq()` waits for the thread's call too.
    ///
    /// # Invariants
    ///
    /// As for [`Registration`], with `handle_threaded_irq_primary::<T>` and
    /// `handle_threaded_irq_thread::<T>` as the handlers.
    ThreadedRegistration,
    ThreadedHandler,
    Callbacks {
        handler: Some(handle_threaded_irq_primary::<T>),
        thread: Some(handle_threaded_irq_thread::<T>),
    }
);
