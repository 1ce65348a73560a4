//! `nova-info`: lists every GPU bound to Nova, one line each, like `nvidia-smi -L`.
//!
//! ```text
//! $ nova-info
//! GPU 0: NVIDIA GH100 (Hopper) rev A1, PCI 0000:01:00.0, BAR1 128 GiB, nodes card0 renderD128
//! GPU 1: NVIDIA TU102 (Turing) rev A1, PCI 0000:02:00.0, BAR1 256 MiB, nodes card1 renderD129
//! ```
//!
//! Devices are those bound to the PCI driver `nova` in sysfs, sorted by PCI address and
//! numbered from 0; each is asked for its chipset, revision and BAR1 size with GETPARAM on its
//! render node (the primary node when it has none). Without a device it prints `no Nova devices
//! found` and exits 0. A device whose GETPARAM fails gets `GPU N: PCI <address>: <errno>`
//! (`ENODEV`, say), one whose node cannot be opened `GPU N: PCI <address>: <path>: <error>`,
//! one without a node `GPU N: PCI <address>: no DRM node`; the exit status is then 1, as it is
//! when sysfs cannot be read.

use drm_client::errno_name;
use nova::discover::{self, Device};
use nova::Identity;
use std::process::ExitCode;

const USAGE: &str = "usage: nova-info [--help]

Lists every GPU bound to the Nova DRM driver, one line each:
  GPU N: NVIDIA <chip> (<architecture>) rev <revision>, PCI <address>, BAR1 <size>, nodes <nodes>
sorted by PCI address, from sysfs (/sys/bus/pci/drivers/nova) and GETPARAM on each device's
render node. Prints `no Nova devices found` when there is none. Exit status 1 when a device
does not answer (its line then names the error) or sysfs cannot be read.";

/// The line of GPU number `index`, `dev`, given what asking it gave.
fn line(index: usize, dev: &Device, asked: &Result<Identity, String>) -> String {
    match asked {
        Ok(id) => {
            let nodes = dev.node_names();
            format!(
                "GPU {index}: NVIDIA {} rev {}, PCI {}, BAR1 {}, nodes {}",
                id.chipset.describe(),
                id.revision,
                dev.address,
                nova::chip::format_size(id.vram_bar_size),
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
fn report(devices: &[(Device, Result<Identity, String>)]) -> (Vec<String>, bool) {
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

/// Asks `dev` for its identity: the errno's name when an ioctl fails (`ENODEV`), the error
/// when its node cannot be opened, `no DRM node` when it has none.
fn ask(dev: &Device) -> Result<Identity, String> {
    if dev.query_node().is_none() {
        return Err("no DRM node".to_string());
    }
    let card = dev.open().map_err(|e| e.to_string())?;
    nova::identify(&card).map_err(errno_name)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        eprintln!("nova-info: unknown argument '{arg}'\n{USAGE}");
        return ExitCode::from(2);
    }
    let devices = match discover::devices() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("nova-info: reading sysfs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let asked: Vec<(Device, Result<Identity, String>)> = devices
        .into_iter()
        .map(|d| {
            let a = ask(&d);
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
    use nova::{Chipset, Revision};
    use std::path::PathBuf;

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

    fn id(chipset: u64, revision: u64, bar1: u64) -> Result<Identity, String> {
        Ok(Identity {
            chipset: Chipset(chipset),
            revision: Revision(revision),
            vram_bar_size: bar1,
        })
    }

    #[test]
    fn lines_are_nvidia_smi_like() {
        let both = [(NodeKind::Primary, 0), (NodeKind::Render, 128)];
        assert_eq!(
            line(0, &dev("0000:01:00.0", &both), &id(0x180, 0xa1, 128 << 30)),
            "GPU 0: NVIDIA GH100 (Hopper) rev A1, PCI 0000:01:00.0, BAR1 128 GiB, nodes card0 renderD128"
        );
        assert_eq!(
            line(
                3,
                &dev("0000:05:00.0", &[(NodeKind::Primary, 2), (NodeKind::Render, 130)]),
                &id(0x1b2, 0xb2, 256 << 20)
            ),
            "GPU 3: NVIDIA GB202 (Blackwell) rev B2, PCI 0000:05:00.0, BAR1 256 MiB, nodes card2 renderD130"
        );
        // What Nova would never bind still prints.
        assert_eq!(
            line(1, &dev("0000:02:00.0", &[]), &id(0x1f3, 0x01, 5000)),
            "GPU 1: NVIDIA chipset 0x1f3 rev 0x01, PCI 0000:02:00.0, BAR1 5000 bytes, nodes none"
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
            (dev("0000:01:00.0", &both), id(0x162, 0xa1, 256 << 20)),
            (dev("0000:02:00.0", &[]), Err("no DRM node".to_string())),
        ];
        let (lines, ok) = report(&devs);
        assert_eq!(
            lines,
            [
                "GPU 0: NVIDIA TU102 (Turing) rev A1, PCI 0000:01:00.0, BAR1 256 MiB, nodes card0 renderD128",
                "GPU 1: PCI 0000:02:00.0: no DRM node"
            ]
        );
        assert!(!ok);
        let (_, ok) = report(&devs[..1]);
        assert!(ok);
    }

    #[test]
    fn a_device_without_nodes_or_device_files_is_an_error() {
        assert_eq!(
            ask(&dev("0000:01:00.0", &[])),
            Err("no DRM node".to_string())
        );
        // No such device file: the error names it.
        let gone = Device {
            address: "0000:01:00.0".parse().unwrap(),
            nodes: vec![Node {
                kind: NodeKind::Render,
                number: 128,
                path: PathBuf::from("/nonexistent/nova-info/renderD128"),
            }],
        };
        let e = ask(&gone).unwrap_err();
        assert!(
            e.starts_with("/nonexistent/nova-info/renderD128: No such file"),
            "{e}"
        );
    }
}
