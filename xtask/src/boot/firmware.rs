//! The GSP firmware packed into guests: the real files of Debian's `firmware-nvidia-graphics`
//! ([`crate::setup::nvidia_firmware`]), those Nova requests for the GPUs a boot attaches.
//!
//! Nova requests release [`GSP_VERSION`] of each chip's files under `nvidia/<chip>/gsp/`:
//! Turing, Ampere and Ada boot through the booter ([`BOOTER_FILES`]), Hopper and Blackwell
//! through the FSP ([`FSP_FILES`]). In the package many of those paths are links (a chip's
//! folder to another's, every GA102-and-newer `gsp` image to `ga102/gsp/gsp-570.144.bin`): a
//! guest gets each real file once, at its path in the package, and a link at every requested
//! path that resolves elsewhere, so that 24 GPUs need two GSP images, not 24.

use anyhow::{bail, Context, Result};
use gpu_model::profile::Profile;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The firmware release Nova requests, for every chip.
pub const GSP_VERSION: &str = "570.144";

/// The files of a chip that boots its GSP through the booter, in the order Nova requests them.
pub const BOOTER_FILES: [&str; 4] = ["booter_load", "booter_unload", "bootloader", "gsp"];

/// The files of a chip that boots its GSP through the FSP, in the order Nova requests them.
pub const FSP_FILES: [&str; 3] = ["fmc", "bootloader", "gsp"];

/// Where the guest's firmware loader looks (the kernel's default search path).
pub const FIRMWARE_DIR: &str = "/lib/firmware";

/// A file for the guest's initramfs, at an absolute path in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestFile {
    /// A regular file and its content.
    File { path: String, data: Vec<u8> },
    /// A symbolic link to `target`.
    Link { path: String, target: String },
}

impl GuestFile {
    /// The file's path in the guest.
    pub fn path(&self) -> &str {
        match self {
            Self::File { path, .. } | Self::Link { path, .. } => path,
        }
    }
}

/// Whether Nova requests firmware for `p`: a GSP architecture (Turing, 0x16, and newer) that
/// answers (not the `dead` profile).
pub fn needs_gsp_firmware(p: &Profile) -> bool {
    !p.dead && p.gsp_capable()
}

/// The files Nova requests for `p`, in order: the FSP's for Hopper (0x18) and Blackwell (0x1a,
/// 0x1b), the booter's for Turing, Ampere and Ada (0x16, 0x17, 0x19).
pub fn gsp_files(p: &Profile) -> &'static [&'static str] {
    match p.chip.architecture() {
        0x18 | 0x1a | 0x1b => &FSP_FILES,
        _ => &BOOTER_FILES,
    }
}

/// The name Nova gives `request_firmware` for `file` of chip `chip` (the lower-case profile
/// name), e.g. `nvidia/tu102/gsp/booter_load-570.144.bin`.
pub fn firmware_name(chip: &str, file: &str) -> String {
    format!("nvidia/{chip}/gsp/{file}-{GSP_VERSION}.bin")
}

/// Every name Nova requests for `p` (none for a pre-GSP or dead profile).
pub fn firmware_names(p: &Profile) -> Vec<String> {
    if !needs_gsp_firmware(p) {
        return Vec::new();
    }
    gsp_files(p)
        .iter()
        .map(|f| firmware_name(p.name, f))
        .collect()
}

/// The path, relative to `tree`, of the file that `name` resolves to in `tree` (links
/// followed); an error naming `name` when there is none.
pub fn resolve(tree: &Path, name: &str) -> Result<String> {
    let root = tree
        .canonicalize()
        .with_context(|| format!("firmware tree {}", tree.display()))?;
    let real: PathBuf = tree
        .join(name)
        .canonicalize()
        .with_context(|| format!("{name} is not in the firmware package ({})", tree.display()))?;
    let rel = real.strip_prefix(&root).with_context(|| {
        format!(
            "{name} resolves outside the firmware tree: {}",
            real.display()
        )
    })?;
    if !real.is_file() {
        bail!("{name} is not a file in the firmware package");
    }
    Ok(rel.to_string_lossy().into_owned())
}

/// The guest files for the firmware Nova requests for `profiles`, from the unpacked package
/// `tree`: each real file once at its package path under [`FIRMWARE_DIR`], a link at each
/// requested path that resolves elsewhere, and, for each requested name in `replaced`, that
/// content instead (a file made wrong for a refusal test; nothing else may resolve to it).
pub fn gsp_firmware(
    tree: &Path,
    profiles: &[&Profile],
    replaced: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<GuestFile>> {
    let mut files: BTreeMap<String, GuestFile> = BTreeMap::new();
    fn add(files: &mut BTreeMap<String, GuestFile>, f: GuestFile) -> Result<()> {
        match files.get(f.path()) {
            Some(old) if *old != f => bail!("{} is packed twice, differently", f.path()),
            Some(_) => Ok(()),
            None => {
                files.insert(f.path().to_string(), f);
                Ok(())
            }
        }
    }
    for name in profiles.iter().flat_map(|p| firmware_names(p)) {
        let path = format!("{FIRMWARE_DIR}/{name}");
        if let Some(data) = replaced.get(&name) {
            add(
                &mut files,
                GuestFile::File {
                    path,
                    data: data.clone(),
                },
            )?;
            continue;
        }
        let real = resolve(tree, &name)?;
        if replaced.contains_key(&real) {
            bail!("{name} resolves to {real}, which the boot replaces");
        }
        let real_path = format!("{FIRMWARE_DIR}/{real}");
        if real != name {
            add(
                &mut files,
                GuestFile::Link {
                    path,
                    target: real_path.clone(),
                },
            )?;
        }
        if !files.contains_key(&real_path) {
            let data = std::fs::read(tree.join(&real))
                .with_context(|| format!("cannot read {}", tree.join(&real).display()))?;
            add(
                &mut files,
                GuestFile::File {
                    path: real_path,
                    data,
                },
            )?;
        }
    }
    Ok(files.into_values().collect())
}

/// The `firmware=` entries of a kernel module's `.modinfo` (`data` is the `.ko` file).
pub fn modinfo_firmware(data: &[u8]) -> Vec<String> {
    data.split(|&b| b == 0)
        .filter_map(|s| s.strip_prefix(b"firmware="))
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_model::profile::find;

    /// A firmware tree laid out as the package lays out the files these tests use.
    fn tree(name: &str) -> PathBuf {
        let t = std::env::temp_dir().join(format!("nova-fw-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        let mk = |p: &str, data: &[u8]| {
            let p = t.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        let link = |p: &str, target: &str| {
            let p = t.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
        };
        for f in BOOTER_FILES {
            mk(&format!("nvidia/tu102/gsp/{f}-570.144.bin"), f.as_bytes());
        }
        link("nvidia/tu104/gsp", "../tu102/gsp");
        mk("nvidia/ga102/gsp/gsp-570.144.bin", b"gsp image");
        for f in ["fmc", "bootloader"] {
            mk(&format!("nvidia/gh100/gsp/{f}-570.144.bin"), f.as_bytes());
        }
        link(
            "nvidia/gh100/gsp/gsp-570.144.bin",
            "../../ga102/gsp/gsp-570.144.bin",
        );
        t
    }

    fn p(name: &str) -> &'static Profile {
        find(name).unwrap()
    }

    #[test]
    fn each_flow_has_its_files() {
        assert_eq!(
            firmware_names(p("tu102"))[0],
            "nvidia/tu102/gsp/booter_load-570.144.bin"
        );
        assert_eq!(firmware_names(p("ad102")).len(), 4);
        assert_eq!(
            firmware_names(p("gh100")),
            [
                "nvidia/gh100/gsp/fmc-570.144.bin",
                "nvidia/gh100/gsp/bootloader-570.144.bin",
                "nvidia/gh100/gsp/gsp-570.144.bin"
            ]
        );
        assert_eq!(gsp_files(p("gb100")), FSP_FILES);
        assert_eq!(gsp_files(p("gb207")), FSP_FILES);
        assert!(firmware_names(p("gv100")).is_empty());
        assert!(firmware_names(p("dead")).is_empty());
    }

    #[test]
    fn real_files_are_packed_once_and_links_kept() {
        let t = tree("links");
        let got =
            gsp_firmware(&t, &[p("tu102"), p("tu104"), p("gh100")], &BTreeMap::new()).unwrap();
        let files: Vec<&str> = got
            .iter()
            .filter_map(|f| match f {
                GuestFile::File { path, .. } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(files.len(), 4 + 2 + 1, "{files:?}");
        assert!(got.contains(&GuestFile::Link {
            path: "/lib/firmware/nvidia/tu104/gsp/gsp-570.144.bin".into(),
            target: "/lib/firmware/nvidia/tu102/gsp/gsp-570.144.bin".into()
        }));
        assert!(got.contains(&GuestFile::Link {
            path: "/lib/firmware/nvidia/gh100/gsp/gsp-570.144.bin".into(),
            target: "/lib/firmware/nvidia/ga102/gsp/gsp-570.144.bin".into()
        }));
        std::fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn replaced_files_take_the_requested_path_and_missing_ones_are_named() {
        let t = tree("replaced");
        let mut r = BTreeMap::new();
        r.insert(
            "nvidia/tu104/gsp/booter_load-570.144.bin".to_string(),
            b"x".to_vec(),
        );
        let got = gsp_firmware(&t, &[p("tu104")], &r).unwrap();
        assert!(got.contains(&GuestFile::File {
            path: "/lib/firmware/nvidia/tu104/gsp/booter_load-570.144.bin".into(),
            data: b"x".to_vec()
        }));
        // Replacing what another requested name resolves to is refused.
        let mut r = BTreeMap::new();
        r.insert("nvidia/tu102/gsp/gsp-570.144.bin".to_string(), Vec::new());
        let e = gsp_firmware(&t, &[p("tu102"), p("tu104")], &r).unwrap_err();
        assert!(e.to_string().contains("which the boot replaces"), "{e}");
        let e = gsp_firmware(&t, &[p("ga100")], &BTreeMap::new()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("nvidia/ga100/gsp/booter_load-570.144.bin is not in"),
            "{e}"
        );
        std::fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn modinfo_firmware_entries_are_read() {
        let ko = b"\x7fELF\0license=GPL\0firmware=nvidia/tu102/gsp/gsp-570.144.bin\0name=nova\0\
                   firmware=nvidia/gh100/gsp/fmc-570.144.bin\0";
        assert_eq!(
            modinfo_firmware(ko),
            [
                "nvidia/tu102/gsp/gsp-570.144.bin",
                "nvidia/gh100/gsp/fmc-570.144.bin"
            ]
        );
    }
}
