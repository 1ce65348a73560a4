// SPDX-License-Identifier: GPL-2.0

//! An IRQ vector borrows the bound device it was allocated on, so a handler cannot be requested
//! on it once the driver unbound (review P12 of v1: v1 had a run-time `ENXIO` for that): keeping
//! a vector past the probe that allocated it must not build.

use kernel::{
    device::Core,
    pci::{self, IrqTypes, IrqVector},
    prelude::*,
};

/// Keeps the device's first vector for later, past the reference to the bound device.
pub fn keep_vector(pdev: &pci::Device<Core>) -> Result<IrqVector<'static>> {
    pdev.alloc_irq_vectors(1, 1, IrqTypes::MSI)?.vector(0)
}

struct IrqVectorKeptPastProbe;

impl kernel::Module for IrqVectorKeptPastProbe {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(IrqVectorKeptPastProbe)
    }
}

module! {
    type: IrqVectorKeptPastProbe,
    name: "irq_vector_kept_past_probe",
    author: "Nova Developers",
    description: "An IRQ vector kept past its probe, which must not build",
    license: "GPL",
}
