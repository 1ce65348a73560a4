// SPDX-License-Identifier: GPL-2.0

//! Rust DRM driver sample.
//!
//! A DRM driver with a render node and ioctls of its own, for a made-up device: the platform
//! device `rust-drm-sample`, which test scaffolding registers
//! (`CONFIG_SAMPLE_RUST_DRIVER_DRM_DEVICE`, `rust_driver_drm_device.c`). Each bound device gets
//! a DRM device named `rust_drm`, registered at the end of probe and unplugged first thing in
//! unbind; ioctls on files still open then fail with `ENODEV`.
//!
//! Its interface, defined here rather than in a uapi header as it is only a sample (request
//! numbers are `DRM_IOWR(DRM_COMMAND_BASE + n, struct)`, every structure 16 bytes):
//!
//! - n = 0, GETPARAM `{ u64 param; u64 value; }`: `value` of `param` 1 (the kernel's page size)
//!   or 2 (the GEM objects of the device alive now); primary node only;
//! - n = 1, GEM_CREATE `{ u32 handle; u32 pad; u64 size; }`: a GEM object of at least `size`
//!   bytes, rounded up to the page size; returns its handle and size;
//! - n = 2, GEM_INFO `{ u32 handle; u32 pad; u64 size; }`: the size of the object `handle`;
//! - n = 3, DEBUG_SLEEP_ENTERED, and n = 4, DEBUG_SLEEP, `{ u64 ms; u64 unplugged; }`: with
//!   `CONFIG_SAMPLE_RUST_DRIVER_DRM_DEBUG` only (`ENOTTY` without), sleep `ms` milliseconds (at
//!   most 10000; a signal ends the sleep early) with the device entered, or not, and set
//!   `unplugged` to 1 if the device's unplug had begun by then (it refuses new entries from
//!   its start, while it waits for the entered sections). Tests use them to show what an
//!   entered handler that waits costs every unplug, and that one not entered costs none.
//!
//! `pad` and `unplugged` must be 0 (`EINVAL`), a size 0 is `EINVAL`, an unknown handle
//! `ENOENT`. Handles are closed with DRM's own `DRM_IOCTL_GEM_CLOSE`.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    bindings, c_str,
    device::Core,
    drm::{self, gem, ioctl},
    platform,
    prelude::*,
    types::{ARef, AsBytes, FromBytes},
};

/// The sample's ioctl arguments, as userspace lays them out.
mod uapi {
    use super::{ioctl, AsBytes, FromBytes};

    /// GETPARAM: the kernel's page size.
    pub(crate) const PARAM_PAGE_SIZE: u64 = 1;
    /// GETPARAM: the number of the device's GEM objects alive now.
    pub(crate) const PARAM_OBJECT_COUNT: u64 = 2;

    /// GETPARAM's argument.
    #[repr(C)]
    pub(crate) struct GetParam {
        pub(crate) param: u64,
        pub(crate) value: u64,
    }

    /// DEBUG_SLEEP's and DEBUG_SLEEP_ENTERED's argument.
    #[repr(C)]
    pub(crate) struct Sleep {
        pub(crate) ms: u64,
        pub(crate) unplugged: u64,
    }

    /// GEM_CREATE's and GEM_INFO's argument.
    #[repr(C)]
    pub(crate) struct GemObject {
        pub(crate) handle: u32,
        pub(crate) pad: u32,
        pub(crate) size: u64,
    }

    // SAFETY: Both are integers without padding: any bytes are a valid value and every byte
    // is initialised.
    unsafe impl FromBytes for GetParam {}
    // SAFETY: As above.
    unsafe impl AsBytes for GetParam {}
    // SAFETY: As above.
    unsafe impl FromBytes for GemObject {}
    // SAFETY: As above.
    unsafe impl AsBytes for GemObject {}
    // SAFETY: As above.
    unsafe impl FromBytes for Sleep {}
    // SAFETY: As above.
    unsafe impl AsBytes for Sleep {}

    pub(crate) const GETPARAM: u32 = ioctl::IOWR::<GetParam>(ioctl::COMMAND_BASE);
    pub(crate) const GEM_CREATE: u32 = ioctl::IOWR::<GemObject>(ioctl::COMMAND_BASE + 1);
    pub(crate) const GEM_INFO: u32 = ioctl::IOWR::<GemObject>(ioctl::COMMAND_BASE + 2);
    pub(crate) const DEBUG_SLEEP_ENTERED: u32 = ioctl::IOWR::<Sleep>(ioctl::COMMAND_BASE + 3);
    pub(crate) const DEBUG_SLEEP: u32 = ioctl::IOWR::<Sleep>(ioctl::COMMAND_BASE + 4);
}

/// The sample's DRM driver.
struct RustDrm;

/// The sample's data of each DRM device.
struct DeviceData {
    /// The device's GEM objects alive now.
    objects: AtomicU64,
}

impl Drop for DeviceData {
    fn drop(&mut self) {
        // After unplug and the last close: the tests check when this comes.
        pr_info!("DRM device released\n");
    }
}

/// The sample's data of each open file (none needed).
struct FileData;

impl drm::DriverFile for FileData {
    type Driver = RustDrm;

    fn open(_dev: &drm::Device<RustDrm>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::pin(FileData, GFP_KERNEL)?)
    }
}

/// The sample's data of each GEM object: the device, whose object count it keeps.
struct ObjectData {
    dev: ARef<drm::Device<RustDrm>>,
}

impl ObjectData {
    fn new(dev: &drm::Device<RustDrm>) -> Self {
        dev.objects.fetch_add(1, Ordering::Relaxed);
        ObjectData { dev: dev.into() }
    }
}

impl Drop for ObjectData {
    fn drop(&mut self) {
        self.dev.objects.fetch_sub(1, Ordering::Relaxed);
    }
}

impl gem::DriverObject for ObjectData {
    type Driver = RustDrm;
}

type Object = gem::Object<ObjectData>;

impl drm::Driver for RustDrm {
    type Data = DeviceData;
    type File = FileData;
    type Object = ObjectData;

    const INFO: drm::DriverInfo = drm::DriverInfo {
        major: 1,
        minor: 0,
        patchlevel: 0,
        name: c_str!("rust_drm"),
        desc: c_str!("Rust DRM sample driver"),
    };

    const FEATURES: u32 = drm::driver::FEAT_RENDER;

    kernel::declare_drm_ioctls! { RustDrm;
        (uapi::GETPARAM, uapi::GetParam, ioctl::flags::NONE, getparam),
        (uapi::GEM_CREATE, uapi::GemObject, ioctl::flags::AUTH | ioctl::flags::RENDER_ALLOW,
         gem_create),
        (uapi::GEM_INFO, uapi::GemObject, ioctl::flags::AUTH | ioctl::flags::RENDER_ALLOW,
         gem_info),
        (uapi::DEBUG_SLEEP_ENTERED, uapi::Sleep, ioctl::flags::RENDER_ALLOW, debug_sleep_entered),
        (uapi::DEBUG_SLEEP, uapi::Sleep, ioctl::flags::RENDER_ALLOW, debug_sleep),
    }
}

kernel::declare_drm_driver!(RustDrm);

// The handlers run entered (their first parameter): they use nothing that the unplug tears
// down, but they show the form a handler that touches the hardware takes.

fn getparam(
    dev: &drm::Entered<'_, RustDrm>,
    arg: &mut uapi::GetParam,
    _file: &drm::File<FileData>,
) -> Result<u32> {
    arg.value = match arg.param {
        uapi::PARAM_PAGE_SIZE => kernel::page::PAGE_SIZE as u64,
        uapi::PARAM_OBJECT_COUNT => dev.objects.load(Ordering::Relaxed),
        _ => return Err(EINVAL),
    };
    Ok(0)
}

fn gem_create(
    dev: &drm::Entered<'_, RustDrm>,
    arg: &mut uapi::GemObject,
    file: &drm::File<FileData>,
) -> Result<u32> {
    if arg.pad != 0 {
        return Err(EINVAL);
    }
    let size = usize::try_from(arg.size).map_err(|_| EINVAL)?;
    let obj = Object::new(dev, size, ObjectData::new(dev))?;
    arg.handle = obj.create_handle(file)?;
    arg.size = obj.size() as u64;
    Ok(0)
}

fn gem_info(
    _dev: &drm::Entered<'_, RustDrm>,
    arg: &mut uapi::GemObject,
    file: &drm::File<FileData>,
) -> Result<u32> {
    if arg.pad != 0 {
        return Err(EINVAL);
    }
    arg.size = Object::lookup_handle(file, arg.handle)?.size() as u64;
    Ok(0)
}

/// DEBUG_SLEEP_ENTERED: sleeps entered, which [`drm::Device::enter`] forbids (the unplug of
/// every DRM device waits for it): a test of that cost, never a pattern for a driver.
fn debug_sleep_entered(
    dev: &drm::Entered<'_, RustDrm>,
    arg: &mut uapi::Sleep,
    _file: &drm::File<FileData>,
) -> Result<u32> {
    debug_sleep_as(dev, arg, "entered")
}

/// DEBUG_SLEEP: sleeps without entering, as a handler that waits for a time userspace controls
/// must.
fn debug_sleep(
    dev: &drm::Device<RustDrm>,
    arg: &mut uapi::Sleep,
    _file: &drm::File<FileData>,
) -> Result<u32> {
    debug_sleep_as(dev, arg, "not entered")
}

fn debug_sleep_as(dev: &drm::Device<RustDrm>, arg: &mut uapi::Sleep, how: &str) -> Result<u32> {
    if !cfg!(CONFIG_SAMPLE_RUST_DRIVER_DRM_DEBUG) {
        return Err(ENOTTY);
    }
    let ms = u32::try_from(arg.ms).map_err(|_| EINVAL)?;
    if ms > 10_000 || arg.unplugged != 0 {
        return Err(EINVAL);
    }
    pr_info!("debug: sleeping {ms} ms, {how}\n");
    // SAFETY: `msleep_interruptible()` has no preconditions; an ioctl handler may sleep.
    unsafe { bindings::msleep_interruptible(ms) };
    arg.unplugged = u64::from(dev.enter().is_none());
    pr_info!("debug: slept, {how}\n");
    Ok(0)
}

kernel::platform_device_table!(
    PLATFORM_TABLE,
    MODULE_PLATFORM_TABLE,
    <SampleDriver as platform::Driver>::IdInfo,
    [(platform::DeviceId::new(c_str!("rust-drm-sample")), ())]
);

/// The platform driver: creates and registers a DRM device for each bound device.
struct SampleDriver {
    drm: ARef<drm::Device<RustDrm>>,
}

impl platform::Driver for SampleDriver {
    type IdInfo = ();
    const ID_TABLE: platform::IdTable<Self::IdInfo> = &PLATFORM_TABLE;

    fn probe(
        pdev: &platform::Device<Core>,
        _info: Option<&Self::IdInfo>,
    ) -> Result<impl PinInit<Self, Error>> {
        let dev = pdev.as_ref();
        let data = DeviceData {
            objects: AtomicU64::new(0),
        };
        let drm = drm::Device::<RustDrm>::new(dev, data)?;
        // The last step: userspace may use the device from here on. The registration holds
        // its own reference, and unplugs the device when this one unbinds.
        drm::Registration::new_foreign_owned(&drm, dev, 0)?;
        dev_info!(dev, "DRM device registered\n");
        Ok(SampleDriver { drm })
    }

    fn unbind(pdev: &platform::Device<Core>, this: Pin<&Self>) {
        // First: no ioctl reaches the driver once this returns, so what it tears down next
        // (nothing, in this sample) is no longer in use.
        if let Err(e) = this.drm.unplug(pdev.as_ref()) {
            dev_err!(pdev.as_ref(), "unplug: {e:?}\n");
        }
        dev_info!(pdev.as_ref(), "unbind\n");
    }
}

impl Drop for SampleDriver {
    fn drop(&mut self) {
        // After `unbind()`: the tests check that the DRM device is unplugged by now.
        if self.drm.enter().is_none() {
            pr_info!("driver data dropped, DRM device unplugged\n");
        } else {
            pr_warn!("driver data dropped, DRM device still plugged\n");
        }
    }
}

kernel::module_platform_driver! {
    type: SampleDriver,
    name: "rust_driver_drm",
    author: "Nova Developers",
    description: "Rust DRM driver sample",
    license: "GPL v2",
}
