//! `fail_nth`: every failure point of an operation, injected in turn (the kernel's `fail-nth`,
//! as syzkaller uses it), for the drivers of the series; reports KTAP.
//!
//! ```text
//! fail_nth [--nova PCI --nova-module PATH] [--sample DEVICE --sample-module PATH]
//!          [--pci PCI --pci-driver NAME --pci-module PATH] [--limit N]
//! ```
//!
//! A PCI device is given by address (`0000:01:00.0`) or by IDs (`10de:2330`: the first device
//! with them). The DRM sample's device is a platform device's name (`rust-drm-sample`).
//!
//! For each operation below, the program writes N to `/proc/thread-self/fail-nth` and makes the
//! operation's one system call, for N = 1, 2, ... until the call completes without an injected
//! failure: it has then met every failure point (each allocation the call makes, through
//! `failslab`, and the page allocations `fail_page_alloc` sees) once. Everything else a try
//! needs (opening files, creating the objects an ioctl acts on) is done before the counter is
//! armed, and undone after it is read back (0: the N-th point failed).
//!
//! After an injected failure the call must fail and leave nothing half-done (the device not
//! bound, no DRM node; no handle; the module not loaded; an unbind whose write failed before
//! reaching the driver core leaves the device bound, whole), and the same call must then succeed
//! without injection; a call that succeeds although a point failed (the failure was absorbed,
//! such as kmemleak's own metadata, which falls back to its pool) must have its whole effect.
//! For the DRM sample the count of live GEM objects must be back where it was after each try.
//! The leak check is kmemleak's, after the program (the harness's).
//!
//! Operations, each a KTAP test `<target>_<operation>` (target `nova`, `sample`, `pci`):
//! `insmod` (finit_module, with the device's `driver_override` set to no driver, so that the
//! load probes nothing: the probe's failure points are `bind`'s, and a try costs no firmware
//! load), `bind` and `unbind` (a write to the driver's sysfs file), and for the DRM
//! drivers `open_primary`, `open_render`, `close`, `getparam`, `gem_create`, `gem_info`,
//! `gem_close`, `prime_export`, `prime_import`, `gem_flink` and `gem_open`, each on a fresh
//! primary file (DRM master, so authenticated). A diagnostic line gives each test's failure
//! points, how many failed the call and how many were absorbed; the harness reads it
//! (`# fail-nth <test>: points N, errors E, absorbed A, <seconds> s`). More than `--limit`
//! points (default 5000) fails the test.

use drm_client::{errno_name, node, sample, Card, Errno};
use guest::kmod::{self, module_name};
use guest::ktap::verdict;
use guest::sysfs::Bus;
use guest::Planned;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The KTAP suite name.
const SUITE: &str = "fail_nth";
/// The per-thread fault counter.
const FAIL_NTH: &str = "/proc/thread-self/fail-nth";
/// The fault-injection knobs (debugfs) this program sets: every allocation counts, whatever
/// its flags, no stack dump (the harness fails on `Call Trace:`), and a short stack walk for
/// the reject range of [`set_knobs`].
const KNOBS: [(&str, &str); 6] = [
    ("/sys/kernel/debug/failslab/ignore-gfp-wait", "N"),
    ("/sys/kernel/debug/failslab/verbose", "0"),
    ("/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N"),
    ("/sys/kernel/debug/fail_page_alloc/verbose", "0"),
    // The frames the reject range below is looked for in. An allocation of ACPICA's is a few
    // frames below ACPICA's code; every armed allocation costs a walk of this many frames
    // (32, the default, made Nova's bind 3.4 times as slow as without the range).
    ("/sys/kernel/debug/failslab/stacktrace-depth", "12"),
    ("/sys/kernel/debug/fail_page_alloc/stacktrace-depth", "12"),
];
/// Nova's PCI driver.
const NOVA_DRIVER: &str = nova::DRIVER_NAME;
/// A size that is not a page multiple.
const GEM_SIZE: u64 = 8193;

const USAGE: &str = "usage: fail_nth [--nova PCI --nova-module PATH] \
     [--sample DEVICE --sample-module PATH] [--pci PCI --pci-driver NAME --pci-module PATH] \
     [--limit N]";

/// The operations of a DRM driver's files, after the driver's `insmod`, `bind` and `unbind`.
const FILE_OPS: [&str; 11] = [
    "open_primary",
    "open_render",
    "close",
    "getparam",
    "gem_create",
    "gem_info",
    "gem_close",
    "prime_export",
    "prime_import",
    "gem_flink",
    "gem_open",
];

/// One driver and device under test.
#[derive(Debug, Clone)]
struct Target {
    /// The test names' prefix.
    label: &'static str,
    bus: &'static str,
    driver: String,
    device: String,
    module: PathBuf,
    /// Whether it is a DRM driver (nodes, file operations).
    drm: bool,
}

#[derive(Debug)]
struct Args {
    targets: Vec<Target>,
    limit: u32,
}

fn parse(argv: std::env::Args) -> Result<Args, String> {
    parse_from(argv)
}

fn parse_from(argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut flags = guest::args::Flags::new(argv);
    let (mut nova, mut nova_module, mut sample_dev, mut sample_module) = (None, None, None, None);
    let (mut pci, mut pci_driver, mut pci_module) = (None, None, None);
    let mut limit = 5000;
    while let Some(flag) = flags.next_flag() {
        let v = flags.value(&flag)?;
        match flag.as_str() {
            "--nova" => nova = Some(v),
            "--nova-module" => nova_module = Some(PathBuf::from(v)),
            "--sample" => sample_dev = Some(v),
            "--sample-module" => sample_module = Some(PathBuf::from(v)),
            "--pci" => pci = Some(v),
            "--pci-driver" => pci_driver = Some(v),
            "--pci-module" => pci_module = Some(PathBuf::from(v)),
            "--limit" => limit = v.parse().map_err(|_| format!("--limit: '{v}'"))?,
            other => return Err(guest::args::unknown(other)),
        }
    }
    let mut targets = Vec::new();
    if let Some(device) = nova {
        targets.push(Target {
            label: "nova",
            bus: "pci",
            driver: NOVA_DRIVER.to_string(),
            device,
            module: guest::args::required(nova_module, "--nova-module")?,
            drm: true,
        });
    }
    if let Some(device) = sample_dev {
        targets.push(Target {
            label: "sample",
            bus: "platform",
            driver: sample::PLATFORM_DRIVER.to_string(),
            device,
            module: guest::args::required(sample_module, "--sample-module")?,
            drm: true,
        });
    }
    if let Some(device) = pci {
        targets.push(Target {
            label: "pci",
            bus: "pci",
            driver: guest::args::required(pci_driver, "--pci-driver")?,
            device,
            module: guest::args::required(pci_module, "--pci-module")?,
            drm: false,
        });
    }
    if targets.is_empty() {
        return Err("nothing to test: give --nova, --sample or --pci".into());
    }
    for t in &targets {
        module_name(&t.module)?;
    }
    Ok(Args { targets, limit })
}

/// The test names of `targets`, in order.
fn plan(targets: &[Target]) -> Vec<String> {
    let mut p = Vec::new();
    for t in targets {
        for op in ["insmod", "bind", "unbind"] {
            p.push(format!("{}_{op}", t.label));
        }
        if t.drm {
            p.extend(FILE_OPS.iter().map(|op| format!("{}_{op}", t.label)));
        }
    }
    p
}

/// The thread's fault counter, opened for each try before it is armed (so that opening it
/// costs the call no failure point) and read once (the file cannot seek), as syzkaller does.
#[derive(Default)]
struct FailNth(Option<File>);

impl FailNth {
    /// Whether the counter can be used: the kernel has fault injection.
    fn check() -> io::Result<()> {
        File::options()
            .read(true)
            .write(true)
            .open(FAIL_NTH)
            .map(drop)
    }

    /// Fails the `n`-th failure point from here on.
    fn arm(&mut self, n: u32) -> io::Result<()> {
        let mut f = File::options().read(true).write(true).open(FAIL_NTH)?;
        f.write_all(n.to_string().as_bytes())?;
        self.0 = Some(f);
        Ok(())
    }

    /// Whether the armed point failed (the counter read back as 0); disarms it.
    fn disarm(&mut self) -> io::Result<bool> {
        let mut f = self.0.take().ok_or(io::ErrorKind::NotFound)?;
        let mut text = String::new();
        f.read_to_string(&mut text)?;
        f.write_all(b"0")?;
        Ok(text.trim() == "0")
    }
}

/// One operation: what a try needs before and after its one system call.
trait Operation {
    /// Makes ready for one try, without injection.
    fn prepare(&mut self) -> Result<(), String>;
    /// The system call.
    fn call(&mut self) -> Result<(), Errno>;
    /// After the call failed: what is half-done (nothing, if it failed cleanly). Cleans up.
    fn failed(&mut self) -> Vec<String>;
    /// After the call succeeded: what of its effect is missing. Cleans up.
    fn succeeded(&mut self) -> Vec<String>;
    /// After each try (failed or not, cleaned up): what is left over.
    fn settled(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// After the last try: puts back what the operation changed for its tries.
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// What exploring an operation found.
#[derive(Debug, Default)]
struct Explored {
    points: u32,
    errors: u32,
    absorbed: u32,
    problems: Vec<String>,
}

/// Fails each failure point of `op` in turn (see the module documentation), up to `limit`.
fn explore(fail: &mut FailNth, op: &mut dyn Operation, limit: u32) -> Explored {
    let mut out = Explored::default();
    let io = |e: io::Error| format!("{FAIL_NTH}: {e}");
    for n in 1..=limit + 1 {
        if out.problems.len() > 10 {
            out.problems.push("(stopped after 10 problems)".into());
            return out;
        }
        if let Err(e) = op.prepare() {
            out.problems.push(format!("try {n}: preparing: {e}"));
            return out;
        }
        if let Err(e) = fail.arm(n) {
            out.problems.push(io(e));
            return out;
        }
        let r = op.call();
        let injected = match fail.disarm() {
            Ok(i) => i,
            Err(e) => {
                out.problems.push(io(e));
                return out;
            }
        };
        let tag = |p: Vec<String>| p.into_iter().map(move |s| format!("point {n}: {s}"));
        match (injected, r) {
            (false, Ok(())) => {
                out.problems.extend(tag(op.succeeded()));
                out.problems.extend(tag(op.settled()));
                out.points = n - 1;
                return out;
            }
            (false, Err(e)) => {
                out.problems.push(format!(
                    "failed without injection ({}) after {} points",
                    errno_name(e),
                    n - 1
                ));
                return out;
            }
            (true, Err(_)) => {
                out.errors += 1;
                out.problems.extend(tag(op.failed()));
                out.problems.extend(tag(op.settled()));
                // The same call, without injection, must now work.
                let again = op.prepare().and_then(|()| {
                    op.call()
                        .map_err(|e| format!("fails after the injected failure: {}", errno_name(e)))
                });
                match again {
                    Ok(()) => out.problems.extend(tag(op.succeeded())),
                    Err(e) => out.problems.push(format!("point {n}: {e}")),
                }
                out.problems.extend(tag(op.settled()));
            }
            (true, Ok(())) => {
                out.absorbed += 1;
                out.problems.extend(tag(op.succeeded()));
                out.problems.extend(tag(op.settled()));
            }
        }
    }
    out.problems
        .push(format!("more than {limit} failure points (--limit)"));
    out
}

/// The write of `device` to a driver's sysfs file `file` (`bind`, `unbind`), opened beforehand.
fn write_device(file: &mut Option<File>, device: &str) -> Result<(), Errno> {
    let f = file.as_mut().ok_or(Errno::BADF)?;
    match f.write(device.as_bytes()) {
        Ok(n) if n == device.len() => Ok(()),
        Ok(_) => Err(Errno::IO),
        Err(e) => Err(drm_client::errno_of(&e)),
    }
}

/// The DRM nodes of `t`'s device, by name.
fn node_names(t: &Target) -> Vec<String> {
    node::nodes_of_device(&t.device)
        .map(|n| n.iter().map(|c| c.node.name()).collect())
        .unwrap_or_default()
}

/// What is wrong with `t`'s device being bound (`bound`) or not: its driver link, and its DRM
/// nodes for a DRM driver.
fn binding_problems(t: &Target, bound: bool) -> Vec<String> {
    let bus = Bus::new(t.bus);
    let driver = bus.driver_of(&t.device);
    let mut p = Vec::new();
    let want = bound.then(|| t.driver.clone());
    if driver != want {
        p.push(format!("{} is bound to {driver:?}, not {want:?}", t.device));
    }
    if t.drm {
        let nodes = node_names(t);
        match (bound, nodes.len()) {
            (true, 2) | (false, 0) => {}
            _ => p.push(format!("{} has DRM nodes {nodes:?}", t.device)),
        }
    }
    p
}

/// Binds or unbinds `t`'s device, without injection, unless it already is.
fn set_bound(t: &Target, bound: bool) -> Result<(), String> {
    let bus = Bus::new(t.bus);
    let now = bus.driver_of(&t.device).as_deref() == Some(t.driver.as_str());
    match (now, bound) {
        (false, true) => bus.bind(&t.driver, &t.device),
        (true, false) => bus.unbind(&t.driver, &t.device),
        _ => Ok(()),
    }
}

/// `bind` (or `unbind`) of `t`'s device through sysfs.
struct Binding {
    t: Target,
    bind: bool,
    file: Option<File>,
}

impl Operation for Binding {
    fn prepare(&mut self) -> Result<(), String> {
        set_bound(&self.t, !self.bind)?;
        let name = if self.bind { "bind" } else { "unbind" };
        let path = Bus::new(self.t.bus).driver_file(&self.t.driver, name);
        self.file = Some(
            File::options()
                .write(true)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        );
        Ok(())
    }

    fn call(&mut self) -> Result<(), Errno> {
        write_device(&mut self.file, &self.t.device)
    }

    fn failed(&mut self) -> Vec<String> {
        self.file = None;
        if self.bind {
            binding_problems(&self.t, false)
        } else {
            // The driver core's unbind cannot fail, but the write can before it gets there
            // (sysfs's buffer): the device is then still bound, whole. Either way, nothing
            // half-done.
            let (bound, unbound) = (
                binding_problems(&self.t, true),
                binding_problems(&self.t, false),
            );
            if bound.is_empty() || unbound.is_empty() {
                vec![]
            } else {
                [
                    vec!["after the failed unbind, neither bound nor unbound:".to_string()],
                    unbound,
                ]
                .concat()
            }
        }
    }

    fn succeeded(&mut self) -> Vec<String> {
        self.file = None;
        binding_problems(&self.t, self.bind)
    }
}

/// What `driver_override` names while `insmod` is tried: no driver has that name.
const NO_DRIVER: &str = "fail_nth_none";

/// Writes `value` to the `driver_override` file of `device` on `t`'s bus.
fn driver_override(t: &Target, device: &str, value: &str) -> Result<(), String> {
    let path = Path::new(guest::sysfs::SYS_BUS)
        .join(t.bus)
        .join("devices")
        .join(device)
        .join("driver_override");
    fs::write(&path, value).map_err(|e| format!("{}: {e}", path.display()))
}

/// The devices bound to `t`'s driver: the entries of its sysfs folder that are links to
/// devices.
fn bound_devices(t: &Target) -> Vec<String> {
    let dir = Path::new(guest::sysfs::SYS_BUS)
        .join(t.bus)
        .join("drivers")
        .join(&t.driver);
    let mut found: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("driver").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// `insmod` of `t`'s module (finit_module), with the module unloaded before each try and the
/// `driver_override` of every device the driver had naming no driver, so that the load probes
/// nothing.
struct Insmod {
    t: Target,
    name: String,
    /// The devices bound to the driver before the tries.
    devices: Vec<String>,
    file: Option<File>,
}

impl Operation for Insmod {
    fn prepare(&mut self) -> Result<(), String> {
        if kmod::is_loaded(&self.name) {
            kmod::rmmod(&self.name)?;
        }
        for d in &self.devices {
            driver_override(&self.t, d, NO_DRIVER)?;
        }
        self.file = Some(
            File::open(&self.t.module).map_err(|e| format!("{}: {e}", self.t.module.display()))?,
        );
        Ok(())
    }

    fn call(&mut self) -> Result<(), Errno> {
        let f = self.file.as_ref().ok_or(Errno::BADF)?;
        rustix::system::finit_module(f, c"", 0)
    }

    fn failed(&mut self) -> Vec<String> {
        self.file = None;
        let mut p = Vec::new();
        if kmod::is_loaded(&self.name) {
            p.push(format!("{} is loaded although insmod failed", self.name));
        }
        p.extend(binding_problems(&self.t, false));
        p
    }

    fn succeeded(&mut self) -> Vec<String> {
        self.file = None;
        let mut p = Vec::new();
        if !kmod::is_loaded(&self.name) {
            p.push(format!("{} is not loaded after insmod", self.name));
        }
        p.extend(binding_problems(&self.t, false));
        p
    }

    fn finish(&mut self) -> Result<(), String> {
        for d in &self.devices {
            driver_override(&self.t, d, "\n")?;
        }
        if !kmod::is_loaded(&self.name) {
            kmod::insmod(&self.t.module)?;
        }
        for d in &self.devices {
            let bus = Bus::new(self.t.bus);
            if bus.driver_of(d).is_none() {
                bus.bind(&self.t.driver, d)?;
            }
        }
        set_bound(&self.t, true)
    }
}

/// A DRM driver's file operation (see [`FILE_OPS`]), on a fresh primary file.
struct FileOp {
    t: Target,
    op: &'static str,
    primary: PathBuf,
    render: PathBuf,
    /// The try's file.
    card: Option<Card>,
    /// What the call got or acts on.
    handle: u32,
    dmabuf: Option<OwnedFd>,
    name: u32,
    /// A raw file the `open_*` calls opened.
    opened: Option<File>,
    /// The sample's count of live GEM objects before the test.
    objects: Option<u64>,
}

impl FileOp {
    fn new(t: &Target, op: &'static str) -> Result<Self, String> {
        let nodes = node::nodes_of_device(&t.device).map_err(|e| format!("sysfs: {e}"))?;
        let path = |kind: node::NodeKind| {
            nodes
                .iter()
                .find(|n| n.node.kind == kind)
                .map(|n| n.node.path.clone())
                .ok_or_else(|| format!("{} has no {kind:?} node", t.device))
        };
        let mut this = Self {
            t: t.clone(),
            op,
            primary: path(node::NodeKind::Primary)?,
            render: path(node::NodeKind::Render)?,
            card: None,
            handle: 0,
            dmabuf: None,
            name: 0,
            opened: None,
            objects: None,
        };
        this.objects = this.object_count()?;
        Ok(this)
    }

    /// The sample's count of live GEM objects (its GETPARAM on a primary file of its own);
    /// `None` for Nova, which has no such count.
    fn object_count(&self) -> Result<Option<u64>, String> {
        if self.t.label != "sample" {
            return Ok(None);
        }
        let card = Card::open(&self.primary).map_err(|e| e.to_string())?;
        sample::getparam(&card, sample::PARAM_OBJECT_COUNT)
            .map(Some)
            .map_err(|e| format!("GETPARAM(OBJECT_COUNT): {}", errno_name(e)))
    }

    fn card(&self) -> Result<&Card, Errno> {
        self.card.as_ref().ok_or(Errno::BADF)
    }

    fn create(&self) -> Result<u32, Errno> {
        let card = self.card()?;
        match self.t.label {
            "sample" => sample::gem_create(card, GEM_SIZE).map(|g| g.handle),
            _ => nova::gem_create(card, GEM_SIZE).map(|g| g.handle),
        }
    }

    fn info(&self, handle: u32) -> Result<u64, Errno> {
        let card = self.card()?;
        match self.t.label {
            "sample" => sample::gem_info(card, handle),
            _ => nova::gem_info(card, handle),
        }
    }

    /// Whether handle `h` of the try's file is an object of [`GEM_SIZE`], as `live` says.
    fn handle_problems(&self, h: u32, live: bool) -> Vec<String> {
        let got = self.info(h);
        let ok = match got {
            Ok(size) => live && size >= GEM_SIZE,
            Err(e) => !live && e == Errno::NOENT,
        };
        if ok {
            vec![]
        } else {
            vec![format!(
                "{}: GEM_INFO({h}) is {}, the handle should {}",
                self.op,
                drm_client::describe(&got),
                if live { "be live" } else { "be gone" }
            )]
        }
    }

    fn cleanup(&mut self) {
        self.card = None;
        self.dmabuf = None;
        self.opened = None;
    }
}

impl Operation for FileOp {
    fn prepare(&mut self) -> Result<(), String> {
        self.cleanup();
        if self.op.starts_with("open_") {
            return Ok(());
        }
        let card = Card::open(&self.primary).map_err(|e| e.to_string())?;
        let e = |what: &str, e: Errno| format!("{what}: {}", errno_name(e));
        self.card = Some(card);
        if !matches!(self.op, "close" | "getparam" | "gem_create") {
            self.handle = self.create().map_err(|x| e("GEM_CREATE", x))?;
        }
        let card = self.card.as_ref().expect("opened above");
        match self.op {
            "prime_import" => {
                let fd = card.prime_export(self.handle);
                self.dmabuf = Some(fd.map_err(|x| e("PRIME export", x))?);
                card.gem_close(self.handle).map_err(|x| e("GEM_CLOSE", x))?;
            }
            "gem_open" => {
                self.name = card.gem_flink(self.handle).map_err(|x| e("FLINK", x))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn call(&mut self) -> Result<(), Errno> {
        let open = |p: &Path| File::options().read(true).write(true).open(p);
        match self.op {
            "open_primary" | "open_render" => {
                let p = if self.op == "open_primary" {
                    &self.primary
                } else {
                    &self.render
                };
                self.opened = Some(open(p).map_err(|e| drm_client::errno_of(&e))?);
                Ok(())
            }
            // close() reports no error; its failure points are in the release.
            "close" => {
                self.card = None;
                Ok(())
            }
            "getparam" => {
                let card = self.card()?;
                match self.t.label {
                    "sample" => sample::getparam(card, sample::PARAM_PAGE_SIZE).map(drop),
                    _ => nova::vram_bar_size(card).map(drop),
                }
            }
            "gem_create" => self.create().map(|h| self.handle = h),
            "gem_info" => self.info(self.handle).map(drop),
            "gem_close" => self.card()?.gem_close(self.handle),
            "prime_export" => {
                let fd = self.card()?.prime_export(self.handle)?;
                self.dmabuf = Some(fd);
                Ok(())
            }
            "prime_import" => {
                let fd = self.dmabuf.as_ref().ok_or(Errno::BADF)?;
                self.handle = self.card()?.prime_import(fd.as_fd())?;
                Ok(())
            }
            "gem_flink" => {
                self.name = self.card()?.gem_flink(self.handle)?;
                Ok(())
            }
            "gem_open" => {
                let (h, _) = self.card()?.gem_open(self.name)?;
                self.handle = h;
                Ok(())
            }
            other => unreachable!("no operation {other}"),
        }
    }

    fn failed(&mut self) -> Vec<String> {
        let p = match self.op {
            // The handle the call acted on is still there.
            "gem_close" | "gem_info" | "prime_export" | "gem_flink" => {
                self.handle_problems(self.handle, true)
            }
            _ => vec![],
        };
        self.cleanup();
        p
    }

    fn succeeded(&mut self) -> Vec<String> {
        let p = match self.op {
            "gem_create" | "gem_info" | "prime_import" | "gem_open" | "prime_export" => {
                self.handle_problems(self.handle, true)
            }
            "gem_close" => self.handle_problems(self.handle, false),
            "gem_flink" => match self.card().and_then(|c| c.gem_open(self.name)) {
                Ok(_) => vec![],
                Err(e) => vec![format!("GEM_OPEN of the new name: {}", errno_name(e))],
            },
            _ => vec![],
        };
        self.cleanup();
        p
    }

    fn settled(&mut self) -> Vec<String> {
        match (self.objects, self.object_count()) {
            (Some(before), Ok(Some(now))) if now != before => {
                vec![format!("{now} GEM objects live, {before} before the test")]
            }
            (_, Err(e)) => vec![e],
            _ => vec![],
        }
    }
}

/// Sets the fault-injection knobs ([`KNOBS`]), and keeps ACPICA out of the injection
/// ([`acpica_range`]); a diagnostic line for the run says what was left out.
fn set_knobs() -> Result<String, String> {
    for (path, value) in KNOBS {
        fs::write(path, value).map_err(|e| format!("{path}: {e}"))?;
    }
    let kallsyms = fs::read_to_string("/proc/kallsyms").map_err(|e| format!("kallsyms: {e}"))?;
    let (start, end, n) = acpica_range(&kallsyms)
        .ok_or("no cluster of ACPICA functions in /proc/kallsyms to keep out of the injection")?;
    for attr in ["failslab", "fail_page_alloc"] {
        for (knob, value) in [("reject-start", start), ("reject-end", end)] {
            let path = format!("/sys/kernel/debug/{attr}/{knob}");
            fs::write(&path, format!("{value:#x}")).map_err(|e| format!("{path}: {e}"))?;
        }
    }
    Ok(format!(
        "no injection under ACPICA ({n} functions at {start:#x}-{end:#x}): its reference \
         counting does not survive a failed allocation (a use-after-free in \
         acpi_ns_get_attached_object() after a failed reference count update)"
    ))
}

/// Prefixes of ACPICA's internal functions (drivers/acpi/acpica).
const ACPICA_PREFIXES: [&str; 9] = [
    "acpi_ds_", "acpi_ex_", "acpi_ns_", "acpi_ps_", "acpi_ut_", "acpi_rs_", "acpi_tb_", "acpi_ev_",
    "acpi_hw_",
];

/// The text of ACPICA in `kallsyms`: the largest run of ACPICA functions no more than 64 KiB
/// apart (its objects are linked together; cold functions elsewhere are left), as the
/// range `[start, end)` (`end` a page past the last function) and the functions in it.
fn acpica_range(kallsyms: &str) -> Option<(u64, u64, usize)> {
    let mut addrs: Vec<u64> = kallsyms
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            let text = kind.eq_ignore_ascii_case("t");
            (text && ACPICA_PREFIXES.iter().any(|p| name.starts_with(p)))
                .then(|| u64::from_str_radix(addr, 16).ok())
                .flatten()
        })
        .filter(|a| *a != 0)
        .collect();
    addrs.sort_unstable();
    let mut best: Option<(usize, usize)> = None;
    let mut from = 0;
    for i in 0..addrs.len() {
        if i + 1 == addrs.len() || addrs[i + 1] - addrs[i] > 64 << 10 {
            if best.is_none_or(|(a, b)| i + 1 - from > b - a) {
                best = Some((from, i + 1));
            }
            from = i + 1;
        }
    }
    let (a, b) = best?;
    (b - a >= 2).then(|| (addrs[a], addrs[b - 1] + 4096, b - a))
}

/// The operation `op` of target `t`.
fn operation(t: &Target, op: &'static str) -> Result<Box<dyn Operation>, String> {
    Ok(match op {
        "insmod" => Box::new(Insmod {
            t: t.clone(),
            name: module_name(&t.module)?,
            devices: bound_devices(t),
            file: None,
        }),
        "bind" | "unbind" => Box::new(Binding {
            t: t.clone(),
            bind: op == "bind",
            file: None,
        }),
        _ => Box::new(FileOp::new(t, op)?),
    })
}

fn main() -> ExitCode {
    let args = match guest::start("fail_nth", Some(USAGE), parse) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut args = args;
    let mut run = Planned::start(SUITE, plan(&args.targets));
    for t in args.targets.iter_mut().filter(|t| t.bus == "pci") {
        match guest::sysfs::pci_address(&t.device) {
            Ok(a) => t.device = a,
            Err(e) => run.diag(&e),
        }
    }
    let setup = set_knobs().and_then(|left_out| {
        FailNth::check()
            .map(|()| left_out)
            .map_err(|e| format!("{FAIL_NTH}: {e}"))
    });
    let mut fail = match setup {
        Ok(left_out) => {
            run.diag(&left_out);
            Some(FailNth::default())
        }
        Err(e) => {
            run.diag(&format!("no fault injection: {e}"));
            None
        }
    };
    let mut total = 0;
    for t in &args.targets {
        let ops = ["insmod", "bind", "unbind"]
            .into_iter()
            .chain(FILE_OPS.into_iter().filter(|_| t.drm));
        for op in ops {
            let test = format!("{}_{op}", t.label);
            let Some(fail) = fail.as_mut() else {
                run.result(&test, Err("no fault injection (see above)".into()));
                continue;
            };
            // Each operation starts with the module loaded and the device bound.
            let ready = (|| {
                if !kmod::is_loaded(&module_name(&t.module)?) {
                    kmod::insmod(&t.module)?;
                }
                set_bound(t, true)
            })();
            let start = Instant::now();
            let explored = ready.and_then(|()| operation(t, op)).map(|mut o| {
                let mut e = explore(fail, o.as_mut(), args.limit);
                e.problems.extend(o.finish().err());
                e
            });
            match explored {
                Ok(e) => {
                    total += e.points;
                    run.diag(&format!(
                        "fail-nth {test}: points {}, errors {}, absorbed {}, {:.1} s",
                        e.points,
                        e.errors,
                        e.absorbed,
                        start.elapsed().as_secs_f64()
                    ));
                    run.result(&test, verdict(e.problems));
                }
                Err(e) => run.result(&test, Err(e)),
            }
        }
    }
    run.diag(&format!("fail-nth: {total} failure points in all"));
    // Leave the drivers loaded and bound, as found.
    for t in &args.targets {
        let _ = set_bound(t, true);
    }
    ExitCode::from(run.finish() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Args, String> {
        parse_from(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_plan_names_each_operation_of_each_target() {
        let a = args(&[
            "--nova",
            "0000:01:00.0",
            "--nova-module",
            "/lib/modules/nova.ko",
            "--pci",
            "0000:00:03.0",
            "--pci-driver",
            "rust_driver_pci",
            "--pci-module",
            "/lib/modules/rust_driver_pci.ko",
        ])
        .unwrap();
        let p = plan(&a.targets);
        assert_eq!(p.len(), 3 + FILE_OPS.len() + 3);
        assert_eq!(
            &p[..4],
            [
                "nova_insmod",
                "nova_bind",
                "nova_unbind",
                "nova_open_primary"
            ]
        );
        assert_eq!(p.last().unwrap(), "pci_unbind");
        assert_eq!(a.limit, 5000);
    }

    #[test]
    fn acpica_is_the_largest_cluster_of_its_functions() {
        let kallsyms = "\
ffffffff81000000 T _stext
ffffffff81100000 t acpi_ut_cold_thing
ffffffff81400000 T acpi_ds_exec_end_op
ffffffff81401000 t acpi_ns_get_attached_object
ffffffff81402000 T acpi_pci_irq_lookup
ffffffff81403000 T acpi_ut_evaluate_object
ffffffff81403800 d acpi_gbl_data
0000000000000000 T acpi_ex_hidden
";
        assert_eq!(
            acpica_range(kallsyms),
            Some((0xffffffff81400000, 0xffffffff81404000, 3))
        );
        assert_eq!(acpica_range("ffffffff81000000 T _stext\n"), None);
    }

    #[test]
    fn targets_need_their_module() {
        let e = args(&["--nova", "0000:01:00.0"]).unwrap_err();
        assert_eq!(e, "--nova-module is required");
        assert!(args(&[]).unwrap_err().starts_with("nothing to test"));
        let e = args(&["--sample", "x", "--sample-module", "/x/y"]).unwrap_err();
        assert!(e.contains("not a .ko file"), "{e}");
        assert!(args(&["--limit", "many"]).is_err());
    }
}
