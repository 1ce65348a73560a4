//! Suite `rust-pci`: staging/rust-pci as series/ has it, booted with QEMU's `pci-testdev` and
//! `edu`: its doctests, the PCI sample's results on both devices, unbind/bind and module
//! cycles with their BARs and IRQs released, kmemleak, and the MMIO accessors' code compared
//! with C's (see [`super::mmio_codegen`]).

use crate::boot::{boot_suite, guest_programs, BootPlan};
use crate::builds::{topic_images, topic_module};
use crate::ctx::Ctx;
use crate::results::report::{SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::suites::rust_device::{add_boot_notes, KMEMLEAK_BASELINE, KMEMLEAK_CHECK};
use anyhow::Result;

/// The branch under test.
const BRANCH: &str = "staging/rust-pci";

/// The QEMU devices the sample drives.
const DEVICES: [&str; 2] = ["pci-testdev", "edu"];

/// What each probe of pci-testdev must print (checked by `rust_pci_cycles` on every probe).
const TESTDEV_LINES: [&str; 7] = [
    "pci-testdev data-match count: 1",
    "refused bar 6: EINVAL",
    "refused bar 1 (I/O ports): EINVAL",
    "refused bar 2 (unimplemented): ENOMEM",
    "refused bar 0 again: EBUSY",
    "refused bar 0 as IoMem: EBUSY",
    "refused read past the end: EINVAL",
];
/// What each probe of edu must print.
const EDU_LINES: [&str; 3] = [
    "edu ID 0x010000ed, liveness ok, 10! = 3628800",
    // Review P2 of v1: INTx, then MSI, then a request through the INTx vectors.
    "edu INTx vectors keep their line with MSI vectors allocated",
    // Both halves of the threaded handler ran.
    "edu MSI interrupt: status 0x1 acknowledged by the handler, handled in its thread (count 1)",
];

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

/// The guest command: 100 unbind/bind cycles of each device and 20 module cycles.
fn cycles_command() -> String {
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
    let built = topic_images(ctx, tc, BRANCH)?;
    let plan = BootPlan {
        name: "rust-pci",
        kernel: &built.kernel,
        programs: guest_programs(ctx, &["rust_pci_cycles"])?,
        modules: built.modules.clone(),
        files: Vec::new(),
        run_lines: vec![
            KMEMLEAK_BASELINE.to_string(),
            cycles_command(),
            OVERRIDE_RUN.to_string(),
            DYNAMIC_ID_RUN.to_string(),
            KMEMLEAK_CHECK.to_string(),
        ],
        gpus: Vec::new(),
        devices: DEVICES.iter().map(|d| d.to_string()).collect(),
        expect_suites: &["rust_doctests_kernel", "rust_pci_cycles"],
        echo: false,
        append: Vec::new(),
        hotplug_on: None,
        hotplug_cycles: None,
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
    fn the_cycles_command_names_both_devices_and_their_lines() {
        let cmd = cycles_command();
        assert!(cmd.contains("--device 1b36:0005 --expect 'pci-testdev data-match count: 1'"));
        assert!(cmd.contains("--device 1234:11e8 --irq --expect 'edu ID"));
        assert!(cmd.contains("--cycles 100 --module-cycles 20"));
    }
}
