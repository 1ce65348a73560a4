//! `nova-info`: lists every GPU bound to Nova, one line each, like `nvidia-smi -L`.
//!
//! ```text
//! $ nova-info
//! GPU 0: NVIDIA Corporation GH100 [H100 SXM5 80GB] (rev a1), PCI 0000:01:00.0, BAR1 128 GiB, nodes card0 renderD128
//! GPU 1: NVIDIA Corporation TU102 [GeForce RTX 2080 Ti] (rev a1), PCI 0000:02:00.0, BAR1 256 MiB, nodes card1 renderD129
//! ```
//!
//! Devices are those bound to the PCI driver `nova` in sysfs, sorted by PCI address and
//! numbered from 0. Each is named as `lspci` names it, from its PCI IDs in sysfs and the PCI ID
//! database (`/usr/share/misc/pci.ids`, or the file `--pci-ids` gives; without the default
//! file, numbers: `Device 10de:2330`), and asked for its BAR1 size with GETPARAM on its render
//! node (the primary node when it has none). Without a device it prints `no Nova devices
//! found` and exits 0. A device whose GETPARAM fails gets `GPU N: PCI <address>: <errno>`
//! (`ENODEV`, say), one whose node or sysfs files cannot be read `GPU N: PCI <address>:
//! <path>: <error>`, one without a node `GPU N: PCI <address>: no DRM node`; the exit status is
//! then 1, as it is when sysfs or the database given cannot be read.

use drm_client::errno_name;
use nova::discover::{self, Device};
use nova::pci_ids::{self, Database};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: nova-info [--pci-ids FILE] [--help]

Lists every GPU bound to the Nova DRM driver, one line each:
  GPU N: <name>, PCI <address>, BAR1 <size>, nodes <nodes>
sorted by PCI address, from sysfs (/sys/bus/pci/drivers/nova) and GETPARAM on each device's
render node. <name> is lspci's, from the PCI ID database: FILE, else /usr/share/misc/pci.ids
when it exists (else numbers, as lspci). Prints `no Nova devices found` when there is none.
Exit status 1 when a device does not answer (its line then names the error), or sysfs or FILE
cannot be read.";

/// What nova-info found out about a GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    /// Its name, as `lspci` writes it.
    name: String,
    /// Its BAR1 size (GETPARAM `VRAM_BAR_SIZE`).
    vram_bar_size: u64,
}

/// The line of GPU number `index`, `dev`, given what asking it gave.
fn line(index: usize, dev: &Device, asked: &Result<Found, String>) -> String {
    match asked {
        Ok(found) => {
            let nodes = dev.node_names();
            format!(
                "GPU {index}: {}, PCI {}, BAR1 {}, nodes {}",
                found.name,
                dev.address,
                nova::chip::format_size(found.vram_bar_size),
                if nodes.is_empty() {
                    "none".to_string()
                } else {
                    nodes.join(" ")
                }
            )
        }
        Err(e) => format!("GPU {index}: PCI {}: {e}", dev.address),
    }
}

/// The lines for `devices` with what asking each gave, and whether every one answered.
fn report(devices: &[(Device, Result<Found, String>)]) -> (Vec<String>, bool) {
    if devices.is_empty() {
        return (vec!["no Nova devices found".to_string()], true);
    }
    let lines = devices
        .iter()
        .enumerate()
        .map(|(i, (dev, asked))| line(i, dev, asked))
        .collect();
    (lines, devices.iter().all(|(_, asked)| asked.is_ok()))
}

/// Finds out about `dev` from sysfs root `sys`, the database `db` and its node: the errno's
/// name when GETPARAM fails (`ENODEV`), the error when its node or sysfs files cannot be read,
/// `no DRM node` when it has none.
fn ask(sys: &Path, db: Option<&Database>, dev: &Device) -> Result<Found, String> {
    if dev.query_node().is_none() {
        return Err("no DRM node".to_string());
    }
    let ids = pci_ids::read_sysfs(sys, dev.address).map_err(|e| e.to_string())?;
    let card = dev.open().map_err(|e| e.to_string())?;
    Ok(Found {
        name: pci_ids::name(db, &ids),
        vram_bar_size: nova::vram_bar_size(&card).map_err(errno_name)?,
    })
}

/// The database `--pci-ids` names (an error when it cannot be read), else the system's if it
/// can be read.
fn database(given: Option<PathBuf>) -> Result<Option<Database>, String> {
    match given {
        Some(path) => Database::load(&path).map(Some).map_err(|e| e.to_string()),
        None => Ok(Database::system()),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut given = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--pci-ids" => match args.next() {
                Some(path) => given = Some(PathBuf::from(path)),
                None => {
                    eprintln!("nova-info: --pci-ids wants a file\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("nova-info: unknown argument '{arg}'\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let db = match database(given) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("nova-info: the PCI ID database: {e}");
            return ExitCode::FAILURE;
        }
    };
    let devices = match discover::devices() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("nova-info: reading sysfs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sys = Path::new(discover::SYS);
    let asked: Vec<(Device, Result<Found, String>)> = devices
        .into_iter()
        .map(|d| {
            let a = ask(sys, db.as_ref(), &d);
            (d, a)
        })
        .collect();
    let (lines, ok) = report(&asked);
    for l in lines {
        println!("{l}");
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drm_client::node::{Node, NodeKind};

    fn dev(addr: &str, nodes: &[(NodeKind, u32)]) -> Device {
        Device {
            address: addr.parse().unwrap(),
            nodes: nodes
                .iter()
                .map(|&(kind, number)| Node {
                    kind,
                    number,
                    path: PathBuf::from(format!("/dev/dri/{}{number}", kind.prefix())),
                })
                .collect(),
        }
    }

    fn found(name: &str, bar1: u64) -> Result<Found, String> {
        Ok(Found {
            name: name.to_string(),
            vram_bar_size: bar1,
        })
    }

    const H100: &str = "NVIDIA Corporation GH100 [H100 SXM5 80GB] (rev a1)";

    #[test]
    fn lines_are_nvidia_smi_like() {
        let both = [(NodeKind::Primary, 0), (NodeKind::Render, 128)];
        assert_eq!(
            line(0, &dev("0000:01:00.0", &both), &found(H100, 128 << 30)),
            "GPU 0: NVIDIA Corporation GH100 [H100 SXM5 80GB] (rev a1), PCI 0000:01:00.0, \
             BAR1 128 GiB, nodes card0 renderD128"
        );
        assert_eq!(
            line(
                1,
                &dev("0000:02:00.0", &[]),
                &found("Device 10de:2d98 (rev a1)", 5000)
            ),
            "GPU 1: Device 10de:2d98 (rev a1), PCI 0000:02:00.0, BAR1 5000 bytes, nodes none"
        );
        assert_eq!(
            line(2, &dev("0000:03:00.0", &both), &Err("ENODEV".into())),
            "GPU 2: PCI 0000:03:00.0: ENODEV"
        );
    }

    #[test]
    fn the_report_numbers_devices_and_fails_on_any_error() {
        let (lines, ok) = report(&[]);
        assert_eq!(lines, ["no Nova devices found"]);
        assert!(ok);
        let both = [(NodeKind::Primary, 0), (NodeKind::Render, 128)];
        let devs = vec![
            (dev("0000:01:00.0", &both), found(H100, 256 << 20)),
            (dev("0000:02:00.0", &[]), Err("no DRM node".to_string())),
        ];
        let (lines, ok) = report(&devs);
        assert_eq!(
            lines,
            [
                format!("GPU 0: {H100}, PCI 0000:01:00.0, BAR1 256 MiB, nodes card0 renderD128"),
                "GPU 1: PCI 0000:02:00.0: no DRM node".to_string()
            ]
        );
        assert!(!ok);
        let (_, ok) = report(&devs[..1]);
        assert!(ok);
    }

    #[test]
    fn a_device_without_nodes_sysfs_files_or_device_files_is_an_error() {
        let none = Path::new("/nonexistent/nova-info/sys");
        assert_eq!(
            ask(none, None, &dev("0000:01:00.0", &[])),
            Err("no DRM node".to_string())
        );
        let gone = Device {
            address: "0000:01:00.0".parse().unwrap(),
            nodes: vec![Node {
                kind: NodeKind::Render,
                number: 128,
                path: PathBuf::from("/nonexistent/nova-info/renderD128"),
            }],
        };
        // No sysfs files: the error names the first.
        let e = ask(none, None, &gone).unwrap_err();
        assert!(
            e.starts_with("/nonexistent/nova-info/sys/bus/pci/devices/0000:01:00.0/vendor: "),
            "{e}"
        );
        // Sysfs files, no device file: the error names it.
        let sys = std::env::temp_dir().join(format!("nova-info-{}", std::process::id()));
        let d = sys.join("bus/pci/devices/0000:01:00.0");
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in [
            ("vendor", "0x10de"),
            ("device", "0x2330"),
            ("revision", "0xa1"),
        ] {
            std::fs::write(d.join(f), v).unwrap();
        }
        let e = ask(&sys, None, &gone).unwrap_err();
        std::fs::remove_dir_all(&sys).unwrap();
        assert!(
            e.starts_with("/nonexistent/nova-info/renderD128: No such file"),
            "{e}"
        );
    }

    #[test]
    fn a_database_given_must_be_readable() {
        let e = database(Some(PathBuf::from("/nonexistent/pci.ids"))).unwrap_err();
        assert!(e.starts_with("/nonexistent/pci.ids: No such file"), "{e}");
    }
}
