//! Child processes with deadlines, for tests that need several things at once or a step that
//! may hang in the kernel.
//!
//! The guest kernel is built without futexes (tinyconfig), so the standard library's threads
//! cannot be joined there (glibc's `pthread_join` aborts on `ENOSYS`): programs run concurrent
//! work as child processes instead, sharing an open file through an inherited descriptor when
//! they must act on the same one. Nothing here blocks without a deadline: the output of a
//! child is read non-blocking ([`Lines`]) and its exit is polled ([`wait_until`]).

use std::io::{ErrorKind, Read};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The pause between two polls of a child.
const POLL: Duration = Duration::from_millis(1);

/// Waits for `child` to exit until `deadline`: its status, or `None` if it still runs then.
pub fn wait_until(child: &mut Child, deadline: Instant) -> Result<Option<ExitStatus>, String> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) if Instant::now() >= deadline => return Ok(None),
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => return Err(format!("waiting for child {}: {e}", child.id())),
        }
    }
}

/// Kills `child` (if it still runs) and reaps it if it exits within `grace` (a process stuck
/// in the kernel may not).
pub fn kill(child: &mut Child, grace: Duration) {
    let _ = child.kill();
    let _ = wait_until(child, Instant::now() + grace);
}

/// Runs `cmd` with its output captured and gives up after `timeout`: `Ok` with its stdout when
/// it succeeded, else `Err` with what went wrong (its status and output, on one line, or that
/// it did not finish in time; it is then killed).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let status = match wait_until(&mut child, Instant::now() + timeout) {
        Ok(Some(s)) => s,
        Ok(None) => {
            kill(&mut child, Duration::from_secs(1));
            return Err(format!(
                "{what} did not finish within {:.1} s",
                timeout.as_secs_f64()
            ));
        }
        Err(e) => return Err(e),
    };
    // It has exited: its pipes hold all it wrote (a little, for our commands) and reach EOF.
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if status.success() {
        Ok(out)
    } else {
        let text = format!("{err}{out}");
        Err(format!(
            "{what} failed ({status}): {}",
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        ))
    }
}

/// The lines a child writes to its stdout, read without blocking.
pub struct Lines {
    out: ChildStdout,
    pending: Vec<u8>,
    closed: bool,
}

impl Lines {
    /// Reads `out` (a child's piped stdout), which is made non-blocking.
    pub fn new(out: ChildStdout) -> Result<Self, String> {
        let flags =
            rustix::fs::fcntl_getfl(out.as_fd()).map_err(|e| format!("fcntl(F_GETFL): {e}"))?;
        rustix::fs::fcntl_setfl(out.as_fd(), flags | rustix::fs::OFlags::NONBLOCK)
            .map_err(|e| format!("fcntl(F_SETFL, O_NONBLOCK): {e}"))?;
        Ok(Self {
            out,
            pending: Vec::new(),
            closed: false,
        })
    }

    /// The complete lines written since the last call (without their `\n`); at the end of the
    /// output, an unfinished last line too.
    pub fn poll(&mut self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        while !self.closed {
            match self.out.read(&mut buf) {
                Ok(0) => self.closed = true,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => self.closed = true,
            }
        }
        let mut lines = Vec::new();
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            lines.push(String::from_utf8_lossy(&line[..i]).into_owned());
        }
        if self.closed && !self.pending.is_empty() {
            lines.push(String::from_utf8_lossy(&self.pending).into_owned());
            self.pending.clear();
        }
        lines
    }

    /// Whether the child closed its output (exited, usually).
    pub fn closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_succeed_fail_or_time_out() {
        let out = run_with_timeout(
            Command::new("sh").args(["-c", "echo hello"]),
            Duration::from_secs(30),
        );
        assert_eq!(out, Ok("hello\n".into()));
        let e = run_with_timeout(
            Command::new("sh").args(["-c", "echo bad >&2; echo more; exit 3"]),
            Duration::from_secs(30),
        )
        .unwrap_err();
        assert!(e.contains("failed (exit status: 3): bad more"), "{e}");
        let t = Instant::now();
        let e = run_with_timeout(
            Command::new("sh").args(["-c", "sleep 20"]),
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(e.ends_with("did not finish within 0.1 s"), "{e}");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "killed, not waited for"
        );
        let e = run_with_timeout(&mut Command::new("/nonexistent/x"), Duration::from_secs(1));
        assert!(e.unwrap_err().starts_with("cannot run "));
    }

    #[test]
    fn lines_arrive_as_the_child_writes_them() {
        let mut child = Command::new("sh")
            .args(["-c", "echo ready; sleep 0.2; printf 'end 1\\nlast'"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = Lines::new(child.stdout.take().unwrap()).unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !lines.closed() && Instant::now() < deadline {
            got.extend(lines.poll());
            std::thread::sleep(Duration::from_millis(5));
        }
        got.extend(lines.poll());
        assert_eq!(got, ["ready", "end 1", "last"]);
        let status = wait_until(&mut child, deadline).unwrap();
        assert!(status.is_some_and(|s| s.success()));
    }

    #[test]
    fn a_running_child_is_reported_as_running_then_killed() {
        let mut child = Command::new("sh").args(["-c", "sleep 20"]).spawn().unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(wait_until(&mut child, soon).unwrap(), None);
        kill(&mut child, Duration::from_secs(5));
        assert!(child.try_wait().unwrap().is_some(), "reaped");
    }
}
