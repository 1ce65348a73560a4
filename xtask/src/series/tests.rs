//! Round-trip tests of the series tooling on a small synthetic kernel and series.

use crate::cache::Verdicts;
use crate::ctx::Ctx;
use crate::git::Git;
use crate::series::topics::Topics;
use crate::series::{self, read_topic_dir};
use crate::setup::{tool_commit_env, Toolchain, BASE_TAG};
use crate::{series::absorb, series::check, series::tipview, series::tree, util};
use std::fs;
use std::path::{Path, PathBuf};

const TOPICS: &str = r#"
[[topic]]
dir = "a"
branch = "staging/a"
parents = ["base"]
subject = "rust: add a"
cover = "Topic a."

[[topic]]
dir = "b"
branch = "staging/b"
parents = ["staging/a"]
subject = "rust: add b"
cover = "Topic b."

[[topic]]
dir = "c"
branch = "topic/c"
parents = ["staging/a"]
subject = "rust: add c"
cover = "Topic c."

[[topic]]
dir = "dev"
branch = "staging/dev"
parents = ["staging/b", "topic/c"]
subject = "integration"
cover = "Merge of b and c."

[[topic]]
dir = "tip"
branch = "nova/stub"
parents = ["staging/dev"]
subject = "drm/nova: stub"
cover = "The driver."
"#;

/// A temporary folder removed on drop.
struct Tmp(PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> Tmp {
    let d = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    Tmp(d)
}

fn git(dir: &Path, args: &[&str], date: &str) {
    let mut c = Git::new(dir).cmd(args);
    tool_commit_env(&mut c, date);
    Git::run_cmd(c).unwrap_or_else(|e| panic!("git {args:?}: {e}"));
}

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn commit(dir: &Path, msg: &str, date: &str) {
    git(dir, &["add", "-A"], date);
    git(dir, &["commit", "-q", "-m", msg], date);
}

/// A base repository (tagged like the real one), a project repository with topics.toml, and a
/// kernel tree whose branches hold a commit per topic, exported once.
struct World {
    _tmp: Tmp,
    base: PathBuf,
    repo: PathBuf,
    build: PathBuf,
    topics: Topics,
}

impl World {
    fn tree(&self) -> PathBuf {
        self.build.join("linux")
    }
    fn series(&self) -> PathBuf {
        self.repo.join("series")
    }
    /// A toolchain whose only real part is the base repository (the checks run no compiler).
    fn tc(&self) -> Toolchain {
        Toolchain {
            rust_lib_src: PathBuf::new(),
            bindgen: PathBuf::new(),
            base_repo: self.base.clone(),
            rootfs: PathBuf::new(),
            b4: PathBuf::new(),
            kcidb_python: PathBuf::new(),
            versions: "test toolchain".into(),
        }
    }
    fn verdicts(&self) -> Verdicts {
        Verdicts::at(self.build.join("verdicts"))
    }
    /// A context on the project repository, reading its series afresh.
    fn ctx(&self) -> Ctx {
        Ctx::at(
            self.repo.clone(),
            self.build.clone(),
            self.build.join("cache"),
        )
    }
}

fn world(name: &str) -> World {
    let t = tmp(name);
    let base = t.0.join("base");
    fs::create_dir_all(&base).unwrap();
    git(&base, &["init", "-q", "-b", "base"], "2025-01-01T00:00:00Z");
    write(&base, "MAINTAINERS", "RUST\nM:\tsomeone\n");
    write(
        &base,
        "rust/kernel/lib.rs",
        "//! The kernel crate.\n\npub mod a;\n\nfn x() {}\n",
    );
    write(&base, "README", "Linux\n");
    // A stand-in for checkpatch: flags any patch that adds the word BADSTYLE.
    write(
        &base,
        "scripts/checkpatch.pl",
        "@ARGV = grep { !/^--/ } @ARGV;\nwhile (<>) { if (/^\\+.*BADSTYLE/) { print \"ERROR: BADSTYLE\\n\"; exit 1; } }\n",
    );
    commit(&base, "base", "2025-01-01T00:00:00Z");
    git(
        &base,
        &["tag", "-a", BASE_TAG, "-m", "base"],
        "2025-01-01T00:00:00Z",
    );

    let repo = t.0.join("repo");
    fs::create_dir_all(repo.join("series")).unwrap();
    fs::write(repo.join("series/topics.toml"), TOPICS).unwrap();
    for dir in ["a", "b", "c", "dev", "tip"] {
        write(&repo, &format!("series/{dir}/{}", series::KEEP), "");
    }
    git(&repo, &["init", "-q"], "2025-01-01T00:00:00Z");
    let build = repo.join("build");
    let topics = Topics::parse(TOPICS).unwrap();
    let tree_dir = build.join("linux");
    tree::materialise(
        &tree_dir,
        &base,
        &topics,
        &repo.join("series"),
        tree::OnUnexported::Fail,
    )
    .unwrap();

    // One commit per topic, written like a developer would, then exported.
    let d = "2025-02-01T10:00:00Z";
    git(&tree_dir, &["checkout", "-q", "staging/a"], d);
    write(
        &tree_dir,
        "rust/kernel/device.rs",
        "//! Devices.\n\npub struct Device;\n\nimpl Device {}\n",
    );
    write(
        &tree_dir,
        "MAINTAINERS",
        "RUST\nM:\tsomeone\nF:\trust/kernel/device.rs\n",
    );
    commit(
        &tree_dir,
        "rust: add device\n\nWhy: drivers need it.\n\nSigned-off-by: A <a@example.org>",
        d,
    );
    let d = "2025-02-02T10:00:00Z";
    git(
        &tree_dir,
        &["checkout", "-q", "-B", "staging/b", "staging/a"],
        d,
    );
    write(&tree_dir, "rust/kernel/pci.rs", "//! PCI.\n");
    commit(
        &tree_dir,
        "rust: add pci\n\nSigned-off-by: B <b@example.org>",
        d,
    );
    git(
        &tree_dir,
        &["checkout", "-q", "-B", "topic/c", "staging/a"],
        d,
    );
    write(&tree_dir, "rust/kernel/drm.rs", "//! DRM.\n");
    commit(
        &tree_dir,
        "rust: add drm\n\nSigned-off-by: C <c@example.org>",
        d,
    );
    git(
        &tree_dir,
        &["checkout", "-q", "-B", "staging/dev", "staging/b"],
        d,
    );
    git(
        &tree_dir,
        &["merge", "-q", "--no-ff", "-m", "merge", "topic/c"],
        d,
    );
    git(
        &tree_dir,
        &["checkout", "-q", "-B", "nova/stub", "staging/dev"],
        d,
    );
    write(&tree_dir, "drivers/gpu/drm/nova/nova.rs", "//! Nova.\n");
    write(
        &tree_dir,
        "rust/kernel/lib.rs",
        "//! The kernel crate.\n\npub mod a;\npub mod nova;\n\nfn x() {}\n",
    );
    commit(
        &tree_dir,
        "drm/nova: add stub\n\nSigned-off-by: N <n@example.org>",
        d,
    );
    export_all(&tree_dir, &topics, &repo);
    World {
        _tmp: t,
        base,
        repo,
        build,
        topics,
    }
}

fn export_all(tree_dir: &Path, topics: &Topics, repo: &Path) {
    let g = Git::new(tree_dir);
    series::export(&g, topics, &repo.join("series")).unwrap();
    let view = tipview::generate(&g, &topics.tip().branch).unwrap();
    tipview::write(repo, &view, false).unwrap();
    for t in &topics.topics {
        tree::record_synced(tree_dir, t, &series::format_topic(&g, t).unwrap()).unwrap();
    }
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if rel == ".git" || rel == "build" {
                continue;
            }
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn failing(results: &[check::CheckResult]) -> Vec<String> {
    results
        .iter()
        .flat_map(|r| r.problems.iter().map(move |p| format!("{}: {p}", r.name)))
        .collect()
}

#[test]
fn export_materialise_export_is_identity_and_deterministic() {
    let w = world("roundtrip");
    let first = snapshot(&w.repo);
    let counts: Vec<usize> = w
        .topics
        .topics
        .iter()
        .map(|t| read_topic_dir(&w.series(), t).unwrap().len())
        .collect();
    assert_eq!(
        counts,
        [2, 2, 2, 0, 2],
        "cover letter + one patch per topic; the merge topic is empty"
    );
    // The tip view: new files whole, edits of base files as .patch, plus the manifest.
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "rust/kernel/device.rs",
        "drivers/gpu/drm/nova/nova.rs",
        "MAINTAINERS.patch",
        "rust/kernel/lib.rs.patch",
        "series/tip-view.sha256",
        "series/a/0001-rust-add-device.patch",
        "series/a/0000-cover-letter.patch",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let cover = String::from_utf8(
        read_topic_dir(&w.series(), &w.topics.topics[1]).unwrap()["0000-cover-letter.patch"]
            .clone(),
    )
    .unwrap();
    assert!(
        cover.contains("Subject: [PATCH 0/1] rust: add b"),
        "{cover}"
    );
    assert!(cover.contains("Topic b."), "{cover}");
    assert!(cover.contains("base-commit: "), "{cover}");
    assert!(cover.contains("prerequisite-patch-id: "), "{cover}");
    assert!(
        cover.contains("Date: Sun, 2 Feb 2025 10:00:00 +0000"),
        "{cover}"
    );
    assert!(!cover.contains("*** "), "{cover}");

    // Export again from the same branches: byte-identical.
    export_all(&w.tree(), &w.topics, &w.repo);
    assert_eq!(first, snapshot(&w.repo), "a second export changed files");

    // Materialise a fresh tree from series/ (new commit hashes) and export from it.
    let tree2 = w.build.join("linux2");
    tree::materialise(
        &tree2,
        &w.base,
        &w.topics,
        &w.series(),
        tree::OnUnexported::Fail,
    )
    .unwrap();
    export_all(&tree2, &w.topics, &w.repo);
    assert_eq!(
        first,
        snapshot(&w.repo),
        "export → materialise → export changed files"
    );
}

#[test]
fn check_passes_then_catches_direct_edit_which_absorb_folds_in() {
    let w = world("absorb");
    let ok = check::run(&w.ctx(), &w.tc(), &w.verdicts()).unwrap();
    assert!(failing(&ok).is_empty(), "{:?}", failing(&ok));

    // A direct edit of a whole new file owned by topic a.
    let dev = w.repo.join("rust/kernel/device.rs");
    fs::write(
        &dev,
        "//! Devices.\n\npub struct Device;\n\nimpl Device {\n    // absorbed\n}\n",
    )
    .unwrap();
    let r = check::run(&w.ctx(), &w.tc(), &w.verdicts()).unwrap();
    let f = failing(&r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].contains("rust/kernel/device.rs: edited directly"),
        "{f:?}"
    );
    // Export refuses to overwrite the edit.
    let e = tipview::write(&w.repo, &tipview::View::new(), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("rust/kernel/device.rs"), "{e}");

    // A direct edit of a .patch file owned by the tip topic.
    let libp = w.repo.join("rust/kernel/lib.rs.patch");
    let text = fs::read_to_string(&libp)
        .unwrap()
        .replace("+pub mod nova;", "+pub mod nova;\n+pub mod uapi;");
    let text = text.replace("@@ -1,5 +1,6 @@", "@@ -1,5 +1,7 @@");
    fs::write(&libp, text).unwrap();

    let absorbed = absorb::absorb(&w.ctx(), &w.base).unwrap();
    assert_eq!(absorbed.len(), 2, "{absorbed:?}");
    let r = check::run(&w.ctx(), &w.tc(), &w.verdicts()).unwrap();
    assert!(failing(&r).is_empty(), "{:?}", failing(&r));
    let a = read_topic_dir(&w.series(), &w.topics.topics[0]).unwrap();
    let p = String::from_utf8(a["0001-rust-add-device.patch"].clone()).unwrap();
    assert!(
        p.contains("+    // absorbed"),
        "the edit went into topic a's commit:\n{p}"
    );
    let tip = read_topic_dir(&w.series(), &w.topics.topics[4]).unwrap();
    let p = String::from_utf8(tip["0001-drm-nova-add-stub.patch"].clone()).unwrap();
    assert!(p.contains("+pub mod uapi;"), "{p}");
    assert_eq!(a.len(), 2, "still one commit in topic a");
}

#[test]
fn unexported_work_is_never_destroyed() {
    let w = world("safety");
    let g = Git::new(w.tree());
    git(
        &w.tree(),
        &["checkout", "-q", "staging/b"],
        "2025-03-01T00:00:00Z",
    );
    write(&w.tree(), "rust/kernel/pci.rs", "//! PCI, more.\n");
    commit(&w.tree(), "rust: more pci", "2025-03-01T00:00:00Z");
    let extra = g.rev("refs/heads/staging/b").unwrap();
    let e = tree::materialise(
        &w.tree(),
        &w.base,
        &w.topics,
        &w.series(),
        tree::OnUnexported::Fail,
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("staging/b"), "{e:#}");
    assert_eq!(
        g.rev("refs/heads/staging/b").unwrap(),
        extra,
        "branch untouched"
    );

    // `run` and `build` keep the work in progress as it is.
    tree::materialise(
        &w.tree(),
        &w.base,
        &w.topics,
        &w.series(),
        tree::OnUnexported::Keep,
    )
    .unwrap();
    assert_eq!(
        g.rev("refs/heads/staging/b").unwrap(),
        extra,
        "kept for building"
    );

    // --force replaces the branches but keeps the old tips.
    tree::materialise(
        &w.tree(),
        &w.base,
        &w.topics,
        &w.series(),
        tree::OnUnexported::Force,
    )
    .unwrap();
    let backups = g
        .run(&[
            "for-each-ref",
            "--format=%(objectname)",
            "refs/nova-backup/",
        ])
        .unwrap();
    assert!(
        backups.lines().any(|l| l == extra),
        "--force keeps the old tip: {backups}"
    );
    assert_ne!(g.rev("refs/heads/staging/b").unwrap(), extra);

    // series/ changed upstream while the branch did not: re-materialising is safe without --force.
    let b = &w.topics.topics[1];
    series::write_topic_dir(&w.series(), b, &series::PatchFiles::new()).unwrap();
    assert_eq!(
        tree::state(&g, &w.topics, &w.series(), b).unwrap(),
        tree::State::SeriesNewer
    );
}

#[test]
fn a_patch_that_does_not_apply_is_named() {
    let w = world("broken");
    let p = w.series().join("b/0001-rust-add-pci.patch");
    let text = fs::read_to_string(&p)
        .unwrap()
        .replace("rust/kernel/pci.rs", "README");
    fs::write(&p, text).unwrap();
    let tree3 = w.build.join("linux3");
    let e = format!(
        "{:#}",
        tree::materialise(
            &tree3,
            &w.base,
            &w.topics,
            &w.series(),
            tree::OnUnexported::Fail
        )
        .unwrap_err()
    );
    assert!(e.contains("topic `staging/b`"), "{e}");
    assert!(e.contains("series/b/0001-rust-add-pci.patch"), "{e}");
    let r = check::run(&w.ctx(), &w.tc(), &w.verdicts()).unwrap();
    assert!(
        failing(&r).iter().any(|f| f.starts_with("applies")),
        "{:?}",
        failing(&r)
    );
}

#[test]
fn an_interrupted_am_is_reported_in_the_users_tree_and_undone_in_the_tools() {
    let w = world("interrupted-am");
    // What a killed `git am` leaves: a patch that does not apply, stopped half-way.
    let bad = w.build.join("bad.patch");
    let good = fs::read_to_string(w.series().join("b/0001-rust-add-pci.patch")).unwrap();
    fs::write(&bad, good.replace("rust/kernel/pci.rs", "README")).unwrap();
    let g = Git::new(w.tree());
    assert!(g.run(&["am", "-q", &bad.to_string_lossy()]).is_err());
    assert_eq!(tree::operation_in_progress(&g).unwrap(), Some("am"));
    // series/ moved on, so the tree would need applying: refused with the command that cleans.
    let p = w.series().join("c/0001-rust-add-drm.patch");
    let edited = fs::read_to_string(&p).unwrap().replace("DRM", "DRM, more");
    fs::write(&p, edited).unwrap();
    let e = tree::materialise(
        &w.tree(),
        &w.base,
        &w.topics,
        &w.series(),
        tree::OnUnexported::Fail,
    )
    .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("`git am` is in progress") && e.contains("am --abort"),
        "{e}"
    );
    // The tool's own trees (and --force) undo it and apply series/.
    tree::materialise(
        &w.tree(),
        &w.base,
        &w.topics,
        &w.series(),
        tree::OnUnexported::Force,
    )
    .unwrap();
    assert_eq!(tree::operation_in_progress(&g).unwrap(), None);
    let r = check::run(&w.ctx(), &w.tc(), &w.verdicts()).unwrap();
    assert!(
        !failing(&r).iter().any(|f| f.starts_with("applies")),
        "{:?}",
        failing(&r)
    );
}

#[test]
fn a_missing_topic_folder_is_an_error_not_an_empty_topic() {
    let w = world("missing-dir");
    fs::remove_dir_all(w.series().join("c")).unwrap();
    let e = format!(
        "{:#}",
        read_topic_dir(&w.series(), &w.topics.topics[2]).unwrap_err()
    );
    assert!(e.contains("series/c of topic `topic/c`"), "{e}");
    let r = check::run(&w.ctx(), &w.tc(), &w.verdicts());
    let failed = match r {
        Err(e) => vec![format!("{e:#}")],
        Ok(r) => failing(&r),
    };
    assert!(failed.iter().any(|f| f.contains("series/c")), "{failed:?}");
    // A topic without patches keeps its folder through an export.
    let empty = series::PatchFiles::new();
    series::write_topic_dir(&w.series(), &w.topics.topics[2], &empty).unwrap();
    assert!(w.series().join("c").join(series::KEEP).is_file());
    assert!(read_topic_dir(&w.series(), &w.topics.topics[2])
        .unwrap()
        .is_empty());
}

#[test]
fn stray_kernel_file_in_repo_is_reported() {
    let w = world("stray");
    write(&w.repo, "rust/kernel/stray.rs", "//! Not in the series.\n");
    let r = check::run(&w.ctx(), &w.tc(), &w.verdicts()).unwrap();
    let f = failing(&r);
    assert!(
        f.iter()
            .any(|p| p.contains("rust/kernel/stray.rs: not part of the series")),
        "{f:?}"
    );
}

#[test]
fn checkpatch_runs_on_every_patch() {
    let w = world("checkpatch");
    let tree_dir = w.tree();
    let d = "2025-04-01T00:00:00Z";
    git(&tree_dir, &["checkout", "-q", "nova/stub"], d);
    write(&tree_dir, "drivers/gpu/drm/nova/bad.rs", "// BADSTYLE\n");
    commit(&tree_dir, "drm/nova: add a badly styled file", d);
    export_all(&tree_dir, &w.topics, &w.repo);
    let r = check::run(&w.ctx(), &w.tc(), &w.verdicts()).unwrap();
    let f = failing(&r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].starts_with("checkpatch: series/tip/0002-drm-nova-add-a-badly-styled-file.patch"),
        "{f:?}"
    );
    assert!(f[0].contains("ERROR: BADSTYLE"), "{f:?}");
}

#[test]
fn a_new_base_is_fetched_and_the_branches_reapplied() {
    let w = world("newbase");
    let d = "2025-05-01T00:00:00Z";
    write(&w.base, "README", "Linux, imported again\n");
    commit(&w.base, "base, re-imported", d);
    git(&w.base, &["tag", "-f", "-a", BASE_TAG, "-m", "base"], d);
    let tag = format!("refs/tags/{BASE_TAG}");
    let new_base = Git::new(&w.base).rev(&tag).unwrap();
    tree::materialise(
        &w.tree(),
        &w.base,
        &w.topics,
        &w.series(),
        tree::OnUnexported::Fail,
    )
    .unwrap();
    let g = Git::new(w.tree());
    assert_eq!(g.rev(&tag).unwrap(), new_base);
    for t in &w.topics.topics {
        let branch = format!("refs/heads/{}", t.branch);
        assert!(
            g.ok(&["merge-base", "--is-ancestor", &new_base, &branch]),
            "{branch} not on the new base"
        );
    }
}

#[test]
fn the_series_is_read_once_and_a_broken_description_fails_the_topics_check() {
    let w = world("topics-check");
    let ctx = w.ctx();
    let first = ctx.series().unwrap() as *const _;
    assert!(std::ptr::eq(first, ctx.series().unwrap()), "read again");
    assert_eq!(ctx.series().unwrap().dir, w.series());
    let file = w.series().join("topics.toml");
    fs::write(&file, "[[topic]]\ndir = \"a\"\n").unwrap();
    // The context that read it keeps what it read; a new one reads the broken file.
    assert_eq!(ctx.series().unwrap().topics.topics.len(), 5);
    let e = format!("{:#}", w.ctx().series().unwrap_err());
    assert!(e.starts_with(&format!("in {}: ", file.display())), "{e}");
    let r = check::run(&w.ctx(), &w.tc(), &w.verdicts()).unwrap();
    assert_eq!(r.len(), 1, "{:?}", failing(&r));
    assert_eq!(r[0].name, "topics");
    assert!(
        r[0].problems[0].contains("topics.toml"),
        "{:?}",
        r[0].problems
    );
    fs::remove_file(&file).unwrap();
    let e = format!("{:#}", w.ctx().series().unwrap_err());
    assert!(
        e.starts_with(&format!("cannot read {}", file.display())),
        "{e}"
    );
}

#[test]
fn the_check_tree_is_applied_once_and_its_work_trees_go_with_them() {
    let w = world("check-tree");
    let ctx = w.ctx();
    let check_tree = tree::ToolTree::check(&w.build);
    assert_eq!(check_tree.dir, w.build.join("series-check"));
    check_tree.apply(ctx.series().unwrap(), &w.base).unwrap();
    let git = check_tree.git();
    let tip = git.rev("refs/heads/nova/stub").unwrap();
    // Applied unchanged already: the tree is left alone (a commit of ours stays).
    git.run(&["commit", "-q", "--allow-empty", "-m", "mark"])
        .unwrap();
    let marked = git.rev("HEAD").unwrap();
    check_tree.apply(ctx.series().unwrap(), &w.base).unwrap();
    assert_eq!(git.rev("HEAD").unwrap(), marked);
    // series/ changed: applied again, the branches replaced.
    let p = w.series().join("c/0001-rust-add-drm.patch");
    let edited = fs::read_to_string(&p).unwrap().replace("DRM", "DRM, more");
    fs::write(&p, edited).unwrap();
    check_tree.apply(ctx.series().unwrap(), &w.base).unwrap();
    assert_ne!(git.rev("refs/heads/nova/stub").unwrap(), tip);

    let work = tree::b4_work(&w.build, &w.topics.topics[1]);
    assert_eq!(work, w.build.join("b4/b"));
    let wt = check_tree.worktree(&work, "refs/heads/staging/a").unwrap();
    assert_eq!(wt.dir, work.join("tree"));
    assert_eq!(wt.git().rev("HEAD"), git.rev("refs/heads/staging/a"));
    drop(wt);
    assert!(!work.join("tree").exists());
    let listed = git.run(&["worktree", "list", "--porcelain"]).unwrap();
    assert!(!listed.contains("b4/b/tree"), "{listed}");
    // One whose folder was removed behind git's back (a run that died) is no obstacle.
    let wt = check_tree.worktree(&work, "refs/heads/staging/a").unwrap();
    std::mem::forget(wt);
    util::remove_dir(&work).unwrap();
    let wt = check_tree.worktree(&work, "refs/heads/staging/b").unwrap();
    assert_eq!(wt.git().rev("HEAD"), git.rev("refs/heads/staging/b"));
}

#[test]
fn a_topic_whose_parent_moved_is_rebuilt_on_it() {
    let w = world("parent-moved");
    let g = Git::new(w.tree());
    let d = "2025-03-01T10:00:00Z";
    // A new commit on staging/b, exported: staging/dev's own patches (none) are unchanged, but
    // it no longer stands on its parent's tip, nor does nova/stub.
    git(&w.tree(), &["checkout", "-q", "staging/b"], d);
    write(&w.tree(), "rust/kernel/pci.rs", "//! PCI, more.\n");
    commit(
        &w.tree(),
        "rust: pci: more\n\nSigned-off-by: B <b@example.org>",
        d,
    );
    export_all(&w.tree(), &w.topics, &w.repo);
    let dev = w.topics.by_branch("staging/dev").unwrap();
    assert_eq!(
        tree::state(&g, &w.topics, &w.series(), dev).unwrap(),
        tree::State::SeriesNewer
    );
    tree::materialise(
        &w.tree(),
        &w.base,
        &w.topics,
        &w.series(),
        tree::OnUnexported::Fail,
    )
    .unwrap();
    for branch in ["staging/dev", "nova/stub"] {
        assert!(
            g.ok(&["merge-base", "--is-ancestor", "staging/b", branch]),
            "{branch} stands on staging/b's new tip"
        );
    }
    // The children's cover letters name their new base: exported again, all are in sync.
    export_all(&w.tree(), &w.topics, &w.repo);
    for t in &w.topics.topics {
        assert_eq!(
            tree::state(&g, &w.topics, &w.series(), t).unwrap(),
            tree::State::InSync,
            "{}",
            t.branch
        );
    }
}

#[test]
fn a_rebased_parent_is_not_exported_as_its_childrens_work() {
    let w = world("parent-rebased");
    let g = Git::new(w.tree());
    let d = "2025-03-01T10:00:00Z";
    let tip_before = read_topic_dir(&w.series(), w.topics.tip()).unwrap();
    // staging/b's commit rewritten: its children still hold the old one.
    git(&w.tree(), &["checkout", "-q", "staging/b"], d);
    write(&w.tree(), "rust/kernel/pci.rs", "//! PCI, reworded.\n");
    git(&w.tree(), &["add", "-A"], d);
    git(&w.tree(), &["commit", "-q", "--amend", "--no-edit"], d);
    let counts = series::export(&g, &w.topics, &w.series()).unwrap();
    let dev = counts.iter().find(|(b, _)| b == "staging/dev").unwrap();
    assert_eq!(dev.1, series::Exported::Behind("staging/b".into()));
    assert_eq!(
        read_topic_dir(&w.series(), w.topics.tip()).unwrap(),
        tip_before,
        "the old commit of staging/b is not exported as nova/stub's"
    );
    // Rebuilt from series/ (the tip's branch holds the old commit: --force), then exported.
    tree::materialise(
        &w.tree(),
        &w.base,
        &w.topics,
        &w.series(),
        tree::OnUnexported::Force,
    )
    .unwrap();
    export_all(&w.tree(), &w.topics, &w.repo);
    assert_eq!(
        fs::read_to_string(w.tree().join("rust/kernel/pci.rs")).unwrap(),
        "//! PCI, reworded.\n"
    );
    for t in &w.topics.topics {
        assert_eq!(
            tree::state(&g, &w.topics, &w.series(), t).unwrap(),
            tree::State::InSync,
            "{}",
            t.branch
        );
    }
}
