//! The series as patch files: exporting topic branches to `series/` deterministically.

pub mod absorb;
pub mod check;
pub mod mbox;
pub mod tipview;
pub mod topics;
pub mod tree;

use crate::git::Git;
use crate::setup::BASE_TAG;
use crate::util;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use topics::{Topic, Topics, BASE};

/// The files of one exported topic: file name → contents.
pub type PatchFiles = BTreeMap<String, Vec<u8>>;

/// The git revision a parent name stands for.
pub fn parent_ref(p: &str) -> String {
    if p == BASE {
        format!("refs/tags/{BASE_TAG}")
    } else {
        format!("refs/heads/{p}")
    }
}

/// The revision range of topic `t`'s own commits: its tip, minus everything its parents have.
pub fn topic_range(t: &Topic) -> Vec<String> {
    let mut range: Vec<String> = t
        .parents
        .iter()
        .map(|p| format!("^{}", parent_ref(p)))
        .collect();
    range.push(format!("refs/heads/{}", t.branch));
    range
}

/// Topic `t`'s own commits (merges excluded), oldest first.
pub fn own_commits(git: &Git, t: &Topic) -> Result<Vec<String>> {
    let mut args = vec![
        "rev-list".to_string(),
        "--reverse".into(),
        "--no-merges".into(),
    ];
    args.extend(topic_range(t));
    Ok(git
        .run(&to_strs(&args))?
        .lines()
        .map(str::to_string)
        .collect())
}

/// Formats the commits of topic `t` (those not in its parents) as patches with a cover letter.
///
/// The output depends only on the commits' contents, authors and author dates: commit hashes are
/// zeroed, the signature is dropped and the cover letter's sender and date are the last commit's.
pub fn format_topic(git: &Git, t: &Topic) -> Result<PatchFiles> {
    let tip = format!("refs/heads/{}", t.branch);
    if git.rev(&tip).is_none() {
        bail!(
            "branch `{}` does not exist in {}",
            t.branch,
            git.dir.display()
        );
    }
    let range = topic_range(t);
    let count = own_commits(git, t)?.len();
    if count == 0 {
        return Ok(PatchFiles::new());
    }
    let tmp = tempdir(&git.dir, "format-patch")?;
    let base = format!("--base={}", parent_ref(BASE));
    let prefix = format!("--subject-prefix={}", t.subject_prefix());
    let out = tmp.path().to_string_lossy().into_owned();
    let mut args = vec![
        "format-patch",
        "-q",
        "--zero-commit",
        "--no-signature",
        "--cover-letter",
        "--no-renames",
        "--encode-email-headers",
        &prefix,
        &base,
        "-o",
        &out,
    ];
    let range_strs = to_strs(&range);
    args.extend(range_strs.iter().copied());
    git.run(&args)
        .with_context(|| format!("format-patch of `{}`", t.branch))?;
    let mut files = PatchFiles::new();
    for e in fs::read_dir(tmp.path())?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        files.insert(name, fs::read(e.path())?);
    }
    let cover_name = "0000-cover-letter.patch";
    let raw = files
        .remove(cover_name)
        .context("format-patch wrote no cover letter")?;
    let sender = git.run(&["log", "-1", "--no-merges", "--format=%an <%ae>%n%aD", &tip])?;
    let mut sender = sender.lines();
    let (from, date) = (sender.next().unwrap_or(""), sender.next().unwrap_or(""));
    files.insert(
        cover_name.to_string(),
        fill_cover(&raw, t, from, date, count)?.into_bytes(),
    );
    Ok(files)
}

/// [`format_topic`], remembered in the tree's git folder (`nova-export-memo/<topic dir>`) for
/// as long as everything it depends on is the same: the revisions of the topic's range and of
/// the base, the topic's description, and this tool's binary (its size and time, so that a
/// changed export format is never taken from an older one). `cargo xtask run` compares every
/// topic's export with `series/` before each build; this saves a `git format-patch` per topic.
pub fn format_topic_remembered(git: &Git, t: &Topic) -> Result<PatchFiles> {
    let mut parts = vec![format!("{t:?}")];
    let range = topic_range(t);
    for r in range.iter().chain(std::iter::once(&parent_ref(BASE))) {
        let r = r.trim_start_matches('^');
        parts.push(format!("{r}={}", git.rev(r).unwrap_or_default()));
    }
    let exe = std::env::current_exe()
        .and_then(fs::metadata)
        .map(|m| format!("{} {:?}", m.len(), m.modified().ok()))
        .unwrap_or_default();
    parts.push(exe);
    let key = util::sha256(parts.join("\n").as_bytes());
    let git_dir = if git.dir.join(".git").is_dir() {
        git.dir.join(".git")
    } else {
        git.dir.clone()
    };
    let memo = git_dir.join("nova-export-memo").join(&t.dir);
    if fs::read_to_string(memo.join("key")).ok().as_deref() == Some(key.as_str()) {
        let mut files = PatchFiles::new();
        for e in fs::read_dir(memo.join("files"))? {
            let e = e?;
            files.insert(
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path())?,
            );
        }
        return Ok(files);
    }
    let files = format_topic(git, t)?;
    util::remove_dir(&memo)?;
    fs::create_dir_all(memo.join("files"))?;
    for (name, data) in &files {
        fs::write(memo.join("files").join(name), data)?;
    }
    // Written last: a memo without its key is never read.
    util::write_atomic(&memo.join("key"), key.as_bytes())?;
    Ok(files)
}

fn to_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A temporary folder inside the repository's git dir (same file system, no /tmp litter),
/// removed when dropped, whatever way the caller leaves.
pub fn tempdir(repo: &Path, what: &str) -> Result<tempfile::TempDir> {
    let git_dir = if repo.join(".git").is_dir() {
        repo.join(".git")
    } else {
        repo.to_path_buf()
    };
    tempfile::Builder::new()
        .prefix(&format!("nova-{what}-"))
        .tempdir_in(&git_dir)
        .with_context(|| format!("cannot make a temporary folder in {}", git_dir.display()))
}

/// Replaces format-patch's cover-letter header and placeholders with the topic's description.
fn fill_cover(raw: &[u8], t: &Topic, from: &str, date: &str, count: usize) -> Result<String> {
    let raw = String::from_utf8(raw.to_vec()).context("cover letter is not UTF-8")?;
    let (_, body) = raw
        .split_once("\n\n")
        .context("cover letter without a body")?;
    if !body.contains("*** BLURB HERE ***") {
        bail!("unexpected cover letter layout from git format-patch");
    }
    let blurb = t.cover.trim_end();
    let body = body.replacen("*** BLURB HERE ***", blurb, 1);
    Ok(format!(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
         From: {from}\nDate: {date}\nSubject: [{} 0/{count}] {}\n\n{body}",
        t.subject_prefix(),
        t.subject.trim()
    ))
}

/// The file that keeps the folder of a topic without patches in git.
pub const KEEP: &str = ".keep";

/// The exported files of topic `t` as they are in `series/<dir>/`. A missing or unreadable
/// folder is an error, never an empty topic: a topic without patches has a folder holding only
/// [`KEEP`].
pub fn read_topic_dir(series: &Path, t: &Topic) -> Result<PatchFiles> {
    let dir = series.join(&t.dir);
    let rd = fs::read_dir(&dir).with_context(|| {
        format!(
            "cannot read series/{} of topic `{}` (a topic without patches has a folder holding \
             only {KEEP})",
            t.dir, t.branch
        )
    })?;
    let mut files = PatchFiles::new();
    for e in rd {
        let e = e.with_context(|| format!("cannot read series/{}", t.dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".patch") {
            let data = fs::read(e.path())
                .with_context(|| format!("cannot read series/{}/{name}", t.dir))?;
            files.insert(name, data);
        }
    }
    Ok(files)
}

/// Replaces the patch files of `series/<dir>/` with `files` (a topic without patches keeps its
/// folder, with [`KEEP`]).
pub fn write_topic_dir(series: &Path, t: &Topic, files: &PatchFiles) -> Result<()> {
    let dir = series.join(&t.dir);
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".patch") && !files.contains_key(&name) {
                fs::remove_file(e.path())?;
            }
        }
    }
    for (name, data) in files {
        let path = dir.join(name);
        if fs::read(&path).ok().as_deref() != Some(data.as_slice()) {
            crate::util::write_atomic(&path, data)?;
        }
    }
    // The folder stays when the topic has no patches, held in git by KEEP.
    let keep = dir.join(KEEP);
    if files.is_empty() {
        fs::create_dir_all(&dir)?;
        if !keep.exists() {
            fs::write(&keep, b"")?;
        }
    } else if keep.exists() {
        fs::remove_file(&keep)?;
    }
    Ok(())
}

/// The names of files that differ between two exports (missing on either side included).
pub fn diff_names(a: &PatchFiles, b: &PatchFiles) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    names.into_iter().cloned().collect()
}

/// Exports every topic branch of `git` into `series/`, then the tip view.
pub fn export(git: &Git, topics: &Topics, series: &Path) -> Result<Vec<(String, Exported)>> {
    let mut counts = Vec::new();
    for t in &topics.topics {
        if let Some(parent) = behind_parent(git, topics, t) {
            counts.push((t.branch.clone(), Exported::Behind(parent)));
            continue;
        }
        let files = format_topic(git, t)?;
        write_topic_dir(series, t, &files)?;
        counts.push((
            t.branch.clone(),
            Exported::Patches(files.len().saturating_sub(1)),
        ));
    }
    Ok(counts)
}

/// What [`export`] did with a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exported {
    /// Its folder now holds this many patches.
    Patches(usize),
    /// Nothing: its branch does not stand on the tip of this parent (which was rebased or
    /// gained commits), so its own commits cannot be told from the parent's old ones. Its
    /// folder is kept as it was.
    Behind(String),
}

/// The first topic branch among `t`'s parents and their parents whose tip the branch below it
/// does not contain, if any: `t` then stands on an old state of that topic.
pub fn behind_parent(git: &Git, topics: &Topics, t: &Topic) -> Option<String> {
    let branch = format!("refs/heads/{}", t.branch);
    t.parents
        .iter()
        .filter(|p| p.as_str() != BASE)
        .find_map(|p| {
            let parent = parent_ref(p);
            if git.rev(&parent).is_some()
                && !git.ok(&["merge-base", "--is-ancestor", &parent, &branch])
            {
                return Some(p.clone());
            }
            topics
                .by_branch(p)
                .and_then(|pt| behind_parent(git, topics, pt))
        })
}

#[cfg(test)]
mod tests;
