//! Booting a kernel under QEMU 11.1 (q35, TCG, serial console) and capturing its console.

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A GPU attached to a boot, each on its own PCIe root port (`rp<N>`, the `N-1`th GPU being
/// `gpu<N-1>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gpu {
    /// The emulated GPU served over vfio-user on this socket.
    Model(PathBuf),
    /// A host GPU passed through with vfio-pci (PCI address such as `0000:01:00.0`).
    Passthrough(String),
}

/// Size of q35's 64-bit PCI hole (`q35-pcihost.pci-hole64-size`): room for every profile's
/// BARs in one boot (see [`Boot::args`]).
pub const PCI_HOLE64: &str = "2T";

/// Physical address bits of the guest CPU: enough for [`PCI_HOLE64`] above RAM.
pub const PHYS_BITS: u32 = 44;

/// The most GPUs one boot can have: root ports sit at slots 1.. of bus 0, and q35 keeps slot
/// 0x1f (LPC, SATA, SMBus).
pub const MAX_GPUS: usize = 30;

/// The PCI address of the root port of the `index`th GPU (`gpu<index>`, on `rp<index+1>`):
/// bus 0, slot `index + 1`. The GPU is the one function on the bus behind it, whose number
/// the guest kernel chooses.
pub fn root_port_bdf(index: usize) -> String {
    format!("0000:00:{:02x}.0", index + 1)
}

/// `value` as one value of a QEMU `key=value,...` option: commas doubled, as QEMU's option
/// parser reads them.
pub fn opt_value(value: &str) -> String {
    value.replace(',', ",,")
}

/// One boot.
pub struct Boot {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initramfs: PathBuf,
    /// Folder for the console log and the QMP socket.
    pub run_dir: PathBuf,
    /// Extra kernel command-line arguments.
    pub append: Vec<String>,
    /// The GPUs to attach, in order.
    pub gpus: Vec<Gpu>,
    /// Extra QEMU devices (`-device` values).
    pub devices: Vec<String>,
    /// The boot is killed and failed after this long.
    pub timeout: Duration,
}

/// What a boot produced.
pub struct BootResult {
    /// The whole console output.
    pub console: String,
    /// Where the console was saved.
    pub log: PathBuf,
    /// QEMU's exit code (`None` when it was killed).
    pub exit: Option<i32>,
    /// Whether the timeout killed QEMU.
    pub timed_out: bool,
    /// Wall time of the boot.
    pub wall: Duration,
}

impl Boot {
    /// Where the guest programs' serial port (ttyS1) is recorded.
    pub fn guest_log(&self) -> PathBuf {
        self.run_dir.join("guest.log")
    }

    /// The QMP socket of the boot.
    pub fn qmp_socket(&self) -> PathBuf {
        crate::util::socket_path(&self.run_dir, "qmp.sock")
    }

    /// The QEMU arguments (after the binary and its `-L` folders).
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-machine".into(),
            "q35".into(),
            // Room above 4 GiB for the GPUs' 64-bit BARs, for every profile of the model in
            // one boot: their BAR1s alone add up to ~870 GiB (B100 and B200 256 GiB each, H100
            // and the dead board 128 GiB, A100 64 GiB, L4 32 GiB), and each root port's window
            // is aligned to its largest BAR. The hole must fit under the CPU's physical address
            // width, so the CPU gets 44 bits (16 TiB) instead of the 40 (1 TiB) QEMU gives a
            // TCG `max` CPU, with which QEMU refuses a 2 TiB hole.
            "-global".into(),
            format!("q35-pcihost.pci-hole64-size={PCI_HOLE64}"),
            "-accel".into(),
            accelerator().0.into(),
            "-cpu".into(),
            format!("max,phys-bits={PHYS_BITS}"),
            "-m".into(),
            "1024".into(),
            "-smp".into(),
            "1".into(),
            "-nodefaults".into(),
            "-no-reboot".into(),
            "-nographic".into(),
            "-serial".into(),
            "stdio".into(),
            "-bios".into(),
            "qboot.rom".into(),
            "-kernel".into(),
            self.kernel.display().to_string(),
            "-initrd".into(),
            self.initramfs.display().to_string(),
            "-chardev".into(),
            format!(
                "socket,id=qmp,path={},server=on,wait=off",
                opt_value(&self.qmp_socket().to_string_lossy())
            ),
            // QEMU 11.1 deprecates `-mon` for this object.
            "-object".into(),
            "monitor-qmp,id=qmp-monitor,chardev=qmp".into(),
            // The guest programs' output on a serial port of its own (ttyS1), so that kernel
            // messages on the console cannot cut their lines.
            "-chardev".into(),
            format!(
                "file,id=guest,path={}",
                opt_value(&self.guest_log().to_string_lossy())
            ),
            "-serial".into(),
            "chardev:guest".into(),
        ];
        let mut append = vec![
            "console=ttyS0".to_string(),
            "panic=-1".into(),
            "rdinit=/init".into(),
        ];
        append.extend(self.append.iter().cloned());
        a.push("-append".into());
        a.push(append.join(" "));
        for (i, gpu) in self.gpus.iter().enumerate() {
            let port = i + 1;
            a.push("-device".into());
            a.push(format!(
                "pcie-root-port,id=rp{port},chassis={port},slot={port},bus=pcie.0,addr={port:#x}"
            ));
            let device = match gpu {
                Gpu::Model(sock) => serde_json::json!({
                    "driver": "vfio-user-pci",
                    "id": format!("gpu{i}"),
                    "bus": format!("rp{port}"),
                    "socket": {"type": "unix", "path": sock.to_string_lossy()},
                })
                .to_string(),
                Gpu::Passthrough(bdf) => {
                    format!("vfio-pci,host={},id=gpu{i},bus=rp{port}", opt_value(bdf))
                }
            };
            a.extend(["-device".into(), device]);
        }
        for d in &self.devices {
            a.extend(["-device".into(), d.clone()]);
        }
        a
    }
}

use crate::setup::qemu_command;

/// The accelerator boots use, and why: hardware KVM when the host has it, else TCG (this
/// project's machines have PVM behind /dev/kvm, which cannot run our kernels).
pub fn accelerator() -> (&'static str, &'static str) {
    let hardware =
        Path::new("/sys/module/kvm_intel").exists() || Path::new("/sys/module/kvm_amd").exists();
    match (Path::new("/dev/kvm").exists(), hardware) {
        (true, true) => ("kvm", "hardware KVM"),
        (true, false) => (
            "tcg",
            "/dev/kvm is not hardware KVM (kvm_intel/kvm_amd not loaded)",
        ),
        (false, _) => ("tcg", "no /dev/kvm"),
    }
}

/// Checks a PCI address given for passthrough (`DDDD:BB:DD.F`).
pub fn valid_bdf(bdf: &str) -> bool {
    let b = bdf.as_bytes();
    b.len() == 12
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b':',
            10 => *c == b'.',
            11 => (b'0'..=b'7').contains(c),
            _ => c.is_ascii_hexdigit(),
        })
}

/// Boots, passing every console line to `on_line` as it arrives; kills QEMU at the timeout.
pub fn boot(rootfs: &Path, b: &Boot, on_line: impl FnMut(&str)) -> Result<BootResult> {
    if b.gpus.len() > MAX_GPUS {
        anyhow::bail!(
            "{} GPUs asked for; one boot has room for {MAX_GPUS} (a root port each on bus 0)",
            b.gpus.len()
        );
    }
    std::fs::create_dir_all(&b.run_dir)?;
    let _ = std::fs::remove_file(b.qmp_socket());
    let _ = std::fs::remove_file(b.guest_log());
    let mut cmd: Command = qemu_command(rootfs);
    cmd.args(b.args());
    console(
        cmd,
        &b.run_dir.join("console.log"),
        Some(&b.guest_log()),
        b.timeout,
        on_line,
    )
}

/// Follows the file `path` that another process writes, sending each complete line (and a
/// last partial one) on `tx` until `done` is set and nothing new came.
fn follow(path: PathBuf, tx: mpsc::Sender<String>, done: std::sync::Arc<AtomicBool>) {
    let mut offset = 0u64;
    let mut pending = Vec::new();
    loop {
        let finished = done.load(Ordering::Acquire);
        let mut new = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&path) {
            if f.seek(SeekFrom::Start(offset)).is_ok() {
                let _ = f.read_to_end(&mut new);
            }
        }
        offset += new.len() as u64;
        pending.extend_from_slice(&new);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..i]);
            let _ = tx.send(text.trim_end_matches('\r').to_string());
        }
        if finished && new.is_empty() {
            if !pending.is_empty() {
                let _ = tx.send(String::from_utf8_lossy(&pending).into_owned());
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` (QEMU with its console on stdout), logging and passing on every line, and kills
/// it once `timeout` has passed, however much it prints.
fn console(
    mut cmd: Command,
    log: &Path,
    guest_log: Option<&Path>,
    timeout: Duration,
    mut on_line: impl FnMut(&str),
) -> Result<BootResult> {
    let log = log.to_path_buf();
    let mut file = std::fs::File::create(&log)?;
    crate::util::die_with_parent(&mut cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut guard = crate::util::ChildGuard(cmd.spawn().context("cannot start QEMU")?);
    let child = &mut guard.0;
    let (tx, rx) = mpsc::channel::<String>();
    let out = child.stdout.take().context("no stdout")?;
    let err = child.stderr.take().context("no stderr")?;
    let tx2 = tx.clone();
    let t1 = std::thread::spawn(move || {
        for line in BufReader::new(out).split(b'\n').map_while(|l| l.ok()) {
            let _ = tx.send(
                String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string(),
            );
        }
    });
    let guest_done = std::sync::Arc::new(AtomicBool::new(false));
    let t3 = guest_log.map(|p| {
        let (p, tx, done) = (p.to_path_buf(), tx2.clone(), guest_done.clone());
        std::thread::spawn(move || follow(p, tx, done))
    });
    let t2 = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
            let _ = tx2.send(format!("qemu: {line}"));
        }
    });
    let mut console = String::new();
    let mut timed_out = false;
    let exit = loop {
        // The deadline is checked on every line too: a guest that never stops printing must
        // still time out.
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                writeln!(file, "{line}")?;
                on_line(&line);
                console.push_str(&line);
                console.push('\n');
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(st) = child.try_wait()? {
            break st.code();
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
    };
    let _ = t1.join();
    let _ = t2.join();
    guest_done.store(true, Ordering::Release);
    if let Some(t) = t3 {
        let _ = t.join();
    }
    for line in rx.try_iter() {
        writeln!(file, "{line}")?;
        on_line(&line);
        console.push_str(&line);
        console.push('\n');
    }
    Ok(BootResult {
        console,
        log,
        exit,
        timed_out,
        wall: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(gpus: Vec<Gpu>) -> Boot {
        Boot {
            kernel: "/k/bzImage".into(),
            initramfs: "/k/initramfs.cpio".into(),
            run_dir: "/r".into(),
            append: vec!["quiet".into()],
            gpus,
            devices: vec![],
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn passthrough_uses_vfio_pci_on_a_root_port() {
        let a = boot(vec![Gpu::Passthrough("0000:01:00.0".into())])
            .args()
            .join(" ");
        assert!(
            a.contains("-device pcie-root-port,id=rp1,chassis=1,slot=1"),
            "{a}"
        );
        assert!(
            a.contains("-device vfio-pci,host=0000:01:00.0,id=gpu0,bus=rp1"),
            "{a}"
        );
        assert!(!a.contains("vfio-user"), "{a}");
    }

    #[test]
    fn model_uses_vfio_user_socket() {
        let a = boot(vec![Gpu::Model("/s/gpu.sock".into())])
            .args()
            .join(" ");
        assert!(a.contains(r#""driver":"vfio-user-pci""#), "{a}");
        assert!(a.contains(r#""path":"/s/gpu.sock""#), "{a}");
        assert!(
            a.contains("-chardev socket,id=qmp,path=/r/qmp.sock,server=on,wait=off"),
            "{a}"
        );
        assert!(
            a.contains("-object monitor-qmp,id=qmp-monitor,chardev=qmp"),
            "{a}"
        );
        assert!(!a.contains("-mon "), "{a}");
    }

    /// Every profile's BARs fit in one boot: the 64-bit hole is 2 TiB and the CPU addresses
    /// 44 bits, which QEMU needs for a hole that large.
    #[test]
    fn the_64_bit_hole_has_room_for_every_profile() {
        let a = boot(vec![]).args();
        let after = |opt: &str, value: &str| a.windows(2).any(|w| w[0] == opt && w[1] == value);
        assert!(after("-global", "q35-pcihost.pci-hole64-size=2T"), "{a:?}");
        assert!(after("-cpu", "max,phys-bits=44"), "{a:?}");
        assert!(!a.iter().any(|x| x.contains("=256G")), "{a:?}");
        // The BAR1s of all profiles (~870 GiB) fit twice over (room for the windows'
        // alignment), and the hole fits in the CPU's physical address space.
        let bar1: u64 = gpu_model::profile::PROFILES
            .iter()
            .map(|p| p.bar1_size)
            .sum();
        let hole = gpu_model::profile::parse_size(PCI_HOLE64).unwrap();
        assert!(bar1 > 512 << 30, "{bar1:#x}");
        assert!(2 * bar1 <= hole, "{bar1:#x} in {hole:#x}");
        assert!(hole < 1 << PHYS_BITS);
    }

    #[test]
    fn root_ports_sit_at_fixed_slots_of_bus_0() {
        let gpus = (0..3)
            .map(|i| Gpu::Model(format!("/s/{i}.sock").into()))
            .collect();
        let a = boot(gpus).args().join(" ");
        assert!(
            a.contains("-device pcie-root-port,id=rp3,chassis=3,slot=3,bus=pcie.0,addr=0x3"),
            "{a}"
        );
        assert_eq!(root_port_bdf(0), "0000:00:01.0");
        assert_eq!(root_port_bdf(25), "0000:00:1a.0");
        assert_eq!(root_port_bdf(MAX_GPUS - 1), "0000:00:1e.0");
    }

    #[test]
    fn too_many_gpus_are_refused_before_qemu_starts() {
        let gpus = (0..=MAX_GPUS)
            .map(|i| Gpu::Model(format!("/s/{i}.sock").into()))
            .collect();
        let b = boot(gpus);
        let e = super::boot(Path::new("/nonexistent"), &b, |_| {})
            .err()
            .unwrap();
        assert!(e.to_string().contains("room for 30"), "{e}");
    }

    #[test]
    fn base_boot_has_console_and_no_gpu() {
        let a = boot(vec![]).args();
        let append = &a[a.iter().position(|x| x == "-append").unwrap() + 1];
        assert!(append.starts_with("console=ttyS0 panic=-1"), "{append}");
        assert!(append.ends_with("quiet"));
        assert!(!a.iter().any(|x| x.contains("rp1")));
    }

    #[test]
    fn several_gpus_get_a_root_port_each() {
        let mut b = boot(vec![
            Gpu::Model("/s/a.sock".into()),
            Gpu::Model("/s/b.sock".into()),
        ]);
        b.devices = vec!["pci-testdev".into(), "edu".into()];
        let a = b.args();
        let devices: Vec<serde_json::Value> = a
            .windows(2)
            .filter(|w| w[0] == "-device" && w[1].starts_with('{'))
            .map(|w| serde_json::from_str(&w[1]).unwrap())
            .collect();
        assert_eq!(devices.len(), 2);
        for (i, d) in devices.iter().enumerate() {
            assert_eq!(d["id"], format!("gpu{i}"));
            assert_eq!(d["bus"], format!("rp{}", i + 1));
        }
        assert_eq!(devices[1]["socket"]["path"], "/s/b.sock");
        let joined = a.join(" ");
        assert!(joined.contains("pcie-root-port,id=rp2,chassis=2,slot=2"));
        assert!(
            joined.contains("-device pci-testdev -device edu"),
            "{joined}"
        );
    }

    #[test]
    fn paths_with_commas_and_quotes_survive_the_options() {
        let mut b = boot(vec![Gpu::Model(r#"/s/a,b"c.sock"#.into())]);
        b.run_dir = "/r,x".into();
        let a = b.args();
        let json = a.iter().find(|x| x.starts_with('{')).unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["socket"]["path"], r#"/s/a,b"c.sock"#);
        assert!(a
            .iter()
            .any(|x| x == "socket,id=qmp,path=/r,,x/qmp.sock,server=on,wait=off"));
    }

    #[test]
    fn a_guest_that_prints_forever_still_times_out() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "while :; do echo tick; sleep 0.05; done"]);
        let mut lines = 0;
        let r = console(
            cmd,
            &dir.join("console.log"),
            None,
            Duration::from_secs(1),
            |_| lines += 1,
        )
        .unwrap();
        assert!(r.timed_out);
        assert!(r.wall < Duration::from_secs(5), "{:?}", r.wall);
        assert!(lines >= 5, "{lines} lines");
    }

    /// The guest's own serial port is followed while the guest runs: its lines arrive whole
    /// however they were written, the last one even without a newline.
    #[test]
    fn the_guest_port_is_followed_line_by_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let guest = dir.join("guest.log");
        let mut cmd = Command::new("sh");
        let script = format!(
            "g={}; echo '[ 1.0] kernel line'; printf 'ok 1 ' >> $g; sleep 0.1; \
             echo '[ 1.1] kernel cuts in'; printf 'whole\\nlast' >> $g; sleep 0.1",
            guest.display()
        );
        cmd.args(["-c", &script]);
        let mut seen = Vec::new();
        let r = console(
            cmd,
            &dir.join("console.log"),
            Some(&guest),
            Duration::from_secs(10),
            |l| seen.push(l.to_string()),
        )
        .unwrap();
        assert!(!r.timed_out);
        assert!(seen.iter().any(|l| l == "ok 1 whole"), "{seen:?}");
        assert!(seen.iter().any(|l| l == "last"), "{seen:?}");
        assert!(
            seen.iter().any(|l| l == "[ 1.1] kernel cuts in"),
            "{seen:?}"
        );
        assert!(r.console.contains("ok 1 whole\n"));
    }

    #[test]
    fn bdf_validation() {
        assert!(valid_bdf("0000:01:00.0"));
        assert!(valid_bdf("0000:af:1f.7"));
        assert!(!valid_bdf("01:00.0"));
        assert!(!valid_bdf("0000:01:00.8"));
        assert!(!valid_bdf("0000:01:00.0; rm"));
    }
}
