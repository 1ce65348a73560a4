//! The emulated GPU as seen by the harness: starting and stopping `gpu-model`, and what the
//! guest probe must find for a profile.

use crate::util::{self, describe};
use anyhow::{bail, Context, Result};
use gpu_model::profile::{self, Profile};
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
}

impl Model {
    /// Starts `bin` with `profile` in `dir` and waits for its ready line.
    pub fn start(bin: &Path, profile: &str, dir: &Path) -> Result<Self> {
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
            .arg(&control);
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
                    let _ = tx.send(());
                }
            }
        });
        let mut model = Self {
            child,
            socket,
            control,
            log,
            start_time: Duration::ZERO,
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(()) => {
                model.start_time = t.elapsed();
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

impl Drop for Model {
    fn drop(&mut self) {
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
}
