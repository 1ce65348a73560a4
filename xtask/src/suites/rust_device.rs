//! Suite `rust-device`: staging/rust-device as series/ has it, its doctests, the sample's
//! bind/unbind and load/unload cycles, and kmemleak afterwards.

use crate::boot::{boot_suite, console_line, guest_programs, BootPlan};
use crate::builds::build_series_topic;
use crate::ctx::Ctx;
use crate::report::SuiteResult;
use crate::setup::Toolchain;
use anyhow::Result;

/// The guest command of the `rust-device` suite: sysfs unbind/bind and module load/unload cycles
/// of the sample platform driver.
const RUST_DEVICE_CYCLES: &str = "rust_device_cycles --driver rust_driver_platform \
     --device rust_sample_pdev --cycles 100 --module /lib/modules/rust_driver_platform.ko \
     --module-cycles 20";

/// Before the cycles: forget what kmemleak suspects from boot, so that only new leaks count.
const KMEMLEAK_BASELINE: &str =
    "echo scan > /sys/kernel/debug/kmemleak && echo clear > /sys/kernel/debug/kmemleak";

/// After the cycles: scan (twice, as kmemleak only reports an object seen unreferenced twice),
/// print what it found and fail when it found anything.
const KMEMLEAK_CHECK: &str = "k=/sys/kernel/debug/kmemleak; echo scan > $k && echo scan > $k && \
     n=$(grep -c 'unreferenced object' $k); echo \"leak check: $n new suspected leaks after the \
     cycles\"; head -n 40 $k; [ \"$n\" = 0 ]";

/// `rust-device`: staging/rust-device as series/ has it boots with its fragment (and kmemleak);
/// all doctests pass, the sample survives 100 unbind/bind and 20 load/unload cycles, each
/// asserted, and kmemleak finds no new leak afterwards.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    let built = build_series_topic(ctx, tc, "staging/rust-device", &["leakcheck"])?;
    let plan = BootPlan {
        name: "rust-device",
        bzimage: &built.bzimage,
        programs: guest_programs(ctx, &["rust_device_cycles"])?,
        modules: built.modules.clone(),
        run_lines: vec![
            KMEMLEAK_BASELINE.to_string(),
            RUST_DEVICE_CYCLES.to_string(),
            KMEMLEAK_CHECK.to_string(),
        ],
        gpus: Vec::new(),
        devices: Vec::new(),
        expect_suites: &["rust_doctests_kernel", "rust_device_cycles"],
        echo: false,
        append: Vec::new(),
        hotplug_on: None,
    };
    let (mut suite, res) = boot_suite(ctx, tc, plan)?;
    let doctests = suite
        .tests
        .iter()
        .filter(|t| t.name.starts_with("rust_doctests_kernel."))
        .count();
    suite.notes.push(format!("{doctests} Rust doctests ran"));
    for key in ["# elapsed:", "leak check: "] {
        if let Some(l) = console_line(&res.console, key) {
            suite.notes.push(l.trim_start_matches("# ").to_string());
        }
    }
    Ok(suite)
}
