//! The guest's initramfs: busybox-static, an init script and our guest programs, written as a
//! `newc` cpio archive by the tool itself (deterministic, no root needed for device nodes).

use anyhow::{Context, Result};
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

/// Builds the initramfs: busybox from the rootfs, `programs` copied into `/bin`, `modules` into
/// `/lib/modules` (flat: `/lib/modules/<name>.ko`), and the command lines of `run` executed in
/// order by init.
pub fn build(
    rootfs: &Path,
    programs: &[PathBuf],
    modules: &[PathBuf],
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
}
