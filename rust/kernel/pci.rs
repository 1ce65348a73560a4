// SPDX-License-Identifier: GPL-2.0

//! The PCI bus: devices, drivers and their ID tables.
//!
//! A [`Driver`] lists the devices it supports in an ID table of [`DeviceId`]s, each with the
//! driver's own information; its `probe` gets the [`Device`] in the [`Core`](device::Core)
//! context and the information of the matched ID, and returns the initialiser of the driver's
//! data for the device, which lives until the driver unbinds.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)

use crate::{
    bindings, device,
    device_id::{self, RawDeviceId, RawDeviceIdIndex},
    driver,
    error::{to_result, Result},
    ffi::{c_int, c_void},
    io::resource::{Flags, Resource, ResourceSize},
    prelude::*,
    str::CStr,
    types::{AlwaysRefCounted, Opaque},
    ThisModule,
};
use core::{
    marker::PhantomData,
    mem::offset_of,
    ptr::{self, NonNull},
};

mod bar;
mod config;
mod irq;

pub use bar::Bar;
pub use irq::{IrqType, IrqTypes, IrqVector, IrqVectors};

/// C's `PCI_ANY_ID`: an ID field that matches any value.
const PCI_ANY_ID: u32 = !0;

/// A PCI device ID: what a driver matches, as `struct pci_device_id`.
///
/// # Examples
///
/// ```
/// use kernel::pci::DeviceId;
///
/// // A device by vendor and device ID, whatever its subsystem.
/// let edu = DeviceId::from_id(0x1234, 0x11e8);
/// assert_eq!((edu.vendor(), edu.device()), (0x1234, 0x11e8));
/// // Any VGA controller (class 0x03, subclass 0x00, any programming interface).
/// let vga = DeviceId::from_class(0x03_00_00, 0xff_ff_00);
/// assert_eq!((vga.class(), vga.class_mask()), (0x03_00_00, 0xff_ff_00));
/// // Any 3D controller of one vendor.
/// let nv3d = DeviceId::from_vendor_class(0x10de, 0x03_02_00, 0xff_ff_00);
/// assert_eq!(nv3d.vendor(), 0x10de);
/// ```
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::pci_device_id);

impl DeviceId {
    const fn new(vendor: u32, device: u32, class: u32, class_mask: u32) -> Self {
        Self(bindings::pci_device_id {
            vendor,
            device,
            subvendor: PCI_ANY_ID,
            subdevice: PCI_ANY_ID,
            class,
            class_mask,
            driver_data: 0,
            override_only: 0,
        })
    }

    /// An ID matching devices with vendor ID `vendor` and device ID `device`, of any subsystem
    /// (C's `PCI_DEVICE()`).
    pub const fn from_id(vendor: u32, device: u32) -> Self {
        Self::new(vendor, device, 0, 0)
    }

    /// An ID matching devices of any vendor whose class code (class, subclass and programming
    /// interface, 24 bits), masked with `class_mask`, is `class` (C's `PCI_DEVICE_CLASS()`).
    pub const fn from_class(class: u32, class_mask: u32) -> Self {
        Self::new(PCI_ANY_ID, PCI_ANY_ID, class, class_mask)
    }

    /// An ID matching devices of vendor `vendor` whose class code, masked with `class_mask`, is
    /// `class` (C's `PCI_VENDOR()` with a class).
    pub const fn from_vendor_class(vendor: u32, class: u32, class_mask: u32) -> Self {
        Self::new(vendor, PCI_ANY_ID, class, class_mask)
    }

    /// The vendor ID matched (`!0` for any).
    pub const fn vendor(&self) -> u32 {
        self.0.vendor
    }

    /// The device ID matched (`!0` for any).
    pub const fn device(&self) -> u32 {
        self.0.device
    }

    /// The class code matched, under [`DeviceId::class_mask`].
    pub const fn class(&self) -> u32 {
        self.0.class
    }

    /// The bits of the class code that are matched.
    pub const fn class_mask(&self) -> u32 {
        self.0.class_mask
    }
}

// SAFETY: `DeviceId` is a transparent wrapper of `pci_device_id`, for which all-zeroes is valid
// (and is the terminating entry of a table).
unsafe impl RawDeviceId for DeviceId {
    type RawType = bindings::pci_device_id;
}

// SAFETY: `driver_data` is a `kernel_ulong_t` that only the driver's side uses; the PCI core
// accepts a dynamic ID only with the driver data of one of the table's IDs (`new_id_store()`).
unsafe impl RawDeviceIdIndex for DeviceId {
    const DRIVER_DATA_OFFSET: usize = offset_of!(bindings::pci_device_id, driver_data);
}

/// A PCI driver's ID table, with driver information of type `T` per ID.
pub type IdTable<T> = &'static dyn device_id::IdTable<DeviceId, T>;

/// Declares a PCI driver's ID table as a constant and exports it for modpost, which gives the
/// module its `pci:v...` aliases for autoloading.
///
/// # Examples
///
/// ```
/// use kernel::{device_id::IdTable, pci};
///
/// kernel::pci_device_table!(
///     TABLE,
///     MODULE_TABLE,
///     &'static str,
///     [
///         (pci::DeviceId::from_id(0x1b36, 0x0005), "pci-testdev"),
///         (pci::DeviceId::from_id(0x1234, 0x11e8), "edu"),
///     ]
/// );
///
/// // Each ID carries its index in its driver data, which finds its information.
/// let id = TABLE.id(1);
/// assert_eq!((id.vendor, id.device, id.driver_data), (0x1234, 0x11e8, 1));
/// assert_eq!(*TABLE.info(1), "edu");
/// ```
#[macro_export]
macro_rules! pci_device_table {
    ($table_name:ident, $module_table_name:ident, $id_info_type:ty, $table_data:expr) => {
        const $table_name: $crate::device_id::IdArray<
            $crate::pci::DeviceId,
            $id_info_type,
            { $table_data.len() },
        > = $crate::device_id::IdArray::new($table_data);

        $crate::module_device_table!("pci", $module_table_name, $table_name);
    };
}

/// A PCI driver.
///
/// # Examples
///
/// Compile-only: probe needs a PCI device that matches.
///
/// ```
/// use kernel::{device::Core, pci};
///
/// struct MyDriver;
///
/// kernel::pci_device_table!(
///     TABLE,
///     MODULE_TABLE,
///     <MyDriver as pci::Driver>::IdInfo,
///     [(pci::DeviceId::from_id(0x1234, 0x11e8), ())]
/// );
///
/// impl pci::Driver for MyDriver {
///     type IdInfo = ();
///     const ID_TABLE: pci::IdTable<Self::IdInfo> = &TABLE;
///
///     fn probe(
///         pdev: &pci::Device<Core>,
///         _info: &Self::IdInfo,
///     ) -> Result<impl PinInit<Self, Error>> {
///         pdev.enable_device_mem()?;
///         let (vendor, device) = (pdev.vendor_id(), pdev.device_id());
///         dev_info!(pdev.as_ref(), "probed {vendor:04x}:{device:04x}\n");
///         Ok(MyDriver)
///     }
/// }
/// ```
///
/// A module whose only job is to register the driver declares itself with
/// [`module_pci_driver!`](crate::module_pci_driver).
pub trait Driver: Send + 'static {
    /// The driver's information for each ID of its table.
    type IdInfo: 'static;

    /// The IDs the driver binds to.
    const ID_TABLE: IdTable<Self::IdInfo>;

    /// Binds the driver to `dev`: returns an initialiser of the driver's data for the device.
    ///
    /// `id_info` is the information of the ID that matched, from the table or from a dynamic ID
    /// (`new_id` in sysfs, whose driver data picks an ID of the table; 0, the first, by
    /// default). The data lives until the driver is unbound from the device; it is dropped on
    /// the thread that unbinds it.
    fn probe(
        dev: &Device<device::Core>,
        id_info: &Self::IdInfo,
    ) -> Result<impl PinInit<Self, Error>>;

    /// Called when the driver is unbound from `dev`, before its data is dropped.
    fn unbind(dev: &Device<device::Core>, this: Pin<&Self>) {
        let _ = (dev, this);
    }
}

/// The PCI bus adapter for driver `T`: registers `T` and calls it back.
pub struct Adapter<T: Driver>(PhantomData<T>);

// SAFETY: `unregister` calls `pci_unregister_driver`, which undoes `__pci_register_driver`.
unsafe impl<T: Driver> driver::RegistrationOps for Adapter<T> {
    type RegType = bindings::pci_driver;

    unsafe fn register(
        pdrv: &Opaque<Self::RegType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        let pdrv = pdrv.get();
        // SAFETY: By the safety requirements, `pdrv` is valid, pinned and not registered yet, so
        // nothing else accesses it.
        unsafe {
            (*pdrv).name = name.as_char_ptr();
            (*pdrv).probe = Some(Self::probe_callback);
            (*pdrv).remove = Some(Self::remove_callback);
            (*pdrv).id_table = T::ID_TABLE.as_ptr();
        }
        // SAFETY: `pdrv` is fully set up and stays valid and pinned until unregistered; the ID
        // table and the name are `'static`.
        to_result(unsafe {
            bindings::__pci_register_driver(pdrv, module.as_ptr(), name.as_char_ptr())
        })
    }

    unsafe fn unregister(pdrv: &Opaque<Self::RegType>) {
        // SAFETY: By the safety requirements, `pdrv` was registered successfully.
        unsafe { bindings::pci_unregister_driver(pdrv.get()) };
    }
}

impl<T: Driver> Adapter<T> {
    extern "C" fn probe_callback(
        pdev: *mut bindings::pci_dev,
        id: *const bindings::pci_device_id,
    ) -> c_int {
        // SAFETY: The PCI core calls probe with a valid device and the device lock held, and the
        // device stays bound for the callback: the `CoreInternal` context, which stays with the
        // adapter (the driver gets the `Core` deref).
        let pdev = unsafe { &*pdev.cast::<Device<device::CoreInternal>>() };
        // SAFETY: The PCI core passes the ID that matched, valid for the callback.
        let id = unsafe { &*id };
        let result = Self::id_info(pdev, id)
            .and_then(|info| T::probe(pdev, info))
            .and_then(|data| pdev.as_ref().set_drvdata(data));
        match result {
            Ok(()) => 0,
            Err(err) => err.to_errno(),
        }
    }

    extern "C" fn remove_callback(pdev: *mut bindings::pci_dev) {
        // SAFETY: As in `probe_callback`: remove runs in the `CoreInternal` context.
        let pdev = unsafe { &*pdev.cast::<Device<device::CoreInternal>>() };
        // SAFETY: Remove only runs after a successful probe, which stored a `T`; it is taken back
        // only below, after the borrow ends.
        let data = unsafe { pdev.as_ref().drvdata_borrow::<T>() };
        T::unbind(pdev, data);
        // SAFETY: As above, and this is the only take, once per probe.
        drop(unsafe { pdev.as_ref().drvdata_obtain::<T>() });
    }

    /// The driver information of `id`, the ID the PCI core matched.
    ///
    /// `id` is an entry of `T`'s table or a dynamic ID, and either way its driver data is the
    /// index of an ID of the table. The exception: a device bound through `driver_override`
    /// that no ID matches gets the PCI core's wildcard ID (every field any, driver data 0);
    /// since there is no matched entry to give, the probe fails with `ENODEV` then. A dynamic ID
    /// that looks the same (`new_id` of `ffffffff ffffffff`) is told apart by the device having
    /// no `driver_override`: its driver data names entry 0.
    fn id_info(
        pdev: &Device<device::CoreInternal>,
        id: &bindings::pci_device_id,
    ) -> Result<&'static T::IdInfo> {
        let table = T::ID_TABLE;
        let wildcard = [id.vendor, id.device, id.subvendor, id.subdevice] == [PCI_ANY_ID; 4]
            && id.class_mask == 0
            && id.driver_data == 0;
        // SAFETY: `pdev` is a valid device.
        let overridden = unsafe { bindings::device_has_driver_override(pdev.as_ref().as_raw()) };
        // SAFETY: The table is a valid zero-terminated array of IDs and `pdev` a valid device.
        let in_table = !unsafe { bindings::pci_match_id(table.as_ptr(), pdev.as_raw()) }.is_null();
        if wildcard && overridden && !in_table {
            dev_err!(
                pdev.as_ref(),
                "bound through driver_override, but no ID of the driver's table matches\n"
            );
            return Err(ENODEV);
        }
        let index = DeviceId::index(id);
        if index >= table.len() {
            // Not reachable: the table and `new_id_store()` only give indices of the table.
            return Err(EINVAL);
        }
        Ok(table.info(index))
    }
}

/// Declares a kernel module that registers one PCI driver.
///
/// # Examples
///
/// Not compiled here, as a crate declares one module at most; `samples/rust/rust_driver_pci.rs`
/// uses it.
///
/// ```ignore
/// kernel::module_pci_driver! {
///     type: MyDriver,
///     name: "my_driver",
///     author: "A. Developer",
///     description: "An example PCI driver",
///     license: "GPL v2",
/// }
/// ```
#[macro_export]
macro_rules! module_pci_driver {
    ($($f:tt)*) => {
        $crate::module_driver!(<T>, $crate::pci::Adapter<T>, { $($f)* });
    };
}

/// A PCI device, as `struct pci_dev`, in context `Ctx` (see
/// [`DeviceContext`](device::DeviceContext)).
///
/// # Invariants
///
/// The wrapped `struct pci_dev` is valid, and in the state `Ctx` describes for as long as a
/// reference to this exists.
#[repr(transparent)]
pub struct Device<Ctx: device::DeviceContext = device::Normal>(
    Opaque<bindings::pci_dev>,
    PhantomData<Ctx>,
);

/// The number of resources of a PCI device (C's `PCI_NUM_RESOURCES`): the six BARs, the
/// expansion ROM and the bridge windows.
const NUM_RESOURCES: u32 = bindings::PCI_NUM_RESOURCES;

impl<Ctx: device::DeviceContext> Device<Ctx> {
    fn as_raw(&self) -> *mut bindings::pci_dev {
        self.0.get()
    }

    /// The vendor ID.
    pub fn vendor_id(&self) -> u16 {
        // SAFETY: By the type invariant the device is valid; the ID does not change.
        unsafe { (*self.as_raw()).vendor }
    }

    /// The device ID.
    pub fn device_id(&self) -> u16 {
        // SAFETY: As in `vendor_id`.
        unsafe { (*self.as_raw()).device }
    }

    /// The subsystem vendor ID.
    pub fn subsystem_vendor_id(&self) -> u16 {
        // SAFETY: As in `vendor_id`.
        unsafe { (*self.as_raw()).subsystem_vendor }
    }

    /// The subsystem device ID.
    pub fn subsystem_device_id(&self) -> u16 {
        // SAFETY: As in `vendor_id`.
        unsafe { (*self.as_raw()).subsystem_device }
    }

    /// The revision ID.
    pub fn revision_id(&self) -> u8 {
        // SAFETY: As in `vendor_id`.
        unsafe { (*self.as_raw()).revision }
    }

    /// The class code: class, subclass and programming interface, 24 bits (e.g. `0x030000` for
    /// a VGA controller).
    pub fn class(&self) -> u32 {
        // SAFETY: As in `vendor_id`.
        unsafe { (*self.as_raw()).class }
    }

    /// Checks that `bar` names a resource of the device.
    fn check_resource(bar: u32) -> Result {
        if bar >= NUM_RESOURCES {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// The first address of resource `bar` (C's `pci_resource_start()`).
    ///
    /// # Errors
    ///
    /// `EINVAL` if there is no resource `bar`.
    pub fn resource_start(&self, bar: u32) -> Result<ResourceSize> {
        Self::check_resource(bar)?;
        // SAFETY: The device is valid and `bar` in bounds (checked above).
        Ok(unsafe { bindings::pci_resource_start(self.as_raw(), bar as c_int) })
    }

    /// The length of resource `bar` in bytes, 0 if the BAR is not implemented (C's
    /// `pci_resource_len()`).
    ///
    /// # Errors
    ///
    /// `EINVAL` if there is no resource `bar`.
    pub fn resource_len(&self, bar: u32) -> Result<ResourceSize> {
        Self::check_resource(bar)?;
        // SAFETY: The device is valid and `bar` in bounds (checked above).
        Ok(unsafe { bindings::pci_resource_len(self.as_raw(), bar as c_int) })
    }

    /// The flags of resource `bar` (C's `pci_resource_flags()`): memory or I/O ports, 64-bit,
    /// prefetchable.
    ///
    /// # Errors
    ///
    /// `EINVAL` if there is no resource `bar`.
    pub fn resource_flags(&self, bar: u32) -> Result<Flags> {
        Self::check_resource(bar)?;
        // SAFETY: The device is valid and `bar` in bounds (checked above). The C helper reads the
        // field, as C drivers do: the PCI core changes it only when it reassigns an unbound
        // device's resources.
        let flags = unsafe { bindings::pci_resource_flags(self.as_raw(), bar as c_int) };
        Ok(Flags::from_raw(flags))
    }
}

impl Device<device::Bound> {
    /// Resource `bar` of the device (a BAR is 0 to 5), while the device is bound (the PCI core
    /// may reassign the resources of an unbound device).
    ///
    /// # Errors
    ///
    /// `EINVAL` if there is no resource `bar` (`PCI_NUM_RESOURCES` or more).
    pub fn resource(&self, bar: u32) -> Result<&Resource> {
        Self::check_resource(bar)?;
        // SAFETY: `bar` is in bounds of the device's resources, which live as long as the device.
        // That they do not change while a driver is bound (`Bound`, for the lifetime of `self`)
        // is an assumption about the PCI core's policy, not enforced here: the core reassigns
        // only unbound devices' resources; a resizable BAR or a rescan of unassigned BARs,
        // which change a bound device's resources, are not used by this series.
        Ok(unsafe {
            Resource::from_raw(ptr::addr_of_mut!((*self.as_raw()).resource[bar as usize]))
        })
    }
}

impl Device<device::Core> {
    /// Enables the device's memory space decoding (C's `pci_enable_device_mem()`), until the
    /// driver unbinds (then `pci_disable_device()`).
    ///
    /// # Errors
    ///
    /// The error of `pci_enable_device_mem()`, or `ENOMEM` if the disable at unbind cannot be
    /// arranged (the device is disabled again then).
    pub fn enable_device_mem(&self) -> Result {
        // SAFETY: The device is valid and its lock held (`Core`).
        to_result(unsafe { bindings::pci_enable_device_mem(self.as_raw()) })?;
        // SAFETY: The device is valid; the action disables it at unbind, once for this enable.
        let ret = unsafe {
            bindings::__devm_add_action(
                self.as_ref().as_raw(),
                Some(disable_device),
                self.as_raw().cast(),
                crate::c_str!("pci_disable_device").as_char_ptr(),
            )
        };
        if ret != 0 {
            // SAFETY: Enabled above, and the action was not registered.
            unsafe { bindings::pci_disable_device(self.as_raw()) };
        }
        to_result(ret)
    }

    /// Enables bus mastering (DMA and MSI) for the device (C's `pci_set_master()`); disabling
    /// the device at unbind clears it.
    pub fn set_master(&self) {
        // SAFETY: The device is valid and its lock held (`Core`).
        unsafe { bindings::pci_set_master(self.as_raw()) };
    }
}

/// The devres action of [`Device::enable_device_mem`].
///
/// # Safety
///
/// `pdev` must be a PCI device enabled once for this action.
unsafe extern "C" fn disable_device(pdev: *mut c_void) {
    // SAFETY: By the safety requirements.
    unsafe { bindings::pci_disable_device(pdev.cast()) };
}

impl<Ctx: device::DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: By the type invariant, `self.as_raw()` is a valid PCI device, so its embedded
        // `dev` is a valid device in the same state.
        unsafe { device::Device::from_raw(ptr::addr_of_mut!((*self.as_raw()).dev)) }
    }
}

// SAFETY: `Device` is `repr(transparent)` over the same field for every context, and a
// `&Device<Ctx>` is only handed out in the state `Ctx` describes (type invariant).
crate::impl_device_context_deref!(unsafe { Device });
crate::impl_device_context_into_aref!(Device);

// SAFETY: PCI devices are reference counted through their embedded `struct device`.
unsafe impl AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: A shared reference means the reference count is not zero.
        unsafe { bindings::get_device(ptr::addr_of_mut!((*self.as_raw()).dev)) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The safety requirements guarantee that the reference count is not zero.
        unsafe {
            bindings::put_device(ptr::addr_of_mut!(
                (*obj.cast::<bindings::pci_dev>().as_ptr()).dev
            ))
        }
    }
}

// SAFETY: A PCI device may be used and released from any thread, like `device::Device`.
unsafe impl Send for Device {}

// SAFETY: Shared access only uses the device's own synchronisation, like `device::Device`.
unsafe impl Sync for Device {}

// SAFETY: Like `device::Device<Bound>`: the device stays bound for any thread while the reference
// lives.
unsafe impl Sync for Device<device::Bound> {}
