//! Suite `rust-drm`: topic/rust-drm as series/ has it, with kmemleak: its doctests, the Rust DRM
//! sample driver from userspace (`rust_drm_test`: nodes, ioctls and their errors, handles per
//! file, PRIME, FLINK and a refused import by vgem, unbinding with files open, concurrent ioctls
//! during an unbind, handlers sleeping entered or not during unbinds, unbind/bind and module
//! cycles), and kmemleak afterwards; the compile-fail cases of `xtask/compile-fail/rust-drm`.
//! Also the `drm-gem` case of `cargo xtask bench`
//! ([`bench_drm_gem`]): GEM create/close through the sample against C's vgem, on the topic's
//! build without kmemleak.

use crate::boot::modules::{build_load_order, insmod_line};
use crate::boot::{boot_suite, guest_programs, BootPlan, BOOT_TIMEOUT};
use crate::builds::kbuild::Built;
use crate::builds::{copy_images, keep_series_topic, topic_images, variant_build, Variant};
use crate::ctx::Ctx;
use crate::results::ktap::Outcome;
use crate::results::report::SuiteResult;
use crate::setup::Toolchain;
use crate::suites::rust_device::{add_boot_notes, KMEMLEAK_BASELINE, KMEMLEAK_CHECK};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// The branch under test.
const BRANCH: &str = "topic/rust-drm";

/// The C module that registers the platform devices `rust-drm-sample` and
/// `rust-drm-sample-spare`.
pub(crate) const DEVICE_MODULE: &str = "rust_driver_drm_device";
/// The Rust DRM sample driver's module.
pub(crate) const DRIVER_MODULE: &str = "rust_driver_drm";
/// C's vgem: the bench's reference, and the suite's foreign importer.
pub(crate) const VGEM_MODULE: &str = "vgem";

/// The guest command of the suite: 100 unbind/bind cycles, 20 module cycles, 4 workers racing
/// an unbind. It loads and unloads [`DRIVER_MODULE`] itself.
pub(crate) const TEST_COMMAND: &str = "rust_drm_test --module /lib/modules/rust_driver_drm.ko \
     --cycles 100 --module-cycles 20 --workers 4";

/// The bench's extra fragments: none (the suite boots the per-commit build, which has kmemleak
/// for the leak check after the cycles). kmemleak saves a stack trace for every allocation, which costs more than
/// the create/close being measured and depends on how deep the allocation's call chain is (the
/// ratio measured 0.94 with it, 1.09-1.10 without, on 2026-12-02).
const BENCH_EXTRA: &[&str] = &[];

/// The bench's iterations per driver (after 1000 of warm-up).
const BENCH_ITERATIONS: u64 = 100_000;
/// The bench's time limit per driver: two drivers and the boot stay well within the boot's
/// 300 s under TCG (100000 iterations took 1.5 s for vgem on a 6.12 TCG boot).
const BENCH_TIME_LIMIT_S: u64 = 60;

/// topic/rust-drm as series/ has it, with the extra fragments `extra`, in a slot of its own.
fn build(ctx: &Ctx, tc: &Toolchain, extra: &[&str]) -> Result<Built> {
    let kept = keep_series_topic(ctx, tc, BRANCH, extra)?;
    let built = copy_images(ctx, &kept.build.name, &kept.built)?;
    drop(kept);
    Ok(built)
}

/// The modules to load before the sample's driver, in order: the driver's dependencies, the
/// device module and vgem (the driver itself is left to the guest program, which loads it).
pub(crate) fn load_order(built: &Built) -> Result<Vec<String>> {
    let mut order = build_load_order(&built.modules, &[DRIVER_MODULE], false)?;
    for m in build_load_order(&built.modules, &[DEVICE_MODULE, VGEM_MODULE], true)? {
        if !order.contains(&m) {
            order.push(m);
        }
    }
    Ok(order)
}

/// `rust-drm`: see the module documentation.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    // What the topic's types must refuse (xtask/compile-fail/rust-drm): review R1 of v1.
    let compile_fail = super::compile_fail::run(ctx, tc, "rust-drm", "rust-drm", BRANCH)?;
    let built = topic_images(ctx, tc, BRANCH)?;
    let order = load_order(&built)?;
    let plan = BootPlan {
        name: "rust-drm",
        kernel: &built.kernel,
        programs: guest_programs(ctx, &["rust_drm_test"])?,
        modules: built.modules.clone(),
        files: Vec::new(),
        run_lines: vec![
            KMEMLEAK_BASELINE.to_string(),
            insmod_line(&order),
            TEST_COMMAND.to_string(),
            KMEMLEAK_CHECK.to_string(),
        ],
        gpus: Vec::new(),
        devices: Vec::new(),
        expect_suites: &["rust_doctests_kernel", "rust_drm_test"],
        echo: false,
        append: Vec::new(),
        hotplug_on: None,
        hotplug_cycles: None,
        faults: None,
        timeout: BOOT_TIMEOUT,
    };
    let (mut suite, res) = boot_suite(ctx, tc, plan)?;
    suite.tests.extend(compile_fail);
    // Built, not booted: the tip for arm64, and with the oldest rustc Debian gives us.
    suite.tests.push(variant_build(
        ctx,
        tc,
        BRANCH,
        Variant::Arch("arm64"),
        "rust-drm.build.arm64",
    )?);
    suite.tests.push(variant_build(
        ctx,
        tc,
        BRANCH,
        Variant::OldestRustc,
        "rust-drm.build.oldest_rustc",
    )?);
    add_boot_notes(ctx, &mut suite, &res.console)?;
    Ok(suite)
}

/// One driver's measurement from a `bench:` line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    pub iterations: u64,
    pub seconds: f64,
    pub per_second: f64,
}

/// What `drm_gem_bench` measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DrmGem {
    pub rust_drm: Rate,
    pub vgem: Rate,
    /// rust_drm's rate over vgem's.
    pub ratio: f64,
}

impl DrmGem {
    /// The entry of `bench.json` (its keys are stable: the README names them).
    pub(crate) fn json(&self, measured: &str) -> serde_json::Value {
        let round = |x: f64, digits: i32| {
            let f = 10f64.powi(digits);
            (x * f).round() / f
        };
        serde_json::json!({
            "iterations": BENCH_ITERATIONS,
            "rust_drm_iterations": self.rust_drm.iterations,
            "rust_drm_seconds": round(self.rust_drm.seconds, 3),
            "rust_drm_per_second": round(self.rust_drm.per_second, 1),
            "vgem_iterations": self.vgem.iterations,
            "vgem_seconds": round(self.vgem.seconds, 3),
            "vgem_per_second": round(self.vgem.per_second, 1),
            "ratio_rust_drm_vgem": round(self.ratio, 3),
            "measured": measured,
        })
    }
}

/// The `bench: DRIVER WHAT N in S s = R/s` line of `driver` on `console`.
fn parse_rate(console: &str, driver: &str) -> Option<Rate> {
    let prefix = format!("bench: {driver} ");
    console.lines().find_map(|l| {
        let rest = &l[l.find(&prefix)? + prefix.len()..];
        let w: Vec<&str> = rest.split_whitespace().collect();
        // WHAT N in S s = R/s
        match w[..] {
            [_, n, "in", s, "s", "=", r] => Some(Rate {
                iterations: n.parse().ok()?,
                seconds: s.parse().ok()?,
                per_second: r.strip_suffix("/s")?.parse().ok()?,
            }),
            _ => None,
        }
    })
}

/// The results of `drm_gem_bench` on `console`.
fn parse_bench(console: &str) -> Result<DrmGem> {
    let rate = |d: &str| {
        parse_rate(console, d).with_context(|| format!("no `bench: {d} ...` line on the console"))
    };
    let (rust_drm, vgem) = (rate("rust_drm")?, rate("vgem")?);
    let key = "bench: ratio rust_drm/vgem = ";
    let ratio = console
        .lines()
        .find_map(|l| l[l.find(key)? + key.len()..].trim().parse::<f64>().ok())
        .context("no `bench: ratio rust_drm/vgem = X` line on the console")?;
    Ok(DrmGem {
        rust_drm,
        vgem,
        ratio,
    })
}

/// `cargo xtask bench --case drm-gem`: boots the topic's build without kmemleak (a slot of its
/// own) once with vgem and the sample
/// loaded and runs `drm_gem_bench` ([`BENCH_ITERATIONS`] per driver); its results, and the
/// boot's console for the log.
pub(crate) fn bench_drm_gem(ctx: &Ctx, tc: &Toolchain) -> Result<(DrmGem, PathBuf)> {
    let built = build(ctx, tc, BENCH_EXTRA)?;
    let order = build_load_order(
        &built.modules,
        &[VGEM_MODULE, DEVICE_MODULE, DRIVER_MODULE],
        true,
    )?;
    let plan = BootPlan {
        name: "bench-drm-gem",
        kernel: &built.kernel,
        programs: guest_programs(ctx, &["drm_gem_bench"])?,
        modules: built.modules.clone(),
        files: Vec::new(),
        run_lines: vec![
            insmod_line(&order),
            format!(
                "drm_gem_bench --iterations {BENCH_ITERATIONS} --warmup 1000 \
                 --time-limit {BENCH_TIME_LIMIT_S}"
            ),
        ],
        gpus: Vec::new(),
        devices: Vec::new(),
        expect_suites: &["drm_gem_bench"],
        echo: false,
        append: Vec::new(),
        hotplug_on: None,
        hotplug_cycles: None,
        faults: None,
        timeout: BOOT_TIMEOUT,
    };
    let (suite, res) = boot_suite(ctx, tc, plan)?;
    let failed: Vec<String> = suite
        .tests
        .iter()
        .filter(|t| t.outcome == Outcome::Fail)
        .map(|t| format!("{}: {}", t.name, t.detail))
        .collect();
    if !failed.is_empty() {
        bail!(
            "the drm-gem boot failed (console: {}):\n{}",
            res.log.display(),
            failed.join("\n")
        );
    }
    Ok((parse_bench(&res.console)?, res.log))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guest's lines as `drm_gem_bench` prints them (KTAP diagnostics on ttyS1).
    const CONSOLE: &str = "\
[    1.0] [drm] Initialized vgem 1.0.0 for vgem on minor 0
    KTAP version 1
    # Subtest: drm_gem_bench
    1..3
    # bench: rust_drm gem_create_close 100000 in 12.345 s = 8100.4/s
    ok 1 rust_drm_gem_create_close
    # bench: vgem dumb_create_close 99840 in 10.000 s = 9984.0/s
    ok 2 vgem_dumb_create_close
    # bench: ratio rust_drm/vgem = 0.81
    ok 3 ratio
";

    #[test]
    fn bench_lines_are_parsed_into_the_json_entry() {
        let r = parse_bench(CONSOLE).unwrap();
        assert_eq!(
            r.rust_drm,
            Rate {
                iterations: 100_000,
                seconds: 12.345,
                per_second: 8100.4
            }
        );
        assert_eq!(r.vgem.iterations, 99_840);
        assert_eq!(r.ratio, 0.81);
        let j = r.json("2026-12-02");
        assert_eq!(j["rust_drm_per_second"], 8100.4);
        assert_eq!(j["vgem_per_second"], 9984.0);
        assert_eq!(j["ratio_rust_drm_vgem"], 0.81);
        assert_eq!(j["iterations"], 100_000);
        assert_eq!(j["measured"], "2026-12-02");
        let e = parse_bench(&CONSOLE.replace("bench: vgem", "x")).unwrap_err();
        assert_eq!(e.to_string(), "no `bench: vgem ...` line on the console");
        assert!(parse_bench(&CONSOLE.replace("ratio", "x")).is_err());
    }

    #[test]
    fn the_suite_runs_the_cycles_it_documents() {
        assert!(TEST_COMMAND.contains("--cycles 100 --module-cycles 20 --workers 4"));
        assert!(TEST_COMMAND.contains("--module /lib/modules/rust_driver_drm.ko"));
    }
}
