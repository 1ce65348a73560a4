// SPDX-License-Identifier: GPL-2.0

//! PCI interrupts: INTx, MSI and MSI-X vectors, and handlers requested on them.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)

use crate::{
    bindings, device,
    devres::Devres,
    error::{to_result, Result},
    irq::{self, Handler},
    pci::Device,
    prelude::*,
    str::CStr,
    sync::Arc,
    types::ARef,
};
use core::ops::{BitOr, Deref};

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

/// IRQ vectors allocated for a PCI device (C's `pci_alloc_irq_vectors()`), of one kind; MSI and
/// MSI-X vectors are freed (`pci_free_irq_vectors()`) when dropped.
///
/// Drivers get them as an `Arc<Devres<IrqVectors>>` from [`Device::alloc_irq_vectors`]: they
/// are freed when the driver unbinds at the latest, and never while a handler is requested on
/// one of them, as each [`IrqRegistration`] holds a reference.
///
/// The IRQ numbers are recorded at allocation: C's `pci_irq_vector()` answers for the vectors
/// the device has *now*, so INTx vectors asked after MSI vectors were allocated would give an
/// MSI number, which these INTx vectors do not keep allocated.
///
/// # Invariants
///
/// `irqs` are the IRQ numbers of the vectors of kind `kind` allocated for `pdev`: MSI or MSI-X
/// ones stay allocated until this is dropped (and no other MSI or MSI-X vectors are), the INTx
/// one is the device's pin interrupt, which stays set up while the device is enabled.
pub struct IrqVectors {
    pdev: ARef<Device>,
    irqs: KVec<u32>,
    kind: IrqType,
}

impl IrqVectors {
    /// The number of vectors.
    pub fn count(&self) -> u32 {
        // At most the `max` of the allocation, a `u32`.
        self.irqs.len() as u32
    }

    /// Their kind.
    pub fn irq_type(&self) -> IrqType {
        self.kind
    }

    /// The IRQ number of vector `index` (C's `pci_irq_vector()` at allocation).
    ///
    /// # Errors
    ///
    /// `EINVAL` if `index` is not one of the vectors.
    pub fn irq(&self, index: u32) -> Result<u32> {
        self.irqs.get(index as usize).copied().ok_or(EINVAL)
    }
}

impl Drop for IrqVectors {
    fn drop(&mut self) {
        // INTx needs no freeing; MSI and MSI-X are ours alone (type invariant), and no handler
        // is requested on them any more: each registration holds a reference to the `Devres`
        // that owns `self`, and the `Devres` action that may drop `self` at unbind runs after
        // the actions of the registrations, which were added later.
        if self.kind != IrqType::Intx {
            // SAFETY: The device is valid and these are its allocated MSI(-X) vectors.
            unsafe { bindings::pci_free_irq_vectors(self.pdev.as_raw()) };
        }
    }
}

/// A handler requested on a PCI IRQ vector: an [`irq::Registration`] that keeps its vectors
/// allocated. It derefs to the [`irq::Registration`].
#[pin_data]
pub struct IrqRegistration<T: Handler> {
    // Declared first: dropped (the line freed) before the reference to the vectors.
    #[pin]
    registration: irq::Registration<T>,
    vectors: Arc<Devres<IrqVectors>>,
}

impl<T: Handler> Deref for IrqRegistration<T> {
    type Target = irq::Registration<T>;

    fn deref(&self) -> &irq::Registration<T> {
        &self.registration
    }
}

impl Device<device::Bound> {
    /// Allocates between `min` and `max` IRQ vectors of one of the kinds `types` allows,
    /// preferring MSI-X, then MSI, then INTx (C's `pci_alloc_irq_vectors()`).
    ///
    /// The vectors are freed when the last reference goes, and when the driver unbinds at the
    /// latest.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the device is not enabled (enable it first, so that it is disabled only after
    /// the vectors are freed at unbind), or for `min` of 0 or above `max`; `EBUSY` if the device
    /// has MSI or MSI-X vectors allocated already; otherwise the error of the last kind tried (e.g. `ENOSPC`: INTx
    /// with no line, or fewer vectors than `min`).
    ///
    /// # Examples
    ///
    /// Compile-only: it needs a bound PCI device with MSI.
    ///
    /// ```
    /// use core::sync::atomic::{AtomicU32, Ordering};
    /// use kernel::{c_str, device::Core, irq, pci};
    /// use kernel::pci::IrqTypes;
    ///
    /// struct Counter(AtomicU32);
    ///
    /// impl irq::Handler for Counter {
    ///     fn handle(&self) -> irq::IrqReturn {
    ///         self.0.fetch_add(1, Ordering::Relaxed);
    ///         irq::IrqReturn::Handled
    ///     }
    /// }
    ///
    /// fn setup_irq(pdev: &pci::Device<Core>) -> Result {
    ///     let vectors = pdev.alloc_irq_vectors(1, 1, IrqTypes::MSI | IrqTypes::INTX)?;
    ///     let name = c_str!("my_driver");
    ///     let handler = Counter(AtomicU32::new(0));
    ///     let reg = pdev.request_irq(&vectors, 0, irq::Flags::SHARED, name, handler)?;
    ///     // ... make the device interrupt, then wait for its handler (this sleeps: not under
    ///     // `try_access_with()`, whose RCU read-side section must not sleep).
    ///     reg.access(pdev.as_ref())?.synchronize();
    ///     Ok(())
    /// }
    /// ```
    pub fn alloc_irq_vectors(
        &self,
        min: u32,
        max: u32,
        types: IrqTypes,
    ) -> Result<Arc<Devres<IrqVectors>>> {
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
            // above), so these are the only ones.
            let ret = unsafe { bindings::pci_alloc_irq_vectors(self.as_raw(), min, max, bits.0) };
            result = to_result(ret).map(|()| (kind, ret));
            if result.is_ok() {
                break;
            }
        }
        let (kind, count) = result?;
        let mut irqs = KVec::new();
        let recorded = (0..count as u32).try_for_each(|index| {
            // SAFETY: The device is valid and has `count` vectors allocated.
            let irq = unsafe { bindings::pci_irq_vector(self.as_raw(), index) };
            to_result(irq)?;
            irqs.push(u32::try_from(irq).map_err(|_| EINVAL)?, GFP_KERNEL)?;
            Ok::<(), Error>(())
        });
        if let Err(e) = recorded {
            if kind != IrqType::Intx {
                // SAFETY: The device is valid and these are its MSI(-X) vectors, just allocated.
                unsafe { bindings::pci_free_irq_vectors(self.as_raw()) };
            }
            return Err(e);
        }
        // INVARIANT: `irqs` are the numbers of the `count` vectors of `kind` allocated above, the
        // only MSI(-X) ones; the device is enabled.
        let vectors = IrqVectors {
            pdev: self.into(),
            irqs,
            kind,
        };
        Ok(Arc::new(Devres::new(self.as_ref(), vectors)?, GFP_KERNEL)?)
    }

    /// Requests vector `index` of `vectors` with `flags` and `name` for the handler `handler`
    /// initialises, until the registration is dropped, or the driver unbinds at the latest.
    ///
    /// An INTx line may be shared with other devices: request it with [`irq::Flags::SHARED`]
    /// and return [`irq::IrqReturn::None`] for interrupts the device did not raise.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `vectors` are another device's or `index` is not one of them, `ENXIO` if
    /// they were freed (the driver unbound), or the error of `request_irq()` or of the
    /// allocation.
    pub fn request_irq<T: Handler>(
        &self,
        vectors: &Arc<Devres<IrqVectors>>,
        index: u32,
        flags: irq::Flags,
        name: &'static CStr,
        handler: impl PinInit<T, Error>,
    ) -> Result<Devres<IrqRegistration<T>>> {
        let irq = vectors.access(self.as_ref())?.irq(index)?;
        // SAFETY: `irq` was recorded when `vectors` were allocated, and the registration holds a
        // reference to `vectors`, which keeps that number allocated until it is dropped: `IrqVectors` is dropped only when the last reference goes, or by
        // its `Devres` action at unbind, which runs after the action of the `Devres` below
        // (added later) has dropped the registration.
        let registration = unsafe { irq::Registration::new(irq, flags, name, handler) };
        let init = try_pin_init!(IrqRegistration {
            registration <- registration,
            vectors: vectors.clone(),
        }? Error);
        Devres::new(self.as_ref(), init)
    }
}
