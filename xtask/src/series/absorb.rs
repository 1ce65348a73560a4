//! `series absorb`: folds direct edits of tip-view files into the series commits that own the
//! edited lines, so that an edit made at the repository's top level is never lost.
//!
//! Work happens in the absorb tree (`build/absorb`, one of the tool's own): each edit becomes a
//! `fixup!` commit on the topic owning the lines (found with `git blame` on the tip), the topic
//! is autosquashed, the series is re-applied with the new topic and the resulting tip view must
//! equal the edited files. Only then are `series/` and the tip view written. An edit whose lines
//! belong to several commits is refused, naming them.

use crate::ctx::Ctx;
use crate::git::Git;
use crate::series::tipview;
use crate::series::topics::{Topic, Topics};
use crate::series::tree::ToolTree;
use crate::series::{self, parent_ref, write_topic_dir};
use crate::setup::BASE_TAG;
use crate::util;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// One edited tip-view file, as a change of a kernel path at the tip.
struct Edit {
    view_path: String,
    kernel_path: String,
    /// New contents at the tip (`None`: the edit deletes the file).
    new: Option<Vec<u8>>,
}

/// Absorbs every direct edit of `ctx`'s tip view into its commit; returns the edited paths.
pub fn absorb(ctx: &Ctx, base_repo: &Path) -> Result<Vec<String>> {
    let (repo, build) = (&ctx.repo, &ctx.build);
    let series = ctx.series()?;
    let (series_dir, topics) = (&series.dir, &series.topics);
    let edited = tipview::edited(repo)?;
    if edited.is_empty() {
        return Ok(edited);
    }
    let absorb_tree = ToolTree::absorb(build);
    absorb_tree.materialise(base_repo, topics, series_dir)?;
    let git = absorb_tree.git();
    let tip = format!("refs/heads/{}", topics.tip().branch);
    let base_files: BTreeSet<String> = git
        .run(&[
            "ls-tree",
            "-r",
            "--name-only",
            &format!("refs/tags/{BASE_TAG}"),
        ])?
        .lines()
        .map(str::to_string)
        .collect();

    let mut by_commit: BTreeMap<String, Vec<Edit>> = BTreeMap::new();
    for view_path in &edited {
        let edit = to_edit(&git, repo, view_path, &base_files)?;
        let owner = owner(&git, &tip, &edit)?;
        by_commit.entry(owner).or_default().push(edit);
    }

    let mut changed_topics = BTreeSet::new();
    for (commit, edits) in &by_commit {
        let t = topic_of(&git, topics, commit)?;
        fixup(&git, t, commit, &tip, edits)?;
        changed_topics.insert(t.dir.clone());
    }

    // Re-apply the whole series with the rewritten topics from a copy of series/.
    let new_series = build.join("absorb-series");
    util::remove_dir(&new_series)?;
    fs::create_dir_all(&new_series)?;
    fs::copy(
        series_dir.join("topics.toml"),
        new_series.join("topics.toml"),
    )?;
    for t in &topics.topics {
        let files = if changed_topics.contains(&t.dir) {
            series::format_topic(&git, t)?
        } else {
            series::read_topic_dir(series_dir, t)?
        };
        write_topic_dir(&new_series, t, &files)?;
    }
    absorb_tree
        .materialise(base_repo, topics, &new_series)
        .context(
            "the absorbed edit conflicts with a later topic; edit in the kernel tree instead",
        )?;
    let view = tipview::generate(&git, &topics.tip().branch)?;
    for e in by_commit.values().flatten() {
        let at_tip = git
            .cmd(&["cat-file", "blob", &format!("{tip}:{}", e.kernel_path)])
            .output()?;
        let at_tip = at_tip.status.success().then_some(at_tip.stdout);
        if at_tip != e.new {
            bail!(
                "after absorbing, {} does not come out as edited (the edit overlaps a later \
                 topic's change?); edit it in the kernel tree instead",
                e.view_path
            );
        }
    }
    // Descendants' cover letters name the new patches as prerequisites: export every topic.
    for t in &topics.topics {
        write_topic_dir(series_dir, t, &series::format_topic(&git, t)?)?;
    }
    tipview::write(repo, &view, true)?;
    Ok(edited)
}

/// Reads an edited tip-view file as a change of a kernel path at the tip.
fn to_edit(git: &Git, repo: &Path, view_path: &str, base: &BTreeSet<String>) -> Result<Edit> {
    let data = fs::read(repo.join(view_path)).ok();
    if let Some(kernel_path) = view_path
        .strip_suffix(".patch")
        .filter(|k| base.contains(*k))
    {
        // A `.patch` of a base file: apply the edited diff to the base file in a private index.
        let data = data.with_context(|| format!("{view_path} was deleted: revert it instead"))?;
        let tmp = series::tempdir(&git.dir, "absorb")?;
        let index = tmp.path().join("index");
        let patch = tmp.path().join("edit.patch");
        fs::write(&patch, &data)?;
        let with_index = |args: &[&str]| {
            let mut c = git.cmd(args);
            c.env("GIT_INDEX_FILE", &index);
            Git::run_cmd(c)
        };
        with_index(&["read-tree", &format!("refs/tags/{BASE_TAG}")])?;
        with_index(&["apply", "--cached", &patch.to_string_lossy()]).with_context(|| {
            format!("{view_path} is no longer a patch that applies to the base")
        })?;
        let listed = with_index(&["ls-files", "--", kernel_path])?;
        let new = if listed.trim().is_empty() {
            None
        } else {
            let mut c = git.cmd(&["cat-file", "blob", &format!(":{kernel_path}")]);
            c.env("GIT_INDEX_FILE", &index);
            Some(c.output()?.stdout)
        };
        return Ok(Edit {
            view_path: view_path.into(),
            kernel_path: kernel_path.into(),
            new,
        });
    }
    Ok(Edit {
        view_path: view_path.into(),
        kernel_path: view_path.into(),
        new: data,
    })
}

/// Changed line ranges of `old` → `new` as (first line, count) in `old` (count 0: insertion
/// after that line).
fn changed_ranges(git: &Git, old: &[u8], new: &[u8]) -> Result<Vec<(usize, usize)>> {
    let tmp = series::tempdir(&git.dir, "absorb")?;
    let a = tmp.path().join("old");
    let b = tmp.path().join("new");
    fs::write(&a, old)?;
    fs::write(&b, new)?;
    let out = git
        .cmd(&["diff", "--no-index", "-U0", "--no-color"])
        .arg(&a)
        .arg(&b)
        .output()?;
    Ok(parse_hunks(&String::from_utf8_lossy(&out.stdout)))
}

/// The old-side ranges of `@@ -a,b +c,d @@` hunk headers.
fn parse_hunks(diff: &str) -> Vec<(usize, usize)> {
    diff.lines()
        .filter_map(|l| l.strip_prefix("@@ -"))
        .filter_map(|l| l.split_whitespace().next())
        .map(|r| {
            let (start, count) = r.split_once(',').unwrap_or((r, "1"));
            (start.parse().unwrap_or(0), count.parse().unwrap_or(1))
        })
        .collect()
}

/// The series commit that owns the lines an edit changes.
fn owner(git: &Git, tip: &str, e: &Edit) -> Result<String> {
    let base = format!("refs/tags/{BASE_TAG}");
    let touching = git.run(&[
        "log",
        "--format=%H",
        &format!("{base}..{tip}"),
        "--",
        &e.kernel_path,
    ])?;
    let touching: Vec<&str> = touching.lines().collect();
    let Some(first) = touching.last() else {
        bail!(
            "{}: no commit of the series touches {}",
            e.view_path,
            e.kernel_path
        );
    };
    let old = git
        .cmd(&["cat-file", "blob", &format!("{tip}:{}", e.kernel_path)])
        .output()?;
    let old = if old.status.success() {
        old.stdout
    } else {
        Vec::new()
    };
    let Some(new) = &e.new else {
        // Deleting the file belongs to the commit that added or last changed it.
        return Ok(touching[0].to_string());
    };
    let lines = old.iter().filter(|b| **b == b'\n').count().max(1);
    let mut owners = BTreeSet::new();
    for (start, count) in changed_ranges(git, &old, new)? {
        let s = start.clamp(1, lines);
        let end = (start + count.max(1) - 1).clamp(s, lines);
        let blame = git.run(&[
            "blame",
            "--porcelain",
            "-L",
            &format!("{s},{end}"),
            tip,
            "--",
            &e.kernel_path,
        ])?;
        for l in blame.lines() {
            let word = l.split(' ').next().unwrap_or("");
            if word.len() == 40 && word.bytes().all(|c| c.is_ascii_hexdigit()) && l.contains(' ') {
                // Lines of the base belong to the first series commit that touches the file.
                let in_series = touching.contains(&word);
                owners.insert(if in_series {
                    word.to_string()
                } else {
                    first.to_string()
                });
            }
        }
    }
    match owners.len() {
        1 => Ok(owners.into_iter().next().expect("one owner")),
        0 => Ok(first.to_string()),
        _ => {
            let names: Vec<String> = owners
                .iter()
                .map(|c| {
                    git.run(&["log", "-1", "--format=%h %s", c])
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                })
                .collect();
            bail!(
                "{}: the edit changes lines of several commits ({}); make it in the kernel tree \
                 as fixups of each",
                e.view_path,
                names.join("; ")
            )
        }
    }
}

/// The topic whose own commits include `commit`.
fn topic_of<'a>(git: &Git, topics: &'a Topics, commit: &str) -> Result<&'a Topic> {
    for t in &topics.topics {
        if series::own_commits(git, t)?.iter().any(|c| c == commit) {
            return Ok(t);
        }
    }
    bail!("commit {commit} belongs to no topic")
}

/// Commits `edits` as a fixup of `commit` on topic `t` and autosquashes the topic.
fn fixup(git: &Git, t: &Topic, commit: &str, tip: &str, edits: &[Edit]) -> Result<()> {
    git.run(&["checkout", "-q", "-f", &t.branch])?;
    for e in edits {
        let path = git.dir.join(&e.kernel_path);
        match &e.new {
            None => {
                git.run(&["rm", "-q", "--", &e.kernel_path])?;
            }
            Some(new) => {
                // Three-way: the change tip → new, carried onto the topic's version of the file.
                let tip_old = git
                    .cmd(&["cat-file", "blob", &format!("{tip}:{}", e.kernel_path)])
                    .output()?;
                let merged = if tip_old.status.success() && path.exists() {
                    let tmp = series::tempdir(&git.dir, "absorb")?;
                    let base = tmp.path().join("base");
                    let theirs = tmp.path().join("theirs");
                    fs::write(&base, &tip_old.stdout)?;
                    fs::write(&theirs, new)?;
                    let out = git
                        .cmd(&["merge-file", "-p"])
                        .arg(&path)
                        .arg(&base)
                        .arg(&theirs)
                        .output()?;
                    if !out.status.success() {
                        bail!(
                            "{}: the edit does not carry over to topic `{}`",
                            e.view_path,
                            t.branch
                        );
                    }
                    out.stdout
                } else {
                    new.clone()
                };
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)?;
                }
                fs::write(&path, merged)?;
                git.run(&["add", "--", &e.kernel_path])?;
            }
        }
    }
    git.run(&["commit", "-q", "--no-verify", &format!("--fixup={commit}")])?;
    let upstream = if t.parents.len() == 1 {
        parent_ref(&t.parents[0])
    } else {
        git.run(&[
            "rev-list",
            "--first-parent",
            "--merges",
            "-n1",
            &format!("refs/heads/{}", t.branch),
        ])?
        .trim()
        .to_string()
    };
    let mut c = git.cmd(&["rebase", "-q", "-i", "--autosquash", &upstream]);
    c.env("GIT_SEQUENCE_EDITOR", "true")
        .env("GIT_EDITOR", "true");
    if let Err(e) = Git::run_cmd(c) {
        let _ = git.run(&["rebase", "--abort"]);
        bail!("autosquash of topic `{}` failed: {e}", t.branch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_hunks;

    #[test]
    fn hunk_ranges() {
        let d = "--- a\n+++ b\n@@ -3 +3 @@\n-x\n+y\n@@ -10,0 +11,2 @@\n+a\n+b\n@@ -20,3 +22,0 @@\n";
        assert_eq!(parse_hunks(d), vec![(3, 1), (10, 0), (20, 3)]);
    }
}
