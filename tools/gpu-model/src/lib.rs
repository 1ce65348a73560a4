//! An emulated NVIDIA GPU, served to QEMU's `vfio-user-pci` over the vfio-user protocol.
//!
//! CI has no NVIDIA GPU; the Nova stub boots against this model instead. It presents a PCI
//! Express endpoint with an NVIDIA board's identity (chosen by [`profile`]), a register BAR
//! whose chip identification registers match that board ([`bar0`]), RAM-like apertures
//! backed by memfds ([`vram`]) and run-time fault injection ([`fault`]).
//!
//! Module map: [`profile`] (boards and the BOOT0/BOOT42 encoding), [`config_space`] (PCI
//! configuration space with write masks), [`bar0`] (register semantics), [`vram`]
//! (apertures), [`device`] (the GPU as a whole, addressed by vfio region), [`server`]
//! (vfio-user glue), [`fault`] (control socket). The `gpu-model` binary wires them up.
//!
//! ```
//! use gpu_model::device::{GpuDevice, REGION_BAR0, REGION_CONFIG};
//! use gpu_model::profile;
//!
//! let p = profile::find("gh100").unwrap();
//! let mut gpu = GpuDevice::new(p, 1 << 20).unwrap();
//! assert_eq!(gpu.read_u32(REGION_CONFIG, 0), 0x2330_10de);
//! assert_eq!(gpu.read_u32(REGION_BAR0, 0), 0x1800_00a1);
//! ```

pub mod bar0;
pub mod config_space;
pub mod device;
pub mod fault;
pub mod profile;
pub mod server;
pub mod vram;

/// An access outside a region of the device (configuration space, BAR0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    /// The region accessed, for messages: `"config"` or `"BAR0"`.
    pub region: &'static str,
    /// Offset of the access.
    pub offset: u64,
    /// Length of the access.
    pub len: usize,
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} access at {:#x} of {} bytes is out of range",
            self.region, self.offset, self.len
        )
    }
}

impl std::error::Error for OutOfRange {}

/// `eprintln!` that cannot panic: once the harness that reads the model's stderr is gone, stderr
/// is a broken pipe, and a panic there would stop the model serving (or exiting cleanly).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

/// Sends the `log` records of the vfio-user crate (its protocol errors are `log::error!`) to
/// stderr as `gpu-model: vfio-user LEVEL: message` lines, warnings and errors only.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            say!(
                "gpu-model: vfio-user {}: {}",
                record.level().as_str().to_lowercase(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the stderr logger (once; later calls do nothing).
pub fn install_logger() {
    static LOGGER: StderrLogger = StderrLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}
