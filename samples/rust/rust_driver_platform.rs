// SPDX-License-Identifier: GPL-2.0

//! Rust platform driver sample.
//!
//! A platform driver for two kinds of (made-up) devices, told apart by name: `rust-sample-a`
//! and `rust-sample-b`. Its ID table gives each name its own information, which probe receives.
//! Each bound device gets the driver's data and a device-managed resource, which the driver
//! core drops when the device unbinds.
//!
//! Nothing in firmware describes these devices: the driver core's Rust test module
//! (`CONFIG_RUST_DRIVER_CORE_TEST`) registers one of each, so that this driver has something to
//! bind to.

use kernel::{c_str, device::Core, devres::Devres, platform, prelude::*};

/// What the driver knows about each kind of device it supports.
#[derive(Debug)]
struct Info {
    /// The number of channels the device has (made up for the sample).
    channels: u32,
}

kernel::platform_device_table!(
    PLATFORM_TABLE,
    MODULE_PLATFORM_TABLE,
    <SampleDriver as platform::Driver>::IdInfo,
    [
        (
            platform::DeviceId::new(c_str!("rust-sample-a")),
            Info { channels: 1 }
        ),
        (
            platform::DeviceId::new(c_str!("rust-sample-b")),
            Info { channels: 4 }
        ),
    ]
);

/// A resource that must not outlive the binding, such as a mapping of the device's registers.
struct Channels(u32);

impl Drop for Channels {
    fn drop(&mut self) {
        pr_info!("releasing {} channels\n", self.0);
    }
}

/// The driver's data for one bound device.
struct SampleDriver {
    channels: Devres<Channels>,
}

impl platform::Driver for SampleDriver {
    type IdInfo = Info;
    const ID_TABLE: platform::IdTable<Self::IdInfo> = &PLATFORM_TABLE;

    fn probe(
        pdev: &platform::Device<Core>,
        info: Option<&Self::IdInfo>,
    ) -> Result<impl PinInit<Self, Error>> {
        let dev = pdev.as_ref();
        // `None` if the device was bound through `driver_override`: no ID of ours matched.
        let info = info.ok_or(ENODEV)?;
        dev_info!(dev, "probe: {:?}\n", info);

        let channels = Devres::new(dev, Channels(info.channels))?;
        // The device is bound during probe: access needs no RCU read-side section.
        dev_info!(dev, "{} channels ready\n", channels.access(dev)?.0);
        Ok(SampleDriver { channels })
    }

    fn unbind(pdev: &platform::Device<Core>, this: Pin<&Self>) {
        if let Ok(channels) = this.channels.access(pdev.as_ref()) {
            dev_info!(pdev.as_ref(), "unbind: {} channels\n", channels.0);
        }
    }
}

kernel::module_platform_driver! {
    type: SampleDriver,
    name: "rust_driver_platform",
    author: "Nova Developers",
    description: "Rust platform driver sample",
    license: "GPL v2",
}
