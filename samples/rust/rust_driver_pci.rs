// SPDX-License-Identifier: GPL-2.0

//! Rust PCI driver sample.
//!
//! A PCI driver for two of QEMU's test devices, told apart by its ID table:
//!
//! - `pci-testdev` (1b36:0005): runs the device's data-match test through a BAR mapped with
//!   `Bar`;
//! - `edu` (1234:11e8): checks the ID and liveness registers, computes a factorial, and raises
//!   an interrupt through MSI, which a threaded handler acknowledges in its hard-interrupt half
//!   and completes in its thread.
//!
//! Start QEMU with `-device pci-testdev -device edu`. What the APIs refuse, and what an unbind
//! releases, is tested by `drivers/pci/rust_pci_test.rs`.

use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    bindings, c_str,
    device::{Bound, Core, Device},
    devres::Devres,
    io::poll::read_poll_timeout,
    irq, pci,
    pci::{Bar, IrqTypes},
    prelude::*,
    str::CStr,
    sync::{Arc, Completion},
    time::msecs_to_jiffies,
};

/// The name regions and interrupts are claimed under.
const NAME: &CStr = c_str!("rust_driver_pci");

/// The devices the driver supports; each ID's information says which one matched.
#[derive(Debug)]
enum Info {
    /// QEMU's `pci-testdev`.
    TestDev,
    /// QEMU's `edu`.
    Edu,
}

kernel::pci_device_table!(
    PCI_TABLE,
    MODULE_PCI_TABLE,
    <SampleDriver as pci::Driver>::IdInfo,
    [
        (pci::DeviceId::from_id(0x1b36, 0x0005), Info::TestDev),
        (pci::DeviceId::from_id(0x1234, 0x11e8), Info::Edu),
    ]
);

/// `pci-testdev`'s BAR 0: the registers up to the end of `COUNT`.
mod testdev {
    /// The size of the registers the driver uses; the BAR is 4 KiB.
    pub(crate) const SIZE: usize = 0x10;
    /// Selects a test (write-only; 3 or more selects none).
    pub(crate) const TEST: usize = 0x0;
    /// The offset the selected test watches.
    pub(crate) const OFFSET: usize = 0x4;
    /// The value the selected test expects.
    pub(crate) const DATA: usize = 0x8;
    /// How many times the selected test saw its value written at its offset.
    pub(crate) const COUNT: usize = 0xc;
    /// A value of `TEST` that selects no test.
    pub(crate) const NO_TEST: u8 = 0xff;
}

/// `edu`'s BAR 0 (1 MiB): the registers the driver uses.
mod edu {
    /// The size of the register block (the DMA buffer above it is not used).
    pub(crate) const SIZE: usize = 0x100;
    /// Identification: `0xRRrr00ed`, major and minor version.
    pub(crate) const ID: usize = 0x00;
    /// Liveness check: reads the bitwise NOT of the last value written.
    pub(crate) const LIVENESS: usize = 0x04;
    /// Factorial: write a number, read its factorial once `STATUS` is no longer busy.
    pub(crate) const FACTORIAL: usize = 0x08;
    /// Status: bit 0 is set while the factorial is being computed.
    pub(crate) const STATUS: usize = 0x20;
    /// Interrupt status: the bits raised and not acknowledged yet.
    pub(crate) const IRQ_STATUS: usize = 0x24;
    /// Writing raises an interrupt with those bits.
    pub(crate) const IRQ_RAISE: usize = 0x60;
    /// Writing acknowledges those bits.
    pub(crate) const IRQ_ACK: usize = 0x64;
    /// `STATUS`: computing.
    pub(crate) const STATUS_BUSY: u32 = 0x01;
}

/// The driver's data for one bound device.
enum SampleDriver {
    TestDev {
        bar: Devres<Bar<{ testdev::SIZE }>>,
    },
    Edu {
        // The interrupt is freed when this is dropped, or at unbind if that comes first.
        _irq: Pin<KBox<irq::ThreadedRegistration<EduIrq>>>,
    },
}

impl pci::Driver for SampleDriver {
    type IdInfo = Info;
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe(pdev: &pci::Device<Core>, info: &Self::IdInfo) -> Result<impl PinInit<Self, Error>> {
        dev_info!(
            pdev.as_ref(),
            "probe: {:?} ({:04x}:{:04x}, revision {:#x})\n",
            info,
            pdev.vendor_id(),
            pdev.device_id(),
            pdev.revision_id()
        );
        // First, so that the device is disabled at unbind only after what needs it enabled.
        pdev.enable_device_mem()?;
        match info {
            Info::TestDev => probe_testdev(pdev),
            Info::Edu => probe_edu(pdev),
        }
    }

    fn unbind(pdev: &pci::Device<Core>, this: Pin<&Self>) {
        if let SampleDriver::TestDev { bar } = &*this {
            // Leave no test selected; the device is still bound, so the BAR is there.
            if let Ok(bar) = bar.access(pdev.as_ref()) {
                bar.write8(testdev::NO_TEST, testdev::TEST);
            }
        }
        dev_info!(pdev.as_ref(), "unbind\n");
    }
}

/// Runs `pci-testdev`'s data-match test (test 0).
fn probe_testdev(pdev: &pci::Device<Core>) -> Result<SampleDriver> {
    let bar = pdev.iomap_region_sized::<{ testdev::SIZE }>(0, NAME)?;
    let regs = bar.access(pdev.as_ref())?;

    regs.write8(0, testdev::TEST);
    // The test's offset is known at run time only: `try_` checks it against the BAR's size.
    let offset = regs.read32(testdev::OFFSET) as usize;
    let data = regs.read8(testdev::DATA);
    regs.try_write8(data, offset)?;
    let count = regs.read32(testdev::COUNT);
    dev_info!(pdev.as_ref(), "pci-testdev data-match count: {count}\n");

    Ok(SampleDriver::TestDev { bar })
}

/// Checks `edu`'s registers, computes 10!, and raises an interrupt through MSI.
fn probe_edu(pdev: &pci::Device<Core>) -> Result<SampleDriver> {
    let bar = Arc::new(
        pdev.iomap_region_sized::<{ edu::SIZE }>(0, NAME)?,
        GFP_KERNEL,
    )?;
    let regs = bar.access(pdev.as_ref())?;

    let id = regs.read32(edu::ID);
    if id & 0xff != 0xed {
        dev_err!(pdev.as_ref(), "not an edu device: ID register {id:#010x}\n");
        return Err(ENODEV);
    }
    // The configuration space agrees with the IDs the PCI core read at enumeration, and lists
    // the MSI capability the interrupt below needs.
    let vendor = pdev.read_config_u16(bindings::PCI_VENDOR_ID as u16)?;
    let msi_cap = pdev
        .find_capability(bindings::PCI_CAP_ID_MSI as u8)
        .ok_or(ENODEV)?;
    let cap_id = pdev.read_config_u8(msi_cap.into())?;
    if vendor != pdev.vendor_id() || u32::from(cap_id) != bindings::PCI_CAP_ID_MSI {
        dev_err!(
            pdev.as_ref(),
            "config space: vendor {vendor:#06x}, capability {cap_id:#x} at {msi_cap:#x}\n"
        );
        return Err(EIO);
    }
    dev_info!(
        pdev.as_ref(),
        "edu config space: vendor {vendor:#06x}, MSI capability at {msi_cap:#x}\n"
    );
    regs.write32(0x1234_5678, edu::LIVENESS);
    let liveness = regs.read32(edu::LIVENESS);
    if liveness != !0x1234_5678 {
        dev_err!(pdev.as_ref(), "liveness check read {liveness:#010x}\n");
        return Err(EIO);
    }
    regs.write32(10, edu::FACTORIAL);
    // Poll every 10 us, for 100 ms at most (ETIMEDOUT).
    read_poll_timeout(
        || Ok(regs.read32(edu::STATUS)),
        |status| status & edu::STATUS_BUSY == 0,
        10,
        100_000,
    )?;
    let factorial = regs.read32(edu::FACTORIAL);
    dev_info!(
        pdev.as_ref(),
        "edu ID {id:#010x}, liveness ok, 10! = {factorial}\n"
    );

    // MSI vectors stay allocated until the driver unbinds, after the handler's line is freed.
    let vectors = pdev.alloc_irq_vectors(1, 1, IrqTypes::MSI)?;
    // An MSI is a memory write by the device: it needs bus mastering.
    pdev.set_master();

    // The handler keeps the BAR mapped for as long as it exists (and unbind revokes it).
    let handler_bar = bar.clone();
    let handler = try_pin_init!(EduIrq {
        bar: handler_bar,
        acked: AtomicU32::new(0),
        threaded: AtomicU32::new(0),
        done <- Completion::new(),
    }? Error);
    let irq = KBox::pin_init(
        pdev.request_threaded_irq(vectors.vector(0)?, irq::Flags::NONE, NAME, handler)?,
        GFP_KERNEL,
    )?;
    regs.write32(0x1, edu::IRQ_RAISE);
    let handler = irq.handler();
    if !handler
        .done
        .wait_for_completion_timeout(msecs_to_jiffies(1000))
    {
        dev_err!(pdev.as_ref(), "no interrupt within 1 s\n");
        return Err(EIO);
    }
    dev_info!(
        pdev.as_ref(),
        "edu MSI interrupt: status {:#x} acknowledged by the handler, handled in its thread (count {})\n",
        handler.acked.load(Ordering::Relaxed),
        handler.threaded.load(Ordering::Relaxed)
    );
    Ok(SampleDriver::Edu { _irq: irq })
}

/// `edu`'s interrupt handler: the hard-interrupt half acknowledges what the device raised, the
/// thread signals the waiter.
#[pin_data]
struct EduIrq {
    bar: Arc<Devres<Bar<{ edu::SIZE }>>>,
    /// The status bits the hard-interrupt half acknowledged.
    acked: AtomicU32,
    /// How many times the thread ran.
    threaded: AtomicU32,
    #[pin]
    done: Completion,
}

impl irq::ThreadedHandler for EduIrq {
    fn handle(&self, dev: &Device<Bound>) -> irq::ThreadedIrqReturn {
        // The line is freed before the BAR is unmapped at unbind: the BAR is there.
        let Ok(regs) = self.bar.access(dev) else {
            return irq::ThreadedIrqReturn::None;
        };
        let status = regs.read32(edu::IRQ_STATUS);
        if status == 0 {
            return irq::ThreadedIrqReturn::None;
        }
        // Even with MSI, `edu` keeps the status until it is acknowledged.
        regs.write32(status, edu::IRQ_ACK);
        self.acked.fetch_or(status, Ordering::Relaxed);
        irq::ThreadedIrqReturn::WakeThread
    }

    fn handle_threaded(&self, _dev: &Device<Bound>) -> irq::IrqReturn {
        self.threaded.fetch_add(1, Ordering::Relaxed);
        self.done.complete_all();
        irq::IrqReturn::Handled
    }
}

kernel::module_pci_driver! {
    type: SampleDriver,
    name: "rust_driver_pci",
    author: "Nova Developers",
    description: "Rust PCI driver sample",
    license: "GPL v2",
}
