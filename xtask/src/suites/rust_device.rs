//! Suite `rust-device`: staging/rust-device as series/ has it, its doctests, the driver core's
//! test modules, the platform sample's ID information, and kmemleak afterwards.

use crate::boot::{boot_suite, console_line, guest_programs, BootPlan, BOOT_TIMEOUT};
use crate::builds::{topic_images, variant_build, Variant};
use crate::ctx::Ctx;
use crate::results::report::{SuiteResult, TestResult};
use crate::setup::Toolchain;
use anyhow::Result;
use std::path::Path;

/// `rust_devres_test.ko` runs its tests when loaded; `module_ktap` reports them as a suite.
pub(crate) const DEVRES_TESTS: &str =
    "module_ktap --module /lib/modules/rust_devres_test.ko --suite rust_devres_test";

/// sysfs unbind/bind and module load/unload cycles of the driver core's platform test driver.
pub(crate) const PLATFORM_CYCLES: &str = "rust_device_cycles --driver rust_platform_test \
     --device rust_platform_test --cycles 100 --module /lib/modules/rust_platform_test.ko \
     --module-cycles 20";

/// The platform sample binds to the two devices the test module registers, then both go.
const SAMPLE_RUN: &str = "insmod /lib/modules/rust_platform_test.ko && \
     insmod /lib/modules/rust_driver_platform.ko && rmmod rust_driver_platform && \
     rmmod rust_platform_test";

/// What the sample must print for [`SAMPLE_RUN`]: each device's ID information at probe (its
/// table gives `rust-sample-a` one channel and `rust-sample-b` four) and the release of its
/// device-managed resource at unbind.
const SAMPLE_LINES: [(&str, &str); 4] = [
    (
        "id_info.rust-sample-a",
        "rust_driver_platform rust-sample-a: probe: Info { channels: 1 }",
    ),
    (
        "id_info.rust-sample-b",
        "rust_driver_platform rust-sample-b: probe: Info { channels: 4 }",
    ),
    (
        "devres_released.rust-sample-a",
        "rust_driver_platform: releasing 1 channels",
    ),
    (
        "devres_released.rust-sample-b",
        "rust_driver_platform: releasing 4 channels",
    ),
];

/// Before the tests: forget what kmemleak suspects from boot, so that only new leaks count.
pub(crate) const KMEMLEAK_BASELINE: &str =
    "echo scan > /sys/kernel/debug/kmemleak && echo clear > /sys/kernel/debug/kmemleak";

/// After the tests: scan (twice, as kmemleak only reports an object seen unreferenced twice),
/// print what it found and fail when it found anything.
pub(crate) const KMEMLEAK_CHECK: &str =
    "k=/sys/kernel/debug/kmemleak; echo scan > $k && echo scan > $k && \
     n=$(grep -c 'unreferenced object' $k); echo \"leak check: $n new suspected leaks after the \
     tests\"; head -n 40 $k; [ \"$n\" = 0 ]";

/// The marker that the series' doc examples which only compile carry in their text.
const COMPILE_ONLY: &str = "/// Compile-only";

/// `rust-device`: staging/rust-device as series/ has it boots with its fragment (and kmemleak);
/// all doctests pass, the Devres tests pass, the platform test driver survives 100 unbind/bind
/// and 20 load/unload cycles, each asserted, the sample gets each device's ID information, and
/// kmemleak finds no new leak afterwards.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    // What the topic's types must refuse (xtask/compile-fail/rust-device).
    let compile_fail =
        super::compile_fail::run(ctx, tc, "rust-device", "rust-device", "staging/rust-device")?;
    let built = topic_images(ctx, tc, "staging/rust-device")?;
    let plan = BootPlan {
        name: "rust-device",
        kernel: &built.kernel,
        programs: guest_programs(ctx, &["module_ktap", "rust_device_cycles"])?,
        modules: built.modules.clone(),
        files: Vec::new(),
        run_lines: vec![
            KMEMLEAK_BASELINE.to_string(),
            DEVRES_TESTS.to_string(),
            PLATFORM_CYCLES.to_string(),
            SAMPLE_RUN.to_string(),
            KMEMLEAK_CHECK.to_string(),
        ],
        gpus: Vec::new(),
        devices: Vec::new(),
        expect_suites: &[
            "rust_doctests_kernel",
            "rust_devres_test",
            "rust_device_cycles",
        ],
        echo: false,
        append: Vec::new(),
        hotplug_on: None,
        hotplug_cycles: None,
        faults: None,
        timeout: BOOT_TIMEOUT,
    };
    let (mut suite, res) = boot_suite(ctx, tc, plan)?;
    for (name, line) in SAMPLE_LINES {
        let name = format!("rust-device.sample.{name}");
        suite.tests.push(if res.console.contains(line) {
            TestResult::pass(name)
        } else {
            TestResult::fail(name, format!("no `{line}` on the console"))
        });
    }
    suite.tests.extend(compile_fail);
    // Built, not booted: the tip for arm64, and with the oldest rustc Debian gives us.
    suite.tests.push(variant_build(
        ctx,
        tc,
        "staging/rust-device",
        Variant::Arch("arm64"),
        "rust-device.build.arm64",
    )?);
    suite.tests.push(variant_build(
        ctx,
        tc,
        "staging/rust-device",
        Variant::OldestRustc,
        "rust-device.build.oldest_rustc",
    )?);
    add_boot_notes(ctx, &mut suite, &res.console)?;
    Ok(suite)
}

/// Notes for a topic's boot: how many doctests ran and how many of the series' examples only
/// compile, the guest programs' elapsed time and kmemleak's verdict.
pub(crate) fn add_boot_notes(ctx: &Ctx, suite: &mut SuiteResult, console: &str) -> Result<()> {
    let doctests = suite
        .tests
        .iter()
        .filter(|t| t.name.starts_with("rust_doctests_kernel."))
        .count();
    let compile_only = count_marker(&ctx.repo.join("rust"), COMPILE_ONLY)?;
    suite.notes.push(format!(
        "{doctests} Rust doctests ran; {compile_only} of the series' examples only compile \
         (marked `Compile-only`)"
    ));
    for key in ["# elapsed:", "leak check: "] {
        if let Some(l) = console_line(console, key) {
            suite.notes.push(l.trim_start_matches("# ").to_string());
        }
    }
    Ok(())
}

/// How many lines of the Rust files under `dir` (the series' tip view) start with `marker`:
/// in the files the series adds (`.rs`), and among the added lines of the files it changes
/// (`.rs.patch`).
fn count_marker(dir: &Path, marker: &str) -> Result<usize> {
    let mut count = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.to_string_lossy();
        let added = if path.is_dir() {
            count += count_marker(&path, marker)?;
            continue;
        } else if name.ends_with(".rs") {
            ""
        } else if name.ends_with(".rs.patch") {
            "+"
        } else {
            continue;
        };
        let text = std::fs::read_to_string(&path)?;
        count += text
            .lines()
            .filter_map(|l| l.strip_prefix(added))
            .filter(|l| l.trim_start().starts_with(marker))
            .count();
    }
    Ok(count)
}
