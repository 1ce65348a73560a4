//! Run-time fault injection and inspection through a control socket.
//!
//! Protocol: a Unix stream socket; the client sends one command per line (`\n`-terminated,
//! at most [`MAX_LINE`] bytes) and gets exactly one reply line per command, starting with
//! `ok` or `error:`. Several commands may be sent on one connection.
//!
//! | command | effect | reply |
//! |---|---|---|
//! | `ping` | nothing | `ok pong` |
//! | `fall-off-bus` | every read over the socket returns all-ones (config space too), writes are dropped | `ok off-bus` |
//! | `recover` | undo `fall-off-bus` | `ok on-bus` |
//! | `stats` | report profile, fault state and counters | `ok profile=gh100 off_bus=0 sessions=0 ...` |
//! | `log N` | log the next N accesses to stderr (0: off) | `ok log N` |
//! | `exit [CODE]` | the model exits with CODE (default 0), like a crashed or killed server as seen by QEMU; sockets are removed and the summary printed | `ok exiting` |
//! | `help` | list the commands | `ok ping fall-off-bus recover stats log exit help` |

use crate::device::GpuDevice;
use crate::server::{claim_socket_path, lock, SocketPathError};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Longest accepted command line, in bytes.
pub const MAX_LINE: u64 = 256;

/// Why the model should stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM or SIGINT arrived (the signal number).
    Signal(i32),
    /// The control socket asked for an exit with this status.
    Exit(i32),
}

/// A parsed control command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `ping`
    Ping,
    /// `fall-off-bus`
    FallOffBus,
    /// `recover`
    Recover,
    /// `stats`
    Stats,
    /// `log N`
    Log(u64),
    /// `exit [CODE]`
    Exit(i32),
    /// `help`
    Help,
}

/// Parses one command line (surrounding whitespace ignored).
pub fn parse(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else {
        return Err("empty command".to_string());
    };
    let arg = words.next();
    if words.next().is_some() {
        return Err(format!("too many arguments for '{verb}'"));
    }
    let no_arg = |c: Command| match arg {
        None => Ok(c),
        Some(_) => Err(format!("'{verb}' takes no argument")),
    };
    match verb {
        "ping" => no_arg(Command::Ping),
        "fall-off-bus" => no_arg(Command::FallOffBus),
        "recover" => no_arg(Command::Recover),
        "stats" => no_arg(Command::Stats),
        "help" => no_arg(Command::Help),
        "log" => match arg.map(str::parse::<u64>) {
            Some(Ok(n)) => Ok(Command::Log(n)),
            _ => Err("usage: log N".to_string()),
        },
        "exit" => match arg.map(str::parse::<u8>) {
            None => Ok(Command::Exit(0)),
            Some(Ok(code)) => Ok(Command::Exit(i32::from(code))),
            Some(Err(_)) => Err("usage: exit [CODE 0..255]".to_string()),
        },
        other => Err(format!("unknown command '{other}' (try 'help')")),
    }
}

/// One line describing the device: profile, fault state and counters.
pub fn stats_line(device: &GpuDevice) -> String {
    format!(
        "profile={} off_bus={} {}",
        device.profile().name,
        u8::from(device.is_fallen_off()),
        device.counters()
    )
}

/// Executes `cmd`; returns the reply line (without newline) and, for `exit`, the shutdown
/// request to deliver after the reply was sent.
pub fn execute(cmd: Command, device: &Mutex<GpuDevice>) -> (String, Option<Shutdown>) {
    let mut d = lock(device);
    match cmd {
        Command::Ping => ("ok pong".into(), None),
        Command::FallOffBus => {
            d.fall_off_bus();
            ("ok off-bus".into(), None)
        }
        Command::Recover => {
            d.recover();
            ("ok on-bus".into(), None)
        }
        Command::Stats => (format!("ok {}", stats_line(&d)), None),
        Command::Log(n) => {
            d.set_log_budget(n);
            (format!("ok log {n}"), None)
        }
        Command::Exit(code) => ("ok exiting".into(), Some(Shutdown::Exit(code))),
        Command::Help => (
            "ok ping fall-off-bus recover stats log exit help".into(),
            None,
        ),
    }
}

fn serve_connection(
    stream: UnixStream,
    device: &Mutex<GpuDevice>,
    shutdown: &Sender<Shutdown>,
) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        let n = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && n as u64 > MAX_LINE {
            writeln!(writer, "error: line longer than {MAX_LINE} bytes")?;
            return Ok(());
        }
        let (reply, request) = match std::str::from_utf8(&line)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(parse)
        {
            Ok(cmd) => execute(cmd, device),
            Err(e) => (format!("error: {e}"), None),
        };
        writeln!(writer, "{reply}")?;
        writer.flush()?;
        if let Some(req) = request {
            // The main thread may already be gone; nothing else to do then.
            let _ = shutdown.send(req);
            return Ok(());
        }
    }
}

/// The listening control socket.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlServer {
    /// Listens on `path` (a stale socket there is replaced).
    pub fn bind(path: &Path) -> Result<Self, SocketPathError> {
        claim_socket_path(path)?;
        let listener =
            UnixListener::bind(path).map_err(|e| SocketPathError::Io(path.to_path_buf(), e))?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves control connections on a thread of its own (one thread per connection).
    pub fn spawn(
        self,
        device: Arc<Mutex<GpuDevice>>,
        shutdown: Sender<Shutdown>,
    ) -> io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for stream in self.listener.incoming() {
                    let stream = match stream {
                        Ok(s) => s,
                        Err(e) => {
                            crate::say!("gpu-model: control accept failed: {e}");
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            continue;
                        }
                    };
                    let device = Arc::clone(&device);
                    let shutdown = shutdown.clone();
                    let spawned = std::thread::Builder::new()
                        .name("control-conn".into())
                        .spawn(move || {
                            if let Err(e) = serve_connection(stream, &device, &shutdown) {
                                crate::say!("gpu-model: control connection failed: {e}");
                            }
                        });
                    if let Err(e) = spawned {
                        crate::say!("gpu-model: cannot start a control connection thread: {e}");
                    }
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::REGION_BAR0;
    use crate::profile::find;

    #[test]
    fn parses_commands() {
        assert_eq!(parse("ping"), Ok(Command::Ping));
        assert_eq!(parse("  fall-off-bus \n"), Ok(Command::FallOffBus));
        assert_eq!(parse("recover"), Ok(Command::Recover));
        assert_eq!(parse("stats"), Ok(Command::Stats));
        assert_eq!(parse("log 10"), Ok(Command::Log(10)));
        assert_eq!(parse("exit"), Ok(Command::Exit(0)));
        assert_eq!(parse("exit 3"), Ok(Command::Exit(3)));
        assert_eq!(parse("help"), Ok(Command::Help));
        for bad in [
            "", "   ", "pong", "exit -1", "exit 256", "exit x", "log", "log -1", "ping 1",
            "log 1 2",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn commands_act_on_the_device() {
        let dev = Mutex::new(GpuDevice::new(find("tu104").unwrap(), 1 << 20).unwrap());
        assert_eq!(execute(Command::FallOffBus, &dev).0, "ok off-bus");
        assert_eq!(lock(&dev).read_u32(REGION_BAR0, 0), u32::MAX);
        let (stats, _) = execute(Command::Stats, &dev);
        assert!(
            stats.starts_with("ok profile=tu104 off_bus=1 sessions=0 "),
            "{stats}"
        );
        assert!(stats.contains(" bar0_reads=1 "), "{stats}");
        assert_eq!(execute(Command::Recover, &dev).0, "ok on-bus");
        assert_eq!(lock(&dev).read_u32(REGION_BAR0, 0), 0x164000a1);
        assert_eq!(
            execute(Command::Exit(4), &dev),
            ("ok exiting".into(), Some(Shutdown::Exit(4)))
        );
        assert_eq!(execute(Command::Log(2), &dev).0, "ok log 2");
    }

    #[test]
    fn socket_round_trip() {
        let dir = std::env::temp_dir().join(format!("gpu-model-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let dev = Arc::new(Mutex::new(
            GpuDevice::new(find("gh100").unwrap(), 1 << 20).unwrap(),
        ));
        let (tx, rx) = std::sync::mpsc::channel();
        ControlServer::bind(&path)
            .unwrap()
            .spawn(Arc::clone(&dev), tx)
            .unwrap();
        let s = UnixStream::connect(&path).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut ask = |cmd: &str| {
            w.write_all(cmd.as_bytes()).unwrap();
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            l
        };
        assert_eq!(ask("ping\n"), "ok pong\n");
        assert!(ask("bogus\n").starts_with("error: unknown command"));
        assert_eq!(ask("fall-off-bus\n"), "ok off-bus\n");
        assert!(lock(&dev).is_fallen_off());
        let long = format!("{}\n", "x".repeat(300));
        assert!(ask(&long).starts_with("error: line longer"));
        let s = UnixStream::connect(&path).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        w.write_all(b"exit 7\n").unwrap();
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert_eq!(l, "ok exiting\n");
        assert_eq!(rx.recv().unwrap(), Shutdown::Exit(7));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
