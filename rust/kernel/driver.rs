// SPDX-License-Identifier: GPL-2.0

//! Generic support for drivers of different buses.
//!
//! A bus adapter (for instance the platform bus's) implements [`RegistrationOps`] to register
//! and unregister its C driver structure. A [`Registration`] keeps a driver registered for as
//! long as it lives, and [`module_driver!`](crate::module_driver) declares a module whose only
//! job is to hold one.

use crate::{
    error::Result,
    init::{self, PinInit},
    prelude::*,
    str::CStr,
    types::Opaque,
    ThisModule,
};

/// The operations a bus adapter implements to register drivers with its bus.
///
/// # Safety
///
/// A call to [`RegistrationOps::unregister`] for a given `reg` must undo what a successful call to
/// [`RegistrationOps::register`] for it did, so that after it the bus holds no reference to `reg`.
pub unsafe trait RegistrationOps {
    /// The bus's C driver structure, e.g. `bindings::platform_driver`.
    type RegType: Default;

    /// Registers the driver structure `reg` with the bus, naming the driver `name`.
    ///
    /// # Safety
    ///
    /// `reg` must be pinned, hold the default value of the type and not be registered; on
    /// success it must stay valid and pinned until [`RegistrationOps::unregister`] is called.
    unsafe fn register(
        reg: &Opaque<Self::RegType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result;

    /// Unregisters the driver structure `reg` from the bus.
    ///
    /// # Safety
    ///
    /// `reg` must have been registered successfully with [`RegistrationOps::register`] and not
    /// unregistered since.
    unsafe fn unregister(reg: &Opaque<Self::RegType>);
}

/// A driver registered with its bus for as long as this object lives.
///
/// # Examples
///
/// A bus that only counts registrations:
///
/// ```
/// use core::sync::atomic::{AtomicI32, Ordering};
/// use kernel::{c_str, driver::{Registration, RegistrationOps}, types::Opaque, ThisModule};
///
/// static REGISTERED: AtomicI32 = AtomicI32::new(0);
///
/// struct CountingBus;
///
/// // SAFETY: `unregister` undoes `register`; the bus keeps no reference to the structure.
/// unsafe impl RegistrationOps for CountingBus {
///     type RegType = u64;
///
///     unsafe fn register(_: &Opaque<u64>, _: &'static CStr, _: &'static ThisModule) -> Result {
///         REGISTERED.fetch_add(1, Ordering::Relaxed);
///         Ok(())
///     }
///
///     unsafe fn unregister(_: &Opaque<u64>) {
///         REGISTERED.fetch_sub(1, Ordering::Relaxed);
///     }
/// }
///
/// // SAFETY: A null module pointer stands for built-in code.
/// static BUILT_IN: ThisModule = unsafe { ThisModule::from_ptr(core::ptr::null_mut()) };
///
/// let reg = KBox::pin_init(Registration::<CountingBus>::new(c_str!("x"), &BUILT_IN), GFP_KERNEL)?;
/// assert_eq!(REGISTERED.load(Ordering::Relaxed), 1);
/// drop(reg);
/// assert_eq!(REGISTERED.load(Ordering::Relaxed), 0);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `reg` is registered with the bus through `T`, from initialisation until drop.
#[pin_data(PinnedDrop)]
pub struct Registration<T: RegistrationOps> {
    #[pin]
    reg: Opaque<T::RegType>,
}

// SAFETY: `Registration` has no API through `&self`; the bus synchronises its own use of the
// registered structure.
unsafe impl<T: RegistrationOps> Sync for Registration<T> {}

// SAFETY: Registering and unregistering may happen on different threads: buses do not tie a
// registration to a thread.
unsafe impl<T: RegistrationOps> Send for Registration<T> {}

impl<T: RegistrationOps> Registration<T> {
    /// Registers a driver named `name`, owned by `module`.
    pub fn new(name: &'static CStr, module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // INVARIANT: `reg` is registered once its initialiser succeeds.
        try_pin_init!(Self {
            reg <- Self::register(name, module),
        }? Error)
    }

    fn register(
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> impl PinInit<Opaque<T::RegType>, Error> {
        let init = move |slot: *mut Opaque<T::RegType>| {
            let reg = Opaque::raw_get(slot);
            // SAFETY: `slot` is valid for writes and pinned (the contract of
            // `pin_init_from_closure`).
            unsafe { reg.write(T::RegType::default()) };
            // SAFETY: `slot` is valid, pinned, initialised with the default value above and not
            // registered.
            unsafe { T::register(&*slot, name, module) }
        };
        // SAFETY: On success the slot holds a registered (hence initialised) structure; on failure
        // it holds an initialised but unregistered one, which an `Opaque` does not need to drop.
        unsafe { init::pin_init_from_closure(init) }
    }
}

#[pinned_drop]
impl<T: RegistrationOps> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant, `reg` is registered, and this is the only unregister.
        unsafe { T::unregister(&self.reg) };
    }
}

/// Declares a kernel module that registers one driver of a bus when loaded.
///
/// Bus adapters wrap it (for instance as `module_platform_driver!`):
/// `$driver_ops` is the adapter type for the driver `$type`, written with the generic parameter
/// `$gen_type`; the rest are the fields of [`module!`](crate::prelude::module), starting with
/// `name`, which also names the driver.
#[macro_export]
macro_rules! module_driver {
    (<$gen_type:ident>, $driver_ops:ty, { type: $type:ty, name: $name:tt, $($f:tt)* }) => {
        type Ops<$gen_type> = $driver_ops;

        type DriverRegistration = $crate::driver::Registration<Ops<$type>>;

        struct DriverModule {
            _driver: ::core::pin::Pin<$crate::alloc::KBox<DriverRegistration>>,
        }

        impl $crate::Module for DriverModule {
            fn init(module: &'static $crate::ThisModule) -> $crate::error::Result<Self> {
                Ok(Self {
                    // Through the trait, so that the caller needs no prelude import.
                    _driver: <$crate::alloc::KBox<DriverRegistration> as $crate::init::InPlaceInit<
                        DriverRegistration,
                    >>::pin_init(
                        $crate::driver::Registration::new($crate::c_str!($name), module),
                        $crate::alloc::flags::GFP_KERNEL,
                    )?,
                })
            }
        }

        $crate::prelude::module! {
            type: DriverModule,
            name: $name,
            $($f)*
        }
    }
}
