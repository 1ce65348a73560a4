//! Setup: host packages, `rust-src`, bindgen, the kernel source as a git base, the trixie rootfs.
//!
//! Every step is pinned, cached under [`Ctx::cache`] and skipped when its output is there and
//! valid (a [`Stamp`] written after the output is complete), so an interrupted step is redone.

use crate::ctx::Ctx;
use crate::git;
use crate::util::{self, output, run_logged, Stamp};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian (bookworm) packages the kernel build and the tool need.
const HOST_PACKAGES: &[&str] = &[
    "clang-14",
    "lld-14",
    "llvm-14",
    "libclang-14-dev",
    "make",
    "gcc",
    "libc6-dev",
    "bc",
    "flex",
    "bison",
    "libelf-dev",
    "libssl-dev",
    "cpio",
    "kmod",
    "python3",
    "xz-utils",
    "perl",
    "debootstrap",
    "python3-ply",
    "python3-git",
    "python3-venv",
    "git",
];
/// The kernel source package and its exact version (bookworm-security).
pub const KERNEL_PACKAGE: &str = "linux-source-6.12";
/// Pinned Debian version of [`KERNEL_PACKAGE`].
pub const KERNEL_DEBIAN_VERSION: &str = "6.12.117-1~deb12u1";
/// The tag of the imported base commit.
pub const BASE_TAG: &str = "v6.12.117-deb12u1";
/// Pinned b4 (the maintainers' tool for taking series from the list) and every package it pulls
/// in, installed with `--no-deps` so that nothing floats.
const B4_VERSION: &str = "0.16.0";
const B4_REQUIREMENTS: &[&str] = &[
    "b4==0.16.0",
    "certifi==2026.10.19.post1",
    "cffi==2.1.1",
    "charset-normalizer==3.5.3",
    "dkimpy==1.1.8",
    "dnspython==2.9.2",
    "ezgb==0.2.1",
    "idna==3.20",
    "liblore==0.10.1",
    "patatt==0.8.0",
    "pycparser==3.12",
    "pygit2==1.21.0",
    "PyNaCl==1.6.2",
    "requests==2.34.2",
    "urllib3==2.8.0",
];
/// Pinned kcidb-io (KernelCI's library for its report schema, which `test --kcidb` output is
/// validated with) and every package it pulls in (jsonschema with its format checkers), as b4.
const KCIDB_IO_VERSION: &str = "141";
/// The KCIDB schema version of the pinned kcidb-io (its latest), which reports are written in.
pub const KCIDB_SCHEMA: &str = "v5.3";
const KCIDB_IO_REQUIREMENTS: &[&str] = &[
    "kcidb-io==141",
    "arrow==1.4.0",
    "attrs==26.1.0",
    "fqdn==1.6.0",
    "idna==3.21",
    "isoduration==20.11.0",
    "jsonpointer==3.12",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "python-dateutil==4.0.0",
    "referencing==0.37.0",
    "rfc3339-validator==0.1.4",
    "rfc3987==1.3.8",
    "rpds-py==2026.9.1",
    "six==1.17.0",
    "typing_extensions==4.16.0",
    "tzdata==2026.6",
    "uri-template==1.3.0",
    "webcolors==25.10.0",
];
/// Pinned bindgen-cli version (v6.12 needs >= 0.65.1).
const BINDGEN_VERSION: &str = "0.70.1";
/// Pinned QEMU from trixie-backports (the first with a usable `vfio-user-pci`).
///
/// The archive keeps only the newest Debian revision of a package, so the pin is QEMU's own version
/// and the Debian revision is whatever trixie-backports has of it (recorded in the rootfs).
const QEMU_VERSION: &str = "11.1.3";
/// Packages installed into the trixie rootfs besides QEMU: busybox for the guests, and the PCI
/// ID database that every guest's `nova-info` names GPUs from ([`PCI_IDS`]).
const ROOTFS_PACKAGES: &[&str] = &["busybox-static", "pci.ids"];
/// Where Debian's `pci.ids` package puts the PCI ID database, in the rootfs and in the guests
/// (where `lspci` and `nova-info` read it). Its version is recorded in the rootfs as
/// `etc/nova-pci-ids-version`.
pub const PCI_IDS: &str = "usr/share/misc/pci.ids";
/// Free space a cold setup and build need (source, objects, packages, rootfs), in GiB.
const MIN_FREE_GIB: u64 = 8;
/// Date of the imported base commit.
pub const BASE_DATE: &str = "2025-11-01T00:00:00+00:00";

/// Everything later steps need from setup.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// `RUST_LIB_SRC` for the kernel's build of `core`.
    pub rust_lib_src: PathBuf,
    /// The bindgen binary.
    pub bindgen: PathBuf,
    /// The bare git repository holding the base commit, tagged [`BASE_TAG`].
    pub base_repo: PathBuf,
    /// The trixie root filesystem holding QEMU 11.1 and busybox-static.
    pub rootfs: PathBuf,
    /// The pinned `b4` command.
    pub b4: PathBuf,
    /// The Python of the virtual environment holding the pinned kcidb-io.
    pub kcidb_python: PathBuf,
    /// The versions of everything that compiles or checks kernel code (rustc, clippy, bindgen,
    /// clang, lld, Rust library sources), part of every cache key.
    pub versions: String,
}

/// The first line each tool prints of its version, for [`Toolchain::versions`].
fn toolchain_versions(bindgen: &Path, rust_lib_src: &Path) -> String {
    let mut out = String::new();
    let tools: [(&str, &[&str]); 5] = [
        ("rustc", &["-vV"]),
        ("clippy-driver", &["--version"]),
        (&bindgen.to_string_lossy(), &["--version"]),
        ("clang-14", &["--version"]),
        ("ld.lld-14", &["--version"]),
    ];
    for (tool, args) in tools {
        let v = output(Command::new(tool).args(args)).unwrap_or_else(|_| "missing".into());
        out.push_str(&format!("{tool}: {}\n", v.trim()));
    }
    out.push_str(&format!("rust-src: {}\n", rust_lib_src.display()));
    out
}

/// Runs QEMU's binary from the rootfs through the rootfs's own loader (no chroot).
pub fn qemu_command(rootfs: &Path) -> Command {
    let mut c = Command::new(rootfs.join("usr/lib64/ld-linux-x86-64.so.2"));
    c.arg("--library-path")
        .arg(rootfs.join("usr/lib/x86_64-linux-gnu"))
        .arg(rootfs.join("usr/bin/qemu-system-x86_64"))
        .env(
            "QEMU_MODULE_DIR",
            rootfs.join("usr/lib/x86_64-linux-gnu/qemu"),
        );
    for d in ["usr/share/qemu", "usr/share/seabios", "usr/lib/ipxe/qemu"] {
        c.arg("-L").arg(rootfs.join(d));
    }
    c
}

/// Runs every setup step that is not done yet.
pub fn setup(ctx: &Ctx) -> Result<Toolchain> {
    preflight(ctx)?;
    host_packages(ctx)?;
    let rust_lib_src = rust_src(ctx)?;
    let bindgen = bindgen(ctx)?;
    let base_repo = kernel_source(ctx)?;
    let rootfs = rootfs(ctx)?;
    let b4 = b4(ctx)?;
    let kcidb_python = kcidb_io(ctx)?;
    Ok(Toolchain {
        b4,
        kcidb_python,
        versions: toolchain_versions(&bindgen, &rust_lib_src),
        rust_lib_src,
        bindgen,
        base_repo,
        rootfs,
    })
}

/// The toolchain of a completed setup, without running any step (fails if setup is missing).
pub fn existing(ctx: &Ctx) -> Result<Toolchain> {
    let rust_lib_src = rust_src_dir(ctx, &rustc_version()?).join(RUST_LIB_SUBDIR);
    let bindgen = ctx
        .cache
        .join(format!("bindgen-{BINDGEN_VERSION}/bin/bindgen"));
    let tc = Toolchain {
        versions: toolchain_versions(&bindgen, &rust_lib_src),
        rust_lib_src,
        bindgen,
        base_repo: ctx.cache.join("linux-base.git"),
        rootfs: ctx.cache.join("rootfs-trixie"),
        b4: b4_dir(ctx).join("bin/b4"),
        kcidb_python: kcidb_io_dir(ctx).join("bin/python3"),
    };
    for p in [
        &tc.rust_lib_src,
        &tc.bindgen,
        &tc.base_repo,
        &tc.rootfs,
        &tc.b4,
        &tc.kcidb_python,
    ] {
        if !p.exists() {
            bail!("{} is missing: run `cargo xtask setup`", p.display());
        }
    }
    Ok(tc)
}

/// Checks what the steps assume, with errors that say what to do.
fn preflight(ctx: &Ctx) -> Result<()> {
    let os = fs::read_to_string("/etc/os-release").unwrap_or_default();
    if !os.lines().any(|l| l == "ID=debian") || !os.lines().any(|l| l == "VERSION_ID=\"12\"") {
        bail!("this tool supports Debian 12 (bookworm) only; /etc/os-release says otherwise");
    }
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    if arch.trim() != "amd64" {
        bail!(
            "this tool supports amd64 hosts only (dpkg says {})",
            arch.trim()
        );
    }
    let uid = output(Command::new("id").arg("-u"))?;
    if uid.trim() != "0" && !setup_is_complete(ctx) {
        bail!("setup installs Debian packages and builds a root filesystem: run it as root");
    }
    rustc_version()?;
    fs::create_dir_all(&ctx.cache)
        .with_context(|| format!("cannot create the cache folder {}", ctx.cache.display()))?;
    let free = free_gib(&ctx.cache)?;
    if free < MIN_FREE_GIB && !setup_is_complete(ctx) {
        bail!(
            "disk nearly full: {free} GiB free under {}, setup and a kernel build need about \
             {MIN_FREE_GIB} GiB; free space or point NOVA_CACHE at a larger disk",
            ctx.cache.display()
        );
    }
    Ok(())
}

fn setup_is_complete(ctx: &Ctx) -> bool {
    existing(ctx).is_ok()
}

/// Free space of the file system holding `path`, in GiB.
fn free_gib(path: &Path) -> Result<u64> {
    let out = output(Command::new("df").arg("-Pk").arg(path))?;
    let kib: u64 = out
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .context("cannot parse the output of df")?;
    Ok(kib / (1024 * 1024))
}

/// The upstream version of the active rustc, e.g. `1.95.0`.
pub fn rustc_version() -> Result<String> {
    let out = output(Command::new("rustc").arg("--version"))
        .context("rustc not found: install the rustup toolchain")?;
    let v = out
        .split_whitespace()
        .nth(1)
        .context("cannot parse `rustc --version`")?;
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (1, 78) {
        bail!(
            "rustc {v} is too old for Linux 6.12 with rust-src 1.78+; update the rustup toolchain"
        );
    }
    Ok(v.to_string())
}

/// Whether a Debian package is installed.
/// Those of `pkgs` that are not installed, asked of dpkg in one call (one per package cost
/// ~25 ms each at every command).
fn not_installed<'a>(pkgs: &[&'a str]) -> Vec<&'a str> {
    // dpkg-query exits non-zero when it knows none of a name, but still lists the others.
    let listed = Command::new("dpkg-query")
        .arg("-W")
        .arg("-f=${Package} ${Status}\n")
        .args(pkgs)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    pkgs.iter()
        .copied()
        .filter(|p| {
            !listed.lines().any(|l| {
                l.strip_prefix(p).and_then(|r| r.strip_prefix(' ')) == Some("install ok installed")
            })
        })
        .collect()
}

/// Turns an apt failure into an error a user can act on.
fn apt_error(log: &Path, err: anyhow::Error) -> anyhow::Error {
    let t = util::tail(log, 60);
    if t.contains("Could not resolve")
        || t.contains("Temporary failure resolving")
        || t.contains("Failed to fetch")
        || t.contains("Could not connect")
    {
        err.context("no network access to the Debian package mirror: setup needs it once (later runs use the cache); check connectivity or the proxy settings of apt")
    } else if t.contains("No space left") {
        err.context("disk full while fetching packages: free space and run again")
    } else {
        err
    }
}

fn host_packages(ctx: &Ctx) -> Result<()> {
    let missing = not_installed(HOST_PACKAGES);
    if missing.is_empty() {
        return Ok(());
    }
    util::step(
        &format!("install host packages: {}", missing.join(" ")),
        || {
            let log = ctx.cache.join("logs/apt-host.log");
            let mut update = Command::new("apt-get");
            update.args(["update", "-q"]);
            run_logged("apt-get update", &mut update, &log).map_err(|e| apt_error(&log, e))?;
            let mut install = Command::new("apt-get");
            install
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args([
                    "install",
                    "-y",
                    "-q",
                    "--no-upgrade",
                    "--no-install-recommends",
                ])
                .args(&missing);
            run_logged("apt-get install", &mut install, &log).map_err(|e| apt_error(&log, e))
        },
    )
}

/// The Debian archive URI of the host's own apt configuration (reused for trixie).
fn debian_mirror() -> Result<String> {
    let mut text = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        for e in dir.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "sources" || x == "list") {
                text.push_str(&fs::read_to_string(&p).unwrap_or_default());
                text.push('\n');
            }
        }
    }
    for word in text.split_whitespace() {
        let w = word.trim_end_matches('/');
        if w.starts_with("http") && w.ends_with("/debian") {
            return Ok(w.to_string());
        }
    }
    bail!("no Debian archive found in the host's apt sources (/etc/apt): cannot fetch trixie packages")
}

/// A private apt configuration (own sources list, state and cache) for trixie-backports, its
/// `main` and `non-free-firmware` components.
fn private_apt(ctx: &Ctx, log: &Path) -> Result<Vec<String>> {
    let dir = ctx.cache.join("apt-trixie");
    for sub in ["lists/partial", "cache/archives/partial", "etc"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    let sources = dir.join("etc/sources.list");
    let line = format!(
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {} trixie-backports main \
         non-free-firmware\n",
        debian_mirror()?
    );
    util::write_atomic(&sources, line.as_bytes())?;
    let d = dir.display();
    let opts = vec![
        format!("-oDir::Etc::SourceList={}", sources.display()),
        "-oDir::Etc::SourceParts=/nonexistent".to_string(),
        format!("-oDir::State::Lists={d}/lists"),
        format!("-oDir::Cache={d}/cache"),
        "-oDir::State::status=/dev/null".to_string(),
        "-oAPT::Sandbox::User=root".to_string(),
        "-oDebug::NoLocking=1".to_string(),
    ];
    let stamp = Stamp::new(dir.join("updated"));
    if !stamp.is_done(&line) {
        let mut update = Command::new("apt-get");
        update.args(&opts).args(["update", "-q"]);
        run_logged("apt-get update (trixie-backports)", &mut update, log)
            .map_err(|e| apt_error(log, e))?;
        stamp.mark(&line)?;
    }
    Ok(opts)
}

const RUST_LIB_SUBDIR: &str = "usr/lib/rustlib/src/rust/library";

fn rust_src_dir(ctx: &Ctx, rustc: &str) -> PathBuf {
    ctx.cache.join(format!("rust-src-{rustc}"))
}

/// Picks the `rust-src` version whose upstream part equals `rustc` from `apt-cache madison` output.
fn pick_rust_src(madison: &str, rustc: &str) -> Option<String> {
    madison
        .lines()
        .filter_map(|l| l.split('|').nth(1).map(str::trim))
        .find(|v| {
            let upstream = v.split(':').next_back().unwrap_or(v);
            upstream.split(['+', '-', '~']).next() == Some(rustc)
        })
        .map(str::to_string)
}

fn rust_src(ctx: &Ctx) -> Result<PathBuf> {
    let rustc = rustc_version()?;
    let dir = rust_src_dir(ctx, &rustc);
    let stamp = Stamp::new(dir.join(".complete"));
    if stamp.is_done(&rustc) && dir.join(RUST_LIB_SUBDIR).join("core/src/lib.rs").exists() {
        return Ok(dir.join(RUST_LIB_SUBDIR));
    }
    util::step(&format!("rust-src {rustc} from trixie-backports"), || {
        let log = ctx.cache.join("logs/rust-src.log");
        let opts = private_apt(ctx, &log)?;
        let madison = output(
            Command::new("apt-cache")
                .args(&opts)
                .args(["madison", "rust-src"]),
        )?;
        let Some(version) = pick_rust_src(&madison, &rustc) else {
            let listed: Vec<&str> = madison
                .lines()
                .filter_map(|l| l.split('|').nth(1))
                .map(str::trim)
                .collect();
            bail!(
                "no rust-src for rustc {rustc} in trixie-backports (it has: {}); install a rustup \
                 toolchain whose version is listed, or wait for the package",
                listed.join(", ")
            );
        };
        let debs = ctx.cache.join("debs");
        fs::create_dir_all(&debs)?;
        let mut dl = Command::new("apt-get");
        dl.current_dir(&debs)
            .args(&opts)
            .arg("download")
            .arg(format!("rust-src={version}"));
        run_logged("apt-get download rust-src", &mut dl, &log).map_err(|e| apt_error(&log, e))?;
        let deb = find_deb(&debs, "rust-src", &version)?;
        util::remove_dir(&dir)?;
        let mut x = Command::new("dpkg-deb");
        x.arg("-x").arg(&deb).arg(&dir);
        run_logged("unpack rust-src", &mut x, &log)?;
        if !dir.join(RUST_LIB_SUBDIR).join("core/src/lib.rs").exists() {
            bail!("{} does not hold the Rust library sources", deb.display());
        }
        stamp.mark(&rustc)?;
        Ok(dir.join(RUST_LIB_SUBDIR))
    })
}

/// The oldest Rust compiler the Debian archive gives a bookworm machine: bookworm's `rustc-web`
/// (v6.12's minimum, 1.78, is in no Debian release). Its packages, pinned, with the LLVM library
/// it links against.
const OLDEST_RUSTC: &str = "1.85.0";
const OLDEST_RUSTC_DEBS: &[(&str, &str)] = &[
    ("rustc-web", "1.85.0+dfsg3-1~deb12u3"),
    ("libstd-rust-web-1.85", "1.85.0+dfsg3-1~deb12u3"),
    ("libstd-rust-web-dev", "1.85.0+dfsg3-1~deb12u3"),
    ("rust-web-src", "1.85.0+dfsg3-1~deb12u3"),
    ("libllvm19", "1:19.1.7-3~deb12u1"),
];

/// A Rust compiler other than rustup's, unpacked from Debian packages into the cache (nothing is
/// installed): what a kernel build needs to use it.
#[derive(Clone, Debug)]
pub struct OtherRustc {
    /// `rustc --version`'s first line.
    pub version: String,
    /// The folder holding `rustc` and `rustdoc`.
    pub bin: PathBuf,
    /// `RUST_LIB_SRC` for it.
    pub lib_src: PathBuf,
    /// `LD_LIBRARY_PATH` for it (its `librustc_driver` and LLVM).
    pub lib_path: PathBuf,
}

/// [`OLDEST_RUSTC`], downloaded and unpacked into the cache once (`cache/rustc-<version>`).
pub fn oldest_rustc(ctx: &Ctx) -> Result<OtherRustc> {
    let dir = ctx.cache.join(format!("rustc-{OLDEST_RUSTC}"));
    let rustc = OtherRustc {
        version: String::new(),
        bin: dir.join("usr/bin"),
        lib_src: dir.join(format!("usr/src/rustc-{OLDEST_RUSTC}/library")),
        lib_path: dir.join("usr/lib/x86_64-linux-gnu"),
    };
    let stamp = Stamp::new(dir.join(".complete"));
    let pins: Vec<String> = OLDEST_RUSTC_DEBS
        .iter()
        .map(|(p, v)| format!("{p}={v}"))
        .collect();
    if !stamp.is_done(&pins.join(" ")) {
        util::step(
            &format!("rustc {OLDEST_RUSTC} from bookworm's rustc-web"),
            || {
                let log = ctx.cache.join("logs/oldest-rustc.log");
                let debs = ctx.cache.join("debs");
                fs::create_dir_all(&debs)?;
                let mut dl = Command::new("apt-get");
                dl.current_dir(&debs).arg("download").args(&pins);
                run_logged("apt-get download rustc-web", &mut dl, &log)
                    .map_err(|e| apt_error(&log, e))?;
                util::remove_dir(&dir)?;
                for (pkg, version) in OLDEST_RUSTC_DEBS {
                    let deb = find_deb(&debs, pkg, version)?;
                    let mut x = Command::new("dpkg-deb");
                    x.arg("-x").arg(&deb).arg(&dir);
                    run_logged(&format!("unpack {pkg}"), &mut x, &log)?;
                }
                stamp.mark(&pins.join(" "))
            },
        )?;
    }
    let version = output(
        Command::new(rustc.bin.join("rustc"))
            .arg("--version")
            .env("LD_LIBRARY_PATH", &rustc.lib_path),
    )?;
    if !version.contains(OLDEST_RUSTC) || !rustc.lib_src.join("core/src/lib.rs").exists() {
        bail!(
            "{} is not a usable rustc {OLDEST_RUSTC} ({version})",
            dir.display()
        );
    }
    Ok(OtherRustc {
        version: version.lines().next().unwrap_or_default().to_string(),
        ..rustc
    })
}

/// Debian's package of NVIDIA's GPU firmware (linux-firmware's `nvidia/`), pinned to the newest
/// Debian revision of linux-firmware 20260916: trixie-backports, component `non-free-firmware`
/// (checked 2026-12-06 with `apt-cache madison`; 104 MB, 156 MB unpacked).
pub const NVIDIA_FIRMWARE_DEB: (&str, &str) = ("firmware-nvidia-graphics", "20260916-1~bpo13+1");

/// The firmware tree of [`NVIDIA_FIRMWARE_DEB`], unpacked into the cache (never into the host's
/// `/lib/firmware`): the folder that holds `nvidia/`, as `/lib/firmware` would. Downloaded and
/// unpacked once; the package's links stay links.
pub fn nvidia_firmware(ctx: &Ctx) -> Result<PathBuf> {
    let (pkg, version) = NVIDIA_FIRMWARE_DEB;
    let dir = ctx
        .cache
        .join(format!("{pkg}-{}", version.replace('~', "_")));
    let root = dir.join("usr/lib/firmware");
    let pin = format!("{pkg}={version}");
    let stamp = Stamp::new(dir.join(".complete"));
    if !stamp.is_done(&pin) {
        util::step(&format!("{pkg} {version} from trixie-backports"), || {
            let log = ctx.cache.join("logs/nvidia-firmware.log");
            let opts = private_apt(ctx, &log)?;
            let debs = ctx.cache.join("debs");
            fs::create_dir_all(&debs)?;
            let mut dl = Command::new("apt-get");
            dl.current_dir(&debs).args(&opts).arg("download").arg(&pin);
            run_logged(&format!("apt-get download {pkg}"), &mut dl, &log)
                .map_err(|e| apt_error(&log, e))?;
            util::remove_dir(&dir)?;
            let deb = find_deb(&debs, pkg, version)?;
            let mut x = Command::new("dpkg-deb");
            x.arg("-x").arg(&deb).arg(&dir);
            run_logged(&format!("unpack {pkg}"), &mut x, &log)?;
            stamp.mark(&pin)
        })?;
    }
    if !root.join("nvidia").is_dir() {
        bail!(
            "{} has no nvidia/ folder: {pkg} {version} did not unpack as expected",
            root.display()
        );
    }
    Ok(root)
}

/// The downloaded `.deb` of `pkg` at `version` in `dir`, checked with dpkg-deb.
fn find_deb(dir: &Path, pkg: &str, version: &str) -> Result<PathBuf> {
    for e in fs::read_dir(dir)?.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{pkg}_")) && name.ends_with(".deb") {
            let v = output(Command::new("dpkg-deb").arg("-f").arg(&p).arg("Version"));
            if v.map(|v| v.trim() == version).unwrap_or(false) {
                return Ok(p);
            }
        }
    }
    bail!(
        "the download of {pkg} {version} left no valid .deb in {}",
        dir.display()
    )
}

fn b4_dir(ctx: &Ctx) -> PathBuf {
    ctx.cache.join(format!("b4-{B4_VERSION}"))
}

/// A virtual environment of Debian's python3 (not whatever `python3` comes first on PATH) in
/// `dir` holding exactly `requirements` (`--no-deps`: every package pinned), made again when
/// they changed; `check` runs on it before it is marked complete.
fn pinned_venv(
    ctx: &Ctx,
    dir: &Path,
    label: &str,
    requirements: &[&str],
    check: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let key = requirements.join(" ");
    let stamp = Stamp::new(dir.join(".complete"));
    if stamp.is_done(&key) {
        return Ok(());
    }
    util::step(&format!("{label} (pip, in a venv)"), || {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let log = ctx.cache.join(format!("logs/{name}.log"));
        util::remove_dir(dir)?;
        let mut venv = Command::new("/usr/bin/python3");
        venv.args(["-m", "venv"]).arg(dir);
        run_logged("python3 -m venv", &mut venv, &log)?;
        let mut pip = Command::new(dir.join("bin/pip"));
        pip.args(["install", "-q", "--no-deps"]).args(requirements);
        run_logged(&format!("pip install {label}"), &mut pip, &log)?;
        check()?;
        stamp.mark(&key)
    })
}

/// b4 in a virtual environment.
fn b4(ctx: &Ctx) -> Result<PathBuf> {
    let dir = b4_dir(ctx);
    let bin = dir.join("bin/b4");
    pinned_venv(
        ctx,
        &dir,
        &format!("b4 {B4_VERSION}"),
        B4_REQUIREMENTS,
        || {
            let v = output(Command::new(&bin).arg("--version"))?;
            if v.trim() != B4_VERSION {
                bail!("b4 reports version `{}`, expected {B4_VERSION}", v.trim());
            }
            Ok(())
        },
    )?;
    Ok(bin)
}

fn kcidb_io_dir(ctx: &Ctx) -> PathBuf {
    ctx.cache.join(format!("kcidb-io-{KCIDB_IO_VERSION}"))
}

/// kcidb-io in a virtual environment; its Python is returned.
fn kcidb_io(ctx: &Ctx) -> Result<PathBuf> {
    let dir = kcidb_io_dir(ctx);
    let python = dir.join("bin/python3");
    let label = format!("kcidb-io {KCIDB_IO_VERSION}");
    pinned_venv(ctx, &dir, &label, KCIDB_IO_REQUIREMENTS, || {
        let mut c = Command::new(&python);
        c.args(["-c", "import kcidb_io; print(kcidb_io.schema.LATEST)"]);
        let v = output(&mut c)?;
        if v.trim() != KCIDB_SCHEMA {
            bail!(
                "kcidb-io's latest schema is `{}`, expected {KCIDB_SCHEMA}",
                v.trim()
            );
        }
        Ok(())
    })?;
    Ok(python)
}

fn bindgen(ctx: &Ctx) -> Result<PathBuf> {
    let root = ctx.cache.join(format!("bindgen-{BINDGEN_VERSION}"));
    let bin = root.join("bin/bindgen");
    let ok = |bin: &Path| {
        output(Command::new(bin).arg("--version"))
            .map(|v| v.trim() == format!("bindgen {BINDGEN_VERSION}"))
            .unwrap_or(false)
    };
    if ok(&bin) {
        return Ok(bin);
    }
    util::step(
        &format!("bindgen-cli {BINDGEN_VERSION} (cargo install, ~2 min)"),
        || {
            let log = ctx.cache.join("logs/bindgen.log");
            let mut c = Command::new("cargo");
            c.env("LIBCLANG_PATH", "/usr/lib/llvm-14/lib")
                .args([
                    "install",
                    "bindgen-cli",
                    "--locked",
                    "--force",
                    "--version",
                    BINDGEN_VERSION,
                ])
                .arg("--root")
                .arg(&root);
            run_logged("cargo install bindgen-cli", &mut c, &log)?;
            if !ok(&bin) {
                bail!(
                    "{} does not report version {BINDGEN_VERSION}",
                    bin.display()
                );
            }
            Ok(bin)
        },
    )
}

/// Sets a fixed date for the commits a [`git::command`] makes, so that they hash the same
/// everywhere (the identity is the tool's already).
pub fn tool_commit_env(cmd: &mut Command, date: &str) {
    cmd.env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date);
}

fn kernel_source(ctx: &Ctx) -> Result<PathBuf> {
    let repo = ctx.cache.join("linux-base.git");
    let key =
        format!("{KERNEL_PACKAGE} {KERNEL_DEBIAN_VERSION} {BASE_TAG} without-debian-gitignore");
    let stamp = Stamp::new(ctx.cache.join("linux-base.complete"));
    if stamp.is_done(&key) && repo.exists() {
        return Ok(repo);
    }
    util::step(
        &format!("kernel source {KERNEL_PACKAGE} {KERNEL_DEBIAN_VERSION} as a git base"),
        || {
            stamp.clear()?;
            let log = ctx.cache.join("logs/kernel-source.log");
            let debs = ctx.cache.join("debs");
            fs::create_dir_all(&debs)?;
            if find_deb(&debs, KERNEL_PACKAGE, KERNEL_DEBIAN_VERSION).is_err() {
                let mut dl = Command::new("apt-get");
                dl.current_dir(&debs)
                    .args(["-q", "-oAPT::Sandbox::User=root", "download"])
                    .arg(format!("{KERNEL_PACKAGE}={KERNEL_DEBIAN_VERSION}"));
                if run_logged("apt-get download", &mut dl, &log).is_err() {
                    // The host's package lists may predate the pinned version: refresh once.
                    let mut update = Command::new("apt-get");
                    update.args(["update", "-q"]);
                    run_logged("apt-get update", &mut update, &log)
                        .map_err(|e| apt_error(&log, e))?;
                    run_logged("apt-get download", &mut dl, &log)
                        .map_err(|e| apt_error(&log, e))?;
                }
            }
            let deb = find_deb(&debs, KERNEL_PACKAGE, KERNEL_DEBIAN_VERSION)?;
            let work = ctx.cache.join("linux-import.tmp");
            util::remove_dir(&work)?;
            fs::create_dir_all(&work)?;
            let mut x = Command::new("bash");
            x.arg("-o").arg("pipefail").arg("-c")
            .arg(r#"dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/src/linux-source-6.12.tar.xz | tar -xJ -C "$2""#)
            .arg("extract").arg(&deb).arg(&work);
            run_logged("extract kernel source", &mut x, &log)?;
            let src = work.join("linux-source-6.12");
            if !src.join("Makefile").exists() || !src.join("rust/kernel/lib.rs").exists() {
                bail!(
                    "{} does not hold a kernel tree with Rust support",
                    deb.display()
                );
            }
            let gitignore = src.join(".gitignore");
            let text = fs::read_to_string(&gitignore)?;
            let fixed = strip_debian_gitignore(&text).with_context(|| {
                format!("{}: no Debian packaging block in .gitignore", deb.display())
            })?;
            fs::write(&gitignore, fixed)?;
            let tmp_repo = ctx.cache.join("linux-base.git.tmp");
            util::remove_dir(&tmp_repo)?;
            let git = |args: &[&str]| {
                let mut c = git::command();
                c.arg("--git-dir")
                    .arg(&tmp_repo)
                    .arg("--work-tree")
                    .arg(&src)
                    .args(["-c", "gc.auto=0", "-c", "core.autocrlf=false"])
                    .args(args);
                tool_commit_env(&mut c, BASE_DATE);
                c
            };
            let mut init = git::command();
            init.args(["init", "-q", "--bare", "-b", "base"])
                .arg(&tmp_repo);
            run_logged("git init", &mut init, &log)?;
            run_logged(
                "git add (about 90 k files)",
                &mut git(&["add", "-A", "-f", "."]),
                &log,
            )?;
            let msg = format!(
                "Linux 6.12.117 as Debian {KERNEL_PACKAGE} {KERNEL_DEBIAN_VERSION}\n\n\
             The series' base: the kernel source of the Debian package {KERNEL_PACKAGE},\n\
             version {KERNEL_DEBIAN_VERSION} (v6.12.117 with Debian's patches applied),\n\
             imported by `cargo xtask setup` with one change: the Debian packaging block at the\n\
             end of .gitignore (`/*`, `!/debian/`), which would hide every new file from git\n\
             in a development tree, is removed.\n"
            );
            run_logged("git commit", &mut git(&["commit", "-q", "-m", &msg]), &log)?;
            run_logged(
                "git tag",
                &mut git(&["tag", "-a", BASE_TAG, "-m", &msg]),
                &log,
            )?;
            util::remove_dir(&repo)?;
            fs::rename(&tmp_repo, &repo)?;
            util::remove_dir(&work)?;
            stamp.mark(&key)?;
            Ok(repo)
        },
    )
}

/// Removes the Debian packaging block from the kernel's top-level `.gitignore`: it ignores
/// everything at the top level (`/*`), so new files of a series would be invisible to git.
fn strip_debian_gitignore(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("# Debian packaging"))?;
    let end = start + lines[start..].iter().position(|l| *l == "!/debian/")?;
    // Drop the comment block's leading `#` line (and the blank line before it) too.
    let mut from = start;
    while from > 0 && (lines[from - 1] == "#" || lines[from - 1].is_empty()) {
        from -= 1;
    }
    let mut out: Vec<&str> = lines[..from].to_vec();
    out.extend_from_slice(&lines[end + 1..]);
    let mut s = out.join("\n");
    s.push('\n');
    Some(s)
}

fn rootfs(ctx: &Ctx) -> Result<PathBuf> {
    let dir = ctx.cache.join("rootfs-trixie");
    let key = format!(
        "trixie qemu-system-x86 {QEMU_VERSION} {}",
        ROOTFS_PACKAGES.join(" ")
    );
    let stamp = Stamp::new(ctx.cache.join("rootfs-trixie.complete"));
    if stamp.is_done(&key) && dir.join("usr/bin/qemu-system-x86_64").exists() {
        return Ok(dir);
    }
    util::step("trixie rootfs with QEMU 11.1 (debootstrap, ~2 min)", || {
        stamp.clear()?;
        let log = ctx.cache.join("logs/rootfs.log");
        let tmp = ctx.cache.join("rootfs-trixie.tmp");
        util::remove_dir(&tmp)?;
        let mirror = debian_mirror()?;
        let mut boot = Command::new("debootstrap");
        boot.args([
            "--variant=minbase",
            "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg",
        ])
        .arg("trixie")
        .arg(&tmp)
        .arg(&mirror);
        run_logged("debootstrap trixie", &mut boot, &log).map_err(|e| apt_error(&log, e))?;
        let list = format!("deb {mirror} trixie-backports main\n");
        fs::write(tmp.join("etc/apt/sources.list.d/backports.list"), list)?;
        let chroot = |args: &[&str]| {
            let mut c = Command::new("chroot");
            c.arg(&tmp)
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive");
            c
        };
        run_logged(
            "apt-get update (rootfs)",
            &mut chroot(&["apt-get", "update", "-q"]),
            &log,
        )
        .map_err(|e| apt_error(&log, e))?;
        let madison = output(&mut chroot(&["apt-cache", "madison", "qemu-system-x86"]))?;
        let version = qemu_revision(&madison, QEMU_VERSION).with_context(|| {
            format!(
                "trixie-backports has no qemu-system-x86 {QEMU_VERSION} (it has: {})",
                madison.trim().replace('\n', "; ")
            )
        })?;
        println!("    qemu-system-x86 {version} from trixie-backports");
        let qemu = format!("qemu-system-x86={version}");
        let mut args = vec![
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "-t",
            "trixie-backports",
            &qemu,
        ];
        args.extend_from_slice(ROOTFS_PACKAGES);
        run_logged("apt-get install qemu (rootfs)", &mut chroot(&args), &log)
            .map_err(|e| apt_error(&log, e))?;
        run_logged(
            "apt-get clean (rootfs)",
            &mut chroot(&["apt-get", "clean"]),
            &log,
        )?;
        let v = output(qemu_command(&tmp).arg("--version"))?;
        if !v.contains(QEMU_VERSION) {
            bail!(
                "QEMU in the rootfs reports `{}`, expected {QEMU_VERSION}",
                v.lines().next().unwrap_or("")
            );
        }
        fs::write(tmp.join("etc/nova-qemu-version"), format!("{version}\n"))?;
        let ids = output(&mut chroot(&[
            "dpkg-query",
            "-W",
            "-f",
            "${Version}",
            "pci.ids",
        ]))?;
        println!("    pci.ids {ids} from trixie");
        fs::write(tmp.join("etc/nova-pci-ids-version"), format!("{ids}\n"))?;
        if !tmp.join(PCI_IDS).is_file() {
            bail!("the package pci.ids {ids} installed no /{PCI_IDS}");
        }
        let help = output(qemu_command(&tmp).args(["-device", "help"]))?;
        if !help.contains("vfio-user-pci") {
            bail!("QEMU in the rootfs has no vfio-user-pci device");
        }
        util::remove_dir(&dir)?;
        fs::rename(&tmp, &dir)?;
        stamp.mark(&key)?;
        Ok(dir)
    })
}

/// The newest Debian version of QEMU `upstream` that `apt-cache madison` lists from
/// trixie-backports (epoch and Debian revision included, e.g. `1:11.1.3+ds-2~bpo13+1`).
fn qemu_revision(madison: &str, upstream: &str) -> Option<String> {
    // madison lists the newest version first.
    madison
        .lines()
        .filter(|l| l.contains("trixie-backports"))
        .filter_map(|l| l.split('|').nth(1).map(str::trim))
        .filter(|v| {
            let no_epoch = v.split_once(':').map_or(*v, |(_, r)| r);
            no_epoch.split(['+', '-', '~']).next() == Some(upstream)
        })
        .map(str::to_string)
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_asked_of_dpkg_at_once() {
        // make is one of the host packages, so it is there wherever these tests run.
        assert_eq!(
            not_installed(&["make", "nova-no-such-package", "gcc"]),
            ["nova-no-such-package"]
        );
    }

    #[test]
    fn qemu_revision_is_picked_by_upstream_version() {
        let madison = " qemu-system-x86 | 1:11.1.3+ds-2~bpo13+1 | http://m/debian trixie-backports/main amd64 Packages\n qemu-system-x86 | 1:10.0.13+ds-0+deb13u1 | http://m/debian trixie/main amd64 Packages\n";
        assert_eq!(
            qemu_revision(madison, "11.1.3").as_deref(),
            Some("1:11.1.3+ds-2~bpo13+1")
        );
        assert_eq!(
            qemu_revision(madison, "10.0.13"),
            None,
            "not from backports"
        );
        assert_eq!(qemu_revision(madison, "11.1"), None, "whole version only");
    }

    #[test]
    fn debian_gitignore_block_is_removed() {
        let text = "/rust-project.json\n\n#\n# Debian packaging: ignore everything at the top level, since it isn't\n# included in our repository\n#\n/*\n!/debian/\n";
        assert_eq!(
            strip_debian_gitignore(text).as_deref(),
            Some("/rust-project.json\n")
        );
        assert_eq!(strip_debian_gitignore("/vmlinux\n"), None);
    }

    #[test]
    fn picks_rust_src_matching_rustc() {
        let madison = "  rust-src | 1.96.1+dfsg1-1~bpo13+1 | http://m trixie-backports/main all\n\
                       \x20 rust-src | 1.95.0+dfsg1-2~bpo13+1 | http://m trixie-backports/main all\n\
                       \x20 rust-src | 1.94.1+dfsg1-1~bpo13+1 | http://m trixie-backports/main all\n";
        assert_eq!(
            pick_rust_src(madison, "1.95.0").as_deref(),
            Some("1.95.0+dfsg1-2~bpo13+1")
        );
        assert_eq!(
            pick_rust_src(madison, "1.96.1").as_deref(),
            Some("1.96.1+dfsg1-1~bpo13+1")
        );
        assert_eq!(pick_rust_src(madison, "1.95.1"), None);
        assert_eq!(pick_rust_src(madison, "1.9"), None);
    }
}
