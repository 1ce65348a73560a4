//! DRM device nodes: their names (`cardN`, `renderDN`), listing them in `/dev/dri` or in a
//! sysfs folder that names them ([`nodes_named_in`]: `/sys/class/drm`, a device's `drm/`), and
//! finding those of a device through sysfs (`/sys/class/drm/<node>/device`).
//!
//! Minor numbers are handed out at registration, so a device that is unbound and bound again
//! may get other ones: find nodes each time, by driver name ([`crate::Card::open_driver`]) or
//! by device ([`class_nodes`]).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where devtmpfs puts the DRM nodes.
pub const DEV_DRI: &str = "/dev/dri";
/// The DRM class in sysfs: one folder per minor (and per connector).
pub const SYS_CLASS_DRM: &str = "/sys/class/drm";

/// The kind of a DRM node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// The primary node, `cardN`: every ioctl the driver allows, modesetting, DRM master.
    Primary,
    /// The render node, `renderDN`: only ioctls flagged `DRM_RENDER_ALLOW`.
    Render,
}

impl NodeKind {
    /// The node file name's prefix: `card` or `renderD`.
    pub fn prefix(self) -> &'static str {
        match self {
            NodeKind::Primary => "card",
            NodeKind::Render => "renderD",
        }
    }
}

impl std::fmt::Display for NodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeKind::Primary => "primary",
            NodeKind::Render => "render",
        })
    }
}

/// A DRM node: its path, kind and number (the `N` of `cardN`/`renderDN`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Node {
    /// The kind.
    pub kind: NodeKind,
    /// The number in the name.
    pub number: u32,
    /// The device file.
    pub path: PathBuf,
}

impl Node {
    /// The node's name, its device file's (`card0`, `renderD128`).
    pub fn name(&self) -> String {
        format!("{}{}", self.kind.prefix(), self.number)
    }
}

/// The kind and number of a node named `name` (`card0`, `renderD128`); `None` for any other
/// name (`card0-Virtual-1`, `version`, `by-path`).
pub fn parse_node_name(name: &str) -> Option<(NodeKind, u32)> {
    // renderD first: "card" is no prefix of it, but keep the order obvious.
    for kind in [NodeKind::Render, NodeKind::Primary] {
        if let Some(digits) = name.strip_prefix(kind.prefix()) {
            let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            // No leading zeros: the kernel never names a node `card01`.
            if plain && (digits == "0" || !digits.starts_with('0')) {
                return digits.parse().ok().map(|n| (kind, n));
            }
        }
    }
    None
}

/// The nodes in `dir` (normally [`DEV_DRI`]), sorted (primary first, then by number). A
/// missing `dir` has none: devtmpfs creates `/dev/dri` with the first DRM device and removes
/// it with the last.
pub fn nodes_in(dir: &Path) -> io::Result<Vec<Node>> {
    nodes_named_in(dir, dir)
}

/// The nodes that the entries of folder `dir` name (`card0`, `renderD128`; other entries are
/// passed over), their device files taken to be in `dev_dir`; sorted (primary first, then by
/// number). `dir` is a `/dev/dri` (then `dev_dir` is `dir` itself) or a sysfs folder with an
/// entry per node: [`SYS_CLASS_DRM`], or a device's `drm` folder
/// (`/sys/bus/pci/devices/<address>/drm`). A missing `dir` has none.
pub fn nodes_named_in(dir: &Path, dev_dir: &Path) -> io::Result<Vec<Node>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut nodes = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if let Some((kind, number)) = name.to_str().and_then(parse_node_name) {
            nodes.push(Node {
                kind,
                number,
                path: dev_dir.join(name),
            });
        }
    }
    nodes.sort();
    Ok(nodes)
}

/// A node as sysfs shows it: the node (its device file in the `/dev/dri` given to
/// [`class_nodes`]), the name of its parent device and of the driver bound to that device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassNode {
    /// The node.
    pub node: Node,
    /// The last part of the `device` link (`rust-drm-sample`, `0000:01:00.0`), if any.
    pub device: Option<String>,
    /// The last part of the `device/driver` link (`rust_driver_drm`), if the device has a
    /// driver. (vgem's device has none: it registers a DRM device without binding a driver.)
    pub driver: Option<String>,
}

/// The nodes listed in sysfs folder `class_dir` (normally [`SYS_CLASS_DRM`]) with their device
/// and driver, the device files taken to be in `dev_dir` (normally [`DEV_DRI`]); sorted. A
/// missing `class_dir` has none.
pub fn class_nodes(class_dir: &Path, dev_dir: &Path) -> io::Result<Vec<ClassNode>> {
    let last = |p: &Path| -> Option<String> {
        fs::read_link(p)
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
    };
    Ok(nodes_named_in(class_dir, dev_dir)?
        .into_iter()
        .map(|node| {
            let dir = class_dir.join(node.name());
            ClassNode {
                device: last(&dir.join("device")),
                driver: last(&dir.join("device/driver")),
                node,
            }
        })
        .collect())
}

/// The nodes of the device named `device` (the `device` link's last part), as
/// [`class_nodes`] lists them in the real sysfs and `/dev/dri`.
pub fn nodes_of_device(device: &str) -> io::Result<Vec<ClassNode>> {
    Ok(class_nodes(Path::new(SYS_CLASS_DRM), Path::new(DEV_DRI))?
        .into_iter()
        .filter(|n| n.device.as_deref() == Some(device))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder under the system's temporary folder, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "drm-client-{tag}-{}-{:?}",
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

    #[test]
    fn node_names_are_cards_and_render_nodes_only() {
        assert_eq!(parse_node_name("card0"), Some((NodeKind::Primary, 0)));
        assert_eq!(parse_node_name("card12"), Some((NodeKind::Primary, 12)));
        assert_eq!(parse_node_name("renderD128"), Some((NodeKind::Render, 128)));
        for other in [
            "card",
            "renderD",
            "card0-Virtual-1",
            "card01",
            "cardx",
            "version",
            "by-path",
            "controlD64x",
            "render128",
            "card99999999999",
        ] {
            assert_eq!(parse_node_name(other), None, "{other}");
        }
        assert_eq!(NodeKind::Render.prefix(), "renderD");
        assert_eq!(NodeKind::Primary.to_string(), "primary");
    }

    #[test]
    fn a_fake_dev_dri_lists_its_nodes_sorted() {
        let t = TempDir::new("dev");
        for f in [
            "renderD129",
            "card1",
            "renderD128",
            "card0",
            "by-path",
            "card0-x",
        ] {
            fs::write(t.0.join(f), b"").unwrap();
        }
        let nodes = nodes_in(&t.0).unwrap();
        let names: Vec<String> = nodes
            .iter()
            .map(|n| n.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["card0", "card1", "renderD128", "renderD129"]);
        assert_eq!((nodes[2].kind, nodes[2].number), (NodeKind::Render, 128));
        assert_eq!(nodes[2].name(), "renderD128");
        assert_eq!(nodes_in(&t.0.join("missing")).unwrap(), Vec::new());
        // Named in one folder, the device files in another.
        let named = nodes_named_in(&t.0, Path::new("/dev/dri")).unwrap();
        let paths: Vec<&Path> = named.iter().map(|n| n.path.as_path()).collect();
        assert_eq!(
            paths,
            [
                "/dev/dri/card0",
                "/dev/dri/card1",
                "/dev/dri/renderD128",
                "/dev/dri/renderD129"
            ]
            .map(Path::new)
        );
    }

    #[test]
    fn a_fake_sysfs_gives_each_node_its_device_and_driver() {
        let t = TempDir::new("sys");
        let class = t.0.join("class/drm");
        let devices = t.0.join("devices/platform");
        fs::create_dir_all(&class).unwrap();
        fs::create_dir_all(t.0.join("bus/platform/drivers/rust_driver_drm")).unwrap();
        for dev in ["rust-drm-sample", "vgem"] {
            fs::create_dir_all(devices.join(dev)).unwrap();
        }
        std::os::unix::fs::symlink(
            "../../../bus/platform/drivers/rust_driver_drm",
            devices.join("rust-drm-sample/driver"),
        )
        .unwrap();
        for (node, dev) in [
            ("card1", "rust-drm-sample"),
            ("renderD129", "rust-drm-sample"),
            ("card0", "vgem"),
            ("renderD128", "vgem"),
            ("card1-Virtual-1", "rust-drm-sample"),
        ] {
            fs::create_dir_all(class.join(node)).unwrap();
            std::os::unix::fs::symlink(devices.join(dev), class.join(node).join("device")).unwrap();
        }
        fs::write(class.join("version"), b"drm 1.1.0 20060810\n").unwrap();
        let nodes = class_nodes(&class, Path::new("/dev/dri")).unwrap();
        let got: Vec<(String, Option<&str>, Option<&str>)> = nodes
            .iter()
            .map(|n| {
                (
                    n.node.path.display().to_string(),
                    n.device.as_deref(),
                    n.driver.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/dev/dri/card0".into(), Some("vgem"), None),
                (
                    "/dev/dri/card1".into(),
                    Some("rust-drm-sample"),
                    Some("rust_driver_drm")
                ),
                ("/dev/dri/renderD128".into(), Some("vgem"), None),
                (
                    "/dev/dri/renderD129".into(),
                    Some("rust-drm-sample"),
                    Some("rust_driver_drm")
                ),
            ]
        );
        assert!(class_nodes(&t.0.join("none"), Path::new("/dev/dri"))
            .unwrap()
            .is_empty());
    }
}
