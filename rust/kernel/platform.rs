// SPDX-License-Identifier: GPL-2.0

//! The platform bus: devices, drivers and their ID tables.
//!
//! C header: [`include/linux/platform_device.h`](srctree/include/linux/platform_device.h)

use crate::{
    alloc::flags::GFP_KERNEL,
    bindings, device,
    device_id::{self, RawDeviceId},
    driver,
    error::{from_err_ptr, to_result, Result},
    ffi::c_int,
    prelude::*,
    str::CStr,
    types::{AlwaysRefCounted, Opaque},
    ThisModule,
};
use core::{
    marker::PhantomData,
    mem::MaybeUninit,
    ops::Deref,
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

/// A platform driver's ID table, with driver information of type `T` per ID.
pub type IdTable<T> = &'static dyn device_id::IdTable<DeviceId, T>;

/// Declares a platform driver's ID table as a constant and exports it for module autoloading.
///
/// # Examples
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
pub trait Driver: Send + Sync + Sized + 'static {
    /// The driver's information for each ID of its table.
    type IdInfo: 'static;

    /// The IDs the driver binds to.
    const ID_TABLE: IdTable<Self::IdInfo>;

    /// Binds the driver to `dev`: returns an initialiser of the driver's data for the device.
    ///
    /// `id_info` is the information of the matching ID, or `None` when the device matched by
    /// the driver's name. The data lives until the driver is unbound from the device.
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
        // the device stays bound for the callback: the `Core` context.
        let pdev = unsafe { &*pdev.cast::<Device<device::Core>>() };
        let data =
            T::probe(pdev, Self::id_info(pdev)).and_then(|init| KBox::pin_init(init, GFP_KERNEL));
        match data {
            Ok(data) => {
                pdev.as_ref().set_drvdata(data);
                0
            }
            Err(err) => err.to_errno(),
        }
    }

    extern "C" fn remove_callback(pdev: *mut bindings::platform_device) {
        // SAFETY: As in `probe_callback`: remove runs in the `Core` context.
        let pdev = unsafe { &*pdev.cast::<Device<device::Core>>() };
        // SAFETY: Remove only runs after a successful probe, which stored a `Pin<KBox<T>>`, and
        // runs once per probe.
        let data = unsafe { pdev.as_ref().drvdata_obtain::<Pin<KBox<T>>>() };
        T::unbind(pdev, data.as_ref());
    }

    /// The driver information of the ID the device matched, if it matched by ID.
    fn id_info(pdev: &Device<device::Core>) -> Option<&'static T::IdInfo> {
        // SAFETY: `pdev` is a valid platform device.
        let id = unsafe { (*pdev.as_raw()).id_entry };
        // The bus sets `id_entry` to the entry of `T::ID_TABLE` that matched, or leaves it null.
        let index = T::ID_TABLE.index_of(id)?;
        Some(T::ID_TABLE.info(index))
    }
}

/// Declares a kernel module that registers one platform driver.
///
/// # Examples
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

impl Deref for Device<device::Core> {
    type Target = Device<device::Bound>;

    fn deref(&self) -> &Self::Target {
        // SAFETY: Same layout; a device in a bus callback is bound for the callback's duration.
        unsafe { &*ptr::from_ref(self).cast::<Device<device::Bound>>() }
    }
}

impl Deref for Device<device::Bound> {
    type Target = Device;

    fn deref(&self) -> &Self::Target {
        // SAFETY: Same layout; `Normal` promises nothing beyond the type invariant.
        unsafe { &*ptr::from_ref(self).cast::<Device>() }
    }
}

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
unsafe impl<Ctx: device::DeviceContext> Sync for Device<Ctx> {}

/// A platform device that a module registers for itself, unregistered when dropped.
///
/// Drivers for devices that firmware does not describe (virtual devices, samples) register their
/// own device this way, like C drivers that call `platform_device_register_simple()`.
///
/// # Invariants
///
/// `pdev` is a platform device registered by [`RegisteredDevice::new`] and not unregistered.
pub struct RegisteredDevice {
    pdev: NonNull<bindings::platform_device>,
}

impl RegisteredDevice {
    /// Registers a platform device named `name` with no resources and no parent.
    pub fn new(name: &'static CStr) -> Result<Self> {
        let info = bindings::platform_device_info {
            name: name.as_char_ptr(),
            id: bindings::PLATFORM_DEVID_NONE,
            ..Default::default()
        };
        // SAFETY: `info` is valid for the call; the name is `'static`.
        let pdev = from_err_ptr(unsafe { bindings::platform_device_register_full(&info) })?;
        // INVARIANT: The device was just registered.
        Ok(Self {
            pdev: NonNull::new(pdev).ok_or(ENOMEM)?,
        })
    }

    /// The registered device.
    pub fn device(&self) -> &Device {
        // SAFETY: By the type invariant, the device is registered, so valid, until `self` drops.
        unsafe { &*self.pdev.as_ptr().cast::<Device>() }
    }
}

impl Drop for RegisteredDevice {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, the device is registered; this is the only unregister.
        unsafe { bindings::platform_device_unregister(self.pdev.as_ptr()) };
    }
}

// SAFETY: Unregistering may happen on any thread.
unsafe impl Send for RegisteredDevice {}

// SAFETY: Shared access only reaches the device, which is `Sync`.
unsafe impl Sync for RegisteredDevice {}
