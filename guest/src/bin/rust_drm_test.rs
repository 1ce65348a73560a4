//! `rust_drm_test`: the Rust DRM sample driver (`rust_driver_drm`, DRM driver `rust_drm`) from
//! userspace: its nodes and version, its ioctls and their errors, GEM handles per file, PRIME,
//! FLINK and GEM_OPEN, unbinding with files open, what a handler that waits costs the unplug,
//! and unbind/bind and module cycles; reports KTAP.
//!
//! ```text
//! rust_drm_test --module PATH/rust_driver_drm.ko [--cycles N] [--module-cycles N] [--workers N]
//! ```
//! `--cycles` defaults to 100, `--module-cycles` to 20 and `--workers` to 4. The platform
//! devices `rust-drm-sample` and `rust-drm-sample-spare` must exist (`insmod
//! rust_driver_drm_device.ko` before), the driver must have its debug ioctls
//! (`CONFIG_SAMPLE_RUST_DRIVER_DRM_DEBUG`) and C's vgem must be loaded; the program loads the
//! driver's module itself and unloads it at the end.
//!
//! The driver prints (read from `/dev/kmsg`): `rust_driver_drm rust-drm-sample: DRM device
//! registered` on each probe, `rust_driver_drm rust-drm-sample: unbind` on each removal (after
//! it unplugged the DRM device), `rust_driver_drm: driver data dropped, DRM device unplugged`
//! when the platform driver's data goes after it, and `rust_driver_drm: DRM device released`
//! when the DRM device's data is dropped: at removal when no file is open, else at the last
//! close. Every step checks that exactly the lines it causes appear, once each, and no kernel
//! `WARNING:`/`BUG:`/`Oops` line.
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
//!   `getparam_render_node_eacces`, `getparam_unknown_param_einval`,
//!   `debug_sleep_bad_arguments_einval` (a sleep over 10 s, or `unplugged` not 0);
//! - `handle_isolation_between_files`: a handle of one open file is `ENOENT` (info) and
//!   `EINVAL` (close) through another open file of the device, and stays usable in its own;
//! - `file_close_frees_objects`: closing a file that holds handles brings OBJECT_COUNT back;
//! - `prime_self_import_keeps_the_object`: a dma-buf imported by another file of the device is
//!   the same object, kept alive by the dma-buf after both files close;
//! - `flink_open_across_files`: a FLINK name opens the same object in another primary file,
//!   each handle closes on its own, the name goes with the last; FLINK on a render node is
//!   `EACCES`, GEM_OPEN of an unknown name `ENOENT`;
//! - `foreign_importer_refused`: vgem cannot import a sample dma-buf (`ENOSYS`: the sample's
//!   objects have no pages to share) and nothing leaks;
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
//! - with the spare device bound too (a second DRM device) and a child sleeping in a debug
//!   ioctl on the sample's device: `entered_handler_delays_every_unplug` (a handler sleeping
//!   entered delays the unbind of both devices until it returns: DRM's unplug SRCU is global)
//!   and `unentered_handler_delays_no_unplug` (one sleeping without entering delays neither,
//!   and finds the device unplugged when it wakes);
//! - `unbind_bind_cycles`: `--cycles` sysfs unbinds and binds, each printing its lines exactly
//!   once, the nodes gone after unbind and present (and answering VERSION) after bind;
//! - `module_unload_load_cycles`: the same with `--module-cycles` `rmmod`/`insmod`;
//! - `module_gone`: a last `rmmod` removes the device once and the module is gone.
//!
//! Child processes rather than threads: the guest kernel has no futexes (see `guest::child`).
//! A worker (`guest::gem_worker`) is this program run as `rust_drm_test --worker SECONDS` with
//! the shared file as its standard input; it prints `ready` after its first create/close pair,
//! then one line `end ITERATIONS ERRNO` (the raw errno that stopped it) or
//! `end ITERATIONS timeout`. A sleeper is it run as `rust_drm_test --sleeper entered|plain MS`
//! with the file as its standard input; it prints `unplugged 0|1` or `error ERRNO`.

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
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The KTAP suite name.
const SUITE: &str = "rust_drm_test";

/// The KTAP tests, in the order they are reported.
const TESTS: [&str; 30] = [
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
    "debug_sleep_bad_arguments_einval",
    "handle_isolation_between_files",
    "file_close_frees_objects",
    "prime_self_import_keeps_the_object",
    "flink_open_across_files",
    "foreign_importer_refused",
    "open_file_unbind_keeps_drm_device",
    "open_file_ioctls_enodev_after_unbind",
    "open_file_pins_module",
    "last_close_releases_drm_device",
    "rebind_after_release",
    "dmabuf_outlives_unbind_and_pins_module",
    "concurrent_ioctls_end_enodev_at_unbind",
    "concurrent_unbind_release_and_rebind",
    "entered_handler_delays_every_unplug",
    "unentered_handler_delays_no_unplug",
    "unbind_bind_cycles",
    "module_unload_load_cycles",
    "module_gone",
];

/// The platform driver (and module) name.
const DRIVER: &str = sample::PLATFORM_DRIVER;
/// The platform device.
const DEVICE: &str = sample::PLATFORM_DEVICE;
/// The spare platform device, which no driver matches: the sleep tests bind it to the driver
/// through its `driver_override`, for a second DRM device.
const SPARE: &str = "rust-drm-sample-spare";
/// The flag that makes this program a sleeper: `--sleeper entered|plain MS`.
const SLEEPER_FLAG: &str = "--sleeper";
/// How long the entered debug sleep lasts: long enough for two unbinds to start within it.
const ENTERED_SLEEP_MS: u64 = 2000;
/// How long the plain debug sleep lasts: long enough for two unbinds to end within it.
const PLAIN_SLEEP_MS: u64 = 4000;

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
    dropped: usize,
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
    /// `registered`, `unbind` and `released` lines, and a `driver data dropped` line after
    /// each unbind.
    const fn lines(registered: usize, unbind: usize, released: usize) -> Self {
        Self {
            registered,
            unbind,
            dropped: unbind,
            released,
            crashes: 0,
        }
    }

    /// Counts the driver's lines among the record texts `texts`.
    fn of(texts: &[String]) -> Self {
        let registered = format!("{DRIVER} {DEVICE}: DRM device registered");
        let unbind = format!("{DRIVER} {DEVICE}: unbind");
        let dropped = format!("{DRIVER}: driver data dropped, DRM device unplugged");
        let released = format!("{DRIVER}: DRM device released");
        let count = |pred: &dyn Fn(&str) -> bool| texts.iter().filter(|t| pred(t)).count();
        Self {
            registered: count(&|t| t.contains(&registered)),
            unbind: count(&|t| t.contains(&unbind)),
            dropped: count(&|t| t.contains(&dropped)),
            released: count(&|t| t.contains(&released)),
            crashes: count(&|t| CRASH_MARKS.iter().any(|m| t.contains(m))),
        }
    }

    /// Whether every line of `want` appeared at least as often as it wants.
    fn covers(&self, want: Tally) -> bool {
        self.registered >= want.registered
            && self.unbind >= want.unbind
            && self.dropped >= want.dropped
            && self.released >= want.released
    }

    /// How this tally differs from `want`, one message per line.
    fn problems(&self, want: Tally) -> Vec<String> {
        let mut p = Vec::new();
        for (what, got, wanted) in [
            ("DRM device registered", self.registered, want.registered),
            ("unbind", self.unbind, want.unbind),
            (
                "driver data dropped, DRM device unplugged",
                self.dropped,
                want.dropped,
            ),
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
    /// The sleeper of the sleep tests: entered or not, for this many milliseconds.
    Sleeper(bool, u64),
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
            SLEEPER_FLAG => {
                let entered = match flags.value(&flag)?.as_str() {
                    "entered" => true,
                    "plain" => false,
                    other => return Err(format!("{flag} wants entered or plain, not {other}")),
                };
                return Ok(Mode::Sleeper(entered, number(flags.value(&flag)?, &flag)?));
            }
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

    /// A sysfs write of `device` to the driver's `file` from a child process, given up after
    /// [`HANG`]: for a write that may hang in the kernel.
    fn write_from_child(&self, file: &str, device: &str) -> Result<(), String> {
        let path = self.bus.driver_file(DRIVER, file);
        child::run_with_timeout(
            Command::new("sh")
                .arg("-c")
                .arg(format!("echo {device} > {}", path.display())),
            HANG,
        )
        .map(drop)
    }

    /// Reads the log into `log` until `until` holds for the records this call read (or
    /// [`STEP_WAIT`] passed), then `settle` more: the problems reading it.
    fn read_into(
        &mut self,
        log: &mut Vec<String>,
        settle: Duration,
        until: &dyn Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let got = kmsg::collect(&mut self.kmsg, STEP_WAIT, settle, until);
        log.extend(got.texts);
        got.problems
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
        "debug_sleep_bad_arguments_einval" => {
            for ioctl in [sample::DEBUG_SLEEP_ENTERED, sample::DEBUG_SLEEP] {
                for (ms, unplugged) in [(10_001, 0), (u64::MAX, 0), (0, 1)] {
                    let mut arg = sample::Sleep { ms, unplugged };
                    let r = render.ioctl(ioctl, &mut arg);
                    let what = format!("{ioctl:?} of {ms} ms, unplugged {unplugged}");
                    check(expect_errno(&what, &r, &[Errno::INVAL]));
                }
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

/// Review R5 of rust-drm v1 (FLINK and GEM_OPEN are DRM core's, on every GEM driver's primary
/// node): a name given through one primary file opens the same object in another, each handle
/// closes on its own, and the name goes with the object.
fn test_flink_open(rig: &mut Rig, files: &Files) -> Result<(), String> {
    let base = files.count()?;
    let primary_path = files.primary.path().ok_or("the primary file has no path")?;
    let other = Card::open(primary_path).map_err(|e| e.to_string())?;
    let gem = sample::gem_create(&files.primary, 12288)
        .map_err(|e| format!("GEM_CREATE(12288): {}", errno_name(e)))?;
    let mut problems = Vec::new();
    let count_is = |want: u64, when: &str| match files.count() {
        Ok(n) if n == want => None,
        Ok(n) => Some(format!("OBJECT_COUNT {n} {when}, expected {want}")),
        Err(e) => Some(e),
    };
    let flinked = files.primary.gem_flink(gem.handle);
    match flinked {
        Ok(name) => {
            match other.gem_open(name) {
                Ok((h, size)) => {
                    if size != gem.size {
                        problems.push(format!(
                            "GEM_OPEN({name}) gave size {size}, not {}",
                            gem.size
                        ));
                    }
                    problems.extend(count_is(base + 1, "with the object opened by name"));
                    problems.extend(
                        files.primary.gem_close(gem.handle).err().map(|e| {
                            format!("GEM_CLOSE of the creator's handle: {}", errno_name(e))
                        }),
                    );
                    let info = sample::gem_info(&other, h);
                    if info != Ok(gem.size) {
                        problems.push(format!(
                            "GEM_INFO of the opened handle after the creator's close: {}",
                            describe(&info)
                        ));
                    }
                    problems.extend(count_is(base + 1, "with only the opened handle left"));
                    problems.extend(
                        other
                            .gem_close(h)
                            .err()
                            .map(|e| format!("GEM_CLOSE of the opened handle: {}", errno_name(e))),
                    );
                    problems.extend(count_is(base, "after both handles closed"));
                }
                Err(e) => {
                    problems.push(format!("GEM_OPEN({name}): {}", errno_name(e)));
                    let _ = files.primary.gem_close(gem.handle);
                }
            }
            let gone = other.gem_open(name).map(drop);
            problems.extend(
                expect_errno(
                    "GEM_OPEN of a name whose object went",
                    &gone,
                    &[Errno::NOENT],
                )
                .err(),
            );
        }
        Err(e) => {
            problems.push(format!("GEM_FLINK({}): {}", gem.handle, errno_name(e)));
            let _ = files.primary.gem_close(gem.handle);
        }
    }
    let render = files.render.gem_flink(1).map(drop);
    problems.extend(expect_errno("GEM_FLINK on the render node", &render, &[Errno::ACCESS]).err());
    let unknown = other.gem_open(0x7fff_0000).map(drop);
    problems.extend(expect_errno("GEM_OPEN of an unknown name", &unknown, &[Errno::NOENT]).err());
    problems.extend(rig.log(NOTHING, SETTLE).err());
    verdict(problems)
}

/// Review R5 of rust-drm v1: a foreign importer, C's vgem, cannot attach to a dma-buf of the
/// sample. DRM's attach refuses (`ENOSYS`) as the sample's objects have no pages to share (no
/// `get_sg_table`); the object is not leaked.
fn test_foreign_import(rig: &mut Rig, files: &Files) -> Result<(), String> {
    let vgem = Card::open_driver("vgem", NodeKind::Render).map_err(|e| format!("vgem: {e}"))?;
    let base = files.count()?;
    let gem = sample::gem_create(&files.render, 4096)
        .map_err(|e| format!("GEM_CREATE(4096): {}", errno_name(e)))?;
    let mut problems = Vec::new();
    match files.render.prime_export(gem.handle) {
        Ok(dmabuf) => {
            let r = vgem.prime_import(dmabuf.as_fd()).map(drop);
            problems.extend(expect_errno("vgem's PRIME_FD_TO_HANDLE", &r, &[Errno::NOSYS]).err());
        }
        Err(e) => problems.push(format!(
            "PRIME_HANDLE_TO_FD({}): {}",
            gem.handle,
            errno_name(e)
        )),
    }
    problems.extend(
        files
            .render
            .gem_close(gem.handle)
            .err()
            .map(|e| format!("GEM_CLOSE({}): {}", gem.handle, errno_name(e))),
    );
    let after = files.count()?;
    if after != base {
        problems.push(format!(
            "OBJECT_COUNT {after} after the refused import, {base} before"
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
            for name in &TESTS[17..23] {
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

/// Reviews R2 and R9 of rust-drm v1: what a handler that sleeps costs the unplug of DRM
/// devices, entered or not.
///
/// With the spare device bound too (a second DRM device of the driver), a child sleeps in the
/// sample device's debug ioctl; once its sleep started, both devices are unbound at once, each
/// from a child. Entered, each unbind returns only after the handler did (the handler's `slept`
/// line is in the log by then, and was not when the unbinds began): the unplug of any DRM
/// device waits for every entered handler. Not entered, both unbinds return while the handler
/// still sleeps. Either way the handler finds, when it wakes, that the device's unplug began
/// during its sleep (it cannot enter again). Afterwards the spare device is unbound and left
/// without its override, and the sample device is bound again.
fn sleep_test(rig: &mut Rig, run: &mut Planned, entered: bool) -> Result<(), String> {
    let (ms, how, kind) = if entered {
        (ENTERED_SLEEP_MS, "entered", "entered")
    } else {
        (PLAIN_SLEEP_MS, "not entered", "plain")
    };
    let mut log = Vec::new();
    let mut problems = Vec::new();
    let override_file = Path::new("/sys/bus/platform/devices")
        .join(SPARE)
        .join("driver_override");
    std::fs::write(&override_file, DRIVER)
        .map_err(|e| format!("{}: {e}", override_file.display()))?;
    let spare_up = format!("{DRIVER} {SPARE}: DRM device registered");
    problems.extend(rig.bus.bind(DRIVER, SPARE).err());
    problems.extend(rig.read_into(&mut log, Duration::ZERO, &|t: &[String]| {
        t.iter().any(|l| l.contains(&spare_up))
    }));
    let nodes = nodes_present()?;
    let render = node_path(&nodes, NodeKind::Render).ok_or("no render node")?;
    let card = Card::open(render).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let fd = card.into_fd();
    let mut sleeper = Command::new(exe)
        .args([SLEEPER_FLAG, kind, &ms.to_string()])
        .stdin(Stdio::from(fd))
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the sleeper: {e}"))?;
    let started = format!("{DRIVER}: debug: sleeping {ms} ms, {how}");
    let slept = format!("{DRIVER}: debug: slept, {how}");
    problems.extend(rig.read_into(&mut log, Duration::ZERO, &|t: &[String]| {
        t.iter().any(|l| l.contains(&started))
    }));
    let t0 = Instant::now();
    if !log.iter().any(|l| l.contains(&started)) {
        problems.push(format!("no `{started}` line: the sleeper did not start"));
    }
    // Both unbinds at once, each from a child, so that both begin within the sleep; each is
    // judged by whether the handler's `slept` line was in the log when it returned.
    let before = log.iter().any(|l| l.contains(&slept));
    if before {
        problems.push("the sleep ended before the unbinds began: no verdict".to_string());
    }
    let mut unbinds = Vec::new();
    for device in [SPARE, DEVICE] {
        let path = rig.bus.driver_file(DRIVER, "unbind");
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(format!("echo {device} > {}", path.display()))
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run the unbind of {device}: {e}"))?;
        unbinds.push((device, spawned, None));
    }
    let deadline = t0 + Duration::from_millis(ms) + HANG;
    while unbinds.iter().any(|(_, _, end)| end.is_none()) && Instant::now() < deadline {
        for (_, unbind, end) in unbinds.iter_mut().filter(|(_, _, end)| end.is_none()) {
            if let Ok(Some(status)) = unbind.try_wait() {
                problems.extend(rig.read_into(&mut log, Duration::ZERO, &|_: &[String]| true));
                let returned = log.iter().any(|l| l.contains(&slept));
                *end = Some((status, t0.elapsed().as_secs_f64(), returned));
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for (device, mut unbind, end) in unbinds {
        let Some((status, at, returned)) = end else {
            child::kill(&mut unbind, Duration::from_secs(1));
            problems.push(format!("the unbind of {device} did not return"));
            continue;
        };
        run.diag(&format!(
            "{how} sleep of {ms} ms: the unbind of {device} returned {at:.3} s after the sleep \
             began, the handler {} by then",
            if returned {
                "had returned"
            } else {
                "still slept"
            }
        ));
        if !status.success() {
            problems.push(format!("the unbind of {device} failed ({status})"));
        } else if entered && !returned {
            problems.push(format!(
                "the unbind of {device} returned while an entered handler still slept"
            ));
        } else if !entered && returned {
            problems.push(format!(
                "the unbind of {device} waited for a handler that was not entered"
            ));
        }
    }
    let deadline = Instant::now() + Duration::from_millis(ms) + HANG;
    match child::wait_until(&mut sleeper, deadline)? {
        Some(_) => {
            let mut out = String::new();
            if let Some(mut o) = sleeper.stdout.take() {
                let _ = o.read_to_string(&mut out);
            }
            // The unplug began during the sleep: entered, it waits for the handler; not
            // entered, it is done.
            let want = "unplugged 1";
            if out.trim() != want {
                problems.push(format!(
                    "the sleeper said `{}`, expected `{want}`",
                    out.trim()
                ));
            }
        }
        None => {
            child::kill(&mut sleeper, Duration::from_secs(1));
            problems.push("the sleeper did not end".to_string());
        }
    }
    std::fs::write(&override_file, "\n")
        .map_err(|e| format!("{}: {e}", override_file.display()))?;
    problems.extend(rig.bind().err());
    // Both devices unbound (two drops, the spare's release at its unbind, the sample's when
    // the sleeper's file closed) and the sample bound again.
    let want = Tally {
        registered: 1,
        unbind: 1,
        dropped: 2,
        released: 2,
        crashes: 0,
    };
    problems.extend(rig.read_into(&mut log, ABSENCE_WAIT, &|t: &[String]| {
        Tally::of(t).covers(PROBE)
    }));
    problems.extend(Tally::of(&log).problems(want));
    problems.extend(nodes_present().err());
    verdict(problems)
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
    let unbind = rig.write_from_child("unbind", DEVICE);
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
        Ok(Mode::Sleeper(entered, ms)) => return sleeper_main(entered, ms),
        Ok(Mode::Worker(limit)) => {
            // One create/close pair on the shared file.
            return gem_worker::worker_main(limit, |card| {
                sample::gem_create(card, 4096).and_then(|g| card.gem_close(g.handle))
            });
        }
        Err(code) => return code,
    };
    let kmsg = match Kmsg::open_for(SUITE, true) {
        Ok(k) => k,
        Err(code) => return code,
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

/// A sleeper: the debug sleep on the DRM file that is its standard input; prints `unplugged
/// 0|1` or `error ERRNO`.
fn sleeper_main(entered: bool, ms: u64) -> ExitCode {
    let card = rustix::io::dup(std::io::stdin().as_fd())
        .map_err(|e| e.to_string())
        .and_then(|fd| Card::from_fd(fd).map_err(|e| e.to_string()));
    match card.map(|c| sample::debug_sleep(&c, entered, ms)) {
        Ok(Ok(unplugged)) => println!("unplugged {}", u8::from(unplugged)),
        Ok(Err(e)) => println!("error {}", errno_name(e)),
        Err(e) => println!("no DRM file on stdin: {e}"),
    }
    ExitCode::SUCCESS
}

/// Every test between `nodes` and `module_gone`.
fn device_tests(rig: &mut Rig, run: &mut Planned, args: &Args) {
    match Files::open() {
        Ok(files) => {
            let gem = test_gem_create_info_close(rig, &files);
            run.result("gem_create_info_close", gem);
            for name in &TESTS[2..12] {
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
            let flink = test_flink_open(rig, &files);
            run.result("flink_open_across_files", flink);
            let foreign = test_foreign_import(rig, &files);
            run.result("foreign_importer_refused", foreign);
        }
        Err(e) => {
            for name in &TESTS[1..17] {
                run.skip(name, &format!("cannot open the nodes: {e}"));
            }
        }
    }
    open_file_unbind(rig, run);
    concurrent_unbind(rig, run, args.workers);
    let entered = sleep_test(rig, run, true);
    run.result("entered_handler_delays_every_unplug", entered);
    let plain = sleep_test(rig, run, false);
    run.result("unentered_handler_delays_no_unplug", plain);
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
            "rust_driver_drm: driver data dropped, DRM device unplugged",
            "rust_driver_drm: driver data dropped, DRM device still plugged",
            "rust_driver_drm: DRM device released",
            "rust_driver_drm rust-drm-sample: DRM device released",
            "WARNING: CPU: 0 PID: 1 at drivers/gpu/drm/drm_gem.c:1 x",
        ]));
        assert_eq!(
            t,
            Tally {
                registered: 1,
                unbind: 1,
                dropped: 1,
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
            "rust_driver_drm: driver data dropped, DRM device unplugged",
        ]));
        assert_eq!(
            twice.problems(REMOVAL),
            [
                "`unbind` printed 2 times, expected 1",
                "`DRM device released` printed 0 times, expected 1"
            ]
        );
        // A removal whose driver data went with the DRM device still plugged (v1's order).
        let early = Tally::of(&texts(&[
            "rust_driver_drm rust-drm-sample: unbind",
            "rust_driver_drm: driver data dropped, DRM device still plugged",
            "rust_driver_drm: DRM device released",
        ]));
        assert_eq!(
            early.problems(REMOVAL),
            ["`driver data dropped, DRM device unplugged` printed 0 times, expected 1"]
        );
        // With a file open, the release must not come with the unbind.
        let released = Tally::of(&texts(&[
            "rust_driver_drm rust-drm-sample: unbind",
            "rust_driver_drm: driver data dropped, DRM device unplugged",
            "rust_driver_drm: DRM device released",
        ]));
        assert_eq!(
            released.problems(REMOVAL_KEPT),
            ["`DRM device released` printed 1 times, expected 0"]
        );
        assert!(released.problems(REMOVAL).is_empty());
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
        assert_eq!(
            parse(argv("--sleeper entered 2000")),
            Ok(Mode::Sleeper(true, 2000))
        );
        assert_eq!(
            parse(argv("--sleeper plain 5")),
            Ok(Mode::Sleeper(false, 5))
        );
        assert!(parse(argv("--sleeper sometimes 5")).is_err());
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
        assert_eq!(TESTS[11], "debug_sleep_bad_arguments_einval");
        assert_eq!(TESTS[16], "foreign_importer_refused");
        assert_eq!(TESTS[17], "open_file_unbind_keeps_drm_device");
        assert_eq!(TESTS[22], "dmabuf_outlives_unbind_and_pins_module");
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
