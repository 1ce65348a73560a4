//! Kernel modules of a build as the guest loads them: each module's `depends=`, and the
//! `insmod` order that loads a module after the modules it needs.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Nova's module (`nova.ko`).
pub const NOVA_MODULE: &str = "nova";

/// The `depends=` list of a module file's `.modinfo` (empty when it has none).
pub fn module_depends(ko: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    let Some(at) = ko.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let rest = &ko[at + KEY.len()..];
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}

/// The module name of a module file (its file name without `.ko`, `-` as `_`).
pub fn module_name(path: &Path) -> String {
    path.file_name()
        .map(|n| {
            n.to_string_lossy()
                .trim_end_matches(".ko")
                .replace('-', "_")
        })
        .unwrap_or_default()
}

/// Whether the module files `modules` of a build include module `name`.
pub fn has_module(modules: &[PathBuf], name: &str) -> bool {
    modules.iter().any(|p| module_name(p) == name)
}

/// The modules to `insmod`, in order, so that each of `wanted` can load: the dependencies of
/// each (depth first, each once), then the module itself when `load_wanted`. `depends` gives a
/// module's `depends=`; a module with no file (`None`) is an error naming who needs it.
pub fn load_order(
    wanted: &[&str],
    load_wanted: bool,
    depends: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<Vec<String>> {
    fn visit(
        m: &str,
        needed_by: &str,
        depends: &dyn Fn(&str) -> Option<Vec<String>>,
        order: &mut Vec<String>,
        path: &mut Vec<String>,
    ) -> Result<()> {
        if order.iter().any(|o| o == m) {
            return Ok(());
        }
        if path.iter().any(|p| p == m) {
            bail!(
                "modules depend on each other in a cycle: {} -> {m}",
                path.join(" -> ")
            );
        }
        let deps = depends(m).with_context(|| format!("no {m}.ko in the build ({needed_by})"))?;
        path.push(m.to_string());
        for d in deps {
            visit(&d, &format!("needed by {m}"), depends, order, path)?;
        }
        path.pop();
        order.push(m.to_string());
        Ok(())
    }
    let mut order = Vec::new();
    for w in wanted {
        visit(w, "wanted", depends, &mut order, &mut Vec::new())?;
        if !load_wanted {
            order.retain(|o| o != w);
        }
    }
    Ok(order)
}

/// The command line that loads `order` from `/lib/modules` (`true` when empty).
pub fn insmod_line(order: &[String]) -> String {
    if order.is_empty() {
        return "true".into();
    }
    order
        .iter()
        .map(|m| format!("insmod /lib/modules/{m}.ko"))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// [`load_order`] over the module files `modules` of a build.
pub fn build_load_order(
    modules: &[PathBuf],
    wanted: &[&str],
    load_wanted: bool,
) -> Result<Vec<String>> {
    let depends = |m: &str| {
        modules
            .iter()
            .find(|p| module_name(p) == m)
            .and_then(|p| std::fs::read(p).ok())
            .map(|data| module_depends(&data))
    };
    load_order(wanted, load_wanted, &depends)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_depends_are_read_from_the_module_file() {
        let ko = b"\x7fELF...\0license=GPL\0depends=drm_shmem_helper,drm_kms_helper\0name=vgem\0";
        assert_eq!(module_depends(ko), ["drm_shmem_helper", "drm_kms_helper"]);
        assert!(module_depends(b"\0depends=\0name=x\0").is_empty());
        assert!(module_depends(b"\0name=x\0").is_empty());
        assert_eq!(
            module_name(Path::new("/b/drm-rust_sample.ko")),
            "drm_rust_sample"
        );
        let mods = [PathBuf::from("/m/nova.ko"), PathBuf::from("/m/vgem.ko")];
        assert!(has_module(&mods, "nova"));
        assert!(!has_module(&mods, "nouveau"));
        assert!(!has_module(&mods[1..], "nova"));
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let deps = |m: &str| -> Option<Vec<String>> {
            let d: &[&str] = match m {
                "vgem" => &["drm_shmem_helper"],
                "rust_driver_drm" => &["drm_shmem_helper"],
                "drm_shmem_helper" => &[],
                "rust_driver_drm_device" => &[],
                "a" => &["b"],
                "b" => &["a"],
                _ => return None,
            };
            Some(d.iter().map(|s| s.to_string()).collect())
        };
        let order = load_order(
            &["vgem", "rust_driver_drm_device", "rust_driver_drm"],
            true,
            &deps,
        )
        .unwrap();
        assert_eq!(
            order,
            [
                "drm_shmem_helper",
                "vgem",
                "rust_driver_drm_device",
                "rust_driver_drm"
            ]
        );
        assert_eq!(
            load_order(&["rust_driver_drm"], false, &deps).unwrap(),
            ["drm_shmem_helper"]
        );
        let e = load_order(&["rust_driver_drm", "nope"], true, &deps).unwrap_err();
        assert_eq!(e.to_string(), "no nope.ko in the build (wanted)");
        let e = load_order(&["a"], true, &deps).unwrap_err();
        assert!(e.to_string().contains("cycle: a -> b -> a"), "{e}");
        assert_eq!(
            insmod_line(&order[..2]),
            "insmod /lib/modules/drm_shmem_helper.ko && insmod /lib/modules/vgem.ko"
        );
        assert_eq!(insmod_line(&[]), "true");
    }

    /// Module files on disk: a module without `depends=` loads alone, one with it after them.
    #[test]
    fn the_order_is_read_from_the_build_s_module_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, info: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, info).unwrap();
            p
        };
        let mods = vec![
            write("nova.ko", b"\x7fELF\0depends=drm_helper\0name=nova\0"),
            write("drm_helper.ko", b"\x7fELF\0depends=\0name=drm_helper\0"),
        ];
        assert_eq!(
            build_load_order(&mods, &["nova"], true).unwrap(),
            ["drm_helper", "nova"]
        );
        assert_eq!(
            build_load_order(&mods, &["nova"], false).unwrap(),
            ["drm_helper"]
        );
        assert!(build_load_order(&mods[..1], &["nova"], true).is_err());
    }
}
