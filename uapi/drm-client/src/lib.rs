//! A small libdrm-like client for DRM drivers' uAPI: open a driver's primary or render node by
//! the driver's name, read its version (`DRM_IOCTL_VERSION`), issue driver ioctls defined once
//! as typed [`DriverIoctl`]s, close, name and open GEM handles (`DRM_IOCTL_GEM_CLOSE`,
//! `_FLINK`, `_OPEN`), export and import them (PRIME) and create dumb buffers
//! (`DRM_IOCTL_MODE_CREATE_DUMB`).
//!
//! It stands on the `drm` crate for DRM core's ioctls ([`Card`] implements [`drm::Device`] and
//! [`drm::control::Device`]) and on rustix's `ioctl` for driver ioctls. Ioctl errors are the
//! kernel's errno as a [`rustix::io::Errno`] (`Errno::INVAL`, ...), so that tests compare
//! them exactly; opening files gives [`std::io::Error`].
//!
//! [`sample`] is the uAPI of the Rust DRM sample driver (`rust_drm`); a driver's own crate
//! defines its ioctls the same way.
//!
//! ```no_run
//! use drm_client::{sample, Card, NodeKind};
//!
//! let card = Card::open_driver(sample::DRIVER_NAME, NodeKind::Render)?;
//! let gem = sample::gem_create(&card, 4097)?;
//! assert_eq!(sample::gem_info(&card, gem.handle)?, gem.size);
//! card.gem_close(gem.handle)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod ioctl;
pub mod node;
pub mod sample;

pub use ioctl::{Direction, DriverIoctl};
pub use node::{Node, NodeKind};
pub use rustix::io::Errno;

use bytemuck::Pod;
use drm::buffer::Buffer;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The character device major of every DRM node (`DRM_MAJOR`).
pub const DRM_MAJOR: u32 = 226;

/// An open DRM node (a character device of major [`DRM_MAJOR`]).
#[derive(Debug)]
pub struct Card {
    file: File,
    path: Option<PathBuf>,
}

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl drm::Device for Card {}
impl drm::control::Device for Card {}

/// What `DRM_IOCTL_VERSION` says about a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The driver's name (`drm_driver.name`), which [`Card::open_driver`] matches.
    pub name: String,
    /// The description.
    pub desc: String,
    /// The date, `YYYYMMDD`.
    pub date: String,
    /// Major, minor and patch level.
    pub version: (i32, i32, i32),
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (major, minor, patch) = self.version;
        write!(
            f,
            "{} {major}.{minor}.{patch} {} ({})",
            self.name, self.date, self.desc
        )
    }
}

/// A dumb buffer's handle and layout, as `DRM_IOCTL_MODE_CREATE_DUMB` gave them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dumb {
    /// The GEM handle (close it with [`Card::gem_close`]).
    pub handle: u32,
    /// Bytes per line.
    pub pitch: u32,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

/// The number of `DRM_IOCTL_GEM_FLINK`.
const GEM_FLINK_NR: u8 = 0x0a;
/// The number of `DRM_IOCTL_GEM_OPEN`.
const GEM_OPEN_NR: u8 = 0x0b;

/// `struct drm_gem_flink`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct GemFlink {
    handle: u32,
    name: u32,
}

/// `struct drm_gem_open`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct GemOpen {
    name: u32,
    handle: u32,
    size: u64,
}

/// The major number of device number `rdev` (glibc's `gnu_dev_major`).
fn major(rdev: u64) -> u32 {
    (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as u32
}

impl Card {
    /// Opens the DRM node at `path` for reading and writing; refuses a file that is not a DRM
    /// character device (`InvalidInput`).
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let mut card = Self::from_file(file)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        card.path = Some(path.to_path_buf());
        Ok(card)
    }

    /// A card for an open file descriptor (one inherited from another process, say); refuses
    /// one that is not a DRM character device (`InvalidInput`).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        Self::from_file(File::from(fd))
    }

    fn from_file(file: File) -> io::Result<Self> {
        let meta = file.metadata()?;
        if !meta.file_type().is_char_device() || major(meta.rdev()) != DRM_MAJOR {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a DRM device node (character device {DRM_MAJOR}:*)"),
            ));
        }
        Ok(Self { file, path: None })
    }

    /// The `kind` node of the DRM driver named `driver` (as `DRM_IOCTL_VERSION` names it) in
    /// [`node::DEV_DRI`]. `NotFound` when there is none; with several devices of that driver,
    /// the one with the lowest minor.
    pub fn open_driver(driver: &str, kind: NodeKind) -> io::Result<Self> {
        Self::open_driver_in(Path::new(node::DEV_DRI), driver, kind)
    }

    /// [`Card::open_driver`] among the nodes in `dir`. Nodes that cannot be opened or do not
    /// answer `DRM_IOCTL_VERSION` are passed over.
    pub fn open_driver_in(dir: &Path, driver: &str, kind: NodeKind) -> io::Result<Self> {
        let mut seen = Vec::new();
        for n in node::nodes_in(dir)?.into_iter().filter(|n| n.kind == kind) {
            let answer = Card::open(&n.path)
                .and_then(|c| c.version().map_err(io::Error::from).map(|v| (c, v)));
            match answer {
                Ok((card, v)) if v.name == driver => return Ok(card),
                Ok((_, v)) => seen.push(format!("{}: {}", n.path.display(), v.name)),
                Err(e) => seen.push(e.to_string()),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no {kind} node of DRM driver `{driver}` in {} ({})",
                dir.display(),
                if seen.is_empty() {
                    "it has none".to_string()
                } else {
                    seen.join("; ")
                }
            ),
        ))
    }

    /// The path the card was opened at (none for [`Card::from_fd`]).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Another descriptor of the same open file (`dup`): it shares the DRM file, and so its
    /// GEM handles, with this one.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            file: self.file.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// The descriptor.
    pub fn into_fd(self) -> OwnedFd {
        self.file.into()
    }

    /// `DRM_IOCTL_VERSION`.
    pub fn version(&self) -> Result<Version, Errno> {
        let d = drm::Device::get_driver(self).map_err(|e| errno_of(&e))?;
        Ok(Version {
            name: d.name.to_string_lossy().into_owned(),
            desc: d.desc.to_string_lossy().into_owned(),
            date: d.date.to_string_lossy().into_owned(),
            version: d.version,
        })
    }

    /// Issues the driver ioctl `ioctl` with argument `arg`, which the driver may update.
    pub fn ioctl<T: Pod>(&self, ioctl: DriverIoctl<T>, arg: &mut T) -> Result<(), Errno> {
        let call = ioctl::Call::new(ioctl, arg);
        // SAFETY: a `Card` is a DRM node, and a DRM ioctl with a `Pod` argument is sound: see
        // the `ioctl` module's documentation.
        unsafe { rustix::ioctl::ioctl(self, call) }
    }

    /// `DRM_IOCTL_GEM_CLOSE`: closes GEM handle `handle` of this file. Handle 0 is never one
    /// (the kernel's handles start at 1) and gives `EINVAL` without a call, as the kernel
    /// would answer.
    pub fn gem_close(&self, handle: u32) -> Result<(), Errno> {
        let handle = drm::control::from_u32(handle).ok_or(Errno::INVAL)?;
        drm::control::Device::close_buffer(self, handle).map_err(|e| errno_of(&e))
    }

    /// `DRM_IOCTL_PRIME_HANDLE_TO_FD`: exports the object of GEM handle `handle` to a dma-buf,
    /// whose file descriptor keeps the object alive until it is closed.
    pub fn prime_export(&self, handle: u32) -> Result<OwnedFd, Errno> {
        let handle = drm::control::from_u32(handle).ok_or(Errno::INVAL)?;
        drm::control::Device::buffer_to_prime_fd(self, handle, drm::CLOEXEC)
            .map_err(|e| errno_of(&e))
    }

    /// `DRM_IOCTL_PRIME_FD_TO_HANDLE`: a GEM handle of this file for the dma-buf `dmabuf`.
    pub fn prime_import(&self, dmabuf: BorrowedFd<'_>) -> Result<u32, Errno> {
        drm::control::Device::prime_fd_to_buffer(self, dmabuf)
            .map(u32::from)
            .map_err(|e| errno_of(&e))
    }

    /// `DRM_IOCTL_GEM_FLINK`: a global name for the object of GEM handle `handle`, which any
    /// authenticated file of the device can open ([`Card::gem_open`]). DRM core allows it on
    /// primary nodes only (`EACCES` on a render node).
    pub fn gem_flink(&self, handle: u32) -> Result<u32, Errno> {
        let mut arg = GemFlink { handle, name: 0 };
        self.core_ioctl(GEM_FLINK_NR, &mut arg)?;
        Ok(arg.name)
    }

    /// `DRM_IOCTL_GEM_OPEN`: a GEM handle of this file for the object of global name `name`,
    /// and the object's size. Primary nodes only, as [`Card::gem_flink`].
    pub fn gem_open(&self, name: u32) -> Result<(u32, u64), Errno> {
        let mut arg = GemOpen {
            name,
            ..GemOpen::default()
        };
        self.core_ioctl(GEM_OPEN_NR, &mut arg)?;
        Ok((arg.handle, arg.size))
    }

    /// Issues DRM core's `_IOWR` ioctl `nr` with argument `arg`.
    fn core_ioctl<T: Pod>(&self, nr: u8, arg: &mut T) -> Result<(), Errno> {
        let call = ioctl::Call::core(nr, arg);
        // SAFETY: as in `Card::ioctl`: DRM core copies `size_of::<T>()` bytes, the size in the
        // request number, in and out of a `Pod` argument.
        unsafe { rustix::ioctl::ioctl(self, call) }
    }

    /// `DRM_IOCTL_MODE_CREATE_DUMB`: a `width` x `height` dumb buffer of `bpp` bits per pixel.
    /// DRM core allows it on primary nodes only (no `DRM_RENDER_ALLOW`: `EACCES` on a render
    /// node).
    pub fn create_dumb(&self, width: u32, height: u32, bpp: u32) -> Result<Dumb, Errno> {
        // The format is the crate's bookkeeping; the kernel gets only the bpp.
        let format = drm::buffer::DrmFourcc::Xrgb8888;
        let b = drm::control::Device::create_dumb_buffer(self, (width, height), format, bpp)
            .map_err(|e| errno_of(&e))?;
        Ok(Dumb {
            handle: b.handle().into(),
            pitch: b.pitch(),
            size: b.size(),
        })
    }
}

/// The errno of an I/O error from a system call (`EIO` for one that has none).
pub fn errno_of(e: &io::Error) -> Errno {
    Errno::from_io_error(e).unwrap_or(Errno::IO)
}

/// The C name of `e` (`EINVAL`) for the errnos DRM drivers give, else `errno N`.
pub fn errno_name(e: Errno) -> String {
    let name = match e {
        Errno::PERM => "EPERM",
        Errno::NOENT => "ENOENT",
        Errno::INTR => "EINTR",
        Errno::IO => "EIO",
        Errno::NXIO => "ENXIO",
        Errno::BADF => "EBADF",
        Errno::AGAIN => "EAGAIN",
        Errno::NOMEM => "ENOMEM",
        Errno::ACCESS => "EACCES",
        Errno::FAULT => "EFAULT",
        Errno::BUSY => "EBUSY",
        Errno::EXIST => "EEXIST",
        Errno::NODEV => "ENODEV",
        Errno::INVAL => "EINVAL",
        Errno::NOTTY => "ENOTTY",
        Errno::FBIG => "EFBIG",
        Errno::NOSPC => "ENOSPC",
        Errno::RANGE => "ERANGE",
        Errno::NOSYS => "ENOSYS",
        Errno::OVERFLOW => "EOVERFLOW",
        Errno::OPNOTSUPP => "EOPNOTSUPP",
        Errno::TIMEDOUT => "ETIMEDOUT",
        _ => return format!("errno {}", e.raw_os_error()),
    };
    name.to_string()
}

/// `Ok(value)` as itself, an error by its name: for messages (`Err(EINVAL)`).
pub fn describe<T: std::fmt::Debug>(r: &Result<T, Errno>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({})", errno_name(*e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_gem_requests_are_drm_h_s() {
        // DRM_IOCTL_GEM_FLINK and DRM_IOCTL_GEM_OPEN as include/uapi/drm/drm.h defines them.
        let mut flink = GemFlink::default();
        assert_eq!(
            ioctl::Call::core(GEM_FLINK_NR, &mut flink).opcode_of(),
            0xC008_640A
        );
        let mut open = GemOpen::default();
        assert_eq!(
            ioctl::Call::core(GEM_OPEN_NR, &mut open).opcode_of(),
            0xC010_640B
        );
        assert_eq!(std::mem::offset_of!(GemOpen, size), 8);
    }

    #[test]
    fn majors_are_read_from_both_halves_of_the_device_number() {
        // makedev(226, 128) and makedev(0x1234, 5) as glibc encodes them.
        assert_eq!(major((226 << 8) | 128), 226);
        let big: u64 = ((0x1234 & 0xfff) << 8) | ((0x1234 & !0xfff) << 32) | 5;
        assert_eq!(major(big), 0x1234);
    }

    #[test]
    fn files_that_are_not_drm_nodes_are_refused() {
        let e = Card::open("/dev/null").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(
            e.to_string()
                .starts_with("/dev/null: not a DRM device node"),
            "{e}"
        );
        // A regular file.
        let file = std::env::temp_dir().join(format!("drm-client-file-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let e = Card::open(&file).unwrap_err();
        std::fs::remove_file(&file).unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        let e = Card::open("/nonexistent/card0").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_driver_is_not_found_among_files_that_are_not_drm_nodes() {
        let dir = std::env::temp_dir().join(format!("drm-client-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("card0"), b"").unwrap();
        std::fs::write(dir.join("renderD128"), b"").unwrap();
        let e = Card::open_driver_in(&dir, "rust_drm", NodeKind::Render).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let msg = e.to_string();
        assert!(
            msg.starts_with("no render node of DRM driver `rust_drm` in "),
            "{msg}"
        );
        assert!(msg.contains("renderD128: not a DRM device node"), "{msg}");
        assert!(
            !msg.contains("card0"),
            "only render nodes are looked at: {msg}"
        );
        let e = Card::open_driver_in(&dir.join("none"), "x", NodeKind::Primary).unwrap_err();
        assert!(e.to_string().ends_with("(it has none)"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errnos_are_named() {
        assert_eq!(errno_name(Errno::INVAL), "EINVAL");
        assert_eq!(errno_name(Errno::ACCESS), "EACCES");
        assert_eq!(errno_name(Errno::NODEV), "ENODEV");
        assert_eq!(errno_name(Errno::from_raw_os_error(133)), "errno 133");
        assert_eq!(errno_of(&io::Error::from_raw_os_error(2)), Errno::NOENT);
        assert_eq!(errno_of(&io::Error::other("x")), Errno::IO);
        assert_eq!(describe::<u32>(&Err(Errno::NOENT)), "Err(ENOENT)");
        assert_eq!(describe(&Ok(3)), "Ok(3)");
    }

    #[test]
    fn versions_read_as_drm_core_prints_them() {
        let v = Version {
            name: "rust_drm".into(),
            desc: "Rust DRM sample driver".into(),
            date: "20261201".into(),
            version: (1, 0, 0),
        };
        assert_eq!(
            v.to_string(),
            "rust_drm 1.0.0 20261201 (Rust DRM sample driver)"
        );
    }
}
