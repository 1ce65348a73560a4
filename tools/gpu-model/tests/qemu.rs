//! The model against a real QEMU (`vfio-user-pci`, QEMU 10.1 or newer), without a guest
//! kernel: QEMU realizes the device, SeaBIOS sizes and assigns the BARs, and the monitor
//! reads BAR0 through the whole path (guest physical address -> QEMU -> socket -> model).
//!
//! Needs a QEMU, so it is `#[ignore]`d; run it with
//! `GPU_MODEL_QEMU="<qemu command, whitespace separated>" cargo test -p gpu-model --test qemu -- --ignored`.
//! Without `GPU_MODEL_QEMU` the ignored test fails with a message rather than pass untested.

mod common;

use common::{temp_dir, Model};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Qemu {
    child: Child,
    qmp: BufReader<UnixStream>,
}

impl Qemu {
    fn start(dir: &Path, model_socket: &Path) -> Qemu {
        let cmdline = std::env::var("GPU_MODEL_QEMU")
            .expect("set GPU_MODEL_QEMU to a QEMU command with vfio-user-pci (QEMU >= 10.1)");
        let mut words = cmdline.split_whitespace();
        let qmp_path = dir.join("qmp.sock");
        let _ = std::fs::remove_file(&qmp_path);
        let device = format!(
            r#"{{"driver":"vfio-user-pci","id":"gpu0","bus":"rp1","socket":{{"type":"unix","path":"{}"}}}}"#,
            model_socket.display()
        );
        let child = Command::new(words.next().expect("empty GPU_MODEL_QEMU"))
            .args(words)
            .args([
                "-machine", "q35", "-accel", "tcg", "-m", "256", "-display", "none",
            ])
            .args([
                "-nodefaults",
                "-device",
                "pcie-root-port,id=rp1,chassis=1,slot=1",
            ])
            .args(["-device", &device, "-qmp"])
            .arg(format!("unix:{},server=on,wait=off", qmp_path.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start QEMU");
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            if let Ok(s) = UnixStream::connect(&qmp_path) {
                break s;
            }
            assert!(Instant::now() < deadline, "QMP socket never appeared");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut q = Qemu {
            child,
            qmp: BufReader::new(stream),
        };
        q.line(); // greeting
        q.execute(r#"{"execute":"qmp_capabilities"}"#);
        q
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.qmp.read_line(&mut l).expect("QMP read");
        l
    }

    /// Sends one QMP command and returns its reply line (events are skipped).
    fn execute(&mut self, json: &str) -> String {
        writeln!(self.qmp.get_mut(), "{json}").expect("QMP write");
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "QMP closed");
            if l.contains("\"return\"") || l.contains("\"error\"") {
                return l;
            }
        }
    }

    /// Runs a human monitor command and returns its output with escapes undone.
    fn hmp(&mut self, cmd: &str) -> String {
        let r = self.execute(&format!(
            r#"{{"execute":"human-monitor-command","arguments":{{"command-line":"{cmd}"}}}}"#
        ));
        r.replace("\\r\\n", "\n").replace("\\\"", "\"")
    }

    /// Reads a 32-bit word of guest physical memory through the monitor.
    fn read_phys(&mut self, addr: u64) -> u32 {
        let out = self.hmp(&format!("xp /1wx {addr:#x}"));
        let hex = out.rsplit("0x").next().expect("xp output");
        let digits: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
        u32::from_str_radix(&digits, 16).unwrap_or_else(|_| panic!("bad xp output {out}"))
    }

    /// Waits until SeaBIOS has assigned BAR0 of the GPU; returns `info pci` of it and BAR0.
    fn wait_for_bar0(&mut self) -> (String, u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = self.hmp("info pci");
            let gpu: String = info
                .split("Bus ")
                .find(|s| s.contains("PCI device 10de:"))
                .unwrap_or_default()
                .to_string();
            if let Some(bar0) = gpu
                .lines()
                .find(|l| l.contains("BAR0: 32 bit memory at 0x"))
            {
                let addr = bar0
                    .split("at 0x")
                    .nth(1)
                    .and_then(|s| s.split_whitespace().next());
                if let Some(a) = addr.and_then(|a| u64::from_str_radix(a, 16).ok()) {
                    if a != 0 && a != 0xffff_ffff {
                        return (gpu, a);
                    }
                }
            }
            assert!(Instant::now() < deadline, "BAR0 never assigned: {info}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn quit(mut self) {
        let _ = writeln!(self.qmp.get_mut(), r#"{{"execute":"quit"}}"#);
        let _ = self.child.wait();
    }
}

/// Size of the BAR whose `info pci` line starts with `prefix`
/// (`BAR1: 64 bit prefetchable memory at 0xSTART [0xEND]`).
fn bar_size(info: &str, prefix: &str) -> Option<u64> {
    let line = info
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(prefix))?;
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let (_, rest) = line.split_once(" at ")?;
    let (start, end) = rest.split_once(" [")?;
    Some(hex(end.trim_end_matches(']'))? - hex(start)? + 1)
}

fn control(m: &Model, cmd: &str) -> String {
    let s = UnixStream::connect(m.control.as_ref().unwrap()).unwrap();
    writeln!(&s, "{cmd}").unwrap();
    let mut l = String::new();
    BufReader::new(s).read_line(&mut l).unwrap();
    l.trim_end().to_string()
}

#[test]
#[ignore]
fn qemu_sees_the_gpu_and_reads_bar0() {
    for (profile, id, class, bar1, boot0) in [
        (
            "tu102",
            "10de:1e04",
            "VGA controller",
            256u64 << 20,
            0x1620_00a1u32,
        ),
        (
            "gh100",
            "10de:2330",
            "3D controller",
            128 << 30,
            0x1800_00a1,
        ),
        (
            "gb202",
            "10de:2b85",
            "VGA controller",
            256 << 20,
            0x1b20_00a1,
        ),
        ("dead", "10de:2330", "3D controller", 128 << 30, 0xffff_ffff),
    ] {
        let dir = temp_dir(&format!("qemu-{profile}"));
        let m = Model::start(&dir, profile, true, &[]);
        let t0 = Instant::now();
        let mut q = Qemu::start(&dir, &m.socket);
        let (gpu, bar0) = q.wait_for_bar0();
        eprintln!("{profile}: QEMU start to BAR0 assigned: {:?}", t0.elapsed());
        assert!(gpu.contains(&format!("{class}: PCI device {id}")), "{gpu}");
        assert!(gpu.contains(&format!("PCI subsystem {id}")), "{gpu}");
        assert_eq!(
            bar_size(&gpu, "BAR0: 32 bit memory"),
            Some(16 << 20),
            "{gpu}"
        );
        assert_eq!(
            bar_size(&gpu, "BAR1: 64 bit prefetchable memory"),
            Some(bar1),
            "{gpu}"
        );
        assert_eq!(
            bar_size(&gpu, "BAR3: 64 bit prefetchable memory"),
            Some(32 << 20),
            "{gpu}"
        );
        assert_eq!(q.read_phys(bar0), boot0, "{profile} BOOT0");
        if profile != "dead" {
            assert_eq!(
                q.read_phys(bar0 + 0x88000) & 0xffff,
                0x10de,
                "config mirror"
            );
            assert_eq!(q.read_phys(bar0 + 0x1000), gpu_model::bar0::UNWRITTEN);
            assert_eq!(control(&m, "fall-off-bus"), "ok off-bus");
            assert_eq!(q.read_phys(bar0), 0xffff_ffff, "fallen off the bus");
            assert_eq!(control(&m, "recover"), "ok on-bus");
            assert_eq!(q.read_phys(bar0), boot0);
        }
        q.quit();
        // The model keeps serving: a second QEMU finds the device again.
        let mut q = Qemu::start(&dir, &m.socket);
        let (_, bar0) = q.wait_for_bar0();
        assert_eq!(q.read_phys(bar0), boot0, "{profile} after reconnect");
        q.quit();
        let stats = control(&m, "stats");
        assert!(
            stats.contains(" resets=") && !stats.contains(" resets=0 "),
            "{stats}"
        );
    }
}
