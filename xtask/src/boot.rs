//! One boot of a suite or of `cargo xtask run`: the plan (image, guest programs, modules, what
//! init runs, the GPU, what must be seen), the boot under QEMU, and its test results.

use crate::ctx::Ctx;
use crate::qemu::{self, Boot, BootResult, Gpu};
use crate::qmp::Qmp;
use crate::report::{check, SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::{initramfs, util};
use anyhow::{Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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
pub struct BootPlan<'a> {
    /// Name of the run folder and of the suite.
    pub name: &'a str,
    /// The kernel image.
    pub bzimage: &'a Path,
    /// Guest programs packed into the initramfs.
    pub programs: Vec<PathBuf>,
    /// Kernel modules packed into the initramfs (`/lib/modules/<name>.ko`).
    pub modules: Vec<PathBuf>,
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
    /// Unplug the first GPU through QMP when the guest prints this line, then plug it back.
    pub hotplug_on: Option<&'a str>,
}

/// Boots a plan and turns what the console showed into test results: the KTAP tests, a crash
/// check and a check that the boot completed.
pub fn boot_suite(
    ctx: &Ctx,
    tc: &Toolchain,
    plan: BootPlan<'_>,
) -> Result<(SuiteResult, BootResult)> {
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
        gpus: plan.gpus.clone(),
        devices: plan.devices.clone(),
        timeout: Duration::from_secs(300),
    };
    let (accel, why) = qemu::accelerator();
    util::announce(&format!("boot {} under QEMU ({accel}: {why})", plan.name));
    let qmp = boot.qmp_socket();
    let mut hotplug: Option<std::thread::JoinHandle<Result<String>>> = None;
    let (gone_tx, gone_rx) = std::sync::mpsc::channel::<()>();
    let mut gone_rx = Some(gone_rx);
    let res = qemu::boot(&tc.rootfs, &boot, |line| {
        if plan.echo && shown_in_run(line) {
            println!("    | {line}");
        }
        if let (Some(marker), Some(Gpu::Model(sock))) = (plan.hotplug_on, plan.gpus.first()) {
            if hotplug.is_none() && line.contains(marker) {
                let (qmp, sock) = (qmp.clone(), sock.clone());
                let gone = gone_rx.take().expect("taken once");
                hotplug = Some(std::thread::spawn(move || unplug_replug(&qmp, &sock, gone)));
            }
            if line.contains(GUEST_SAW_UNPLUG) {
                let _ = gone_tx.send(());
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

/// What the guest prints once it has seen the GPU go (gpu_probe's hot-unplug loop).
const GUEST_SAW_UNPLUG: &str = "loop: gone";

/// Unplugs `gpu0` through QMP, waits for QEMU to confirm and for the guest to say it saw the
/// device go (`gone`), and plugs it back.
fn unplug_replug(qmp: &Path, socket: &Path, gone: std::sync::mpsc::Receiver<()>) -> Result<String> {
    let mut q = Qmp::connect(qmp, Duration::from_secs(10))?;
    let t = Instant::now();
    q.execute("device_del", json!({"id": "gpu0"}))?;
    q.wait_event("DEVICE_DELETED", Duration::from_secs(30))?;
    let unplug = t.elapsed();
    gone.recv_timeout(Duration::from_secs(30))
        .context("the guest did not report the unplugged GPU gone within 30 s")?;
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
