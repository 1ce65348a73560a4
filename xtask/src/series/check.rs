//! `series check`: series/ applies to the base, is in exported form, and the tip view matches.
//!
//! The series is applied in the check tree (`build/series-check`, [`ToolTree::check`]) that the
//! user never edits; it is re-applied only when `series/` changed since it was last applied.

use crate::cache::{self, Verdicts};
use crate::ctx::Ctx;
use crate::git::Git;
use crate::series::tipview::{self, Problem};
use crate::series::topics::Topics;
use crate::series::tree::ToolTree;
use crate::series::{self, read_topic_dir};
use crate::setup::Toolchain;
use crate::setup::BASE_TAG;
use crate::util::sha256;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::Path;

/// The outcome of one check: its name and the problems found (empty when it passed).
pub struct CheckResult {
    /// What was checked.
    pub name: &'static str,
    /// One line per problem.
    pub problems: Vec<String>,
}

/// Runs `scripts/checkpatch.pl --strict` of the base on every patch of the series (cover letters
/// excluded), all its checks but the lookup of commit IDs, which the base has no history for. A patch that passed once is remembered (by its content, the base and the
/// toolchain) and not checked again.
fn checkpatch(
    check_tree: &Path,
    tc: &Toolchain,
    verdicts: &Verdicts,
    series_dir: &Path,
    topics: &Topics,
) -> Result<Vec<String>> {
    // checkpatch.pl and its data files are the base's.
    let base = Git::new(&tc.base_repo)
        .rev(&format!("refs/tags/{BASE_TAG}"))
        .context("the base repository has no base tag")?;
    let mut problems = Vec::new();
    for t in &topics.topics {
        for (name, data) in read_topic_dir(series_dir, t)? {
            if name.starts_with("0000-") {
                continue;
            }
            let verdict = cache::key(tc, "checkpatch --strict", &[&base, &sha256(&data)]);
            if verdicts.passed(&verdict) {
                continue;
            }
            // Debian's python3 first: checkpatch's SPDX check needs python3-ply and python3-git.
            let path = format!(
                "/usr/bin:/bin:{}",
                std::env::var("PATH").unwrap_or_default()
            );
            // The base is imported as one commit, without mainline's history, so checkpatch
            // cannot look up the commit a `Fixes:` tag names: that one check is left out.
            let out = std::process::Command::new("perl")
                .current_dir(check_tree)
                .env("PATH", path)
                .args(["scripts/checkpatch.pl", "--strict", "--quiet", "--no-color"])
                .args(["--ignore", "UNKNOWN_COMMIT_ID"])
                .arg(series_dir.join(&t.dir).join(&name))
                .output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() && !stderr.contains("Traceback") {
                verdicts.record_pass(&verdict)?;
            } else {
                let text = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
                let first: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .take(12)
                    .collect();
                problems.push(format!("series/{}/{name}:\n{}", t.dir, first.join("\n")));
            }
        }
    }
    Ok(problems)
}

/// Runs all checks of `ctx`'s series; passing patches are remembered in `verdicts`.
pub fn run(ctx: &Ctx, tc: &Toolchain, verdicts: &Verdicts) -> Result<Vec<CheckResult>> {
    let base_repo = &tc.base_repo;
    let mut results = Vec::new();
    let series = match ctx.series() {
        Ok(s) => s,
        Err(e) => {
            results.push(CheckResult {
                name: "topics",
                problems: vec![format!("{e:#}")],
            });
            return Ok(results);
        }
    };
    results.push(CheckResult {
        name: "topics",
        problems: vec![],
    });

    let (series_dir, topics) = (&series.dir, &series.topics);
    let check_tree = ToolTree::check(&ctx.build);
    let applied = check_tree.apply(series, base_repo);
    match applied {
        Ok(()) => {
            results.push(CheckResult {
                name: "applies",
                problems: vec![],
            });
        }
        Err(e) => {
            results.push(CheckResult {
                name: "applies",
                problems: vec![format!("{e:#}")],
            });
            return Ok(results);
        }
    }

    let git = check_tree.git();
    let mut problems = Vec::new();
    for t in &topics.topics {
        let exported = series::format_topic(&git, t)?;
        let stored = read_topic_dir(series_dir, t)?;
        for name in series::diff_names(&exported, &stored) {
            problems.push(format!(
                "series/{}/{name}: not what `cargo xtask series export` writes for it (hand-edited \
                 patch? re-export from the kernel tree)",
                t.dir
            ));
        }
    }
    results.push(CheckResult {
        name: "exported-form",
        problems,
    });

    let mut problems = Vec::new();
    let tip = &topics.tip().branch;
    for t in &topics.topics {
        if !git.ok(&[
            "merge-base",
            "--is-ancestor",
            &format!("refs/heads/{}", t.branch),
            tip,
        ]) {
            problems.push(format!(
                "the last topic `{tip}` does not contain `{}`",
                t.branch
            ));
        }
    }
    results.push(CheckResult {
        name: "tip-contains-all",
        problems,
    });

    results.push(CheckResult {
        name: "checkpatch",
        problems: checkpatch(&check_tree.dir, tc, verdicts, series_dir, topics)?,
    });

    let view = tipview::generate(&git, tip)?;
    let top: BTreeSet<String> = git
        .run(&["ls-tree", "--name-only", &format!("refs/tags/{BASE_TAG}")])?
        .lines()
        .map(str::to_string)
        .collect();
    let problems: Vec<String> = tipview::compare(&ctx.repo, &view, &top)?
        .iter()
        .map(Problem::to_string)
        .collect();
    results.push(CheckResult {
        name: "tip-view",
        problems,
    });
    Ok(results)
}
