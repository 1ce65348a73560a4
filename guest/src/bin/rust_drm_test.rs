//! `rust_drm_test`: the Rust DRM sample driver (`rust_driver_drm`, DRM driver `rust_drm`) from
//! userspace: its nodes and version, its three ioctls and their errors, GEM handles per file,
//! unbinding with files open, and unbind/bind and module cycles; reports KTAP.
//!
//! ```text
//! rust_drm_test --module PATH/rust_driver_drm.ko [--cycles N] [--module-cycles N] [--workers N]
//! ```
//! `--cycles` defaults to 100, `--module-cycles` to 20 and `--workers` to 4. The platform
//! device `rust-drm-sample` must exist (`insmod rust_driver_drm_device.ko` before); the program
//! loads the driver's module itself and unloads it at the end.
//!
//! The driver prints (read from `/dev/kmsg`): `rust_driver_drm rust-drm-sample: DRM device
//! registered` on each probe, `rust_driver_drm rust-drm-sample: unbind` on each removal, and
//! `rust_driver_drm: DRM device released` when the DRM device's data is dropped: at removal
//! when no file is open, else at the last close. Every step checks that exactly the lines it
//! causes appear, once each, and no kernel `WARNING:`/`BUG:`/`Oops` line.
//!
//! KTAP tests (suite `rust_drm_test`), in order:
//! - `nodes`: after `insmod`, the device has one primary and one render node (sysfs and
//!   `/dev/dri`), and each, found by driver name, answers `DRM_IOCTL_VERSION` with `rust_drm`,
//!   its description, version 1.0.0 and date `0` (DRM core 6.12.117 reports `0` for every
//!   driver: the driver's own date, 20261201, no longer reaches userspace);
//! - `gem_create_info_close`: `PAGE_SIZE` from GETPARAM is the process's page size; objects of
//!   several sizes get that size rounded up to it, GEM_INFO gives the same, OBJECT_COUNT counts
//!   them; GEM_CLOSE closes each, a second close is `EINVAL`, GEM_INFO after it `ENOENT`;
//! - one test per refused call, each checking its errno and that OBJECT_COUNT did not change:
//!   `create_size_zero_einval`, `create_huge_size_refused` (`EINVAL` or `ENOMEM`),
//!   `info_unknown_handle_enoent`, `close_unknown_handle_einval`, `create_nonzero_pad_einval`,
//!   `info_nonzero_pad_einval` (on a live handle), `ioctl_past_table_einval`,
//!   `getparam_render_node_eacces`, `getparam_unknown_param_einval`;
//! - `handle_isolation_between_files`: a handle of one open file is `ENOENT` (info) and
//!   `EINVAL` (close) through another open file of the device, and stays usable in its own;
//! - `file_close_frees_objects`: closing a file that holds handles brings OBJECT_COUNT back;
//! - with a primary and a render file open and an object created: `open_file_unbind_keeps_drm_device`
//!   (a sysfs unbind prints `unbind` but not `DRM device released`, and the nodes go),
//!   `open_file_ioctls_enodev_after_unbind` (every ioctl on both files is `ENODEV`),
//!   `open_file_pins_module` (`rmmod` fails and the module stays), `last_close_releases_drm_device`
//!   (closing the render file releases nothing, closing the primary one releases once),
//!   `rebind_after_release` (a sysfs bind gives new nodes that work);
//! - `concurrent_ioctls_end_enodev_at_unbind`: `--workers` child processes share one open
//!   render file and create and close objects in a loop while the device is unbound (from a
//!   child, with a deadline): each ends on `ENODEV`, none on another errno, none hangs;
//!   `concurrent_unbind_release_and_rebind`: closing the last file releases once, a bind works;
//! - `unbind_bind_cycles`: `--cycles` sysfs unbinds and binds, each printing its lines exactly
//!   once, the nodes gone after unbind and present (and answering VERSION) after bind;
//! - `module_unload_load_cycles`: the same with `--module-cycles` `rmmod`/`insmod`;
//! - `module_gone`: a last `rmmod` removes the device once and the module is gone.
//!
//! Child processes rather than threads: the guest kernel has no futexes (see `guest::child`).
//! A worker (`guest::gem_worker`) is this program run as `rust_drm_test --worker SECONDS` with
//! the shared file as its standard input; it prints `ready` after its first create/close pair,
//! then one line `end ITERATIONS ERRNO` (the raw errno that stopped it) or
//! `end ITERATIONS timeout`.

use drm_client::sample::{self, GemCreate, GemInfo};
use drm_client::{describe, errno_name, node, Card, DriverIoctl, Errno, NodeKind};
use guest::args::{self, Flags};
use guest::child;
use guest::drm_check::{self, expect_errno, Created, GemIoctls};
use guest::gem_worker::{self, Workers, WORKER_FLAG};
use guest::kmod::{self, module_name};
use guest::kmsg::{self, Kmsg};
use guest::ktap::verdict;
use guest::sysfs::Bus;
use guest::Planned;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// The KTAP suite name.
const SUITE: &str = "rust_drm_test";

/// The KTAP tests, in the order they are reported.
const TESTS: [&str; 25] = [
    "nodes",
    "gem_create_info_close",
    "create_size_zero_einval",
    "create_huge_size_refused",
    "info_unknown_handle_enoent",
    "close_unknown_handle_einval",
    "create_nonzero_pad_einval",
    "info_nonzero_pad_einval",
    "ioctl_past_table_einval",
    "getparam_render_node_eacces",
    "getparam_unknown_param_einval",
    "handle_isolation_between_files",
    "file_close_frees_objects",
    "prime_self_import_keeps_the_object",
    "open_file_unbind_keeps_drm_device",
    "open_file_ioctls_enodev_after_unbind",
    "open_file_pins_module",
    "last_close_releases_drm_device",
    "rebind_after_release",
    "dmabuf_outlives_unbind_and_pins_module",
    "concurrent_ioctls_end_enodev_at_unbind",
    "concurrent_unbind_release_and_rebind",
    "unbind_bind_cycles",
    "module_unload_load_cycles",
    "module_gone",
];

/// The platform driver (and module) name.
const DRIVER: &str = sample::PLATFORM_DRIVER;
/// The platform device.
const DEVICE: &str = sample::PLATFORM_DEVICE;

/// How long the records of one step may take to arrive.
const STEP_WAIT: Duration = Duration::from_secs(3);
/// How long a step's records must be quiet once they are all there (a line printed twice is
/// then seen twice).
const SETTLE: Duration = Duration::from_millis(20);
/// How long to watch for a line that must not appear (yet): `DRM device released` while a
/// file is open.
const ABSENCE_WAIT: Duration = Duration::from_millis(300);
/// How long a sysfs write or a worker may take before it counts as hung.
const HANG: Duration = Duration::from_secs(30);
/// How long a worker runs at most when no error stops it.
const WORKER_LIMIT_S: u64 = 60;
/// The sizes `gem_create_info_close` creates objects of.
const SIZES: [u64; 7] = [1, 4095, 4096, 4097, 65536, (1 << 20) + 1, 2 << 20];

/// The kernel log lines of the driver, counted per step, and kernel crash lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    registered: usize,
    unbind: usize,
    released: usize,
    crashes: usize,
}

/// What a probe prints.
const PROBE: Tally = Tally::lines(1, 0, 0);
/// What a removal without an open file prints.
const REMOVAL: Tally = Tally::lines(0, 1, 1);
/// What a removal with a file open prints.
const REMOVAL_KEPT: Tally = Tally::lines(0, 1, 0);
/// What the last close after such a removal prints.
const RELEASE: Tally = Tally::lines(0, 0, 1);
/// What an ioctl prints.
const NOTHING: Tally = Tally::lines(0, 0, 0);

/// Texts that mark a kernel crash or warning.
const CRASH_MARKS: [&str; 4] = ["WARNING:", "BUG:", "Oops", "general protection fault"];

impl Tally {
    const fn lines(registered: usize, unbind: usize, released: usize) -> Self {
        Self {
            registered,
            unbind,
            released,
            crashes: 0,
        }
    }

    /// Counts the driver's lines among the record texts `texts`.
    fn of(texts: &[String]) -> Self {
        let registered = format!("{DRIVER} {DEVICE}: DRM device registered");
        let unbind = format!("{DRIVER} {DEVICE}: unbind");
        let released = format!("{DRIVER}: DRM device released");
        let count = |pred: &dyn Fn(&str) -> bool| texts.iter().filter(|t| pred(t)).count();
        Self {
            registered: count(&|t| t.contains(&registered)),
            unbind: count(&|t| t.contains(&unbind)),
            released: count(&|t| t.contains(&released)),
            crashes: count(&|t| CRASH_MARKS.iter().any(|m| t.contains(m))),
        }
    }

    /// Whether every line of `want` appeared at least as often as it wants.
    fn covers(&self, want: Tally) -> bool {
        self.registered >= want.registered
            && self.unbind >= want.unbind
            && self.released >= want.released
    }

    /// How this tally differs from `want`, one message per line.
    fn problems(&self, want: Tally) -> Vec<String> {
        let mut p = Vec::new();
        for (what, got, wanted) in [
            ("DRM device registered", self.registered, want.registered),
            ("unbind", self.unbind, want.unbind),
            ("DRM device released", self.released, want.released),
            ("kernel WARNING/BUG/Oops", self.crashes, want.crashes),
        ] {
            if got != wanted {
                p.push(format!("`{what}` printed {got} times, expected {wanted}"));
            }
        }
        p
    }
}

/// The sample's GEM ioctls, for the checks of [`drm_check`].
struct SampleGem;

impl GemIoctls for SampleGem {
    fn create(card: &Card, size: u64) -> Result<Created, Errno> {
        sample::gem_create(card, size).map(|g| Created {
            handle: g.handle,
            pad: g.pad,
            size: g.size,
        })
    }

    fn info(card: &Card, handle: u32) -> Result<u64, Errno> {
        sample::gem_info(card, handle)
    }

    fn page_align(size: u64, page: u64) -> Option<u64> {
        sample::page_align(size, page)
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Args {
    module: PathBuf,
    cycles: u32,
    module_cycles: u32,
    workers: u32,
}

/// What the program was asked to do.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// The tests.
    Test(Args),
    /// One worker of `concurrent_ioctls_end_enodev_at_unbind`, for at most this many seconds.
    Worker(u64),
}

fn parse(argv: impl IntoIterator<Item = String>) -> Result<Mode, String> {
    let mut flags = Flags::new(argv);
    let mut module = None;
    let (mut cycles, mut module_cycles, mut workers) = (100, 20, 4);
    fn number<T: std::str::FromStr>(v: String, f: &str) -> Result<T, String> {
        v.parse().map_err(|_| format!("{f} wants a number"))
    }
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            WORKER_FLAG => return Ok(Mode::Worker(number(flags.value(&flag)?, &flag)?)),
            "--module" => module = Some(PathBuf::from(flags.value(&flag)?)),
            "--cycles" => cycles = number(flags.value(&flag)?, &flag)?,
            "--module-cycles" => module_cycles = number(flags.value(&flag)?, &flag)?,
            "--workers" => workers = number(flags.value(&flag)?, &flag)?,
            other => return Err(args::unknown(other)),
        }
    }
    let module = args::required(module, "--module")?;
    module_name(&module)?;
    if workers == 0 {
        return Err("--workers wants at least 1".into());
    }
    Ok(Mode::Test(Args {
        module,
        cycles,
        module_cycles,
        workers,
    }))
}

/// The guest: the kernel log and the platform bus.
struct Rig {
    kmsg: Kmsg,
    bus: Bus,
    module: PathBuf,
    module_name: String,
}

/// A primary and a render file of the device.
struct Files {
    primary: Card,
    render: Card,
}

impl Files {
    fn open() -> Result<Self, String> {
        let open =
            |kind| Card::open_driver(sample::DRIVER_NAME, kind).map_err(|e| format!("open: {e}"));
        Ok(Self {
            primary: open(NodeKind::Primary)?,
            render: open(NodeKind::Render)?,
        })
    }

    /// OBJECT_COUNT, through the primary file.
    fn count(&self) -> Result<u64, String> {
        sample::getparam(&self.primary, sample::PARAM_OBJECT_COUNT)
            .map_err(|e| format!("GETPARAM(OBJECT_COUNT): {}", errno_name(e)))
    }

    /// `PAGE_SIZE`, through the primary file.
    fn page_size(&self) -> Result<u64, String> {
        sample::getparam(&self.primary, sample::PARAM_PAGE_SIZE)
            .map_err(|e| format!("GETPARAM(PAGE_SIZE): {}", errno_name(e)))
    }
}

impl Rig {
    /// Reads the log until the lines of `want` are there and quiet for `settle` (or
    /// [`STEP_WAIT`] passed), then checks they appeared exactly as `want` says.
    fn log(&mut self, want: Tally, settle: Duration) -> Result<(), String> {
        let got = kmsg::collect(&mut self.kmsg, STEP_WAIT, settle, |t| {
            Tally::of(t).covers(want)
        });
        let mut problems = got.problems;
        problems.extend(Tally::of(&got.texts).problems(want));
        verdict(problems)
    }

    /// The outcome of an action (`done`), then the log as [`Rig::log`] checks it (with
    /// [`SETTLE`]).
    fn step(&mut self, want: Tally, done: Result<(), String>) -> Result<(), String> {
        done?;
        self.log(want, SETTLE)
    }

    fn unbind(&self) -> Result<(), String> {
        self.bus.unbind(DRIVER, DEVICE)
    }

    fn bind(&self) -> Result<(), String> {
        self.bus.bind(DRIVER, DEVICE)
    }

    /// A sysfs write from a child process, given up after [`HANG`]: for a write that may hang
    /// in the kernel.
    fn write_from_child(&self, file: &str) -> Result<(), String> {
        let path = self.bus.driver_file(DRIVER, file);
        child::run_with_timeout(
            Command::new("sh")
                .arg("-c")
                .arg(format!("echo {DEVICE} > {}", path.display())),
            HANG,
        )
        .map(drop)
    }

    /// An ioctl test: `f`, with OBJECT_COUNT the same before and after and nothing in the log.
    fn unchanged(
        &mut self,
        files: &Files,
        f: impl FnOnce(&Files) -> Result<(), String>,
    ) -> Result<(), String> {
        let before = files.count()?;
        let mut problems: Vec<String> = f(files).err().into_iter().collect();
        match files.count() {
            Ok(after) if after == before => {}
            Ok(after) => problems.push(format!("OBJECT_COUNT went from {before} to {after}")),
            Err(e) => problems.push(e),
        }
        if let Err(e) = self.log(NOTHING, SETTLE) {
            problems.push(e);
        }
        verdict(problems)
    }
}

/// The device's nodes as sysfs lists them, waiting up to [`STEP_WAIT`] for one primary and
/// one render node whose device files exist and whose device is bound to the driver.
fn nodes_present() -> Result<Vec<node::ClassNode>, String> {
    let start = Instant::now();
    loop {
        let nodes = node::nodes_of_device(DEVICE).map_err(|e| format!("sysfs: {e}"))?;
        let problems = node_problems(&nodes, true);
        if problems.is_empty() {
            return Ok(nodes);
        }
        if start.elapsed() > STEP_WAIT {
            return Err(problems.join("; "));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Checks that the device has no node in sysfs and that the device files of `previous` are
/// gone.
fn nodes_gone(previous: &[node::ClassNode]) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let nodes = node::nodes_of_device(DEVICE).map_err(|e| format!("sysfs: {e}"))?;
        let mut problems = node_problems(&nodes, false);
        for n in previous {
            if n.node.path.exists() {
                problems.push(format!("{} still exists", n.node.path.display()));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        if start.elapsed() > STEP_WAIT {
            return Err(problems.join("; "));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What is wrong with the device's `nodes` when it is `bound` (one primary and one render node,
/// device files that are character devices, the device bound to the driver) or not (none).
fn node_problems(nodes: &[node::ClassNode], bound: bool) -> Vec<String> {
    let names = || {
        nodes
            .iter()
            .map(|n| n.node.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !bound {
        return if nodes.is_empty() {
            Vec::new()
        } else {
            vec![format!("{DEVICE} still has nodes: {}", names())]
        };
    }
    let mut p = Vec::new();
    for kind in [NodeKind::Primary, NodeKind::Render] {
        let n = nodes.iter().filter(|n| n.node.kind == kind).count();
        if n != 1 {
            p.push(format!("{DEVICE} has {n} {kind} nodes ({})", names()));
        }
    }
    for n in nodes {
        let is_char = std::fs::metadata(&n.node.path).is_ok_and(|m| m.file_type().is_char_device());
        if !is_char {
            p.push(format!(
                "{} is not a character device",
                n.node.path.display()
            ));
        }
        if n.driver.as_deref() != Some(DRIVER) {
            p.push(format!(
                "{}: the device's driver is {:?}",
                n.node.path.display(),
                n.driver
            ));
        }
    }
    p
}

/// The node of `kind` among `nodes`.
fn node_path(nodes: &[node::ClassNode], kind: NodeKind) -> Option<&Path> {
    nodes
        .iter()
        .find(|n| n.node.kind == kind)
        .map(|n| n.node.path.as_path())
}

/// Checks `card`'s `DRM_IOCTL_VERSION` against the sample's.
fn check_version(card: &Card) -> Result<(), String> {
    let v = card
        .version()
        .map_err(|e| format!("VERSION: {}", errno_name(e)))?;
    let want = drm_client::Version {
        name: sample::DRIVER_NAME.into(),
        desc: sample::DRIVER_DESC.into(),
        date: sample::VERSION_DATE.into(),
        version: sample::DRIVER_VERSION,
    };
    if v == want {
        Ok(())
    } else {
        Err(format!("VERSION gives `{v}`, expected `{want}`"))
    }
}

fn test_nodes(rig: &mut Rig) -> Result<(), String> {
    rig.step(PROBE, kmod::insmod(&rig.module))?;
    let nodes = nodes_present()?;
    let mut problems = Vec::new();
    for kind in [NodeKind::Primary, NodeKind::Render] {
        match Card::open_driver(sample::DRIVER_NAME, kind) {
            Ok(card) => {
                if card.path() != node_path(&nodes, kind) {
                    problems.push(format!(
                        "the {kind} node of `rust_drm` is {:?}, sysfs says {:?}",
                        card.path(),
                        node_path(&nodes, kind)
                    ));
                }
                if let Err(e) = check_version(&card) {
                    problems.push(format!("{kind} node: {e}"));
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    verdict(problems)
}

fn test_gem_create_info_close(rig: &mut Rig, files: &Files) -> Result<(), String> {
    let page = files.page_size()?;
    let own = rustix::param::page_size() as u64;
    if page != own || !page.is_power_of_two() {
        return Err(format!(
            "GETPARAM(PAGE_SIZE) is {page}, the process's page size {own}"
        ));
    }
    let base = files.count()?;
    let mut problems = Vec::new();
    let handles = drm_check::create_each::<SampleGem>(&files.render, &SIZES, page, &mut problems);
    match files.count() {
        Ok(n) if n == base + handles.len() as u64 => {}
        Ok(n) => problems.push(format!(
            "OBJECT_COUNT is {n} with {} objects created, {base} before",
            handles.len()
        )),
        Err(e) => problems.push(e),
    }
    drm_check::close_each::<SampleGem>(&files.render, &handles, &mut problems);
    match files.count() {
        Ok(n) if n == base => {}
        Ok(n) => problems.push(format!(
            "OBJECT_COUNT is {n} after closing all, {base} before"
        )),
        Err(e) => problems.push(e),
    }
    problems.extend(rig.log(NOTHING, SETTLE).err());
    verdict(problems)
}

/// The refused call of test `name` (but `info_nonzero_pad_einval`, see [`test_info_pad`]), run
/// through [`Rig::unchanged`].
fn refused_calls(name: &str, files: &Files) -> Result<(), String> {
    let render = &files.render;
    let mut problems = Vec::new();
    let mut check = |got: Result<(), String>| problems.extend(got.err());
    match name {
        "create_size_zero_einval" => {
            let r = sample::gem_create(render, 0);
            check(expect_errno("GEM_CREATE(0)", &r, &[Errno::INVAL]));
        }
        "create_huge_size_refused" => {
            for size in [u64::MAX, 1 << 63] {
                let r = sample::gem_create(render, size);
                let what = format!("GEM_CREATE({size:#x})");
                check(expect_errno(&what, &r, &[Errno::INVAL, Errno::NOMEM]));
            }
        }
        "info_unknown_handle_enoent" => {
            for h in [0, 0x7fff_ffff, u32::MAX] {
                let r = sample::gem_info(render, h);
                check(expect_errno(
                    &format!("GEM_INFO({h:#x})"),
                    &r,
                    &[Errno::NOENT],
                ));
            }
        }
        "close_unknown_handle_einval" => {
            for h in [12345, 0x7fff_ffff] {
                let r = render.gem_close(h);
                check(expect_errno(
                    &format!("GEM_CLOSE({h:#x})"),
                    &r,
                    &[Errno::INVAL],
                ));
            }
        }
        "create_nonzero_pad_einval" => {
            for pad in [1, u32::MAX] {
                let mut arg = GemCreate {
                    handle: 0,
                    pad,
                    size: 4096,
                };
                let r = render.ioctl(sample::GEM_CREATE, &mut arg);
                check(expect_errno(
                    &format!("GEM_CREATE with pad {pad:#x}"),
                    &r,
                    &[Errno::INVAL],
                ));
            }
        }
        "ioctl_past_table_einval" => {
            for nr in [sample::NUM_IOCTLS, 0x5f] {
                let past = DriverIoctl::<[u8; 16]>::read_write(nr, "past the table");
                for (kind, card) in [("render", render), ("primary", &files.primary)] {
                    let r = card.ioctl(past, &mut [0u8; 16]);
                    let what = format!("ioctl {:#x} on the {kind} node", past.opcode());
                    check(expect_errno(&what, &r, &[Errno::INVAL]));
                }
            }
        }
        "getparam_render_node_eacces" => {
            for param in [sample::PARAM_PAGE_SIZE, sample::PARAM_OBJECT_COUNT] {
                let r = sample::getparam(render, param);
                check(expect_errno(
                    &format!("GETPARAM({param}) on the render node"),
                    &r,
                    &[Errno::ACCESS],
                ));
            }
        }
        "getparam_unknown_param_einval" => {
            for param in [0, 3, u64::MAX] {
                let r = sample::getparam(&files.primary, param);
                check(expect_errno(
                    &format!("GETPARAM({param:#x})"),
                    &r,
                    &[Errno::INVAL],
                ));
            }
        }
        other => unreachable!("no refused call {other}"),
    }
    verdict(problems)
}

fn test_info_pad(rig: &mut Rig, files: &Files) -> Result<(), String> {
    let gem = sample::gem_create(&files.render, 4096)
        .map_err(|e| format!("GEM_CREATE(4096): {}", errno_name(e)))?;
    let res = rig.unchanged(files, |files| {
        let mut problems = Vec::new();
        for pad in [1, u32::MAX] {
            let mut arg = GemInfo {
                handle: gem.handle,
                pad,
                size: 0,
            };
            let r = files.render.ioctl(sample::GEM_INFO, &mut arg);
            let what = format!("GEM_INFO({}) with pad {pad:#x}", gem.handle);
            problems.extend(expect_errno(&what, &r, &[Errno::INVAL]).err());
        }
        verdict(problems)
    });
    let closed = files
        .render
        .gem_close(gem.handle)
        .map_err(|e| format!("GEM_CLOSE({}): {}", gem.handle, errno_name(e)));
    res.and(closed)
}

fn test_handle_isolation(rig: &mut Rig, files: &Files) -> Result<(), String> {
    let render_path = files.render.path().ok_or("the render file has no path")?;
    // A second open file of the render node: a DRM file of its own.
    let other = Card::open(render_path).map_err(|e| e.to_string())?;
    let gem = sample::gem_create(&files.render, 8192)
        .map_err(|e| format!("GEM_CREATE(8192): {}", errno_name(e)))?;
    let h = gem.handle;
    let mut problems = Vec::new();
    for (what, card) in [
        ("another render file", &other),
        ("the primary file", &files.primary),
    ] {
        let info = sample::gem_info(card, h);
        problems.extend(
            expect_errno(
                &format!("GEM_INFO({h}) through {what}"),
                &info,
                &[Errno::NOENT],
            )
            .err(),
        );
        let close = card.gem_close(h);
        problems.extend(
            expect_errno(
                &format!("GEM_CLOSE({h}) through {what}"),
                &close,
                &[Errno::INVAL],
            )
            .err(),
        );
    }
    let own = sample::gem_info(&files.render, h);
    if own != Ok(gem.size) {
        problems.push(format!(
            "GEM_INFO({h}) through its own file gave {} after the others tried, expected Ok({})",
            describe(&own),
            gem.size
        ));
    }
    if let Err(e) = files.render.gem_close(h) {
        problems.push(format!(
            "GEM_CLOSE({h}) through its own file: {}",
            errno_name(e)
        ));
    }
    drop(other);
    problems.extend(rig.log(NOTHING, SETTLE).err());
    verdict(problems)
}

/// Review R5 of rust-drm v1 (PRIME is reachable through DRM core's defaults): an object exported
/// to a dma-buf by one file and imported by another file of the same device is the same object
/// (DRM's self-import), and the dma-buf keeps it alive after both files are closed, until it is
/// closed too.
fn test_prime_self_import(rig: &mut Rig, files: &Files) -> Result<(), String> {
    let base = files.count()?;
    let render_path = files.render.path().ok_or("the render file has no path")?;
    let open = || Card::open(render_path).map_err(|e| e.to_string());
    let (exporter, importer) = (open()?, open()?);
    let gem = sample::gem_create(&exporter, 8192)
        .map_err(|e| format!("GEM_CREATE(8192): {}", errno_name(e)))?;
    let dmabuf = exporter
        .prime_export(gem.handle)
        .map_err(|e| format!("PRIME_HANDLE_TO_FD({}): {}", gem.handle, errno_name(e)))?;
    let mut problems = Vec::new();
    match importer.prime_import(std::os::fd::AsFd::as_fd(&dmabuf)) {
        Ok(h) => {
            let info = sample::gem_info(&importer, h);
            if info != Ok(gem.size) {
                problems.push(format!(
                    "GEM_INFO of the imported handle {h} gave {}, expected Ok({})",
                    describe(&info),
                    gem.size
                ));
            }
        }
        Err(e) => problems.push(format!("PRIME_FD_TO_HANDLE: {}", errno_name(e))),
    }
    let shared = files.count()?;
    if shared != base + 1 {
        problems.push(format!(
            "OBJECT_COUNT {shared} with one object exported and imported, {base} before"
        ));
    }
    drop((exporter, importer));
    let held = files.count()?;
    if held != base + 1 {
        problems.push(format!(
            "OBJECT_COUNT {held} with both files closed and the dma-buf open, expected {}",
            base + 1
        ));
    }
    drop(dmabuf);
    let after = files.count()?;
    if after != base {
        problems.push(format!(
            "OBJECT_COUNT {after} after the dma-buf was closed too, {base} before"
        ));
    }
    problems.extend(rig.log(NOTHING, SETTLE).err());
    verdict(problems)
}

fn test_file_close_frees(rig: &mut Rig, files: &Files) -> Result<(), String> {
    let base = files.count()?;
    let render_path = files.render.path().ok_or("the render file has no path")?;
    let file = Card::open(render_path).map_err(|e| e.to_string())?;
    for size in [4096, 4097, 1 << 16, 1, 3 << 12] {
        sample::gem_create(&file, size)
            .map_err(|e| format!("GEM_CREATE({size}): {}", errno_name(e)))?;
    }
    let live = files.count()?;
    drop(file);
    let after = files.count()?;
    let mut problems = Vec::new();
    if live != base + 5 {
        problems.push(format!("OBJECT_COUNT {live} with 5 objects, {base} before"));
    }
    if after != base {
        problems.push(format!(
            "OBJECT_COUNT {after} after closing the file that held 5 objects, {base} before"
        ));
    }
    problems.extend(rig.log(NOTHING, SETTLE).err());
    verdict(problems)
}

/// The unbind-with-open-files tests, reported on `run`.
fn open_file_unbind(rig: &mut Rig, run: &mut Planned) {
    let opened = Files::open().and_then(|f| {
        let gem = sample::gem_create(&f.render, 4096)
            .map_err(|e| format!("GEM_CREATE(4096): {}", errno_name(e)))?;
        let nodes = nodes_present()?;
        Ok((f, gem, nodes))
    });
    let (files, gem, nodes) = match opened {
        Ok(x) => x,
        Err(e) => {
            for name in &TESTS[14..20] {
                run.skip(name, &format!("no files open: {e}"));
            }
            return;
        }
    };
    // The unbind: once, without the release (the files keep the DRM device), nodes gone.
    let unbound = rig
        .unbind()
        .and_then(|()| rig.log(REMOVAL_KEPT, ABSENCE_WAIT));
    let gone = nodes_gone(&nodes);
    run.result("open_file_unbind_keeps_drm_device", unbound.and(gone));

    // Every ioctl on either file: ENODEV.
    let h = gem.handle;
    let mut problems = Vec::new();
    let calls: [(String, Result<(), Errno>); 7] = [
        (
            "render GEM_INFO".into(),
            sample::gem_info(&files.render, h).map(drop),
        ),
        (
            "render GEM_CREATE".into(),
            sample::gem_create(&files.render, 4096).map(drop),
        ),
        ("render GEM_CLOSE".into(), files.render.gem_close(h)),
        ("render VERSION".into(), files.render.version().map(drop)),
        (
            "primary GETPARAM".into(),
            sample::getparam(&files.primary, sample::PARAM_OBJECT_COUNT).map(drop),
        ),
        (
            "primary GEM_CREATE".into(),
            sample::gem_create(&files.primary, 4096).map(drop),
        ),
        ("primary VERSION".into(), files.primary.version().map(drop)),
    ];
    for (what, r) in &calls {
        problems.extend(expect_errno(what, r, &[Errno::NODEV]).err());
    }
    problems.extend(rig.log(NOTHING, SETTLE).err());
    run.result("open_file_ioctls_enodev_after_unbind", verdict(problems));

    // The open files pin the module.
    let rmmod = kmod::rmmod(&rig.module);
    let mut problems = Vec::new();
    if rmmod.is_ok() {
        problems.push("rmmod succeeded with a DRM file of the module open".to_string());
    }
    if !kmod::is_loaded(&rig.module_name) {
        problems.push(format!("{} is no longer in /proc/modules", rig.module_name));
    }
    problems.extend(rig.log(NOTHING, SETTLE).err());
    run.result("open_file_pins_module", verdict(problems));

    // The last close releases, once.
    let Files { primary, render } = files;
    drop(render);
    let first = rig
        .log(NOTHING, ABSENCE_WAIT)
        .map_err(|e| format!("after closing the render file (the primary one still open): {e}"));
    drop(primary);
    let last = rig
        .log(RELEASE, ABSENCE_WAIT)
        .map_err(|e| format!("after closing the last file: {e}"));
    run.result("last_close_releases_drm_device", first.and(last));

    run.result("rebind_after_release", rebind_works(rig));
    run.result(
        "dmabuf_outlives_unbind_and_pins_module",
        dmabuf_outlives_unbind(rig),
    );
}

/// Review R5 of rust-drm v1: a dma-buf exported from the device, with every DRM file closed,
/// keeps the DRM device through the unbind (the nodes go, the release waits) and pins the module;
/// closing it releases the device once. The device is bound again afterwards.
fn dmabuf_outlives_unbind(rig: &mut Rig) -> Result<(), String> {
    let files = Files::open()?;
    let gem = sample::gem_create(&files.render, 4096)
        .map_err(|e| format!("GEM_CREATE(4096): {}", errno_name(e)))?;
    let dmabuf = files
        .render
        .prime_export(gem.handle)
        .map_err(|e| format!("PRIME_HANDLE_TO_FD({}): {}", gem.handle, errno_name(e)))?;
    let nodes = nodes_present()?;
    drop(files);
    let mut problems = Vec::new();
    problems.extend(
        rig.log(NOTHING, SETTLE)
            .map_err(|e| format!("after closing the files, the dma-buf open: {e}"))
            .err(),
    );
    problems.extend(
        rig.unbind()
            .and_then(|()| rig.log(REMOVAL_KEPT, ABSENCE_WAIT))
            .map_err(|e| format!("the unbind with the dma-buf open: {e}"))
            .err(),
    );
    problems.extend(nodes_gone(&nodes).err());
    if kmod::rmmod(&rig.module).is_ok() {
        problems.push("rmmod succeeded with a dma-buf of the module's device open".to_string());
    }
    if !kmod::is_loaded(&rig.module_name) {
        problems.push(format!("{} is no longer in /proc/modules", rig.module_name));
    }
    drop(dmabuf);
    problems.extend(
        rig.log(RELEASE, ABSENCE_WAIT)
            .map_err(|e| format!("after closing the dma-buf: {e}"))
            .err(),
    );
    problems.extend(rig.step(PROBE, rig.bind()).err());
    problems.extend(nodes_present().err());
    verdict(problems)
}

/// Binds the device and checks that its new nodes work: create/info/close through the render
/// node, and OBJECT_COUNT 1 with that one object (a new DRM device counts from 0).
fn rebind_works(rig: &mut Rig) -> Result<(), String> {
    rig.step(PROBE, rig.bind())?;
    nodes_present()?;
    let files = Files::open()?;
    let gem = sample::gem_create(&files.render, 5000)
        .map_err(|e| format!("GEM_CREATE(5000): {}", errno_name(e)))?;
    let info = sample::gem_info(&files.render, gem.handle);
    let count = files.count()?;
    let closed = files.render.gem_close(gem.handle);
    let mut problems = Vec::new();
    if info != Ok(gem.size) {
        problems.push(format!(
            "GEM_INFO gave {}, expected Ok({})",
            describe(&info),
            gem.size
        ));
    }
    if count != 1 {
        problems.push(format!(
            "OBJECT_COUNT {count} with one object on the new device"
        ));
    }
    if let Err(e) = closed {
        problems.push(format!("GEM_CLOSE: {}", errno_name(e)));
    }
    verdict(problems)
}

/// The concurrent-unbind tests, reported on `run`.
fn concurrent_unbind(rig: &mut Rig, run: &mut Planned, n: u32) {
    let res = concurrent_ioctls(rig, n, run);
    let files = match res {
        Ok((files, problems)) => {
            run.result("concurrent_ioctls_end_enodev_at_unbind", verdict(problems));
            Some(files)
        }
        Err(e) => {
            run.result("concurrent_ioctls_end_enodev_at_unbind", Err(e));
            None
        }
    };
    let after = (|| {
        if let Some(files) = files {
            drop(files);
            rig.log(RELEASE, SETTLE)
                .map_err(|e| format!("after closing the last file: {e}"))?;
        }
        if Bus::new("platform").driver_of(DEVICE).as_deref() != Some(DRIVER) {
            rig.step(PROBE, rig.bind())?;
        }
        let nodes = nodes_present()?;
        let render = node_path(&nodes, NodeKind::Render).ok_or("no render node")?;
        let card = Card::open(render).map_err(|e| e.to_string())?;
        let gem = sample::gem_create(&card, 4096)
            .map_err(|e| format!("GEM_CREATE after the rebind: {}", errno_name(e)))?;
        card.gem_close(gem.handle)
            .map_err(|e| format!("GEM_CLOSE after the rebind: {}", errno_name(e)))
    })();
    run.result("concurrent_unbind_release_and_rebind", after);
}

/// Starts `n` workers on one open render file, unbinds while they run, and waits for them:
/// the files still open (the release is checked when they close) and the problems.
fn concurrent_ioctls(
    rig: &mut Rig,
    n: u32,
    run: &mut Planned,
) -> Result<(Files, Vec<String>), String> {
    let files = Files::open()?;
    let mut workers = Workers::spawn(&files.render, n, WORKER_LIMIT_S)?;
    let mut problems = Vec::new();
    if !workers.wait_started(Instant::now() + HANG) {
        problems.push("not every worker got going".to_string());
    }
    // Let them race for a while, then unbind from a child (it may hang).
    std::thread::sleep(Duration::from_millis(50));
    let unbind = rig.write_from_child("unbind");
    if let Err(e) = &unbind {
        problems.push(format!("unbind: {e}"));
    }
    let t = Instant::now();
    if !workers.wait_ended(Instant::now() + HANG) {
        problems.push(format!(
            "workers still running {} s after the unbind",
            HANG.as_secs()
        ));
    }
    problems.extend(workers.reap());
    for (i, end) in workers.ends().iter().enumerate() {
        if let Some(end) = end {
            run.diag(&format!(
                "worker {i}: {} create/close pairs, then {}",
                end.iterations,
                end.errno.map_or("its time limit".into(), errno_name)
            ));
        }
    }
    run.diag(&format!(
        "workers ended {:.3} s after the unbind",
        t.elapsed().as_secs_f64()
    ));
    if unbind.is_ok() {
        problems.extend(rig.log(REMOVAL_KEPT, ABSENCE_WAIT).err());
    }
    Ok((files, problems))
}

fn unbind_bind_cycles(rig: &mut Rig, cycles: u32) -> Result<(), String> {
    let mut nodes = nodes_present()?;
    for cycle in 1..=cycles {
        let fail = |what: &str, e: String| format!("cycle {cycle}, {what}: {e}");
        rig.step(REMOVAL, rig.unbind())
            .and_then(|()| nodes_gone(&nodes))
            .map_err(|e| fail("unbind", e))?;
        rig.step(PROBE, rig.bind())
            .and_then(|()| {
                nodes = nodes_present()?;
                let render = node_path(&nodes, NodeKind::Render).ok_or("no render node")?;
                check_version(&Card::open(render).map_err(|e| e.to_string())?)
            })
            .map_err(|e| fail("bind", e))?;
    }
    Ok(())
}

fn module_cycles(rig: &mut Rig, cycles: u32) -> Result<(), String> {
    let mut nodes = nodes_present()?;
    let module = rig.module.clone();
    for cycle in 1..=cycles {
        let fail = |what: &str, e: String| format!("cycle {cycle}, {what}: {e}");
        rig.step(REMOVAL, kmod::rmmod(&module))
            .and_then(|()| nodes_gone(&nodes))
            .and_then(|()| module_unloaded(rig))
            .map_err(|e| fail("rmmod", e))?;
        rig.step(PROBE, kmod::insmod(&module))
            .and_then(|()| {
                nodes = nodes_present()?;
                Ok(())
            })
            .map_err(|e| fail("insmod", e))?;
    }
    Ok(())
}

fn module_unloaded(rig: &Rig) -> Result<(), String> {
    if kmod::is_loaded(&rig.module_name) {
        Err(format!("{} is still in /proc/modules", rig.module_name))
    } else {
        Ok(())
    }
}

fn test_module_gone(rig: &mut Rig) -> Result<(), String> {
    if !kmod::is_loaded(&rig.module_name) {
        return Err(format!("{} was not loaded any more", rig.module_name));
    }
    let bound = Bus::new("platform").driver_of(DEVICE).as_deref() == Some(DRIVER);
    let want = if bound { REMOVAL } else { NOTHING };
    rig.step(want, kmod::rmmod(&rig.module))?;
    module_unloaded(rig)?;
    nodes_gone(&[])
}

fn main() -> ExitCode {
    let usage = "usage: rust_drm_test --module PATH.ko [--cycles N] [--module-cycles N] \
                 [--workers N]";
    let args = match guest::start(SUITE, Some(usage), parse) {
        Ok(Mode::Test(a)) => a,
        Ok(Mode::Worker(limit)) => {
            // One create/close pair on the shared file.
            return gem_worker::worker_main(limit, |card| {
                sample::gem_create(card, 4096).and_then(|g| card.gem_close(g.handle))
            });
        }
        Err(code) => return code,
    };
    let kmsg = match Kmsg::open(true) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{SUITE}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rig = Rig {
        kmsg,
        bus: Bus::new("platform"),
        module_name: module_name(&args.module).expect("checked by parse"),
        module: args.module.clone(),
    };
    let mut run = Planned::start(SUITE, TESTS);
    let start = Instant::now();
    let nodes = test_nodes(&mut rig);
    let ok = nodes.is_ok();
    run.result("nodes", nodes);
    if ok {
        device_tests(&mut rig, &mut run, &args);
    } else {
        for name in &TESTS[1..TESTS.len() - 1] {
            run.skip(name, "the driver did not come up (test `nodes`)");
        }
    }
    let gone = test_module_gone(&mut rig);
    run.result("module_gone", gone);
    run.diag(&format!("elapsed: {:.1} s", start.elapsed().as_secs_f64()));
    ExitCode::from(run.finish() as u8)
}

/// Every test between `nodes` and `module_gone`.
fn device_tests(rig: &mut Rig, run: &mut Planned, args: &Args) {
    match Files::open() {
        Ok(files) => {
            let gem = test_gem_create_info_close(rig, &files);
            run.result("gem_create_info_close", gem);
            for name in &TESTS[2..11] {
                let res = if *name == "info_nonzero_pad_einval" {
                    test_info_pad(rig, &files)
                } else {
                    rig.unchanged(&files, |f| refused_calls(name, f))
                };
                run.result(name, res);
            }
            let isolation = test_handle_isolation(rig, &files);
            run.result("handle_isolation_between_files", isolation);
            let close = test_file_close_frees(rig, &files);
            run.result("file_close_frees_objects", close);
            let prime = test_prime_self_import(rig, &files);
            run.result("prime_self_import_keeps_the_object", prime);
        }
        Err(e) => {
            for name in &TESTS[1..14] {
                run.skip(name, &format!("cannot open the nodes: {e}"));
            }
        }
    }
    open_file_unbind(rig, run);
    concurrent_unbind(rig, run, args.workers);
    let t = Instant::now();
    let cycles = unbind_bind_cycles(rig, args.cycles);
    run.diag(&format!(
        "{} unbind/bind cycles in {:.1} s",
        args.cycles,
        t.elapsed().as_secs_f64()
    ));
    run.result("unbind_bind_cycles", cycles);
    let t = Instant::now();
    let modules = module_cycles(rig, args.module_cycles);
    run.diag(&format!(
        "{} module cycles in {:.1} s",
        args.module_cycles,
        t.elapsed().as_secs_f64()
    ));
    run.result("module_unload_load_cycles", modules);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_driver_lines_are_counted_and_others_ignored() {
        let t = Tally::of(&texts(&[
            "rust_driver_drm rust-drm-sample: DRM device registered",
            "[drm] Initialized rust_drm 1.0.0 20261201 for rust-drm-sample on minor 0",
            "rust_driver_drm rust-drm-sample: unbind",
            "rust_driver_platform rust-sample-a: unbind",
            "rust_driver_drm: DRM device released",
            "rust_driver_drm rust-drm-sample: DRM device released",
            "WARNING: CPU: 0 PID: 1 at drivers/gpu/drm/drm_gem.c:1 x",
        ]));
        assert_eq!(
            t,
            Tally {
                registered: 1,
                unbind: 1,
                released: 1,
                crashes: 1
            }
        );
        assert!(t.covers(REMOVAL) && t.covers(PROBE) && t.covers(NOTHING));
        assert!(!Tally::default().covers(RELEASE));
        assert_eq!(
            t.problems(REMOVAL),
            [
                "`DRM device registered` printed 1 times, expected 0",
                "`kernel WARNING/BUG/Oops` printed 1 times, expected 0"
            ]
        );
    }

    #[test]
    fn a_repeated_or_missing_line_is_a_problem() {
        let twice = Tally::of(&texts(&[
            "rust_driver_drm rust-drm-sample: unbind",
            "rust_driver_drm rust-drm-sample: unbind",
        ]));
        assert_eq!(
            twice.problems(REMOVAL),
            [
                "`unbind` printed 2 times, expected 1",
                "`DRM device released` printed 0 times, expected 1"
            ]
        );
        // With a file open, the release must not come with the unbind.
        let early = Tally::of(&texts(&[
            "rust_driver_drm rust-drm-sample: unbind",
            "rust_driver_drm: DRM device released",
        ]));
        assert_eq!(
            early.problems(REMOVAL_KEPT),
            ["`DRM device released` printed 1 times, expected 0"]
        );
        assert!(early.problems(REMOVAL).is_empty());
    }

    #[test]
    fn command_lines_give_tests_or_a_worker() {
        let argv = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            parse(argv("--module /lib/modules/rust_driver_drm.ko --cycles 3")),
            Ok(Mode::Test(Args {
                module: "/lib/modules/rust_driver_drm.ko".into(),
                cycles: 3,
                module_cycles: 20,
                workers: 4
            }))
        );
        assert_eq!(parse(argv("--worker 60")), Ok(Mode::Worker(60)));
        assert!(parse(argv("--cycles 3"))
            .unwrap_err()
            .contains("--module is required"));
        assert!(parse(argv("--module m.o")).is_err());
        assert!(parse(argv("--module m.ko --workers 0")).is_err());
        assert!(parse(argv("--module m.ko --bogus 1")).is_err());
    }

    #[test]
    fn the_plan_names_every_test_once() {
        let mut names = TESTS.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TESTS.len());
        // The slices the program skips by.
        assert_eq!(TESTS[2], "create_size_zero_einval");
        assert_eq!(TESTS[10], "getparam_unknown_param_einval");
        assert_eq!(TESTS[13], "prime_self_import_keeps_the_object");
        assert_eq!(TESTS[14], "open_file_unbind_keeps_drm_device");
        assert_eq!(TESTS[18], "rebind_after_release");
        assert_eq!(TESTS[TESTS.len() - 1], "module_gone");
    }

    #[test]
    fn nodes_are_judged_by_kind_count_and_driver() {
        let n = |kind, number, driver: Option<&str>| node::ClassNode {
            node: node::Node {
                kind,
                number,
                path: PathBuf::from(format!("/nonexistent/{}{number}", kind.prefix())),
            },
            device: Some(DEVICE.into()),
            driver: driver.map(String::from),
        };
        assert!(node_problems(&[], false).is_empty());
        let one = [n(NodeKind::Primary, 0, Some(DRIVER))];
        assert_eq!(
            node_problems(&one, false),
            ["rust-drm-sample still has nodes: /nonexistent/card0"]
        );
        let p = node_problems(&one, true);
        assert_eq!(
            p,
            [
                "rust-drm-sample has 0 render nodes (/nonexistent/card0)",
                "/nonexistent/card0 is not a character device"
            ]
        );
        let p = node_problems(&[n(NodeKind::Render, 128, None)], true);
        assert!(p.iter().any(|p| p.contains("driver is None")), "{p:?}");
    }
}
