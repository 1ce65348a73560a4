//! Tools for driver authors building on the series: rustdoc HTML of the kernel crate
//! (`cargo xtask doc`), `rust-project.json` for editors (`cargo xtask rust-analyzer`) and
//! out-of-tree modules built against a branch (`cargo xtask module DIR`; booted by
//! [`crate::boot::boot_modules`]).

use crate::builds::kbuild;
use crate::builds::{keep_series_topic, keep_tree, Kept};
use crate::ctx::Ctx;
use crate::setup::Toolchain;
use crate::util;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The build of `branch` as `series/` has it, or of the kernel tree's checked-out branch.
pub fn kept_build(ctx: &Ctx, tc: &Toolchain, branch: Option<&str>) -> Result<Kept> {
    match branch {
        Some(b) => keep_series_topic(ctx, tc, b, &[]),
        None => keep_tree(ctx, tc, false),
    }
}

/// `make rustdoc` for `k`: the kernel crate's `index.html` and the warnings rustdoc printed.
pub fn doc(ctx: &Ctx, tc: &Toolchain, k: &Kept) -> Result<(PathBuf, Vec<String>)> {
    let warnings = kbuild::make_target(tc, &k.build, "rustdoc", &ctx.logs())?;
    let index = rustdoc_root(k).join("kernel/index.html");
    if !index.is_file() {
        bail!("make rustdoc wrote no {}", index.display());
    }
    Ok((index, warnings))
}

/// Where `make rustdoc` writes the HTML of build `k`.
pub fn rustdoc_root(k: &Kept) -> PathBuf {
    k.build.out.join("Documentation/output/rust/rustdoc")
}

/// `make rust-analyzer` for `k`; the `rust-project.json` is copied to `into` (the root of the
/// source tree an editor opens) and returned.
pub fn rust_analyzer(ctx: &Ctx, tc: &Toolchain, k: &Kept, into: &Path) -> Result<PathBuf> {
    kbuild::make_target(tc, &k.build, "rust-analyzer", &ctx.logs())?;
    let made = k.build.out.join("rust-project.json");
    let text = std::fs::read_to_string(&made)
        .with_context(|| format!("make rust-analyzer wrote no {}", made.display()))?;
    kernel_crate_root(&text)?;
    let to = into.join("rust-project.json");
    util::write_atomic(&to, text.as_bytes())?;
    Ok(to)
}

/// The root module of crate `kernel` in a `rust-project.json`; an error if the file does not
/// parse or names no such crate.
pub fn kernel_crate_root(json: &str) -> Result<String> {
    let v: serde_json::Value =
        serde_json::from_str(json).context("rust-project.json does not parse")?;
    let crates = v["crates"]
        .as_array()
        .context("rust-project.json has no crates")?;
    crates
        .iter()
        .find(|c| c["display_name"] == "kernel")
        .and_then(|c| c["root_module"].as_str())
        .map(str::to_string)
        .context("rust-project.json names no crate `kernel`")
}

/// Builds the out-of-tree module in `dir` against `k`, in a copy under `build/modules/<name>`
/// (kbuild writes objects next to the sources); returns its `.ko` files. A Rust warning fails.
pub fn module(ctx: &Ctx, tc: &Toolchain, k: &Kept, dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.join("Kbuild").is_file() && !dir.join("Makefile").is_file() {
        bail!(
            "{} has no Kbuild or Makefile: not a module folder",
            dir.display()
        );
    }
    let name = dir
        .canonicalize()?
        .file_name()
        .context("module folder without a name")?
        .to_string_lossy()
        .into_owned();
    let work = ctx.build.join("modules").join(&k.build.name).join(&name);
    copy_sources(dir, &work)?;
    let (kos, warnings) = kbuild::make_module(tc, &k.build, &work, &ctx.logs())?;
    if !warnings.is_empty() {
        bail!(
            "the module {name} builds with warnings:\n{}",
            warnings.join("\n")
        );
    }
    Ok(kos)
}

/// Brings the sources of `from` (not its build output) into `to`, rewriting only files whose
/// content changed, so that kbuild's timestamps keep an unchanged module up to date.
fn copy_sources(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)?.flatten() {
        let p = e.path();
        let n = e.file_name().to_string_lossy().into_owned();
        let generated = [".o", ".ko", ".mod", ".cmd", ".symvers", ".order", ".mod.c"]
            .iter()
            .any(|x| n.ends_with(x));
        if p.is_file() && !generated {
            let data = std::fs::read(&p)?;
            if std::fs::read(to.join(&n)).ok().as_deref() != Some(data.as_slice()) {
                std::fs::write(to.join(&n), data)?;
            }
        } else if p.is_dir() {
            copy_sources(&p, &to.join(&n))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_crate_is_found_in_rust_project_json() {
        let json = r#"{"crates": [{"display_name": "core", "root_module": "/s/core/src/lib.rs"},
            {"display_name": "kernel", "root_module": "/k/rust/kernel/lib.rs"}]}"#;
        assert_eq!(kernel_crate_root(json).unwrap(), "/k/rust/kernel/lib.rs");
        assert!(kernel_crate_root(r#"{"crates": []}"#).is_err());
        assert!(kernel_crate_root("{").is_err());
    }
}
