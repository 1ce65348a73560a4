// SPDX-License-Identifier: GPL-2.0

//! The platform bus: devices, drivers and their ID tables.
//!
//! C header: [`include/linux/platform_device.h`](srctree/include/linux/platform_device.h)

use crate::{
    bindings, device,
    device_id::{self, RawDeviceId, RawDeviceIdIndex},
    driver,
    error::{to_result, Result},
    ffi::c_int,
    prelude::*,
    str::CStr,
    types::{AlwaysRefCounted, Opaque},
    ThisModule,
};
use core::{
    marker::PhantomData,
    mem::{offset_of, MaybeUninit},
    ptr::{self, NonNull},
};

/// A platform device ID: a device name to match.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::platform_device_id);

impl DeviceId {
    /// An ID matching platform devices named `name`.
    ///
    /// Fails to compile when `name` does not fit the C structure (19 bytes and a NUL).
    pub const fn new(name: &CStr) -> Self {
        let src = name.as_bytes_with_nul();
        // SAFETY: All-zeroes is a valid `platform_device_id` (a name of NULs and zero data).
        let mut id: bindings::platform_device_id = unsafe { MaybeUninit::zeroed().assume_init() };
        assert!(
            src.len() <= id.name.len(),
            "platform device ID name too long"
        );
        let mut i = 0;
        while i < src.len() {
            id.name[i] = src[i] as crate::ffi::c_char;
            i += 1;
        }
        Self(id)
    }
}

// SAFETY: `DeviceId` is a transparent wrapper of `platform_device_id`, for which all-zeroes is
// valid.
unsafe impl RawDeviceId for DeviceId {
    type RawType = bindings::platform_device_id;
}

// SAFETY: `driver_data` is a `kernel_ulong_t` that only drivers use.
unsafe impl RawDeviceIdIndex for DeviceId {
    const DRIVER_DATA_OFFSET: usize = offset_of!(bindings::platform_device_id, driver_data);
}

/// A platform driver's ID table, with driver information of type `T` per ID.
pub type IdTable<T> = &'static dyn device_id::IdTable<DeviceId, T>;

/// Declares a platform driver's ID table as a constant and exports it for module autoloading.
///
/// # Examples
///
/// Compile-only: the table is exported for modpost in modules only.
///
/// ```
/// use kernel::{c_str, platform};
///
/// kernel::platform_device_table!(
///     TABLE,
///     MODULE_TABLE,
///     u32,
///     [(platform::DeviceId::new(c_str!("example-a")), 1)]
/// );
/// ```
#[macro_export]
macro_rules! platform_device_table {
    ($table_name:ident, $module_table_name:ident, $id_info_type:ty, $table_data:expr) => {
        const $table_name: $crate::device_id::IdArray<
            $crate::platform::DeviceId,
            $id_info_type,
            { $table_data.len() },
        > = $crate::device_id::IdArray::new($table_data);

        $crate::module_device_table!("platform", $module_table_name, $table_name);
    };
}

/// A platform driver.
///
/// # Examples
///
/// Compile-only: probe needs a platform device that matches.
///
/// ```
/// use kernel::{c_str, device::Core, platform};
///
/// struct MyDriver;
///
/// kernel::platform_device_table!(
///     TABLE,
///     MODULE_TABLE,
///     <MyDriver as platform::Driver>::IdInfo,
///     [(platform::DeviceId::new(c_str!("my-device")), ())]
/// );
///
/// impl platform::Driver for MyDriver {
///     type IdInfo = ();
///     const ID_TABLE: platform::IdTable<Self::IdInfo> = &TABLE;
///
///     fn probe(
///         pdev: &platform::Device<Core>,
///         _info: Option<&Self::IdInfo>,
///     ) -> Result<impl PinInit<Self, Error>> {
///         dev_info!(pdev.as_ref(), "probed\n");
///         Ok(MyDriver)
///     }
/// }
/// ```
///
/// A module whose only job is to register the driver declares itself with
/// [`module_platform_driver!`](crate::module_platform_driver).
pub trait Driver: Send + 'static {
    /// The driver's information for each ID of its table.
    type IdInfo: 'static;

    /// The IDs the driver binds to.
    const ID_TABLE: IdTable<Self::IdInfo>;

    /// Binds the driver to `dev`: returns an initialiser of the driver's data for the device.
    ///
    /// `id_info` is the information of the ID whose name is the device's name, or `None` when
    /// no ID has it (the device was bound through its `driver_override`). The data lives until
    /// the driver is unbound from the device; it is dropped on the thread that unbinds it.
    fn probe(
        dev: &Device<device::Core>,
        id_info: Option<&Self::IdInfo>,
    ) -> Result<impl PinInit<Self, Error>>;

    /// Called when the driver is unbound from `dev`, before its data is dropped.
    fn unbind(dev: &Device<device::Core>, this: Pin<&Self>) {
        let _ = (dev, this);
    }
}

/// The platform bus adapter for driver `T`: registers `T` and calls it back.
pub struct Adapter<T: Driver>(PhantomData<T>);

// SAFETY: `unregister` calls `platform_driver_unregister`, which undoes
// `__platform_driver_register`.
unsafe impl<T: Driver> driver::RegistrationOps for Adapter<T> {
    type RegType = bindings::platform_driver;

    unsafe fn register(
        pdrv: &Opaque<Self::RegType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        let pdrv = pdrv.get();
        // SAFETY: By the safety requirements, `pdrv` is valid, pinned and not registered yet, so
        // nothing else accesses it.
        unsafe {
            (*pdrv).driver.name = name.as_char_ptr();
            (*pdrv).probe = Some(Self::probe_callback);
            (*pdrv).__bindgen_anon_1.remove = Some(Self::remove_callback);
            (*pdrv).id_table = T::ID_TABLE.as_ptr();
        }
        // SAFETY: `pdrv` is fully set up and stays valid and pinned until unregistered; the ID
        // table is `'static`.
        to_result(unsafe { bindings::__platform_driver_register(pdrv, module.as_ptr()) })
    }

    unsafe fn unregister(pdrv: &Opaque<Self::RegType>) {
        // SAFETY: By the safety requirements, `pdrv` was registered successfully.
        unsafe { bindings::platform_driver_unregister(pdrv.get()) };
    }
}

impl<T: Driver> Adapter<T> {
    extern "C" fn probe_callback(pdev: *mut bindings::platform_device) -> c_int {
        // SAFETY: The driver core calls probe with a valid device and the device lock held, and
        // the device stays bound for the callback: the `CoreInternal` context, which stays with
        // the adapter (the driver gets the `Core` deref).
        let pdev = unsafe { &*pdev.cast::<Device<device::CoreInternal>>() };
        let info = Self::id_info(pdev);
        match T::probe(pdev, info).and_then(|data| pdev.as_ref().set_drvdata(data)) {
            Ok(()) => 0,
            Err(err) => err.to_errno(),
        }
    }

    extern "C" fn remove_callback(pdev: *mut bindings::platform_device) {
        // SAFETY: As in `probe_callback`: remove runs in the `CoreInternal` context.
        let pdev = unsafe { &*pdev.cast::<Device<device::CoreInternal>>() };
        // SAFETY: Remove only runs after a successful probe, which stored a `T`; it is taken back
        // only below, after the borrow ends.
        let data = unsafe { pdev.as_ref().drvdata_borrow::<T>() };
        T::unbind(pdev, data);
        // SAFETY: As above, and this is the only take, once per probe.
        drop(unsafe { pdev.as_ref().drvdata_obtain::<T>() });
    }

    /// The driver information of the ID whose name is the device's name.
    ///
    /// The platform bus matches an ID table by name (`platform_match_id()`), and reports the
    /// match in `pdev->id_entry`; that pointer is not used here, since a match through
    /// `driver_override` leaves an older one (possibly into another module's table) in place.
    /// The ID is found again by name instead, and its information by the index the table stored
    /// in its driver data. `None` when no ID has the device's name (it is bound through its
    /// `driver_override`).
    fn id_info(pdev: &Device<device::CoreInternal>) -> Option<&'static T::IdInfo> {
        let table = T::ID_TABLE;
        let pdev = pdev.as_raw();
        // SAFETY: `pdev` is a valid platform device, and its `name` a valid NUL-terminated string
        // for as long as the device exists.
        let name = unsafe { CStr::from_char_ptr((*pdev).name) };
        (0..table.len())
            .map(|i| table.id(i))
            .find(|id| {
                // SAFETY: `id.name` is NUL-terminated: `DeviceId::new` checked that the name and
                // its NUL fit.
                let id_name = unsafe { CStr::from_char_ptr(id.name.as_ptr()) };
                id_name.as_bytes() == name.as_bytes()
            })
            .map(|id| table.info(DeviceId::index(id)))
    }
}

/// Declares a kernel module that registers one platform driver.
///
/// # Examples
///
/// Not compiled here, as a crate declares one module at most;
/// `samples/rust/rust_driver_platform.rs` uses it.
///
/// ```ignore
/// kernel::module_platform_driver! {
///     type: MyDriver,
///     name: "my_driver",
///     author: "A. Developer",
///     description: "An example platform driver",
///     license: "GPL v2",
/// }
/// ```
#[macro_export]
macro_rules! module_platform_driver {
    ($($f:tt)*) => {
        $crate::module_driver!(<T>, $crate::platform::Adapter<T>, { $($f)* });
    };
}

/// A platform device, as `struct platform_device`, in context `Ctx` (see
/// [`DeviceContext`](device::DeviceContext)).
///
/// # Invariants
///
/// The wrapped `struct platform_device` is valid, and in the state `Ctx` describes for as long as
/// a reference to this exists.
#[repr(transparent)]
pub struct Device<Ctx: device::DeviceContext = device::Normal>(
    Opaque<bindings::platform_device>,
    PhantomData<Ctx>,
);

impl<Ctx: device::DeviceContext> Device<Ctx> {
    fn as_raw(&self) -> *mut bindings::platform_device {
        self.0.get()
    }
}

impl<Ctx: device::DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: By the type invariant, `self.as_raw()` is a valid platform device, so its
        // embedded `dev` is a valid device in the same state.
        unsafe { device::Device::from_raw(ptr::addr_of_mut!((*self.as_raw()).dev)) }
    }
}

// SAFETY: `Device` is `repr(transparent)` over the same field for every context, and a
// `&Device<Ctx>` is only handed out in the state `Ctx` describes (type invariant).
crate::impl_device_context_deref!(unsafe { Device });
crate::impl_device_context_into_aref!(Device);

// SAFETY: Platform devices are reference counted through their embedded `struct device`.
unsafe impl AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: A shared reference means the reference count is not zero.
        unsafe { bindings::get_device(ptr::addr_of_mut!((*self.as_raw()).dev)) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The safety requirements guarantee that the reference count is not zero.
        unsafe {
            bindings::put_device(ptr::addr_of_mut!(
                (*obj.cast::<bindings::platform_device>().as_ptr()).dev
            ))
        }
    }
}

// SAFETY: A platform device may be used and released from any thread, like `device::Device`.
unsafe impl Send for Device {}

// SAFETY: Shared access only uses the device's own synchronisation, like `device::Device`.
unsafe impl Sync for Device {}

// SAFETY: Like `device::Device<Bound>`: the device stays bound for any thread while the reference
// lives.
unsafe impl Sync for Device<device::Bound> {}
