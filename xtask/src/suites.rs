//! The jobs behind `run`, `test` and `series absorb`, composed from the other modules; the
//! kernel builds they need are in [`crate::builds`].

use crate::builds::{build_base, build_series_topic, build_tree, commit_builds};
use crate::cache::Verdicts;
use crate::ctx::Ctx;
use crate::ktap::Outcome;
use crate::qemu::{self, Boot, BootResult, Gpu};
use crate::qmp::Qmp;
use crate::report::{Report, SuiteResult, TestResult};
use crate::setup::{self, Toolchain};
use crate::{check, gpu, initramfs, libtest, util};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The suites of `cargo xtask test`, in the order they run.
pub const SUITES: &[&str] = &["host", "series", "boot-base", "gpu-model", "rust-device"];

/// What `cargo xtask run` attaches as GPU.
pub enum GpuChoice {
    /// No GPU.
    None,
    /// The emulated GPU with this profile.
    Model(String),
    /// A host GPU through vfio-pci.
    Passthrough(String),
}

/// A test that passes when `problems` is empty and fails listing them otherwise.
pub(crate) fn check(name: impl Into<String>, problems: Vec<String>) -> TestResult {
    if problems.is_empty() {
        TestResult::pass(name)
    } else {
        TestResult::fail(name, problems.join("\n"))
    }
}

/// A suite with the given tests and notes.
fn suite(name: &str, tests: Vec<TestResult>, notes: Vec<String>) -> SuiteResult {
    let mut s = SuiteResult::new(name);
    s.tests = tests;
    s.notes = notes;
    s
}

/// A folder name for a branch (`staging/dev` → `staging-dev`).
pub(crate) fn slug(branch: &str) -> String {
    branch.replace('/', "-")
}

/// The names of all guest programs (`guest/src/bin/*.rs`).
fn all_guest_programs(ctx: &Ctx) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(ctx.repo.join("guest/src/bin"))?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".rs")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Builds the statically linked guest programs; returns their paths.
fn guest_programs(ctx: &Ctx, names: &[impl AsRef<str>]) -> Result<Vec<PathBuf>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let target_dir = ctx.build.join("guest-target");
    let mut c = Command::new("cargo");
    c.current_dir(&ctx.repo)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // Would take precedence over RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args(["build", "--quiet", "--release", "-p", "guest"])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .arg("--target-dir")
        .arg(&target_dir);
    for n in names {
        c.args(["--bin", n.as_ref()]);
    }
    util::run_logged(
        "cargo build (guest programs)",
        &mut c,
        &ctx.logs().join("guest.log"),
    )?;
    Ok(names
        .iter()
        .map(|n| {
            target_dir
                .join("x86_64-unknown-linux-gnu/release")
                .join(n.as_ref())
        })
        .collect())
}

/// One boot of a suite: what to boot, what the guest runs and what must be seen.
struct BootPlan<'a> {
    /// Name of the run folder and of the suite.
    name: &'a str,
    /// The kernel image.
    bzimage: &'a Path,
    /// Guest programs packed into the initramfs.
    programs: Vec<PathBuf>,
    /// Kernel modules packed into the initramfs (`/lib/modules/<name>.ko`).
    modules: Vec<PathBuf>,
    /// Command lines init runs in order.
    run_lines: Vec<String>,
    /// The GPU attached to the guest.
    gpu: Gpu,
    /// KTAP suites that must have run.
    expect_suites: &'a [&'a str],
    /// Whether to show the interesting console lines while booting.
    echo: bool,
    /// Extra kernel command-line arguments.
    append: Vec<String>,
    /// Unplug the GPU through QMP when the guest prints this line, then plug it back.
    hotplug_on: Option<&'a str>,
}

/// Boots a plan and turns what the console showed into test results: the KTAP tests, a crash
/// check and a check that the boot completed.
fn boot_suite(ctx: &Ctx, tc: &Toolchain, plan: BootPlan<'_>) -> Result<(SuiteResult, BootResult)> {
    let run_dir = ctx.build.join("run").join(plan.name);
    let initrd = run_dir.join("initramfs.cpio");
    initramfs::build(
        &tc.rootfs,
        &plan.programs,
        &plan.modules,
        &plan.run_lines,
        &initrd,
    )?;
    let boot = Boot {
        bzimage: plan.bzimage.to_path_buf(),
        initramfs: initrd,
        run_dir,
        append: plan.append.clone(),
        gpu: plan.gpu.clone(),
        devices: Vec::new(),
        timeout: Duration::from_secs(300),
    };
    util::announce(&format!("boot {} under QEMU", plan.name));
    let qmp = boot.qmp_socket();
    let mut hotplug: Option<std::thread::JoinHandle<Result<String>>> = None;
    let res = qemu::boot(&tc.rootfs, &boot, |line| {
        if plan.echo && shown_in_run(line) {
            println!("    | {line}");
        }
        if let (Some(marker), Gpu::Model(sock)) = (plan.hotplug_on, &plan.gpu) {
            if hotplug.is_none() && line.contains(marker) {
                let (qmp, sock) = (qmp.clone(), sock.clone());
                hotplug = Some(std::thread::spawn(move || unplug_replug(&qmp, &sock)));
            }
        }
    })?;
    println!(
        "    boot {}: {:.1}s, console: {}",
        plan.name,
        res.wall.as_secs_f64(),
        res.log.display()
    );
    let mut suite = results_of_boot(plan.name, &res, plan.expect_suites);
    if plan.hotplug_on.is_some() {
        let outcome = match hotplug.map(|h| h.join()) {
            None => Err("the guest never signalled it was ready for the unplug".to_string()),
            Some(Err(_)) => Err("the QMP thread panicked".to_string()),
            Some(Ok(r)) => r.map_err(|e| format!("{e:#}")),
        };
        match outcome {
            Ok(note) => {
                suite
                    .tests
                    .push(TestResult::pass("hotplug.qmp-unplug-replug"));
                suite.notes.push(note);
            }
            Err(e) => suite
                .tests
                .push(TestResult::fail("hotplug.qmp-unplug-replug", e)),
        }
    }
    Ok((suite, res))
}

/// Unplugs `gpu0` through QMP, waits for QEMU to confirm, and plugs it back.
fn unplug_replug(qmp: &Path, socket: &Path) -> Result<String> {
    let mut q = Qmp::connect(qmp, Duration::from_secs(10))?;
    let t = Instant::now();
    q.execute("device_del", json!({"id": "gpu0"}))?;
    q.wait_event("DEVICE_DELETED", Duration::from_secs(30))?;
    let unplug = t.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let args = json!({
        "driver": "vfio-user-pci", "id": "gpu0", "bus": "rp1",
        "socket": {"type": "unix", "path": socket.display().to_string()}
    });
    q.execute("device_add", args)?;
    Ok(format!(
        "QMP device_del → DEVICE_DELETED in {:.3}s; device_add done",
        unplug.as_secs_f64()
    ))
}

/// Console lines `cargo xtask run` shows: our drivers and samples, guest programs, suite results,
/// failures and crashes (not every passing case or KTAP header).
fn shown_in_run(line: &str) -> bool {
    const KERNEL_KEYS: &[&str] = &[
        "nova", "sample", "# Totals", "not ok", "Oops", "BUG:", "WARNING:", "panic",
    ];
    let (kernel, text) = match line.strip_prefix('[') {
        Some(rest) => (true, rest.split_once("] ").map_or(rest, |(_, t)| t)),
        None => (false, line),
    };
    let t = text.trim_start();
    let indented = t.len() != text.len();
    if t.starts_with("not ok") {
        return true;
    }
    let header =
        t.starts_with("KTAP version") || t.starts_with("# Subtest") || t.starts_with("1..");
    if header || t.contains("ommand line:") {
        return false;
    }
    if !indented && t.starts_with("ok ") {
        return true;
    }
    if kernel {
        !indented && KERNEL_KEYS.iter().any(|k| t.contains(k))
    } else {
        !(indented && t.starts_with("ok "))
    }
}

/// Test results of one boot (pure: unit-tested on recorded logs).
pub fn results_of_boot(name: &str, res: &BootResult, expect_suites: &[&str]) -> SuiteResult {
    // Init's own lines echo command lines (which may name e.g. kmemleak): not kernel messages.
    let kernel_and_programs: String = res
        .console
        .lines()
        .filter(|l| !l.starts_with("nova-init: "))
        .flat_map(|l| [l, "\n"])
        .collect();
    let mut suite = SuiteResult::from_console(name, &kernel_and_programs);
    for s in expect_suites {
        let prefix = format!("{s}.");
        let ran = suite.tests.iter().any(|t| t.name.starts_with(&prefix));
        let problem = format!("KTAP suite `{s}` did not run (see {})", res.log.display());
        let problems = if ran { vec![] } else { vec![problem] };
        suite
            .tests
            .push(check(format!("boot.suite-ran.{s}"), problems));
    }
    let mut problems = Vec::new();
    if res.timed_out {
        problems.push(format!("timed out after {:.0}s", res.wall.as_secs_f64()));
    } else if res.exit != Some(0) {
        problems.push(format!("QEMU exited with {:?}", res.exit));
    }
    if !res.console.contains("nova-init: done") {
        problems.push("init did not finish (no `nova-init: done` on the console)".into());
    }
    for l in res
        .console
        .lines()
        .filter(|l| l.starts_with("nova-init: exit "))
    {
        if !l.starts_with("nova-init: exit 0 ") {
            problems.push(format!("guest program failed: {l}"));
        }
    }
    suite.tests.push(check("boot.completed", problems));
    suite.notes.push(format!("console: {}", res.log.display()));
    suite
}

/// `cargo xtask run`.
pub fn run(ctx: &Ctx, gpu: GpuChoice, debug: bool, exec: &[String]) -> Result<()> {
    let tc = setup::setup(ctx)?;
    let (branch, built) = build_tree(ctx, &tc, debug)?;
    println!(
        "    built {branch}{}",
        if built.rebuilt { "" } else { " (up to date)" }
    );
    let (mut programs, mut run_lines, mut model) = (Vec::new(), exec.to_vec(), None);
    if !exec.is_empty() {
        programs = guest_programs(ctx, &all_guest_programs(ctx)?)?;
    }
    let gpu = match gpu {
        GpuChoice::None => Gpu::None,
        GpuChoice::Passthrough(p) => Gpu::Passthrough(p),
        GpuChoice::Model(c) => {
            let p = gpu::profile(&c)?;
            let bin = gpu::build_model(&ctx.repo, &ctx.logs())?;
            let m = gpu::Model::start(&bin, p.name, &ctx.build.join("run").join(slug(&branch)))?;
            println!(
                "    gpu-model {} ready in {:.1} ms ({})",
                p.name,
                ms(m.start_time),
                m.log.display()
            );
            if exec.is_empty() {
                programs = guest_programs(ctx, &["gpu_probe"])?;
                run_lines = vec![gpu::probe_command(p, " --measure-reads 2000")];
            }
            let sock = m.socket.clone();
            model = Some(m);
            Gpu::Model(sock)
        }
    };
    let name = slug(&branch);
    let plan = BootPlan {
        name: &name,
        bzimage: &built.bzimage,
        programs,
        modules: built.modules.clone(),
        run_lines,
        gpu,
        expect_suites: &[],
        echo: true,
        append: Vec::new(),
        hotplug_on: None,
    };
    let (suite, _) = boot_suite(ctx, &tc, plan)?;
    drop(model);
    let report = Report {
        suites: vec![suite],
    };
    report.print_table();
    println!("{}", report.final_line());
    if !report.success() {
        bail!("the boot of {branch} reported failures");
    }
    Ok(())
}

/// `cargo xtask test`: runs the selected suites (all when none is named).
pub fn test(ctx: &Ctx, names: &[String]) -> Result<()> {
    for n in names {
        if !SUITES.contains(&n.as_str()) {
            bail!("unknown suite `{n}` (suites: {})", SUITES.join(", "));
        }
    }
    let selected: Vec<&str> = SUITES
        .iter()
        .copied()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s))
        .collect();
    let start = Instant::now();
    let mut report = Report { suites: Vec::new() };
    let mut tc = None;
    for s in selected {
        let t = Instant::now();
        let result = match s {
            "host" => host_suite(ctx),
            _ => {
                if tc.is_none() {
                    tc = Some(setup::setup(ctx)?);
                }
                let tc = tc.as_ref().expect("set above");
                match s {
                    "series" => series_suite(ctx, tc),
                    "boot-base" => boot_base_suite(ctx, tc),
                    "gpu-model" => gpu_model_suite(ctx, tc),
                    "rust-device" => rust_device_suite(ctx, tc),
                    _ => unreachable!("checked above"),
                }
            }
        };
        let mut result = result.unwrap_or_else(|e| {
            suite(
                s,
                vec![TestResult::fail(format!("{s}.run"), format!("{e:#}"))],
                vec![],
            )
        });
        result.duration = Some(t.elapsed());
        report.suites.push(result);
    }
    report.print_table();
    let json = ctx.results().join("summary.json");
    report.write_json(&json)?;
    println!(
        "results: {} ({:.0}s)",
        json.display(),
        start.elapsed().as_secs_f64()
    );
    println!("{}", report.final_line());
    if !report.success() {
        std::process::exit(1);
    }
    Ok(())
}

/// Runs `c` as on a machine with no configuration of its user: an empty HOME (`home`), no
/// global or system git configuration, the C locale. Cargo and rustup keep their own homes, so
/// the toolchain and the crate cache stay the ones in use.
fn hermetic(c: &mut Command, home: &std::path::Path) -> Result<()> {
    util::remove_dir(home)?;
    std::fs::create_dir_all(home)?;
    let user_home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    for (var, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        let dir = std::env::var_os(var)
            .map(std::path::PathBuf::from)
            .or_else(|| user_home.as_ref().map(|h| h.join(default)));
        if let Some(dir) = dir {
            c.env(var, dir);
        }
    }
    c.env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C");
    Ok(())
}

/// `host`: the workspace's cargo tests, one result per test, run [`hermetic`]ally.
fn host_suite(ctx: &Ctx) -> Result<SuiteResult> {
    util::announce("host: cargo test --workspace");
    let log = ctx.logs().join("host-tests.log");
    let _ = std::fs::remove_file(&log);
    let mut c = Command::new("cargo");
    c.current_dir(&ctx.repo)
        .args(["test", "--workspace", "--no-fail-fast", "--color", "never"]);
    let home = ctx.build.join("host-tests-home");
    hermetic(&mut c, &home)?;
    let ok = util::run_logged("cargo test", &mut c, &log).is_ok();
    let text = std::fs::read_to_string(&log).context("host test log")?;
    let mut tests = libtest::parse(&text, ok);
    if !ok && tests.iter().all(|t| t.outcome != Outcome::Fail) {
        tests.push(TestResult::fail(
            "host.cargo-test",
            format!("cargo test failed: {}", log.display()),
        ));
    }
    Ok(suite(
        "host",
        tests,
        vec![format!("log: {}", log.display())],
    ))
}

/// `series`: series check, one result per check.
fn series_suite(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    util::announce("series: series check");
    let results = check::run(&ctx.repo, &ctx.build, tc, &Verdicts::new(ctx))?;
    let applies = results
        .iter()
        .any(|r| r.name == "applies" && r.problems.is_empty());
    let mut tests: Vec<TestResult> = results
        .into_iter()
        .map(|r| check(format!("series.{}", r.name), r.problems))
        .collect();
    if applies {
        util::announce("series: every commit builds");
        tests.extend(commit_builds(ctx, tc)?);
    }
    Ok(suite("series", tests, vec![]))
}

/// `boot-base`: the base kernel with the base fragment runs all its Rust doctests.
fn boot_base_suite(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    let built = build_base(ctx, tc)?;
    let plan = BootPlan {
        name: "boot-base",
        bzimage: &built.bzimage,
        programs: Vec::new(),
        modules: Vec::new(),
        run_lines: Vec::new(),
        gpu: Gpu::None,
        expect_suites: &["rust_doctests_kernel"],
        echo: false,
        append: Vec::new(),
        hotplug_on: None,
    };
    let (suite, _) = boot_suite(ctx, tc, plan)?;
    Ok(suite)
}

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
fn rust_device_suite(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
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
        gpu: Gpu::None,
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

/// Profiles the `gpu-model` suite boots: one Turing, GH100, one Blackwell, and a dead device.
const GPU_SUITE_PROFILES: &[&str] = &["tu102", "gh100", "gb202", "dead"];
/// The profile of the hot-unplug run.
const HOTPLUG_PROFILE: &str = "gh100";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The first console line containing `key`, for the suite's measurements.
fn console_line<'a>(console: &'a str, key: &str) -> Option<&'a str> {
    console
        .lines()
        .find(|l| !l.starts_with("nova-init: ") && l.contains(key))
        .map(str::trim)
}

/// `gpu-model`: the base kernel boots with the emulated GPU per profile; the guest probe checks
/// what sysfs and BAR0 show against the profile; one run unplugs and re-plugs the GPU via QMP.
fn gpu_model_suite(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    let built = build_base(ctx, tc)?;
    let bin = gpu::build_model(&ctx.repo, &ctx.logs())?;
    let programs = guest_programs(ctx, &["gpu_probe"])?;
    let mut all = SuiteResult::new("gpu-model");
    let runs = GPU_SUITE_PROFILES
        .iter()
        .map(|p| (*p, false))
        .chain([(HOTPLUG_PROFILE, true)]);
    for (name, hotplug) in runs {
        let p = gpu::profile(name)?;
        let run = format!("gpu-{name}{}", if hotplug { "-hotplug" } else { "" });
        let model = gpu::Model::start(&bin, name, &ctx.build.join("run").join(&run))?;
        let ready = model.start_time;
        let (probe, suites, marker) = if hotplug {
            (
                " --loop-until-gone 60",
                &["gpu_probe_hotplug"][..],
                Some("waiting for unplug"),
            )
        } else {
            (" --measure-reads 2000", &["gpu_probe"][..], None)
        };
        let plan = BootPlan {
            name: &run,
            bzimage: &built.bzimage,
            programs: programs.clone(),
            modules: Vec::new(),
            run_lines: vec![gpu::probe_command(p, probe)],
            gpu: Gpu::Model(model.socket.clone()),
            expect_suites: suites,
            echo: false,
            append: vec!["kunit.enable=0".into()],
            hotplug_on: marker,
        };
        let (mut suite, res) = boot_suite(ctx, tc, plan)?;
        // The guest must really have talked to this model: sessions and BAR0 reads counted.
        let stats = model
            .control("stats")
            .unwrap_or_else(|e| format!("error: {e:#}"));
        let counter = |k: &str| -> u64 {
            stats
                .split_whitespace()
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
                .unwrap_or(0)
        };
        // QEMU resets the device each time it realizes it: once per plug.
        let want_resets = if hotplug { 2 } else { 1 };
        let mut problems = Vec::new();
        if counter("resets") < want_resets || counter("bar0_reads") == 0 {
            problems.push(format!(
                "expected >= {want_resets} reset(s) and BAR0 reads: {stats}"
            ));
        }
        suite.tests.push(check("model.saw-guest", problems));
        suite.notes.push(format!("model {stats}"));
        drop(model);
        all.notes
            .push(format!("{run}: model ready in {:.1} ms", ms(ready)));
        for key in [
            "first BAR0 read at uptime",
            "reads/s",
            "loop: gone",
            "loop: ",
        ] {
            if let Some(l) = console_line(&res.console, key) {
                all.notes.push(format!("{run}: {l}"));
            }
        }
        all.notes
            .extend(suite.notes.into_iter().map(|n| format!("{run}: {n}")));
        for mut t in suite.tests {
            t.name = format!("{run}:{}", t.name);
            all.tests.push(t);
        }
    }
    all.notes.dedup();
    Ok(all)
}

/// `series absorb`: folds direct edits of tip-view files into the commits that own the lines.
pub fn absorb(ctx: &Ctx, tc: &Toolchain) -> Result<()> {
    let paths = crate::absorb::absorb(&ctx.repo, &ctx.build, &tc.base_repo)?;
    if paths.is_empty() {
        println!("no tip-view file was edited directly: nothing to absorb");
        return Ok(());
    }
    for p in &paths {
        println!("absorbed {p}");
    }
    println!(
        "series/ and the tip view are updated; run `cargo xtask tree` to bring build/linux along"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_shows_suite_results_not_every_passing_case() {
        assert!(shown_in_run("[    0.7] ok 1 rust_doctests_kernel"));
        assert!(!shown_in_run(
            "[    0.7]     ok 3 rust_doctest_kernel_sync_rs_0"
        ));
        assert!(shown_in_run(
            "[    0.7]     not ok 3 rust_doctest_kernel_sync_rs_0"
        ));
        assert!(shown_in_run("[    1.2] nova 0000:01:00.0: GH100 rev A1"));
        assert!(shown_in_run("nova-init: done"));
        assert!(!shown_in_run(
            "[    0.0] Kernel command line: console=ttyS0 panic=-1"
        ));
        assert!(shown_in_run(
            "    # first BAR0 read at uptime 1.2 s: BOOT0 0x180000a1"
        ));
        assert!(!shown_in_run("    ok 2 device_id"));
        assert!(!shown_in_run("    KTAP version 1"));
        assert!(shown_in_run("ok 1 gpu_probe"));
        assert!(!shown_in_run(
            "[    0.66] rust_doctests_kernel: vec had 2 elements"
        ));
        assert!(shown_in_run(
            "[    2.0] WARNING: CPU: 0 PID: 1 at lib/foo.c:1"
        ));
        assert!(!shown_in_run("[    0.1] ACPI: RSDP 0x00000000000F5EC0"));
        assert!(!shown_in_run(
            "[    0.6]     # rust_doctest_kernel_uaccess_rs_0.location: x"
        ));
    }
}
