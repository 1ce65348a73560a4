//! Building a kernel tree out of tree (`O=`), one build folder per branch and configuration.
//!
//! A build is skipped entirely when its inputs (source commit, uncommitted changes, fragments,
//! toolchain) are those of the last successful build; otherwise `make` rebuilds incrementally.

use crate::builds::kconfig;
use crate::cache;
use crate::git::Git;
use crate::setup::{OtherRustc, Toolchain};
use crate::util::{self, run_logged, sha256, Stamp};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One kernel build.
pub struct Build {
    /// Name of the build folder and log, e.g. `base` or `nova-stub`.
    pub name: String,
    /// The kernel source (a git work tree).
    pub src: PathBuf,
    /// The build folder.
    pub out: PathBuf,
    /// Config fragments merged on top of tinyconfig.
    pub fragments: Vec<PathBuf>,
    /// Whether every option the fragments ask for must be in the final `.config` (false for a
    /// commit in the middle of a topic, which may predate the options its topic adds).
    pub strict_config: bool,
    /// Whether Rust code is compiled through clippy (`CLIPPY=1`), so its lints are warnings too.
    pub clippy: bool,
    /// Whether this is the developer's loop build (`cargo xtask run`): the image is `vmlinux`,
    /// booted through its PVH entry, rather than `bzImage` (no compressing and wrapping at every
    /// link), and rustc compiles incrementally, its state in `<out>/rustc-incremental`
    /// (through `KRUSTFLAGS`, the kernel's hook for a user's Rust flags): a kernel-crate edit
    /// rebuilt in ~4.5 s instead of ~6.4 s here. The suites' builds have neither.
    pub dev_loop: bool,
    /// Whether the build folder is a cache slot that other runs reuse: one whose last build was
    /// interrupted is not trusted and is built again from nothing.
    pub shared: bool,
    /// Where the log length of the last full build is kept (for a progress percentage); in the
    /// cache, so that a fresh checkout shows progress too.
    pub lines_file: PathBuf,
    /// The architecture to build for (`ARCH=`, with the same LLVM), when not the host's x86-64:
    /// such a build is checked, not booted, and its image is `vmlinux`.
    pub arch: Option<&'static str>,
    /// Another Rust compiler than the toolchain's (its `rustc`, `rustdoc` and library sources),
    /// for a build that is checked, not booted.
    pub rustc: Option<OtherRustc>,
    /// The descriptor of the cache slot's lock, for a build in a slot: make and everything it
    /// starts inherit it, so that the slot stays locked until the last of them has exited, even
    /// when the tool dies first (the kernel's rules finish the command they run before they
    /// obey a SIGTERM).
    pub lock_fd: Option<i32>,
}

/// What a build produced.
pub struct Built {
    /// The image QEMU boots: `bzImage`, or `vmlinux` (through its PVH entry) for a build
    /// with [`Build::dev_loop`].
    pub kernel: PathBuf,
    /// Whether `make` ran (false when the inputs were unchanged).
    pub rebuilt: bool,
    /// The loadable modules (`.ko` files) of the build, when the config enables modules.
    pub modules: Vec<PathBuf>,
}

/// The `.ko` files under the build folder (where kbuild leaves them, next to their objects).
fn modules(out: &Path) -> Result<Vec<PathBuf>> {
    let list = out.join("modules.order");
    let Ok(text) = fs::read_to_string(&list) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let ko = out.join(line.trim().replace(".o", ".ko"));
        if !ko.exists() {
            bail!(
                "{} lists {}, which was not built",
                list.display(),
                ko.display()
            );
        }
        found.push(ko);
    }
    Ok(found)
}

/// Whether the final `.config` enables loadable modules.
fn modules_enabled(out: &Path) -> bool {
    fs::read_to_string(out.join(".config"))
        .map(|c| c.lines().any(|l| l == "CONFIG_MODULES=y"))
        .unwrap_or(false)
}

fn make(tc: &Toolchain, b: &Build) -> Command {
    let mut c = Command::new("make");
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    c.arg("-C")
        .arg(&b.src)
        .arg(format!("O={}", b.out.display()))
        .arg(format!("-j{jobs}"))
        .arg("LLVM=-14")
        .args(b.arch.map(|a| format!("ARCH={a}")))
        .args(b.rustc.iter().flat_map(|r| {
            let rustc = r.bin.join("rustc");
            [
                format!("RUSTC={}", rustc.display()),
                format!("HOSTRUSTC={}", rustc.display()),
                format!("RUSTDOC={}", r.bin.join("rustdoc").display()),
            ]
        }))
        .arg(format!(
            "RUST_LIB_SRC={}",
            b.rustc
                .as_ref()
                .map_or(&tc.rust_lib_src, |r| &r.lib_src)
                .display()
        ))
        .arg(format!("BINDGEN={}", tc.bindgen.display()))
        .env("LIBCLANG_PATH", "/usr/lib/llvm-14/lib")
        // Compiler messages in English, as the log parsers expect them.
        .env("LC_ALL", "C");
    if let Some(r) = &b.rustc {
        c.env("LD_LIBRARY_PATH", &r.lib_path);
    }
    if b.clippy {
        c.arg("CLIPPY=1");
    }
    if b.dev_loop {
        c.arg(format!(
            "KRUSTFLAGS=-Cincremental={}",
            b.out.join("rustc-incremental").display()
        ));
    }
    if let Some(fd) = b.lock_fd {
        crate::util::inherit_fd(&mut c, fd);
    }
    c
}

/// Runs `make TARGET` for a configured build (e.g. `rustfmtcheck`, `rustdoc`); returns the
/// Rust warnings it printed, or the failure.
pub fn make_target(tc: &Toolchain, b: &Build, target: &str, logs: &Path) -> Result<Vec<String>> {
    let log = logs.join(format!("{target}-{}.log", b.name));
    let _ = fs::remove_file(&log);
    run_logged(&format!("make {target}"), make(tc, b).arg(target), &log)?;
    rust_warnings(&log)
}

/// Documents only the kernel crate of a configured and built `b`, with the command kbuild
/// recorded for it at the last full `make rustdoc` in this build folder; returns the Rust
/// warnings, or `None` when there is no such record yet.
///
/// `make rustdoc` starts by removing all documentation and documents `core` again (about a
/// minute here) before the kernel crate; for the commits in the middle of a topic only the
/// kernel crate's documentation can change, and its command (flags from the configuration,
/// which all commits of a slot share) is the one kbuild saved.
pub fn rustdoc_kernel_crate(b: &Build, logs: &Path) -> Result<Option<Vec<String>>> {
    // kbuild keeps the command of a target in `.<target>.cmd` of the folder make ran it from,
    // the build folder for the `rustdoc-*` targets.
    let saved = b.out.join(".rustdoc-kernel.cmd");
    let Ok(text) = fs::read_to_string(&saved) else {
        return Ok(None);
    };
    let Some(cmd) = text
        .lines()
        .find_map(|l| l.strip_prefix("savedcmd_rustdoc-kernel := "))
    else {
        return Ok(None);
    };
    if !b
        .out
        .join("Documentation/output/rust/rustdoc/core")
        .is_dir()
    {
        return Ok(None);
    }
    let log = logs.join(format!("rustdoc-kernel-{}.log", b.name));
    let _ = fs::remove_file(&log);
    let mut c = Command::new("sh");
    // The kernel's Makefile exports RUSTC_BOOTSTRAP=1 for the unstable flags it passes.
    c.arg("-c")
        .arg(cmd)
        .current_dir(&b.out)
        .env("LC_ALL", "C")
        .env("RUSTC_BOOTSTRAP", "1");
    if let Some(fd) = b.lock_fd {
        util::inherit_fd(&mut c, fd);
    }
    run_logged("rustdoc (kernel crate)", &mut c, &log)?;
    rust_warnings(&log).map(Some)
}

/// Builds the external module in `dir` (kbuild `M=`) against the configured and built `b`;
/// returns the `.ko` files and the Rust warnings. kbuild writes the objects into `dir`.
pub fn make_module(
    tc: &Toolchain,
    b: &Build,
    dir: &Path,
    logs: &Path,
) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let log = logs.join(format!("module-{name}-{}.log", b.name));
    let _ = fs::remove_file(&log);
    let mut c = make(tc, b);
    c.arg(format!("M={}", dir.display())).arg("modules");
    run_logged(&format!("make M={name}"), &mut c, &log)?;
    let mut kos: Vec<PathBuf> = fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ko"))
        .collect();
    kos.sort();
    if kos.is_empty() {
        bail!(
            "the build of {} made no .ko (log: {})",
            dir.display(),
            log.display()
        );
    }
    Ok((kos, rust_warnings(&log)?))
}

/// Rust compiler, clippy and rustdoc warnings in a build log (C compiler warnings start with a
/// file name instead). A log that cannot be read is an error, never "no warnings".
pub fn rust_warnings(log: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(log)
        .with_context(|| format!("cannot read the build log {}", log.display()))?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("warning:") && !l.contains(" emitted"))
        .map(str::to_string)
        .collect())
}

/// The untracked paths of `git status --porcelain=v1 -z` output (a rename or copy entry is
/// followed by its source path, which is skipped).
fn untracked(status: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut entries = status.split('\0');
    while let Some(e) = entries.next() {
        if let Some(path) = e.strip_prefix("?? ") {
            out.push(path);
        } else if e.starts_with(['R', 'C']) {
            entries.next();
        }
    }
    out
}

/// A digest of everything the build's result depends on.
fn input_key(tc: &Toolchain, b: &Build) -> Result<String> {
    let git = Git::new(&b.src);
    let status = git.run(&["status", "--porcelain=v1", "-z", "--untracked-files=all"])?;
    let mut parts = vec![git.run(&["rev-parse", "HEAD"])?, status.clone()];
    let diff = git.cmd(&["diff", "--binary", "HEAD"]).output()?;
    parts.push(sha256(&diff.stdout));
    // The untracked files (git status's `??` entries, the same as `ls-files -o
    // --exclude-standard`), by content.
    for path in untracked(&status) {
        parts.push(sha256(&fs::read(b.src.join(path)).unwrap_or_default()));
    }
    for f in &b.fragments {
        parts.push(sha256(&fs::read(f)?));
    }
    parts.push(format!("clippy={} dev_loop={}", b.clippy, b.dev_loop));
    if let Some(a) = b.arch {
        parts.push(format!("arch={a}"));
    }
    if let Some(r) = &b.rustc {
        parts.push(format!("rustc={}", r.version));
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(cache::key(tc, "kernel build", &parts))
}

/// Configures (when the fragments changed) and builds `b`.
pub fn build(tc: &Toolchain, b: &Build, logs: &Path) -> Result<Built> {
    let (target, kernel) = if b.dev_loop || b.arch.is_some() {
        ("vmlinux", b.out.join("vmlinux"))
    } else {
        ("bzImage", b.out.join("arch/x86/boot/bzImage"))
    };
    let key = input_key(tc, b)?;
    let stamp = Stamp::new(b.out.join(".nova-built"));
    // Present while make runs: left behind only when the tool (and with it make) was killed.
    let running = b.out.join(".nova-make-running");
    if b.shared && running.exists() {
        println!(
            "    the last build in {} was interrupted: building it again from nothing",
            b.out.display()
        );
        util::remove_dir(&b.out)?;
    }
    if stamp.is_done(&key) && kernel.exists() {
        return Ok(Built {
            kernel,
            rebuilt: false,
            modules: modules(&b.out)?,
        });
    }
    fs::create_dir_all(&b.out)?;
    let log = logs.join(format!("build-{}.log", b.name));
    let _ = fs::remove_file(&log);
    let mut frag_key = b
        .fragments
        .iter()
        .map(|f| fs::read(f).map(|d| sha256(&d)))
        .collect::<std::io::Result<Vec<_>>>()?
        .join(" ");
    if !b.strict_config {
        // A commit that adds Kconfig options must get the fragments merged again, or the options
        // it adds would silently keep their defaults.
        let kconfigs = Git::new(&b.src).run(&["ls-files", "-s", "--", "*Kconfig*"])?;
        frag_key.push_str(&sha256(kconfigs.as_bytes()));
    }
    let config_stamp = Stamp::new(b.out.join(".nova-config"));
    let config = b.out.join(".config");
    if !config_stamp.is_done(&frag_key) || !config.exists() {
        util::step(
            &format!("configure {} (tinyconfig + fragments)", b.name),
            || {
                config_stamp.clear()?;
                let mut avail = make(tc, b);
                avail.arg("rustavailable");
                run_logged("make rustavailable", &mut avail, &log)
                    .context("the Rust toolchain is not usable for this kernel")?;
                run_logged("make tinyconfig", make(tc, b).arg("tinyconfig"), &log)?;
                let mut merge = Command::new(b.src.join("scripts/kconfig/merge_config.sh"));
                merge
                    .current_dir(&b.src)
                    .arg("-m")
                    .arg("-O")
                    .arg(&b.out)
                    .arg(&config);
                merge.args(&b.fragments);
                run_logged("merge_config.sh", &mut merge, &log)?;
                run_logged("make olddefconfig", make(tc, b).arg("olddefconfig"), &log)?;
                if b.strict_config {
                    kconfig::check(&b.fragments, &config)?;
                }
                config_stamp.mark(&frag_key)
            },
        )?;
    }
    if b.strict_config {
        kconfig::check(&b.fragments, &config)?;
    }
    stamp.clear()?;
    // A full build's log length, remembered for the progress percentage of the next full build.
    let lines_file = &b.lines_file;
    let full = !b.out.join("vmlinux").exists();
    let expected = if full {
        fs::read_to_string(lines_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    } else {
        None
    };
    util::step(&format!("build {} ({})", b.name, b.out.display()), || {
        let label = format!("make {}", b.name);
        let mut make = make(tc, b);
        make.arg(target);
        if modules_enabled(&b.out) {
            make.arg("modules");
        }
        fs::write(&running, b"")?;
        let made = util::run_logged_progress(&label, &mut make, &log, expected);
        // make ended by itself (built or failed): what it left is consistent.
        fs::remove_file(&running)?;
        made
    })?;
    if full {
        let n = fs::read_to_string(&log)
            .map(|s| s.lines().count())
            .unwrap_or(0);
        util::write_atomic(lines_file, n.to_string().as_bytes())?;
    }
    if !kernel.exists() {
        bail!(
            "the build of {} made no {target} (log: {})",
            b.name,
            log.display()
        );
    }
    // Recompute: the build must not have changed its own inputs.
    stamp.mark(&input_key(tc, b)?)?;
    Ok(Built {
        kernel,
        rebuilt: true,
        modules: modules(&b.out)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untracked_paths_are_read_from_status() {
        let status = "?? a b.rs\0 M c.rs\0R  new.rs\0?? old.rs\0?? d/e.rs\0";
        // `?? old.rs` here is the rename's source path, not an untracked file.
        assert_eq!(untracked(status), ["a b.rs", "d/e.rs"]);
    }
}
