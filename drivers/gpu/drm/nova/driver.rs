// SPDX-License-Identifier: GPL-2.0

//! The driver: the PCI driver (which devices Nova binds, and its probe), and the DRM driver
//! whose device the probe registers for each GPU.

use crate::{file::File, firmware, gem::NovaObject, gpu::Spec, regs::BAR0_SIZE, uapi};
use core::fmt;
use kernel::{
    bindings, c_str,
    device::Core,
    devres::Devres,
    drm::{self, ioctl},
    pci,
    pci::Bar,
    prelude::*,
    types::ARef,
};

/// The name BAR0 is claimed under.
const NAME: &CStr = c_str!("nova");

/// Matches the class code's class and subclass, any programming interface.
const CLASS_MASK: u32 = 0xffff00;

kernel::pci_device_table!(
    PCI_TABLE,
    MODULE_PCI_TABLE,
    <NovaDriver as pci::Driver>::IdInfo,
    [
        // NVIDIA's display controllers only: the audio, USB and bridge functions of the same
        // boards are not GPUs.
        (
            pci::DeviceId::from_vendor_class(
                bindings::PCI_VENDOR_ID_NVIDIA,
                bindings::PCI_CLASS_DISPLAY_VGA << 8,
                CLASS_MASK
            ),
            ()
        ),
        (
            pci::DeviceId::from_vendor_class(
                bindings::PCI_VENDOR_ID_NVIDIA,
                bindings::PCI_CLASS_DISPLAY_3D << 8,
                CLASS_MASK
            ),
            ()
        ),
    ]
);

/// A size in bytes, printed in GiB or MiB when it is a whole number of them.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1 << 20;
        const GIB: u64 = 1 << 30;
        match self.0 {
            0 => write!(f, "0 bytes"),
            n if n % GIB == 0 => write!(f, "{} GiB", n / GIB),
            n if n % MIB == 0 => write!(f, "{} MiB", n / MIB),
            n => write!(f, "{n} bytes"),
        }
    }
}

/// Nova's data for a bound GPU.
pub(crate) struct NovaDriver {
    /// The DRM device, unplugged first thing in `unbind()`.
    drm: ARef<drm::Device<NovaDrm>>,
    /// The register space, for as long as the GPU is bound.
    _bar: Devres<Bar<BAR0_SIZE>>,
}

impl pci::Driver for NovaDriver {
    type IdInfo = ();
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe(pdev: &pci::Device<Core>, _info: &Self::IdInfo) -> Result<impl PinInit<Self, Error>> {
        let dev = pdev.as_ref();
        pdev.enable_device_mem()?;
        let bar = pdev.iomap_region_sized::<BAR0_SIZE>(0, NAME)?;
        let spec = Spec::identify(bar.access(dev)?).map_err(|refusal| {
            refusal.report(dev);
            ENODEV
        })?;
        // Checked and let go: the stub does not boot the GSP yet.
        firmware::check(dev, spec.chipset)?;
        let bar1_size = pdev.resource_len(1)?;
        let drm = drm::Device::<NovaDrm>::new(dev, NovaData { bar1_size })?;
        // The last step: userspace may use the device from here on. The registration holds its
        // own reference, and unplugs the DRM device when the GPU unbinds.
        drm::Registration::new_foreign_owned(&drm, dev, 0)?;
        dev_info!(
            dev,
            "NVIDIA {} ({}), revision {}, BAR1 {}: DRM device registered\n",
            spec.chipset.name(),
            spec.chipset.architecture().name(),
            spec.revision,
            Size(bar1_size)
        );
        Ok(NovaDriver { drm, _bar: bar })
    }

    fn unbind(pdev: &pci::Device<Core>, this: Pin<&Self>) {
        // First, so that no ioctl runs while the BAR goes.
        if let Err(e) = this.drm.unplug(pdev.as_ref()) {
            dev_err!(pdev.as_ref(), "unplug: {e:?}\n");
        }
        dev_info!(pdev.as_ref(), "unbind\n");
    }
}

/// Nova's DRM driver.
pub(crate) struct NovaDrm;

/// Nova's data of each DRM device: what userspace can ask about its GPU.
pub(crate) struct NovaData {
    /// The length of BAR1, the VRAM aperture.
    pub(crate) bar1_size: u64,
}

impl Drop for NovaData {
    fn drop(&mut self) {
        // After the GPU unbound and the last file closed: the tests check when this comes.
        pr_info!("DRM device released\n");
    }
}

impl drm::Driver for NovaDrm {
    type Data = NovaData;
    type File = File;
    type Object = NovaObject;

    const INFO: drm::DriverInfo = drm::DriverInfo {
        major: 0,
        minor: 0,
        patchlevel: 0,
        name: c_str!("nova"),
        desc: c_str!("NVIDIA GPUs with a GSP (stub)"),
    };

    const FEATURES: u32 = drm::driver::FEAT_RENDER;

    kernel::declare_drm_ioctls! { NovaDrm;
        (uapi::GETPARAM, uapi::GetParam, ioctl::flags::RENDER_ALLOW, File::getparam),
        (uapi::GEM_CREATE, uapi::GemCreate, ioctl::flags::AUTH | ioctl::flags::RENDER_ALLOW,
         NovaObject::create),
        (uapi::GEM_INFO, uapi::GemInfo, ioctl::flags::AUTH | ioctl::flags::RENDER_ALLOW,
         NovaObject::info),
    }
}

kernel::declare_drm_driver!(NovaDrm);
