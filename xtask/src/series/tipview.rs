//! The tip view: every file the series adds, at its kernel path at the repository's top level, and
//! `<path>.patch` for files of the base that the series changes or removes.
//!
//! `series/tip-view.sha256` (in `sha256sum` format) records what export wrote, so that a direct
//! edit of a tip-view file is told apart from a stale tip view.

use crate::git::Git;
use crate::setup::BASE_TAG;
use crate::util::sha256;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The manifest of the tip view, relative to the repository root.
pub const MANIFEST: &str = "series/tip-view.sha256";
/// Paths of the project itself that share a top-level name with the kernel.
const PROJECT_PATHS: &[&str] = &[".gitignore", "tools/gpu-model/"];

/// Tip-view path → contents.
pub type View = BTreeMap<String, Vec<u8>>;

/// Computes the tip view of branch `tip` of the kernel tree.
pub fn generate(git: &Git, tip: &str) -> Result<View> {
    let base = format!("refs/tags/{BASE_TAG}");
    let tip = format!("refs/heads/{tip}");
    let status = git.run(&["diff", "--name-status", "--no-renames", "-z", &base, &tip])?;
    let mut fields = status.split('\0').filter(|s| !s.is_empty());
    let mut view = View::new();
    while let (Some(st), Some(path)) = (fields.next(), fields.next()) {
        if PROJECT_PATHS
            .iter()
            .any(|p| path == *p || path.starts_with(p))
        {
            bail!("the series changes `{path}`, which the project's own files occupy");
        }
        if st == "A" {
            let blob = git
                .cmd(&["cat-file", "blob", &format!("{tip}:{path}")])
                .output()?;
            if !blob.status.success() {
                bail!("cannot read {path} at {tip}");
            }
            view.insert(path.to_string(), blob.stdout);
        } else {
            let diff = git
                .cmd(&[
                    "diff",
                    "--no-renames",
                    "--full-index",
                    &base,
                    &tip,
                    "--",
                    path,
                ])
                .output()?;
            view.insert(format!("{path}.patch"), diff.stdout);
        }
    }
    Ok(view)
}

/// Reads the manifest: path → hash.
pub fn read_manifest(repo: &Path) -> Result<BTreeMap<String, String>> {
    let text = match fs::read_to_string(repo.join(MANIFEST)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.into()),
    };
    text.lines()
        .map(|l| {
            let (h, p) = l
                .split_once("  ")
                .with_context(|| format!("bad line in {MANIFEST}: {l}"))?;
            Ok((p.to_string(), h.to_string()))
        })
        .collect()
}

/// One difference between the tip view on disk and the series.
#[derive(Debug, PartialEq, Eq)]
pub enum Problem {
    /// A tip-view file was changed by hand since export wrote it.
    EditedDirectly(String),
    /// The file is as export wrote it, but the series now says otherwise.
    Stale(String),
    /// The series has the file, the repository does not.
    Missing(String),
    /// A file at a kernel path that the series does not have.
    NotInSeries(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::EditedDirectly(p) => write!(
                f,
                "{p}: edited directly; fold it into its commit with `cargo xtask series absorb`, \
                 or edit it in the kernel tree and export"
            ),
            Problem::Stale(p) => {
                write!(
                    f,
                    "{p}: differs from the series; run `cargo xtask series export`"
                )
            }
            Problem::Missing(p) => {
                write!(f, "{p}: missing; run `cargo xtask series export`")
            }
            Problem::NotInSeries(p) => write!(
                f,
                "{p}: not part of the series; add it in the kernel tree (build/linux) and export"
            ),
        }
    }
}

/// Files of the repository that the manifest records and that were changed by hand.
pub fn edited(repo: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (path, hash) in read_manifest(repo)? {
        if let Ok(data) = fs::read(repo.join(&path)) {
            if sha256(&data) != hash {
                out.push(path);
            }
        }
    }
    Ok(out)
}

/// Compares the repository's tip view with `expected`; `kernel_top` names the base tree's
/// top-level entries (to find stray files at kernel paths).
pub fn compare(
    repo: &Path,
    expected: &View,
    kernel_top: &BTreeSet<String>,
) -> Result<Vec<Problem>> {
    let manifest = read_manifest(repo)?;
    let mut problems = Vec::new();
    for (path, want) in expected {
        let have = fs::read(repo.join(path)).ok();
        let recorded = manifest.get(path);
        match have {
            None => problems.push(Problem::Missing(path.clone())),
            Some(h) if &h == want && recorded == Some(&sha256(want)) => {}
            Some(h) if recorded.is_some_and(|r| *r != sha256(&h)) => {
                problems.push(Problem::EditedDirectly(path.clone()))
            }
            Some(_) => problems.push(Problem::Stale(path.clone())),
        }
    }
    for (path, hash) in &manifest {
        if expected.contains_key(path) {
            continue;
        }
        match fs::read(repo.join(path)) {
            Ok(h) if sha256(&h) != *hash => problems.push(Problem::EditedDirectly(path.clone())),
            Ok(_) => problems.push(Problem::Stale(path.clone())),
            Err(_) => problems.push(Problem::Stale(MANIFEST.to_string())),
        }
    }
    for path in project_files(repo)? {
        if is_kernel_path(&path, kernel_top)
            && !expected.contains_key(&path)
            && !manifest.contains_key(&path)
        {
            problems.push(Problem::NotInSeries(path));
        }
    }
    problems.dedup();
    Ok(problems)
}

/// Whether `path` (relative to the repository) sits where the tip view puts kernel files.
fn is_kernel_path(path: &str, kernel_top: &BTreeSet<String>) -> bool {
    if PROJECT_PATHS
        .iter()
        .any(|p| path == *p || path.starts_with(p))
    {
        return false;
    }
    let first = path.split('/').next().unwrap_or(path);
    kernel_top.contains(first) || kernel_top.contains(first.trim_end_matches(".patch"))
}

/// Tracked and untracked (not ignored) files of the repository.
fn project_files(repo: &Path) -> Result<Vec<String>> {
    let out = Git::new(repo).run(&["ls-files", "-z", "-co", "--exclude-standard"])?;
    Ok(out
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// Writes the tip view and its manifest, removing files of the old view that are gone.
///
/// Refuses (naming them) when tip-view files were edited by hand, unless `overwrite_edits`.
pub fn write(repo: &Path, view: &View, overwrite_edits: bool) -> Result<()> {
    let edits = edited(repo)?;
    if !edits.is_empty() && !overwrite_edits {
        bail!(
            "tip-view files were edited directly: {}\nfold them into their commits with `cargo \
             xtask series absorb` (or revert them) before exporting",
            edits.join(", ")
        );
    }
    for path in read_manifest(repo)?.keys() {
        if !view.contains_key(path) {
            let p = repo.join(path);
            if p.exists() {
                fs::remove_file(&p)?;
            }
            remove_empty_parents(repo, &p);
        }
    }
    let mut manifest = String::new();
    for (path, data) in view {
        let p = repo.join(path);
        if fs::read(&p).ok().as_deref() != Some(data.as_slice()) {
            crate::util::write_atomic(&p, data)?;
        }
        manifest.push_str(&format!("{}  {path}\n", sha256(data)));
    }
    crate::util::write_atomic(&repo.join(MANIFEST), manifest.as_bytes())
}

fn remove_empty_parents(repo: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == repo || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}
