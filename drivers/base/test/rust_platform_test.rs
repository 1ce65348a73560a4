// SPDX-License-Identifier: GPL-2.0

//! A platform driver that reports its life in the kernel log, for tests of the Rust driver core.
//!
//! The module registers a platform device of its own (`rust_platform_test`) and a driver of the
//! same name that binds to it. Each binding keeps per-device data and a device-managed resource;
//! the module also keeps the latest binding's resource elsewhere, to check that unbinding revokes
//! it even so. It reports every step in the kernel log, for tests that unbind and bind it through
//! sysfs:
//!
//! - `probe #N` and `unbind #N` for binding N (counted from 1 since the module was loaded);
//! - `resource #N dropped` when binding N's resource is dropped;
//! - at probe N + 1, `resource of binding #N revoked` (or `still accessible`, a bug) after trying
//!   to access binding N's resource through the reference kept outside the driver data, both
//!   without proof of a binding (`try_access`) and with the new binding's (`access`).
//!
//! The module also registers the devices that the platform driver sample binds to,
//! `rust-sample-a` and `rust-sample-b`.

use core::{
    ptr,
    sync::atomic::{AtomicPtr, AtomicU32, Ordering},
};
use kernel::{
    bindings, c_str, device::Core, devres::Devres, driver, error::from_err_ptr, platform,
    prelude::*, sync::Arc,
};

/// The driver's name.
const NAME: &CStr = c_str!("rust_platform_test");
/// The name of the device the module registers for its driver (platform device names fit in 20
/// bytes).
const DEVICE_NAME: &CStr = c_str!("rust_platform_test");
/// The devices the module registers for the platform driver sample.
const SAMPLE_DEVICE_NAMES: [&CStr; 2] = [c_str!("rust-sample-a"), c_str!("rust-sample-b")];

/// A platform device registered by this module, unregistered when dropped.
///
/// Platform devices are for hardware that firmware describes; only tests and this module's
/// made-up devices register their own, so this stays out of the `platform` abstractions.
///
/// # Invariants
///
/// `self.0` was registered by [`TestDevice::new`] and is not unregistered yet.
struct TestDevice(*mut bindings::platform_device);

impl TestDevice {
    /// Registers a platform device named `name` with no resources and no parent.
    fn new(name: &'static CStr) -> Result<Self> {
        let info = bindings::platform_device_info {
            name: name.as_char_ptr(),
            id: bindings::PLATFORM_DEVID_NONE,
            ..Default::default()
        };
        // SAFETY: `info` is valid for the call; the name is `'static`.
        let pdev = from_err_ptr(unsafe { bindings::platform_device_register_full(&info) })?;
        // INVARIANT: The device was just registered.
        Ok(Self(pdev))
    }
}

impl Drop for TestDevice {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, the device is registered; this is the only unregister.
        unsafe { bindings::platform_device_unregister(self.0) };
    }
}

// SAFETY: A platform device may be unregistered from any thread.
unsafe impl Send for TestDevice {}

// SAFETY: `TestDevice` has no methods that take `&self`.
unsafe impl Sync for TestDevice {}

/// A resource that belongs to one binding of the device.
struct TestResource {
    binding: u32,
}

impl Drop for TestResource {
    fn drop(&mut self) {
        pr_info!("resource #{} dropped\n", self.binding);
    }
}

/// The driver's data for one binding.
struct TestDriver {
    binding: u32,
    _resource: Arc<Devres<TestResource>>,
}

/// Bindings since the module was loaded.
static PROBES: AtomicU32 = AtomicU32::new(0);

/// The latest binding's resource, kept outside the driver data: from `Arc::into_raw`, or null.
static KEPT: AtomicPtr<Devres<TestResource>> = AtomicPtr::new(ptr::null_mut());

/// Replaces the kept resource with `new` (or nothing); returns the one kept before.
fn keep(new: Option<Arc<Devres<TestResource>>>) -> Option<Arc<Devres<TestResource>>> {
    let new = new.map_or(ptr::null_mut(), |a| Arc::into_raw(a).cast_mut());
    let old = KEPT.swap(new, Ordering::AcqRel);
    // SAFETY: A non-null `KEPT` comes from `Arc::into_raw` above, and the swap hands it to exactly
    // one caller.
    (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
}

kernel::platform_device_table!(
    PLATFORM_TABLE,
    MODULE_PLATFORM_TABLE,
    <TestDriver as platform::Driver>::IdInfo,
    [(platform::DeviceId::new(DEVICE_NAME), ())]
);

impl platform::Driver for TestDriver {
    type IdInfo = ();
    const ID_TABLE: platform::IdTable<Self::IdInfo> = &PLATFORM_TABLE;

    fn probe(
        pdev: &platform::Device<Core>,
        _info: Option<&Self::IdInfo>,
    ) -> Result<impl PinInit<Self, Error>> {
        let dev = pdev.as_ref();
        let binding = PROBES.fetch_add(1, Ordering::Relaxed) + 1;
        dev_info!(dev, "probe #{}\n", binding);

        if let Some(previous) = keep(None) {
            let revoked =
                previous.try_access().is_none() && previous.access(dev).err() == Some(ENXIO);
            let state = if revoked {
                "revoked"
            } else {
                "still accessible"
            };
            dev_info!(dev, "resource of binding #{} {}\n", binding - 1, state);
        }

        let resource = Devres::new(dev, TestResource { binding })?;
        let resource = Arc::new(resource, GFP_KERNEL)?;
        // The device is bound during probe, and the resource belongs to this binding.
        if resource.access(dev)?.binding != binding {
            return Err(EINVAL);
        }
        keep(Some(resource.clone()));
        Ok(TestDriver {
            binding,
            _resource: resource,
        })
    }

    fn unbind(pdev: &platform::Device<Core>, this: Pin<&Self>) {
        dev_info!(pdev.as_ref(), "unbind #{}\n", this.binding);
    }
}

struct TestModule {
    _sample_devices: [TestDevice; 2],
    // Dropped first: unregistering the device unbinds it while the driver is still registered.
    _pdev: TestDevice,
    _driver: Pin<KBox<driver::Registration<platform::Adapter<TestDriver>>>>,
}

impl kernel::Module for TestModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let driver = KBox::pin_init(driver::Registration::new(NAME, module), GFP_KERNEL)?;
        let pdev = TestDevice::new(DEVICE_NAME)?;
        let a = TestDevice::new(SAMPLE_DEVICE_NAMES[0])?;
        let b = TestDevice::new(SAMPLE_DEVICE_NAMES[1])?;
        Ok(TestModule {
            _sample_devices: [a, b],
            _pdev: pdev,
            _driver: driver,
        })
    }
}

impl Drop for TestModule {
    fn drop(&mut self) {
        // The device is still bound here; the kept reference must not outlive the module.
        drop(keep(None));
    }
}

module! {
    type: TestModule,
    name: "rust_platform_test",
    author: "Nova Developers",
    description: "A platform driver that reports its life, for tests of the Rust driver core",
    license: "GPL v2",
}
