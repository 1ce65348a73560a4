//! `cargo xtask run`: build the kernel tree's checked-out branch, boot it (with an emulated or
//! passed-through GPU, or guest commands) and show what it reported.

use crate::boot::{all_guest_programs, boot_suite, guest_programs, ms, BootPlan};
use crate::builds::build_tree;
use crate::ctx::Ctx;
use crate::gpu;
use crate::qemu::Gpu;
use crate::report::Report;
use crate::setup;
use crate::topics::slug;
use anyhow::{bail, Result};

/// What `cargo xtask run` attaches as GPU.
pub enum GpuChoice {
    /// No GPU.
    None,
    /// Emulated GPUs with these profiles, one model process and root port each.
    Models(Vec<String>),
    /// A host GPU through vfio-pci.
    Passthrough(String),
}

/// `cargo xtask run`.
pub fn run(
    ctx: &Ctx,
    gpu: GpuChoice,
    debug: bool,
    exec: &[String],
    devices: &[String],
) -> Result<()> {
    let tc = setup::setup(ctx)?;
    let (branch, built) = build_tree(ctx, &tc, debug)?;
    println!(
        "    built {branch}{}",
        if built.rebuilt { "" } else { " (up to date)" }
    );
    let (mut programs, mut run_lines, mut models) = (Vec::new(), exec.to_vec(), Vec::new());
    if !exec.is_empty() {
        programs = guest_programs(ctx, &all_guest_programs(ctx)?)?;
    }
    let gpus = match gpu {
        GpuChoice::None => Vec::new(),
        GpuChoice::Passthrough(p) => vec![Gpu::Passthrough(p)],
        GpuChoice::Models(chips) => {
            let profiles = chips
                .iter()
                .map(|c| gpu::profile(c))
                .collect::<Result<Vec<_>>>()?;
            let bin = gpu::build_model(&ctx.repo, &ctx.logs())?;
            let run_dir = ctx.build.join("run").join(slug(&branch));
            for (i, p) in profiles.iter().enumerate() {
                let m = gpu::Model::start(&bin, p.name, &run_dir.join(format!("gpu{i}")))?;
                println!(
                    "    gpu-model {} (gpu{i}) ready in {:.1} ms ({})",
                    p.name,
                    ms(m.start_time),
                    m.log.display()
                );
                if exec.is_empty() {
                    let suite = if profiles.len() > 1 {
                        format!(" --suite gpu_probe_gpu{i}")
                    } else {
                        String::new()
                    };
                    run_lines.push(gpu::probe_command(
                        p,
                        &format!(" --measure-reads 2000{suite}"),
                    ));
                }
                models.push(m);
            }
            if exec.is_empty() {
                programs = guest_programs(ctx, &["gpu_probe"])?;
            }
            models
                .iter()
                .map(|m| Gpu::Model(m.socket.clone()))
                .collect()
        }
    };
    let name = slug(&branch);
    let plan = BootPlan {
        name: &name,
        bzimage: &built.bzimage,
        programs,
        modules: built.modules.clone(),
        run_lines,
        gpus,
        devices: devices.to_vec(),
        expect_suites: &[],
        echo: true,
        append: Vec::new(),
        hotplug_on: None,
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
