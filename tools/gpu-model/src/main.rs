//! `gpu-model`: serves an emulated NVIDIA GPU to QEMU over vfio-user.
//!
//! ```text
//! gpu-model --profile NAME --socket PATH [--control PATH] [--log-accesses N] [--bar1-size SIZE]
//! gpu-model --list-profiles
//! ```
//!
//! Prints one `gpu-model: ready: ...` line on stderr once the socket accepts connections.
//! SIGTERM/SIGINT (or `exit` on the control socket) stop it: sockets removed, one
//! `gpu-model: summary: ...` line of counters on stderr. Bad input gives one
//! `gpu-model: error: ...` line and exit status 2; failing to start (socket path unusable)
//! exit status 1.

use gpu_model::device::GpuDevice;
use gpu_model::fault::{stats_line, ControlServer, Shutdown};
use gpu_model::profile::{self, format_size, Profile, PROFILES};
use gpu_model::server::{lock, GpuServer};
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const USAGE: &str = "usage: gpu-model --profile NAME --socket PATH [--control PATH] \
[--log-accesses N] [--bar1-size SIZE]\n       gpu-model --list-profiles";

/// What the command line asks for.
#[derive(Debug)]
enum Mode {
    Run(Options),
    ListProfiles,
    Help,
}

#[derive(Debug)]
struct Options {
    profile: &'static Profile,
    socket: PathBuf,
    control: Option<PathBuf>,
    log_accesses: u64,
    bar1_size: u64,
}

/// A failure with the exit status it maps to.
struct Failure {
    status: i32,
    message: String,
}

fn usage_error(message: impl Into<String>) -> Failure {
    Failure {
        status: 2,
        message: message.into(),
    }
}

fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Mode, Failure> {
    let mut profile = None;
    let mut socket = None;
    let mut control = None;
    let mut log_accesses = 0;
    let mut bar1 = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|a| usage_error(format!("argument {a:?} is not UTF-8")))?;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = |name: &str| -> Result<String, Failure> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .ok_or_else(|| usage_error(format!("{name} needs a value")))?
                    .into_string()
                    .map_err(|a| usage_error(format!("value {a:?} of {name} is not UTF-8"))),
            }
        };
        match flag.as_str() {
            "--list-profiles" => return Ok(Mode::ListProfiles),
            "-h" | "--help" => return Ok(Mode::Help),
            "--profile" => {
                let name = value("--profile")?;
                profile = Some(profile::find(&name).ok_or_else(|| {
                    usage_error(format!("unknown profile '{name}' (see --list-profiles)"))
                })?);
            }
            "--socket" => socket = Some(PathBuf::from(value("--socket")?)),
            "--control" => control = Some(PathBuf::from(value("--control")?)),
            "--log-accesses" => {
                let v = value("--log-accesses")?;
                log_accesses = v
                    .parse()
                    .map_err(|_| usage_error(format!("--log-accesses: '{v}' is not a count")))?;
            }
            "--bar1-size" => {
                let v = value("--bar1-size")?;
                bar1 = Some(
                    profile::parse_bar1_size(&v)
                        .map_err(|e| usage_error(format!("--bar1-size: {e}")))?,
                );
            }
            other => {
                return Err(usage_error(format!(
                    "unknown argument '{other}' (see --help)"
                )))
            }
        }
    }
    let profile =
        profile.ok_or_else(|| usage_error("--profile is required (see --list-profiles)"))?;
    let socket = socket.ok_or_else(|| usage_error("--socket is required"))?;
    if control.as_ref() == Some(&socket) {
        return Err(usage_error("--control and --socket must differ"));
    }
    Ok(Mode::Run(Options {
        profile,
        socket,
        control,
        log_accesses,
        bar1_size: bar1.unwrap_or(profile.bar1_size),
    }))
}

fn list_profiles() {
    println!(
        "{:<6} {:<9} {:<8} {:<11} {:<6} {:<5} board",
        "name", "device", "class", "boot0", "bar1", "gsp"
    );
    for p in PROFILES {
        let boot0 = if p.dead {
            "ffffffff".to_string()
        } else {
            format!("{:08x}", p.boot0())
        };
        println!(
            "{:<6} 10de:{:04x} {:06x}   {:<11} {:<6} {:<5} {}",
            p.name,
            p.device_id,
            p.class_code,
            boot0,
            format_size(p.bar1_size),
            if p.gsp_capable() { "yes" } else { "no" },
            p.board
        );
    }
}

/// Blocks SIGINT and SIGTERM in this thread and every thread it starts later, so that only
/// the signal thread (which waits for them with sigwait) receives them.
fn block_shutdown_signals() -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t owned by this frame; the signal numbers are valid.
    let r = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
    };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(set)
}

fn spawn_signal_thread(set: libc::sigset_t, tx: Sender<Shutdown>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let mut sig = 0;
            // SAFETY: `set` is an initialised sigset_t and `sig` a valid out pointer.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0
                && tx.send(Shutdown::Signal(sig)).is_err()
            {
                return;
            }
        })?;
    Ok(())
}

fn run(opts: Options) -> Result<i32, Failure> {
    let started = Instant::now();
    let fail = |message: String| Failure { status: 1, message };
    let set = block_shutdown_signals().map_err(|e| fail(format!("cannot block signals: {e}")))?;

    let mut gpu = GpuDevice::new(opts.profile, opts.bar1_size)
        .map_err(|e| fail(format!("cannot create the device: {e}")))?;
    gpu.set_log_budget(opts.log_accesses);
    let device = Arc::new(Mutex::new(gpu));

    let server =
        GpuServer::bind(&opts.socket, Arc::clone(&device)).map_err(|e| fail(e.to_string()))?;
    let (tx, rx) = mpsc::channel();
    let control = match &opts.control {
        Some(path) => match ControlServer::bind(path) {
            Ok(c) => Some(c),
            Err(e) => {
                let _ = std::fs::remove_file(&opts.socket);
                return Err(fail(e.to_string()));
            }
        },
        None => None,
    };
    let cleanup = || {
        let _ = std::fs::remove_file(&opts.socket);
        if let Some(p) = &opts.control {
            let _ = std::fs::remove_file(p);
        }
    };
    let spawned = (|| -> io::Result<()> {
        if let Some(c) = control {
            c.spawn(Arc::clone(&device), tx.clone())?;
        }
        spawn_signal_thread(set, tx)?;
        std::thread::Builder::new()
            .name("vfio-user".into())
            .spawn(move || server.serve_forever())?;
        Ok(())
    })();
    if let Err(e) = spawned {
        cleanup();
        return Err(fail(format!("cannot start threads: {e}")));
    }

    let p = opts.profile;
    eprintln!(
        "gpu-model: ready: {} ({}, 10de:{:04x}, BAR1 {}) on {}{} in {} us",
        p.name,
        p.board,
        p.device_id,
        format_size(opts.bar1_size),
        opts.socket.display(),
        opts.control
            .as_ref()
            .map(|c| format!(", control {}", c.display()))
            .unwrap_or_default(),
        started.elapsed().as_micros()
    );

    let (status, why) = match rx.recv() {
        Ok(Shutdown::Signal(sig)) => (0, format!("signal {sig}")),
        Ok(Shutdown::Exit(code)) => (code, format!("exit {code} requested on the control socket")),
        Err(_) => (1, "every shutdown source is gone".to_string()),
    };
    cleanup();
    eprintln!(
        "gpu-model: summary: {} uptime_ms={} ({why})",
        stats_line(&lock(&device)),
        started.elapsed().as_millis()
    );
    Ok(status)
}

/// Reports a panic in one line. The vfio-user crate can panic on malformed client messages;
/// the server contains that to the connection (see `GpuServer::serve_one`), and the log
/// should say so briefly rather than with a backtrace.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        eprintln!("gpu-model: panic in thread {thread}{at}: {msg}");
    }));
}

fn main() {
    install_panic_hook();
    let status = match parse_args(std::env::args_os().skip(1)) {
        Ok(Mode::ListProfiles) => {
            list_profiles();
            0
        }
        Ok(Mode::Help) => {
            println!("{USAGE}");
            0
        }
        Ok(Mode::Run(opts)) => match run(opts) {
            Ok(status) => status,
            Err(f) => {
                eprintln!("gpu-model: error: {}", f.message);
                f.status
            }
        },
        Err(f) => {
            eprintln!("gpu-model: error: {}", f.message);
            f.status
        }
    };
    std::process::exit(status);
}
