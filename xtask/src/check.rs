//! `series check`: series/ applies to the base, is in exported form, and the tip view matches.
//!
//! The series is applied in a scratch tree (`build/series-check`) that the user never edits; it
//! is re-applied only when `series/` changed since its last successful check.

use crate::cache::{self, Verdicts};
use crate::git::Git;
use crate::series::{self, read_topic_dir};
use crate::setup::Toolchain;
use crate::setup::BASE_TAG;
use crate::tipview::{self, Problem};
use crate::topics::Topics;
use crate::tree;
use crate::util::sha256;
use crate::util::Stamp;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The outcome of one check: its name and the problems found (empty when it passed).
pub struct CheckResult {
    /// What was checked.
    pub name: &'static str,
    /// One line per problem.
    pub problems: Vec<String>,
}

/// A digest of `series/` (topic folders and description) and of the base it applies to.
fn series_key(repo: &Path, base_repo: &Path, topics: &Topics) -> Result<String> {
    let series_dir = repo.join("series");
    let base = Git::new(base_repo)
        .rev(&format!("refs/tags/{BASE_TAG}"))
        .unwrap_or_default();
    let mut key = base + &sha256(&fs::read(series_dir.join("topics.toml"))?);
    for t in &topics.topics {
        for (name, data) in read_topic_dir(&series_dir, t)? {
            key.push_str(&format!("{}/{name}:{}", t.dir, sha256(&data)));
        }
    }
    Ok(sha256(format!("{BASE_TAG}{key}").as_bytes()))
}

/// Runs `scripts/checkpatch.pl --strict` of the base on every patch of the series (cover letters
/// excluded). A patch that passed once is remembered (by its content, the base and the
/// toolchain) and not checked again.
fn checkpatch(
    scratch: &Path,
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
            let out = std::process::Command::new("perl")
                .current_dir(scratch)
                .env("PATH", path)
                .args(["scripts/checkpatch.pl", "--strict", "--quiet", "--no-color"])
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

/// Applies `series/` in the scratch tree, unless it was applied there unchanged already.
pub fn apply_series(repo: &Path, build: &Path, base_repo: &Path, topics: &Topics) -> Result<()> {
    let scratch = scratch(build);
    let key = series_key(repo, base_repo, topics)?;
    let stamp = Stamp::new(build.join("series-check.applied"));
    if stamp.is_done(&key) && Git::exists(&scratch) {
        return Ok(());
    }
    stamp.clear()?;
    // The scratch tree is the tool's own: always replace its branches.
    let series_dir = repo.join("series");
    tree::materialise(
        &scratch,
        base_repo,
        topics,
        &series_dir,
        tree::OnUnexported::Force,
    )?;
    stamp.mark(&key)
}

/// The scratch tree used by checks.
pub fn scratch(build: &Path) -> PathBuf {
    build.join("series-check")
}

/// Runs all checks of the series; passing patches are remembered in `verdicts`.
pub fn run(
    repo: &Path,
    build: &Path,
    tc: &Toolchain,
    verdicts: &Verdicts,
) -> Result<Vec<CheckResult>> {
    let base_repo = &tc.base_repo;
    let series_dir = repo.join("series");
    let mut results = Vec::new();
    let topics = match Topics::load(&series_dir) {
        Ok(t) => t,
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

    let scratch = scratch(build);
    let applied = apply_series(repo, build, base_repo, &topics);
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

    let git = Git::new(&scratch);
    let mut problems = Vec::new();
    for t in &topics.topics {
        let exported = series::format_topic(&git, t)?;
        let stored = read_topic_dir(&series_dir, t)?;
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
        problems: checkpatch(&scratch, tc, verdicts, &series_dir, &topics)?,
    });

    let view = tipview::generate(&git, tip)?;
    let top: BTreeSet<String> = git
        .run(&["ls-tree", "--name-only", &format!("refs/tags/{BASE_TAG}")])?
        .lines()
        .map(str::to_string)
        .collect();
    let problems: Vec<String> = tipview::compare(repo, &view, &top)?
        .iter()
        .map(Problem::to_string)
        .collect();
    results.push(CheckResult {
        name: "tip-view",
        problems,
    });
    Ok(results)
}
