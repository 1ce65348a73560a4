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
//! One case runs only when named (`--case cold`, ~40 min here): a fresh machine's CI, measured
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

/// The cases run only when named, with their budgets in seconds.
pub const ON_REQUEST: &[(&str, u64)] = &[("cold", 40 * 60)];

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
    let mut c = Command::new(clone.join(".ci/run"));
    c.current_dir(&clone)
        .env("NOVA_CACHE", cache)
        // `.ci/run` puts cargo's output in the cache.
        .env_remove("CARGO_TARGET_DIR");
    Ok((timed(".ci/run (cold)", &mut c, log)?, clone))
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
                util::run_logged(
                    "warm-up: cargo xtask run",
                    &mut xtask(&ctx.repo, &["run"]),
                    &log,
                )?;
                let file = ctx.tree().join("rust/kernel/lib.rs");
                let before =
                    std::fs::read(&file).with_context(|| format!("no {}", file.display()))?;
                let mut edited = before.clone();
                edited.extend_from_slice(b"// bench: one edited line\n");
                std::fs::write(&file, &edited)?;
                let t = timed(
                    "cargo xtask run (edited)",
                    &mut xtask(&ctx.repo, &["run"]),
                    &log,
                );
                std::fs::write(&file, &before)?;
                let t = t?;
                util::run_logged(
                    "restore: cargo xtask build",
                    &mut xtask(&ctx.repo, &["build"]),
                    &log,
                )?;
                t
            }
            "ci-warm" => {
                let clone = tree::bench_clone(&ctx.repo, &ctx.build, case)?;
                let t = timed(
                    ".ci/run",
                    Command::new(clone.join(".ci/run")).current_dir(&clone),
                    &log,
                )?;
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
                let t = timed(
                    ".ci/run",
                    Command::new(clone.join(".ci/run")).current_dir(&clone),
                    &log,
                )?;
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
