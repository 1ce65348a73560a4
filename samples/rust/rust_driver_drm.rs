// SPDX-License-Identifier: GPL-2.0

//! Rust DRM driver sample.
//!
//! A DRM driver with a render node and three ioctls of its own, for a made-up device: the
//! platform device `rust-drm-sample`, which test scaffolding registers
//! (`CONFIG_SAMPLE_RUST_DRIVER_DRM_DEVICE`, `rust_driver_drm_device.c`). Each
//! bound device gets a DRM device named `rust_drm`, registered at the end of probe and
//! unplugged when the device unbinds; ioctls on files still open then fail with `ENODEV`.
//!
//! Its interface, defined here rather than in a uapi header as it is only a sample (request
//! numbers are `DRM_IOWR(DRM_COMMAND_BASE + n, struct)`, every structure 16 bytes):
//!
//! - n = 0, GETPARAM `{ u64 param; u64 value; }`: `value` of `param` 1 (the kernel's page size)
//!   or 2 (the GEM objects of the device alive now); primary node only;
//! - n = 1, GEM_CREATE `{ u32 handle; u32 pad; u64 size; }`: a GEM object of at least `size`
//!   bytes, rounded up to the page size; returns its handle and size;
//! - n = 2, GEM_INFO `{ u32 handle; u32 pad; u64 size; }`: the size of the object `handle`.
//!
//! `pad` must be 0 (`EINVAL`), a size 0 is `EINVAL`, an unknown handle `ENOENT`. Handles are
//! closed with DRM's own `DRM_IOCTL_GEM_CLOSE`.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    c_str,
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

    pub(crate) const GETPARAM: u32 = ioctl::IOWR::<GetParam>(ioctl::COMMAND_BASE);
    pub(crate) const GEM_CREATE: u32 = ioctl::IOWR::<GemObject>(ioctl::COMMAND_BASE + 1);
    pub(crate) const GEM_INFO: u32 = ioctl::IOWR::<GemObject>(ioctl::COMMAND_BASE + 2);
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
    }
}

kernel::declare_drm_driver!(RustDrm);

fn getparam(
    dev: &drm::Device<RustDrm>,
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
    dev: &drm::Device<RustDrm>,
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
    _dev: &drm::Device<RustDrm>,
    arg: &mut uapi::GemObject,
    file: &drm::File<FileData>,
) -> Result<u32> {
    if arg.pad != 0 {
        return Err(EINVAL);
    }
    arg.size = Object::lookup_handle(file, arg.handle)?.size() as u64;
    Ok(0)
}

kernel::platform_device_table!(
    PLATFORM_TABLE,
    MODULE_PLATFORM_TABLE,
    <SampleDriver as platform::Driver>::IdInfo,
    [(platform::DeviceId::new(c_str!("rust-drm-sample")), ())]
);

/// The platform driver: creates and registers a DRM device for each bound device.
struct SampleDriver;

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
        Ok(SampleDriver)
    }

    fn unbind(pdev: &platform::Device<Core>, _this: Pin<&Self>) {
        dev_info!(pdev.as_ref(), "unbind\n");
    }
}

kernel::module_platform_driver! {
    type: SampleDriver,
    name: "rust_driver_drm",
    author: "Nova Developers",
    description: "Rust DRM driver sample",
    license: "GPL v2",
}
