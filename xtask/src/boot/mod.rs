//! One boot of a suite or of `cargo xtask run`: the plan (image, guest programs, modules, what
//! init runs, the GPU, what must be seen), the boot under QEMU, and its test results.

pub mod faults;
pub mod firmware;
pub mod gpu;
pub mod hotplug;
pub mod initramfs;
pub mod modules;
pub mod qemu;
pub mod qmp;

use crate::ctx::Ctx;
use crate::results::report::{check, SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::util;
use anyhow::{Context, Result};
use firmware::GuestFile;
use hotplug::{Hotplug, QmpPlug, GONE_TIMEOUT};
use qemu::{Boot, BootResult, Gpu};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The names of all guest programs (`guest/src/bin/*.rs`).
pub fn all_guest_programs(ctx: &Ctx) -> Result<Vec<String>> {
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
pub fn guest_programs(ctx: &Ctx, names: &[impl AsRef<str>]) -> Result<Vec<PathBuf>> {
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    build_static(ctx, "guest", &names, "guest programs")
}

/// The package of [`NOVA_INFO`] (`uapi/nova`).
const NOVA_PACKAGE: &str = "nova";
/// The command every guest has: lists the Nova devices, like `nvidia-smi -L`.
pub const NOVA_INFO: &str = "nova-info";

/// Builds [`NOVA_INFO`] like the guest programs (statically linked, the same target folder);
/// returns its path.
pub fn nova_info(ctx: &Ctx) -> Result<PathBuf> {
    let built = build_static(ctx, NOVA_PACKAGE, &[NOVA_INFO], NOVA_INFO).with_context(|| {
        format!("every guest gets `{NOVA_INFO}`, built from package `{NOVA_PACKAGE}` (uapi/nova)")
    })?;
    built.into_iter().next().context("no nova-info built")
}

/// Builds binaries `bins` of workspace package `package` statically linked for the guest, in
/// the guest programs' target folder (logged as `label`); returns their paths.
fn build_static(ctx: &Ctx, package: &str, bins: &[&str], label: &str) -> Result<Vec<PathBuf>> {
    if bins.is_empty() {
        return Ok(Vec::new());
    }
    let target_dir = ctx.build.join("guest-target");
    let mut c = Command::new("cargo");
    c.current_dir(&ctx.repo)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        // Would take precedence over RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args(["build", "--quiet", "--release", "-p", package])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .arg("--target-dir")
        .arg(&target_dir);
    for n in bins {
        c.args(["--bin", n]);
    }
    let log = match package {
        "guest" => ctx.logs().join("guest.log"),
        other => ctx.logs().join(format!("guest-{other}.log")),
    };
    util::run_logged(&format!("cargo build ({label})"), &mut c, &log)?;
    Ok(bins
        .iter()
        .map(|n| target_dir.join("x86_64-unknown-linux-gnu/release").join(n))
        .collect())
}

/// `programs` with [`NOVA_INFO`] added (built by `build`) unless one of them is it already.
fn with_nova_info(
    mut programs: Vec<PathBuf>,
    build: impl FnOnce() -> Result<PathBuf>,
) -> Result<Vec<PathBuf>> {
    if !programs
        .iter()
        .any(|p| p.file_name() == Some(NOVA_INFO.as_ref()))
    {
        programs.push(build()?);
    }
    Ok(programs)
}

/// One boot of a suite: what to boot, what the guest runs and what must be seen.
pub struct BootPlan<'a> {
    /// Name of the run folder and of the suite.
    pub name: &'a str,
    /// The kernel image.
    pub kernel: &'a Path,
    /// Guest programs packed into the initramfs ([`NOVA_INFO`] is added to every boot).
    pub programs: Vec<PathBuf>,
    /// Kernel modules packed into the initramfs (`/lib/modules/<name>.ko`).
    pub modules: Vec<PathBuf>,
    /// Other files and links packed into the initramfs at their absolute guest paths (e.g.
    /// the GSP firmware of [`firmware::gsp_firmware`]).
    pub files: Vec<GuestFile>,
    /// Command lines init runs in order.
    pub run_lines: Vec<String>,
    /// The GPUs attached to the guest.
    pub gpus: Vec<Gpu>,
    /// Other QEMU devices (`-device` values, e.g. `pci-testdev`).
    pub devices: Vec<String>,
    /// KTAP suites that must have run.
    pub expect_suites: &'a [&'a str],
    /// Whether to show the interesting console lines while booting.
    pub echo: bool,
    /// Extra kernel command-line arguments.
    pub append: Vec<String>,
    /// Unplug the first GPU through QMP each time the guest prints this line, then plug it back
    /// (one cycle per line, see [`hotplug`]).
    pub hotplug_on: Option<&'a str>,
    /// With [`Self::hotplug_on`]: how many cycles must be done (test `hotplug.cycles`).
    pub hotplug_cycles: Option<usize>,
    /// The models to fault when the guest asks (see [`faults`]).
    pub faults: Option<faults::FaultPlan>,
    /// How long the boot may take before QEMU is stopped ([`BOOT_TIMEOUT`] but for the debug
    /// kernel's long runs).
    pub timeout: Duration,
}

/// How long a boot may take.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// Boots a plan and turns what the console showed into test results: the KTAP tests, a crash
/// check and a check that the boot completed.
pub fn boot_suite(
    ctx: &Ctx,
    tc: &Toolchain,
    plan: BootPlan<'_>,
) -> Result<(SuiteResult, BootResult)> {
    let run_dir = ctx.build.join("run").join(plan.name);
    let initrd = run_dir.join("initramfs.cpio");
    let programs = with_nova_info(plan.programs.clone(), || nova_info(ctx))?;
    initramfs::build(
        &tc.rootfs,
        &programs,
        &plan.modules,
        &plan.files,
        &plan.run_lines,
        &initrd,
    )?;
    let boot = Boot {
        kernel: plan.kernel.to_path_buf(),
        initramfs: initrd,
        run_dir,
        append: plan.append.clone(),
        gpus: plan.gpus.clone(),
        devices: plan.devices.clone(),
        timeout: plan.timeout,
    };
    let (accel, why) = qemu::accelerator();
    util::announce(&format!("boot {} under QEMU ({accel}: {why})", plan.name));
    let mut hotplug = match (plan.hotplug_on, plan.gpus.first()) {
        (Some(marker), Some(Gpu::Model(sock))) => {
            let plug = QmpPlug::new(boot.qmp_socket(), sock.clone());
            Some(Hotplug::start(marker, Box::new(plug), GONE_TIMEOUT))
        }
        _ => None,
    };
    let fault_requests = plan.faults.as_ref().map_or(0, |f| f.requests);
    let mut faults = plan.faults.map(|f| faults::Faults::start(f.models));
    let res = qemu::boot(&tc.rootfs, &boot, |line| {
        if plan.echo && shown_in_run(line) {
            println!("    | {line}");
        }
        if let Some(h) = hotplug.as_mut() {
            h.on_line(line);
        }
        if let Some(f) = faults.as_mut() {
            f.on_line(line);
        }
    })?;
    println!(
        "    boot {}: {:.1}s, console: {}",
        plan.name,
        res.wall.as_secs_f64(),
        res.log.display()
    );
    let mut suite = results_of_boot(plan.name, &res, plan.expect_suites);
    for t in &mut suite.tests {
        t.log = Some(res.log.clone());
    }
    match hotplug {
        Some(h) => {
            let (tests, note) = h.finish(plan.hotplug_cycles);
            suite.tests.extend(tests);
            suite.notes.push(note);
        }
        None if plan.hotplug_on.is_some() => suite.tests.push(TestResult::fail(
            "hotplug.qmp-unplug-replug",
            "hot-unplug needs an emulated GPU as gpu0",
        )),
        None => {}
    }
    if let Some(f) = faults {
        let (test, note) = f.finish(fault_requests);
        suite.tests.push(test);
        suite.notes.push(note);
    }
    Ok((suite, res))
}

/// Guest commands that load and unload each module of `kos`, then print the kernel's lines
/// that name it (as `dmesg: ...`, so that they are shown as program output).
pub fn load_unload_lines(kos: &[PathBuf]) -> Vec<String> {
    kos.iter()
        .map(|ko| {
            let file = ko.file_name().unwrap_or_default().to_string_lossy();
            let name = file.trim_end_matches(".ko");
            format!(
                "insmod /lib/modules/{file} && rmmod {name} && \
                 dmesg | grep '{name}: ' | sed 's/^\\[[^]]*\\] /dmesg: /'"
            )
        })
        .collect()
}

/// Boots `kernel` with `kos` packed, loads and unloads each, then runs `more` (checks).
pub fn boot_modules(
    ctx: &Ctx,
    tc: &Toolchain,
    kernel: &Path,
    name: &str,
    kos: &[PathBuf],
    more: &[String],
    echo: bool,
) -> Result<(SuiteResult, BootResult)> {
    let mut run_lines = load_unload_lines(kos);
    run_lines.extend(more.iter().cloned());
    let plan = BootPlan {
        name,
        kernel,
        programs: Vec::new(),
        modules: kos.to_vec(),
        files: Vec::new(),
        run_lines,
        gpus: Vec::new(),
        devices: Vec::new(),
        // The kernel's doctests run too: the boot's KTAP, and a check of this build.
        expect_suites: &["rust_doctests_kernel"],
        echo,
        append: Vec::new(),
        hotplug_on: None,
        hotplug_cycles: None,
        faults: None,
        timeout: BOOT_TIMEOUT,
    };
    boot_suite(ctx, tc, plan)
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

/// Milliseconds of `d`, for measurements.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The first console line containing `key`, for the suite's measurements.
pub fn console_line<'a>(console: &'a str, key: &str) -> Option<&'a str> {
    console
        .lines()
        .find(|l| !l.starts_with("nova-init: ") && l.contains(key))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_loaded_unloaded_and_their_lines_shown() {
        let lines = load_unload_lines(&["/b/rust_hello.ko".into()]);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("insmod /lib/modules/rust_hello.ko && rmmod rust_hello"));
        assert!(lines[0].contains("grep 'rust_hello: '"), "{}", lines[0]);
    }

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

    /// `cargo xtask run`'s default boot: Nova's probe, refusal and removal lines, and what
    /// nova-info prints, are shown.
    #[test]
    fn run_shows_nova_s_lines_and_nova_info() {
        for l in [
            "[    1.2] nova 0000:01:00.0: NVIDIA GH100 (Hopper), revision A1, BAR1 128 GiB: DRM \
             device registered",
            "[    1.2] [drm] Initialized nova 0.0.0 for 0000:01:00.0 on minor 0",
            "[    1.2] nova 0000:02:00.0: chipset 0x140 (Volta), revision A1: not \
             supported by nova; use nouveau",
            "[    1.2] nova 0000:03:00.0: missing firmware nvidia/tu102/gsp/booter_load-570.144.bin \
             (error -2)",
            "[    1.4] nova 0000:01:00.0: unbind",
            "[    1.4] nova: DRM device released",
            "GPU 0: NVIDIA Corporation GH100 [H100 SXM5 80GB] (rev a1), PCI 0000:01:00.0, BAR1 128 GiB, nodes card0 \
             renderD128",
            "no Nova devices found",
            "nova-init: run nova-info",
        ] {
            assert!(shown_in_run(l), "{l}");
        }
        assert!(!shown_in_run(
            "[    0.5] pci 0000:01:00.0: [10de:2330] type 00 class 0x030200"
        ));
    }

    #[test]
    fn nova_info_is_added_once() {
        let mut built = 0;
        let p = with_nova_info(vec!["/t/gpu_probe".into()], || {
            built += 1;
            Ok("/t/nova-info".into())
        })
        .unwrap();
        assert_eq!(p, [PathBuf::from("/t/gpu_probe"), "/t/nova-info".into()]);
        let p = with_nova_info(p, || panic!("built twice")).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(built, 1);
    }
}
