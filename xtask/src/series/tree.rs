//! The kernel git trees the tool makes, and materialising them: the base tag and every topic
//! branch applied from `series/`.
//!
//! Every git tree and work tree the tool makes is named, made and removed here:
//! - the kernel tree `build/linux` ([`crate::ctx::kernel_tree`]): the developer's, where kernel code is
//!   edited; made by [`materialise`], never rewritten without `--force`, never removed;
//! - the tool's own trees ([`ToolTree`]), which the user never edits: the check tree
//!   `build/series-check` (`series/` as it is, for checks, mbox, b4 and the builds of series
//!   topics) and the absorb tree `build/absorb`;
//! - work trees of a tool's tree ([`Worktree`], e.g. a b4 round trip's in `build/b4/<topic>`,
//!   see [`b4_work`]), removed when dropped;
//! - the clones of this repository that `cargo xtask bench` runs CI in ([`bench_clone`]).
//!
//! Not here: the source trees of the build slots ([`crate::cache::Slot`]), made and locked with
//! their build folders in the cache, and the base repository, imported by setup.
//!
//! A tree remembers, per topic, the export it was last synchronised with (materialised from or
//! exported to). A branch whose export differs from that record holds work that is not in
//! `series/`: it is never overwritten without `--force`, and even then its old tip is kept under
//! `refs/nova-backup/`.

use crate::git::Git;
use crate::series::topics::{Series, Topic, Topics};
use crate::series::{self, format_topic, parent_ref, read_topic_dir, PatchFiles};
use crate::setup::{tool_commit_env, BASE_DATE, BASE_TAG};
use crate::util::{self, sha256, Stamp};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// A kernel tree the tool owns and the user never edits: it is always materialised with
/// [`OnUnexported::Force`] (its branches replaced, an interrupted `git am` undone).
pub struct ToolTree {
    /// The tree's folder.
    pub dir: PathBuf,
}

impl ToolTree {
    /// The check tree (`build/series-check`): `series/` as it is, brought along by
    /// [`ToolTree::apply`].
    pub fn check(build: &Path) -> Self {
        Self {
            dir: build.join("series-check"),
        }
    }

    /// The absorb tree (`build/absorb`), where `series absorb` rewrites topics.
    pub fn absorb(build: &Path) -> Self {
        Self {
            dir: build.join("absorb"),
        }
    }

    /// The tree's repository.
    pub fn git(&self) -> Git {
        Git::new(&self.dir)
    }

    /// Creates the tree if needed and materialises the topics of `series_dir` in it, whatever
    /// its branches held.
    pub fn materialise(&self, base_repo: &Path, topics: &Topics, series_dir: &Path) -> Result<()> {
        materialise(
            &self.dir,
            base_repo,
            topics,
            series_dir,
            OnUnexported::Force,
        )
    }

    /// Materialises `series` in the tree, unless it was applied there unchanged already (same
    /// series, same base), as the stamp `<dir>.applied` records.
    pub fn apply(&self, series: &Series, base_repo: &Path) -> Result<()> {
        let key = series_key(series, base_repo)?;
        let stamp = Stamp::new(self.dir.with_extension("applied"));
        if stamp.is_done(&key) && Git::exists(&self.dir) {
            return Ok(());
        }
        stamp.clear()?;
        self.materialise(base_repo, &series.topics, &series.dir)?;
        stamp.mark(&key)
    }

    /// A work tree of this tree for the work done in folder `work`: `<work>/tree`, checked out
    /// (detached) at `rev`, removed when the value is dropped.
    pub fn worktree(&self, work: &Path, rev: &str) -> Result<Worktree> {
        let dir = work.join("tree");
        let owner = self.git();
        // One whose folder went (a run that died, its `work` removed) is forgotten first.
        let _ = owner.run(&["worktree", "prune"]);
        owner.run(&[
            "worktree",
            "add",
            "-q",
            "--detach",
            &dir.to_string_lossy(),
            rev,
        ])?;
        Ok(Worktree { owner, dir })
    }
}

/// A digest of `series` (topic folders and description) and of the base it applies to.
fn series_key(series: &Series, base_repo: &Path) -> Result<String> {
    let base = Git::new(base_repo)
        .rev(&format!("refs/tags/{BASE_TAG}"))
        .unwrap_or_default();
    let mut key = base + &sha256(&fs::read(series.dir.join("topics.toml"))?);
    for t in &series.topics.topics {
        for (name, data) in read_topic_dir(&series.dir, t)? {
            key.push_str(&format!("{}/{name}:{}", t.dir, sha256(&data)));
        }
    }
    Ok(sha256(format!("{BASE_TAG}{key}").as_bytes()))
}

/// A work tree of a [`ToolTree`] ([`ToolTree::worktree`]): removed, with its registration,
/// when dropped, whatever way its user leaves.
pub struct Worktree {
    owner: Git,
    /// The work tree's folder.
    pub dir: PathBuf,
}

impl Worktree {
    /// The work tree's repository.
    pub fn git(&self) -> Git {
        Git::new(&self.dir)
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let dir = self.dir.to_string_lossy().into_owned();
        let _ = self.owner.run(&["worktree", "remove", "--force", &dir]);
    }
}

/// The folder of topic `t`'s b4 round trip (`build/b4/<topic>`): b4's input, output and
/// home, and the work tree ([`ToolTree::worktree`]) its patches are applied in.
pub fn b4_work(build: &Path, t: &Topic) -> PathBuf {
    build.join("b4").join(&t.dir)
}

/// A fresh clone of the HEAD of the repository at `repo` in `build/bench/<name>` (an earlier
/// one removed first), for `cargo xtask bench`.
pub fn bench_clone(repo: &Path, build: &Path, name: &str) -> Result<PathBuf> {
    let dir = build.join("bench").join(name);
    util::remove_dir(&dir)?;
    fs::create_dir_all(dir.parent().context("no parent")?)?;
    let mut c = crate::git::command();
    c.args(["clone", "-q"]).arg(repo).arg(&dir);
    Git::run_cmd(c)?;
    Ok(dir)
}

/// Where the tree records the export each topic was last synchronised with.
fn synced_dir(tree: &Path, t: &Topic) -> PathBuf {
    tree.join(".git/nova-synced").join(&t.dir)
}

/// The recorded export of topic `t`, if any.
fn read_synced(tree: &Path, t: &Topic) -> Option<PatchFiles> {
    let dir = synced_dir(tree, t);
    let mut files = PatchFiles::new();
    for e in fs::read_dir(&dir).ok()?.flatten() {
        files.insert(
            e.file_name().to_string_lossy().into_owned(),
            fs::read(e.path()).ok()?,
        );
    }
    Some(files)
}

/// Records `files` as the export topic `t` is synchronised with.
pub fn record_synced(tree: &Path, t: &Topic, files: &PatchFiles) -> Result<()> {
    let dir = synced_dir(tree, t);
    util::remove_dir(&dir)?;
    fs::create_dir_all(&dir)?;
    for (name, data) in files {
        fs::write(dir.join(name), data)?;
    }
    Ok(())
}

/// How a topic branch of the tree relates to `series/`.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// The branch does not exist yet.
    Missing,
    /// The branch exports to exactly what `series/` holds.
    InSync,
    /// `series/` changed since the branch was synchronised; the branch itself did not.
    SeriesNewer,
    /// The branch holds commits or edits that are not exported.
    Unexported(Vec<String>),
}

/// Compares topic `t`'s branch with `series/`.
pub fn state(git: &Git, topics: &Topics, series_dir: &Path, t: &Topic) -> Result<State> {
    if git.rev(&format!("refs/heads/{}", t.branch)).is_none() {
        return Ok(State::Missing);
    }
    let branch = format!("refs/heads/{}", t.branch);
    if !git.ok(&[
        "merge-base",
        "--is-ancestor",
        &format!("refs/tags/{BASE_TAG}"),
        &branch,
    ]) {
        // Its export cannot be compared: be conservative and protect it.
        return Ok(State::Unexported(vec![format!(
            "not on the base {BASE_TAG}"
        )]));
    }
    let now = series::format_topic_remembered(git, t)?;
    let in_series = read_topic_dir(series_dir, t)?;
    if now == in_series {
        // Its own patches are exported; it is in sync only if it also stands on its parents'
        // tips (a parent that gained commits leaves it, and the merge of a topic like
        // staging/dev, behind).
        return Ok(if series::behind_parent(git, topics, t).is_some() {
            State::SeriesNewer
        } else {
            State::InSync
        });
    }
    match read_synced(&git.dir, t) {
        Some(rec) if rec == now => Ok(State::SeriesNewer),
        _ => Ok(State::Unexported(series::diff_names(&now, &in_series))),
    }
}

/// What [`materialise`] does with a tree that holds work `series/` does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnexported {
    /// Refuse, saying what to do (`cargo xtask tree`).
    Fail,
    /// Leave the tree as it is, with a note (`cargo xtask run`/`build` build the work in progress).
    Keep,
    /// Replace the branches, keeping old tips under `refs/nova-backup/` and changes in `git stash`.
    Force,
}

/// Creates the tree (a clone of the base repository) if needed and brings every topic branch in
/// line with `series/`.
pub fn materialise(
    tree: &Path,
    base_repo: &Path,
    topics: &Topics,
    series_dir: &Path,
    on_unexported: OnUnexported,
) -> Result<()> {
    let force = on_unexported == OnUnexported::Force;
    let git = Git::new(tree);
    if !Git::exists(tree) {
        util::step(
            &format!("create the kernel tree {}", tree.display()),
            || {
                let mut c = crate::git::command();
                c.args(["clone", "-q", "--branch", BASE_TAG])
                    .arg(base_repo)
                    .arg(tree);
                util::run_logged("git clone", &mut c, &tree.with_extension("clone.log"))?;
                git.run(&["checkout", "-q", "-B", "base", BASE_TAG])?;
                Ok(())
            },
        )?;
    }
    let tag = format!("refs/tags/{BASE_TAG}");
    if git.rev(&tag).is_none() {
        bail!(
            "{} has no tag {BASE_TAG}: it is not a tree made by this tool",
            tree.display()
        );
    }
    if let Some(op) = operation_in_progress(&git)? {
        if !force {
            bail!(
                "a `git {op}` is in progress in {}: finish it, or run `git -C {} {op} --abort` \
                 (or pass --force)",
                tree.display(),
                tree.display()
            );
        }
        // A tree the tool owns, or --force: an interrupted run of ours left it; undo it.
        if git.run(&[op, "--abort"]).is_err() || operation_in_progress(&git)?.is_some() {
            for dir in ["rebase-apply", "rebase-merge"] {
                let p = git.run(&["rev-parse", "--git-path", dir])?;
                util::remove_dir(&tree.join(p.trim()))?;
            }
        }
        println!(
            "    {}: aborted a `git {op}` left in progress (an interrupted run?)",
            tree.display()
        );
    }
    // A new base (re-imported by setup) means every branch must be re-applied on it. States are
    // computed against the tree's own base, before the new one is fetched.
    let base_changed = Git::new(base_repo).rev(&tag) != git.rev(&tag);
    let mut states = Vec::new();
    let mut blocked = Vec::new();
    for t in &topics.topics {
        let mut s = state(&git, topics, series_dir, t)?;
        if base_changed && s == State::InSync {
            s = State::SeriesNewer;
        }
        if let State::Unexported(files) = &s {
            blocked.push(format!("  {} ({})", t.branch, files.join(", ")));
        }
        states.push(s);
    }
    if states.iter().all(|s| *s == State::InSync) {
        return Ok(());
    }
    let dirty = git.dirty()?;
    if on_unexported == OnUnexported::Keep && (dirty || !blocked.is_empty()) {
        println!(
            "    note: {} holds work not exported to series/; building it as it is",
            tree.display()
        );
        return Ok(());
    }
    if dirty {
        if !force {
            bail!(
                "the kernel tree {} has uncommitted changes: commit them and run `cargo xtask \
                 series export`, or pass --force to discard them",
                tree.display()
            );
        }
        git.run(&["stash", "push", "-u", "-q", "-m", "nova-xtask tree --force"])?;
        println!(
            "    uncommitted changes kept in `git stash` of {}",
            tree.display()
        );
    }
    if !blocked.is_empty() {
        if !force {
            bail!(
                "these branches of {} hold work that is not exported to series/:\n{}\nrun `cargo \
                 xtask series export` to keep it, or pass --force to replace the branches (their \
                 tips are kept under refs/nova-backup/)",
                tree.display(),
                blocked.join("\n")
            );
        }
        backup(&git, topics)?;
    }
    if base_changed {
        let repo = base_repo.to_string_lossy();
        git.run(&["fetch", "-q", "--no-tags", &repo, &format!("+{tag}:{tag}")])?;
        println!(
            "    the base changed: fetched the new {BASE_TAG} into {}",
            tree.display()
        );
    }
    util::step("materialise the topic branches from series/", || {
        for t in &topics.topics {
            apply_topic(&git, series_dir, t)?;
            let files = format_topic(&git, t)?;
            record_synced(tree, t, &files)?;
        }
        git.run(&["checkout", "-q", &topics.tip().branch])?;
        Ok(())
    })
}

/// The `git am` or `git rebase` left in progress in `git`'s tree, if any.
pub fn operation_in_progress(git: &Git) -> Result<Option<&'static str>> {
    let path = |p: &str| -> Result<PathBuf> {
        Ok(git
            .dir
            .join(git.run(&["rev-parse", "--git-path", p])?.trim()))
    };
    let apply = path("rebase-apply")?;
    if apply.join("applying").exists() {
        return Ok(Some("am"));
    }
    if apply.is_dir() || path("rebase-merge")?.is_dir() {
        return Ok(Some("rebase"));
    }
    Ok(None)
}

/// Keeps the current tips of all topic branches under `refs/nova-backup/<time>/`.
fn backup(git: &Git, topics: &Topics) -> Result<()> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for t in &topics.topics {
        if let Some(rev) = git.rev(&format!("refs/heads/{}", t.branch)) {
            let name = format!("refs/nova-backup/{stamp}/{}", t.branch);
            git.run(&["update-ref", &name, &rev])?;
            println!("    old {} kept as {name}", t.branch);
        }
    }
    Ok(())
}

/// Makes `t`'s branch: its first parent, a merge of the others, then `git am` of its patches.
fn apply_topic(git: &Git, series_dir: &Path, t: &Topic) -> Result<()> {
    let first = parent_ref(&t.parents[0]);
    git.run(&["checkout", "-q", "-f", "-B", &t.branch, &first])
        .with_context(|| format!("topic `{}`: cannot start the branch", t.branch))?;
    if t.parents.len() > 1 {
        let msg = format!("Merge {} into {}", t.parents[1..].join(", "), t.branch);
        let mut args = vec!["merge", "-q", "--no-ff", "--no-edit", "-m", &msg];
        let others: Vec<String> = t.parents[1..].iter().map(|p| parent_ref(p)).collect();
        args.extend(others.iter().map(String::as_str));
        let mut c = git.cmd(&args);
        tool_commit_env(&mut c, BASE_DATE);
        if let Err(e) = Git::run_cmd(c) {
            let _ = git.run(&["merge", "--abort"]);
            bail!(
                "topic `{}`: merging {} fails: {e}",
                t.branch,
                t.parents.join(" + ")
            );
        }
    }
    let dir = series_dir.join(&t.dir);
    // The same files as read_topic_dir, which fails on a missing or unreadable folder.
    let patches: Vec<PathBuf> = read_topic_dir(series_dir, t)?
        .into_keys()
        .filter(|n| !n.starts_with("0000-"))
        .map(|n| dir.join(n))
        .collect();
    for p in &patches {
        // The author is the patch's; the committer is the tool (`git::command`).
        let mut c = git.cmd(&["am", "-q", "--committer-date-is-author-date", "--no-3way"]);
        c.arg(p);
        if let Err(e) = Git::run_cmd(c) {
            let _ = git.run(&["am", "--abort"]);
            bail!(
                "topic `{}`: patch {} does not apply:\n{e}",
                t.branch,
                p.strip_prefix(series_dir.parent().unwrap_or(series_dir))
                    .unwrap_or(p)
                    .display()
            );
        }
    }
    Ok(())
}
