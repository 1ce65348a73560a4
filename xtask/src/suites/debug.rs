//! Suite `debug`: the series on a debug kernel. The nova/stub tip is built with the per-commit
//! configuration plus `kconfig/debug.config` (KASAN, lockdep with RCU checks, atomic-sleep
//! checks, debug objects, DEBUG_VM, kmemleak, Rust debug assertions and overflow checks, fault
//! injection), every option of which must survive olddefconfig, and booted three times:
//!
//! - `debug-device-pci`: rust-device's and rust-pci's guest programs ([`CYCLES`] unbind/bind
//!   and module cycles each), then `fail_nth` on the PCI sample and pci-testdev;
//! - `debug-drm`: `rust_drm_test` with [`CYCLES`] cycles, then `fail_nth` on the DRM sample;
//! - `nova-stub-debug`: `nova_test` on a tu102 with [`CYCLES`] unbind/bind and module cycles
//!   and [`HOTPLUG_CYCLES`] hot-unplugs under the ioctl load of 4 processes, then `fail_nth`
//!   and `drm_fuzz` on Nova;
//! - `nova-stub-faults`: `gpu_faults` on three tu102s (the hardware misbehaving, see
//!   [`nova_stub::faults_boot`]): gpu0 falls off the bus under ioctl load, is refused on
//!   re-bind and recovers, gpu1's model is killed under ioctl load, gpu2's during a probe.
//!
//! Each boot runs the kernel's Rust doctests, starts and ends with kmemleak (no new leak), and
//! fails on any console line of a kernel report (KASAN, lockdep, RCU, "sleeping function
//! called", kmemleak, WARNING, BUG, a Rust panic: the crash check every boot has). `fail_nth`
//! (guest program, see its documentation) fails every failure point of each operation in turn;
//! the suite puts the points per operation in its notes and fails when an operation has fewer
//! than [`FLOORS`] says (the coverage must not shrink unnoticed).

use crate::boot::modules::insmod_line;
use crate::boot::{boot_suite, guest_programs, BootPlan};
use crate::builds::debug_images;
use crate::ctx::Ctx;
use crate::results::report::{check, SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::suites::rust_device::{
    add_boot_notes, DEVRES_TESTS, KMEMLEAK_BASELINE, KMEMLEAK_CHECK, PLATFORM_CYCLES,
};
use crate::suites::{nova_stub, rust_drm, rust_pci};
use anyhow::Result;
use std::time::Duration;

/// The branch whose tip is built: it has every topic.
const BRANCH: &str = "nova/stub";
/// Unbind/bind and module cycles of each guest program (the minimum: on the debug
/// kernel a cycle costs several times what it does on the per-commit build).
const CYCLES: usize = 10;
/// Hot-unplugs of the Nova boot, each under the ioctl load of 4 processes (the 20).
const HOTPLUG_CYCLES: usize = 20;
/// The GPU of the Nova boots: a TU102, whose GSP image (28.5 MB) is the smaller of the two the
/// firmware package has, as each bind tried under fault injection loads it.
const NOVA_PROFILE: &str = "tu102";
/// Its PCI IDs (the profile's), for the guest programs.
const NOVA_PCI: &str = "10de:1e04";
/// How long a boot of the debug kernel may take: the Nova boot runs ~4 min here.
pub(crate) const DEBUG_BOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// The guest program that injects the failures.
const FAIL_NTH: &str = "fail_nth";
/// The model-checked fuzzer.
const DRM_FUZZ: &str = "drm_fuzz";
/// The ioctls `drm_fuzz` makes on each of the two DRM drivers.
const FUZZ_IOCTLS: u64 = 500_000;

/// The fewest failure points `fail_nth` must find per test (about 90 % of what it found on
/// 2026-12-07, ACPICA left out), so that a change that makes an operation skip its
/// allocations, or the injection stop reaching them, fails the suite. GETPARAM and GEM_INFO
/// allocate nothing (0 points) but must be reported.
#[rustfmt::skip]
const FLOORS: &[(&str, u32)] = &[
    ("nova_insmod", 325), ("nova_bind", 360), ("nova_unbind", 21),
    ("nova_open_primary", 7), ("nova_open_render", 5), ("nova_close", 2),
    ("nova_getparam", 0), ("nova_gem_create", 10), ("nova_gem_info", 0),
    ("nova_gem_close", 2), ("nova_prime_export", 9), ("nova_prime_import", 5),
    ("nova_gem_flink", 2), ("nova_gem_open", 2),
    ("pci_insmod", 320), ("pci_bind", 24), ("pci_unbind", 5),
    ("sample_insmod", 320), ("sample_bind", 130), ("sample_unbind", 19),
    ("sample_open_primary", 7), ("sample_open_render", 5), ("sample_close", 2),
    ("sample_getparam", 0), ("sample_gem_create", 10), ("sample_gem_info", 0),
    ("sample_gem_close", 2), ("sample_prime_export", 9), ("sample_prime_import", 5),
    ("sample_gem_flink", 2), ("sample_gem_open", 2),
];

/// `cmd` with its cycle counts set to [`CYCLES`].
fn fewer_cycles(cmd: &str) -> String {
    let mut words: Vec<String> = cmd.split(' ').map(str::to_string).collect();
    for i in 1..words.len() {
        if matches!(
            words[i - 1].as_str(),
            "--cycles" | "--module-cycles" | "--hotplug-cycles"
        ) {
            words[i] = CYCLES.to_string();
        }
    }
    words.join(" ")
}

/// The `fail-nth <test>: points N, ...` diagnostics of `console`: each test and its points.
fn points(console: &str) -> Vec<(String, u32)> {
    console
        .lines()
        .filter_map(|l| l.split_once("# fail-nth ").map(|(_, rest)| rest))
        .filter_map(|rest| {
            let (test, rest) = rest.split_once(": points ")?;
            let n = rest.split(',').next()?.trim().parse().ok()?;
            Some((test.to_string(), n))
        })
        .collect()
}

/// The `drm_fuzz: N ioctls in S s` diagnostics of `console`: the ioctls and seconds of each
/// run.
fn fuzzed(console: &str) -> Vec<(u64, f64)> {
    console
        .lines()
        .filter_map(|l| l.split_once("# drm_fuzz: ").map(|(_, rest)| rest))
        .filter_map(|rest| {
            let (n, rest) = rest.split_once(" ioctls in ")?;
            let (s, _) = rest.split_once(" s ")?;
            Some((n.parse().ok()?, s.parse().ok()?))
        })
        .collect()
}

/// Test `debug.fail-nth.coverage`: every test of [`FLOORS`] reported at least its points.
fn coverage(found: &[(String, u32)]) -> TestResult {
    let problems = FLOORS
        .iter()
        .filter_map(
            |&(test, floor)| match found.iter().find(|(t, _)| t == test) {
                Some((_, n)) if *n >= floor => None,
                Some((_, n)) => Some(format!(
                    "{test}: {n} failure points, at least {floor} wanted"
                )),
                None => Some(format!("{test}: not reported")),
            },
        )
        .collect();
    check("debug.fail-nth.coverage", problems)
}

/// Boots `plan` and adds the boot's notes (doctests run, compile-only examples).
fn boot_with_notes(ctx: &Ctx, tc: &Toolchain, plan: BootPlan<'_>) -> Result<SuiteResult> {
    let (mut suite, res) = boot_suite(ctx, tc, plan)?;
    add_boot_notes(ctx, &mut suite, &res.console)?;
    Ok(suite)
}

/// One boot of the debug kernel's modules with the rust-device and rust-pci programs.
fn device_pci_boot(
    ctx: &Ctx,
    tc: &Toolchain,
    built: &crate::builds::kbuild::Built,
) -> Result<SuiteResult> {
    let plan = BootPlan {
        name: "debug-device-pci",
        kernel: &built.kernel,
        programs: guest_programs(
            ctx,
            &[
                "module_ktap",
                "rust_device_cycles",
                "rust_pci_cycles",
                FAIL_NTH,
            ],
        )?,
        modules: built.modules.clone(),
        files: Vec::new(),
        run_lines: vec![
            KMEMLEAK_BASELINE.to_string(),
            DEVRES_TESTS.to_string(),
            fewer_cycles(PLATFORM_CYCLES),
            fewer_cycles(&rust_pci::cycles_command()),
            rust_pci::PCI_TESTS.to_string(),
            format!(
                "{FAIL_NTH} --pci 1b36:0005 --pci-driver rust_driver_pci \
                 --pci-module /lib/modules/rust_driver_pci.ko"
            ),
            KMEMLEAK_CHECK.to_string(),
        ],
        gpus: Vec::new(),
        devices: rust_pci::DEVICES.iter().map(|d| d.to_string()).collect(),
        expect_suites: &[
            "rust_doctests_kernel",
            "rust_devres_test",
            "rust_device_cycles",
            "rust_pci_cycles",
            "rust_pci_test",
            FAIL_NTH,
        ],
        echo: false,
        append: Vec::new(),
        hotplug_on: None,
        hotplug_cycles: None,
        faults: None,
        timeout: DEBUG_BOOT_TIMEOUT,
    };
    boot_with_notes(ctx, tc, plan)
}

/// One boot with the DRM sample's program.
fn drm_boot(
    ctx: &Ctx,
    tc: &Toolchain,
    built: &crate::builds::kbuild::Built,
) -> Result<SuiteResult> {
    let order = rust_drm::load_order(built)?;
    let plan = BootPlan {
        name: "debug-drm",
        kernel: &built.kernel,
        programs: guest_programs(ctx, &["rust_drm_test", FAIL_NTH, DRM_FUZZ])?,
        modules: built.modules.clone(),
        files: Vec::new(),
        run_lines: vec![
            KMEMLEAK_BASELINE.to_string(),
            insmod_line(&order),
            fewer_cycles(rust_drm::TEST_COMMAND),
            format!(
                "{FAIL_NTH} --sample rust-drm-sample \
                 --sample-module /lib/modules/{}.ko",
                rust_drm::DRIVER_MODULE
            ),
            format!("{DRM_FUZZ} --driver sample --device rust-drm-sample --ioctls {FUZZ_IOCTLS}"),
            KMEMLEAK_CHECK.to_string(),
        ],
        gpus: Vec::new(),
        devices: Vec::new(),
        expect_suites: &["rust_doctests_kernel", "rust_drm_test", FAIL_NTH, DRM_FUZZ],
        echo: false,
        append: Vec::new(),
        hotplug_on: None,
        hotplug_cycles: None,
        faults: None,
        timeout: DEBUG_BOOT_TIMEOUT,
    };
    boot_with_notes(ctx, tc, plan)
}

/// The longest `cargo xtask fuzz` run: the guest must be done within the boot's 300 s.
pub(crate) const FUZZ_MAX_SECONDS: u64 = 240;

/// `cargo xtask fuzz --seconds N [--seed S]`: `drm_fuzz` on Nova (a tu102) and on the DRM
/// sample, N/2 seconds each, in one boot of the debug kernel; prints each run's seed, ioctls
/// and rate, and fails on a mismatch with the model or a kernel report.
pub(crate) fn fuzz(ctx: &Ctx, seconds: u64, seed: Option<u64>) -> Result<()> {
    if seconds == 0 || seconds > FUZZ_MAX_SECONDS {
        anyhow::bail!("--seconds: 1 to {FUZZ_MAX_SECONDS}, not {seconds}");
    }
    let tc = crate::setup::setup(ctx)?;
    let built = debug_images(ctx, &tc, BRANCH)?;
    let order = rust_drm::load_order(&built)?;
    let seed = seed.map(|s| format!(" --seed {s:#x}")).unwrap_or_default();
    let half = seconds.div_ceil(2);
    let lines = [
        insmod_line(&order),
        format!("insmod /lib/modules/{}.ko", rust_drm::DRIVER_MODULE),
        format!("{DRM_FUZZ} --driver nova --device {NOVA_PCI} --seconds {half}{seed}"),
        format!("{DRM_FUZZ} --driver sample --device rust-drm-sample --seconds {half}{seed}"),
    ];
    let suite = nova_stub::debug_boot(ctx, &tc, &built, NOVA_PROFILE, (0, 0), &[DRM_FUZZ], &lines)?;
    let console = suite
        .tests
        .iter()
        .find_map(|t| t.log.as_ref())
        .and_then(|l| std::fs::read_to_string(l).ok())
        .unwrap_or_default();
    for l in console
        .lines()
        .filter(|l| l.contains("# drm_fuzz") || l.contains("drm_fuzz: "))
    {
        println!("    {}", l.trim());
    }
    let runs = fuzzed(&console);
    let ioctls: u64 = runs.iter().map(|(n, _)| n).sum();
    let secs: f64 = runs.iter().map(|(_, s)| s).sum();
    println!(
        "fuzz: {ioctls} ioctls in {secs:.1} s ({:.0}/s) on the debug kernel",
        ioctls as f64 / secs.max(1e-9)
    );
    let failed: Vec<&TestResult> = suite
        .tests
        .iter()
        .filter(|t| t.outcome == crate::results::ktap::Outcome::Fail)
        .collect();
    for t in &failed {
        println!("failed: {}\n{}", t.name, t.detail);
    }
    if !failed.is_empty() || runs.len() != 2 {
        anyhow::bail!(
            "fuzz: {} failed test(s), {} of 2 runs reported",
            failed.len(),
            runs.len()
        );
    }
    Ok(())
}

/// `debug`: see the module documentation.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    let mut all = SuiteResult::new("debug");
    let built = match debug_images(ctx, tc, BRANCH) {
        Ok(b) => b,
        Err(e) => {
            all.tests
                .push(TestResult::fail("debug.build", format!("{e:#}")));
            return Ok(all);
        }
    };
    all.tests.push(TestResult::pass("debug.build"));
    let nova = nova_stub::debug_boot(
        ctx,
        tc,
        &built,
        NOVA_PROFILE,
        (CYCLES, HOTPLUG_CYCLES),
        &[FAIL_NTH, DRM_FUZZ],
        &[
            format!("{FAIL_NTH} --nova {NOVA_PCI} --nova-module /lib/modules/nova.ko"),
            format!("{DRM_FUZZ} --driver nova --device {NOVA_PCI} --ioctls {FUZZ_IOCTLS}"),
        ],
    )?;
    let boots = [
        ("debug-device-pci", device_pci_boot(ctx, tc, &built)?),
        ("debug-drm", drm_boot(ctx, tc, &built)?),
        ("nova-stub-debug", nova),
        (
            "nova-stub-faults",
            nova_stub::faults_boot(ctx, tc, &built, NOVA_PROFILE)?,
        ),
    ];
    let (mut found, mut fuzz) = (Vec::new(), Vec::new());
    for (name, suite) in boots {
        for log in suite.tests.iter().filter_map(|t| t.log.as_ref()).take(1) {
            if let Ok(console) = std::fs::read_to_string(log) {
                found.extend(points(&console));
                fuzz.extend(fuzzed(&console).into_iter().map(|f| (name, f)));
            }
        }
        for mut t in suite.tests {
            t.name = format!("{name}:{}", t.name);
            all.tests.push(t);
        }
        all.notes
            .extend(suite.notes.into_iter().map(|n| format!("{name}: {n}")));
    }
    let total: u32 = found.iter().map(|(_, n)| n).sum();
    all.notes.push(format!(
        "fail-nth: {total} failure points in {} operations: {}",
        found.len(),
        found
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    all.tests.push(coverage(&found));
    let ioctls: u64 = fuzz.iter().map(|(_, (n, _))| n).sum();
    all.notes.push(format!(
        "drm_fuzz: {ioctls} ioctls in all: {}",
        fuzz.iter()
            .map(|(boot, (n, s))| format!("{boot} {n} in {s:.1} s ({:.0}/s)", *n as f64 / s))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let problems = if ioctls >= 2 * FUZZ_IOCTLS {
        vec![]
    } else {
        vec![format!(
            "{ioctls} ioctls fuzzed, {} wanted",
            2 * FUZZ_IOCTLS
        )]
    };
    all.tests.push(check("debug.fuzz.ioctls", problems));
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_counts_are_cut_to_ten() {
        assert_eq!(
            fewer_cycles("rust_drm_test --module m.ko --cycles 100 --module-cycles 20 --workers 4"),
            "rust_drm_test --module m.ko --cycles 10 --module-cycles 10 --workers 4"
        );
        assert_eq!(
            fewer_cycles("x --hotplug-cycles 20"),
            "x --hotplug-cycles 10"
        );
        assert_eq!(fewer_cycles("x --workers 4"), "x --workers 4");
    }

    #[test]
    fn coverage_fails_on_fewer_points_or_a_missing_test() {
        let all: Vec<(String, u32)> = FLOORS.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        assert!(
            coverage(&all).detail.is_empty(),
            "{:?}",
            coverage(&all).detail
        );
        let mut fewer = all.clone();
        fewer[1].1 -= 1;
        assert_eq!(
            coverage(&fewer).detail,
            "nova_bind: 359 failure points, at least 360 wanted"
        );
        assert_eq!(coverage(&all[1..]).detail, "nova_insmod: not reported");
    }

    #[test]
    fn fuzz_counts_are_read_from_the_diagnostics() {
        let console =
            "    # drm_fuzz: seed 0x2a\n    # drm_fuzz: 20000 ioctls in 4.0 s (5000/s), seed \
                       0x2a; the model run again: drm_fuzz --driver nova\n";
        assert_eq!(fuzzed(console), [(20000, 4.0)]);
    }

    #[test]
    fn points_are_read_from_the_diagnostics() {
        let console =
            "[ 1.0] x\n    # fail-nth nova_bind: points 312, errors 300, absorbed 12, 41.2 s\n\
                       # fail-nth sample_open_primary: points 40, errors 40, absorbed 0, 1.0 s\n\
                       # fail-nth: 352 failure points in all\n";
        assert_eq!(
            points(console),
            [
                ("nova_bind".to_string(), 312),
                ("sample_open_primary".to_string(), 40)
            ]
        );
    }
}
