//! The guest's initramfs: busybox-static, an init script and our guest programs, written as a
//! `newc` cpio archive by the tool itself (deterministic, no root needed for device nodes).

use crate::boot::firmware::GuestFile;
use crate::setup::PCI_IDS;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// One entry of the archive.
enum Entry {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink(String),
    CharDev { major: u32, minor: u32 },
}

/// A `newc` cpio archive under construction.
#[derive(Default)]
pub struct Cpio {
    entries: Vec<(String, Entry)>,
}

impl Cpio {
    /// Adds a directory.
    pub fn dir(&mut self, path: &str) {
        self.entries.push((path.to_string(), Entry::Dir));
    }

    /// Adds a regular file with permission bits `mode`.
    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) {
        self.entries
            .push((path.to_string(), Entry::File { data, mode }));
    }

    /// Adds a symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.entries
            .push((path.to_string(), Entry::Symlink(target.to_string())));
    }

    /// Adds a character device node.
    pub fn char_dev(&mut self, path: &str, major: u32, minor: u32) {
        self.entries
            .push((path.to_string(), Entry::CharDev { major, minor }));
    }

    /// Whether the archive already has an entry at `path`.
    fn has(&self, path: &str) -> bool {
        self.entries.iter().any(|(p, _)| p == path)
    }

    /// Adds a regular file at the absolute guest path `path` (e.g. `/lib/firmware/x.bin`),
    /// with every folder above it that the archive does not have yet. A relative path, one
    /// with an empty, `.` or `..` component, or one the archive already has is refused.
    pub fn file_with_dirs(&mut self, path: &str, data: Vec<u8>, mode: u32) -> Result<()> {
        let rel = self.dirs_for(path)?;
        self.file(&rel, data, mode);
        Ok(())
    }

    /// Adds a symbolic link to `target` at the absolute guest path `path`, with its folders,
    /// as [`Cpio::file_with_dirs`] adds a file.
    pub fn symlink_with_dirs(&mut self, path: &str, target: &str) -> Result<()> {
        let rel = self.dirs_for(path)?;
        self.symlink(&rel, target);
        Ok(())
    }

    /// Checks the absolute guest path `path` as [`Cpio::file_with_dirs`] says, adds the
    /// folders above it, and gives its path in the archive.
    fn dirs_for(&mut self, path: &str) -> Result<String> {
        let rel = path
            .strip_prefix('/')
            .with_context(|| format!("guest path `{path}` is not absolute"))?;
        let parts: Vec<&str> = rel.split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            bail!("guest path `{path}` has an empty, `.` or `..` component");
        }
        if self.has(rel) {
            bail!("guest path `{path}` is in the initramfs twice");
        }
        for i in 1..parts.len() {
            let dir = parts[..i].join("/");
            if !self.has(&dir) {
                self.dir(&dir);
            }
        }
        Ok(rel.to_string())
    }

    /// The archive's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, entry)) in self.entries.iter().enumerate() {
            let (mode, data, rdev) = match entry {
                Entry::Dir => (0o040755, &[][..], (0, 0)),
                Entry::File { data, mode } => (0o100000 | mode, &data[..], (0, 0)),
                Entry::Symlink(t) => (0o120777, t.as_bytes(), (0, 0)),
                Entry::CharDev { major, minor } => (0o020600, &[][..], (*major, *minor)),
            };
            header(&mut out, ino as u32 + 1, mode, data.len(), rdev, path);
            out.extend_from_slice(data);
            pad4(&mut out);
        }
        header(&mut out, 0, 0, 0, (0, 0), "TRAILER!!!");
        out
    }
}

fn header(out: &mut Vec<u8>, ino: u32, mode: u32, size: usize, rdev: (u32, u32), name: &str) {
    let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
    let fields = [ino, mode, 0, 0, nlink, 0, size as u32, 0, 0, rdev.0, rdev.1];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(format!("{:08x}{:08x}", name.len() + 1, 0).as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The init script: mounts the pseudo file systems, runs `/etc/nova/run` line by line, reboots
/// (QEMU runs with `-no-reboot`, so the reboot ends the run).
const INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo "nova-init: userspace up"
# Programs write to a serial port of their own (ttyS1) when the harness gave one, so that kernel
# messages on the console cannot cut their lines.
out=/dev/console
[ -c /dev/ttyS1 ] && stty -F /dev/ttyS1 raw -echo 2>/dev/null && out=/dev/ttyS1
while read -r line; do
    [ -z "$line" ] && continue
    echo "nova-init: run $line"
    sh -c "$line" >"$out" 2>&1
    echo "nova-init: exit $? $line"
done < /etc/nova/run
echo "nova-init: done"
sync
reboot -f
"#;

/// Builds the initramfs: busybox and the PCI ID database ([`PCI_IDS`]) from the rootfs,
/// `programs` copied into `/bin`, `modules` into
/// `/lib/modules` (flat: `/lib/modules/<name>.ko`), the extra `files` at their guest paths
/// (absolute, e.g. firmware under `/lib/firmware`; their folders are created), and the command
/// lines of `run` executed in order by init.
pub fn build(
    rootfs: &Path,
    programs: &[PathBuf],
    modules: &[PathBuf],
    files: &[GuestFile],
    run: &[String],
    out: &Path,
) -> Result<()> {
    let mut c = Cpio::default();
    for d in [
        "bin",
        "dev",
        "etc",
        "etc/nova",
        "proc",
        "sys",
        "tmp",
        "lib",
        "lib/firmware",
        "lib/modules",
    ] {
        c.dir(d);
    }
    c.char_dev("dev/console", 5, 1);
    let busybox = rootfs.join("usr/bin/busybox");
    c.file(
        "bin/busybox",
        fs::read(&busybox).with_context(|| format!("cannot read {}", busybox.display()))?,
        0o755,
    );
    c.symlink("bin/sh", "busybox");
    let ids = rootfs.join(PCI_IDS);
    let data = fs::read(&ids).with_context(|| {
        format!(
            "cannot read {} (the rootfs's package pci.ids; setup installs it)",
            ids.display()
        )
    })?;
    c.file_with_dirs(&format!("/{PCI_IDS}"), data, 0o644)?;
    c.file("init", INIT.as_bytes().to_vec(), 0o755);
    for p in programs {
        let name = p
            .file_name()
            .context("program without a name")?
            .to_string_lossy();
        let data = fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        c.file(&format!("bin/{name}"), data, 0o755);
    }
    for m in modules {
        let name = m
            .file_name()
            .context("module without a name")?
            .to_string_lossy();
        let data = fs::read(m).with_context(|| format!("cannot read {}", m.display()))?;
        c.file(&format!("lib/modules/{name}"), data, 0o644);
    }
    for f in files {
        match f {
            GuestFile::File { path, data } => c.file_with_dirs(path, data.clone(), 0o644)?,
            GuestFile::Link { path, target } => c.symlink_with_dirs(path, target)?,
        }
    }
    let mut script = run.join("\n");
    script.push('\n');
    c.file("etc/nova/run", script.into_bytes(), 0o644);
    crate::util::write_atomic(out, &c.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout_is_aligned_and_terminated() {
        let mut c = Cpio::default();
        c.dir("bin");
        c.file("bin/x", b"hello".to_vec(), 0o755);
        c.symlink("bin/sh", "busybox");
        c.char_dev("dev/console", 5, 1);
        let b = c.to_bytes();
        assert_eq!(&b[..6], b"070701");
        assert_eq!(b.len() % 4, 0);
        let s = String::from_utf8_lossy(&b);
        assert!(s.contains("bin/x\0"));
        assert!(s.contains("hello"));
        assert!(s.ends_with("TRAILER!!!\0\0\0\0") || s.contains("TRAILER!!!\0"));
        // The file entry: mode 0100755, size 5.
        let at = s.find("bin/x\0").unwrap();
        let hdr = &s[at - 110..at];
        assert_eq!(&hdr[14..22], "000081ed");
        assert_eq!(&hdr[54..62], "00000005");
        // The console: char device 5:1.
        let at = s.find("dev/console\0").unwrap();
        let hdr = &s[at - 110..at];
        assert_eq!(&hdr[14..22], "00002180");
        assert_eq!(&hdr[78..86], "00000005");
        assert_eq!(&hdr[86..94], "00000001");
    }

    /// The entries of a `newc` archive: (path, mode, data), in order.
    fn entries(b: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let field = |at: usize, i: usize| {
            let f = &b[at + 6 + i * 8..at + 14 + i * 8];
            u32::from_str_radix(std::str::from_utf8(f).unwrap(), 16).unwrap() as usize
        };
        let up4 = |n: usize| n.div_ceil(4) * 4;
        let (mut at, mut out) = (0, Vec::new());
        loop {
            assert_eq!(&b[at..at + 6], b"070701");
            let (mode, size, namesize) = (field(at, 1), field(at, 6), field(at, 11));
            let name = &b[at + 110..at + 110 + namesize - 1];
            let name = String::from_utf8(name.to_vec()).unwrap();
            let data_at = up4(at + 110 + namesize);
            if name == "TRAILER!!!" {
                return out;
            }
            out.push((name, mode as u32, b[data_at..data_at + size].to_vec()));
            at = up4(data_at + size);
        }
    }

    #[test]
    fn extra_files_get_their_folders_first() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(rootfs.join("usr/bin")).unwrap();
        fs::write(rootfs.join("usr/bin/busybox"), b"busybox").unwrap();
        fs::create_dir_all(rootfs.join("usr/share/misc")).unwrap();
        fs::write(rootfs.join(PCI_IDS), b"10de  NVIDIA Corporation\n").unwrap();
        let file = |path: &str, data: &[u8]| GuestFile::File {
            path: path.to_string(),
            data: data.to_vec(),
        };
        let files = vec![
            file("/lib/firmware/nvidia/tu102/gsp/a.bin", b"A"),
            file("/lib/firmware/nvidia/tu102/gsp/b.bin", b"B"),
            file("/etc/x/y", b"Y"),
            GuestFile::Link {
                path: "/lib/firmware/nvidia/tu104/gsp/a.bin".to_string(),
                target: "/lib/firmware/nvidia/tu102/gsp/a.bin".to_string(),
            },
        ];
        let out = dir.path().join("initramfs.cpio");
        build(&rootfs, &[], &[], &files, &["true".into()], &out).unwrap();
        let e = entries(&fs::read(&out).unwrap());
        let at = |p: &str| {
            e.iter()
                .position(|(n, _, _)| n == p)
                .unwrap_or_else(|| panic!("{p}"))
        };
        for d in [
            "lib/firmware/nvidia",
            "lib/firmware/nvidia/tu102",
            "lib/firmware/nvidia/tu102/gsp",
            "etc/x",
        ] {
            assert_eq!(e[at(d)].1, 0o040755, "{d} is a folder");
        }
        assert!(at("lib/firmware") < at("lib/firmware/nvidia"));
        assert!(at("lib/firmware/nvidia/tu102/gsp") < at("lib/firmware/nvidia/tu102/gsp/a.bin"));
        let a = &e[at("lib/firmware/nvidia/tu102/gsp/a.bin")];
        assert_eq!((a.1, a.2.as_slice()), (0o100644, &b"A"[..]));
        assert_eq!(e[at("etc/x/y")].2, b"Y");
        assert_eq!(e[at(PCI_IDS)].2, b"10de  NVIDIA Corporation\n");
        let link = &e[at("lib/firmware/nvidia/tu104/gsp/a.bin")];
        assert_eq!(
            (link.1, link.2.as_slice()),
            (0o120777, &b"/lib/firmware/nvidia/tu102/gsp/a.bin"[..])
        );
        assert!(at("lib/firmware/nvidia/tu104/gsp") < at("lib/firmware/nvidia/tu104/gsp/a.bin"));
        // Each folder once, though two files share it.
        let gsp = e
            .iter()
            .filter(|(n, _, _)| n == "lib/firmware/nvidia/tu102/gsp")
            .count();
        assert_eq!(gsp, 1);
        assert_eq!(e[at("etc/nova/run")].2, b"true\n");
    }

    #[test]
    fn bad_extra_paths_are_refused() {
        let mut c = Cpio::default();
        c.file("init", vec![], 0o755);
        assert!(c.file_with_dirs("lib/x", vec![], 0o644).is_err());
        assert!(c.file_with_dirs("/lib/../x", vec![], 0o644).is_err());
        assert!(c.file_with_dirs("/lib//x", vec![], 0o644).is_err());
        assert!(c.file_with_dirs("/init", vec![], 0o644).is_err());
        c.file_with_dirs("/a/b", vec![], 0o644).unwrap();
        let e = c.file_with_dirs("/a/b", vec![], 0o644).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }
}
