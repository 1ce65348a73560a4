//! Suite `rust-pci`: staging/rust-pci as series/ has it, booted with QEMU's `pci-testdev` and
//! `edu`: its doctests, the PCI sample's results on both devices, unbind/bind and module
//! cycles with their BARs and IRQs released, the PCI test module, kmemleak, the MMIO accessors' code compared with
//! C's (see [`super::mmio_codegen`]), and builds without PCI, without MSI, for arm64 and with the oldest
//! rustc.

use crate::boot::{boot_suite, guest_programs, BootPlan, BOOT_TIMEOUT};
use crate::builds::{topic_images, topic_module, variant_build, Variant};
use crate::ctx::Ctx;
use crate::results::report::{SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::suites::rust_device::{add_boot_notes, KMEMLEAK_BASELINE, KMEMLEAK_CHECK};
use anyhow::Result;

/// The branch under test.
const BRANCH: &str = "staging/rust-pci";

/// The QEMU devices the sample drives.
pub(crate) const DEVICES: [&str; 2] = ["pci-testdev", "edu"];

/// What each probe of pci-testdev must print (checked by `rust_pci_cycles` on every probe).
const TESTDEV_LINES: [&str; 1] = ["pci-testdev data-match count: 1"];
/// What each probe of edu must print.
const EDU_LINES: [&str; 3] = [
    // Review P10 of v1: the configuration space read at run time.
    "edu config space: vendor 0x1234, MSI capability at 0x40",
    "edu ID 0x010000ed, liveness ok, 10! = 3628800",
    // Both halves of the threaded handler ran.
    "edu MSI interrupt: status 0x1 acknowledged by the handler, handled in its thread (count 1)",
];

/// `rust_pci_test.ko` runs its tests when loaded, with no driver bound to the two devices (the
/// sample is unloaded by then); `module_ktap` reports them as a suite. Among them: what the BAR
/// and IRQ vector APIs refuse (review P13 of v1 moved them out of the sample), review P2's
/// INTx-then-MSI sequence, and review P12's unbind of a `Bar` and of IRQ registrations owned by
/// a work item and by a device-managed resource.
pub(crate) const PCI_TESTS: &str =
    "module_ktap --module /lib/modules/rust_pci_test.ko --suite rust_pci_test";

/// The out-of-tree module folder with the same register access in C and Rust.
const CODEGEN_DIR: &str = "xtask/codegen/io";

/// A device that no ID of the sample matches (q35's host bridge, which has no driver here)
/// bound to the sample through `driver_override`: the PCI core hands over its wildcard ID, and
/// the adapter must refuse the probe with one line saying why.
const OVERRIDE_RUN: &str = "insmod /lib/modules/rust_driver_pci.ko && \
     d=/sys/bus/pci/devices/0000:00:00.0 && echo rust_driver_pci > $d/driver_override && \
     { echo 0000:00:00.0 > /sys/bus/pci/drivers/rust_driver_pci/bind; \
       echo \"override bind: exit $?\"; } ; echo > $d/driver_override; \
     rmmod rust_driver_pci";
/// What [`OVERRIDE_RUN`] must print: the adapter's refusal and the failed `bind` write.
const OVERRIDE_LINES: [&str; 2] = [
    "rust_driver_pci 0000:00:00.0: bound through driver_override, but no ID of the driver's \
     table matches",
    "override bind: exit 1",
];

/// A dynamic ID (`new_id`) for pci-testdev whose driver data is 1, the index of the table's edu
/// entry: the probe must get edu's information for pci-testdev (and then refuse the device, as
/// its ID register is not edu's). The ID is removed and the device bound again by its table
/// entry afterwards.
const DYNAMIC_ID_RUN: &str = "insmod /lib/modules/rust_driver_pci.ko && \
     b=/sys/bus/pci/drivers/rust_driver_pci && \
     t=$(for d in /sys/bus/pci/devices/*; do \
       [ \"$(cat $d/vendor):$(cat $d/device)\" = 0x1b36:0x0005 ] && basename $d; done; \
       true) && \
     echo $t > $b/unbind && echo '1b36 0005 ffffffff ffffffff 0 0 1' > $b/new_id && \
     echo '1b36 0005 ffffffff ffffffff 0 0' > $b/remove_id && echo $t > $b/bind && \
     echo \"dynamic id: $t bound to $(basename $(readlink /sys/bus/pci/devices/$t/driver))\" && \
     rmmod rust_driver_pci";
/// What [`DYNAMIC_ID_RUN`] must print: the probe with edu's information for pci-testdev, its
/// refusal, and the binding by the table entry afterwards.
const DYNAMIC_ID_LINES: [&str; 3] = [
    ": probe: Edu (1b36:0005, revision 0x0)",
    ": not an edu device: ID register",
    "bound to rust_driver_pci",
];

/// A wildcard dynamic ID (`new_id` of `ffffffff ffffffff`, driver data 0) makes the PCI core
/// probe every device without a driver with entry 0's information (pci-testdev's): the adapter
/// must not take that for a `driver_override` binding (review P11 of v1). q35's host bridge has
/// no BAR 0, so its probe as a pci-testdev fails before touching it. The markers go through
/// the kernel log, so that they are in order with the probes' lines on the console.
const WILDCARD_ID_RUN: &str = "insmod /lib/modules/rust_driver_pci.ko && \
     b=/sys/bus/pci/drivers/rust_driver_pci && echo 'wildcard new_id: start' > /dev/kmsg && \
     echo 'ffffffff ffffffff' > $b/new_id; echo 'ffffffff ffffffff' > $b/remove_id; \
     echo 'wildcard new_id: end' > /dev/kmsg; rmmod rust_driver_pci";
/// What the console between [`WILDCARD_ID_RUN`]'s markers must show (the host bridge probed
/// with entry 0's information) and must not (the `driver_override` refusal).
const WILDCARD_ID_SHOWS: &str = "0000:00:00.0: probe: TestDev (8086:29c0";
const WILDCARD_ID_HIDES: &str = "bound through driver_override";

/// Test `name`: between the lines `start` and `end` of `console`, `shows` appears and `hides`
/// does not.
fn console_between_test(
    name: &str,
    console: &str,
    (start, end): (&str, &str),
    shows: &str,
    hides: &str,
) -> TestResult {
    let Some(section) = console
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(section, _)| section)
    else {
        return TestResult::fail(name, format!("no `{start}` ... `{end}` on the console"));
    };
    if !section.contains(shows) {
        TestResult::fail(name, format!("no `{shows}` between `{start}` and `{end}`"))
    } else if section.contains(hides) {
        TestResult::fail(name, format!("`{hides}` between `{start}` and `{end}`"))
    } else {
        TestResult::pass(name)
    }
}

/// The guest command: 100 unbind/bind cycles of each device and 20 module cycles.
pub(crate) fn cycles_command() -> String {
    let mut cmd = String::from(
        "rust_pci_cycles --driver rust_driver_pci --module /lib/modules/rust_driver_pci.ko \
         --cycles 100 --module-cycles 20 --device 1b36:0005",
    );
    for l in TESTDEV_LINES {
        cmd.push_str(&format!(" --expect '{l}'"));
    }
    cmd.push_str(" --device 1234:11e8 --irq");
    for l in EDU_LINES {
        cmd.push_str(&format!(" --expect '{l}'"));
    }
    cmd
}

/// `rust-pci`: see the module documentation.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    // Built against the topic's tip in the per-commit slot, or taken from the cache when
    // nothing they depend on changed.
    let codegen = topic_module(ctx, tc, BRANCH, &ctx.repo.join(CODEGEN_DIR))?
        .map_err(|e| anyhow::anyhow!(e))
        .and_then(|kos| super::mmio_codegen::check(ctx, &kos));
    // What the topic's types must refuse (xtask/compile-fail/rust-pci).
    let compile_fail = super::compile_fail::run(ctx, tc, "rust-pci", "rust-pci", BRANCH)?;
    // Configurations built but not booted (each in a slot of its own; review P3 of v1).
    let variants = [
        variant_build(
            ctx,
            tc,
            BRANCH,
            Variant::Config("pci-off"),
            "rust-pci.build.pci_off",
        )?,
        variant_build(
            ctx,
            tc,
            BRANCH,
            Variant::Config("pci-msi-off"),
            "rust-pci.build.pci_msi_off",
        )?,
        variant_build(
            ctx,
            tc,
            BRANCH,
            Variant::Arch("arm64"),
            "rust-pci.build.arm64",
        )?,
        variant_build(
            ctx,
            tc,
            BRANCH,
            Variant::OldestRustc,
            "rust-pci.build.oldest_rustc",
        )?,
    ];
    let built = topic_images(ctx, tc, BRANCH)?;
    let plan = BootPlan {
        name: "rust-pci",
        kernel: &built.kernel,
        programs: guest_programs(ctx, &["rust_pci_cycles", "module_ktap"])?,
        modules: built.modules.clone(),
        files: Vec::new(),
        run_lines: vec![
            KMEMLEAK_BASELINE.to_string(),
            cycles_command(),
            OVERRIDE_RUN.to_string(),
            DYNAMIC_ID_RUN.to_string(),
            WILDCARD_ID_RUN.to_string(),
            PCI_TESTS.to_string(),
            KMEMLEAK_CHECK.to_string(),
        ],
        gpus: Vec::new(),
        devices: DEVICES.iter().map(|d| d.to_string()).collect(),
        expect_suites: &["rust_doctests_kernel", "rust_pci_cycles", "rust_pci_test"],
        echo: false,
        append: Vec::new(),
        hotplug_on: None,
        hotplug_cycles: None,
        faults: None,
        timeout: BOOT_TIMEOUT,
    };
    let (mut suite, res) = boot_suite(ctx, tc, plan)?;
    match codegen {
        Ok((notes, tests)) => {
            suite.notes.extend(notes);
            suite.tests.extend(tests);
        }
        Err(e) => suite
            .tests
            .push(TestResult::fail("rust-pci.codegen", format!("{e:#}"))),
    }
    suite.tests.extend(compile_fail);
    suite.tests.extend(variants);
    for (name, lines) in [
        (
            "rust-pci.driver_override_without_a_match_is_refused",
            &OVERRIDE_LINES[..],
        ),
        (
            "rust-pci.dynamic_id_info_from_its_driver_data",
            &DYNAMIC_ID_LINES[..],
        ),
    ] {
        suite
            .tests
            .push(console_lines_test(name, lines, &res.console));
    }
    suite.tests.push(console_between_test(
        "rust-pci.wildcard_new_id_is_not_driver_override",
        &res.console,
        // As kernel log lines (after the timestamp), not in the command's echo.
        ("] wildcard new_id: start", "] wildcard new_id: end"),
        WILDCARD_ID_SHOWS,
        WILDCARD_ID_HIDES,
    ));
    add_boot_notes(ctx, &mut suite, &res.console)?;
    Ok(suite)
}

/// Test `name`: every one of `lines` is on `console`.
fn console_lines_test(name: &str, lines: &[&str], console: &str) -> TestResult {
    let missing: Vec<String> = lines
        .iter()
        .filter(|l| !console.contains(*l))
        .map(|l| format!("no `{l}` on the console"))
        .collect();
    if missing.is_empty() {
        TestResult::pass(name)
    } else {
        TestResult::fail(name, missing.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_must_show_one_text_and_hide_another() {
        let t = |console| console_between_test("t", console, ("<", ">"), "yes", "no").outcome;
        use crate::results::ktap::Outcome;
        assert_eq!(t("a < yes > no"), Outcome::Pass);
        assert_eq!(t("a < yes no >"), Outcome::Fail);
        assert_eq!(t("yes < >"), Outcome::Fail);
        assert_eq!(t("< yes"), Outcome::Fail);
    }

    #[test]
    fn the_cycles_command_names_both_devices_and_their_lines() {
        let cmd = cycles_command();
        assert!(cmd.contains("--device 1b36:0005 --expect 'pci-testdev data-match count: 1'"));
        assert!(cmd.contains("--device 1234:11e8 --irq --expect 'edu config space"));
        assert!(cmd.contains("--cycles 100 --module-cycles 20"));
    }
}
