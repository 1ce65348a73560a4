//! `cargo xtask bench`: measures the harness's budgets (README's table) and writes
//! `build/results/bench.json`.
//!
//! Cases (each timed as the wall time of the commands a user or CI runs):
//! - `warm-test`: `cargo xtask test` in this clone with nothing changed (after one untimed run
//!   that makes it warm);
//! - `edit-loop`: one line added to a file under `rust/kernel` in `build/linux`, then
//!   `cargo xtask run` to the parsed result (the edit is taken back afterwards, untimed);
//! - `ci-warm`: CI's case, a fresh clone of this repository's HEAD running `.ci/run` with the
//!   cache as it is;
//! - `ci-one-patch`: CI's case after one patch in the middle of a topic changed: in a fresh
//!   clone, a line is added to a file of a middle patch through `series absorb`, then `.ci/run`.
//!
//! One case measures the guest rather than the tool: `drm-gem` boots topic/rust-drm (the
//! build of suite `rust-drm`, so no kernel of its own) with vgem and the Rust DRM sample loaded
//! and runs `drm_gem_bench`: GEM objects created and closed per second through each driver and
//! the ratio of the two rates (see `suites::rust_drm::bench_drm_gem`).
//!
//! One case runs only when named (`--case cold`, ~42 min here): a fresh machine's CI, measured
//! as `.ci/run` in a fresh clone of HEAD with an empty cache folder (`--cold-cache DIR`, which
//! must be empty or absent; the default is `build/bench/cold-cache`) and cargo's build output
//! in it, so that setup downloads and builds everything again: the Debian packages for the
//! root filesystem and QEMU, rust-src, bindgen, b4, the kernel source, every kernel build and
//! every check. What it cannot redo is the host's own packages (installed into the system by
//! the first setup on the machine: 8 s here, with Debian's archive near). Pointing
//! `--cold-cache` at the machine's real cache, emptied, leaves that cache warm for CI.

use crate::ctx::Ctx;
use crate::series::topics::Series;
use crate::{series::tree, util};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The cases, in the order they run, with their budgets in seconds.
pub const CASES: &[(&str, u64)] = &[
    ("warm-test", 15),
    ("edit-loop", 7),
    ("ci-warm", 5 * 60),
    ("ci-one-patch", 20 * 60),
];

/// The cases run only when named, with their budgets in seconds. The harness issue's cold
/// budget was 40 min before the v2 respins' extra builds (PCI=n, PCI_MSI=n, arm64, the oldest
/// rustc, compile-fail cases) and is 60 min with them, which are in.
pub const ON_REQUEST: &[(&str, u64)] = &[("cold", 60 * 60)];

/// The cases that measure something other than a budget's wall time, after [`CASES`].
pub const MEASUREMENTS: &[&str] = &["drm-gem"];

/// Runs `cmd` to completion, its output appended to `log`; fails when it fails.
fn timed(what: &str, cmd: &mut Command, log: &Path) -> Result<f64> {
    let t = Instant::now();
    util::run_logged(what, cmd, log)?;
    Ok(t.elapsed().as_secs_f64())
}

/// `cargo xtask ARGS` of the repository at `repo`.
fn xtask(repo: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(repo).arg("xtask").args(args);
    c
}

/// How many times each edit is timed (the median is kept).
const EDIT_ROUNDS: usize = 3;
/// The kernel-crate edit's budget, in seconds (the Nova edit's is the case's).
const KERNEL_CRATE_EDIT_BUDGET: u64 = 10;

/// The median of `v` (not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `EDIT_ROUNDS` rounds of: a new line appended to `file` (each round another, so that
/// it must be rebuilt), then `cmd`; the file is put back afterwards, whatever happened. Returns
/// the median.
fn timed_edits(
    what: &str,
    file: &Path,
    mut cmd: impl FnMut() -> Command,
    log: &Path,
) -> Result<f64> {
    let before = std::fs::read(file).with_context(|| format!("no {}", file.display()))?;
    let mut times = Vec::new();
    let mut outcome = Ok(());
    for round in 0..EDIT_ROUNDS {
        let mut edited = before.clone();
        edited.extend_from_slice(format!("// bench: edit {round}\n").as_bytes());
        std::fs::write(file, &edited)?;
        match timed(&format!("{what} (edit {round})"), &mut cmd(), log) {
            Ok(t) => times.push(t),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    std::fs::write(file, &before)?;
    outcome?;
    println!(
        "    {what}: {}",
        times
            .iter()
            .map(|t| format!("{t:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(median(times))
}

/// `edit-loop`: in the kernel tree as `cargo xtask run` builds it (nova/stub after
/// materialising), the median of [`EDIT_ROUNDS`] timed rounds of a line added to Nova
/// (`drivers/gpu/drm/nova/driver.rs`, a module) then `cargo xtask run`, the same for the kernel
/// crate (`rust/kernel/lib.rs`), and, side by side on the same tree with the same fragments as
/// its kunitconfig, the kernel-crate edit through the kernel's own `kunit.py run`. Returns the
/// Nova edit's time and the others (for bench.json).
fn edit_loop(ctx: &Ctx, log: &Path) -> Result<(f64, serde_json::Value)> {
    util::run_logged(
        "warm-up: cargo xtask run",
        &mut xtask(&ctx.repo, &["run"]),
        log,
    )?;
    let tree = ctx.tree();
    let run = || xtask(&ctx.repo, &["run"]);
    let nova = timed_edits(
        "cargo xtask run, Nova edited",
        &tree.join("drivers/gpu/drm/nova/driver.rs"),
        run,
        log,
    )?;
    let kernel_crate = timed_edits(
        "cargo xtask run, kernel crate edited",
        &tree.join("rust/kernel/lib.rs"),
        run,
        log,
    )?;
    util::run_logged("restore: cargo xtask run", &mut run(), log)?;
    let tc = crate::setup::existing(ctx)?;
    let kunit = KunitPy::new(ctx, &tc)?;
    util::run_logged("warm-up: kunit.py run", &mut kunit.run(), log)?;
    let kunit_time = timed_edits(
        "kunit.py run, kernel crate edited",
        &tree.join("rust/kernel/lib.rs"),
        || kunit.run(),
        log,
    )?;
    util::run_logged("restore: kunit.py run", &mut kunit.run(), log)?;
    println!(
        "    kernel-crate edit: {kernel_crate:.1} s (budget {KERNEL_CRATE_EDIT_BUDGET} s), \
         kunit.py {kunit_time:.1} s: {:.2}x as fast",
        kunit_time / kernel_crate
    );
    let round = |t: f64| (t * 10.0).round() / 10.0;
    Ok((
        nova,
        serde_json::json!({
            "nova_edit_seconds": round(nova),
            "kernel_crate_edit_seconds": round(kernel_crate),
            "kernel_crate_budget_seconds": KERNEL_CRATE_EDIT_BUDGET,
            "kunit_py_kernel_crate_edit_seconds": round(kunit_time),
            "kunit_py_over_ours": (kunit_time / kernel_crate * 100.0).round() / 100.0,
            "rounds": EDIT_ROUNDS,
        }),
    ))
}

/// The kernel's `kunit.py run` on the kernel tree, set up as our loop builds it: the same
/// fragments (as its kunitconfig), LLVM and the Rust toolchain of setup, its own build folder,
/// and the rootfs's QEMU on its PATH.
struct KunitPy {
    tree: PathBuf,
    build_dir: PathBuf,
    kunitconfig: PathBuf,
    path: std::ffi::OsString,
    make_options: Vec<String>,
}

impl KunitPy {
    fn new(ctx: &Ctx, tc: &crate::setup::Toolchain) -> Result<Self> {
        let dir = ctx.build.join("bench/kunit");
        std::fs::create_dir_all(dir.join("bin"))?;
        // kunitconfig: the fragments `cargo xtask run` merges for nova/stub.
        let topics = &ctx.series()?.topics;
        let frags = crate::builds::run_fragments(ctx, topics, &topics.tip().branch);
        let mut config = String::new();
        for f in frags {
            config.push_str(&std::fs::read_to_string(&f)?);
            config.push('\n');
        }
        let kunitconfig = dir.join("kunitconfig");
        std::fs::write(&kunitconfig, config)?;
        // kunit.py starts `qemu-system-x86_64` from PATH: the rootfs's, through its loader.
        let qemu = crate::setup::qemu_command(&tc.rootfs);
        let mut script = String::from("#!/bin/sh\nexec");
        for a in std::iter::once(qemu.get_program()).chain(qemu.get_args()) {
            script.push_str(&format!(" '{}'", a.to_string_lossy()));
        }
        script.push_str(" \"$@\"\n");
        let wrapper = dir.join("bin/qemu-system-x86_64");
        std::fs::write(&wrapper, script)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
        let mut path = dir.join("bin").into_os_string();
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        let make_options = vec![
            "LLVM=-14".to_string(),
            format!("RUST_LIB_SRC={}", tc.rust_lib_src.display()),
            format!("BINDGEN={}", tc.bindgen.display()),
        ];
        Ok(Self {
            tree: ctx.tree(),
            build_dir: dir.join("build"),
            kunitconfig,
            path,
            make_options,
        })
    }

    fn run(&self) -> Command {
        let mut c = Command::new("python3");
        c.current_dir(&self.tree)
            .arg("tools/testing/kunit/kunit.py")
            .arg("run")
            .arg("--arch=x86_64")
            .arg(format!("--build_dir={}", self.build_dir.display()))
            .arg(format!("--kunitconfig={}", self.kunitconfig.display()))
            .arg("--timeout=300");
        for o in &self.make_options {
            c.arg(format!("--make_options={o}"));
        }
        c.env("PATH", &self.path)
            .env("LIBCLANG_PATH", "/usr/lib/llvm-14/lib")
            .env("LC_ALL", "C");
        c
    }
}

/// The tip-view file of a middle patch of the first topic with at least three patches, for
/// `ci-one-patch`.
fn middle_patch_file(repo: &Path) -> Result<String> {
    let series = Series::load(repo)?;
    for t in &series.topics.topics {
        let files = crate::series::read_topic_dir(&series.dir, t)?;
        let patches: Vec<&Vec<u8>> = files
            .iter()
            .filter(|(n, _)| !n.starts_with("0000-"))
            .map(|(_, d)| d)
            .collect();
        if patches.len() < 3 {
            continue;
        }
        let middle = String::from_utf8_lossy(patches[patches.len() / 2]).into_owned();
        // A Rust file the patch adds (`--- /dev/null` then `+++ b/<path>`).
        let mut lines = middle.lines();
        while let Some(l) = lines.next() {
            if l == "--- /dev/null" {
                if let Some(p) = lines.next().and_then(|n| n.strip_prefix("+++ b/")) {
                    if p.ends_with(".rs") && repo.join(p).is_file() {
                        return Ok(p.to_string());
                    }
                }
            }
        }
    }
    bail!("no topic has a middle patch that adds a Rust file")
}

/// The suites' durations in the `summary.json` that `.ci/run` wrote in `clone`, for the
/// record of where a CI case's time went.
fn suite_durations(clone: &Path) -> serde_json::Value {
    let summary = clone.join("build/results/summary.json");
    let Some(v) = std::fs::read(&summary)
        .ok()
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
    else {
        return serde_json::Value::Null;
    };
    let mut out = serde_json::Map::new();
    if let Some(suites) = v["suites"].as_object() {
        for (name, s) in suites {
            out.insert(name.clone(), s["duration_s"].clone());
        }
    }
    serde_json::Value::Object(out)
}

/// `cold`: `.ci/run` in a fresh clone with the empty cache folder `cache`.
fn cold(ctx: &Ctx, cache: &Path, log: &Path) -> Result<(f64, PathBuf)> {
    if cache.exists()
        && std::fs::read_dir(cache)
            .with_context(|| format!("cannot read {}", cache.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: a cold run starts from an empty cache folder (remove it, or name \
             another with --cold-cache)",
            cache.display()
        );
    }
    let clone = tree::bench_clone(&ctx.repo, &ctx.build, "cold")?;
    Ok((ci_run(&clone, Some(cache), log)?, clone))
}

/// Times `.ci/run` in `clone`; with `cache`, in that cache folder, cargo's output in it too.
fn ci_run(clone: &Path, cache: Option<&Path>, log: &Path) -> Result<f64> {
    let mut c = Command::new(clone.join(".ci/run"));
    c.current_dir(clone);
    if let Some(cache) = cache {
        // `.ci/run` puts cargo's output in the cache.
        c.env("NOVA_CACHE", cache).env_remove("CARGO_TARGET_DIR");
    }
    timed(".ci/run", &mut c, log)
}

/// Runs the selected cases (all but [`ON_REQUEST`]'s when `only` is empty).
pub fn bench(ctx: &Ctx, only: &[String], cold_cache: Option<&Path>) -> Result<()> {
    for o in only {
        if !CASES.iter().chain(ON_REQUEST).any(|(c, _)| c == o)
            && !MEASUREMENTS.contains(&o.as_str())
        {
            let mut all: Vec<&str> = CASES.iter().chain(ON_REQUEST).map(|(c, _)| *c).collect();
            all.extend(MEASUREMENTS);
            bail!("unknown case `{o}` (cases: {})", all.join(", "));
        }
    }
    let logs = ctx.logs().join("bench");
    std::fs::create_dir_all(&logs)?;
    // Cases not run this time keep their last measurement.
    let out = ctx.results().join("bench.json");
    let mut results: serde_json::Map<String, serde_json::Value> = std::fs::read(&out)
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    let selected = CASES
        .iter()
        .filter(|(c, _)| only.is_empty() || only.iter().any(|o| o == c))
        .chain(
            ON_REQUEST
                .iter()
                .filter(|(c, _)| only.iter().any(|o| o == c)),
        );
    for (case, budget) in selected {
        // The clone whose `.ci/run` was timed, for its suites' durations.
        let mut ci_clone = None;
        // edit-loop's other measurements.
        let mut loop_extra = None;
        util::announce(&format!("bench {case}"));
        let log = logs.join(format!("{case}.log"));
        let _ = std::fs::remove_file(&log);
        let secs = match *case {
            "warm-test" => {
                util::run_logged(
                    "warm-up: cargo xtask test",
                    &mut xtask(&ctx.repo, &["test"]),
                    &log,
                )?;
                timed("cargo xtask test", &mut xtask(&ctx.repo, &["test"]), &log)?
            }
            "edit-loop" => {
                let (nova, extra) = edit_loop(ctx, &log)?;
                loop_extra = Some(extra);
                nova
            }
            "ci-warm" => {
                let clone = tree::bench_clone(&ctx.repo, &ctx.build, case)?;
                let t = ci_run(&clone, None, &log)?;
                ci_clone = Some(clone);
                t
            }
            "cold" => {
                let cache = match cold_cache {
                    Some(c) => std::path::absolute(c)?,
                    None => ctx.build.join("bench/cold-cache"),
                };
                let (t, clone) = cold(ctx, &cache, &log)?;
                ci_clone = Some(clone);
                t
            }
            "ci-one-patch" => {
                let clone = tree::bench_clone(&ctx.repo, &ctx.build, case)?;
                let file = middle_patch_file(&clone)?;
                let path = clone.join(&file);
                let mut text = std::fs::read_to_string(&path)?;
                text.push_str("\n// bench: a line added to a middle patch\n");
                std::fs::write(&path, text)?;
                util::run_logged(
                    &format!("series absorb ({file})"),
                    &mut xtask(&clone, &["series", "absorb"]),
                    &log,
                )?;
                let t = ci_run(&clone, None, &log)?;
                ci_clone = Some(clone);
                t
            }
            _ => unreachable!("listed in CASES or ON_REQUEST"),
        };
        println!(
            "    {case}: {secs:.1} s (budget {budget} s{})",
            if secs <= *budget as f64 { "" } else { ", over" }
        );
        let when = util::output(Command::new("date").arg("-u").arg("+%Y-%m-%d"))?;
        let mut entry = serde_json::json!({
            "seconds": (secs * 10.0).round() / 10.0,
            "budget_seconds": budget,
            "measured": when.trim(),
        });
        if let Some(clone) = &ci_clone {
            entry["suite_seconds"] = suite_durations(clone);
            // ci-one-patch's clone holds its made-up edit of a patch: nothing to keep, and
            // nothing that should look like unexported work afterwards.
            if *case == "ci-one-patch" {
                util::remove_dir(clone)?;
            }
        }
        if let Some(serde_json::Value::Object(extra)) = loop_extra {
            for (k, v) in extra {
                entry[k] = v;
            }
        }
        results.insert(case.to_string(), entry);
    }
    if only.is_empty() || only.iter().any(|o| o == "drm-gem") {
        util::announce("bench drm-gem");
        let tc = crate::setup::setup(ctx)?;
        let (r, console) = crate::suites::rust_drm::bench_drm_gem(ctx, &tc)?;
        println!(
            "    drm-gem: rust_drm {:.1}/s, vgem {:.1}/s, ratio rust_drm/vgem {:.2} (console: {})",
            r.rust_drm.per_second,
            r.vgem.per_second,
            r.ratio,
            console.display()
        );
        let when = util::output(Command::new("date").arg("-u").arg("+%Y-%m-%d"))?;
        results.insert("drm-gem".to_string(), r.json(when.trim()));
    }
    util::write_atomic(
        &out,
        serde_json::to_string_pretty(&serde_json::Value::Object(results))?.as_bytes(),
    )?;
    println!("results: {}", out.display());
    Ok(())
}
