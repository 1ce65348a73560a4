//! `gpu_faults`: Nova when the GPU misbehaves. The harness makes the GPU model fail on the
//! guest's request; this program keeps ioctls going, asks for the fault, watches it happen and
//! checks what Nova and the DRM core do about it. Reports KTAP (suite `gpu_faults`).
//!
//! ```text
//! gpu_faults [--workers N]
//! ```
//! The boot has three GPUs bound to `nova`: `gpu0`, `gpu1` and `gpu2`, each behind root port
//! `0000:00:0<N+1>.0` (QEMU's `rp<N+1>`; the guest kernel numbers the buses behind them as it
//! likes). To ask for a fault the program prints `# host-fault: gpuN ACTION`, ACTION one of:
//! - `fall-off-bus`: the model answers every read with all-ones and drops writes (`recover`
//!   undoes it);
//! - `kill`: the model process is killed with SIGKILL; QEMU then answers the device's reads
//!   with all-ones for the rest of the boot (QEMU 11.1 cannot hot-unplug a vfio-user device
//!   whose server died: `device_del` aborts it, so the GPU stays dead).
//!
//! The program does not trust that the harness acted: it reads the GPU's vendor and device ID
//! from its config space (`/sys/bus/pci/devices/<BDF>/config`, which reads through to the
//! model each time) until they show the fault (all-ones) or the recovery (the IDs read before).
//!
//! The stub's only hardware accesses are its probe's reads of `NV_PMC_BOOT_0`/`BOOT_42`: its
//! ioctls answer from what the probe stored. So a dead GPU must not change their answers until
//! it is unbound (then `ENODEV`), and the next probe is where Nova notices it, with one line,
//! `BOOT0 reads 0xffffffff: the GPU does not answer (gone or not powered)`.
//!
//! KTAP tests, in order (every one also fails on a kernel `WARNING:`/`BUG:`/`Oops` line):
//! - `fall_off_bus_under_load` (gpu0): `--workers` child processes (default 4) loop GEM
//!   create/info/close on a shared render file; `fall-off-bus`; for [`LOAD_TIME`] every worker
//!   keeps going and GETPARAM and GEM_INFO answer as before; then sysfs `unbind`: every worker
//!   ends on `ENODEV`, every ioctl on the open files is `ENODEV`, `unbind` is printed once and
//!   `DRM device released` once the files are closed;
//! - `off_bus_bind_refused` (gpu0): sysfs `bind` fails with `ENODEV`, Nova prints its
//!   does-not-answer line once and registers nothing;
//! - `recover_and_rebind` (gpu0): `recover`; `bind` works, the probe line once, the nodes answer
//!   GETPARAM with BAR1's length (sysfs `resource`) and a GEM create/close;
//! - `model_killed_under_load` (gpu1): as `fall_off_bus_under_load` with `kill`, then `bind`
//!   refused as in `off_bus_bind_refused`;
//! - `model_killed_during_probe` (gpu2): unbound, then `kill` asked for and `bind` written at
//!   once, so that the model dies while the probe runs. Either the probe read BOOT0 before
//!   the kill (bound: its probe line, GETPARAM answers, and unbind then works) or after
//!   (refused as above); either way no crash, and a later `bind` is refused. The diagnostics
//!   say which.
//!
//! Child processes rather than threads: the guest kernel has no futexes (see `guest::child`).

use drm_client::{errno_name, Card, Errno};
use guest::args::{self, Flags};
use guest::drm_check::expect_errno;
use guest::gem_worker::{self, end_problems, Workers, WORKER_FLAG};
use guest::kmsg::{self, Kmsg};
use guest::ktap::verdict;
use guest::sysfs::Bus;
use guest::Planned;
use nova::discover::{self, Device, PciAddress};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The KTAP suite name.
const SUITE: &str = "gpu_faults";
/// The driver.
const DRIVER: &str = nova::DRIVER_NAME;
/// The tests, in order.
const PLAN: [&str; 5] = [
    "fall_off_bus_under_load",
    "off_bus_bind_refused",
    "recover_and_rebind",
    "model_killed_under_load",
    "model_killed_during_probe",
];
/// What the program prints before a fault it asks the harness for.
const ASK: &str = "host-fault:";
/// How long the harness has to do what was asked, and a step to show its kernel lines.
const WAIT: Duration = Duration::from_secs(30);
/// How long the load runs on the faulty GPU before it is unbound.
const LOAD_TIME: Duration = Duration::from_secs(1);
/// How long the log must be quiet before a step's lines are counted.
const SETTLE: Duration = Duration::from_millis(50);
/// The most a worker may run (its `--worker` limit).
const WORKER_LIMIT_S: u64 = 120;
/// Kernel lines that fail any test.
const CRASH_MARKS: [&str; 4] = ["WARNING:", "BUG:", "Oops", "general protection fault"];
/// What Nova prints when a probe finds the GPU not answering.
const NO_ANSWER: &str = "BOOT0 reads 0xffffffff: the GPU does not answer (gone or not powered)";
/// What the PCI core prints when it cannot power up a device that reads all-ones.
const INACCESSIBLE: &str = "Unable to change power state from D3cold to D0, device inaccessible";
/// What Nova prints when a DRM device's data goes.
const RELEASED: &str = "nova: DRM device released";
/// A config-space dword of a device that does not answer.
const ALL_ONES: u32 = 0xffff_ffff;

/// The command line.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// The tests, with this many workers.
    Test { workers: u32 },
    /// A worker (`--worker SECONDS`).
    Worker(u64),
}

fn parse(argv: impl IntoIterator<Item = String>) -> Result<Mode, String> {
    let mut flags = Flags::new(argv);
    let mut workers = 4;
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--workers" => {
                workers = flags
                    .value(&flag)?
                    .parse()
                    .map_err(|e| format!("--workers: {e}"))?
            }
            WORKER_FLAG => {
                let limit = flags.value(&flag)?;
                return limit
                    .parse()
                    .map(Mode::Worker)
                    .map_err(|e| format!("{WORKER_FLAG}: {e}"));
            }
            other => return Err(args::unknown(other)),
        }
    }
    if workers == 0 {
        return Err("--workers: at least 1".into());
    }
    Ok(Mode::Test { workers })
}

/// How many of `texts` contain `needle`.
fn count(texts: &[String], needle: &str) -> usize {
    texts.iter().filter(|t| t.contains(needle)).count()
}

/// Nova's line for `address` that ends with `what`, as `dev_info!` prints it.
fn line_of(address: PciAddress, what: &str) -> String {
    format!("{DRIVER} {address}: {what}")
}

/// The probe line of `address` (its start: the chip and sizes follow).
fn probe_line(address: PciAddress) -> String {
    line_of(address, "NVIDIA ")
}

/// How often each line of a step must appear: `(needle, times)`; the problems, and the crash
/// lines, of `texts`.
fn lines_problems(texts: &[String], want: &[(String, usize)]) -> Vec<String> {
    let mut p: Vec<String> = want
        .iter()
        .filter_map(|(needle, n)| {
            let got = count(texts, needle);
            (got != *n).then(|| format!("`{needle}` printed {got} time(s), expected {n}"))
        })
        .collect();
    p.extend(
        texts
            .iter()
            .filter(|t| CRASH_MARKS.iter().any(|m| t.contains(m)))
            .map(|t| format!("kernel: {t}")),
    );
    p
}

/// The PCI address of `gpuN`: the one function behind its root port, `0000:00:0<N+1>.0`.
fn gpu_address(sys: &Path, n: usize) -> Result<PciAddress, String> {
    let port = sys
        .join("bus/pci/devices")
        .join(format!("0000:00:{:02x}.0", n + 1));
    let found: Vec<PciAddress> = std::fs::read_dir(&port)
        .map_err(|e| format!("{}: {e}", port.display()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    match found[..] {
        [a] => Ok(a),
        _ => Err(format!(
            "{} has {} PCI functions behind it, expected one",
            port.display(),
            found.len()
        )),
    }
}

/// The first config-space dword (device and vendor ID) of `address`, read from the device:
/// those four bytes only (each dword of the file is a read of the device).
fn config_id(address: PciAddress) -> Result<u32, String> {
    let path = PathBuf::from(discover::SYS)
        .join("bus/pci/devices")
        .join(address.to_string())
        .join("config");
    let mut id = [0u8; 4];
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut id))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(u32::from_le_bytes(id))
}

/// The length of BAR `bar` of `address` as the PCI core sized it (its line of the device's
/// `resource` file in sysfs: start, end and flags), 0 when unused.
fn bar_len(address: PciAddress, bar: usize) -> Result<u64, String> {
    let path = PathBuf::from(discover::SYS)
        .join("bus/pci/devices")
        .join(address.to_string())
        .join("resource");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    resource_len(&text, bar).ok_or_else(|| format!("{}: no line for BAR {bar}", path.display()))
}

/// The length of resource `index` in the text of a sysfs `resource` file.
fn resource_len(text: &str, index: usize) -> Option<u64> {
    let line = text.lines().nth(index)?;
    let mut n = line
        .split_whitespace()
        .map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok());
    let (start, end) = (n.next()??, n.next()??);
    Some(if end > start { end - start + 1 } else { 0 })
}

/// The guest: the kernel log and the PCI bus.
struct Rig {
    kmsg: Kmsg,
    bus: Bus,
    run: Planned,
}

impl Rig {
    /// Prints `msg` as a diagnostic line and makes sure it left (the harness acts on some).
    fn say(&self, msg: &str) {
        self.run.diag(msg);
        let _ = std::io::stdout().flush();
    }

    /// Asks the harness for `action` on `gpuN`, then waits until the config space of
    /// `address` reads `want`, calling `meanwhile` between reads; how long that took.
    fn fault(
        &self,
        (n, address): (usize, PciAddress),
        action: &str,
        want: u32,
        meanwhile: impl FnMut(),
    ) -> Result<Duration, String> {
        self.say(&format!("{ASK} gpu{n} {action}"));
        self.until(address, want, action, meanwhile)
    }

    /// Waits (up to [`WAIT`]) until the config space of `address` reads `want`, calling
    /// `meanwhile` between reads; how long that took.
    fn until(
        &self,
        address: PciAddress,
        want: u32,
        action: &str,
        mut meanwhile: impl FnMut(),
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let id = config_id(address)?;
            if id == want {
                return Ok(start.elapsed());
            }
            if start.elapsed() > WAIT {
                return Err(format!(
                    "after `{action}`, {address}'s config space reads {id:#010x} for {} s, \
                     not {want:#010x}",
                    WAIT.as_secs()
                ));
            }
            meanwhile();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Reads the log until each of `want` is there (or [`WAIT`] passed) and it is quiet for
    /// [`SETTLE`]; the texts, and the problems reading them.
    fn lines(&mut self, want: &[(String, usize)]) -> (Vec<String>, Vec<String>) {
        let got = kmsg::collect(&mut self.kmsg, WAIT, SETTLE, |t| {
            want.iter().all(|(needle, n)| count(t, needle) >= *n)
        });
        (got.texts, got.problems)
    }

    /// Reads the log for a step whose lines are `want`, and checks them.
    fn expect_lines(&mut self, want: &[(String, usize)]) -> Vec<String> {
        let (texts, mut p) = self.lines(want);
        p.extend(lines_problems(&texts, want));
        p
    }

    /// The device bound to `nova` at `address`, with its nodes.
    fn bound(&self, address: PciAddress) -> Result<Device, String> {
        let start = Instant::now();
        loop {
            let found = discover::devices().map_err(|e| format!("sysfs: {e}"))?;
            if let Some(d) = found.into_iter().find(|d| d.address == address) {
                if d.primary().is_some() && d.render().is_some() {
                    return Ok(d);
                }
            }
            if start.elapsed() > WAIT {
                return Err(format!("{address} is not bound to {DRIVER} with two nodes"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Binds `address` and expects Nova to refuse it: `ENODEV`, its does-not-answer line
    /// once, no probe line, no driver.
    fn bind_refused(&mut self, address: PciAddress) -> Vec<String> {
        let mut p = Vec::new();
        match self.bus.bind(DRIVER, &address.to_string()) {
            Ok(()) => p.push(format!("bind of {address} succeeded")),
            Err(e) if e.ends_with("No such device (os error 19)") => {}
            Err(e) => p.push(format!("bind: {e}, expected ENODEV")),
        }
        p.extend(self.expect_lines(&[(line_of(address, NO_ANSWER), 1), (probe_line(address), 0)]));
        if let Some(d) = self.bus.driver_of(&address.to_string()) {
            p.push(format!("{address} is bound to {d} after the refusal"));
        }
        p
    }
}

/// A primary and a render file of a GPU (the primary one first: DRM master).
struct Files {
    primary: Card,
    render: Card,
}

impl Files {
    fn open(d: &Device) -> Result<Self, String> {
        let open = |n: Option<&drm_client::node::Node>| {
            let n = n.ok_or_else(|| format!("{} lacks a node", d.address))?;
            Card::open(&n.path).map_err(|e| format!("{}: {e}", n.path.display()))
        };
        let primary = open(d.primary())?;
        Ok(Self {
            primary,
            render: open(d.render())?,
        })
    }
}

/// The fault `action` on `gpuN` while `--workers` processes issue ioctls, then the unbind (see
/// the module documentation); the problems.
fn under_load(rig: &mut Rig, n: usize, action: &str, workers: u32) -> Vec<String> {
    let address = match gpu_address(Path::new(discover::SYS), n) {
        Ok(a) => a,
        Err(e) => return vec![e],
    };
    let device = match rig.bound(address) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let setup = Files::open(&device).and_then(|f| {
        let bar1 = nova::vram_bar_size(&f.render).map_err(|e| format!("GETPARAM: {e}"))?;
        let gem = nova::gem_create(&f.render, 4096).map_err(|e| format!("GEM_CREATE: {e}"))?;
        Ok((f, bar1, gem))
    });
    let (files, bar1, gem) = match setup {
        Ok(x) => x,
        Err(e) => return vec![e],
    };
    let mut load = match Workers::spawn(&files.render, workers, WORKER_LIMIT_S) {
        Ok(w) => w,
        Err(e) => return vec![e],
    };
    if !load.wait_started(Instant::now() + WAIT) {
        load.kill();
        return vec!["not every worker got going".into()];
    }
    let mut p = Vec::new();
    match rig.fault((n, address), action, ALL_ONES, || load.pump()) {
        Ok(t) => rig.say(&format!(
            "gpu{n} ({address}): config space all-ones {:.3} s after `{action}` was asked",
            t.as_secs_f64()
        )),
        Err(e) => {
            load.kill();
            return vec![e];
        }
    }
    // The stub does not touch the GPU after its probe: the ioctls go on answering.
    let faulted = Instant::now();
    while faulted.elapsed() < LOAD_TIME {
        load.pump();
        std::thread::sleep(Duration::from_millis(5));
    }
    let ended: Vec<String> = load
        .ends()
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.as_ref().map(|e| format!("worker {i}: {e:?}")))
        .collect();
    if !ended.is_empty() {
        p.push(format!(
            "workers stopped while the GPU was still bound: {}",
            ended.join(", ")
        ));
    }
    match nova::vram_bar_size(&files.render) {
        Ok(b) if b == bar1 => {}
        other => p.push(format!(
            "GETPARAM after the fault: {other:?}, {bar1} before"
        )),
    }
    if let Err(e) = nova::gem_info(&files.render, gem.handle) {
        p.push(format!("GEM_INFO after the fault: {}", errno_name(e)));
    }
    // The unbind: every worker and every call ends on ENODEV.
    if let Err(e) = rig.bus.unbind(DRIVER, &address.to_string()) {
        load.kill();
        p.push(format!("unbind: {e}"));
        return p;
    }
    if !load.wait_ended(Instant::now() + WAIT) {
        p.push("workers still running after the unbind".into());
    }
    p.extend(load.reap());
    p.extend(end_problems(&load.ends(), WORKER_LIMIT_S));
    let iterations: Vec<String> = load
        .ends()
        .iter()
        .map(|e| e.as_ref().map_or("-".into(), |e| e.iterations.to_string()))
        .collect();
    rig.say(&format!(
        "gpu{n}: workers' iterations {} (in all, until the unbind)",
        iterations.join(" ")
    ));
    let calls: [(&str, Result<(), Errno>); 4] = [
        (
            "render GETPARAM",
            nova::vram_bar_size(&files.render).map(drop),
        ),
        (
            "render GEM_INFO",
            nova::gem_info(&files.render, gem.handle).map(drop),
        ),
        (
            "render GEM_CREATE",
            nova::gem_create(&files.render, 4096).map(drop),
        ),
        (
            "primary GETPARAM",
            nova::vram_bar_size(&files.primary).map(drop),
        ),
    ];
    for (what, r) in &calls {
        p.extend(expect_errno(what, r, &[Errno::NODEV]).err());
    }
    p.extend(rig.expect_lines(&[(line_of(address, "unbind"), 1), (RELEASED.into(), 0)]));
    drop(files);
    p.extend(rig.expect_lines(&[(RELEASED.into(), 1)]));
    p
}

/// Test `off_bus_bind_refused` on gpu0.
fn off_bus_bind_refused(rig: &mut Rig) -> Result<(), String> {
    let address = gpu_address(Path::new(discover::SYS), 0)?;
    verdict(rig.bind_refused(address))
}

/// Test `recover_and_rebind` on gpu0, whose config space read `id` before its fault.
fn recover_and_rebind(rig: &mut Rig, id: u32) -> Result<(), String> {
    let address = gpu_address(Path::new(discover::SYS), 0)?;
    rig.fault((0, address), "recover", id, || {})?;
    rig.bus.bind(DRIVER, &address.to_string())?;
    let mut p = rig.expect_lines(&[(probe_line(address), 1), (line_of(address, NO_ANSWER), 0)]);
    let works = rig.bound(address).and_then(|d| {
        let card = d.open().map_err(|e| e.to_string())?;
        let bar1 = nova::vram_bar_size(&card).map_err(|e| format!("GETPARAM: {e}"))?;
        let g = nova::gem_create(&card, 4096).map_err(|e| format!("GEM_CREATE: {e}"))?;
        card.gem_close(g.handle)
            .map_err(|e| format!("GEM_CLOSE: {e}"))?;
        Ok(bar1)
    });
    match (works, bar_len(address, 1)) {
        (Ok(bar1), Ok(len)) if bar1 == len => {
            rig.say(&format!("gpu0 ({address}) bound again, BAR1 {bar1:#x}"))
        }
        (Ok(bar1), Ok(len)) => p.push(format!(
            "GETPARAM VRAM_BAR_SIZE gives {bar1:#x}, BAR1 is {len:#x} long"
        )),
        (Err(e), _) | (_, Err(e)) => p.push(e),
    }
    verdict(p)
}

/// Test `model_killed_under_load` on gpu1.
fn killed_under_load(rig: &mut Rig, workers: u32) -> Result<(), String> {
    let mut p = under_load(rig, 1, "kill", workers);
    if p.is_empty() {
        let address = gpu_address(Path::new(discover::SYS), 1)?;
        p.extend(rig.bind_refused(address));
    }
    verdict(p)
}

/// Test `model_killed_during_probe` on gpu2.
fn killed_during_probe(rig: &mut Rig) -> Result<(), String> {
    let address = gpu_address(Path::new(discover::SYS), 2)?;
    let name = address.to_string();
    rig.bound(address)?;
    rig.bus.unbind(DRIVER, &name)?;
    let mut p = rig.expect_lines(&[(line_of(address, "unbind"), 1), (RELEASED.into(), 1)]);
    // The kill is asked for, and the probe started at once: the model dies while it runs.
    rig.say(&format!("{ASK} gpu2 kill"));
    let t = Instant::now();
    let bind = rig.bus.bind(DRIVER, &name);
    let took = t.elapsed();
    rig.until(address, ALL_ONES, "kill", || {})?;
    match bind {
        Ok(()) => {
            rig.say(&format!(
                "gpu2 ({address}): bound in {:.3} s; the model died after the probe read BOOT0 \
                 and BOOT42",
                took.as_secs_f64()
            ));
            p.extend(
                rig.expect_lines(&[(probe_line(address), 1), (line_of(address, NO_ANSWER), 0)]),
            );
            let answers = rig.bound(address).and_then(|d| {
                let card = d.open().map_err(|e| e.to_string())?;
                nova::vram_bar_size(&card).map_err(|e| format!("GETPARAM on the dead GPU: {e}"))
            });
            p.extend(answers.err());
            rig.bus.unbind(DRIVER, &name)?;
            p.extend(rig.expect_lines(&[(line_of(address, "unbind"), 1), (RELEASED.into(), 1)]));
        }
        Err(e) if e.ends_with("No such device (os error 19)") => {
            let want = [(line_of(address, NO_ANSWER), 1), (probe_line(address), 0)];
            let (texts, problems) = rig.lines(&want);
            p.extend(problems);
            p.extend(lines_problems(&texts, &want));
            // The PCI core powers the device up before the probe: when that worked, the model
            // died inside the probe.
            let when = if count(&texts, &line_of(address, INACCESSIBLE)) == 0 {
                "inside the probe, after the PCI core powered the GPU up and before BOOT0 was read"
            } else {
                "before the probe began"
            };
            rig.say(&format!(
                "gpu2 ({address}): refused in {:.3} s; the model died {when}",
                took.as_secs_f64()
            ));
        }
        Err(e) => p.push(format!("bind: {e}, expected success or ENODEV")),
    }
    p.extend(rig.bind_refused(address));
    verdict(p)
}

fn main() -> ExitCode {
    let usage = "usage: gpu_faults [--workers N]";
    let workers = match guest::start(SUITE, Some(usage), parse) {
        Ok(Mode::Test { workers }) => workers,
        Ok(Mode::Worker(limit)) => {
            return gem_worker::worker_main(limit, gem_worker::nova_iteration)
        }
        Err(code) => return code,
    };
    let kmsg = match Kmsg::open_for(SUITE, true) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let mut rig = Rig {
        kmsg,
        bus: Bus::new("pci"),
        run: Planned::start(SUITE, PLAN),
    };
    let gpu0 = gpu_address(Path::new(discover::SYS), 0).and_then(config_id);
    let res = gpu0
        .clone()
        .and_then(|_| verdict(under_load(&mut rig, 0, "fall-off-bus", workers)));
    let off = res.is_ok();
    rig.run.result(PLAN[0], res);
    if off {
        let res = off_bus_bind_refused(&mut rig);
        rig.run.result(PLAN[1], res);
    } else {
        rig.run
            .skip(PLAN[1], "gpu0 did not fall off the bus cleanly");
    }
    let res = gpu0.and_then(|id| recover_and_rebind(&mut rig, id));
    rig.run.result(PLAN[2], res);
    let res = killed_under_load(&mut rig, workers);
    rig.run.result(PLAN[3], res);
    let res = killed_during_probe(&mut rig);
    rig.run.result(PLAN[4], res);
    ExitCode::from(rig.run.finish() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_command_line() {
        assert_eq!(parse(strings(&[])), Ok(Mode::Test { workers: 4 }));
        assert_eq!(
            parse(strings(&["--workers", "2"])),
            Ok(Mode::Test { workers: 2 })
        );
        assert_eq!(parse(strings(&["--worker", "9"])), Ok(Mode::Worker(9)));
        assert!(parse(strings(&["--workers", "0"])).is_err());
        assert!(parse(strings(&["--workers", "x"])).is_err());
        assert!(parse(strings(&["--gpus"])).is_err());
    }

    #[test]
    fn lines_are_counted_exactly_and_crashes_fail() {
        let a: PciAddress = "0000:02:00.0".parse().unwrap();
        let texts = strings(&[
            "nova 0000:02:00.0: BOOT0 reads 0xffffffff: the GPU does not answer (gone or not powered)",
            "nova 0000:01:00.0: NVIDIA TU102 (Turing), revision A1, BAR1 256 MiB: DRM device registered",
        ]);
        let want = [(line_of(a, NO_ANSWER), 1), (probe_line(a), 0)];
        assert!(lines_problems(&texts, &want).is_empty());
        // Another address's probe line is not this one's; twice is not once.
        let mut twice = texts.clone();
        twice.push(texts[0].clone());
        assert_eq!(
            lines_problems(&twice, &want),
            [format!(
                "`{}` printed 2 time(s), expected 1",
                line_of(a, NO_ANSWER)
            )]
        );
        let mut crash = texts.clone();
        crash.push("WARNING: CPU: 0 PID: 1 at drivers/pci/pci.c:1 x".into());
        assert_eq!(lines_problems(&crash, &want).len(), 1);
        let b: PciAddress = "0000:01:00.0".parse().unwrap();
        assert_eq!(
            lines_problems(&texts, &[(probe_line(b), 0)]),
            [format!("`{}` printed 1 time(s), expected 0", probe_line(b))]
        );
    }

    #[test]
    fn bar_lengths_come_from_the_resource_file() {
        let text = "0x0000000042000000 0x0000000042ffffff 0x0000000000040200\n\
                    0x0000010030000000 0x000001003fffffff 0x000000000014220c\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
        assert_eq!(resource_len(text, 0), Some(16 << 20));
        assert_eq!(resource_len(text, 1), Some(256 << 20));
        assert_eq!(resource_len(text, 2), Some(0));
        assert_eq!(resource_len(text, 3), None);
        assert_eq!(resource_len("0x10 zz 0x0\n", 0), None);
    }

    #[test]
    fn a_gpu_is_the_one_function_behind_its_root_port() {
        let root = std::env::temp_dir().join(format!("gpu_faults-{}", std::process::id()));
        let port = root.join("bus/pci/devices/0000:00:02.0");
        std::fs::create_dir_all(port.join("0000:01:00.0")).unwrap();
        std::fs::create_dir_all(port.join("power")).unwrap();
        std::fs::create_dir_all(port.join("0000:00:02.0:pcie001")).unwrap();
        assert_eq!(gpu_address(&root, 1).unwrap().to_string(), "0000:01:00.0");
        assert!(gpu_address(&root, 0).unwrap_err().contains("0000:00:01.0"));
        std::fs::create_dir_all(port.join("0000:01:00.1")).unwrap();
        assert!(gpu_address(&root, 1)
            .unwrap_err()
            .contains("2 PCI functions"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
