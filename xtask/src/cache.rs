//! What the cache outside the clone holds for every clone on the machine: remembered verdicts,
//! kernel build slots (a source tree and its build folder, locked while in use), and
//! `cargo xtask cache status|clean`.
//!
//! Everything remembered is keyed by [`key`], which folds in the toolchain's versions, so that a
//! new rustc, clippy, bindgen or clang never reuses a verdict or an object made by another.

use crate::ctx::Ctx;
use crate::git::{self, Git};
use crate::setup::Toolchain;
use crate::util::{self, sha256};
use anyhow::{bail, Context, Result};
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};

/// The one key function of every stamp and verdict: a digest of what is checked (`kind`, e.g.
/// `checkpatch`), every input that decides the outcome (`parts`) and the toolchain's versions.
pub fn key(tc: &Toolchain, kind: &str, parts: &[&str]) -> String {
    let mut text = format!("{kind}\n{}\n", tc.versions);
    for p in parts {
        text.push_str(&sha256(p.as_bytes()));
        text.push('\n');
    }
    sha256(text.as_bytes())
}

/// Verdicts of checks that passed (checkpatch, per-commit builds, rustfmtcheck, rustdoc), one
/// empty file per [`key`]. Only passes are remembered: a failure is checked again next time.
pub struct Verdicts {
    dir: PathBuf,
}

impl Verdicts {
    /// The verdicts of the cache.
    pub fn new(ctx: &Ctx) -> Self {
        Self::at(ctx.cache.join("verdicts"))
    }

    /// Verdicts kept in `dir`.
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Whether the check with `key` passed before.
    pub fn passed(&self, key: &str) -> bool {
        self.dir.join(key).is_file()
    }

    /// Remembers that the check with `key` passed.
    pub fn record_pass(&self, key: &str) -> Result<()> {
        util::write_atomic(&self.dir.join(key), b"")
    }
}

/// A kernel build slot in the cache: a source tree (a clone sharing the base repository's
/// objects) and its build folder, held under an exclusive lock.
///
/// The source tree lives next to its build folder because make decides what to rebuild by the
/// sources' times: a fresh checkout elsewhere would make every object stale. Commits are brought
/// in with `git checkout`, which rewrites only the files that differ.
///
/// # Invariants
///
/// While a `Slot` exists, this process holds the lock of `<cache>/kbuild/<name>.lock`: no other
/// clone or run on the machine uses `src` or `out`.
pub struct Slot {
    /// The slot's name (`base`, `series-staging-rust-device`, ...).
    pub name: String,
    /// The source tree.
    pub src: PathBuf,
    /// The build folder (`O=`).
    pub out: PathBuf,
    _lock: File,
}

impl Slot {
    /// The descriptor of the slot's lock, for children that must hold it too (see
    /// [`crate::util::inherit_fd`]).
    pub fn lock_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self._lock.as_raw_fd()
    }

    /// Opens slot `name`, waiting for its lock, and creates its source tree if needed.
    pub fn open(ctx: &Ctx, tc: &Toolchain, name: &str) -> Result<Self> {
        let root = ctx.cache.join("kbuild");
        fs::create_dir_all(&root)?;
        let lock_path = root.join(format!("{name}.lock"));
        let lock = File::create(&lock_path)
            .with_context(|| format!("cannot create {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                println!("    waiting for the build slot {name} (in use by another run)");
                lock.lock()?;
            }
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
        let slot = Self {
            name: name.to_string(),
            src: root.join(name).join("src"),
            out: root.join(name).join("out"),
            _lock: lock,
        };
        if !slot.src.join(".git").is_dir() || !Git::new(&slot.src).ok(&["rev-parse", "HEAD"]) {
            // A missing or half-made source tree: make it again (its objects would be stale).
            util::remove_dir(&slot.src)?;
            util::remove_dir(&slot.out)?;
            util::step(
                &format!("create the source tree of build slot {name}"),
                || {
                    let mut c = git::command();
                    c.args(["clone", "-q", "--shared", "--no-checkout"])
                        .arg(&tc.base_repo)
                        .arg(&slot.src);
                    Git::run_cmd(c)?;
                    Git::new(&slot.src).run(&[
                        "checkout",
                        "-q",
                        "--detach",
                        &format!("refs/tags/{}", crate::setup::BASE_TAG),
                    ])?;
                    Ok(())
                },
            )?;
        }
        Ok(slot)
    }

    /// Checks out commit `rev` of repository `from` in the slot's source tree.
    pub fn checkout(&self, from: &Path, rev: &str) -> Result<()> {
        let git = Git::new(&self.src);
        let want = Git::new(from)
            .rev(rev)
            .with_context(|| format!("{} has no commit {rev}", from.display()))?;
        if git.rev("HEAD").as_deref() == Some(want.as_str()) && !git.dirty()? {
            return Ok(());
        }
        if git.rev(&want).is_none() {
            git.run(&["fetch", "-q", "--no-tags", &from.to_string_lossy(), &want])?;
        }
        git.run(&["checkout", "-q", "-f", "--detach", &want])?;
        git.run(&["clean", "-q", "-f", "-d", "-x"])?;
        Ok(())
    }
}

/// Size in bytes of everything under `path` (not following links).
fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}

fn human(bytes: u64) -> String {
    let mut v = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if v < 1024.0 || unit == "GiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    unreachable!()
}

/// `cargo xtask cache status`: what the cache holds and how big each part is.
pub fn status(ctx: &Ctx) -> Result<()> {
    println!("cache: {}", ctx.cache.display());
    let Ok(rd) = fs::read_dir(&ctx.cache) else {
        println!("  (empty)");
        return Ok(());
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    let mut total = 0;
    for p in entries {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name == "kbuild" {
            let mut slots: Vec<PathBuf> = fs::read_dir(&p)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            slots.sort();
            for s in slots {
                let size = disk_usage(&s);
                total += size;
                let built = s.join("out/.nova-built").exists();
                println!(
                    "  {:>10}  kbuild/{} ({})",
                    human(size),
                    s.file_name().unwrap_or_default().to_string_lossy(),
                    if built { "built" } else { "not built" }
                );
            }
            continue;
        }
        let size = disk_usage(&p);
        total += size;
        let what = if name == "verdicts" {
            let n = fs::read_dir(&p).map(|rd| rd.count()).unwrap_or(0);
            format!("verdicts ({n} passed checks)")
        } else {
            name
        };
        println!("  {:>10}  {what}", human(size));
    }
    println!("  {:>10}  in all", human(total));
    Ok(())
}

/// `cargo xtask cache clean`: removes the whole cache (the next run sets up again). Refuses while
/// a build slot is in use.
pub fn clean(ctx: &Ctx) -> Result<()> {
    let root = ctx.cache.join("kbuild");
    let mut held = Vec::new();
    if let Ok(rd) = fs::read_dir(&root) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "lock") {
                let f = File::open(&p)?;
                match f.try_lock() {
                    Ok(()) => held.push(f),
                    Err(TryLockError::WouldBlock) => bail!(
                        "build slot {} is in use by another run: try again when it is done",
                        p.file_stem().unwrap_or_default().to_string_lossy()
                    ),
                    Err(TryLockError::Error(e)) => return Err(e.into()),
                }
            }
        }
    }
    let size = disk_usage(&ctx.cache);
    util::remove_dir(&ctx.cache)?;
    drop(held);
    println!("removed {} ({})", ctx.cache.display(), human(size));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(versions: &str) -> Toolchain {
        Toolchain {
            rust_lib_src: PathBuf::new(),
            bindgen: PathBuf::new(),
            base_repo: PathBuf::new(),
            rootfs: PathBuf::new(),
            b4: PathBuf::new(),
            kcidb_python: PathBuf::new(),
            versions: versions.into(),
        }
    }

    #[test]
    fn keys_change_with_every_input_and_the_toolchain() {
        let a = key(&tc("rustc 1.95.0"), "build", &["tree", "frag"]);
        assert_eq!(a, key(&tc("rustc 1.95.0"), "build", &["tree", "frag"]));
        assert_ne!(a, key(&tc("rustc 1.96.0"), "build", &["tree", "frag"]));
        assert_ne!(a, key(&tc("rustc 1.95.0"), "rustdoc", &["tree", "frag"]));
        assert_ne!(a, key(&tc("rustc 1.95.0"), "build", &["tree", "frag2"]));
        // Parts are hashed one by one: moving a boundary is a different key.
        assert_ne!(a, key(&tc("rustc 1.95.0"), "build", &["tre", "efrag"]));
    }

    /// A cache with a base repository like setup's (one commit tagged BASE_TAG), and a second
    /// repository with a commit on top, in a temporary folder (removed when the first value is
    /// dropped).
    fn world() -> (tempfile::TempDir, Ctx, Toolchain, PathBuf, String) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let base = root.join("cache/linux-base.git");
        let work = root.join("work");
        fs::create_dir_all(&work).unwrap();
        let g = Git::new(&work);
        g.run(&["init", "-q", "-b", "base"]).unwrap();
        fs::write(work.join("Makefile"), "all:\n").unwrap();
        g.run(&["add", "-A"]).unwrap();
        g.run(&["commit", "-q", "-m", "base"]).unwrap();
        g.run(&["tag", crate::setup::BASE_TAG]).unwrap();
        let mut c = git::command();
        c.args(["clone", "-q", "--bare"]).arg(&work).arg(&base);
        Git::run_cmd(c).unwrap();
        fs::write(work.join("new.rs"), "// a topic's file\n").unwrap();
        g.run(&["add", "-A"]).unwrap();
        g.run(&["commit", "-q", "-m", "topic"]).unwrap();
        let topic = g.rev("HEAD").unwrap();
        let ctx = Ctx::at(root.join("repo"), root.join("build"), root.join("cache"));
        let mut t = tc("test");
        t.base_repo = base;
        (tmp, ctx, t, work, topic)
    }

    #[test]
    fn a_slot_is_locked_checked_out_and_remade_when_broken() {
        let (_tmp, ctx, tc, work, topic) = world();
        let slot = Slot::open(&ctx, &tc, "s").unwrap();
        assert!(slot.src.join("Makefile").is_file());
        slot.checkout(&work, &topic).unwrap();
        assert!(slot.src.join("new.rs").is_file());
        // A second user waits until the first is done.
        let (ctx2, tc2) = (
            Ctx::at(ctx.repo.clone(), ctx.build.clone(), ctx.cache.clone()),
            tc.clone(),
        );
        let waiter = std::thread::spawn(move || {
            let _s = Slot::open(&ctx2, &tc2, "s").unwrap();
            std::time::Instant::now()
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        let released = std::time::Instant::now();
        drop(slot);
        let acquired = waiter.join().unwrap();
        assert!(
            acquired >= released,
            "the second open did not wait for the lock"
        );
        // A child that inherited the lock (make, with what it starts) keeps the slot locked
        // after its owner let go, until it exits: a tool that dies mid-make leaves no unlocked
        // slot with a compiler still writing into it.
        let slot = Slot::open(&ctx, &tc, "s").unwrap();
        let mut child = std::process::Command::new("sleep");
        child.arg("1");
        util::inherit_fd(&mut child, slot.lock_fd());
        let mut child = child.spawn().unwrap();
        drop(slot);
        let lock = fs::File::create(ctx.cache.join("kbuild/s.lock")).unwrap();
        assert!(
            matches!(lock.try_lock(), Err(fs::TryLockError::WouldBlock)),
            "the slot was unlocked while a child holding its lock ran"
        );
        child.wait().unwrap();
        lock.try_lock().expect("unlocked once the child exited");
        drop(lock);
        // A source tree that lost its repository is made again, not trusted.
        util::remove_dir(&ctx.cache.join("kbuild/s/src/.git")).unwrap();
        let slot = Slot::open(&ctx, &tc, "s").unwrap();
        assert!(Git::new(&slot.src).rev("HEAD").is_some());
        assert!(!slot.src.join("new.rs").exists(), "back at the base");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(2048), "2.0 KiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }
}
