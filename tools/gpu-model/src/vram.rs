//! Memory behind the RAM-like BARs (BAR1 VRAM aperture, BAR3 instance memory).
//!
//! Each aperture is a memfd of the BAR's size. The file is sparse: it costs no host memory
//! until a page is touched, so a 128 GiB BAR1 is cheap. The server hands the fd to QEMU as
//! a sparse mmap area, so guest accesses go straight to the pages with no socket message;
//! [`Aperture::read`] / [`Aperture::write`] serve the accesses that still come over the
//! socket (a client that does not map the region).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;

/// A sparse, shareable memory file of fixed size.
///
/// Invariant: `file` is a memfd whose length is `size`.
#[derive(Debug)]
pub struct Aperture {
    file: File,
    size: u64,
}

impl Aperture {
    /// Creates a zero-filled aperture of `size` bytes named `name` (shown in /proc/PID/maps).
    pub fn new(name: &str, size: u64) -> io::Result<Self> {
        let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `cname` is a valid NUL-terminated string that outlives the call; the flags
        // are valid memfd_create flags.
        let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by memfd_create, is open, and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size)?;
        Ok(Self { file, size })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The memfd, for handing to the client; it stays open as long as `self` lives.
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    fn check(&self, offset: u64, len: usize) -> io::Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("aperture access at {offset:#x} of {len} bytes is out of range"),
            )),
        }
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check(offset, buf.len())?;
        self.file.read_exact_at(buf, offset)
    }

    /// Writes `data` at `offset`.
    pub fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check(offset, data.len())?;
        self.file.write_all_at(data, offset)
    }

    /// Returns every page to zero and frees the host memory behind it (the power-on state).
    /// Mappings of the file stay valid and see zeroes.
    pub fn discard(&self) -> io::Result<()> {
        let len = libc::off_t::try_from(self.size)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: plain syscall on an fd we own; punching a hole keeps the file size, so
        // existing mappings stay valid.
        let r = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                0,
                len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Host memory currently used by the aperture, in bytes.
    pub fn resident_bytes(&self) -> u64 {
        self.file
            .metadata()
            .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_aperture_is_sparse_and_reads_back() {
        let a = Aperture::new("test-bar1", 128 << 30).unwrap();
        assert_eq!(a.size(), 128 << 30);
        assert_eq!(a.resident_bytes(), 0);
        let mut b = [0xaa; 8];
        a.read((128 << 30) - 8, &mut b).unwrap();
        assert_eq!(b, [0; 8]);
        a.write(0x1000, b"nova").unwrap();
        let mut r = [0; 4];
        a.read(0x1000, &mut r).unwrap();
        assert_eq!(&r, b"nova");
        assert!(a.resident_bytes() >= 4096 && a.resident_bytes() < 1 << 20);
        a.discard().unwrap();
        a.read(0x1000, &mut r).unwrap();
        assert_eq!(r, [0; 4]);
        assert_eq!(a.resident_bytes(), 0);
        assert!(a.read(128 << 30, &mut r).is_err());
        assert!(a.write(u64::MAX, &r).is_err());
    }
}
