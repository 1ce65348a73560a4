//! `gpu_probe`: finds the NVIDIA GPU in sysfs inside the guest and checks what it presents
//! against the expected values of the GPU model profile, reporting KTAP on stdout.
//!
//! ```text
//! gpu_probe [--device ID] [--class CLASS] [--revision REV] [--bar0 SIZE] [--bar1 SIZE]
//!           [--bar3 SIZE] [--boot0 VALUE] [--boot42 VALUE] [--scratch OFFSET]
//!           [--measure-reads N] [--bdf DOMAIN:BUS:DEV.FN] [--vendor ID] [--sysfs DIR]
//!           [--suite NAME]
//! gpu_probe --loop-until-gone SECONDS [--device ID] [--boot0 VALUE] [--interval-ms N]
//! ```
//! Numbers are decimal or `0x` hex; sizes may end in K, M, G or T. `--bar0` defaults to
//! 16M, `--bar3` to 32M, `--vendor` to 0x10de; a check whose expected value is not given is
//! reported as skipped. `--boot0 0xffffffff` expects a device that does not answer (the
//! model's `dead` profile): the config mirror is then expected to read all-ones too.
//! `--sysfs` replaces `/sys/bus/pci/devices` (for the host tests, which build a fake tree).
//! `--suite` names the KTAP suite (default `gpu_probe`), so that a boot with several GPUs
//! reports one suite per GPU.
//!
//! Checks (suite `gpu_probe`): the device is found (vendor, display class, device ID),
//! device ID, class, revision, size and type of BAR0/BAR1/BAR3 (from `resource`), BOOT0 and
//! BOOT42 read through an mmap of `resource0`, the BAR0 config-space mirror at 0x88000, a
//! register write/read-back at `--scratch`, and the BAR0 read rate with `--measure-reads`.
//! Memory decoding is switched on through the sysfs `enable` file first, as no driver is
//! bound. The uptime of the first BAR0 read is printed (boot-to-first-read time).
//!
//! Hot-unplug mode (suite `gpu_probe_hotplug`): reads BOOT0 in a loop and reports when the
//! device disappears (gone from sysfs, or reads failing/all-ones) and when it is back with
//! the expected BOOT0. It prints `# loop: ... waiting for unplug` once the device answered,
//! which is the harness's cue to send QMP `device_del`. Each read is done by a short-lived
//! child (`gpu_probe --read-boot0 BDF`), because a read that races with the removal of the
//! device faults (SIGBUS) and must not take the loop down with it.

use guest::args::{self, Flags};
use guest::Ktap;
use std::ffi::c_void;
use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const SYSFS_PCI: &str = "/sys/bus/pci/devices";
const NV_PMC_BOOT_0: usize = 0x0;
const NV_PMC_BOOT_42: usize = 0xa00;
const NV_PCFG: usize = 0x88000;
const ALL_ONES: u32 = 0xffff_ffff;

/// Linux resource flags, as printed in the sysfs `resource` file.
const IORESOURCE_IO: u64 = 0x100;
const IORESOURCE_MEM: u64 = 0x200;
const IORESOURCE_PREFETCH: u64 = 0x2000;
const IORESOURCE_MEM_64: u64 = 0x10_0000;
const IORESOURCE_UNSET: u64 = 0x2000_0000;

mod sys {
    //! The two libc calls std does not wrap.
    use std::ffi::{c_int, c_void};

    pub const PROT_READ: c_int = 1;
    pub const PROT_WRITE: c_int = 2;
    pub const MAP_SHARED: c_int = 1;
    pub const MAP_FAILED: *mut c_void = !0usize as *mut c_void;

    extern "C" {
        pub fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            off: i64,
        ) -> *mut c_void;
        pub fn munmap(addr: *mut c_void, len: usize) -> c_int;
    }
}

/// A shared mapping of a BAR through its sysfs `resourceN` file.
///
/// Invariant: `ptr` is the start of a live `MAP_SHARED` mapping of `len` bytes, readable and
/// writable, created by `map` and unmapped only by `Drop`.
struct BarMap {
    ptr: *mut c_void,
    len: usize,
}

impl BarMap {
    fn map(path: &Path, len: usize) -> Result<Self, String> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL) of an open fd; the result
        // is checked against MAP_FAILED before use. The fd may be closed after mmap.
        let ptr = unsafe {
            sys::mmap(
                std::ptr::null_mut(),
                len,
                sys::PROT_READ | sys::PROT_WRITE,
                sys::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == sys::MAP_FAILED {
            return Err(format!(
                "mmap {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Self { ptr, len })
    }

    fn check(&self, offset: usize) -> Result<(), String> {
        if !offset.is_multiple_of(4) || offset.checked_add(4).is_none_or(|end| end > self.len) {
            return Err(format!(
                "offset {offset:#x} outside the {:#x}-byte mapping",
                self.len
            ));
        }
        Ok(())
    }

    fn read_u32(&self, offset: usize) -> Result<u32, String> {
        self.check(offset)?;
        // SAFETY: `offset` is 4-byte aligned and inside the mapping (checked above), which is
        // live per the type invariant; MMIO needs a volatile access.
        Ok(unsafe { std::ptr::read_volatile(self.ptr.cast::<u8>().add(offset).cast::<u32>()) })
    }

    fn write_u32(&self, offset: usize, value: u32) -> Result<(), String> {
        self.check(offset)?;
        // SAFETY: as in `read_u32`; the mapping is writable.
        unsafe { std::ptr::write_volatile(self.ptr.cast::<u8>().add(offset).cast::<u32>(), value) };
        Ok(())
    }
}

impl Drop for BarMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map` (type invariant), once.
        unsafe { sys::munmap(self.ptr, self.len) };
    }
}

/// One PCI function as sysfs shows it.
#[derive(Debug, Clone)]
struct PciFunction {
    bdf: String,
    dir: PathBuf,
    vendor: u32,
    device: u32,
    class: u32,
    /// (start, end, flags) of BARs 0..=5.
    resources: Vec<(u64, u64, u64)>,
}

impl PciFunction {
    fn bar_size(&self, bar: usize) -> u64 {
        match self.resources.get(bar) {
            Some(&(start, end, _)) if end > start || start != 0 => end - start + 1,
            _ => 0,
        }
    }

    fn bar_flags(&self, bar: usize) -> u64 {
        self.resources.get(bar).map_or(0, |r| r.2)
    }
}

fn parse_num(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    r.map_err(|_| format!("'{s}' is not a number"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    parse_num(num)?
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size '{s}' overflows"))
}

fn read_hex_file(path: &Path) -> Result<u64, String> {
    let s = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_num(&s)
}

fn read_function(dir: &Path) -> Result<PciFunction, String> {
    let bdf = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text =
        fs::read_to_string(dir.join("resource")).map_err(|e| format!("{bdf}/resource: {e}"))?;
    let mut resources = Vec::new();
    for line in text.lines().take(6) {
        let f: Vec<u64> = line
            .split_whitespace()
            .map(parse_num)
            .collect::<Result<_, _>>()?;
        if f.len() != 3 {
            return Err(format!("{bdf}/resource: malformed line '{line}'"));
        }
        resources.push((f[0], f[1], f[2]));
    }
    Ok(PciFunction {
        vendor: read_hex_file(&dir.join("vendor"))? as u32,
        device: read_hex_file(&dir.join("device"))? as u32,
        class: read_hex_file(&dir.join("class"))? as u32,
        dir: dir.to_path_buf(),
        bdf,
        resources,
    })
}

/// Every display-class function of `vendor` (sorted by address).
fn find_gpus(root: &Path, vendor: u32) -> Vec<PciFunction> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    dirs.iter()
        .filter_map(|d| read_function(d).ok())
        .filter(|f| f.vendor == vendor && f.class >> 16 == 0x03)
        .collect()
}

/// Switches memory decoding on (no driver is bound to do it) and maps BAR0.
fn map_bar0(f: &PciFunction) -> Result<BarMap, String> {
    fs::write(f.dir.join("enable"), "1").map_err(|e| format!("{}/enable: {e}", f.bdf))?;
    let len = f.bar_size(0);
    if len == 0 {
        return Err("BAR0 has no size".into());
    }
    let len = usize::try_from(len).map_err(|_| "BAR0 too large to map".to_string())?;
    BarMap::map(&f.dir.join("resource0"), len)
}

fn uptime() -> String {
    fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn expect_eq(what: &str, got: u64, want: u64) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} is {got:#x}, expected {want:#x}"))
    }
}

fn describe_boot0(v: u32) -> String {
    if v == ALL_ONES {
        return "all-ones (device not answering)".into();
    }
    let arch = (v >> 24) & 0x1f | ((v >> 8) & 1) << 5;
    let imp = (v >> 20) & 0xf;
    format!(
        "chipset {:#x} rev {:X}{:X}",
        arch << 4 | imp,
        (v >> 4) & 0xf,
        v & 0xf
    )
}

#[derive(Debug, Default)]
struct Args {
    vendor: u32,
    device: Option<u32>,
    class: Option<u32>,
    revision: Option<u32>,
    bars: [Option<u64>; 6],
    boot0: Option<u32>,
    boot42: Option<u32>,
    scratch: Option<usize>,
    measure_reads: Option<u64>,
    bdf: Option<String>,
    loop_secs: Option<u64>,
    interval_ms: u64,
    read_boot0: Option<String>,
    sysfs: PathBuf,
    suite: String,
}

fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        vendor: 0x10de,
        interval_ms: 20,
        sysfs: PathBuf::from(SYSFS_PCI),
        suite: "gpu_probe".into(),
        ..Args::default()
    };
    a.bars[0] = Some(16 << 20);
    a.bars[3] = Some(32 << 20);
    let u32_of = |v: String| -> Result<u32, String> {
        u32::try_from(parse_num(&v)?).map_err(|_| format!("{v} does not fit in 32 bits"))
    };
    let mut flags = Flags::new(argv);
    while let Some(flag) = flags.next_flag() {
        let mut val = || flags.value(&flag);
        match flag.as_str() {
            "--vendor" => a.vendor = u32_of(val()?)?,
            "--device" => a.device = Some(u32_of(val()?)?),
            "--class" => a.class = Some(u32_of(val()?)?),
            "--revision" => a.revision = Some(u32_of(val()?)?),
            "--bar0" => a.bars[0] = Some(parse_size(&val()?)?),
            "--bar1" => a.bars[1] = Some(parse_size(&val()?)?),
            "--bar3" => a.bars[3] = Some(parse_size(&val()?)?),
            "--boot0" => a.boot0 = Some(u32_of(val()?)?),
            "--boot42" => a.boot42 = Some(u32_of(val()?)?),
            "--scratch" => a.scratch = Some(parse_num(&val()?)? as usize),
            "--measure-reads" => a.measure_reads = Some(parse_num(&val()?)?),
            "--bdf" => a.bdf = Some(val()?),
            "--loop-until-gone" => a.loop_secs = Some(parse_num(&val()?)?),
            "--interval-ms" => a.interval_ms = parse_num(&val()?)?,
            "--read-boot0" => a.read_boot0 = Some(val()?),
            "--sysfs" => a.sysfs = PathBuf::from(val()?),
            "--suite" => a.suite = val()?,
            other => return Err(args::unknown(other)),
        }
    }
    Ok(a)
}

fn select(args: &Args, all: &[PciFunction]) -> Result<PciFunction, String> {
    let matching: Vec<&PciFunction> = all
        .iter()
        .filter(|f| args.device.is_none_or(|d| f.device == d))
        .filter(|f| args.bdf.as_ref().is_none_or(|b| &f.bdf == b))
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!(
            "no display function of vendor {:#06x} matches",
            args.vendor
        )),
        many => Err(format!("{} functions match; pass --bdf", many.len())),
    }
}

fn probe(args: &Args) -> i32 {
    const PLAN: usize = 15;
    let mut k = Ktap::start(&args.suite, PLAN);
    let all = find_gpus(&args.sysfs, args.vendor);
    for f in &all {
        k.diag(&format!(
            "found {} {:04x}:{:04x} class {:06x}",
            f.bdf, f.vendor, f.device, f.class
        ));
    }
    let found = select(args, &all);
    k.result(
        "find_device",
        found.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    let Ok(f) = found else {
        for name in [
            "device_id",
            "class",
            "revision",
            "bar0_size",
            "bar0_type",
            "bar1_size",
            "bar1_type",
            "bar3_size",
            "bar3_type",
            "boot0",
            "boot42",
            "config_mirror",
            "scratch_readback",
            "bar0_read_rate",
        ] {
            k.result(name, Err("no device".into()));
        }
        return k.finish();
    };

    let opt = |k: &mut Ktap, name: &str, want: Option<u64>, got: Result<u64, String>| match want {
        None => k.skip(name, "no expected value given"),
        Some(w) => k.result(name, got.and_then(|g| expect_eq(name, g, w))),
    };
    opt(
        &mut k,
        "device_id",
        args.device.map(u64::from),
        Ok(u64::from(f.device)),
    );
    opt(
        &mut k,
        "class",
        args.class.map(u64::from),
        Ok(u64::from(f.class)),
    );
    opt(
        &mut k,
        "revision",
        args.revision.map(u64::from),
        read_hex_file(&f.dir.join("revision")),
    );

    for (bar, want_flags) in [
        (0, IORESOURCE_MEM),
        (1, IORESOURCE_MEM | IORESOURCE_MEM_64 | IORESOURCE_PREFETCH),
        (3, IORESOURCE_MEM | IORESOURCE_MEM_64 | IORESOURCE_PREFETCH),
    ] {
        let flags = f.bar_flags(bar);
        k.diag(&format!(
            "BAR{bar}: {:#x} bytes at {:#x}, flags {flags:#x}{}",
            f.bar_size(bar),
            f.resources.get(bar).map_or(0, |r| r.0),
            if flags & IORESOURCE_UNSET != 0 {
                " (not assigned)"
            } else {
                ""
            }
        ));
        opt(
            &mut k,
            &format!("bar{bar}_size"),
            args.bars[bar],
            Ok(f.bar_size(bar)),
        );
        let kind =
            flags & (IORESOURCE_IO | IORESOURCE_MEM | IORESOURCE_MEM_64 | IORESOURCE_PREFETCH);
        k.result(
            &format!("bar{bar}_type"),
            expect_eq("resource type flags", kind, want_flags),
        );
    }

    let map = map_bar0(&f);
    let up = uptime();
    let read = |off: usize| {
        map.as_ref()
            .map_err(Clone::clone)
            .and_then(|m| m.read_u32(off))
    };
    let boot0 = read(NV_PMC_BOOT_0);
    if let Ok(v) = boot0 {
        k.diag(&format!(
            "first BAR0 read at uptime {up} s: BOOT0 {v:#010x}, {}",
            describe_boot0(v)
        ));
    }
    let want_dead = args.boot0 == Some(ALL_ONES);
    let boot0_check = match args.boot0 {
        Some(w) => boot0
            .clone()
            .and_then(|g| expect_eq("BOOT0", g.into(), w.into())),
        None => boot0.clone().and_then(|g| {
            if g == ALL_ONES {
                Err("BOOT0 reads all-ones".into())
            } else {
                Ok(())
            }
        }),
    };
    k.result("boot0", boot0_check);
    opt(
        &mut k,
        "boot42",
        args.boot42.map(u64::from),
        read(NV_PMC_BOOT_42).map(u64::from),
    );
    let mirror_want = if want_dead {
        ALL_ONES
    } else {
        f.device << 16 | f.vendor
    };
    k.result(
        "config_mirror",
        read(NV_PCFG).and_then(|g| expect_eq("BAR0+0x88000", g.into(), mirror_want.into())),
    );

    match args.scratch {
        None => k.skip("scratch_readback", "no --scratch offset given"),
        Some(off) => {
            let r = map.as_ref().map_err(Clone::clone).and_then(|m| {
                let pattern = 0x5a5a_0000 | (off as u32 & 0xffff);
                m.write_u32(off, pattern)?;
                let back = m.read_u32(off)?;
                let want = if want_dead { ALL_ONES } else { pattern };
                expect_eq("register read back", back.into(), want.into())
            });
            k.result("scratch_readback", r);
        }
    }

    match args.measure_reads {
        None => k.skip("bar0_read_rate", "no --measure-reads count given"),
        Some(n) => {
            let r = map.as_ref().map_err(Clone::clone).and_then(|m| {
                let t0 = Instant::now();
                for _ in 0..n {
                    m.read_u32(NV_PMC_BOOT_0)?;
                }
                let dt = t0.elapsed().as_secs_f64();
                k.diag(&format!(
                    "{n} BAR0 reads in {dt:.3} s: {:.0} reads/s",
                    n as f64 / dt.max(1e-9)
                ));
                Ok(())
            });
            k.result("bar0_read_rate", r);
        }
    }
    k.finish()
}

/// Worker for the hot-unplug loop: one BOOT0 read of the function at `bdf`.
fn read_boot0_once(sysfs: &Path, bdf: &str) -> i32 {
    let dir = sysfs.join(bdf);
    let r = read_function(&dir)
        .and_then(|f| map_bar0(&f))
        .and_then(|m| m.read_u32(NV_PMC_BOOT_0));
    match r {
        Ok(v) => {
            println!("{v:#010x}");
            0
        }
        Err(e) => {
            eprintln!("gpu_probe: {e}");
            1
        }
    }
}

/// What one look at the device found.
enum Seen {
    Answering(String, u32),
    Gone(String),
}

fn look(args: &Args) -> Seen {
    let all = find_gpus(&args.sysfs, args.vendor);
    let f = match select(args, &all) {
        Ok(f) => f,
        Err(e) => return Seen::Gone(e),
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("gpu_probe"));
    let out = Command::new(exe)
        .arg("--sysfs")
        .arg(&args.sysfs)
        .args(["--read-boot0", &f.bdf])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            match parse_num(&text).ok().and_then(|v| u32::try_from(v).ok()) {
                Some(ALL_ONES) => Seen::Gone(format!("{} reads all-ones", f.bdf)),
                Some(v) => Seen::Answering(f.bdf, v),
                None => Seen::Gone(format!("reader printed '{}'", text.trim())),
            }
        }
        Ok(out) => Seen::Gone(format!("read of {} failed ({})", f.bdf, out.status)),
        Err(e) => Seen::Gone(format!("cannot run the reader: {e}")),
    }
}

fn hotplug_loop(args: &Args, secs: u64) -> i32 {
    let mut k = Ktap::start("gpu_probe_hotplug", 4);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let first = match look(args) {
        Seen::Answering(bdf, v) => {
            k.diag(&format!(
                "loop: {bdf} present, BOOT0 {v:#010x}; waiting for unplug"
            ));
            Ok(v)
        }
        Seen::Gone(why) => Err(why),
    };
    k.result("present_at_start", first.clone().map(|_| ()));
    let Ok(first) = first else {
        for name in ["disappears", "reappears", "boot0_after_replug"] {
            k.result(name, Err("device not present at start".into()));
        }
        return k.finish();
    };
    let t0 = Instant::now();
    let mut reads = 1u64;
    let gone_at = loop {
        if Instant::now() >= deadline {
            break None;
        }
        match look(args) {
            Seen::Answering(..) => reads += 1,
            Seen::Gone(why) => {
                k.diag(&format!(
                    "loop: gone after {:.3} s and {reads} reads: {why}",
                    t0.elapsed().as_secs_f64()
                ));
                break Some(Instant::now());
            }
        }
        std::thread::sleep(interval);
    };
    k.result(
        "disappears",
        gone_at
            .map(|_| ())
            .ok_or_else(|| format!("still there after {secs} s")),
    );
    let Some(gone_at) = gone_at else {
        k.skip("reappears", "never disappeared");
        k.skip("boot0_after_replug", "never disappeared");
        return k.finish();
    };
    let back = loop {
        if Instant::now() >= deadline {
            break None;
        }
        if let Seen::Answering(bdf, v) = look(args) {
            k.diag(&format!(
                "loop: {bdf} back after {:.3} s, BOOT0 {v:#010x}",
                gone_at.elapsed().as_secs_f64()
            ));
            break Some(v);
        }
        std::thread::sleep(interval);
    };
    k.result(
        "reappears",
        back.map(|_| ())
            .ok_or_else(|| format!("not back within {secs} s")),
    );
    let want = args.boot0.unwrap_or(first);
    k.result(
        "boot0_after_replug",
        back.ok_or_else(|| "not back".to_string())
            .and_then(|v| expect_eq("BOOT0 after re-plug", v.into(), want.into())),
    );
    k.finish()
}

fn main() -> ExitCode {
    let args = match guest::start("gpu_probe", None, parse_args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let status = if let Some(bdf) = &args.read_boot0 {
        read_boot0_once(&args.sysfs, bdf)
    } else if let Some(secs) = args.loop_secs {
        hotplug_loop(&args, secs)
    } else {
        probe(&args)
    };
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysfs PCI tree with one function, BAR0 backed by a 16 MiB file.
    fn fake_tree(name: &str, device: u32, class: u32, boot0: u32, bar1: u64) -> PathBuf {
        let root = std::env::temp_dir().join(format!("gpu-probe-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = root.join("0000:01:00.0");
        fs::create_dir_all(&dir).unwrap();
        // A non-GPU function of the same vendor (audio), to be ignored.
        let audio = root.join("0000:01:00.1");
        fs::create_dir_all(&audio).unwrap();
        for (d, dev, cls) in [(&dir, device, class), (&audio, 0x22ba, 0x040300)] {
            fs::write(d.join("vendor"), "0x10de\n").unwrap();
            fs::write(d.join("device"), format!("{dev:#06x}\n")).unwrap();
            fs::write(d.join("class"), format!("{cls:#08x}\n")).unwrap();
            fs::write(d.join("revision"), "0xa1\n").unwrap();
        }
        let mem = IORESOURCE_MEM | 0x4_0000;
        let pf = mem | IORESOURCE_PREFETCH | IORESOURCE_MEM_64;
        let line = |s: u64, size: u64, fl: u64| {
            let end = if size == 0 { 0 } else { s + size - 1 };
            format!("{s:#018x} {end:#018x} {fl:#018x}\n")
        };
        let resource = [
            line(0xfd00_0000, 16 << 20, mem),
            line(0x80_0000_0000, bar1, pf),
            line(0, 0, 0),
            line(0x70_0000_0000, 32 << 20, pf),
            line(0, 0, 0),
            line(0, 0, 0),
        ]
        .concat();
        fs::write(dir.join("resource"), &resource).unwrap();
        fs::write(audio.join("resource"), line(0xfe00_0000, 16 << 10, mem)).unwrap();
        let bar0 = fs::File::create(dir.join("resource0")).unwrap();
        bar0.set_len(16 << 20).unwrap();
        use std::os::unix::fs::FileExt;
        bar0.write_all_at(&boot0.to_le_bytes(), 0).unwrap();
        bar0.write_all_at(&(device << 16 | 0x10de).to_le_bytes(), NV_PCFG as u64)
            .unwrap();
        root
    }

    fn args(root: &Path, extra: &[&str]) -> Args {
        let mut v: Vec<String> = vec!["--sysfs".into(), root.display().to_string()];
        v.extend(extra.iter().map(|s| s.to_string()));
        parse_args(v).unwrap()
    }

    #[test]
    fn numbers_and_sizes_parse() {
        assert_eq!(parse_num("0x2330"), Ok(0x2330));
        assert_eq!(parse_num("42\n"), Ok(42));
        assert!(parse_num("zz").is_err());
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("0x2000000000"), Ok(128 << 30));
        assert_eq!(parse_size("128g"), Ok(128 << 30));
        assert!(parse_size("99999999999T").is_err());
        assert!(parse_args(vec!["--bogus".to_string()]).is_err());
        assert!(parse_args(vec!["--device".to_string()]).is_err());
    }

    #[test]
    fn finds_the_gpu_and_reads_its_bars() {
        let root = fake_tree("find", 0x2330, 0x030200, 0x180000a1, 128 << 30);
        let gpus = find_gpus(&root, 0x10de);
        assert_eq!(gpus.len(), 1, "audio function ignored");
        let g = &gpus[0];
        assert_eq!(
            (g.bdf.as_str(), g.device, g.class),
            ("0000:01:00.0", 0x2330, 0x030200)
        );
        assert_eq!(g.bar_size(0), 16 << 20);
        assert_eq!(g.bar_size(1), 128 << 30);
        assert_eq!(g.bar_size(2), 0);
        assert_eq!(g.bar_size(3), 32 << 20);
        assert!(find_gpus(&root, 0x1234).is_empty());
        assert!(find_gpus(&root.join("missing"), 0x10de).is_empty());
        let m = map_bar0(g).unwrap();
        assert_eq!(m.read_u32(0), Ok(0x180000a1));
        assert!(m.read_u32(16 << 20).is_err());
        assert!(m.read_u32(2).is_err());
        assert_eq!(
            fs::read_to_string(root.join("0000:01:00.0/enable")).unwrap(),
            "1"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn probe_passes_on_matching_expectations() {
        let root = fake_tree("pass", 0x2330, 0x030200, 0x180000a1, 128 << 30);
        let a = args(
            &root,
            &[
                "--device",
                "0x2330",
                "--class",
                "0x030200",
                "--revision",
                "0xa1",
                "--bar1",
                "0x2000000000",
                "--boot0",
                "0x180000a1",
                "--scratch",
                "0x1000",
                "--measure-reads",
                "10",
            ],
        );
        assert_eq!(probe(&a), 0);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn probe_fails_on_wrong_expectations() {
        let root = fake_tree("fail", 0x2330, 0x030200, 0x180000a1, 128 << 30);
        for wrong in [
            &["--device", "0x2331"][..],
            &["--class", "0x030000"],
            &["--bar1", "256M"],
            &["--boot0", "0x162000a1"],
            &["--bar3", "16M"],
            &["--boot42", "0x180a1000"], // the fake BAR0 has zero there
        ] {
            assert_eq!(probe(&args(&root, wrong)), 1, "{wrong:?}");
        }
        // A device that reads all-ones fails the default BOOT0 check.
        let dead = fake_tree("dead", 0x2330, 0x030200, ALL_ONES, 128 << 30);
        assert_eq!(probe(&args(&dead, &[])), 1);
        fs::remove_dir_all(&root).unwrap();
        fs::remove_dir_all(&dead).unwrap();
    }

    #[test]
    fn boot0_is_described() {
        assert_eq!(describe_boot0(0x180000a1), "chipset 0x180 rev A1");
        assert_eq!(describe_boot0(0x1b2000a1), "chipset 0x1b2 rev A1");
        assert_eq!(describe_boot0(ALL_ONES), "all-ones (device not answering)");
    }
}
