//! The emulated GPU as seen by the harness: starting and stopping `gpu-model`, and what the
//! guest probe must find for a profile.

use crate::util::{self, describe};
use anyhow::{bail, Context, Result};
use gpu_model::profile::{self, Overrides, Profile};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The profile called `name`, or an error listing the known ones.
pub fn profile(name: &str) -> Result<&'static Profile> {
    profile::find(name).with_context(|| {
        let names: Vec<&str> = profile::PROFILES.iter().map(|p| p.name).collect();
        format!(
            "unknown GPU profile `{name}` (profiles: {})",
            names.join(", ")
        )
    })
}

/// The knobs of `--chip PROFILE:KNOB=VALUE:...`: the model's own options, by their flag names.
pub const KNOBS: &[&str] = &["boot0", "boot42", "device-id", "class", "bar1-size"];

/// One emulated GPU as `cargo xtask run --chip` names it: a profile of the model and the
/// options given with it, `PROFILE[:KNOB=VALUE]...` (e.g. `ga102:boot0=0x172000b1:class=030200`),
/// where each knob is one of the model's flags ([`KNOBS`]) and its value is what the flag takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chip {
    /// The profile.
    pub profile: &'static Profile,
    /// `boot0`, `boot42`, `device-id`, `class`.
    pub overrides: Overrides,
    /// `bar1-size`, in bytes.
    pub bar1_size: Option<u64>,
}

impl Chip {
    /// Parses `text`; an error (in the model's own words for a value) names the knob and the
    /// `--chip` value. Values are checked as the model checks them, so a bad one is refused
    /// before anything is built or started.
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = text.split(':');
        let profile = profile(parts.next().unwrap_or_default())?;
        let mut chip = Chip {
            profile,
            overrides: Overrides::default(),
            bar1_size: None,
        };
        let mut seen = Vec::new();
        for part in parts {
            let Some((knob, value)) = part.split_once('=') else {
                bail!(
                    "`--chip {text}`: `{part}` is not KNOB=VALUE (knobs: {})",
                    KNOBS.join(", ")
                );
            };
            if seen.contains(&knob) {
                bail!("`--chip {text}`: {knob} is given twice");
            }
            seen.push(knob);
            let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("`--chip {text}`: --{knob}: {e}");
            let o = &mut chip.overrides;
            match knob {
                "boot0" => o.boot0 = Some(profile::parse_boot(value).map_err(|e| bad(&e))?),
                "boot42" => o.boot42 = Some(profile::parse_boot(value).map_err(|e| bad(&e))?),
                "device-id" => {
                    o.device_id = Some(profile::parse_device_id(value).map_err(|e| bad(&e))?)
                }
                "class" => {
                    o.class_code = Some(profile::parse_class_code(value).map_err(|e| bad(&e))?)
                }
                "bar1-size" => {
                    chip.bar1_size = Some(profile::parse_bar1_size(value).map_err(|e| bad(&e))?)
                }
                _ => bail!(
                    "`--chip {text}`: unknown knob `{knob}` (knobs: {})",
                    KNOBS.join(", ")
                ),
            }
        }
        profile
            .with_overrides(&chip.overrides)
            .map_err(|e| anyhow::anyhow!("`--chip {text}`: {e}"))?;
        Ok(chip)
    }

    /// The profile as the guest sees it, the knobs applied.
    pub fn effective(&self) -> Profile {
        let p = self
            .profile
            .with_overrides(&self.overrides)
            .expect("checked by Chip::parse");
        Profile {
            bar1_size: self.bar1_size.unwrap_or(p.bar1_size),
            ..p
        }
    }
}

/// Builds the model (release) and returns the binary's path.
pub fn build_model(repo: &Path, logs: &Path) -> Result<PathBuf> {
    let mut c = Command::new("cargo");
    c.current_dir(repo)
        .args(["build", "--quiet", "--release", "-p", "gpu-model"]);
    util::run_logged(
        "cargo build gpu-model",
        &mut c,
        &logs.join("gpu-model-build.log"),
    )?;
    Ok(target_dir(repo)?.join("release/gpu-model"))
}

/// The workspace's target folder as cargo sees it (`CARGO_TARGET_DIR`, the user's cargo
/// configuration, or `target/`).
fn target_dir(repo: &Path) -> Result<PathBuf> {
    let mut c = Command::new("cargo");
    c.current_dir(repo).args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--offline",
    ]);
    let meta: serde_json::Value =
        serde_json::from_str(&util::output(&mut c)?).context("cargo metadata printed no JSON")?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata names no target directory")
}

/// The guest probe's command line for `p`: what it must find in sysfs and BAR0.
pub fn probe_command(p: &Profile, extra: &str) -> String {
    let (boot0, boot42) = if p.dead {
        (0xffff_ffff, 0xffff_ffff)
    } else {
        (p.boot0(), p.boot42())
    };
    // A register the model reads back as written; a dead device has none.
    let scratch = if p.dead { "" } else { " --scratch 0x1000" };
    format!(
        "gpu_probe --device {:#06x} --class {:#08x} --revision {:#04x} --bar1 {:#x} \
         --boot0 {boot0:#010x} --boot42 {boot42:#010x}{scratch}{extra}",
        p.device_id,
        p.class_code,
        p.revision_id(),
        p.bar1_size
    )
}

/// A running model; stopped with SIGTERM (clean shutdown, summary line) on drop.
pub struct Model {
    child: Child,
    /// The vfio-user socket QEMU connects to.
    pub socket: PathBuf,
    /// The fault-injection control socket.
    pub control: PathBuf,
    /// The model's stderr log.
    pub log: PathBuf,
    /// Time from spawning to the ready line.
    pub start_time: Duration,
    /// The model's ready line (`gpu-model: ready: PROFILE (BOARD, 10de:ID, class C, BOOT0 X,
    /// ...)`): the identity it really presents, overrides applied.
    pub ready: String,
}

/// The model's command-line flags for `o`: `--boot0`, `--boot42`, `--device-id`, `--class`,
/// each only when set, in hex.
pub fn override_args(o: &Overrides) -> Vec<String> {
    let mut a = Vec::new();
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            a.extend([name.to_string(), v]);
        }
    };
    flag("--boot0", o.boot0.map(|v| format!("{v:#010x}")));
    flag("--boot42", o.boot42.map(|v| format!("{v:#010x}")));
    flag("--device-id", o.device_id.map(|v| format!("{v:#06x}")));
    flag("--class", o.class_code.map(|v| format!("{v:#08x}")));
    a
}

/// A shell word (for a guest run line) that expands to the PCI address of the `index`th GPU:
/// the one device behind its root port ([`crate::boot::qemu::root_port_bdf`]), whose bus number
/// the guest kernel chooses. The pattern matches a PCI address only, not the port's service
/// devices (`0000:00:01.0:pcie001`, ...) in the same folder.
pub fn gpu_bdf_word(index: usize) -> String {
    format!(
        "$(basename /sys/bus/pci/devices/{}/0000:??:??.?)",
        crate::boot::qemu::root_port_bdf(index)
    )
}

impl Model {
    /// Starts `bin` with `profile` and the identity `overrides` (`--boot0`, `--boot42`,
    /// `--device-id`, `--class`; see [`override_args`]) in `dir` and waits for its ready line.
    pub fn start(bin: &Path, profile: &str, overrides: &Overrides, dir: &Path) -> Result<Self> {
        Self::start_with(bin, profile, overrides, None, dir)
    }

    /// [`Model::start`] with BAR1's size (`--bar1-size`) when given.
    pub fn start_with(
        bin: &Path,
        profile: &str,
        overrides: &Overrides,
        bar1_size: Option<u64>,
        dir: &Path,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let socket = util::socket_path(dir, "gpu.sock");
        let control = util::socket_path(dir, "gpu-control.sock");
        let log = dir.join("gpu-model.log");
        let mut cmd = Command::new(bin);
        cmd.arg("--profile")
            .arg(profile)
            .arg("--socket")
            .arg(&socket)
            .arg("--control")
            .arg(&control)
            .args(override_args(overrides));
        if let Some(size) = bar1_size {
            cmd.arg("--bar1-size").arg(format!("{size:#x}"));
        }
        util::die_with_parent(&mut cmd);
        let t = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{}`", describe(&cmd)))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = mpsc::channel();
        let mut file = std::fs::File::create(&log)?;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                let _ = writeln!(file, "{line}");
                if line.starts_with("gpu-model: ready") {
                    let _ = tx.send(line);
                }
            }
        });
        let mut model = Self {
            child,
            socket,
            control,
            log,
            start_time: Duration::ZERO,
            ready: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(ready) => {
                model.start_time = t.elapsed();
                model.ready = ready;
                Ok(model)
            }
            Err(_) => bail!(
                "gpu-model did not get ready:\n{}",
                util::tail(&model.log, 10)
            ),
        }
    }

    /// Sends one control command and returns the reply line.
    pub fn control(&self, cmd: &str) -> Result<String> {
        let mut s = std::os::unix::net::UnixStream::connect(&self.control)?;
        // A model that stopped answering must not hang the suite.
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.set_write_timeout(Some(Duration::from_secs(5)))?;
        writeln!(s, "{cmd}")?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        Ok(line.trim().to_string())
    }
}

impl Model {
    /// Kills the model with SIGKILL (no chance to close its sockets cleanly) and reaps it;
    /// how it ended.
    pub fn kill(&mut self) -> Result<String> {
        self.child.kill().context("cannot kill the model")?;
        let status = self.child.wait().context("cannot reap the killed model")?;
        Ok(format!("killed: {status}"))
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // Reaped already (killed): its pid may be another process's by now.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: `kill` has no memory-safety requirements; the pid is our own live child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_expectations_follow_the_profile() {
        let gh = profile("gh100").unwrap();
        let c = probe_command(gh, "");
        assert_eq!(
            c,
            "gpu_probe --device 0x2330 --class 0x030200 --revision 0xa1 --bar1 0x2000000000 \
             --boot0 0x180000a1 --boot42 0x180a1000 --scratch 0x1000"
        );
        let dead = probe_command(profile("dead").unwrap(), " --x");
        assert!(
            dead.contains("--boot0 0xffffffff --boot42 0xffffffff --x"),
            "{dead}"
        );
        let e = profile("gx999").unwrap_err().to_string();
        assert!(
            e.contains("unknown GPU profile `gx999`") && e.contains("gh100"),
            "{e}"
        );
    }

    #[test]
    fn overrides_become_the_model_s_flags() {
        assert!(override_args(&Overrides::default()).is_empty());
        let o = Overrides {
            boot0: Some(0x1f00_00a1),
            ..Overrides::default()
        };
        assert_eq!(override_args(&o), ["--boot0", "0x1f0000a1"]);
        let all = Overrides {
            boot0: Some(0x1c20_00a1),
            boot42: Some(0x1c2a_1000),
            device_id: Some(0x3001),
            class_code: Some(0x03_02_00),
        };
        assert_eq!(
            override_args(&all).join(" "),
            "--boot0 0x1c2000a1 --boot42 0x1c2a1000 --device-id 0x3001 --class 0x030200"
        );
        // What the model's own parser accepts.
        let a = override_args(&all);
        assert_eq!(profile::parse_boot(&a[1]), Ok(0x1c20_00a1));
        assert_eq!(profile::parse_device_id(&a[5]), Ok(0x3001));
        assert_eq!(profile::parse_class_code(&a[7]), Ok(0x03_02_00));
    }

    #[test]
    fn the_gpu_s_address_is_found_behind_its_root_port() {
        assert_eq!(
            gpu_bdf_word(1),
            "$(basename /sys/bus/pci/devices/0000:00:02.0/0000:??:??.?)"
        );
    }

    #[test]
    fn unknown_profiles_are_named() {
        let e = profile("gx999").unwrap_err().to_string();
        assert!(
            e.contains("unknown GPU profile `gx999`") && e.contains("gh100"),
            "{e}"
        );
    }

    #[test]
    fn chips_carry_the_model_s_options_as_knobs() {
        let c = Chip::parse("ga102:boot0=0x172000b1:class=030200:bar1-size=256M").unwrap();
        assert_eq!(c.profile.name, "ga102");
        assert_eq!(c.overrides.boot0, Some(0x1720_00b1));
        assert_eq!(c.overrides.class_code, Some(0x03_02_00));
        assert_eq!(c.bar1_size, Some(256 << 20));
        let e = c.effective();
        assert_eq!((e.class_code, e.bar1_size), (0x03_02_00, 256 << 20));
        assert_eq!(e.boot0(), 0x1720_00b1);
        let plain = Chip::parse("tu102").unwrap();
        assert_eq!(plain.overrides, Overrides::default());
        assert_eq!(plain.effective(), *plain.profile);
        let ids = Chip::parse("gh100:device-id=0x2331:boot42=0x18000000").unwrap();
        assert_eq!(ids.overrides.device_id, Some(0x2331));
        assert_eq!(ids.overrides.boot42, Some(0x1800_0000));
    }

    #[test]
    fn bad_knobs_are_refused_in_the_model_s_words() {
        let err = |t: &str| format!("{:#}", Chip::parse(t).unwrap_err());
        let e = err("gh100:boot0=xyz");
        assert!(
            e.contains("--boot0") && e.contains("'xyz' is not hex"),
            "{e}"
        );
        let e = err("gh100:device-id=12345");
        assert!(e.contains("does not fit in 16 bits"), "{e}");
        let e = err("gh100:bar1-size=3M");
        assert!(e.contains("is not a power of two"), "{e}");
        let e = err("dead:boot0=0x1");
        assert!(e.contains("cannot be used with the dead profile"), "{e}");
        let e = err("gh100:vram=1G");
        assert!(
            e.contains("unknown knob `vram`") && e.contains("bar1-size"),
            "{e}"
        );
        let e = err("gh100:boot0");
        assert!(e.contains("is not KNOB=VALUE"), "{e}");
        let e = err("gh100:boot0=1:boot0=2");
        assert!(e.contains("boot0 is given twice"), "{e}");
        let e = err("gx999:boot0=1");
        assert!(e.contains("unknown GPU profile `gx999`"), "{e}");
    }
}
