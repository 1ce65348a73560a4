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
//! The cold case (a fresh machine) is not measured here: it needs an empty cache.

use crate::ctx::Ctx;
use crate::topics::Series;
use crate::{tree, util};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The cases, in the order they run, with their budgets in seconds.
pub const CASES: &[(&str, u64)] = &[
    ("warm-test", 15),
    ("edit-loop", 7),
    ("ci-warm", 5 * 60),
    ("ci-one-patch", 20 * 60),
];

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

/// Runs the selected cases (all when `only` is empty).
pub fn bench(ctx: &Ctx, only: &[String]) -> Result<()> {
    for o in only {
        if !CASES.iter().any(|(c, _)| c == o) && !MEASUREMENTS.contains(&o.as_str()) {
            let mut all: Vec<&str> = CASES.iter().map(|(c, _)| *c).collect();
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
    for (case, budget) in CASES {
        if !only.is_empty() && !only.iter().any(|o| o == case) {
            continue;
        }
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
                timed(
                    ".ci/run",
                    Command::new(clone.join(".ci/run")).current_dir(&clone),
                    &log,
                )?
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
                timed(
                    ".ci/run",
                    Command::new(clone.join(".ci/run")).current_dir(&clone),
                    &log,
                )?
            }
            _ => unreachable!("listed in CASES"),
        };
        println!(
            "    {case}: {secs:.1} s (budget {budget} s{})",
            if secs <= *budget as f64 { "" } else { ", over" }
        );
        let when = util::output(Command::new("date").arg("-u").arg("+%Y-%m-%d"))?;
        results.insert(
            case.to_string(),
            serde_json::json!({
                "seconds": (secs * 10.0).round() / 10.0,
                "budget_seconds": budget,
                "measured": when.trim(),
            }),
        );
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
