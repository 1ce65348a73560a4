//! Helpers shared by the integration tests: run the built `gpu-model` binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_gpu-model");

/// A fresh folder for one test's sockets, removed when dropped.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates the folder for test `test`.
pub fn temp_dir(test: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("gpu-model-it-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    TempDir(dir)
}

/// A running model with its stderr collected line by line.
pub struct Model {
    pub child: Child,
    pub socket: PathBuf,
    pub control: Option<PathBuf>,
    lines: Receiver<String>,
    pub stderr: Vec<String>,
    /// Time from spawn to the `ready` line.
    pub ready_after: Duration,
}

impl Model {
    /// Starts `gpu-model --profile PROFILE --socket DIR/gpu.sock [--control DIR/ctl.sock] EXTRA`
    /// and waits for its ready line.
    pub fn start(dir: &Path, profile: &str, control: bool, extra: &[&str]) -> Model {
        let socket = dir.join("gpu.sock");
        let control = control.then(|| dir.join("ctl.sock"));
        let mut cmd = Command::new(BIN);
        cmd.args(["--profile", profile, "--socket"]).arg(&socket);
        if let Some(c) = &control {
            cmd.arg("--control").arg(c);
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let t0 = Instant::now();
        let mut child = cmd.spawn().expect("spawn gpu-model");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut m = Model {
            child,
            socket,
            control,
            lines,
            stderr: vec![],
            ready_after: Duration::ZERO,
        };
        let ready = m.wait_line("gpu-model: ready:", Duration::from_secs(10));
        assert!(ready.is_some(), "model did not get ready: {:?}", m.stderr);
        m.ready_after = t0.elapsed();
        m
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.stderr.push(l.clone());
                    if l.contains(needle) {
                        return Some(l);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Waits for the process to exit (at most 10 s) and collects the rest of stderr.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
                    self.stderr.push(l);
                }
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "model did not exit: {:?}",
                self.stderr
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal to the model.
    pub fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on the pid of our own child.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs the binary with `args` to completion: (status, stdout, stderr lines).
pub fn run(args: &[&str]) -> (ExitStatus, String, Vec<String>) {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run gpu-model");
    let stderr = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_string)
        .collect();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}
