//! `gpu-model`: serves an emulated NVIDIA GPU to QEMU over vfio-user.
//!
//! ```text
//! gpu-model --profile NAME --socket PATH [--control PATH] [--log-accesses N] [--bar1-size SIZE]
//!           [--boot0 HEX] [--boot42 HEX] [--device-id HEX] [--class HEX]
//! gpu-model --list-profiles
//! ```
//!
//! Prints one `gpu-model: ready: ...` line on stderr once the socket accepts connections.
//! SIGTERM/SIGINT (or `exit` on the control socket) stop it: sockets removed, one
//! `gpu-model: summary: ...` line of counters on stderr. Bad input gives one
//! `gpu-model: error: ...` line and exit status 2; failing to start (socket path unusable)
//! exit status 1.

use clap::error::ErrorKind;
use clap::Parser;
use gpu_model::device::GpuDevice;
use gpu_model::fault::{stats_line, ControlServer, Shutdown};
use gpu_model::profile::{self, format_size, Overrides, Profile, PROFILES};
use gpu_model::server::{lock, GpuServer};
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The command line (clap; errors are turned into one `gpu-model: error:` line, status 2).
#[derive(Parser, Debug)]
#[command(
    name = "gpu-model",
    about = "Serves an emulated NVIDIA GPU to QEMU over vfio-user",
    disable_version_flag = true
)]
struct Cli {
    /// The GPU profile to emulate (see --list-profiles)
    #[arg(long, value_name = "NAME", value_parser = parse_profile)]
    profile: Option<&'static Profile>,
    /// The vfio-user socket QEMU connects to
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// A control socket (ping, fall-off-bus, recover, stats, log N, exit [code])
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Log the first N register accesses on stderr
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_count)]
    log_accesses: u64,
    /// BAR1 size instead of the profile's (a power of two, e.g. 256M)
    #[arg(long, value_name = "SIZE", value_parser = parse_bar1)]
    bar1_size: Option<u64>,
    /// NV_PMC_BOOT_0 (BAR0 0x0) instead of the profile's (hex, e.g. 0x1b2000a1)
    #[arg(long, value_name = "HEX", value_parser = parse_boot)]
    boot0: Option<u32>,
    /// NV_PMC_BOOT_42 (BAR0 0xa00) instead of the profile's (hex)
    #[arg(long, value_name = "HEX", value_parser = parse_boot)]
    boot42: Option<u32>,
    /// PCI device ID instead of the profile's (hex, 16 bits; also the subsystem ID)
    #[arg(long, value_name = "HEX", value_parser = parse_device_id)]
    device_id: Option<u16>,
    /// PCI class code instead of the profile's (hex, 24 bits: 030000 VGA, 030200 3D)
    #[arg(long, value_name = "HEX", value_parser = parse_class)]
    class: Option<u32>,
    /// List the profiles and exit
    #[arg(long)]
    list_profiles: bool,
}

fn parse_profile(name: &str) -> Result<&'static Profile, String> {
    profile::find(name).ok_or_else(|| format!("unknown profile '{name}' (see --list-profiles)"))
}

fn parse_count(v: &str) -> Result<u64, String> {
    v.parse().map_err(|_| format!("'{v}' is not a count"))
}

fn parse_bar1(v: &str) -> Result<u64, String> {
    profile::parse_bar1_size(v).map_err(|e| e.to_string())
}

fn parse_boot(v: &str) -> Result<u32, String> {
    profile::parse_boot(v).map_err(|e| e.to_string())
}

fn parse_device_id(v: &str) -> Result<u16, String> {
    profile::parse_device_id(v).map_err(|e| e.to_string())
}

fn parse_class(v: &str) -> Result<u32, String> {
    profile::parse_class_code(v).map_err(|e| e.to_string())
}

/// What the command line asks for.
#[derive(Debug)]
enum Mode {
    Run(Options),
    ListProfiles,
    /// Help text to print on stdout.
    Help(String),
}

#[derive(Debug)]
struct Options {
    /// The profile with the command line's overrides applied.
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
    let argv = std::iter::once(OsString::from("gpu-model")).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::DisplayHelp => return Ok(Mode::Help(e.to_string())),
        Err(e) => {
            // clap's first line says what is wrong; the rest is usage, one `--help` away.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            return Err(usage_error(format!(
                "{} (see --help)",
                first.trim_start_matches("error: ")
            )));
        }
    };
    if cli.list_profiles {
        return Ok(Mode::ListProfiles);
    }
    let overrides = Overrides {
        boot0: cli.boot0,
        boot42: cli.boot42,
        device_id: cli.device_id,
        class_code: cli.class,
    };
    let profile = cli
        .profile
        .ok_or_else(|| usage_error("--profile is required (see --list-profiles)"))?
        .with_overrides(&overrides)
        .map_err(|e| usage_error(e.to_string()))?;
    // One profile per process, alive until exit: the device keeps a `&'static Profile`.
    let profile: &'static Profile = Box::leak(Box::new(profile));
    let socket = cli
        .socket
        .ok_or_else(|| usage_error("--socket is required"))?;
    if cli.control.as_ref() == Some(&socket) {
        return Err(usage_error("--control and --socket must differ"));
    }
    Ok(Mode::Run(Options {
        profile,
        socket,
        control: cli.control,
        log_accesses: cli.log_accesses,
        bar1_size: cli.bar1_size.unwrap_or(profile.bar1_size),
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
    let boot = |v: u32| {
        if p.dead {
            "ffffffff".to_string()
        } else {
            format!("{v:08x}")
        }
    };
    gpu_model::say!(
        "gpu-model: ready: {} ({}, 10de:{:04x}, class {:06x}, BOOT0 {}, BOOT42 {}, BAR1 {}) on {}{} in {} us",
        p.name,
        p.board,
        p.device_id,
        p.class_code,
        boot(p.boot0()),
        boot(p.boot42()),
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
    gpu_model::say!(
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
        gpu_model::say!("gpu-model: panic in thread {thread}{at}: {msg}");
    }));
}

fn main() {
    install_panic_hook();
    gpu_model::install_logger();
    let status = match parse_args(std::env::args_os().skip(1)) {
        Ok(Mode::ListProfiles) => {
            list_profiles();
            0
        }
        Ok(Mode::Help(text)) => {
            print!("{text}");
            0
        }
        Ok(Mode::Run(opts)) => match run(opts) {
            Ok(status) => status,
            Err(f) => {
                gpu_model::say!("gpu-model: error: {}", f.message);
                f.status
            }
        },
        Err(f) => {
            gpu_model::say!("gpu-model: error: {}", f.message);
            f.status
        }
    };
    std::process::exit(status);
}
