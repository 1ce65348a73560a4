//! A minimal QMP client: enough to hot-unplug and re-plug a device of a running guest.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long one command may take to be answered.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A QMP connection in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Events received while waiting for command replies.
    events: Vec<Value>,
    /// How long a command may take to be answered ([`COMMAND_TIMEOUT`]).
    pub timeout: Duration,
}

impl Qmp {
    /// Connects (retrying until `timeout`) and negotiates capabilities.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Self> {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) if start.elapsed() < timeout => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("QMP socket {}", socket.display()))
                }
            }
        };
        stream.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        let mut q = Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            events: vec![],
            timeout: COMMAND_TIMEOUT,
        };
        let greeting = q.read()?;
        if greeting.get("QMP").is_none() {
            bail!("not a QMP greeting: {greeting}");
        }
        q.execute("qmp_capabilities", json!({}))?;
        Ok(q)
    }

    /// Reads one message, failing once `deadline` has passed (the socket's read timeout is set
    /// to what is left before each read, so no read blocks past it).
    fn read_before(&mut self, deadline: Instant) -> Result<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("QMP: no answer in time");
        }
        self.writer.set_read_timeout(Some(left))?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("QMP connection closed");
        }
        Ok(serde_json::from_str(&line)?)
    }

    fn read(&mut self) -> Result<Value> {
        self.read_before(Instant::now() + self.timeout)
    }

    /// Runs a command and returns its `return` value (errors become `Err`), within
    /// [`Qmp::timeout`] however many events arrive meanwhile.
    pub fn execute(&mut self, cmd: &str, args: Value) -> Result<Value> {
        let msg = json!({"execute": cmd, "arguments": args});
        writeln!(self.writer, "{msg}")?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let v = self.read_before(deadline)?;
            if v.get("event").is_some() {
                self.events.push(v);
            } else if let Some(r) = v.get("return") {
                return Ok(r.clone());
            } else if let Some(e) = v.get("error") {
                bail!("QMP {cmd} failed: {e}");
            }
        }
    }

    /// Waits for an event named `name` (also among those already received).
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Result<Value> {
        if let Some(i) = self.events.iter().position(|e| e["event"] == name) {
            return Ok(self.events.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let v = self
                .read_before(deadline)
                .with_context(|| format!("no QMP event {name} within {timeout:?}"))?;
            if v["event"] == name {
                return Ok(v);
            }
            self.events.push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A QEMU that greets, then sends an event every 10 ms and never answers a command: the
    /// command must fail at its timeout instead of waiting for ever.
    #[test]
    fn a_command_times_out_while_events_keep_coming() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            writeln!(s, r#"{{"QMP": {{"version": {{}}}}}}"#).unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            writeln!(s, r#"{{"return": {{}}}}"#).unwrap();
            while writeln!(s, r#"{{"event": "TICK"}}"#).is_ok() {
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let mut q = Qmp::connect(&sock, Duration::from_secs(5)).unwrap();
        q.timeout = Duration::from_millis(500);
        let t = Instant::now();
        assert!(q.execute("device_del", json!({"id": "gpu0"})).is_err());
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        let t = Instant::now();
        assert!(q
            .wait_event("DEVICE_DELETED", Duration::from_millis(300))
            .is_err());
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
}
