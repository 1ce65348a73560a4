//! Kernel configuration: tinyconfig plus fragments from `kconfig/`, verified after olddefconfig.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// What a fragment asks of one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// `CONFIG_X=value` (`y`, `m`, a number or a quoted string).
    Value(String),
    /// `# CONFIG_X is not set`.
    Unset,
}

/// Parses a fragment or a `.config`: option name → wanted value. Later lines win.
pub fn parse(text: &str) -> BTreeMap<String, Want> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                if name.starts_with("CONFIG_") {
                    out.insert(name.to_string(), Want::Unset);
                }
            }
        } else if let Some((name, value)) = line.split_once('=') {
            if name.starts_with("CONFIG_") {
                out.insert(name.to_string(), Want::Value(value.to_string()));
            }
        }
    }
    out
}

/// Options the fragments asked for that the final `.config` does not have, as messages.
pub fn verify(fragments: &[PathBuf], config: &str) -> Result<Vec<String>> {
    let have = parse(config);
    let mut wanted = BTreeMap::new();
    for f in fragments {
        let text = fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        for (k, v) in parse(&text) {
            wanted.insert(k, (v, f.clone()));
        }
    }
    let mut missing = Vec::new();
    for (name, (want, frag)) in wanted {
        let got = have.get(&name).cloned().unwrap_or(Want::Unset);
        if got != want {
            let shown = |w: &Want| match w {
                Want::Value(v) => format!("{name}={v}"),
                Want::Unset => format!("{name} unset"),
            };
            missing.push(format!(
                "{} asks for {}, the final .config has {} (a dependency is missing?)",
                frag.file_name().unwrap_or_default().to_string_lossy(),
                shown(&want),
                shown(&got)
            ));
        }
    }
    Ok(missing)
}

/// The fragments for a build: `base.config`, then each listed topic's own `<dir>.config`
/// (ancestors first), then `debug.config` when asked for.
pub fn fragments(repo: &Path, topic_dirs: &[String], debug: bool) -> Vec<PathBuf> {
    let dir = repo.join("kconfig");
    let mut out = vec![dir.join("base.config")];
    for t in topic_dirs {
        let f = dir.join(format!("{t}.config"));
        if f.exists() {
            out.push(f);
        }
    }
    if debug {
        out.push(dir.join("debug.config"));
    }
    out
}

/// Fails naming every option a fragment asked for that was dropped.
pub fn check(fragments: &[PathBuf], config_path: &Path) -> Result<()> {
    let config = fs::read_to_string(config_path)?;
    let missing = verify(fragments, &config)?;
    if !missing.is_empty() {
        bail!("Kconfig dropped options:\n  {}", missing.join("\n  "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_and_unset() {
        let m =
            parse("CONFIG_A=y\n# CONFIG_B is not set\n# comment\nCONFIG_C=\"x=y\"\nCONFIG_A=m\n");
        assert_eq!(m["CONFIG_A"], Want::Value("m".into()));
        assert_eq!(m["CONFIG_B"], Want::Unset);
        assert_eq!(m["CONFIG_C"], Want::Value("\"x=y\"".into()));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn dropped_option_is_named() {
        let dir = std::env::temp_dir().join(format!("kconfig-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let frag = dir.join("t.config");
        fs::write(
            &frag,
            "CONFIG_RUST=y\nCONFIG_DRM=y\n# CONFIG_MODVERSIONS is not set\n",
        )
        .unwrap();
        let cfg = "CONFIG_RUST=y\n# CONFIG_DRM is not set\nCONFIG_MODVERSIONS=y\n";
        let missing = verify(std::slice::from_ref(&frag), cfg).unwrap();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains("CONFIG_DRM=y"), "{missing:?}");
        assert!(
            missing[1].contains("CONFIG_MODVERSIONS unset"),
            "{missing:?}"
        );
        assert!(verify(&[frag], "CONFIG_RUST=y\nCONFIG_DRM=y\n")
            .unwrap()
            .is_empty());
        fs::remove_dir_all(dir).unwrap();
    }
}
