//! `cargo xtask run`: build the kernel tree's checked-out branch, boot it with emulated GPUs
//! (one gh100 by default) or a passed-through one, and show what it reported: Nova's probe
//! lines and `nova-info`'s list, or the output of the guest commands given with `--exec`.

use crate::boot::firmware::gsp_firmware;
use crate::boot::gpu;
use crate::boot::modules::{build_load_order, has_module, insmod_line, NOVA_MODULE};
use crate::boot::qemu::Gpu;
use crate::boot::{
    all_guest_programs, boot_suite, guest_programs, ms, nova_info, BootPlan, BOOT_TIMEOUT,
    NOVA_INFO,
};
use crate::builds::build_tree;
use crate::ctx::Ctx;
use crate::results::report::Report;
use crate::series::topics::slug;
use crate::setup;
use anyhow::{bail, Result};
use gpu_model::profile::{Profile, PROFILES};
use std::path::PathBuf;

/// The profile `cargo xtask run` attaches when it is given neither GPUs nor commands.
pub const DEFAULT_CHIP: &str = "gh100";

/// The `--chip` value that means every profile of the model.
pub const ALL_CHIPS: &str = "all";

/// What `cargo xtask run` attaches as GPU.
#[derive(Debug, PartialEq, Eq)]
pub enum GpuChoice {
    /// No GPU.
    None,
    /// Emulated GPUs with these profiles, one model process and root port each.
    Models(Vec<String>),
    /// A host GPU through vfio-pci.
    Passthrough(String),
}

impl GpuChoice {
    /// The GPUs of the command line: the passed-through one, else the `--chip` profiles
    /// ([`ALL_CHIPS`] standing for every profile), else one [`DEFAULT_CHIP`] unless guest
    /// commands were given (`has_exec`), which then run without a GPU.
    pub fn from_options(chips: &[String], passthrough: Option<String>, has_exec: bool) -> Self {
        match passthrough {
            Some(p) => GpuChoice::Passthrough(p),
            None if !chips.is_empty() => GpuChoice::Models(expand_chips(chips)),
            None if has_exec => GpuChoice::None,
            None => GpuChoice::Models(vec![DEFAULT_CHIP.to_string()]),
        }
    }
}

/// `chips` with every [`ALL_CHIPS`] replaced by all profile names, in the model's order.
pub fn expand_chips(chips: &[String]) -> Vec<String> {
    chips
        .iter()
        .flat_map(|c| {
            if c.eq_ignore_ascii_case(ALL_CHIPS) {
                PROFILES.iter().map(|p| p.name.to_string()).collect()
            } else {
                vec![c.clone()]
            }
        })
        .collect()
}

/// What the guest runs without `--exec`, and the guest programs that needs: with Nova's
/// module (`nova_order`: the modules to load, Nova last), it loads Nova and runs
/// [`NOVA_INFO`]; without, the guest probe checks each emulated GPU of `probes` against its
/// profile (several GPUs: each found behind its root port, its own KTAP suite).
fn default_guest(
    nova_order: Option<&[String]>,
    probes: &[&Profile],
) -> (Vec<String>, Vec<&'static str>) {
    if let Some(order) = nova_order {
        return (vec![insmod_line(order), NOVA_INFO.to_string()], vec![]);
    }
    let several = probes.len() > 1;
    let lines: Vec<String> = probes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let extra = if several {
                format!(
                    " --measure-reads 2000 --suite gpu_probe_gpu{i} --bdf {}",
                    gpu::gpu_bdf_word(i)
                )
            } else {
                " --measure-reads 2000".to_string()
            };
            gpu::probe_command(p, &extra)
        })
        .collect();
    let programs = if lines.is_empty() {
        vec![]
    } else {
        vec!["gpu_probe"]
    };
    (lines, programs)
}

/// `cargo xtask run`.
pub fn run(
    ctx: &Ctx,
    gpu: GpuChoice,
    debug: bool,
    exec: &[String],
    devices: &[String],
) -> Result<()> {
    // A profile name that does not exist, or a bad knob, fails before the kernel is built.
    let chips: Vec<gpu::Chip> = match &gpu {
        GpuChoice::Models(chips) => chips
            .iter()
            .map(|c| gpu::Chip::parse(c))
            .collect::<Result<_>>()?,
        _ => Vec::new(),
    };
    let profiles: Vec<Profile> = chips.iter().map(gpu::Chip::effective).collect();
    let profiles: Vec<&Profile> = profiles.iter().collect();
    let tc = setup::setup(ctx)?;
    // The userspace the boot needs (the model, nova-info) is built while the kernel builds: even
    // with nothing to do, the two cargo runs take ~0.5 s here.
    let want_model = matches!(gpu, GpuChoice::Models(_));
    let (kernel, userspace) = std::thread::scope(|s| {
        let userspace = s.spawn(|| -> Result<(Option<PathBuf>, PathBuf)> {
            let model = if want_model {
                Some(gpu::build_model(&ctx.repo, &ctx.logs())?)
            } else {
                None
            };
            Ok((model, nova_info(ctx)?))
        });
        let kernel = build_tree(ctx, &tc, debug);
        (kernel, userspace.join())
    });
    let (branch, built) = kernel?;
    let (model_bin, nova_info) =
        userspace.map_err(|_| anyhow::anyhow!("building the model and nova-info panicked"))??;
    println!(
        "    built {branch}{}",
        if built.rebuilt { "" } else { " (up to date)" }
    );
    let name = slug(&branch);
    let mut models = Vec::new();
    let gpus = match gpu {
        GpuChoice::None => Vec::new(),
        GpuChoice::Passthrough(p) => vec![Gpu::Passthrough(p)],
        GpuChoice::Models(_) => {
            let bin = model_bin.expect("built for models");
            let run_dir = ctx.build.join("run").join(&name);
            for (i, c) in chips.iter().enumerate() {
                let dir = run_dir.join(format!("gpu{i}"));
                let m =
                    gpu::Model::start_with(&bin, c.profile.name, &c.overrides, c.bar1_size, &dir)?;
                // What the model presents, the knobs applied (its ready line up to the socket).
                let ready = m.ready.trim_start_matches("gpu-model: ready: ");
                println!(
                    "    gpu{i}: gpu-model {} ready in {:.1} ms ({})",
                    ready.split(" on ").next().unwrap_or(ready),
                    ms(m.start_time),
                    m.log.display()
                );
                models.push(m);
            }
            models
                .iter()
                .map(|m| Gpu::Model(m.socket.clone()))
                .collect()
        }
    };
    let (run_lines, mut programs) = if !exec.is_empty() {
        (
            exec.to_vec(),
            guest_programs(ctx, &all_guest_programs(ctx)?)?,
        )
    } else {
        let nova_order = if has_module(&built.modules, NOVA_MODULE) {
            Some(build_load_order(&built.modules, &[NOVA_MODULE], true)?)
        } else {
            let instead = if profiles.is_empty() {
                "the guest runs nothing"
            } else {
                "the guest probe checks each emulated GPU instead"
            };
            println!(
                "    note: {branch} builds no {NOVA_MODULE}.ko (Nova is on nova/stub): {instead}"
            );
            None
        };
        let (lines, names) = default_guest(nova_order.as_deref(), &profiles);
        (lines, guest_programs(ctx, &names)?)
    };
    programs.push(nova_info);
    // The real firmware of the attached GPUs, from Debian's package.
    let firmware = if profiles.is_empty() {
        Vec::new()
    } else {
        let tree = crate::setup::nvidia_firmware(ctx)?;
        gsp_firmware(&tree, &profiles, &Default::default())?
    };
    let plan = BootPlan {
        name: &name,
        kernel: &built.kernel,
        programs,
        modules: built.modules.clone(),
        files: firmware,
        run_lines,
        gpus,
        devices: devices.to_vec(),
        expect_suites: &[],
        echo: true,
        append: Vec::new(),
        hotplug_on: None,
        hotplug_cycles: None,
        faults: None,
        timeout: BOOT_TIMEOUT,
    };
    let (suite, _) = boot_suite(ctx, &tc, plan)?;
    drop(models);
    let report = Report {
        suites: vec![suite],
    };
    report.print_table();
    println!("{}", report.final_line());
    if !report.success() {
        bail!("the boot of {branch} reported failures");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn without_options_one_gh100_is_attached() {
        assert_eq!(
            GpuChoice::from_options(&[], None, false),
            GpuChoice::Models(strings(&["gh100"]))
        );
        assert_eq!(GpuChoice::from_options(&[], None, true), GpuChoice::None);
        assert_eq!(
            GpuChoice::from_options(&strings(&["tu102"]), None, true),
            GpuChoice::Models(strings(&["tu102"]))
        );
        assert_eq!(
            GpuChoice::from_options(&[], Some("0000:01:00.0".into()), false),
            GpuChoice::Passthrough("0000:01:00.0".into())
        );
    }

    #[test]
    fn all_means_every_profile() {
        let all = expand_chips(&strings(&["all"]));
        assert_eq!(all.len(), PROFILES.len());
        assert_eq!(all.len(), 26);
        assert_eq!(all[0], "gv100");
        assert_eq!(all.last().unwrap(), "dead");
        let mixed = expand_chips(&strings(&["gh100", "ALL"]));
        assert_eq!(mixed.len(), 27);
        assert_eq!(mixed[0], "gh100");
    }

    #[test]
    fn with_nova_the_guest_loads_it_and_lists_the_devices() {
        let gh = gpu::profile("gh100").unwrap();
        let (lines, programs) = default_guest(Some(&strings(&["drm_helper", "nova"])), &[gh]);
        assert_eq!(
            lines,
            [
                "insmod /lib/modules/drm_helper.ko && insmod /lib/modules/nova.ko",
                "nova-info"
            ]
        );
        assert!(programs.is_empty());
    }

    #[test]
    fn without_nova_the_probe_checks_each_gpu_behind_its_port() {
        let (gh, dead) = (
            gpu::profile("gh100").unwrap(),
            gpu::profile("dead").unwrap(),
        );
        let (lines, programs) = default_guest(None, &[gh]);
        assert_eq!(programs, ["gpu_probe"]);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with(" --measure-reads 2000"), "{}", lines[0]);
        // gh100 and dead share a device ID: each probe names its GPU's address.
        let (lines, _) = default_guest(None, &[gh, dead]);
        assert!(lines[1].contains("--suite gpu_probe_gpu1 --bdf $(basename /sys/bus/pci/devices/0000:00:02.0/0000:??:??.?)"));
        assert!(lines[1].contains("--boot0 0xffffffff"));
        let (lines, programs) = default_guest(None, &[]);
        assert!(lines.is_empty() && programs.is_empty());
    }
}
