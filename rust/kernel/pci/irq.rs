// SPDX-License-Identifier: GPL-2.0

//! PCI interrupts: INTx, MSI and MSI-X vectors of a bound device, and handlers requested on them.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)

use crate::{
    bindings, device,
    device::Bound,
    devres,
    error::{to_result, Result},
    irq::{self, IrqRequest},
    pci::Device,
    prelude::*,
    str::CStr,
    types::ARef,
};
use core::ops::BitOr;

/// The kinds of interrupt a driver accepts (C's `PCI_IRQ_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqTypes(u32);

impl IrqTypes {
    /// The legacy, level-triggered and possibly shared INTx line.
    pub const INTX: IrqTypes = IrqTypes(bindings::PCI_IRQ_INTX);
    /// Message-signalled interrupts.
    pub const MSI: IrqTypes = IrqTypes(bindings::PCI_IRQ_MSI);
    /// Extended message-signalled interrupts.
    pub const MSIX: IrqTypes = IrqTypes(bindings::PCI_IRQ_MSIX);
    /// Any kind: MSI-X, else MSI, else INTx.
    pub const ALL: IrqTypes = IrqTypes(bindings::PCI_IRQ_ALL_TYPES);

    const fn contains(self, types: IrqTypes) -> bool {
        self.0 & types.0 == types.0
    }
}

impl BitOr for IrqTypes {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// The kind of interrupt [`IrqVectors`] are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqType {
    /// The INTx line.
    Intx,
    /// MSI vectors.
    Msi,
    /// MSI-X vectors.
    MsiX,
}

/// The device's MSI or MSI-X vectors, freed (`pci_free_irq_vectors()`) when the driver unbinds;
/// handed to the device's managed resources by [`Device::alloc_irq_vectors`].
struct AllocatedVectors {
    pdev: ARef<Device>,
}

impl Drop for AllocatedVectors {
    fn drop(&mut self) {
        // SAFETY: The device is valid and has MSI or MSI-X vectors, allocated for this binding.
        // This runs at unbind, after every action added later: the registrations of the handlers
        // requested on the vectors have freed their lines.
        unsafe { bindings::pci_free_irq_vectors(self.pdev.as_raw()) };
    }
}

/// IRQ vectors allocated for a bound PCI device (C's `pci_alloc_irq_vectors()`), of one kind.
///
/// MSI and MSI-X vectors are freed when the driver unbinds, not before: a handler requested on
/// one of them ([`IrqVector::request`]) is freed at unbind at the latest, before them. The IRQ
/// numbers are recorded at allocation, as C's `pci_irq_vector()` answers for the vectors the
/// device has when it is called: INTx vectors asked after MSI vectors were allocated would name
/// an MSI vector.
///
/// # Invariants
///
/// `irqs` are the IRQ numbers of the vectors of kind `kind` allocated for `dev` during its
/// current binding; they stay allocated until the binding ends (MSI and MSI-X vectors are freed
/// by a managed resource added before any request of them, the INTx line is the device's pin
/// interrupt, set up while the device is enabled, and the device is disabled at unbind by a
/// managed resource added before too).
pub struct IrqVectors<'a> {
    dev: &'a Device<Bound>,
    irqs: KVec<u32>,
    kind: IrqType,
}

impl<'a> IrqVectors<'a> {
    /// The number of vectors.
    pub fn count(&self) -> u32 {
        // At most the `max` of the allocation, a `u32`.
        self.irqs.len() as u32
    }

    /// Their kind.
    pub fn irq_type(&self) -> IrqType {
        self.kind
    }

    /// Vector `index`.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `index` is not one of the vectors.
    pub fn vector(&self, index: u32) -> Result<IrqVector<'a>> {
        let irq = *self.irqs.get(index as usize).ok_or(EINVAL)?;
        // INVARIANT: `irq` is the number of a vector of `dev` (type invariant of `self`).
        Ok(IrqVector {
            dev: self.dev,
            index,
            irq,
        })
    }
}

/// One IRQ vector of a bound PCI device, from [`IrqVectors::vector`].
///
/// # Invariants
///
/// `irq` is the IRQ number of vector `index` of `dev`, allocated until the binding ends (see
/// [`IrqVectors`]).
#[derive(Clone, Copy)]
pub struct IrqVector<'a> {
    dev: &'a Device<Bound>,
    index: u32,
    irq: u32,
}

impl<'a> IrqVector<'a> {
    /// Its index among the device's vectors.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Its IRQ number (C's `pci_irq_vector()` at allocation).
    pub fn irq(&self) -> u32 {
        self.irq
    }

    /// The request for this vector's line, to register a handler with
    /// ([`irq::Registration::new`], [`irq::ThreadedRegistration::new`]).
    pub fn request(self) -> IrqRequest<'a> {
        // SAFETY: `irq` is an IRQ of the device that stays allocated until the binding ends,
        // after every managed resource added from now on is released (type invariant).
        unsafe { IrqRequest::new(self.dev.as_ref(), self.irq) }
    }
}

impl Device<device::Bound> {
    /// Allocates between `min` and `max` IRQ vectors of one of the kinds `types` allows,
    /// preferring MSI-X, then MSI, then INTx (C's `pci_alloc_irq_vectors()`); MSI and MSI-X
    /// vectors are freed when the driver unbinds.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the device is not enabled (enable it first, so that it is disabled only after
    /// the vectors are freed at unbind), or for `min` of 0 or above `max`; `EBUSY` if the device
    /// has MSI or MSI-X vectors already; otherwise the error of the last kind tried (e.g.
    /// `ENOSPC`: INTx with no line, or fewer vectors than `min`).
    ///
    /// # Examples
    ///
    /// Compile-only: it needs a bound PCI device.
    ///
    /// ```
    /// use core::sync::atomic::{AtomicU32, Ordering};
    /// use kernel::{c_str, device::{Bound, Core, Device}, irq, pci};
    /// use kernel::pci::IrqTypes;
    ///
    /// struct Counter(AtomicU32);
    ///
    /// impl irq::Handler for Counter {
    ///     fn handle(&self, _dev: &Device<Bound>) -> irq::IrqReturn {
    ///         self.0.fetch_add(1, Ordering::Relaxed);
    ///         irq::IrqReturn::Handled
    ///     }
    /// }
    ///
    /// fn setup_irq(pdev: &pci::Device<Core>) -> Result<Pin<KBox<irq::Registration<Counter>>>> {
    ///     pdev.enable_device_mem()?;
    ///     let vectors = pdev.alloc_irq_vectors(1, 1, IrqTypes::MSI | IrqTypes::INTX)?;
    ///     let handler = Counter(AtomicU32::new(0));
    ///     let name = c_str!("my_driver");
    ///     let init = pdev.request_irq(vectors.vector(0)?, irq::Flags::SHARED, name, handler)?;
    ///     let reg = KBox::pin_init(init, GFP_KERNEL)?;
    ///     // ... make the device interrupt, then wait for its handler (this sleeps: it takes the
    ///     // bound device, not an RCU read-side section).
    ///     reg.synchronize(pdev.as_ref())?;
    ///     Ok(reg)
    /// }
    /// ```
    pub fn alloc_irq_vectors(&self, min: u32, max: u32, types: IrqTypes) -> Result<IrqVectors<'_>> {
        // SAFETY: The device is valid.
        if min == 0 || min > max || !unsafe { bindings::pci_is_enabled(self.as_raw()) } {
            return Err(EINVAL);
        }
        // SAFETY: The device is valid.
        if unsafe { bindings::pci_dev_msi_enabled(self.as_raw()) } {
            return Err(EBUSY);
        }
        let mut result = Err(EINVAL);
        for (kind, bits) in [
            (IrqType::MsiX, IrqTypes::MSIX),
            (IrqType::Msi, IrqTypes::MSI),
            (IrqType::Intx, IrqTypes::INTX),
        ] {
            if !types.contains(bits) {
                continue;
            }
            // SAFETY: The device is valid and bound; it has no MSI or MSI-X vectors (checked
            // above).
            let ret = unsafe { bindings::pci_alloc_irq_vectors(self.as_raw(), min, max, bits.0) };
            result = to_result(ret).map(|()| (kind, ret as u32));
            if result.is_ok() {
                break;
            }
        }
        let (kind, count) = result?;
        if kind != IrqType::Intx {
            // Freed at unbind, after the lines requested on them (their actions come later); on
            // failure `register` drops it, which frees them now.
            devres::register(
                self.as_ref(),
                AllocatedVectors { pdev: self.into() },
                GFP_KERNEL,
            )?;
        }
        let mut irqs = KVec::with_capacity(count as usize, GFP_KERNEL)?;
        for index in 0..count {
            // SAFETY: The device is valid and has `count` vectors allocated.
            let irq = unsafe { bindings::pci_irq_vector(self.as_raw(), index) };
            to_result(irq)?;
            irqs.push(u32::try_from(irq).map_err(|_| EINVAL)?, GFP_KERNEL)?;
        }
        // INVARIANT: `irqs` are the numbers of the `count` vectors of `kind` allocated above for
        // this binding; the MSI(-X) ones are freed at unbind by the action just added, the device
        // is enabled.
        Ok(IrqVectors {
            dev: self,
            irqs,
            kind,
        })
    }

    /// An initialiser of a registration of `handler` on `vector` with `flags` and `name`, freed
    /// when dropped or when the driver unbinds at the latest (see [`irq::Registration`]).
    ///
    /// An INTx line may be shared with other devices: request it with [`irq::Flags::SHARED`] and
    /// return [`irq::IrqReturn::None`] for interrupts the device did not raise.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `vector` is another device's; the initialiser fails with `request_irq()`'s
    /// errors.
    pub fn request_irq<'a, T: irq::Handler + 'static>(
        &'a self,
        vector: IrqVector<'a>,
        flags: irq::Flags,
        name: &'static CStr,
        handler: impl PinInit<T, Error> + 'a,
    ) -> Result<impl PinInit<irq::Registration<T>, Error> + 'a> {
        let request = self.own_request(vector)?;
        Ok(irq::Registration::new(request, flags, name, handler))
    }

    /// As [`Device::request_irq`], for a handler with a threaded half
    /// ([`irq::ThreadedRegistration`]).
    ///
    /// # Errors
    ///
    /// As [`Device::request_irq`].
    pub fn request_threaded_irq<'a, T: irq::ThreadedHandler + 'static>(
        &'a self,
        vector: IrqVector<'a>,
        flags: irq::Flags,
        name: &'static CStr,
        handler: impl PinInit<T, Error> + 'a,
    ) -> Result<impl PinInit<irq::ThreadedRegistration<T>, Error> + 'a> {
        let request = self.own_request(vector)?;
        Ok(irq::ThreadedRegistration::new(
            request, flags, name, handler,
        ))
    }

    /// The request of `vector`, if it is one of this device's.
    fn own_request<'a>(&self, vector: IrqVector<'a>) -> Result<IrqRequest<'a>> {
        if vector.dev.as_raw() != self.as_raw() {
            return Err(EINVAL);
        }
        Ok(vector.request())
    }
}
