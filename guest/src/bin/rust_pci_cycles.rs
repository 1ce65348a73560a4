//! `rust_pci_cycles`: unbinds and re-binds PCI devices from a (Rust) PCI driver through sysfs
//! many times, then unloads and reloads the driver's module many times, checking each time what
//! the driver printed and that it claimed and released the device's BAR and IRQ; reports KTAP.
//!
//! ```text
//! rust_pci_cycles --driver NAME --module PATH.ko [--cycles N] [--module-cycles N]
//!                 --device DEV [--irq] [--expect TEXT]... [--device DEV ...]
//! ```
//! A `DEV` is a PCI address (`0000:00:03.0`) or `VENDOR:DEVICE` in hex (`1234:11e8`), which
//! names the first device with those IDs.
//! `--cycles` defaults to 100 and `--module-cycles` to 20. `--expect` and `--irq` apply to the
//! `--device` before them: each probe of that device must print every `--expect` text exactly
//! once (in records naming the device), and with `--irq` the device's IRQ line
//! (`/sys/bus/pci/devices/BDF/irq`) must list the driver in `/proc/interrupts` while it is
//! bound. Each removal must print `unbind` exactly once.
//!
//! While the device is bound, `/proc/iomem` must show its BAR 0 claimed under the driver's
//! name and sysfs `enable` must read 1; after each unbind, that claim and the IRQ must be gone
//! (a second driver could claim them) and `enable` must read 0: the driver disabled the device.
//!
//! KTAP tests (suite `rust_pci_cycles`): `initial_binding` (each device is bound at the start,
//! after loading the module), `unbind_bind_cycles.<BDF>` for each device, and
//! `module_load_unload_cycles` (each unload removes every device once and releases everything,
//! each load probes every device once), then `module_gone` after a last unload.

use guest::args::{self, Flags};
use guest::kmod::{self, module_name};
use guest::kmsg::{self, record_text, Kmsg, ReadOutcome, RecordSource};
use guest::sysfs::Bus;
use guest::Ktap;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

/// The KTAP suite name.
const SUITE: &str = "rust_pci_cycles";
/// What every removal prints.
const UNBIND: &str = ": unbind";
/// How long the records of one step may take to arrive.
const STEP_WAIT: Duration = Duration::from_secs(3);
/// The pause between two polls of `/dev/kmsg`.
const POLL: Duration = Duration::from_millis(1);

/// A device under test.
#[derive(Debug, Clone, Default)]
struct Device {
    bdf: String,
    irq: bool,
    expect: Vec<String>,
}

#[derive(Debug)]
struct Args {
    driver: String,
    module: PathBuf,
    cycles: u32,
    module_cycles: u32,
    devices: Vec<Device>,
}

fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut flags = Flags::new(argv);
    let (mut driver, mut module) = (None, None);
    let (mut cycles, mut module_cycles) = (100, 20);
    let mut devices: Vec<Device> = Vec::new();
    let number = |v: String, f: &str| v.parse().map_err(|_| format!("{f} wants a number"));
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--driver" => driver = Some(flags.value(&flag)?),
            "--module" => module = Some(PathBuf::from(flags.value(&flag)?)),
            "--cycles" => cycles = number(flags.value(&flag)?, &flag)?,
            "--module-cycles" => module_cycles = number(flags.value(&flag)?, &flag)?,
            "--device" => devices.push(Device {
                bdf: flags.value(&flag)?,
                ..Device::default()
            }),
            "--irq" | "--expect" => {
                let dev = devices
                    .last_mut()
                    .ok_or_else(|| format!("{flag} must follow a --device"))?;
                if flag == "--irq" {
                    dev.irq = true;
                } else {
                    dev.expect.push(flags.value(&flag)?);
                }
            }
            other => return Err(args::unknown(other)),
        }
    }
    if devices.is_empty() {
        return Err("no --device given".into());
    }
    Ok(Args {
        driver: args::required(driver, "--driver")?,
        module: args::required(module, "--module")?,
        cycles,
        module_cycles,
        devices,
    })
}

/// The records of one step: their texts, and what went wrong reading them.
struct Records {
    texts: Vec<String>,
    problems: Vec<String>,
}

impl Records {
    /// Reads `/dev/kmsg` until every text of `wanted` appeared in a record naming `bdf` (for
    /// each of `devices`), or [`STEP_WAIT`] passed; then reads what is left.
    fn read(kmsg: &mut Kmsg, wanted: &[(&str, Vec<&str>)]) -> Self {
        let (mut texts, mut overruns, mut error) = (Vec::new(), 0, None);
        let start = Instant::now();
        loop {
            match kmsg.next_record() {
                ReadOutcome::Record(r) => texts.push(record_text(&r).to_string()),
                ReadOutcome::Overrun => overruns += 1,
                ReadOutcome::Failed(e) => {
                    error = Some(e);
                    break;
                }
                ReadOutcome::Empty => {
                    let all_seen = wanted.iter().all(|(bdf, want)| {
                        want.iter()
                            .all(|w| texts.iter().any(|t| t.contains(bdf) && t.contains(w)))
                    });
                    if all_seen || start.elapsed() > STEP_WAIT {
                        break;
                    }
                    thread::sleep(POLL);
                }
            }
        }
        Self {
            texts,
            problems: kmsg::read_problems(overruns, error.as_deref()),
        }
    }

    /// How many records name `bdf` and contain `text`.
    fn count(&self, bdf: &str, text: &str) -> usize {
        self.texts
            .iter()
            .filter(|t| t.contains(bdf) && t.contains(text))
            .count()
    }
}

/// The PCI address of `dev`: itself if it is one, else the first device whose IDs are
/// `VENDOR:DEVICE`.
fn resolve(dev: &str) -> Result<String, String> {
    if dev.contains('.') {
        return Ok(dev.to_string());
    }
    let (vendor, device) = dev.split_once(':').ok_or(format!(
        "`{dev}` is neither a PCI address nor VENDOR:DEVICE"
    ))?;
    let dir = "/sys/bus/pci/devices";
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("{dir}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    entries.sort();
    let id = |bdf: &str, file: &str| {
        fs::read_to_string(format!("{dir}/{bdf}/{file}"))
            .map(|s| s.trim().trim_start_matches("0x").to_lowercase())
            .unwrap_or_default()
    };
    entries
        .into_iter()
        .find(|bdf| {
            id(bdf, "vendor") == vendor.to_lowercase() && id(bdf, "device") == device.to_lowercase()
        })
        .ok_or(format!("no PCI device {dev}"))
}

/// Whether `/proc/iomem` shows BAR 0 of `bdf` claimed by `driver`.
fn bar0_claimed(bdf: &str, driver: &str) -> Result<bool, String> {
    let path = format!("/sys/bus/pci/devices/{bdf}/resource");
    let resources = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let bar0 = resources.lines().next().ok_or(format!("{path} is empty"))?;
    let mut fields = bar0
        .split_whitespace()
        .map(|f| u64::from_str_radix(f.trim_start_matches("0x"), 16));
    let (Some(Ok(start)), Some(Ok(end))) = (fields.next(), fields.next()) else {
        return Err(format!("{path}: cannot read `{bar0}`"));
    };
    let iomem = fs::read_to_string("/proc/iomem").map_err(|e| format!("/proc/iomem: {e}"))?;
    Ok(iomem.lines().any(|l| {
        let Some((range, name)) = l.trim().split_once(" : ") else {
            return false;
        };
        let Some((s, e)) = range.split_once('-') else {
            return false;
        };
        let parse = |x: &str| u64::from_str_radix(x, 16).ok();
        name == driver && parse(s) == Some(start) && parse(e) == Some(end)
    }))
}

/// Whether `/proc/interrupts` lists `driver` on the IRQ line of `bdf`.
fn irq_requested(bdf: &str, driver: &str) -> Result<bool, String> {
    let path = format!("/sys/bus/pci/devices/{bdf}/irq");
    let irq = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let prefix = format!("{}:", irq.trim());
    let table =
        fs::read_to_string("/proc/interrupts").map_err(|e| format!("/proc/interrupts: {e}"))?;
    Ok(table
        .lines()
        .any(|l| l.trim_start().starts_with(&prefix) && l.contains(driver)))
}

/// Whether sysfs `enable` of `bdf` reads 1 (the device is enabled, `pci_is_enabled()`).
fn enabled(bdf: &str) -> Result<bool, String> {
    let path = format!("/sys/bus/pci/devices/{bdf}/enable");
    let v = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok(v.trim() != "0")
}

/// Checks that `dev`'s BAR 0 (and IRQ, if it has one under test) are claimed by `driver`, and
/// that the device is enabled, exactly when `bound`.
fn check_claims(dev: &Device, driver: &str, bound: bool) -> Result<(), String> {
    let state = if bound { "bound" } else { "unbound" };
    if enabled(&dev.bdf)? != bound {
        return Err(format!(
            "{}: sysfs enable reads {} while {state}",
            dev.bdf,
            if bound { 0 } else { 1 }
        ));
    }
    if bar0_claimed(&dev.bdf, driver)? != bound {
        return Err(format!(
            "{}: /proc/iomem {} BAR 0 claimed by {driver} while {state}",
            dev.bdf,
            if bound {
                "does not show"
            } else {
                "still shows"
            }
        ));
    }
    if dev.irq && irq_requested(&dev.bdf, driver)? != bound {
        return Err(format!(
            "{}: /proc/interrupts {} {driver} on the device's IRQ while {state}",
            dev.bdf,
            if bound {
                "does not list"
            } else {
                "still lists"
            }
        ));
    }
    Ok(())
}

impl Device {
    /// The texts a probe (`probed`) or a removal of the device must print exactly once, and
    /// those it must not print at all (the other step's).
    fn lines(&self, probed: bool) -> (Vec<&str>, Vec<&str>) {
        let expect: Vec<&str> = self.expect.iter().map(String::as_str).collect();
        if probed {
            (expect, vec![UNBIND])
        } else {
            (vec![UNBIND], expect)
        }
    }
}

/// What is wrong with the records of a probe (`probed`) or a removal of each of `devices`: a
/// text of the step not printed exactly once, or a text of the other step printed.
fn record_problems(records: &Records, devices: &[Device], probed: bool) -> Vec<String> {
    let mut problems = records.problems.clone();
    for dev in devices {
        let (want, unwanted) = dev.lines(probed);
        for (texts, expected, what) in [(want, 1, "once"), (unwanted, 0, "never")] {
            for t in texts {
                let n = records.count(&dev.bdf, t);
                if n != expected {
                    problems.push(format!(
                        "{}: `{t}` printed {n} times, expected {what}",
                        dev.bdf
                    ));
                }
            }
        }
    }
    problems
}

/// Does `action` (a probe when `probed`, else a removal of each of `devices`), then checks
/// what the driver printed (see [`record_problems`]), the claims, and the binding.
fn step(
    kmsg: &mut Kmsg,
    devices: &[Device],
    driver: &str,
    probed: bool,
    action: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    action()?;
    let wanted: Vec<(&str, Vec<&str>)> = devices
        .iter()
        .map(|d| (d.bdf.as_str(), d.lines(probed).0))
        .collect();
    let records = Records::read(kmsg, &wanted);
    let mut problems = record_problems(&records, devices, probed);
    for dev in devices {
        if let Err(e) = check_claims(dev, driver, probed) {
            problems.push(e);
        }
        let bound_to = Bus::new("pci").driver_of(&dev.bdf);
        if (bound_to.as_deref() == Some(driver)) != probed {
            problems.push(format!("{}: bound to {bound_to:?}", dev.bdf));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn unbind_bind_cycles(args: &Args, dev: &Device, kmsg: &mut Kmsg) -> Result<(), String> {
    let bus = Bus::new("pci");
    let one = std::slice::from_ref(dev);
    for cycle in 1..=args.cycles {
        let fail = |what: &str, e: String| format!("cycle {cycle}, {what}: {e}");
        step(kmsg, one, &args.driver, false, || {
            bus.unbind(&args.driver, &dev.bdf)
        })
        .map_err(|e| fail("unbind", e))?;
        step(kmsg, one, &args.driver, true, || {
            bus.bind(&args.driver, &dev.bdf)
        })
        .map_err(|e| fail("bind", e))?;
    }
    Ok(())
}

fn module_cycles(args: &Args, kmsg: &mut Kmsg) -> Result<(), String> {
    for cycle in 1..=args.module_cycles {
        let fail = |what: &str, e: String| format!("cycle {cycle}, {what}: {e}");
        step(kmsg, &args.devices, &args.driver, false, || {
            kmod::rmmod(&args.module)
        })
        .map_err(|e| fail("rmmod", e))?;
        step(kmsg, &args.devices, &args.driver, true, || {
            kmod::insmod(&args.module)
        })
        .map_err(|e| fail("insmod", e))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let usage = "usage: rust_pci_cycles --driver NAME --module PATH.ko [--cycles N] \
                 [--module-cycles N] --device BDF [--irq] [--expect TEXT]...";
    let mut args = match guest::start(SUITE, Some(usage), parse) {
        Ok(a) => a,
        Err(code) => return code,
    };
    for dev in &mut args.devices {
        match resolve(&dev.bdf) {
            Ok(bdf) => dev.bdf = bdf,
            Err(e) => {
                eprintln!("{SUITE}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut ktap = Ktap::start(SUITE, 3 + args.devices.len());
    let mut kmsg = match Kmsg::open_for(SUITE, true) {
        Ok(k) => k,
        Err(code) => return code,
    };
    let start = Instant::now();
    let loaded = step(&mut kmsg, &args.devices, &args.driver, true, || {
        kmod::insmod(&args.module)
    });
    let ok = loaded.is_ok();
    ktap.result("initial_binding", loaded);
    for dev in &args.devices {
        let name = format!("unbind_bind_cycles.{}", dev.bdf.replace([':', '.'], "_"));
        if ok {
            let t = Instant::now();
            let res = unbind_bind_cycles(&args, dev, &mut kmsg);
            ktap.diag(&format!(
                "{}: {} cycles in {:.1} s",
                dev.bdf,
                args.cycles,
                t.elapsed().as_secs_f64()
            ));
            ktap.result(&name, res);
        } else {
            ktap.skip(&name, "the module did not bind every device");
        }
    }
    if ok {
        let t = Instant::now();
        let res = module_cycles(&args, &mut kmsg);
        ktap.diag(&format!(
            "{} module cycles in {:.1} s",
            args.module_cycles,
            t.elapsed().as_secs_f64()
        ));
        ktap.result("module_load_unload_cycles", res);
    } else {
        ktap.skip(
            "module_load_unload_cycles",
            "the module did not bind every device",
        );
    }
    let gone = module_name(&args.module).and_then(|name| {
        step(&mut kmsg, &args.devices, &args.driver, false, || {
            if kmod::is_loaded(&name) {
                kmod::rmmod(&args.module)?;
            }
            Ok(())
        })?;
        if kmod::is_loaded(&name) {
            return Err(format!("{name} is still in /proc/modules"));
        }
        Ok(())
    });
    ktap.result("module_gone", gone);
    ktap.diag(&format!("elapsed: {:.1} s", start.elapsed().as_secs_f64()));
    ExitCode::from(ktap.finish() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn expectations_belong_to_the_device_before_them() {
        let a = parse(argv(
            "--driver d --module /m.ko --cycles 3 --device 0000:00:03.0 --expect one \
             --device 0000:00:04.0 --irq --expect two --expect three",
        ))
        .unwrap();
        assert_eq!((a.driver.as_str(), a.cycles, a.module_cycles), ("d", 3, 20));
        assert_eq!(a.devices.len(), 2);
        assert_eq!(
            (a.devices[0].irq, &a.devices[0].expect[..]),
            (false, &["one".to_string()][..])
        );
        assert!(a.devices[1].irq);
        assert_eq!(a.devices[1].expect, ["two", "three"]);
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(parse(argv("--driver d --module m.ko"))
            .unwrap_err()
            .contains("no --device"));
        assert!(parse(argv("--driver d --module m.ko --expect x"))
            .unwrap_err()
            .contains("must follow a --device"));
        assert!(parse(argv("--module m.ko --device x")).is_err());
        assert!(parse(argv("--driver d --module m.ko --device x --cycles many")).is_err());
    }

    #[test]
    fn a_missing_a_repeated_or_a_foreign_line_is_a_problem() {
        let dev = |bdf: &str| Device {
            bdf: bdf.into(),
            irq: false,
            expect: vec!["count: 1".into()],
        };
        let devices = [dev("0000:00:03.0"), dev("0000:00:04.0")];
        let records = |texts: &[&str]| Records {
            texts: texts.iter().map(|t| t.to_string()).collect(),
            problems: Vec::new(),
        };
        let good = records(&["drv 0000:00:03.0: count: 1", "drv 0000:00:04.0: count: 1"]);
        assert!(record_problems(&good, &devices, true).is_empty());
        // 00:04.0 printed nothing; 00:03.0 printed its line twice and an unbind.
        let bad = records(&[
            "drv 0000:00:03.0: count: 1",
            "drv 0000:00:03.0: count: 1",
            "drv 0000:00:03.0: unbind",
        ]);
        assert_eq!(
            record_problems(&bad, &devices, true),
            [
                "0000:00:03.0: `count: 1` printed 2 times, expected once",
                "0000:00:03.0: `: unbind` printed 1 times, expected never",
                "0000:00:04.0: `count: 1` printed 0 times, expected once",
            ]
        );
        // A removal must print unbind once and none of the probe's lines.
        let removal = records(&["drv 0000:00:03.0: unbind", "drv 0000:00:03.0: count: 1"]);
        assert_eq!(
            record_problems(&removal, &devices[..1], false),
            ["0000:00:03.0: `count: 1` printed 1 times, expected never"]
        );
    }

    #[test]
    fn records_count_by_device_and_text() {
        let r = Records {
            texts: vec![
                "rust_driver_pci 0000:00:03.0: unbind".into(),
                "rust_driver_pci 0000:00:04.0: unbind".into(),
                "rust_driver_pci 0000:00:04.0: edu MSI interrupt handled (count 1)".into(),
            ],
            problems: Vec::new(),
        };
        assert_eq!(r.count("0000:00:03.0", UNBIND), 1);
        assert_eq!(r.count("0000:00:04.0", "MSI interrupt"), 1);
        assert_eq!(r.count("0000:00:03.0", "MSI interrupt"), 0);
    }
}
