//! Binding devices to drivers through sysfs: `/sys/bus/<bus>/drivers/<driver>/{bind,unbind}`
//! and the `driver` link of `/sys/bus/<bus>/devices/<device>`.

use std::fs;
use std::path::{Path, PathBuf};

/// Where the kernel shows its buses.
pub const SYS_BUS: &str = "/sys/bus";

/// One bus of sysfs (`/sys/bus/<name>`): its drivers and devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bus {
    dir: PathBuf,
}

impl Bus {
    /// The bus `name` (`platform`, `pci`, ...) under [`SYS_BUS`].
    pub fn new(name: &str) -> Self {
        Self::at(Path::new(SYS_BUS).join(name))
    }

    /// The bus whose sysfs folder is `dir` (a fake tree, in the tests).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Binds `device` to `driver`: writes the device name to the driver's `bind` file. `Err`
    /// holds the file and the error (`/sys/bus/platform/drivers/d/bind: No such device`).
    pub fn bind(&self, driver: &str, device: &str) -> Result<(), String> {
        self.write_driver_file(driver, "bind", device)
    }

    /// Unbinds `device` from `driver`: writes the device name to the driver's `unbind` file.
    /// `Err` as for [`Bus::bind`].
    pub fn unbind(&self, driver: &str, device: &str) -> Result<(), String> {
        self.write_driver_file(driver, "unbind", device)
    }

    /// The name of the driver `device` is bound to (the last part of its `driver` link);
    /// `None` when it is bound to none or does not exist.
    pub fn driver_of(&self, device: &str) -> Option<String> {
        let link = self.dir.join("devices").join(device).join("driver");
        fs::read_link(link)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// The file `file` of `driver` (`bind`, `unbind`, `new_id`, ...), for callers that write it
    /// some other way (from a child process that may hang, say).
    pub fn driver_file(&self, driver: &str, file: &str) -> PathBuf {
        self.dir.join("drivers").join(driver).join(file)
    }

    fn write_driver_file(&self, driver: &str, file: &str, device: &str) -> Result<(), String> {
        let path = self.driver_file(driver, file);
        fs::write(&path, device).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The address of PCI device `spec`: an address (`0000:01:00.0`) as given, else the first device
/// (by address) with the IDs `VVVV:DDDD` (`10de:2330`), from sysfs.
pub fn pci_address(spec: &str) -> Result<String, String> {
    let Some((vendor, device)) = spec.split_once(':').filter(|_| !spec.contains('.')) else {
        return Ok(spec.to_string());
    };
    let dir = Path::new(SYS_BUS).join("pci/devices");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let id = |name: &str, file: &str| fs::read_to_string(dir.join(name).join(file));
    names
        .into_iter()
        .find(|n| {
            id(n, "vendor").is_ok_and(|v| v.trim() == format!("0x{vendor}"))
                && id(n, "device").is_ok_and(|d| d.trim() == format!("0x{device}"))
        })
        .ok_or_else(|| format!("no PCI device {spec}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_bus_is_under_sys() {
        assert_eq!(Bus::new("platform"), Bus::at("/sys/bus/platform"));
        assert_eq!(
            Bus::new("platform").driver_file("d", "unbind"),
            Path::new("/sys/bus/platform/drivers/d/unbind")
        );
    }

    #[test]
    fn bind_and_unbind_write_the_device_name_and_the_link_names_the_driver() {
        let root = std::env::temp_dir().join(format!("guest-sysfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let drv = root.join("drivers/my_drv");
        let dev = root.join("devices/my_dev");
        fs::create_dir_all(&drv).unwrap();
        fs::create_dir_all(&dev).unwrap();
        let bus = Bus::at(&root);
        assert_eq!(bus.driver_of("my_dev"), None);
        assert_eq!(bus.driver_of("no_such_dev"), None);
        bus.bind("my_drv", "my_dev").unwrap();
        assert_eq!(fs::read_to_string(drv.join("bind")).unwrap(), "my_dev");
        bus.unbind("my_drv", "my_dev").unwrap();
        assert_eq!(fs::read_to_string(drv.join("unbind")).unwrap(), "my_dev");
        std::os::unix::fs::symlink("../../drivers/my_drv", dev.join("driver")).unwrap();
        assert_eq!(bus.driver_of("my_dev").as_deref(), Some("my_drv"));
        let e = bus.bind("no_drv", "my_dev").unwrap_err();
        assert!(
            e.starts_with(&format!("{}: ", root.join("drivers/no_drv/bind").display())),
            "{e}"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
