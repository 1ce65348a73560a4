//! Shared helpers for the guest test programs.
//!
//! Every guest program reports as one KTAP suite ([`Ktap`]) so that the harness parses guest
//! results with the same parser as the kernel's own KUnit output. [`kmsg`] reads the kernel
//! log, [`kmod`] loads and unloads modules, [`sysfs`] binds devices to drivers, [`child`] runs
//! child processes with deadlines (the guest has no futexes, so no joinable threads) and
//! [`args`] reads the programs' `--flag VALUE` command lines. For the DRM driver tests,
//! [`drm_check`] checks ioctls' outcomes and GEM objects' life, and [`gem_worker`] runs child
//! processes that loop GEM calls on a shared file while a device goes away.

pub mod args;
pub mod child;
pub mod drm_check;
pub mod gem_worker;
pub mod kmod;
pub mod kmsg;
pub mod ktap;
pub mod sysfs;

pub use ktap::{Ktap, Planned};

/// The file the harness's init reads its command lines from: it exists only in the test guest.
const GUEST_MARKER: &str = "/etc/nova/run";

/// Refuses to go on outside the test guest.
///
/// The guest programs unbind drivers, load modules and enable PCI devices through sysfs: run on
/// a host by mistake, they would do that to the host. Returns `Err` with a message when
/// `/etc/nova/run` (written by the harness into the initramfs) is missing.
pub fn require_test_guest(program: &str) -> Result<(), String> {
    if std::path::Path::new(GUEST_MARKER).exists() {
        Ok(())
    } else {
        Err(format!(
            "{program}: refusing to run outside the test guest ({GUEST_MARKER} is missing): it \
             changes driver bindings and devices through sysfs"
        ))
    }
}

/// How every guest program starts: refuses to run outside the test guest, then parses the
/// command line (without the program name) with `parse`. On either failure it prints why on
/// stderr (and `usage`, when given) and gives the exit code 2 for `main` to return.
pub fn start<A>(
    program: &str,
    usage: Option<&str>,
    parse: impl FnOnce(std::env::Args) -> Result<A, String>,
) -> Result<A, std::process::ExitCode> {
    let refuse = |msg: String| {
        eprintln!("{msg}");
        if let Some(usage) = usage {
            eprintln!("{usage}");
        }
        std::process::ExitCode::from(2)
    };
    require_test_guest(program).map_err(|e| {
        eprintln!("{e}");
        std::process::ExitCode::from(2)
    })?;
    let mut argv = std::env::args();
    argv.next();
    parse(argv).map_err(|e| refuse(format!("{program}: {e}")))
}
