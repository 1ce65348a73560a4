//! PCI devices named as `lspci` names them, from the PCI ID database (`pci.ids`, the file
//! Debian's package `pci.ids` installs as [`DEFAULT_PATH`]).
//!
//! The database is text: a vendor line is four hex digits, two spaces and the vendor's name at
//! the start of a line; each of its devices follows on a line of one tab, four hex digits, two
//! spaces and the device's name; subsystems (two tabs) and comments (`#`) are skipped, and the
//! class list (lines from `C `) ends the vendors. [`name`] writes what `lspci` writes for a
//! device: vendor and device name when the database has both, `<vendor> Device 2330` when it
//! knows only the vendor, `Device 10de:2330` when it knows neither or there is no database.
//!
//! ```
//! use nova::pci_ids::{name, Database, PciIds};
//!
//! let db = Database::new("10de  NVIDIA Corporation\n\t2330  GH100 [H100 SXM5 80GB]\n");
//! let h100 = PciIds { vendor: 0x10de, device: 0x2330, revision: 0xa1 };
//! assert_eq!(name(Some(&db), &h100), "NVIDIA Corporation GH100 [H100 SXM5 80GB] (rev a1)");
//! let next = PciIds { device: 0x2331, ..h100 };
//! assert_eq!(name(Some(&db), &next), "NVIDIA Corporation Device 2331 (rev a1)");
//! assert_eq!(name(None, &next), "Device 10de:2331 (rev a1)");
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where Debian's package `pci.ids` installs the database, and `lspci` reads it.
pub const DEFAULT_PATH: &str = "/usr/share/misc/pci.ids";

/// What identifies a PCI function to the database: its vendor and device IDs, and the
/// revision `lspci` prints after the name (`(rev a1)`, none for 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciIds {
    /// The vendor ID (`0x10de` for NVIDIA).
    pub vendor: u16,
    /// The device ID.
    pub device: u16,
    /// The revision ID.
    pub revision: u8,
}

/// The IDs of the PCI function at `address` under sysfs root `sys`: its `vendor`, `device` and
/// `revision` files (`0x10de` and so on). An error names the file.
pub fn read_sysfs(sys: &Path, address: crate::PciAddress) -> io::Result<PciIds> {
    let dir = sys.join("bus/pci/devices").join(address.to_string());
    let read = |file: &str, max: u32| -> io::Result<u32> {
        let path = dir.join(file);
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        let text = fs::read_to_string(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let t = text.trim();
        t.strip_prefix("0x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .filter(|v| *v <= max)
            .ok_or_else(|| bad(format!("{}: `{t}` is not a hex ID", path.display())))
    };
    Ok(PciIds {
        vendor: read("vendor", 0xffff)? as u16,
        device: read("device", 0xffff)? as u16,
        revision: read("revision", 0xff)? as u8,
    })
}

/// The PCI ID database's text.
#[derive(Debug, Clone)]
pub struct Database {
    text: String,
}

/// The four hex digits and the name of an entry line (without its tabs), if it is one.
fn entry(line: &str) -> Option<(u16, &str)> {
    let (id, name) = line.split_at_checked(4)?;
    // All hex digits: `from_str_radix` would also take a sign.
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = u16::from_str_radix(id, 16).ok()?;
    Some((id, name.strip_prefix("  ")?.trim_end()))
}

impl Database {
    /// The database whose text is `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// The database in the file at `path`. An error names the file.
    pub fn load(path: &Path) -> io::Result<Self> {
        fs::read_to_string(path)
            .map(Self::new)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// The database at [`DEFAULT_PATH`], or `None` when it cannot be read (as `lspci`, which
    /// then prints numbers).
    pub fn system() -> Option<Self> {
        Self::load(&PathBuf::from(DEFAULT_PATH)).ok()
    }

    /// The vendor's name and the device's, as far as the database has them.
    pub fn lookup(&self, vendor: u16, device: u16) -> (Option<&str>, Option<&str>) {
        let mut vendor_name = None;
        for line in self.text.lines() {
            if let Some(rest) = line.strip_prefix('\t') {
                // A device of the vendor being read (subsystems have a second tab).
                if vendor_name.is_some() {
                    if let Some((_, name)) = entry(rest).filter(|(id, _)| *id == device) {
                        return (vendor_name, Some(name));
                    }
                }
            } else if line.starts_with('#') || line.is_empty() {
                continue;
            } else if vendor_name.is_some() || line.starts_with("C ") {
                // The next vendor, or the class list: the vendor has no such device.
                break;
            } else if let Some((id, name)) = entry(line) {
                if id == vendor {
                    vendor_name = Some(name);
                }
            }
        }
        (vendor_name, None)
    }
}

/// `ids` as `lspci` names the function (see the module documentation), with `db` the
/// database, if any; `(rev xx)` follows unless the revision is 0.
pub fn name(db: Option<&Database>, ids: &PciIds) -> String {
    let (v, d) = db.map_or((None, None), |db| db.lookup(ids.vendor, ids.device));
    let head = match (v, d) {
        (Some(v), Some(d)) => format!("{v} {d}"),
        (Some(v), None) => format!("{v} Device {:04x}", ids.device),
        (None, _) => format!("Device {:04x}:{:04x}", ids.vendor, ids.device),
    };
    match ids.revision {
        0 => head,
        rev => format!("{head} (rev {rev:02x})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
#\tList of PCI ID's
#
# Syntax: vendor  vendor_name
\tdevice  device_name

0001  SafeNet (wrong ID)
10de  NVIDIA Corporation
\t2330  GH100 [H100 SXM5 80GB]
\t\t10de 16c1  H100 SXM5 80GB
# A comment between devices.
\t2b85  GB202 [GeForce RTX 5090]
10df  Emulex Corporation
\t2331  Not NVIDIA's
C 03  Display controller
\t02  3D controller
";

    #[test]
    fn devices_are_found_under_their_vendor_only() {
        let db = Database::new(TEXT);
        assert_eq!(
            db.lookup(0x10de, 0x2330),
            (Some("NVIDIA Corporation"), Some("GH100 [H100 SXM5 80GB]"))
        );
        assert_eq!(
            db.lookup(0x10de, 0x2b85),
            (Some("NVIDIA Corporation"), Some("GB202 [GeForce RTX 5090]"))
        );
        // The next vendor's device, a subsystem's ID and a class's are not NVIDIA devices.
        assert_eq!(
            db.lookup(0x10de, 0x2331),
            (Some("NVIDIA Corporation"), None)
        );
        assert_eq!(
            db.lookup(0x10de, 0x10de),
            (Some("NVIDIA Corporation"), None)
        );
        assert_eq!(
            db.lookup(0x10df, 0x0002),
            (Some("Emulex Corporation"), None)
        );
        assert_eq!(db.lookup(0x10df, 0x2331).1, Some("Not NVIDIA's"));
        // A vendor the file does not have; the text of the header is not an entry.
        assert_eq!(db.lookup(0x1234, 0x2330), (None, None));
        assert_eq!(db.lookup(0x0de1, 0xce), (None, None));
    }

    #[test]
    fn names_are_lspcis() {
        let db = Database::new(TEXT);
        let ids = |device| PciIds {
            vendor: 0x10de,
            device,
            revision: 0xa1,
        };
        assert_eq!(
            name(Some(&db), &ids(0x2330)),
            "NVIDIA Corporation GH100 [H100 SXM5 80GB] (rev a1)"
        );
        assert_eq!(
            name(Some(&db), &ids(0x2d98)),
            "NVIDIA Corporation Device 2d98 (rev a1)"
        );
        assert_eq!(name(None, &ids(0x2330)), "Device 10de:2330 (rev a1)");
        let other = PciIds {
            vendor: 0x1af4,
            device: 0x1000,
            revision: 0,
        };
        // As lspci: no revision when it is 0.
        assert_eq!(name(Some(&db), &other), "Device 1af4:1000");
    }

    #[test]
    fn sysfs_ids_are_read_and_checked() {
        let root = std::env::temp_dir().join(format!("nova-pci-ids-{}", std::process::id()));
        let dir = root.join("bus/pci/devices/0000:01:00.0");
        fs::create_dir_all(&dir).unwrap();
        let write = |f: &str, v: &str| fs::write(dir.join(f), v).unwrap();
        write("vendor", "0x10de\n");
        write("device", "0x2330\n");
        write("revision", "0xa1\n");
        let a = "0000:01:00.0".parse().unwrap();
        assert_eq!(
            read_sysfs(&root, a).unwrap(),
            PciIds {
                vendor: 0x10de,
                device: 0x2330,
                revision: 0xa1
            }
        );
        write("revision", "0x1a1\n");
        let e = read_sysfs(&root, a).unwrap_err().to_string();
        assert!(e.ends_with("revision: `0x1a1` is not a hex ID"), "{e}");
        fs::remove_file(dir.join("device")).unwrap();
        let e = read_sysfs(&root, a).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("0000:01:00.0/device"), "{e}");
        fs::remove_dir_all(&root).unwrap();
    }
}
