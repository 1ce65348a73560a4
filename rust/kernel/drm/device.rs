// SPDX-License-Identifier: GPL-2.0

//! DRM devices.
//!
//! C header: [`include/drm/drm_device.h`](srctree/include/drm/drm_device.h)

use crate::{
    bindings, c_str, device,
    drm::Driver,
    error::{from_err_ptr, to_result, Result},
    init::PinInit,
    prelude::*,
    static_lock_class,
    str::CStr,
    sync::{LockClassKey, Mutex},
    types::{ARef, AlwaysRefCounted, Opaque},
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    mem,
    ops::Deref,
    ptr::{self, NonNull},
};

/// A DRM device of driver `T`, with the driver's data for it.
///
/// It embeds the C `struct drm_device` and is reference counted ([`ARef`]); the driver's data
/// ([`Driver::Data`], reached through [`Deref`]) is dropped when the last reference goes, which
/// is after the device was unplugged and its last file closed. [`drm::Registration`] makes it
/// visible to userspace.
///
/// [`drm::Registration`]: crate::drm::Registration
///
/// # Examples
///
/// A DRM device on a faux device: registered once, unplugged when its parent unbinds, its data
/// dropped with the last reference.
///
/// ```
/// use core::sync::atomic::{AtomicBool, Ordering};
/// use kernel::{c_str, drm, faux};
///
/// # struct ExampleFile;
/// # impl drm::DriverFile for ExampleFile {
/// #     type Driver = ExampleDriver;
/// #     fn open(_dev: &drm::Device<ExampleDriver>) -> Result<Pin<KBox<Self>>> {
/// #         Ok(KBox::pin(ExampleFile, GFP_KERNEL)?)
/// #     }
/// # }
/// # struct ExampleObject;
/// # impl drm::gem::DriverObject for ExampleObject {
/// #     type Driver = ExampleDriver;
/// # }
/// static DROPPED: AtomicBool = AtomicBool::new(false);
///
/// struct Data(u32);
///
/// impl Drop for Data {
///     fn drop(&mut self) {
///         DROPPED.store(true, Ordering::Relaxed);
///     }
/// }
///
/// struct ExampleDriver;
///
/// impl drm::Driver for ExampleDriver {
///     type Data = Data;
///     type File = ExampleFile;
///     type Object = ExampleObject;
///     const INFO: drm::DriverInfo = drm::DriverInfo {
///         major: 1,
///         minor: 0,
///         patchlevel: 0,
///         name: c_str!("example"),
///         desc: c_str!("Example DRM driver"),
///     };
///     const IOCTLS: &'static [drm::ioctl::Ioctl<Self>] = &[];
/// }
///
/// kernel::declare_drm_driver!(ExampleDriver);
///
/// let parent = faux::Registration::new(c_str!("rust-drm-example"), None)?;
/// let other = faux::Registration::new(c_str!("rust-drm-example-other"), None)?;
/// let drm = drm::Device::<ExampleDriver>::new(parent.as_ref(), Data(42))?;
/// assert_eq!(drm.0, 42);
///
/// // Only the parent's binding can hold the registration, and only once.
/// assert_eq!(drm::Registration::new_foreign_owned(&drm, other.as_ref(), 0), Err(EINVAL));
/// drm::Registration::new_foreign_owned(&drm, parent.as_ref(), 0)?;
/// assert_eq!(drm::Registration::new_foreign_owned(&drm, parent.as_ref(), 0), Err(EBUSY));
/// assert!(drm.enter().is_some());
///
/// // Destroying the faux device unbinds it, which unplugs the DRM device; the data lives as
/// // long as a reference does.
/// drop(parent);
/// assert!(drm.enter().is_none());
/// assert!(!DROPPED.load(Ordering::Relaxed));
/// drop(drm);
/// assert!(DROPPED.load(Ordering::Relaxed));
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `dev` is an initialised `struct drm_device` of driver `T` (its vtable is `T`'s), allocated
/// by `__drm_dev_alloc()` as the first field of this structure, and `data` is initialised; both
/// live until the device's reference count drops to zero. `plug` is initialised; it is
/// `Plug::Registered` exactly while the device is registered with userspace and not unplugged,
/// and it only ever moves forward, under its lock, so that the device is registered and
/// unplugged at most once.
#[repr(C)]
pub struct Device<T: Driver> {
    dev: Opaque<bindings::drm_device>,
    /// Where the device is in its life with userspace.
    pub(super) plug: Mutex<Plug>,
    data: T::Data,
}

/// Where a DRM device is in its life with userspace: registered once, then unplugged once.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Plug {
    /// Not registered yet.
    New,
    /// Registered with userspace and not unplugged.
    Registered,
    /// Unplugged, or refused registration for good (its registration failed, or it was
    /// unplugged before being registered).
    Unplugged,
}

/// The name of every DRM device's plug lock, for lockdep.
///
/// A static rather than a literal in [`Device::new`]: that function is instantiated in each
/// driver's module, which would carry its own copy of a literal, and lockdep takes a class
/// whose key it knows under another name's address for a corrupted class (it warns).
static PLUG_LOCK_NAME: &CStr = c_str!("drm::Device::plug");

/// The lock class of every DRM device's plug lock: one for all drivers, defined outside the
/// generic [`Device::new`] for the same reason as [`PLUG_LOCK_NAME`].
fn plug_lock_class() -> &'static LockClassKey {
    static_lock_class!()
}

impl<T: Driver> Device<T> {
    /// Checks at compile time that `kmalloc()` (behind `__drm_dev_alloc()`) aligns the
    /// structure well enough: it guarantees `ARCH_KMALLOC_MINALIGN`, which is at least the
    /// alignment of a `u64`.
    const ALIGNED: () = assert!(
        mem::align_of::<Self>() <= mem::align_of::<u64>(),
        "the driver's data of a DRM device must not need more alignment than a u64"
    );

    /// Checks at compile time that `dev` is at offset 0, which the casts between a `Device<T>`
    /// and its `struct drm_device` rely on (`repr(C)` puts it there; this keeps it there).
    const DEV_FIRST: () = assert!(mem::offset_of!(Self, dev) == 0);

    /// Creates a DRM device of driver `T` whose parent is `parent`, with the driver's data
    /// initialised by `data`.
    ///
    /// The device is not visible to userspace until it is registered with
    /// [`drm::Registration`](crate::drm::Registration).
    ///
    /// # Errors
    ///
    /// `ENOMEM`, an error of DRM's initialisation, or `data`'s error (nothing is left behind).
    pub fn new(
        parent: &device::Device<device::Bound>,
        data: impl PinInit<T::Data, Error>,
    ) -> Result<ARef<Self>> {
        #[allow(clippy::let_unit_value)]
        let ((), ()) = (Self::ALIGNED, Self::DEV_FIRST);
        // SAFETY: `parent` is a valid device, the vtable lives as long as the module that
        // contains the driver (which the device's files and its exported buffers pin, and
        // which the driver keeps loaded until it dropped its own references to the device),
        // and `dev` is at offset 0 of `Self`, which is `size_of::<Self>()` bytes.
        let raw: *mut Self = from_err_ptr(unsafe {
            bindings::__drm_dev_alloc(
                parent.as_raw(),
                T::vtable().as_raw(),
                mem::size_of::<Self>(),
                0,
            )
        })?
        .cast();
        // SAFETY: `__drm_dev_alloc()` returned a zeroed allocation of `Self`, whose `dev` it
        // initialised: a valid device with a reference we own. From here on, dropping that
        // reference releases everything.
        let drm = unsafe { &*raw.cast::<Opaque<bindings::drm_device>>() };
        let put = || {
            // SAFETY: We own the initial reference, not handed out to anyone.
            unsafe { bindings::drm_dev_put(drm.get()) }
        };
        let plug = Mutex::new(Plug::New, PLUG_LOCK_NAME, plug_lock_class());
        // SAFETY: `plug` and `data` are within the allocation, not initialised yet; nothing
        // else can reach them, and neither is moved after initialisation: the allocation is
        // freed, never moved, when the last reference goes. A `Mutex` needs no drop.
        let plug = unsafe { plug.__pinned_init(ptr::addr_of_mut!((*raw).plug)) };
        if let Err(e) = plug {
            match e {}
        }
        // SAFETY: As above.
        if let Err(e) = unsafe { data.__pinned_init(ptr::addr_of_mut!((*raw).data)) } {
            put();
            return Err(e);
        }
        // SAFETY: `drm.get()` is a valid device; the action is called once, with `raw`, when
        // the device is released (or right away, if it cannot be added).
        let ret = unsafe {
            bindings::__drmm_add_action_or_reset(
                drm.get(),
                Some(Self::release_data),
                raw.cast(),
                c_str!("rust_drm_device_data").as_char_ptr(),
            )
        };
        if let Err(e) = to_result(ret) {
            put();
            return Err(e);
        }
        // INVARIANT: `dev` and `data` are initialised; `data` is dropped by the DRM-managed
        // action when the last reference goes.
        // SAFETY: `raw` is valid and we own its reference, which the `ARef` takes over.
        Ok(unsafe { ARef::from_raw(NonNull::new_unchecked(raw)) })
    }

    /// Drops the driver's data: the DRM-managed action that [`Device::new`] adds.
    ///
    /// # Safety
    ///
    /// Called once, by DRM, when the device `raw` of `Self` is released, with `data` == `raw`.
    unsafe extern "C" fn release_data(_raw: *mut bindings::drm_device, data: *mut c_void) {
        let this = data.cast::<Self>();
        // SAFETY: By the safety requirements, the device is being released: nothing else can
        // reach its data, which is initialised (the action is added after initialisation).
        unsafe { ptr::drop_in_place(ptr::addr_of_mut!((*this).data)) };
    }

    /// The C `struct drm_device`.
    pub(crate) fn as_raw(&self) -> *mut bindings::drm_device {
        self.dev.get()
    }

    /// The DRM device of driver `T` that `ptr` points to.
    ///
    /// # Safety
    ///
    /// `ptr` points to the `struct drm_device` of a [`Device<T>`], with a reference held for
    /// `'a`.
    #[doc(hidden)]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::drm_device) -> &'a Self {
        // SAFETY: By the safety requirements, `ptr` is the first field of a live `Self`
        // (`repr(C)`).
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The parent device, the one the DRM device was created for.
    pub fn parent(&self) -> &device::Device {
        // SAFETY: By the type invariant, the device is initialised: its parent pointer is valid
        // and the DRM device holds a reference to the parent until it is released.
        unsafe { device::Device::from_raw((*self.as_raw()).dev) }
    }

    /// Enters the device: until the guard drops, the device cannot finish unplugging.
    ///
    /// Returns `None` if the device was unplugged. Ioctl handlers that take an [`Entered`] run
    /// entered (see `declare_drm_ioctls!`); other code that must not run after the unplug (a
    /// handler that waits, a work item) enters by itself, around the part that needs it.
    ///
    /// Entered sections must be short: the unplug of every DRM device, C drivers' included,
    /// waits for the entered sections of every device (DRM's `drm_unplug_srcu` is one for
    /// all). So, while entered:
    /// - no wait for the hardware to complete something (a fence, ring space) nor for a time
    ///   that userspace controls: enter around the access, not around the wait;
    /// - no wait for the parent's unbind or for what it tears down (its IRQs, its work items),
    ///   and no [`Device::unplug`]: the unplug would wait for the section, which waits for it.
    ///
    /// Being entered keeps the DRM device plugged, not the bus driver's resources: unless the
    /// driver calls [`Device::unplug`] first, the unplug comes after the bus driver's
    /// `unbind()` and after its data was dropped. Hardware that ioctls reach belongs in
    /// [`Driver::Data`] as a [`Devres`](crate::devres::Devres), reached with `try_access()` even
    /// when entered.
    ///
    /// # Examples
    ///
    /// Compile-only: it needs a driver.
    ///
    /// ```
    /// use kernel::drm;
    ///
    /// fn touch<T: drm::Driver>(drm: &drm::Device<T>) -> Result {
    ///     let _entered = drm.enter().ok_or(ENODEV)?;
    ///     // The device is not unplugged before `_entered` drops.
    ///     Ok(())
    /// }
    /// ```
    pub fn enter(&self) -> Option<Entered<'_, T>> {
        let mut idx = 0;
        // SAFETY: `self.as_raw()` is a valid DRM device.
        if unsafe { bindings::drm_dev_enter(self.as_raw(), &mut idx) } {
            // INVARIANT: `drm_dev_enter()` succeeded with `idx`.
            Some(Entered {
                drm: self,
                idx,
                _not_send: PhantomData,
            })
        } else {
            None
        }
    }

    /// Unplugs the device now, from its parent's bus callback: typically first thing in the
    /// bus driver's `unbind()`, so that no ioctl reaches the driver while it tears down its
    /// resources.
    ///
    /// Without it, the device is unplugged when the parent's devres is released, which is after
    /// the bus driver's `unbind()` returned and its data was dropped. Either way the nodes go,
    /// ioctls on files still open get `ENODEV`, and the unplug waits for the entered sections
    /// running. A registered device is unplugged once (the registration's drop then does
    /// nothing); one not registered yet can no longer be; one already unplugged is left alone.
    ///
    /// It takes the parent in a bus callback (`Core`), where the parent's lock orders it with
    /// the probe and the unbind, and which an ioctl handler does not have. It must not be
    /// called entered: the unplug would wait for itself.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `parent` is not the device's parent.
    pub fn unplug(&self, parent: &device::Device<device::Core>) -> Result {
        // SAFETY: By the type invariant, the device is initialised: its parent pointer is set
        // and not changed before its release.
        if unsafe { (*self.as_raw()).dev } != parent.as_raw() {
            return Err(EINVAL);
        }
        let mut plug = self.plug.lock();
        if *plug == Plug::Registered {
            // SAFETY: By the type invariant, the device is registered and not unplugged, and
            // `plug`'s lock, held, keeps it so until the state below says unplugged.
            unsafe { bindings::drm_dev_unplug(self.as_raw()) };
        }
        // INVARIANT: The device is unplugged or was never registered; it stays so.
        *plug = Plug::Unplugged;
        Ok(())
    }
}

impl<T: Driver> Deref for Device<T> {
    type Target = T::Data;

    fn deref(&self) -> &Self::Target {
        &self.data
    }
}

// SAFETY: DRM devices are reference counted by `drm_dev_get()`/`drm_dev_put()`; by the type
// invariant, the structure lives until the count drops to zero.
unsafe impl<T: Driver> AlwaysRefCounted for Device<T> {
    fn inc_ref(&self) {
        // SAFETY: `self.as_raw()` is a valid DRM device with a reference held by `self`.
        unsafe { bindings::drm_dev_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: By the safety requirements, the caller owns a reference to `obj`.
        unsafe { bindings::drm_dev_put(obj.as_ref().as_raw()) };
    }
}

// SAFETY: A DRM device may be used and released from any thread; `T::Data` is `Send + Sync`.
unsafe impl<T: Driver> Send for Device<T> {}

// SAFETY: `&Device<T>` only reaches DRM functions that are safe from any thread, and `T::Data`
// is `Sync`.
unsafe impl<T: Driver> Sync for Device<T> {}

/// Proof that a DRM device is entered ([`Device::enter`]): it is not unplugged before this drops.
///
/// # Invariants
///
/// `drm_dev_enter()` on `self.drm` succeeded with `self.idx`, and `drm_dev_exit()` was not
/// called for it yet.
pub struct Entered<'a, T: Driver> {
    drm: &'a Device<T>,
    idx: i32,
    /// Exited on the thread that entered (SRCU read-side sections are per task for lockdep).
    _not_send: PhantomData<*mut ()>,
}

impl<T: Driver> Deref for Entered<'_, T> {
    type Target = Device<T>;

    fn deref(&self) -> &Device<T> {
        self.drm
    }
}

impl<T: Driver> Drop for Entered<'_, T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, `self.idx` is from a successful `drm_dev_enter()`
        // that was not exited yet; this is the only exit.
        unsafe { bindings::drm_dev_exit(self.idx) };
    }
}
