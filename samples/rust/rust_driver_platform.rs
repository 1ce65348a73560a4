// SPDX-License-Identifier: GPL-2.0

//! Rust platform driver sample.
//!
//! The module registers a platform device of its own (`rust_sample_pdev`) and a driver
//! (`rust_driver_platform`) that binds to it, as vgem does.
//! Each binding keeps per-device data and a device-managed resource; the module also keeps the
//! latest binding's resource elsewhere, to show that unbinding revokes it even so. It reports
//! every step in the kernel log, for tests that unbind and bind it through sysfs:
//!
//! - `probe #N` and `unbind #N` for binding N (counted from 1 since the module was loaded);
//! - `resource #N dropped` when binding N's resource is dropped;
//! - at probe N + 1, `resource of binding #N revoked` (or `still accessible`, a bug) after trying
//!   to access binding N's resource through the reference kept outside the driver data.

use core::{
    ptr,
    sync::atomic::{AtomicPtr, AtomicU32, Ordering},
};
use kernel::{c_str, device::Core, devres::Devres, driver, platform, prelude::*, sync::Arc};

/// The driver's name.
const NAME: &CStr = c_str!("rust_driver_platform");
/// The name of the device the module registers (platform device names fit in 20 bytes).
const DEVICE_NAME: &CStr = c_str!("rust_sample_pdev");

/// A resource that belongs to one binding of the device.
struct SampleResource {
    binding: u32,
}

impl Drop for SampleResource {
    fn drop(&mut self) {
        pr_info!("resource #{} dropped\n", self.binding);
    }
}

/// The driver's data for one binding.
struct SampleDriver {
    binding: u32,
    _resource: Arc<Devres<SampleResource>>,
}

/// Bindings since the module was loaded.
static PROBES: AtomicU32 = AtomicU32::new(0);

/// The latest binding's resource, kept outside the driver data: from `Arc::into_raw`, or null.
static KEPT: AtomicPtr<Devres<SampleResource>> = AtomicPtr::new(ptr::null_mut());

/// Replaces the kept resource with `new` (or nothing); returns the one kept before.
fn keep(new: Option<Arc<Devres<SampleResource>>>) -> Option<Arc<Devres<SampleResource>>> {
    let new = new.map_or(ptr::null_mut(), |a| Arc::into_raw(a).cast_mut());
    let old = KEPT.swap(new, Ordering::AcqRel);
    // SAFETY: A non-null `KEPT` comes from `Arc::into_raw` above, and the swap hands it to exactly
    // one caller.
    (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
}

kernel::platform_device_table!(
    PLATFORM_TABLE,
    MODULE_PLATFORM_TABLE,
    <SampleDriver as platform::Driver>::IdInfo,
    [(platform::DeviceId::new(DEVICE_NAME), ())]
);

impl platform::Driver for SampleDriver {
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
            let state = if previous.try_access().is_none() {
                "revoked"
            } else {
                "still accessible"
            };
            dev_info!(dev, "resource of binding #{} {}\n", binding - 1, state);
        }

        let resource = Devres::new(dev, SampleResource { binding }, GFP_KERNEL)?;
        let resource = Arc::new(resource, GFP_KERNEL)?;
        // Without a runtime check, since the device is known to be bound here.
        let _ = resource.access(dev)?.binding;
        keep(Some(resource.clone()));
        Ok(SampleDriver {
            binding,
            _resource: resource,
        })
    }

    fn unbind(pdev: &platform::Device<Core>, this: Pin<&Self>) {
        dev_info!(pdev.as_ref(), "unbind #{}\n", this.binding);
    }
}

struct SampleModule {
    // Dropped first: unregistering the device unbinds it while the driver is still registered.
    _pdev: platform::RegisteredDevice,
    _driver: Pin<KBox<driver::Registration<platform::Adapter<SampleDriver>>>>,
}

impl kernel::Module for SampleModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let driver = KBox::pin_init(driver::Registration::new(NAME, module), GFP_KERNEL)?;
        let pdev = platform::RegisteredDevice::new(DEVICE_NAME)?;
        Ok(SampleModule {
            _pdev: pdev,
            _driver: driver,
        })
    }
}

impl Drop for SampleModule {
    fn drop(&mut self) {
        // The device is still bound here; the kept reference must not outlive the module.
        drop(keep(None));
    }
}

module! {
    type: SampleModule,
    name: "rust_driver_platform",
    author: "Nova Developers",
    description: "Rust platform driver sample",
    license: "GPL v2",
}
