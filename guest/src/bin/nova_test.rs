//! `nova_test`: Nova (PCI driver and DRM driver `nova`) from userspace, through the `nova`
//! crate: which GPUs it bound and what it printed for them, each GPU's nodes and uAPI
//! (GETPARAM, GEM create/info/close, their errors, authentication on the primary node), and
//! on request sysfs unbind/bind cycles, module unload/load cycles and hot-unplug cycles;
//! reports KTAP.
//!
//! ```text
//! nova_test --module PATH/nova.ko [--expect CHIP:BAR1:REV]... [--expect-line TEXT]...
//!           [--cycles N] [--module-cycles N] [--workers N] [--hotplug-cycles N]
//! ```
//! `--expect` names a GPU the boot has, one per GPU: `CHIP` its GPU model profile (`gh100`, the
//! chip's name in lower case), `BAR1` its BAR1 size in bytes and `REV` its revision byte, e.g.
//! `--expect gh100:0x2000000000:0xa1`. Without `--expect`, Nova must bind nothing (a boot
//! whose GPUs Nova refuses). `--expect-line TEXT` (quoted for the shell) is a kernel log line
//! the boot must have printed, such as a refusal. Numbers are decimal or `0x` hex. The cycle
//! counts default to 0 (not run) and `--workers` to 4; `--cycles` and `--module-cycles` need
//! a GPU, `--hotplug-cycles` exactly one (the one the harness unplugs). The program loads the
//! module if it is not loaded yet and unloads it at the end.
//!
//! Nova prints (read from `/dev/kmsg`): `nova <BDF>: NVIDIA <CHIP> (<Arch>), revision <R>,
//! BAR1 <size>: DRM device registered` on each probe, `nova <BDF>: unbind` on each removal
//! and `nova: DRM device released` when a DRM device's data is dropped: at removal when no
//! file is open, else at the last close. Every step checks that exactly the lines it causes
//! appear, once each, and no kernel `WARNING:`/`BUG:`/`Oops` line.
//!
//! KTAP tests (suite `nova_test`), in order:
//! - `bound_devices`: the devices bound to `nova` (sysfs) are those of the `--expect` list,
//!   told apart by the probe line of their PCI address in the kernel log (a device is paired
//!   with the expectation whose probe line it printed, else with one of its chip);
//!   without `--expect`, no device is bound and no node in `/dev/dri` answers VERSION with
//!   `nova`;
//! - `probe_lines`: the kernel log since boot has, for each expected GPU, exactly one probe
//!   line of its address, with the expected chip, architecture, revision and BAR1 size, and no
//!   other `DRM device registered` line of Nova; every `--expect-line` appears; no kernel
//!   warning;
//! - per expected GPU, each test named after its chip (`gh100_getparam`; with several GPUs of
//!   one chip, `gh100_0_getparam`, `gh100_1_getparam`), on a primary file (opened first, so
//!   DRM master) and a render file of the GPU:
//!   `_nodes` (one primary and one render node, device files, the PCI device bound to `nova`,
//!   both answering VERSION with `nova`, its description and 0.0.0), `_getparam`
//!   (VRAM_BAR_SIZE on both nodes equals the expectation's BAR1 size),
//!   `_gem_create_info_close` (objects of 1, 4095, 4096, 4097, 65536 and 1 MiB + 1 bytes get
//!   that size rounded up to the process's page size, GEM_INFO gives the same, GEM_CLOSE closes
//!   each, again `EINVAL`, GEM_INFO after it `ENOENT`), one test per refused call with its
//!   errno: `_getparam_unknown_param_einval` (0, 2 and 3, numbers mainline's header does not
//!   define, `1 << 32 | 1`, whose low half is VRAM_BAR_SIZE, and more), `_create_size_zero_einval`,
//!   `_create_huge_size_refused` (`u64::MAX` and 2^63: `EINVAL` or `ENOMEM`),
//!   `_info_unknown_handle_enoent`, `_create_nonzero_pad_einval`, `_info_nonzero_pad_einval`
//!   (on a live handle), `_ioctl_past_table_einval`, `_unauthenticated_primary_eacces` (a
//!   second file of the primary node, opened without `CAP_SYS_ADMIN` while the first is
//!   open: GEM_CREATE and GEM_INFO `EACCES`, GETPARAM answers), `_master_primary_create` (GEM create/info/close on the first
//!   primary file work); each with no kernel line;
//! - with `--module-cycles`: `open_file_pins_module` (`rmmod` fails while a render file is open
//!   and the module stays); with `--cycles`: `unbind_bind_cycles` (the first GPU by PCI address
//!   unbound and bound through sysfs N times, each printing `unbind` and `DRM device released`
//!   once, the nodes gone, then the probe line once and nodes answering GETPARAM); with
//!   `--module-cycles`: `module_unload_load_cycles` (`rmmod`/`insmod` N times, the same for
//!   every expected GPU);
//! - with `--hotplug-cycles N`: `hotplug_cycle_1` .. `hotplug_cycle_N`, each: a primary and a
//!   render file open, an object created, `--workers` child processes sharing the render file
//!   and looping GEM create/info/close; once all are going, the line `# hotplug cycle K: waiting
//!   for unplug` (the harness's cue to unplug the GPU over QMP), sysfs polled until the device
//!   is gone (30 s), then `# hotplug cycle K: loop: gone ...` (the harness then plugs it back);
//!   every worker ends on `ENODEV` (30 s), every ioctl on the parent's files is `ENODEV`,
//!   `unbind` is printed once and `DRM device released` only once the files are closed; the
//!   re-plugged GPU is bound again within 30 s (its probe line once, its nodes) and answers
//!   GETPARAM VRAM_BAR_SIZE and a GEM create/close. A cycle whose GPU does not come back ends
//!   the series (the rest are skipped);
//! - `module_gone`: a last `rmmod` prints `unbind` and `DRM device released` once per bound GPU,
//!   the module, the driver's sysfs folder and the GPUs' nodes are gone.
//!
//! Child processes rather than threads: the guest kernel has no futexes (see `guest::child`).
//! A worker (`guest::gem_worker`) is this program run as `nova_test --worker SECONDS` with the
//! shared file as its standard input; it prints `ready` after its first create/info/close, a
//! line of its own if GEM_INFO gives another size than GEM_CREATE did, then one line
//! `end ITERATIONS ERRNO` (the raw errno that stopped it) or `end ITERATIONS timeout`.

use drm_client::node::{self, Node};
use drm_client::{describe, errno_name, Card, DriverIoctl, Errno, NodeKind};
use guest::args::{self, Flags};
use guest::drm_check::{self, expect_errno, Created, GemIoctls};
use guest::gem_worker::{self, Workers, WORKER_FLAG};
use guest::kmod::{self, module_name};
use guest::kmsg::{self, Kmsg};
use guest::ktap::verdict;
use guest::sysfs::Bus;
use guest::Planned;
use nova::discover::{self, Device, PciAddress};
use nova::{Chipset, GemCreate, GemInfo, Revision};
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The KTAP suite name.
const SUITE: &str = "nova_test";
/// The PCI driver's name, also the module's and the DRM driver's.
const DRIVER: &str = nova::DRIVER_NAME;

/// How long the records of one step may take to arrive.
const STEP_WAIT: Duration = Duration::from_secs(3);
/// How long a step's records must be quiet once they are all there (a line printed twice is
/// then seen twice).
const SETTLE: Duration = Duration::from_millis(20);
/// How long to watch for a line that must not appear: `DRM device released` while a file is
/// open.
const ABSENCE_WAIT: Duration = Duration::from_millis(300);
/// How long a worker may take to start or to end before it counts as hung.
const HANG: Duration = Duration::from_secs(30);
/// How long the hot-unplugged GPU may take to go, and the re-plugged one to be bound again.
const HOTPLUG_WAIT: Duration = Duration::from_secs(30);
/// How long a worker runs at most when no error stops it (longer than an unplug takes).
const WORKER_LIMIT_S: u64 = 120;
/// The sizes `_gem_create_info_close` creates objects of.
const SIZES: [u64; 6] = [1, 4095, 4096, 4097, 65536, (1 << 20) + 1];
/// Texts that mark a kernel crash or warning.
const CRASH_MARKS: [&str; 4] = ["WARNING:", "BUG:", "Oops", "general protection fault"];
/// The harness unplugs the GPU when a line contains this.
const UNPLUG_CUE: &str = "waiting for unplug";
/// The harness plugs the GPU back when a line contains this.
const GONE_CUE: &str = "loop: gone";
/// The release line: it names no device.
const RELEASED: &str = "nova: DRM device released";

/// The tests run for each expected GPU, after its label (`gh100_nodes`), in order.
const DEVICE_TESTS: [&str; 12] = [
    "nodes",
    "getparam",
    "gem_create_info_close",
    "getparam_unknown_param_einval",
    "create_size_zero_einval",
    "create_huge_size_refused",
    "info_unknown_handle_enoent",
    "create_nonzero_pad_einval",
    "info_nonzero_pad_einval",
    "ioctl_past_table_einval",
    "unauthenticated_primary_eacces",
    "master_primary_create",
];

/// One `--expect CHIP:BAR1:REV`: a GPU the boot has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expect {
    chip: Chipset,
    bar1: u64,
    revision: Revision,
}

impl Expect {
    /// The chip's name in lower case, as the GPU model's profile (`gh100`).
    fn name(&self) -> String {
        self.chip.to_string().to_lowercase()
    }

    /// The line Nova prints when it binds this GPU at `address`.
    fn probe_line(&self, address: PciAddress) -> String {
        format!(
            "{DRIVER} {address}: NVIDIA {}, revision {}, BAR1 {}: DRM device registered",
            self.chip.describe(),
            self.revision,
            nova::chip::format_size(self.bar1)
        )
    }

    /// Whether `line`, the probe line of the device at `address`, names this GPU's chip
    /// (whatever it says of its revision and BAR1).
    fn chip_of(&self, address: PciAddress, line: &str) -> bool {
        line.starts_with(&format!(
            "{DRIVER} {address}: NVIDIA {}, ",
            self.chip.describe()
        ))
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{:#x}:{:#04x}",
            self.name(),
            self.bar1,
            self.revision.0
        )
    }
}

/// A number, decimal or `0x` hexadecimal; `what` names it in the error.
fn parse_number(text: &str, what: &str) -> Result<u64, String> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    let plain = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
    plain
        .then(|| u64::from_str_radix(digits, radix).ok())
        .flatten()
        .ok_or_else(|| format!("{what} wants a number (decimal or 0x hex), not '{text}'"))
}

/// Reads `CHIP:BAR1:REV` (see the module documentation).
fn parse_expect(text: &str) -> Result<Expect, String> {
    let bad = |why: String| format!("--expect '{text}': {why}");
    let parts: Vec<&str> = text.split(':').collect();
    let [chip, bar1, rev] = parts[..] else {
        return Err(bad(
            "wants CHIP:BAR1:REV, e.g. gh100:0x2000000000:0xa1".into()
        ));
    };
    let chip = Chipset::from_name(chip).ok_or_else(|| {
        let names: Vec<String> = nova::chip::CHIPS
            .iter()
            .map(|(n, _)| n.to_lowercase())
            .collect();
        bad(format!(
            "unknown chip '{chip}' (one of {})",
            names.join(", ")
        ))
    })?;
    let bar1 = parse_number(bar1, "BAR1").map_err(bad)?;
    if bar1 == 0 {
        return Err(bad("BAR1 is 0".into()));
    }
    let revision = parse_number(rev, "REV").map_err(bad)?;
    if revision > 0xff {
        return Err(bad(format!("REV {revision:#x} is more than a byte")));
    }
    Ok(Expect {
        chip,
        bar1,
        revision: Revision(revision),
    })
}

/// Nova's GEM ioctls, for the checks of [`drm_check`].
struct NovaGem;

impl GemIoctls for NovaGem {
    fn create(card: &Card, size: u64) -> Result<Created, Errno> {
        nova::gem_create(card, size).map(|g| Created {
            handle: g.handle,
            pad: g.pad,
            size: g.size,
        })
    }

    fn info(card: &Card, handle: u32) -> Result<u64, Errno> {
        nova::gem_info(card, handle)
    }

    fn page_align(size: u64, page: u64) -> Option<u64> {
        nova::page_align(size, page)
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Args {
    module: PathBuf,
    expects: Vec<Expect>,
    expect_lines: Vec<String>,
    cycles: u32,
    module_cycles: u32,
    workers: u32,
    hotplug_cycles: u32,
}

/// What the program was asked to do.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// The tests.
    Test(Args),
    /// One hot-unplug worker, for at most this many seconds.
    Worker(u64),
}

fn parse(argv: impl IntoIterator<Item = String>) -> Result<Mode, String> {
    let mut flags = Flags::new(argv);
    let mut module = None;
    let (mut expects, mut expect_lines) = (Vec::new(), Vec::new());
    let (mut cycles, mut module_cycles, mut workers, mut hotplug_cycles) = (0, 0, 4, 0);
    fn count(v: String, flag: &str) -> Result<u32, String> {
        let n = parse_number(&v, flag)?;
        u32::try_from(n).map_err(|_| format!("{flag} {n} is too large"))
    }
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            WORKER_FLAG => {
                return Ok(Mode::Worker(parse_number(&flags.value(&flag)?, &flag)?));
            }
            "--module" => module = Some(PathBuf::from(flags.value(&flag)?)),
            "--expect" => expects.push(parse_expect(&flags.value(&flag)?)?),
            "--expect-line" => {
                let line = flags.value(&flag)?;
                if line.trim().is_empty() {
                    return Err("--expect-line wants a text".into());
                }
                expect_lines.push(line);
            }
            "--cycles" => cycles = count(flags.value(&flag)?, &flag)?,
            "--module-cycles" => module_cycles = count(flags.value(&flag)?, &flag)?,
            "--workers" => workers = count(flags.value(&flag)?, &flag)?,
            "--hotplug-cycles" => hotplug_cycles = count(flags.value(&flag)?, &flag)?,
            other => return Err(args::unknown(other)),
        }
    }
    let module = args::required(module, "--module")?;
    module_name(&module)?;
    if workers == 0 {
        return Err("--workers wants at least 1".into());
    }
    if (cycles > 0 || module_cycles > 0) && expects.is_empty() {
        return Err("--cycles and --module-cycles need a GPU (--expect)".into());
    }
    if hotplug_cycles > 0 && expects.len() != 1 {
        return Err(format!(
            "--hotplug-cycles needs exactly one --expect (the GPU the harness unplugs), not {}",
            expects.len()
        ));
    }
    Ok(Mode::Test(Args {
        module,
        expects,
        expect_lines,
        cycles,
        module_cycles,
        workers,
        hotplug_cycles,
    }))
}

/// The label of each expected GPU in test names: its chip (`gh100`), with its index among the
/// GPUs of that chip when there are several (`gh100_0`, `gh100_1`).
fn labels(expects: &[Expect]) -> Vec<String> {
    expects
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let same = |o: &&Expect| o.chip == e.chip;
            if expects.iter().filter(same).count() == 1 {
                e.name()
            } else {
                format!("{}_{}", e.name(), expects[..i].iter().filter(same).count())
            }
        })
        .collect()
}

/// The KTAP tests `args` asks for, in the order they are reported.
fn plan(args: &Args) -> Vec<String> {
    let mut p = vec!["bound_devices".to_string(), "probe_lines".to_string()];
    for label in labels(&args.expects) {
        p.extend(DEVICE_TESTS.iter().map(|t| format!("{label}_{t}")));
    }
    if args.module_cycles > 0 {
        p.push("open_file_pins_module".into());
    }
    if args.cycles > 0 {
        p.push("unbind_bind_cycles".into());
    }
    if args.module_cycles > 0 {
        p.push("module_unload_load_cycles".into());
    }
    p.extend((1..=args.hotplug_cycles).map(|k| format!("hotplug_cycle_{k}")));
    p.push("module_gone".into());
    p
}

/// A GPU as the log names it: its address and the probe line it must print.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dev {
    address: PciAddress,
    /// Empty when any probe line of the device is unexpected.
    probe_line: String,
}

/// What a step must print: for each GPU, how many probe lines and `unbind` lines; in all, how
/// many `DRM device released` lines (they name no device). No kernel warning, ever.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    devices: Vec<(Dev, usize, usize)>,
    released: usize,
}

impl Want {
    fn each(devs: &[Dev], registered: usize, unbind: usize, released: usize) -> Self {
        Self {
            devices: devs
                .iter()
                .map(|d| (d.clone(), registered, unbind))
                .collect(),
            released: released * devs.len(),
        }
    }

    /// A probe of each of `devs`.
    fn probe(devs: &[Dev]) -> Self {
        Self::each(devs, 1, 0, 0)
    }

    /// A removal of each of `devs` with no file open.
    fn removal(devs: &[Dev]) -> Self {
        Self::each(devs, 0, 1, 1)
    }

    /// Nothing from `devs` (an ioctl).
    fn nothing(devs: &[Dev]) -> Self {
        Self::each(devs, 0, 0, 0)
    }
}

/// Whether `text` is a probe line of the device at `address`, whatever it says of the GPU.
fn is_probe_line_of(text: &str, address: PciAddress) -> bool {
    text.starts_with(&format!("{DRIVER} {address}: ")) && text.ends_with(": DRM device registered")
}

/// Whether `text` is a probe line of any device.
fn is_probe_line(text: &str) -> bool {
    text.starts_with(&format!("{DRIVER} ")) && text.ends_with(": DRM device registered")
}

/// The lines of `dev` among `texts`: its probe lines as expected, its probe lines that say
/// something else, its `unbind` lines.
fn count_dev(texts: &[String], dev: &Dev) -> (usize, Vec<String>, usize) {
    let probes: Vec<&String> = texts
        .iter()
        .filter(|t| is_probe_line_of(t, dev.address))
        .collect();
    let exact = probes.iter().filter(|t| **t == &dev.probe_line).count();
    let other = probes
        .iter()
        .filter(|t| **t != &dev.probe_line)
        .map(|t| t.to_string())
        .collect();
    let unbind = format!("{DRIVER} {}: unbind", dev.address);
    let unbinds = texts.iter().filter(|t| t.contains(&unbind)).count();
    (exact, other, unbinds)
}

fn released_count(texts: &[String]) -> usize {
    texts.iter().filter(|t| t.contains(RELEASED)).count()
}

fn crash_lines(texts: &[String]) -> Vec<&String> {
    texts
        .iter()
        .filter(|t| CRASH_MARKS.iter().any(|m| t.contains(m)))
        .collect()
}

/// Whether every line `want` asks for appeared at least as often as it asks.
fn covers(texts: &[String], want: &Want) -> bool {
    want.devices.iter().all(|(dev, registered, unbind)| {
        let (exact, _, unbinds) = count_dev(texts, dev);
        exact >= *registered && unbinds >= *unbind
    }) && released_count(texts) >= want.released
}

/// How `texts` differ from `want`, one message per line.
fn log_problems(texts: &[String], want: &Want) -> Vec<String> {
    let mut p = Vec::new();
    for (dev, registered, unbind) in &want.devices {
        let (exact, other, unbinds) = count_dev(texts, dev);
        if exact != *registered {
            let line = if dev.probe_line.is_empty() {
                format!("{DRIVER} {}: ...: DRM device registered", dev.address)
            } else {
                dev.probe_line.clone()
            };
            p.push(format!(
                "`{line}` printed {exact} times, expected {registered}"
            ));
        }
        for t in other {
            p.push(format!("unexpected probe line `{t}`"));
        }
        if unbinds != *unbind {
            p.push(format!(
                "`{DRIVER} {}: unbind` printed {unbinds} times, expected {unbind}",
                dev.address
            ));
        }
    }
    let released = released_count(texts);
    if released != want.released {
        p.push(format!(
            "`{RELEASED}` printed {released} times, expected {}",
            want.released
        ));
    }
    let crashes = crash_lines(texts);
    if let Some(first) = crashes.first() {
        p.push(format!(
            "kernel WARNING/BUG/Oops printed {} times, the first `{first}`",
            crashes.len()
        ));
    }
    p
}

/// A bound device paired with an expectation.
#[derive(Debug, Clone)]
struct Matched {
    expect: Expect,
    device: Device,
    dev: Dev,
}

/// Pairs the devices `found` (their address and their last probe line) with `expects`: first
/// each device with an unpaired expectation whose probe line it printed, then each device left
/// with one of its chip. The index of the device paired with each expectation, and the
/// problems (a device without a probe line, one that nothing expects, an expectation without a
/// device).
fn pair(
    expects: &[Expect],
    found: &[(PciAddress, Result<String, String>)],
) -> (Vec<Option<usize>>, Vec<String>) {
    let mut paired: Vec<Option<usize>> = vec![None; expects.len()];
    for exact in [true, false] {
        for (i, (address, line)) in found.iter().enumerate() {
            let Ok(line) = line else { continue };
            if paired.contains(&Some(i)) {
                continue;
            }
            let fits = |e: &Expect| {
                if exact {
                    *line == e.probe_line(*address)
                } else {
                    e.chip_of(*address, line)
                }
            };
            if let Some(j) = (0..expects.len()).find(|&j| paired[j].is_none() && fits(&expects[j]))
            {
                paired[j] = Some(i);
            }
        }
    }
    let mut problems = Vec::new();
    for (i, (address, line)) in found.iter().enumerate() {
        match line {
            Err(e) => problems.push(format!("{address}: {e}")),
            Ok(line) if !paired.contains(&Some(i)) => problems.push(format!(
                "{address}: bound (`{}`), but no --expect names it",
                probe_says(line, *address)
            )),
            Ok(_) => {}
        }
    }
    for (e, p) in expects.iter().zip(&paired) {
        if p.is_none() {
            problems.push(format!("no bound device for --expect {e}"));
        }
    }
    (paired, problems)
}

/// What probe line `line` of the device at `address` says of the GPU: the text between the
/// device's prefix and `: DRM device registered`.
fn probe_says(line: &str, address: PciAddress) -> &str {
    let prefix = format!("{DRIVER} {address}: ");
    let rest = line.strip_prefix(prefix.as_str()).unwrap_or(line);
    rest.strip_suffix(": DRM device registered").unwrap_or(rest)
}

/// The last probe line of the device at `address` among `texts`.
fn last_probe_line(texts: &[String], address: PciAddress) -> Option<&String> {
    texts.iter().rev().find(|t| is_probe_line_of(t, address))
}

/// What is wrong with the nodes of the device at `address` when it is `bound` to `nova`
/// (`driver`: its driver link's name): one primary and one render node, device files that are
/// character devices; when it is not bound: no node.
fn node_problems(
    address: PciAddress,
    nodes: &[Node],
    bound: bool,
    driver: Option<&str>,
) -> Vec<String> {
    let names = || {
        nodes
            .iter()
            .map(|n| n.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !bound {
        return if nodes.is_empty() {
            Vec::new()
        } else {
            vec![format!("{address} still has nodes: {}", names())]
        };
    }
    let mut p = Vec::new();
    if driver != Some(DRIVER) {
        p.push(format!("{address} is bound to {driver:?}, not {DRIVER}"));
    }
    for kind in [NodeKind::Primary, NodeKind::Render] {
        let n = nodes.iter().filter(|n| n.kind == kind).count();
        if n != 1 {
            p.push(format!("{address} has {n} {kind} nodes ({})", names()));
        }
    }
    for n in nodes {
        let is_char = std::fs::metadata(&n.path).is_ok_and(|m| m.file_type().is_char_device());
        if !is_char {
            p.push(format!("{} is not a character device", n.path.display()));
        }
    }
    p
}

/// The guest: the kernel log, the PCI bus, the module.
struct Rig {
    kmsg: Kmsg,
    bus: Bus,
    module: PathBuf,
    module_name: String,
    /// The process's page size, which GEM sizes are rounded up to.
    page: u64,
}

impl Rig {
    /// Reads the log into `acc` until `done` holds for all of `acc` and the records are quiet
    /// for `settle` (or `wait` passed); the problems reading it.
    fn gather(
        &mut self,
        acc: &mut Vec<String>,
        wait: Duration,
        settle: Duration,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let before = acc.clone();
        let got = kmsg::collect(&mut self.kmsg, wait, settle, |new| {
            let all: Vec<String> = before.iter().chain(new).cloned().collect();
            done(&all)
        });
        acc.extend(got.texts);
        got.problems
    }

    /// Reads the log until the lines of `want` are there and quiet for `settle` (or
    /// [`STEP_WAIT`] passed), then checks they appeared exactly as `want` says.
    fn log(&mut self, want: &Want, settle: Duration) -> Result<(), String> {
        let got = kmsg::collect(&mut self.kmsg, STEP_WAIT, settle, |t| covers(t, want));
        let mut problems = got.problems;
        problems.extend(log_problems(&got.texts, want));
        verdict(problems)
    }

    /// The outcome of an action (`done`), then the log as [`Rig::log`] checks it (with
    /// [`SETTLE`]).
    fn step(&mut self, want: &Want, done: Result<(), String>) -> Result<(), String> {
        done?;
        self.log(want, SETTLE)
    }

    /// An ioctl test: `f`, then no kernel line of `dev` or warning.
    fn quiet(&mut self, dev: &Dev, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        let mut problems: Vec<String> = f().err().into_iter().collect();
        problems.extend(
            self.log(&Want::nothing(std::slice::from_ref(dev)), SETTLE)
                .err(),
        );
        verdict(problems)
    }

    fn driver_of(&self, address: PciAddress) -> Option<String> {
        self.bus.driver_of(&address.to_string())
    }
}

/// The devices bound to `nova` now.
fn bound_now() -> Result<Vec<Device>, String> {
    discover::devices().map_err(|e| format!("sysfs: {e}"))
}

/// The device at `address` with its nodes, waiting up to `wait` for it to be bound to `nova`
/// with one primary and one render node whose device files exist.
fn nodes_present(rig: &Rig, address: PciAddress, wait: Duration) -> Result<Device, String> {
    let start = Instant::now();
    loop {
        let nodes = discover::nodes_of(Path::new(discover::SYS), Path::new(node::DEV_DRI), address)
            .map_err(|e| format!("sysfs: {e}"))?;
        let driver = rig.driver_of(address);
        let problems = node_problems(address, &nodes, true, driver.as_deref());
        if problems.is_empty() {
            return Ok(Device { address, nodes });
        }
        if start.elapsed() > wait {
            return Err(problems.join("; "));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Checks that the device at `address` has no node in sysfs and that the device files of
/// `previous` are gone.
fn nodes_gone(address: PciAddress, previous: &[Node]) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let nodes = discover::nodes_of(Path::new(discover::SYS), Path::new(node::DEV_DRI), address)
            .map_err(|e| format!("sysfs: {e}"))?;
        let mut problems = node_problems(address, &nodes, false, None);
        for n in previous {
            if n.path.exists() {
                problems.push(format!("{} still exists", n.path.display()));
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

/// The nodes in `/dev/dri` that answer VERSION with `nova`.
fn nova_nodes_in_dev_dri() -> Result<Vec<PathBuf>, String> {
    let nodes = node::nodes_in(Path::new(node::DEV_DRI)).map_err(|e| format!("/dev/dri: {e}"))?;
    Ok(nodes
        .into_iter()
        .filter(|n| {
            Card::open(&n.path)
                .ok()
                .and_then(|c| c.version().ok())
                .is_some_and(|v| v.name == DRIVER)
        })
        .map(|n| n.path)
        .collect())
}

/// Checks `card`'s `DRM_IOCTL_VERSION` against Nova's (not the date: DRM core 6.12.117 reports
/// `0` for every driver).
fn check_version(card: &Card) -> Result<(), String> {
    let v = card
        .version()
        .map_err(|e| format!("VERSION: {}", errno_name(e)))?;
    let want = (nova::DRIVER_NAME, nova::DRIVER_DESC, nova::DRIVER_VERSION);
    if (v.name.as_str(), v.desc.as_str(), v.version) == want {
        Ok(())
    } else {
        Err(format!(
            "VERSION gives `{v}`, expected {} {}.{}.{} ({})",
            want.0, want.2 .0, want.2 .1, want.2 .2, want.1
        ))
    }
}

/// A primary and a render file of a GPU; the primary one is opened first, so that it is DRM
/// master (no other file of the node may be open then).
struct Files {
    primary: Card,
    render: Card,
}

impl Files {
    fn open(device: &Device) -> Result<Self, String> {
        let path = |n: Option<&Node>, kind: &str| {
            n.map(|n| n.path.clone())
                .ok_or_else(|| format!("{} has no {kind} node", device.address))
        };
        let (primary, render) = (
            path(device.primary(), "primary")?,
            path(device.render(), "render")?,
        );
        let open = |p: &Path| Card::open(p).map_err(|e| e.to_string());
        let primary = open(&primary)?;
        Ok(Self {
            primary,
            render: open(&render)?,
        })
    }
}

/// Test `bound_devices`, reading the log since boot into `history` until each bound device's
/// probe line is there.
fn test_bound_devices(
    args: &Args,
    insmod: &Result<(), String>,
    rig: &mut Rig,
    history: &mut Vec<String>,
    run: &Planned,
) -> (Result<(), String>, Vec<Option<Matched>>) {
    let mut problems: Vec<String> = insmod.clone().err().into_iter().collect();
    let devices = match bound_now() {
        Ok(d) => d,
        Err(e) => {
            problems.push(e);
            Vec::new()
        }
    };
    problems.extend(rig.gather(history, STEP_WAIT, SETTLE, |t| {
        devices
            .iter()
            .all(|d| t.iter().any(|x| is_probe_line_of(x, d.address)))
    }));
    let found: Vec<(PciAddress, Result<String, String>)> = devices
        .iter()
        .map(|d| {
            let line = last_probe_line(history, d.address)
                .cloned()
                .ok_or_else(|| "bound, but no probe line in the kernel log".to_string());
            (d.address, line)
        })
        .collect();
    for (d, (_, line)) in devices.iter().zip(&found) {
        if let Ok(line) = line {
            run.diag(&format!(
                "{}: {}, nodes {}",
                d.address,
                probe_says(line, d.address),
                d.node_names().join(" ")
            ));
        }
    }
    let (paired, pair_problems) = pair(&args.expects, &found);
    problems.extend(pair_problems);
    if args.expects.is_empty() {
        match nova_nodes_in_dev_dri() {
            Ok(nodes) if nodes.is_empty() => {}
            Ok(nodes) => problems.push(format!(
                "nodes answering VERSION with `{DRIVER}`: {}",
                nodes
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(e) => problems.push(e),
        }
    }
    let matched = args
        .expects
        .iter()
        .zip(&paired)
        .map(|(e, p)| {
            p.map(|i| Matched {
                expect: *e,
                device: devices[i].clone(),
                dev: Dev {
                    address: devices[i].address,
                    probe_line: e.probe_line(devices[i].address),
                },
            })
        })
        .collect();
    (verdict(problems), matched)
}

fn test_probe_lines(args: &Args, history: &[String], matched: &[Option<Matched>]) -> Vec<String> {
    let mut problems = Vec::new();
    for (e, m) in args.expects.iter().zip(matched) {
        match m {
            Some(m) => {
                let (exact, other, _) = count_dev(history, &m.dev);
                if exact != 1 {
                    problems.push(format!(
                        "`{}` printed {exact} times, expected once",
                        m.dev.probe_line
                    ));
                }
                for t in other {
                    problems.push(format!("unexpected probe line `{t}`"));
                }
            }
            None => problems.push(format!(
                "no device for --expect {e} (see bound_devices), so no probe line to check"
            )),
        }
    }
    let all = history.iter().filter(|t| is_probe_line(t)).count();
    if all != args.expects.len() {
        problems.push(format!(
            "{all} probe lines of {DRIVER} in the log, {} GPUs expected",
            args.expects.len()
        ));
    }
    for line in &args.expect_lines {
        if !history.iter().any(|t| t.contains(line.as_str())) {
            problems.push(format!("no kernel line `{line}`"));
        }
    }
    let crashes = crash_lines(history);
    if let Some(first) = crashes.first() {
        problems.push(format!(
            "kernel WARNING/BUG/Oops printed {} times, the first `{first}`",
            crashes.len()
        ));
    }
    problems
}

fn test_nodes(rig: &mut Rig, m: &Matched) -> Result<(), String> {
    let device = nodes_present(rig, m.dev.address, STEP_WAIT)?;
    let mut problems = Vec::new();
    for node in &device.nodes {
        match Card::open(&node.path) {
            Ok(card) => {
                if let Err(e) = check_version(&card) {
                    problems.push(format!("{}: {e}", node.path.display()));
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    problems.extend(
        rig.log(&Want::nothing(std::slice::from_ref(&m.dev)), SETTLE)
            .err(),
    );
    verdict(problems)
}

fn check_getparam(files: &Files, e: &Expect) -> Result<(), String> {
    let mut problems = Vec::new();
    for (kind, card) in [("render", &files.render), ("primary", &files.primary)] {
        let got = nova::vram_bar_size(card);
        if got != Ok(e.bar1) {
            problems.push(format!(
                "GETPARAM(VRAM_BAR_SIZE) on the {kind} node: {}, expected Ok({:#x})",
                describe(&got.map(|v| format!("{v:#x}"))),
                e.bar1
            ));
        }
    }
    verdict(problems)
}

fn check_gem_create_info_close(files: &Files, page: u64) -> Result<(), String> {
    let mut problems = Vec::new();
    let handles = drm_check::create_each::<NovaGem>(&files.render, &SIZES, page, &mut problems);
    drm_check::close_each::<NovaGem>(&files.render, &handles, &mut problems);
    verdict(problems)
}

/// The refused calls of test `name` (a [`DEVICE_TESTS`] entry from
/// `getparam_unknown_param_einval` on).
fn refused_calls(name: &str, files: &Files) -> Result<(), String> {
    let render = &files.render;
    let primary = &files.primary;
    let mut problems = Vec::new();
    let mut check = |got: Result<(), String>| problems.extend(got.err());
    match name {
        "getparam_unknown_param_einval" => {
            // 2 and 3 were this series' CHIPSET and REVISION in v1; mainline's `param as u32`
            // would take 1 << 32 | 1 for VRAM_BAR_SIZE.
            for param in [0, 2, 3, 4, 0x100, 1 << 32 | 1, u64::MAX] {
                for (kind, card) in [("render", render), ("primary", primary)] {
                    let r = nova::getparam(card, param);
                    let what = format!("GETPARAM({param:#x}) on the {kind} node");
                    check(expect_errno(&what, &r, &[Errno::INVAL]));
                }
            }
        }
        "create_size_zero_einval" => {
            let r = nova::gem_create(render, 0);
            check(expect_errno("GEM_CREATE(0)", &r, &[Errno::INVAL]));
        }
        "create_huge_size_refused" => {
            for size in [u64::MAX, 1 << 63] {
                let r = nova::gem_create(render, size);
                let what = format!("GEM_CREATE({size:#x})");
                check(expect_errno(&what, &r, &[Errno::INVAL, Errno::NOMEM]));
            }
        }
        "info_unknown_handle_enoent" => {
            for h in [0, 0x7fff_ffff, u32::MAX] {
                let r = nova::gem_info(render, h);
                check(expect_errno(
                    &format!("GEM_INFO({h:#x})"),
                    &r,
                    &[Errno::NOENT],
                ));
            }
        }
        "create_nonzero_pad_einval" => {
            for pad in [1, 0x8000_0000, u32::MAX] {
                let mut arg = GemCreate {
                    handle: 0,
                    pad,
                    size: 4096,
                };
                let r = nova::gem_create_raw(render, &mut arg);
                check(expect_errno(
                    &format!("GEM_CREATE with pad {pad:#x}"),
                    &r,
                    &[Errno::INVAL],
                ));
            }
        }
        "info_nonzero_pad_einval" => {
            let gem = nova::gem_create(render, 4096)
                .map_err(|e| format!("GEM_CREATE(4096): {}", errno_name(e)))?;
            for pad in [1, u32::MAX] {
                let mut arg = GemInfo {
                    handle: gem.handle,
                    pad,
                    size: 0,
                };
                let r = nova::gem_info_raw(render, &mut arg);
                let what = format!("GEM_INFO({}) with pad {pad:#x}", gem.handle);
                check(expect_errno(&what, &r, &[Errno::INVAL]));
            }
            let info = nova::gem_info(render, gem.handle);
            if info != Ok(gem.size) {
                check(Err(format!(
                    "GEM_INFO({}) without pad gave {}, expected Ok({})",
                    gem.handle,
                    describe(&info),
                    gem.size
                )));
            }
            if let Err(e) = render.gem_close(gem.handle) {
                check(Err(format!("GEM_CLOSE({}): {}", gem.handle, errno_name(e))));
            }
        }
        "ioctl_past_table_einval" => {
            for nr in [nova::NUM_IOCTLS, 0x5f] {
                let past = DriverIoctl::<[u8; 16]>::read_write(nr, "past the table");
                for (kind, card) in [("render", render), ("primary", primary)] {
                    let r = card.ioctl(past, &mut [0u8; 16]);
                    let what = format!("ioctl {:#x} on the {kind} node", past.opcode());
                    check(expect_errno(&what, &r, &[Errno::INVAL]));
                }
            }
        }
        "unauthenticated_primary_eacces" => {
            let path = primary.path().ok_or("the primary file has no path")?;
            // A second file of the primary node while the first (the master) is open: not
            // authenticated, unless its opener has CAP_SYS_ADMIN (drm_file_alloc()), which
            // init's root has. So open it with that capability out of the effective set.
            let other = drm_check::open_without_sys_admin(path)?;
            let r = nova::gem_create(&other, 4096);
            check(expect_errno(
                "GEM_CREATE on a second primary file",
                &r,
                &[Errno::ACCESS],
            ));
            let r = nova::gem_info(&other, 1);
            check(expect_errno(
                "GEM_INFO on a second primary file",
                &r,
                &[Errno::ACCESS],
            ));
            let r = nova::vram_bar_size(&other);
            if r.is_err() {
                check(Err(format!(
                    "GETPARAM(VRAM_BAR_SIZE) on a second primary file: {} (it needs no \
                     authentication)",
                    describe(&r)
                )));
            }
        }
        "master_primary_create" => {
            let gem = nova::gem_create(primary, 5000)
                .map_err(|e| format!("GEM_CREATE(5000) on the master: {}", errno_name(e)))?;
            let info = nova::gem_info(primary, gem.handle);
            if info != Ok(gem.size) {
                check(Err(format!(
                    "GEM_INFO({}) on the master gave {}, expected Ok({})",
                    gem.handle,
                    describe(&info),
                    gem.size
                )));
            }
            if let Err(e) = primary.gem_close(gem.handle) {
                check(Err(format!(
                    "GEM_CLOSE({}) on the master: {}",
                    gem.handle,
                    errno_name(e)
                )));
            }
        }
        other => unreachable!("no refused call {other}"),
    }
    verdict(problems)
}

/// The tests of one expected GPU (`label`), reported on `run`.
fn device_tests(rig: &mut Rig, run: &mut Planned, label: &str, m: Option<&Matched>) {
    let name = |t: &str| format!("{label}_{t}");
    let Some(m) = m else {
        for t in DEVICE_TESTS {
            run.skip(&name(t), "no such device bound (test bound_devices)");
        }
        return;
    };
    let nodes = test_nodes(rig, m);
    run.result(&name("nodes"), nodes);
    let files = match Files::open(&m.device) {
        Ok(f) => f,
        Err(e) => {
            for t in &DEVICE_TESTS[1..] {
                run.skip(&name(t), &format!("cannot open the nodes: {e}"));
            }
            return;
        }
    };
    let page = rig.page;
    for t in &DEVICE_TESTS[1..] {
        let res = match *t {
            "getparam" => rig.quiet(&m.dev, || check_getparam(&files, &m.expect)),
            "gem_create_info_close" => {
                rig.quiet(&m.dev, || check_gem_create_info_close(&files, page))
            }
            refused => rig.quiet(&m.dev, || refused_calls(refused, &files)),
        };
        run.result(&name(t), res);
    }
}

/// The render node of `device` answers GETPARAM VRAM_BAR_SIZE with `bar1`.
fn answers(device: &Device, bar1: u64) -> Result<(), String> {
    let card = device.open().map_err(|e| e.to_string())?;
    match nova::vram_bar_size(&card) {
        Ok(v) if v == bar1 => Ok(()),
        got => Err(format!(
            "GETPARAM(VRAM_BAR_SIZE): {}, expected Ok({bar1})",
            describe(&got)
        )),
    }
}

fn test_open_file_pins_module(rig: &mut Rig, m: &Matched) -> Result<(), String> {
    let file = m.device.open().map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    if kmod::rmmod(&rig.module).is_ok() {
        problems.push(format!("rmmod succeeded with a DRM file of {DRIVER} open"));
    }
    if !kmod::is_loaded(&rig.module_name) {
        problems.push(format!("{} is no longer in /proc/modules", rig.module_name));
    }
    let devs = [m.dev.clone()];
    problems.extend(rig.log(&Want::nothing(&devs), ABSENCE_WAIT).err());
    drop(file);
    problems.extend(
        rig.log(&Want::nothing(&devs), SETTLE)
            .map_err(|e| format!("after closing the file: {e}"))
            .err(),
    );
    if problems.is_empty() {
        problems.extend(answers(&m.device, m.expect.bar1).err());
    }
    verdict(problems)
}

fn unbind_bind_cycles(rig: &mut Rig, m: &Matched, cycles: u32) -> Result<(), String> {
    let bdf = m.dev.address.to_string();
    let devs = [m.dev.clone()];
    let mut device = nodes_present(rig, m.dev.address, STEP_WAIT)?;
    for cycle in 1..=cycles {
        let fail = |what: &str, e: String| format!("cycle {cycle}, {what}: {e}");
        let unbound = rig.bus.unbind(DRIVER, &bdf);
        rig.step(&Want::removal(&devs), unbound)
            .and_then(|()| nodes_gone(m.dev.address, &device.nodes))
            .map_err(|e| fail("unbind", e))?;
        let bound = rig.bus.bind(DRIVER, &bdf);
        rig.step(&Want::probe(&devs), bound)
            .and_then(|()| {
                device = nodes_present(rig, m.dev.address, STEP_WAIT)?;
                answers(&device, m.expect.bar1)
            })
            .map_err(|e| fail("bind", e))?;
    }
    Ok(())
}

fn module_cycles(rig: &mut Rig, matched: &[&Matched], cycles: u32) -> Result<(), String> {
    let devs: Vec<Dev> = matched.iter().map(|m| m.dev.clone()).collect();
    let mut devices: Vec<Device> = matched.iter().map(|m| m.device.clone()).collect();
    let module = rig.module.clone();
    for cycle in 1..=cycles {
        let fail = |what: &str, e: String| format!("cycle {cycle}, {what}: {e}");
        rig.step(&Want::removal(&devs), kmod::rmmod(&module))
            .and_then(|()| {
                for d in &devices {
                    nodes_gone(d.address, &d.nodes)?;
                }
                module_unloaded(rig)
            })
            .map_err(|e| fail("rmmod", e))?;
        rig.step(&Want::probe(&devs), kmod::insmod(&module))
            .and_then(|()| {
                for (d, m) in devices.iter_mut().zip(matched) {
                    *d = nodes_present(rig, m.dev.address, STEP_WAIT)?;
                    answers(d, m.expect.bar1)?;
                }
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

/// Prints a line of the current test and makes sure it left (the harness acts on some).
fn say(run: &Planned, msg: &str) {
    run.diag(msg);
    let _ = std::io::stdout().flush();
}

/// The one GPU bound to `nova` (with its nodes), waiting up to `wait` for it.
fn the_one_gpu(rig: &Rig, wait: Duration) -> Result<Device, String> {
    let start = Instant::now();
    loop {
        let found = bound_now()?;
        if let [d] = &found[..] {
            let left = wait.saturating_sub(start.elapsed()).max(STEP_WAIT);
            return nodes_present(rig, d.address, left);
        }
        if start.elapsed() > wait {
            let names: Vec<String> = found.iter().map(|d| d.address.to_string()).collect();
            return Err(format!(
                "{} devices bound to {DRIVER} ({}), expected one",
                found.len(),
                names.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One hot-unplug cycle (`k`): its problems, and whether the GPU is bound again, so that
/// another cycle can run.
fn hotplug_cycle(rig: &mut Rig, run: &Planned, k: u32, e: &Expect, n: u32) -> (Vec<String>, bool) {
    let device = match the_one_gpu(rig, STEP_WAIT) {
        Ok(d) => d,
        Err(e) => return (vec![e], false),
    };
    let old = Dev {
        address: device.address,
        probe_line: e.probe_line(device.address),
    };
    let opened = Files::open(&device).and_then(|f| {
        let gem = nova::gem_create(&f.render, 4096)
            .map_err(|e| format!("GEM_CREATE(4096): {}", errno_name(e)))?;
        Ok((f, gem))
    });
    let (files, gem) = match opened {
        Ok(x) => x,
        Err(e) => return (vec![e], true),
    };
    let mut workers = match Workers::spawn(&files.render, n, WORKER_LIMIT_S) {
        Ok(w) => w,
        Err(e) => return (vec![e], true),
    };
    if !workers.wait_started(Instant::now() + HANG) {
        let ends: Vec<String> = workers.ends().iter().map(|e| format!("{e:?}")).collect();
        workers.kill();
        return (
            vec![format!(
                "not every worker got going before the unplug (ends: {})",
                ends.join(", ")
            )],
            true,
        );
    }
    let mut problems = Vec::new();
    let mut texts = Vec::new();
    // The cue: the harness unplugs the GPU now.
    say(run, &format!("hotplug cycle {k}: {UNPLUG_CUE}"));
    let cued = Instant::now();
    let sysfs_dir = Path::new(discover::SYS)
        .join("bus/pci/devices")
        .join(old.address.to_string());
    while sysfs_dir.exists() && cued.elapsed() < HOTPLUG_WAIT {
        workers.pump();
        std::thread::sleep(Duration::from_millis(2));
    }
    if sysfs_dir.exists() {
        workers.kill();
        problems.push(format!(
            "{} still present {} s after the cue",
            old.address,
            HOTPLUG_WAIT.as_secs()
        ));
        return (problems, false);
    }
    let gone = Instant::now();
    say(
        run,
        &format!(
            "hotplug cycle {k}: {GONE_CUE} {:.3} s after the cue",
            cued.elapsed().as_secs_f64()
        ),
    );
    // The workers end on ENODEV.
    if !workers.wait_ended(Instant::now() + HANG) {
        problems.push(format!(
            "workers still running {} s after the GPU went",
            HANG.as_secs()
        ));
    }
    problems.extend(workers.reap());
    let iterations: Vec<String> = workers
        .ends()
        .iter()
        .map(|end| {
            end.as_ref()
                .map_or("-".into(), |e| e.iterations.to_string())
        })
        .collect();
    // The removal's line, then ENODEV on the files still open.
    problems.extend(rig.gather(&mut texts, STEP_WAIT, SETTLE, |t| count_dev(t, &old).2 >= 1));
    let h = gem.handle;
    let calls: [(&str, Result<(), Errno>); 8] = [
        (
            "render GETPARAM",
            nova::vram_bar_size(&files.render).map(drop),
        ),
        (
            "render GEM_INFO",
            nova::gem_info(&files.render, h).map(drop),
        ),
        (
            "render GEM_CREATE",
            nova::gem_create(&files.render, 4096).map(drop),
        ),
        ("render GEM_CLOSE", files.render.gem_close(h)),
        ("render VERSION", files.render.version().map(drop)),
        (
            "primary GETPARAM",
            nova::vram_bar_size(&files.primary).map(drop),
        ),
        (
            "primary GEM_CREATE",
            nova::gem_create(&files.primary, 4096).map(drop),
        ),
        ("primary VERSION", files.primary.version().map(drop)),
    ];
    for (what, r) in &calls {
        problems.extend(expect_errno(what, r, &[Errno::NODEV]).err());
    }
    // Nothing released while the files are open; once they are closed, once.
    problems.extend(rig.gather(&mut texts, ABSENCE_WAIT, SETTLE, |_| false));
    if released_count(&texts) != 0 {
        problems.push(format!("`{RELEASED}` before the last file was closed"));
    }
    drop(files);
    problems.extend(rig.gather(&mut texts, STEP_WAIT, SETTLE, |t| released_count(t) >= 1));
    // The GPU plugged back: bound again, its probe line once.
    let back = the_one_gpu(rig, HOTPLUG_WAIT);
    let mut want = Want {
        devices: vec![(old.clone(), 0, 1)],
        released: 1,
    };
    let device = match back {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!(
                "not bound again within {} s: {e}",
                HOTPLUG_WAIT.as_secs()
            ));
            problems.extend(rig.gather(&mut texts, Duration::ZERO, SETTLE, |_| true));
            problems.extend(log_problems(&texts, &want));
            return (problems, false);
        }
    };
    let new = Dev {
        address: device.address,
        probe_line: e.probe_line(device.address),
    };
    problems.extend(rig.gather(&mut texts, STEP_WAIT, SETTLE, |t| count_dev(t, &new).0 >= 1));
    if new.address == old.address {
        want.devices[0].1 = 1;
    } else {
        want.devices.push((new.clone(), 1, 0));
    }
    problems.extend(log_problems(&texts, &want));
    run.diag(&format!(
        "hotplug cycle {k}: workers' iterations {}; bound again as {} {:.3} s after it went",
        iterations.join(" "),
        new.address,
        gone.elapsed().as_secs_f64()
    ));
    // It works.
    problems.extend(answers(&device, e.bar1).err());
    let works = device.open().map_err(|e| e.to_string()).and_then(|card| {
        let g = nova::gem_create(&card, 4096)
            .map_err(|e| format!("GEM_CREATE after the re-plug: {}", errno_name(e)))?;
        card.gem_close(g.handle)
            .map_err(|e| format!("GEM_CLOSE after the re-plug: {}", errno_name(e)))
    });
    problems.extend(works.err());
    (problems, true)
}

fn test_module_gone(rig: &mut Rig) -> Result<(), String> {
    if !kmod::is_loaded(&rig.module_name) {
        return Err(format!("{} was not loaded any more", rig.module_name));
    }
    let bound = bound_now()?;
    let devs: Vec<Dev> = bound
        .iter()
        .map(|d| Dev {
            address: d.address,
            probe_line: String::new(),
        })
        .collect();
    rig.step(&Want::removal(&devs), kmod::rmmod(&rig.module))?;
    module_unloaded(rig)?;
    let dir = discover::driver_dir(Path::new(discover::SYS));
    if dir.exists() {
        return Err(format!("{} still exists", dir.display()));
    }
    for d in &bound {
        nodes_gone(d.address, &d.nodes)?;
    }
    let left = nova_nodes_in_dev_dri()?;
    if !left.is_empty() {
        return Err(format!("nodes of {DRIVER} left: {left:?}"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let usage = "usage: nova_test --module PATH/nova.ko [--expect CHIP:BAR1:REV]... \
                 [--expect-line TEXT]... [--cycles N] [--module-cycles N] [--workers N] \
                 [--hotplug-cycles N]";
    let args = match guest::start(SUITE, Some(usage), parse) {
        Ok(Mode::Test(a)) => a,
        Ok(Mode::Worker(limit)) => {
            return gem_worker::worker_main(limit, gem_worker::nova_iteration)
        }
        Err(code) => return code,
    };
    // From the oldest record: the probe lines may predate this program.
    let kmsg = match Kmsg::open_for(SUITE, false) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let mut rig = Rig {
        kmsg,
        bus: Bus::new("pci"),
        module_name: module_name(&args.module).expect("checked by parse"),
        module: args.module.clone(),
        page: rustix::param::page_size() as u64,
    };
    let plan = plan(&args);
    let mut run = Planned::start(SUITE, plan);
    let start = Instant::now();
    let insmod = if kmod::is_loaded(&rig.module_name) {
        run.diag(&format!("{} was loaded already", rig.module_name));
        Ok(())
    } else {
        kmod::insmod(&args.module)
    };
    let mut history = Vec::new();
    let (bound, matched) = test_bound_devices(&args, &insmod, &mut rig, &mut history, &run);
    run.result("bound_devices", bound);

    // The log since boot, until every expected line is there.
    let wanted: Vec<String> = matched
        .iter()
        .flatten()
        .map(|m| m.dev.probe_line.clone())
        .chain(args.expect_lines.iter().cloned())
        .collect();
    let mut problems = rig.gather(&mut history, STEP_WAIT, SETTLE, |t| {
        wanted
            .iter()
            .all(|w| t.iter().any(|x| x.contains(w.as_str())))
    });
    problems.extend(test_probe_lines(&args, &history, &matched));
    run.result("probe_lines", verdict(problems));

    for (label, m) in labels(&args.expects).iter().zip(&matched) {
        device_tests(&mut rig, &mut run, label, m.as_ref());
    }
    let found: Vec<&Matched> = matched.iter().flatten().collect();
    let first = found.iter().min_by_key(|m| m.dev.address).copied();
    let no_gpu = "no expected GPU is bound (test bound_devices)";
    if args.module_cycles > 0 {
        match first {
            Some(m) => {
                let res = test_open_file_pins_module(&mut rig, m);
                run.result("open_file_pins_module", res);
            }
            None => run.skip("open_file_pins_module", no_gpu),
        }
    }
    if args.cycles > 0 {
        match first {
            Some(m) => {
                let t = Instant::now();
                let res = unbind_bind_cycles(&mut rig, m, args.cycles);
                run.diag(&format!(
                    "{} unbind/bind cycles of {} in {:.1} s",
                    args.cycles,
                    m.dev.address,
                    t.elapsed().as_secs_f64()
                ));
                run.result("unbind_bind_cycles", res);
            }
            None => run.skip("unbind_bind_cycles", no_gpu),
        }
    }
    if args.module_cycles > 0 {
        if found.is_empty() {
            run.skip("module_unload_load_cycles", no_gpu);
        } else {
            let t = Instant::now();
            let res = module_cycles(&mut rig, &found, args.module_cycles);
            run.diag(&format!(
                "{} module cycles in {:.1} s",
                args.module_cycles,
                t.elapsed().as_secs_f64()
            ));
            run.result("module_unload_load_cycles", res);
        }
    }
    let mut stopped: Option<String> = first.is_none().then(|| no_gpu.to_string());
    for k in 1..=args.hotplug_cycles {
        let name = format!("hotplug_cycle_{k}");
        if let Some(why) = &stopped {
            run.skip(&name, why);
            continue;
        }
        let (problems, go_on) = hotplug_cycle(&mut rig, &run, k, &args.expects[0], args.workers);
        if !go_on {
            stopped = Some(format!("cycle {k} did not end with the GPU bound"));
        }
        run.result(&name, verdict(problems));
    }
    let gone = test_module_gone(&mut rig);
    run.result("module_gone", gone);
    run.diag(&format!("elapsed: {:.1} s", start.elapsed().as_secs_f64()));
    ExitCode::from(run.finish() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn addr(s: &str) -> PciAddress {
        s.parse().unwrap()
    }

    fn gh100() -> Expect {
        Expect {
            chip: Chipset(0x180),
            bar1: 128 << 30,
            revision: Revision(0xa1),
        }
    }

    #[test]
    fn numbers_are_decimal_or_hex() {
        assert_eq!(parse_number("4096", "x"), Ok(4096));
        assert_eq!(parse_number("0x1000", "x"), Ok(4096));
        assert_eq!(parse_number("0XA1", "x"), Ok(0xa1));
        for bad in ["", "0x", "-1", "+1", "0x+1", "12k", "0xg", "1 "] {
            let e = parse_number(bad, "REV").unwrap_err();
            assert!(e.starts_with("REV wants a number"), "{bad}: {e}");
        }
        assert!(parse_number("0x10000000000000000", "x").is_err());
    }

    #[test]
    fn expectations_name_a_chip_a_bar1_size_and_a_revision() {
        assert_eq!(parse_expect("gh100:0x2000000000:0xa1"), Ok(gh100()));
        assert_eq!(parse_expect("GH100:137438953472:161"), Ok(gh100()));
        let tu = parse_expect("tu102:268435456:0xa1").unwrap();
        assert_eq!(tu.chip, Chipset(0x162));
        assert_eq!(tu.name(), "tu102");
        assert_eq!(tu.to_string(), "tu102:0x10000000:0xa1");
        for (bad, why) in [
            ("gh100", "wants CHIP:BAR1:REV"),
            ("gh100:1:2:3", "wants CHIP:BAR1:REV"),
            (
                "gv100:0x10000000:0xa1",
                "unknown chip 'gv100' (one of tu102, ",
            ),
            ("dead:0x10000000:0xa1", "unknown chip 'dead'"),
            ("gh100:big:0xa1", "BAR1 wants a number"),
            ("gh100:0:0xa1", "BAR1 is 0"),
            ("gh100:4096:0x1a1", "REV 0x1a1 is more than a byte"),
        ] {
            let e = parse_expect(bad).unwrap_err();
            assert!(e.starts_with(&format!("--expect '{bad}': ")), "{e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn probe_lines_are_written_as_nova_prints_them() {
        assert_eq!(
            gh100().probe_line(addr("0000:01:00.0")),
            "nova 0000:01:00.0: NVIDIA GH100 (Hopper), revision A1, BAR1 128 GiB: DRM device \
             registered"
        );
        let ad = parse_expect("ad102:0x10000000:0xa1").unwrap();
        assert_eq!(
            ad.probe_line(addr("0000:02:00.0")),
            "nova 0000:02:00.0: NVIDIA AD102 (Ada), revision A1, BAR1 256 MiB: DRM device \
             registered"
        );
        let gb = parse_expect("gb100:0x4000000000:0xb2").unwrap();
        assert_eq!(
            gb.probe_line(addr("0000:03:00.0")),
            "nova 0000:03:00.0: NVIDIA GB100 (Blackwell), revision B2, BAR1 256 GiB: DRM \
             device registered"
        );
    }

    #[test]
    fn command_lines_give_tests_or_a_worker() {
        let a = parse(argv(
            "--module /lib/modules/nova.ko --expect gh100:0x2000000000:0xa1 --cycles 0x10 \
             --module-cycles 20 --workers 4 --hotplug-cycles 20",
        ));
        assert_eq!(
            a,
            Ok(Mode::Test(Args {
                module: "/lib/modules/nova.ko".into(),
                expects: vec![gh100()],
                expect_lines: vec![],
                cycles: 16,
                module_cycles: 20,
                workers: 4,
                hotplug_cycles: 20,
            }))
        );
        let mut v = argv("--module nova.ko --expect-line");
        v.push("nova 0000:01:00.0: chipset 0x140 (Volta), revision A1: not supported".into());
        let Ok(Mode::Test(a)) = parse(v) else {
            panic!()
        };
        assert_eq!(
            (a.expects.len(), a.expect_lines.len(), a.cycles, a.workers),
            (0, 1, 0, 4)
        );
        assert_eq!(parse(argv("--worker 120")), Ok(Mode::Worker(120)));
        for (bad, why) in [
            ("--cycles 3", "--module is required"),
            ("--module nova.o", "not a .ko file"),
            ("--module nova.ko --workers 0", "--workers wants at least 1"),
            ("--module nova.ko --bogus 1", "unknown argument '--bogus'"),
            ("--module nova.ko --cycles 1", "need a GPU"),
            ("--module nova.ko --module-cycles 1", "need a GPU"),
            (
                "--module nova.ko --hotplug-cycles 1",
                "exactly one --expect",
            ),
            (
                "--module nova.ko --expect tu102:0x10000000:0xa1 --expect gb202:0x10000000:0xa1 \
                 --hotplug-cycles 1",
                "exactly one --expect",
            ),
            ("--module nova.ko --cycles 0x100000000", "too large"),
            ("--module nova.ko --expect gh100", "wants CHIP:BAR1:REV"),
            (
                "--module nova.ko --expect-line",
                "--expect-line needs a value",
            ),
            (
                "--module nova.ko --expect-line  ",
                "--expect-line needs a value",
            ),
        ] {
            let e = parse(argv(bad)).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = parse(vec![
            "--module".into(),
            "nova.ko".into(),
            "--expect-line".into(),
            " ".into(),
        ]);
        assert_eq!(e, Err("--expect-line wants a text".into()));
    }

    #[test]
    fn labels_are_chips_numbered_when_repeated() {
        let tu = parse_expect("tu102:0x10000000:0xa1").unwrap();
        let gb = parse_expect("gb202:0x10000000:0xa1").unwrap();
        assert_eq!(labels(&[tu, gb]), ["tu102", "gb202"]);
        assert_eq!(
            labels(&[tu, gb, tu, tu]),
            ["tu102_0", "gb202", "tu102_1", "tu102_2"]
        );
        assert!(labels(&[]).is_empty());
    }

    #[test]
    fn the_plan_has_what_the_command_line_asks_for() {
        let Ok(Mode::Test(refusal)) = parse(argv("--module nova.ko")) else {
            panic!()
        };
        assert_eq!(
            plan(&refusal),
            ["bound_devices", "probe_lines", "module_gone"]
        );
        let Ok(Mode::Test(two)) = parse(argv(
            "--module nova.ko --expect tu102:0x10000000:0xa1 --expect gb202:0x10000000:0xa1",
        )) else {
            panic!()
        };
        let p = plan(&two);
        assert_eq!(p.len(), 2 + 2 * DEVICE_TESTS.len() + 1);
        assert_eq!(p[2], "tu102_nodes");
        assert_eq!(p[3], "tu102_getparam");
        assert_eq!(p[2 + DEVICE_TESTS.len()], "gb202_nodes");
        assert_eq!(p[p.len() - 2], "gb202_master_primary_create");
        let Ok(Mode::Test(stress)) = parse(argv(
            "--module nova.ko --expect gh100:0x2000000000:0xa1 --cycles 100 --module-cycles 20 \
             --workers 4 --hotplug-cycles 3",
        )) else {
            panic!()
        };
        let p = plan(&stress);
        let tail: Vec<&str> = p[2 + DEVICE_TESTS.len()..]
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail,
            [
                "open_file_pins_module",
                "unbind_bind_cycles",
                "module_unload_load_cycles",
                "hotplug_cycle_1",
                "hotplug_cycle_2",
                "hotplug_cycle_3",
                "module_gone"
            ]
        );
        let mut names = p.clone();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), p.len(), "every test once");
        // The slices device_tests skips by.
        assert_eq!(DEVICE_TESTS[0], "nodes");
        assert_eq!(DEVICE_TESTS[1], "getparam");
        assert_eq!(DEVICE_TESTS[2], "gem_create_info_close");
    }

    #[test]
    fn nova_lines_are_counted_per_device() {
        let a = Dev {
            address: addr("0000:01:00.0"),
            probe_line: gh100().probe_line(addr("0000:01:00.0")),
        };
        let b = Dev {
            address: addr("0000:02:00.0"),
            probe_line: gh100().probe_line(addr("0000:02:00.0")),
        };
        let log = texts(&[
            &a.probe_line,
            "nova 0000:02:00.0: NVIDIA GH100 (Hopper), revision A2, BAR1 128 GiB: DRM device registered",
            "[drm] Initialized nova 0.0.0 0 for 0000:01:00.0 on minor 0",
            "nova 0000:01:00.0: unbind",
            "nova 0000:02:00.0: unbind",
            "nova: DRM device released",
            "nova 0000:03:00.0: unbind",
        ]);
        let (exact, other, unbind) = count_dev(&log, &a);
        assert_eq!((exact, other.len(), unbind), (1, 0, 1));
        let (exact, other, unbind) = count_dev(&log, &b);
        assert_eq!((exact, unbind), (0, 1));
        assert_eq!(other, [log[1].clone()]);
        assert_eq!(released_count(&log), 1);
        assert!(crash_lines(&log).is_empty());
        assert_eq!(log.iter().filter(|t| is_probe_line(t)).count(), 2);

        // One device probed and removed: as wanted.
        let mut want = Want::probe(std::slice::from_ref(&a));
        want.devices[0].2 = 1;
        want.released = 1;
        assert!(covers(&log, &want));
        assert!(log_problems(&log, &want).is_empty());
        // Both: b's line says something else.
        let both = [a.clone(), b.clone()];
        assert!(!covers(&log, &Want::probe(&both)));
        let p = log_problems(&log, &Want::probe(&both));
        assert_eq!(
            p,
            [
                "`nova 0000:01:00.0: unbind` printed 1 times, expected 0".to_string(),
                format!("`{}` printed 0 times, expected 1", b.probe_line),
                format!("unexpected probe line `{}`", log[1]),
                "`nova 0000:02:00.0: unbind` printed 1 times, expected 0".to_string(),
                "`nova: DRM device released` printed 1 times, expected 0".to_string(),
            ]
        );
        // A removal of both wants two releases.
        assert_eq!(Want::removal(&both).released, 2);
        assert_eq!(Want::nothing(&both).devices[1], (b.clone(), 0, 0));
        // Nothing, but a warning.
        let warn = texts(&["WARNING: CPU: 0 PID: 1 at drivers/gpu/drm/drm_gem.c:1 x"]);
        assert_eq!(
            log_problems(&warn, &Want::nothing(&both)),
            [
                "kernel WARNING/BUG/Oops printed 1 times, the first `WARNING: CPU: 0 PID: 1 at \
              drivers/gpu/drm/drm_gem.c:1 x`"
            ]
        );
        // A device whose probe lines are all unexpected.
        let any = Dev {
            address: a.address,
            probe_line: String::new(),
        };
        let p = log_problems(&log, &Want::removal(std::slice::from_ref(&any)));
        assert_eq!(p, [format!("unexpected probe line `{}`", log[0])]);
        assert!(log_problems(&texts(&[""]), &Want::nothing(&[any])).is_empty());
    }

    #[test]
    fn devices_pair_with_expectations_by_their_probe_lines() {
        let tu = parse_expect("tu102:0x10000000:0xa1").unwrap();
        let gh_small = parse_expect("gh100:0x10000000:0xa1").unwrap();
        let (a, b, c) = (
            addr("0000:01:00.0"),
            addr("0000:02:00.0"),
            addr("0000:03:00.0"),
        );
        let found = vec![
            (a, Ok(gh100().probe_line(a))),
            (b, Ok(tu.probe_line(b))),
            (c, Ok(gh_small.probe_line(c))),
        ];
        // Exact lines first: the small-BAR GH100 goes with its own expectation.
        let (p, problems) = pair(&[gh_small, tu, gh100()], &found);
        assert_eq!(p, [Some(2), Some(1), Some(0)]);
        assert!(problems.is_empty(), "{problems:?}");
        // By chip when the line says something else: still paired (probe_lines then fails).
        let odd = Expect {
            revision: Revision(0xb1),
            ..gh100()
        };
        let (p, problems) = pair(&[odd], &found[..1]);
        assert_eq!((p, problems.len()), (vec![Some(0)], 0));
        // The chip is read from the device's own line: GH100's line at another address, or
        // GH100 as a prefix of another chip's name, is not GH100.
        let elsewhere = vec![(b, Ok(gh100().probe_line(a)))];
        assert_eq!(pair(&[gh100()], &elsewhere).0, [None]);
        let gh1000 = vec![(a, Ok(format!("{DRIVER} {a}: NVIDIA GH1000 (Hopper), x")))];
        assert_eq!(pair(&[gh100()], &gh1000).0, [None]);
        // Missing, unexpected and silent devices.
        let found = vec![
            (a, Ok(tu.probe_line(a))),
            (
                b,
                Err("bound, but no probe line in the kernel log".to_string()),
            ),
        ];
        let (p, problems) = pair(&[gh100()], &found);
        assert_eq!(p, [None]);
        assert_eq!(
            problems,
            [
                "0000:01:00.0: bound (`NVIDIA TU102 (Turing), revision A1, BAR1 256 MiB`), but no \
                 --expect names it",
                "0000:02:00.0: bound, but no probe line in the kernel log",
                "no bound device for --expect gh100:0x2000000000:0xa1",
            ]
        );
        assert_eq!(pair(&[], &[]), (vec![], vec![]));
    }

    #[test]
    fn the_last_probe_line_of_an_address_is_its() {
        let (a, b) = (addr("0000:01:00.0"), addr("0000:02:00.0"));
        let log = [
            gh100().probe_line(a),
            format!("{DRIVER} {a}: unbind"),
            gh100().probe_line(b),
            parse_expect("gh100:4096:0xa1").unwrap().probe_line(a),
        ]
        .map(String::from);
        assert_eq!(last_probe_line(&log, a), Some(&log[3]));
        assert_eq!(last_probe_line(&log, b), Some(&log[2]));
        assert_eq!(last_probe_line(&log[..2], b), None);
        assert_eq!(
            probe_says(&log[2], b),
            "NVIDIA GH100 (Hopper), revision A1, BAR1 128 GiB"
        );
    }

    #[test]
    fn nodes_are_judged_by_kind_count_and_driver() {
        let a = addr("0000:01:00.0");
        let n = |kind: NodeKind, number| Node {
            kind,
            number,
            path: PathBuf::from(format!("/nonexistent/{}{number}", kind.prefix())),
        };
        assert!(node_problems(a, &[], false, None).is_empty());
        let one = [n(NodeKind::Primary, 0)];
        assert_eq!(
            node_problems(a, &one, false, None),
            ["0000:01:00.0 still has nodes: /nonexistent/card0"]
        );
        assert_eq!(
            node_problems(a, &one, true, Some("nova")),
            [
                "0000:01:00.0 has 0 render nodes (/nonexistent/card0)",
                "/nonexistent/card0 is not a character device"
            ]
        );
        let p = node_problems(a, &[], true, Some("vfio-pci"));
        assert_eq!(
            p[0],
            "0000:01:00.0 is bound to Some(\"vfio-pci\"), not nova"
        );
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn the_cues_are_printed_only_where_meant() {
        // The harness acts on any line containing a cue: no failure message may contain one.
        for msg in [
            "not every worker got going before the unplug (ends: None)",
            "0000:01:00.0 still present 30 s after the cue",
            "workers still running 30 s after the GPU went",
            "not bound again within 30 s: x",
        ] {
            assert!(
                !msg.contains(UNPLUG_CUE) && !msg.contains(GONE_CUE),
                "{msg}"
            );
        }
        assert!(format!("hotplug cycle 1: {UNPLUG_CUE}").contains("waiting for unplug"));
        assert!(format!("hotplug cycle 1: {GONE_CUE} 5.000 s").contains("loop: gone"));
    }
}
