//! Finding every Nova device: the PCI functions bound to the PCI driver `nova`
//! (`/sys/bus/pci/drivers/nova/<address>`) and the DRM nodes of each
//! (`/sys/bus/pci/devices/<address>/drm/{cardN,renderDN}`, opened from `/dev/dri/<name>`).
//!
//! The sysfs root and the `/dev/dri` folder are parameters ([`devices_in`]), so that tests can
//! use a fake tree; [`devices`] reads the real ones. A driver folder that does not exist (the
//! module is not loaded) lists no device; nor does a device that goes away while it is read.
//!
//! ```no_run
//! for dev in nova::discover::devices()? {
//!     let card = dev.open()?;
//!     println!("{}: BAR1 {:#x}", dev.address, nova::vram_bar_size(&card)?);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use drm_client::node::{self, Node, NodeKind};
use drm_client::Card;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where the kernel shows sysfs.
pub const SYS: &str = "/sys";

/// A PCI address (`DDDD:BB:DD.F`, as sysfs names devices). Addresses sort by domain, bus,
/// device and function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    /// The PCI domain (segment).
    pub domain: u32,
    /// The bus.
    pub bus: u8,
    /// The device (slot), below 32.
    pub device: u8,
    /// The function, below 8.
    pub function: u8,
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// The error of parsing a [`PciAddress`]: the text that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnAddress(pub String);

impl fmt::Display for NotAnAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not a PCI address (DDDD:BB:DD.F)", self.0)
    }
}

impl std::error::Error for NotAnAddress {}

impl FromStr for PciAddress {
    type Err = NotAnAddress;

    /// Reads `DDDD:BB:DD.F` as sysfs writes it: a domain of 4 to 8 hexadecimal digits, a bus
    /// and a device of 2 (device below 0x20), a function digit below 8.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || NotAnAddress(s.to_string());
        let hex = |t: &str, min: usize, max: usize| -> Option<u32> {
            let ok = (min..=max).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_hexdigit());
            ok.then(|| u32::from_str_radix(t, 16).ok()).flatten()
        };
        let (domain, rest) = s.split_once(':').ok_or_else(fail)?;
        let (bus, rest) = rest.split_once(':').ok_or_else(fail)?;
        let (device, function) = rest.split_once('.').ok_or_else(fail)?;
        let domain = hex(domain, 4, 8).ok_or_else(fail)?;
        let bus = hex(bus, 2, 2).ok_or_else(fail)?;
        let device = hex(device, 2, 2).filter(|d| *d < 0x20).ok_or_else(fail)?;
        let function = (function.len() == 1)
            .then(|| function.parse::<u8>().ok())
            .flatten()
            .filter(|f| *f < 8)
            .ok_or_else(fail)?;
        Ok(Self {
            domain,
            bus: bus as u8,
            device: device as u8,
            function,
        })
    }
}

/// A Nova device: a PCI function bound to `nova`, and its DRM nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The PCI address.
    pub address: PciAddress,
    /// Its DRM nodes (primary first, then by number), their paths in the `/dev/dri` given to
    /// [`devices_in`].
    pub nodes: Vec<Node>,
}

impl Device {
    /// The primary node (`cardN`), if it has one.
    pub fn primary(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.kind == NodeKind::Primary)
    }

    /// The render node (`renderDN`), if it has one.
    pub fn render(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.kind == NodeKind::Render)
    }

    /// The node to query the device through: the render node (no DRM master, no
    /// authentication), else the primary one.
    pub fn query_node(&self) -> Option<&Node> {
        self.render().or_else(|| self.primary())
    }

    /// Opens [`Device::query_node`]. `NotFound` when the device has no node.
    pub fn open(&self) -> io::Result<Card> {
        match self.query_node() {
            Some(n) => Card::open(&n.path),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} has no DRM node", self.address),
            )),
        }
    }

    /// The nodes' names (`card0`, `renderD128`), in order.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(Node::name).collect()
    }
}

/// The sysfs folder of the PCI driver `nova` under sysfs root `sys`.
pub fn driver_dir(sys: &Path) -> PathBuf {
    sys.join("bus/pci/drivers").join(crate::DRIVER_NAME)
}

/// The PCI addresses bound to `nova` under sysfs root `sys`, sorted: the entries of
/// [`driver_dir`] that are PCI addresses (not `bind`, `unbind`, `module`, ...). None when the
/// folder does not exist.
pub fn bound_addresses(sys: &Path) -> io::Result<Vec<PciAddress>> {
    let entries = match fs::read_dir(driver_dir(sys)) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(a) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            found.push(a);
        }
    }
    found.sort();
    Ok(found)
}

/// The DRM nodes of the PCI device at `address` under sysfs root `sys`
/// (`bus/pci/devices/<address>/drm/`, read by [`node::nodes_named_in`]), their device files
/// taken to be in `dev_dri`; sorted. None when the device or its `drm` folder does not exist.
/// An error names the folder.
pub fn nodes_of(sys: &Path, dev_dri: &Path, address: PciAddress) -> io::Result<Vec<Node>> {
    let dir = sys
        .join("bus/pci/devices")
        .join(address.to_string())
        .join("drm");
    node::nodes_named_in(&dir, dev_dri)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))
}

/// Every Nova device under sysfs root `sys`, with its nodes in `dev_dri`, sorted by PCI
/// address.
pub fn devices_in(sys: &Path, dev_dri: &Path) -> io::Result<Vec<Device>> {
    bound_addresses(sys)?
        .into_iter()
        .map(|address| {
            Ok(Device {
                address,
                nodes: nodes_of(sys, dev_dri, address)?,
            })
        })
        .collect()
}

/// Every Nova device of this system ([`devices_in`] `/sys` and `/dev/dri`).
pub fn devices() -> io::Result<Vec<Device>> {
    devices_in(Path::new(SYS), Path::new(node::DEV_DRI))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temporary folder, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "nova-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn addr(s: &str) -> PciAddress {
        s.parse().unwrap()
    }

    #[test]
    fn pci_addresses_parse_print_and_sort() {
        let a = addr("0000:01:00.0");
        assert_eq!(
            a,
            PciAddress {
                domain: 0,
                bus: 1,
                device: 0,
                function: 0
            }
        );
        assert_eq!(a.to_string(), "0000:01:00.0");
        assert_eq!(addr("0000:0A:1f.7").to_string(), "0000:0a:1f.7");
        assert_eq!(addr("10000:00:02.0").to_string(), "10000:00:02.0");
        let mut v = [
            addr("0000:10:00.0"),
            addr("0001:00:00.0"),
            addr("0000:02:00.1"),
            addr("0000:02:00.0"),
        ];
        v.sort();
        let names: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "0000:02:00.0",
                "0000:02:00.1",
                "0000:10:00.0",
                "0001:00:00.0"
            ]
        );
        for bad in [
            "",
            "bind",
            "unbind",
            "new_id",
            "module",
            "uevent",
            "000:01:00.0",
            "0000:1:00.0",
            "0000:01:0.0",
            "0000:01:00.8",
            "0000:01:20.0",
            "0000:01:00.00",
            "0000:01:00",
            "0000:01:00.0x",
            "000g:01:00.0",
            "+000:01:00.0",
            "0000:01:00.+",
            "123456789:01:00.0",
        ] {
            let e = bad.parse::<PciAddress>().unwrap_err();
            assert_eq!(e, NotAnAddress(bad.into()));
        }
        assert_eq!(
            NotAnAddress("x".into()).to_string(),
            "'x' is not a PCI address (DDDD:BB:DD.F)"
        );
    }

    /// A fake sysfs with the driver folder `nova` holding `bound` (and the files a driver
    /// folder has), each device with the DRM entries `drm`.
    fn fake_sysfs(root: &Path, bound: &[(&str, &[&str])]) {
        let drv = driver_dir(root);
        fs::create_dir_all(&drv).unwrap();
        for f in ["bind", "unbind", "new_id", "remove_id", "uevent"] {
            fs::write(drv.join(f), b"").unwrap();
        }
        std::os::unix::fs::symlink("../../../../module/nova", drv.join("module")).unwrap();
        for (bdf, drm) in bound {
            let dev = root.join("devices/pci0000:00/0000:00:01.0").join(bdf);
            fs::create_dir_all(&dev).unwrap();
            std::os::unix::fs::symlink(&dev, drv.join(bdf)).unwrap();
            let bus_devices = root.join("bus/pci/devices");
            fs::create_dir_all(&bus_devices).unwrap();
            std::os::unix::fs::symlink(&dev, bus_devices.join(bdf)).unwrap();
            for n in drm.iter() {
                fs::create_dir_all(dev.join("drm").join(n)).unwrap();
            }
        }
    }

    #[test]
    fn a_fake_sysfs_lists_bound_devices_sorted_with_their_nodes() {
        let t = TempDir::new("sys");
        fake_sysfs(
            &t.0,
            &[
                ("0000:03:00.0", &["card1", "renderD129", "card1-DP-1"]),
                ("0000:01:00.0", &["renderD128", "card0"]),
                ("0000:02:00.0", &[]),
            ],
        );
        // A device of another driver, with nodes: not listed.
        fs::create_dir_all(t.0.join("bus/pci/devices/0000:04:00.0/drm/card2")).unwrap();
        let devs = devices_in(&t.0, Path::new("/dev/dri")).unwrap();
        let got: Vec<(String, Vec<String>)> = devs
            .iter()
            .map(|d| (d.address.to_string(), d.node_names()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "0000:01:00.0".into(),
                    vec!["card0".into(), "renderD128".into()]
                ),
                ("0000:02:00.0".into(), vec![]),
                (
                    "0000:03:00.0".into(),
                    vec!["card1".into(), "renderD129".into()]
                ),
            ]
        );
        let first = &devs[0];
        assert_eq!(first.primary().unwrap().path, Path::new("/dev/dri/card0"));
        assert_eq!(
            first.render().unwrap().path,
            Path::new("/dev/dri/renderD128")
        );
        assert_eq!(first.query_node(), first.render());
        // No render node: the primary one is queried; no node at all: none.
        let primary_only = Device {
            address: first.address,
            nodes: vec![first.primary().unwrap().clone()],
        };
        assert_eq!(primary_only.query_node(), primary_only.primary());
        assert_eq!(devs[1].query_node(), None);
        let e = devs[1].open().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(e.to_string(), "0000:02:00.0 has no DRM node");
        // The fake nodes are not device files.
        let e = first.open().unwrap_err();
        assert!(e.to_string().starts_with("/dev/dri/renderD128"), "{e}");
    }

    #[test]
    fn no_driver_folder_or_no_device_folder_is_no_device() {
        let t = TempDir::new("empty");
        assert_eq!(devices_in(&t.0, Path::new("/dev/dri")).unwrap(), vec![]);
        assert_eq!(bound_addresses(&t.0).unwrap(), vec![]);
        fake_sysfs(&t.0, &[]);
        assert_eq!(devices_in(&t.0, Path::new("/dev/dri")).unwrap(), vec![]);
        assert_eq!(
            nodes_of(&t.0, Path::new("/dev/dri"), addr("0000:09:00.0")).unwrap(),
            vec![]
        );
        assert_eq!(
            driver_dir(Path::new("/sys")),
            Path::new("/sys/bus/pci/drivers/nova")
        );
        // A `drm` entry that cannot be read: the error names it.
        let dev = t.0.join("bus/pci/devices/0000:05:00.0");
        fs::create_dir_all(&dev).unwrap();
        fs::write(dev.join("drm"), b"").unwrap();
        let e = nodes_of(&t.0, Path::new("/dev/dri"), addr("0000:05:00.0")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}: ", dev.join("drm").display())),
            "{e}"
        );
    }
}
