//! vfio-user glue: presents a [`GpuDevice`] to a vfio-user client (QEMU's `vfio-user-pci`)
//! through the rust-vmm `vfio_user` crate.
//!
//! Regions: BAR0 (16 MiB, read/write over the socket), BAR1 and BAR3 (read/write/mmap: one
//! sparse mmap area covering the BAR, backed by the aperture's memfd, so the client maps it
//! and guest accesses cost no socket messages), the 4 KiB configuration space; every other
//! region has size 0. Interrupts: INTx (1), MSI (1), ERR (1, so that QEMU enables error
//! recovery), MSI-X and REQ (0).
//!
//! `vfio_user::Server::run` serves one connection and returns when the client goes away, or
//! when a message cannot be handled: the crate (a patched copy, see
//! `tools/gpu-model/vendor/vfio_user/PATCHED.md`) then replies with an error if it can and
//! closes the connection rather than read on from a stream that may be out of step with the
//! message framing. [`GpuServer::serve_forever`] loops around it so that QMP `device_del` /
//! `device_add` (unplug, re-plug), a restarted QEMU and a client that sent garbage find the
//! device again. Between connections the device returns to power-on state, like a card taken
//! out of its slot.

use crate::device::{GpuDevice, REGION_BAR0, REGION_BAR1, REGION_BAR3, REGION_CONFIG};
use crate::profile::BAR0_SIZE;
use std::fmt;
use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use vfio_bindings::bindings::vfio::{
    vfio_region_info, vfio_region_sparse_mmap_area, VFIO_IRQ_INFO_AUTOMASKED,
    VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE, VFIO_IRQ_INFO_NORESIZE, VFIO_PCI_ERR_IRQ_INDEX,
    VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS,
    VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{
    Command, DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion, SparseArea,
};

/// Locks the shared device. A panic while the lock was held (a bug, never bad input) does
/// not leave the state half-updated in a way that matters to a test device, so the model
/// keeps serving rather than dying with it.
pub fn lock(device: &Mutex<GpuDevice>) -> MutexGuard<'_, GpuDevice> {
    device.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `vfio_user::ServerBackend` of the model: forwards every request to the device.
pub struct Backend {
    device: Arc<Mutex<GpuDevice>>,
}

impl Backend {
    /// A backend serving `device`.
    pub fn new(device: Arc<Mutex<GpuDevice>>) -> Self {
        Self { device }
    }
}

impl ServerBackend for Backend {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        Ok(lock(&self.device).region_read(region, offset, data)?)
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        Ok(lock(&self.device).region_write(region, offset, data)?)
    }

    fn dma_map(
        &mut self,
        _flags: DmaMapFlags,
        _offset: u64,
        _address: u64,
        _size: u64,
        _fd: Option<File>,
    ) -> io::Result<()> {
        lock(&self.device).note_dma_map();
        Ok(())
    }

    fn dma_unmap(&mut self, _flags: DmaUnmapFlags, _address: u64, _size: u64) -> io::Result<()> {
        lock(&self.device).note_dma_unmap();
        Ok(())
    }

    fn reset(&mut self) -> io::Result<()> {
        lock(&self.device).reset()
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        lock(&self.device).set_irqs(index, flags, start, count, fds)
    }
}

fn region(index: u32, size: u64, flags: u32) -> vfio_region_info {
    vfio_region_info {
        argsz: size_of::<vfio_region_info>() as u32,
        flags,
        index,
        cap_offset: 0,
        size,
        offset: 0,
    }
}

/// The vfio regions of `device`, indexed by vfio region number.
pub fn regions(device: &GpuDevice) -> Vec<ServerRegion> {
    let rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let aperture = match index {
                REGION_BAR1 => Some(device.bar1()),
                REGION_BAR3 => Some(device.bar3()),
                _ => None,
            };
            if let Some(a) = aperture {
                return ServerRegion {
                    region_info: region(index, a.size(), rw | VFIO_REGION_INFO_FLAG_MMAP),
                    sparse_areas: vec![SparseArea {
                        area: vfio_region_sparse_mmap_area {
                            offset: 0,
                            size: a.size(),
                        },
                    }],
                    mmap_fd: Some(a.raw_fd()),
                };
            }
            let (size, flags) = match index {
                REGION_BAR0 => (BAR0_SIZE, rw),
                REGION_CONFIG => (crate::config_space::CONFIG_SPACE_SIZE as u64, rw),
                _ => (0, 0),
            };
            ServerRegion {
                region_info: region(index, size, flags),
                sparse_areas: vec![],
                mmap_fd: None,
            }
        })
        .collect()
}

/// The interrupts the device advertises, indexed by vfio irq number.
pub fn irqs() -> Vec<IrqInfo> {
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| {
            let (count, flags) = match index {
                VFIO_PCI_INTX_IRQ_INDEX => (
                    1,
                    VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
                ),
                VFIO_PCI_MSI_IRQ_INDEX => (1, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE),
                VFIO_PCI_ERR_IRQ_INDEX => (1, VFIO_IRQ_INFO_EVENTFD),
                _ => (0, 0),
            };
            IrqInfo {
                index,
                flags,
                count,
            }
        })
        .collect()
}

/// Why a socket path could not be taken.
#[derive(Debug)]
pub enum SocketPathError {
    /// Something that is not a socket is in the way.
    NotASocket(PathBuf),
    /// Another server is listening there.
    InUse(PathBuf),
    /// The path cannot be used (missing folder, permissions, ...).
    Io(PathBuf, io::Error),
}

impl fmt::Display for SocketPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketPathError::NotASocket(p) => {
                write!(f, "{} exists and is not a socket", p.display())
            }
            SocketPathError::InUse(p) => {
                write!(f, "{} is in use by another server", p.display())
            }
            SocketPathError::Io(p, e) => write!(f, "cannot listen on {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for SocketPathError {}

/// Makes `path` free for a new listening socket: nothing there is fine; a stale socket
/// (nobody accepts on it, left by a killed model) is removed; anything else is an error.
pub fn claim_socket_path(path: &Path) -> Result<(), SocketPathError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SocketPathError::Io(path.to_path_buf(), e)),
    };
    if !meta.file_type().is_socket() {
        return Err(SocketPathError::NotASocket(path.to_path_buf()));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(SocketPathError::InUse(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(|e| SocketPathError::Io(path.to_path_buf(), e))
        }
        Err(e) => Err(SocketPathError::Io(path.to_path_buf(), e)),
    }
}

/// Why serving a connection ended other than by the client closing it.
#[derive(Debug)]
pub enum ServeError {
    /// Connection number `connection` (1 for the first one the server accepted) sent a
    /// message that could not be handled; the server replied with an error if it could and
    /// closed the connection.
    Protocol {
        /// The connection's number.
        connection: u64,
        /// Which message and what was wrong with it.
        message: String,
    },
    /// Accepting failed, or the vfio-user crate failed or panicked otherwise.
    Other(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Protocol {
                connection,
                message,
            } => write!(f, "connection {connection}: protocol error: {message}"),
            ServeError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ServeError {}

/// Describes a protocol error of the vfio-user crate: the message (id, command by name if
/// known) and what was wrong with it.
fn describe_protocol_error(message_id: u16, command: u16, source: &vfio_user::Error) -> String {
    let name = match Command::n(command) {
        Some(Command::Unknown) | None => format!("unknown command {command}"),
        Some(c) => format!("{c:?} (command {command})"),
    };
    format!("message id {message_id}, {name}: {source}")
}

/// A listening vfio-user server for one device.
pub struct GpuServer {
    server: Server,
    device: Arc<Mutex<GpuDevice>>,
    path: PathBuf,
}

impl fmt::Debug for GpuServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuServer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl GpuServer {
    /// Listens on `path` (see [`claim_socket_path`] for what may already be there).
    pub fn bind(path: &Path, device: Arc<Mutex<GpuDevice>>) -> Result<Self, SocketPathError> {
        claim_socket_path(path)?;
        let (regions, irqs) = {
            let d = lock(&device);
            (regions(&d), irqs())
        };
        let server = Server::new(path, true, irqs, regions).map_err(|e| match e {
            vfio_user::Error::SocketPathExists => SocketPathError::InUse(path.to_path_buf()),
            vfio_user::Error::SocketBind(io) => SocketPathError::Io(path.to_path_buf(), io),
            other => SocketPathError::Io(path.to_path_buf(), io::Error::other(other.to_string())),
        })?;
        Ok(Self {
            server,
            device,
            path: path.to_path_buf(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one client and serves it until it disconnects, then returns the device to
    /// power-on state. A protocol error (the connection is closed by the server) or a panic
    /// inside the vfio-user crate ends only this connection.
    pub fn serve_one(&self) -> Result<(), ServeError> {
        let mut backend = Backend::new(Arc::clone(&self.device));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.server.run(&mut backend)
        }));
        let mut device = lock(&self.device);
        if let Err(e) = device.end_session() {
            crate::say!("gpu-model: resetting after disconnect failed: {e}");
        }
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(vfio_user::Error::Protocol {
                message_id,
                command,
                source,
            })) => Err(ServeError::Protocol {
                // The session counter now includes this connection.
                connection: device.counters().sessions,
                message: describe_protocol_error(message_id, command, &source),
            }),
            Ok(Err(e)) => Err(ServeError::Other(e.to_string())),
            Err(_) => Err(ServeError::Other(
                "vfio-user connection handler panicked".to_string(),
            )),
        }
    }

    /// Serves clients one after the other, forever.
    pub fn serve_forever(&self) -> ! {
        loop {
            match self.serve_one() {
                Ok(()) => crate::say!("gpu-model: client disconnected; waiting for the next one"),
                Err(e @ ServeError::Protocol { .. }) => {
                    crate::say!("gpu-model: {e}; closed it, waiting for the next one");
                }
                Err(e) => {
                    crate::say!("gpu-model: connection ended with an error: {e}");
                    // Do not spin if accept() itself keeps failing.
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::find;

    #[test]
    fn regions_describe_the_bars() {
        let d = GpuDevice::new(find("gh100").unwrap(), 128 << 30).unwrap();
        let r = regions(&d);
        assert_eq!(r.len(), VFIO_PCI_NUM_REGIONS as usize);
        assert_eq!(r[0].region_info.size, 16 << 20);
        assert_eq!(r[0].region_info.flags & VFIO_REGION_INFO_FLAG_MMAP, 0);
        assert_eq!(r[1].region_info.size, 128 << 30);
        assert_ne!(r[1].region_info.flags & VFIO_REGION_INFO_FLAG_MMAP, 0);
        assert_eq!(r[1].sparse_areas[0].area.size, 128 << 30);
        assert_eq!(r[1].mmap_fd, Some(d.bar1().raw_fd()));
        assert_eq!(r[3].region_info.size, 32 << 20);
        assert_eq!(r[7].region_info.size, 4096);
        for i in [2, 4, 5, 6, 8] {
            assert_eq!(r[i].region_info.size, 0, "region {i}");
        }
        for (i, reg) in r.iter().enumerate() {
            assert_eq!(reg.region_info.index as usize, i);
        }
    }

    #[test]
    fn irqs_include_err() {
        let i = irqs();
        assert_eq!(i.len(), VFIO_PCI_NUM_IRQS as usize);
        assert_eq!(i[VFIO_PCI_ERR_IRQ_INDEX as usize].count, 1);
        assert_eq!(i[VFIO_PCI_MSI_IRQ_INDEX as usize].count, 1);
        assert_eq!(i[VFIO_PCI_INTX_IRQ_INDEX as usize].count, 1);
    }

    #[test]
    fn claiming_socket_paths() {
        let dir = std::env::temp_dir().join(format!("gpu-model-claim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let free = dir.join("free.sock");
        assert!(claim_socket_path(&free).is_ok());
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            claim_socket_path(&file),
            Err(SocketPathError::NotASocket(_))
        ));
        let live = dir.join("live.sock");
        let listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
        assert!(matches!(
            claim_socket_path(&live),
            Err(SocketPathError::InUse(_))
        ));
        drop(listener); // the file stays: a stale socket
        assert!(live.exists());
        assert!(claim_socket_path(&live).is_ok());
        assert!(!live.exists());
        let missing = dir.join("no/such/dir/x.sock");
        let d = Arc::new(Mutex::new(
            GpuDevice::new(find("tu102").unwrap(), 1 << 20).unwrap(),
        ));
        assert!(matches!(
            GpuServer::bind(&missing, d),
            Err(SocketPathError::Io(..))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
