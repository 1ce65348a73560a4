// SPDX-License-Identifier: GPL-2.0

//! Tests of the Rust PCI abstractions on QEMU's `pci-testdev` and `edu`.
//!
//! The module registers a PCI driver for both devices, whose probes run the tests that need a
//! bound device and hand a BAR and an interrupt registration to work items, then unregisters it,
//! which unbinds both devices, and lets the work items check what the unbind released. Each
//! result is one line in the kernel log in KTAP's form (`ok N name` or `not ok N name #
//! reason`), after a `1..N` plan; a last `done: P passed, F failed` line ends the run. A test
//! whose device is absent, bound to another driver, or whose probe failed before it ran fails as
//! not run. Loading fails with `EINVAL` when a test failed.
//!
//! Start QEMU with `-device pci-testdev -device edu`, and load the module while neither device
//! is bound to a driver.

use core::{
    ptr,
    sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering},
};
use kernel::{
    bindings, c_str,
    device::{Bound, Core, Device},
    devres::{self, Devres},
    driver,
    io::mem::IoMem,
    irq, pci,
    pci::{Bar, IrqTypes, IrqVectors},
    prelude::*,
    types::ARef,
    workqueue,
};

/// The name of the driver, and of the regions and interrupts it claims.
const NAME: &CStr = c_str!("rust_pci_test");

/// The size of `pci-testdev`'s BAR 0 the tests map (the BAR is 4 KiB).
const TESTDEV_REGS: usize = 0x10;

/// How long one side waits for the other to reach a step, at least, before it fails.
const STEP_TIMEOUT_MS: u32 = 5000;

/// How long a side sleeps between two looks at the other.
const STEP_POLL_MS: u32 = 10;

/// The tests, in the order they are reported. Each is recorded once, by a probe, a work item or
/// an object dropped at unbind.
#[derive(Clone, Copy)]
enum Test {
    BarOfADisabledDeviceIsEinval,
    BarIndexPastTheLastIsEinval,
    IoPortBarIsEinval,
    UnimplementedBarIsEnomem,
    BarClaimedTwiceIsEbusy,
    IomemOverAClaimedBarIsEbusy,
    AccessPastTheEndIsEinval,
    BarKeptByAWorkItemIsRevokedAtUnbind,
    VectorsOfADisabledDeviceAreEinval,
    SecondMsiAllocationIsEbusy,
    IntxRequestKeepsTheIntxLine,
    RegistrationGivenToDevresIsDroppedBeforeItsVectors,
    RegistrationKeptByAWorkItemLosesItsLineAtUnbind,
}

/// How many tests there are.
const COUNT: usize = 13;

/// The tests and their names, in the order of their discriminants (checked at build time).
const TESTS: [(Test, &str); COUNT] = [
    (
        Test::BarOfADisabledDeviceIsEinval,
        "bar_of_a_disabled_device_is_einval",
    ),
    (
        Test::BarIndexPastTheLastIsEinval,
        "bar_index_past_the_last_is_einval",
    ),
    (Test::IoPortBarIsEinval, "io_port_bar_is_einval"),
    (
        Test::UnimplementedBarIsEnomem,
        "unimplemented_bar_is_enomem",
    ),
    (Test::BarClaimedTwiceIsEbusy, "bar_claimed_twice_is_ebusy"),
    (
        Test::IomemOverAClaimedBarIsEbusy,
        "iomem_over_a_claimed_bar_is_ebusy",
    ),
    (
        Test::AccessPastTheEndIsEinval,
        "access_past_the_end_is_einval",
    ),
    (
        Test::BarKeptByAWorkItemIsRevokedAtUnbind,
        "bar_kept_by_a_work_item_is_revoked_at_unbind",
    ),
    (
        Test::VectorsOfADisabledDeviceAreEinval,
        "vectors_of_a_disabled_device_are_einval",
    ),
    (
        Test::SecondMsiAllocationIsEbusy,
        "second_msi_allocation_is_ebusy",
    ),
    (
        Test::IntxRequestKeepsTheIntxLine,
        "intx_request_keeps_the_intx_line",
    ),
    (
        Test::RegistrationGivenToDevresIsDroppedBeforeItsVectors,
        "registration_given_to_devres_is_dropped_before_its_vectors",
    ),
    (
        Test::RegistrationKeptByAWorkItemLosesItsLineAtUnbind,
        "registration_kept_by_a_work_item_loses_its_line_at_unbind",
    ),
];

const _: () = {
    let mut i = 0;
    while i < COUNT {
        assert!(TESTS[i].0 as usize == i);
        i += 1;
    }
};

/// The outcome of a test: `Err` carries the reason of a failure.
type Outcome = Result<(), &'static &'static str>;

/// What a passed test's slot points to.
static PASSED: &str = "passed";

/// A test's result until the report: null until the test is recorded, then [`PASSED`] or the
/// reason of its failure.
///
/// # Invariants
///
/// The pointer is null or comes from a `&'static &'static str`.
struct Slot(AtomicPtr<&'static str>);

impl Slot {
    /// A slot of a test that has not been recorded.
    const fn new() -> Self {
        // INVARIANT: Null.
        Self(AtomicPtr::new(ptr::null_mut()))
    }
}

/// The results, indexed by [`Test`].
static RESULTS: [Slot; COUNT] = [
    Slot::new(),
    Slot::new(),
    Slot::new(),
    Slot::new(),
    Slot::new(),
    Slot::new(),
    Slot::new(),
    Slot::new(),
    Slot::new(),
    Slot::new(),
    Slot::new(),
    Slot::new(),
    Slot::new(),
];

/// Records the outcome of `test`.
fn record(test: Test, outcome: Outcome) {
    let reason: &'static &'static str = match outcome {
        Ok(()) => &PASSED,
        Err(reason) => reason,
    };
    // INVARIANT: From a `&'static &'static str`.
    RESULTS[test as usize]
        .0
        .store(ptr::from_ref(reason).cast_mut(), Ordering::Release);
}

/// The recorded outcome of `test`; `None` if it was not recorded.
fn recorded(test: Test) -> Option<Outcome> {
    let reason = RESULTS[test as usize].0.load(Ordering::Acquire);
    // SAFETY: The pointer is null or comes from a `&'static &'static str` (type invariant).
    let reason: &'static &'static str = unsafe { reason.as_ref() }?;
    Some(if ptr::eq(reason, &PASSED) {
        Ok(())
    } else {
        Err(reason)
    })
}

/// Fails with `reason` unless `cond` holds.
fn check(cond: bool, reason: &'static &'static str) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(reason)
    }
}

/// Passes when `result` is the error `expected`; otherwise says what it got in a diagnostic.
fn refused<T>(test: Test, result: Result<T>, expected: Error) -> Outcome {
    match result {
        Err(e) if e == expected => Ok(()),
        Err(e) => {
            pr_info!(
                "# {}: got {e:?}, expected {expected:?}\n",
                TESTS[test as usize].1
            );
            Err(&"refused with another error")
        }
        Ok(_) => Err(&"not refused"),
    }
}

/// Set once the driver is unregistered, and so both devices unbound.
static UNBOUND: AtomicBool = AtomicBool::new(false);

/// How many work items the probes started.
static WORK_ITEMS: AtomicU32 = AtomicU32::new(0);

/// How many work items are done with their checks of the bound device: the driver is
/// unregistered only then (on one CPU, the work items would otherwise run after it).
static WORK_ITEMS_READY: AtomicU32 = AtomicU32::new(0);

/// Set when the driver starts to unbind from `edu`.
static EDU_UNBINDING: AtomicBool = AtomicBool::new(false);

/// Whether `edu`'s MSI line had no handler left when its vectors were about to be freed.
static EDU_LINE_FREED_BEFORE_ITS_VECTORS: AtomicBool = AtomicBool::new(false);

/// Sleeps for `ms` milliseconds.
fn msleep(ms: u32) {
    // SAFETY: `msleep` has no preconditions beyond process context, which work items are.
    unsafe { bindings::msleep(ms) };
}

/// Waits until `cond` holds; `false` on timeout.
fn wait_until(cond: impl Fn() -> bool) -> bool {
    for _ in 0..STEP_TIMEOUT_MS / STEP_POLL_MS {
        if cond() {
            return true;
        }
        msleep(STEP_POLL_MS);
    }
    cond()
}

/// Tells the module that this work item is done with the bound device, then waits until the
/// driver is unregistered; `false` on timeout.
fn ready_for_unbind() -> bool {
    WORK_ITEMS_READY.fetch_add(1, Ordering::AcqRel);
    wait_until(|| UNBOUND.load(Ordering::Acquire))
}

/// Runs `f` on a work item of the system workqueue.
fn spawn(f: impl FnOnce() + Send + 'static) -> Result {
    WORK_ITEMS.fetch_add(1, Ordering::AcqRel);
    workqueue::system()
        .try_spawn(GFP_KERNEL, f)
        .inspect_err(|_| {
            WORK_ITEMS.fetch_sub(1, Ordering::AcqRel);
        })?;
    Ok(())
}

/// The devices the driver binds to.
enum Info {
    /// QEMU's `pci-testdev`.
    TestDev,
    /// QEMU's `edu`.
    Edu,
}

kernel::pci_device_table!(
    PCI_TABLE,
    MODULE_PCI_TABLE,
    <TestDriver as pci::Driver>::IdInfo,
    [
        (pci::DeviceId::from_id(0x1b36, 0x0005), Info::TestDev),
        (pci::DeviceId::from_id(0x1234, 0x11e8), Info::Edu),
    ]
);

/// The driver: its bindings keep nothing, what they leave to the unbind is elsewhere.
struct TestDriver;

impl pci::Driver for TestDriver {
    type IdInfo = Info;
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe(pdev: &pci::Device<Core>, info: &Self::IdInfo) -> Result<impl PinInit<Self, Error>> {
        match info {
            Info::TestDev => probe_testdev(pdev)?,
            Info::Edu => probe_edu(pdev)?,
        }
        Ok(TestDriver)
    }

    fn unbind(pdev: &pci::Device<Core>, _this: Pin<&Self>) {
        if pdev.device_id() == 0x11e8 {
            EDU_UNBINDING.store(true, Ordering::Release);
        }
    }
}

/// `pci-testdev`: what the BAR API refuses, and a BAR kept by a work item past the unbind.
fn probe_testdev(pdev: &pci::Device<Core>) -> Result {
    let test = Test::BarOfADisabledDeviceIsEinval;
    record(test, refused(test, pdev.iomap_region(0, NAME), EINVAL));

    pdev.enable_device_mem()?;
    let bar = pdev.iomap_region_sized::<TESTDEV_REGS>(0, NAME)?;
    let regs = bar.access(pdev.as_ref())?;
    let cases = [
        (
            Test::BarIndexPastTheLastIsEinval,
            pdev.iomap_region(6, NAME),
            EINVAL,
        ),
        (Test::IoPortBarIsEinval, pdev.iomap_region(1, NAME), EINVAL),
        (
            Test::UnimplementedBarIsEnomem,
            pdev.iomap_region(2, NAME),
            ENOMEM,
        ),
        (
            Test::BarClaimedTwiceIsEbusy,
            pdev.iomap_region(0, NAME),
            EBUSY,
        ),
    ];
    for (test, result, expected) in cases {
        record(test, refused(test, result, expected));
    }
    let test = Test::IomemOverAClaimedBarIsEbusy;
    let iomem = IoMem::<0>::new(pdev.as_ref(), pdev.resource(0)?, NAME);
    record(test, refused(test, iomem, EBUSY));
    let test = Test::AccessPastTheEndIsEinval;
    record(test, refused(test, regs.try_read32(regs.maxsize()), EINVAL));

    // Not in the driver's data: the work item is the BAR's only owner when the unbind comes.
    spawn(move || {
        let outcome = bar_revoked_at_unbind(&bar);
        drop(bar);
        record(Test::BarKeptByAWorkItemIsRevokedAtUnbind, outcome);
    })
}

/// The work item's side of [`Test::BarKeptByAWorkItemIsRevokedAtUnbind`].
fn bar_revoked_at_unbind(bar: &Devres<Bar<TESTDEV_REGS>>) -> Outcome {
    let bound = bar.try_access().is_some();
    check(ready_for_unbind(), &"the driver was not unregistered")?;
    check(bound, &"no access while bound")?;
    check(bar.try_access().is_none(), &"accessible after the unbind")
}

/// `edu`: what the IRQ vector API refuses, and registrations released at the unbind while
/// something else than the driver's data owns them.
fn probe_edu(pdev: &pci::Device<Core>) -> Result {
    let test = Test::VectorsOfADisabledDeviceAreEinval;
    let msi = pdev.alloc_irq_vectors(1, 1, IrqTypes::MSI);
    record(test, refused(test, msi, EINVAL));

    pdev.enable_device_mem()?;
    // INTx vectors leave MSI off, so the MSI allocation after them is allowed; not a second.
    let intx = pdev.alloc_irq_vectors(1, 1, IrqTypes::INTX)?;
    let msi = pdev.alloc_irq_vectors(1, 1, IrqTypes::MSI)?;
    let test = Test::SecondMsiAllocationIsEbusy;
    let again = pdev.alloc_irq_vectors(1, 1, IrqTypes::MSI);
    record(test, refused(test, again, EBUSY));
    record(
        Test::IntxRequestKeepsTheIntxLine,
        intx_request_keeps_the_intx_line(pdev, &intx, &msi),
    );

    // Both registrations below share edu's MSI line (edu has one vector); edu does not raise it.
    let irq = msi.vector(0)?.irq();
    // Added after the vectors' release and before the registrations': released at the unbind
    // after every line requested below, before the vectors are freed.
    devres::register(
        pdev.as_ref(),
        VectorWitness {
            pdev: pdev.into(),
            irq,
        },
        GFP_KERNEL,
    )?;

    // A registration whose owner is a device-managed resource: its line's `Devres` is released
    // inside the release of the resource that owns it.
    let witness = DropWitness {
        pdev: pdev.into(),
        irq,
    };
    let reg = pdev.request_irq(msi.vector(0)?, irq::Flags::SHARED, NAME, witness)?;
    devres::register(pdev.as_ref(), KBox::pin_init(reg, GFP_KERNEL)?, GFP_KERNEL)?;

    // A registration kept by a work item past the unbind.
    let reg = pdev.request_irq(msi.vector(0)?, irq::Flags::SHARED, NAME, Silent)?;
    let reg = KBox::pin_init(reg, GFP_KERNEL)?;
    spawn(move || {
        let outcome = line_freed_at_unbind(irq);
        drop(reg);
        record(
            Test::RegistrationKeptByAWorkItemLosesItsLineAtUnbind,
            outcome,
        );
    })
}

/// Review P2 of v1: a handler requested through INTx vectors allocated before MSI vectors is on
/// the INTx line, not on the MSI vector that dropping the MSI vectors would free under it.
fn intx_request_keeps_the_intx_line(
    pdev: &pci::Device<Core>,
    intx: &IrqVectors<'_>,
    msi: &IrqVectors<'_>,
) -> Outcome {
    let line = intx.vector(0).map_err(|_| &"no INTx vector")?.irq();
    let msi_irq = msi.vector(0).map_err(|_| &"no MSI vector")?.irq();
    let vector = intx.vector(0).map_err(|_| &"no INTx vector")?;
    let reg = pdev
        .request_irq(vector, irq::Flags::SHARED, NAME, Silent)
        .map_err(|_| &"request_irq() refused the INTx vector")?;
    let reg = KBox::pin_init(reg, GFP_KERNEL).map_err(|_| &"the INTx line was not requested")?;
    check(
        reg.irq() == line,
        &"requested on another IRQ than the INTx line",
    )?;
    check(
        msi_irq != line,
        &"the MSI vector has the INTx line's number",
    )
}

/// The work item's side of [`Test::RegistrationKeptByAWorkItemLosesItsLineAtUnbind`]; the
/// registration on `irq` is dropped after this returns.
fn line_freed_at_unbind(irq: u32) -> Outcome {
    // SAFETY: `irq_has_action` takes any number, and only reads its descriptor under RCU.
    let requested = unsafe { bindings::irq_has_action(irq) };
    check(ready_for_unbind(), &"the driver was not unregistered")?;
    check(requested, &"the line is not requested")?;
    check(
        EDU_LINE_FREED_BEFORE_ITS_VECTORS.load(Ordering::Acquire),
        &"the line still had a handler when its vectors were freed",
    )
}

/// A handler for a line on which the device does not interrupt.
struct Silent;

impl irq::Handler for Silent {
    fn handle(&self, _dev: &Device<Bound>) -> irq::IrqReturn {
        irq::IrqReturn::None
    }
}

/// Whether `pdev` has MSI or MSI-X vectors.
fn msi_enabled(pdev: &pci::Device) -> bool {
    // `pci::Device` is a transparent wrapper of `struct pci_dev`.
    let raw = ptr::from_ref(pdev).cast::<bindings::pci_dev>().cast_mut();
    // SAFETY: `raw` is a valid PCI device, kept alive by `pdev`.
    unsafe { bindings::pci_dev_msi_enabled(raw) }
}

/// A handler that records [`Test::RegistrationGivenToDevresIsDroppedBeforeItsVectors`] when it
/// is dropped, which must happen after its registration freed the line.
struct DropWitness {
    pdev: ARef<pci::Device>,
    irq: u32,
}

impl irq::Handler for DropWitness {
    fn handle(&self, _dev: &Device<Bound>) -> irq::IrqReturn {
        irq::IrqReturn::None
    }
}

impl Drop for DropWitness {
    fn drop(&mut self) {
        let outcome = check(
            EDU_UNBINDING.load(Ordering::Acquire),
            &"dropped before the unbind",
        )
        .and_then(|()| {
            // The other registration on the line was requested later, so its line was freed
            // earlier in the unbind: a handler left on the line now is this one's.
            // SAFETY: As in `line_freed_at_unbind`.
            let requested = unsafe { bindings::irq_has_action(self.irq) };
            check(!requested, &"dropped while its line was still requested")
        })
        .and_then(|()| {
            check(
                msi_enabled(&self.pdev),
                &"dropped after the vectors were freed",
            )
        });
        record(
            Test::RegistrationGivenToDevresIsDroppedBeforeItsVectors,
            outcome,
        );
    }
}

/// Released at unbind just before `edu`'s MSI vectors: records whether its line still had a
/// handler then.
struct VectorWitness {
    pdev: ARef<pci::Device>,
    irq: u32,
}

impl Drop for VectorWitness {
    fn drop(&mut self) {
        // SAFETY: As in `line_freed_at_unbind`.
        let requested = unsafe { bindings::irq_has_action(self.irq) };
        let freed_first = !requested && msi_enabled(&self.pdev);
        EDU_LINE_FREED_BEFORE_ITS_VECTORS.store(freed_first, Ordering::Release);
    }
}

/// The module: loading it runs the tests.
struct PciTest;

impl kernel::Module for PciTest {
    fn init(module: &'static ThisModule) -> Result<Self> {
        pr_info!("1..{}\n", COUNT);
        let driver = KBox::pin_init(
            driver::Registration::<pci::Adapter<TestDriver>>::new(NAME, module),
            GFP_KERNEL,
        )?;
        let ready = wait_until(|| {
            WORK_ITEMS_READY.load(Ordering::Acquire) == WORK_ITEMS.load(Ordering::Acquire)
        });
        if !ready {
            pr_info!("# the work items did not get to the bound device in time\n");
        }
        // Unbinds both devices.
        drop(driver);
        UNBOUND.store(true, Ordering::Release);
        // Waits for the work items, which finish their tests once they see the unbind, to return
        // (their code is this module's).
        // SAFETY: `system_wq` is a valid workqueue for the kernel's lifetime.
        unsafe { bindings::__flush_workqueue(bindings::system_wq) };

        let mut failed = 0;
        for (i, (test, name)) in TESTS.iter().enumerate() {
            match recorded(*test) {
                Some(Ok(())) => pr_info!("ok {} {}\n", i + 1, name),
                Some(Err(reason)) => {
                    failed += 1;
                    pr_info!("not ok {} {} # {}\n", i + 1, name, reason);
                }
                None => {
                    failed += 1;
                    pr_info!("not ok {} {} # not run\n", i + 1, name);
                }
            }
        }
        pr_info!("done: {} passed, {} failed\n", COUNT - failed, failed);
        if failed == 0 {
            Ok(PciTest)
        } else {
            Err(EINVAL)
        }
    }
}

module! {
    type: PciTest,
    name: "rust_pci_test",
    author: "Nova Developers",
    description: "Tests of the Rust PCI abstractions on QEMU's pci-testdev and edu",
    license: "GPL v2",
}
