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
    /// The emulated GPU with this profile.
    Model(String),
    /// A host GPU through vfio-pci.
    Passthrough(String),
}

/// `cargo xtask run`.
pub fn run(ctx: &Ctx, gpu: GpuChoice, debug: bool, exec: &[String]) -> Result<()> {
    let tc = setup::setup(ctx)?;
    let (branch, built) = build_tree(ctx, &tc, debug)?;
    println!(
        "    built {branch}{}",
        if built.rebuilt { "" } else { " (up to date)" }
    );
    let (mut programs, mut run_lines, mut model) = (Vec::new(), exec.to_vec(), None);
    if !exec.is_empty() {
        programs = guest_programs(ctx, &all_guest_programs(ctx)?)?;
    }
    let gpu = match gpu {
        GpuChoice::None => Gpu::None,
        GpuChoice::Passthrough(p) => Gpu::Passthrough(p),
        GpuChoice::Model(c) => {
            let p = gpu::profile(&c)?;
            let bin = gpu::build_model(&ctx.repo, &ctx.logs())?;
            let m = gpu::Model::start(&bin, p.name, &ctx.build.join("run").join(slug(&branch)))?;
            println!(
                "    gpu-model {} ready in {:.1} ms ({})",
                p.name,
                ms(m.start_time),
                m.log.display()
            );
            if exec.is_empty() {
                programs = guest_programs(ctx, &["gpu_probe"])?;
                run_lines = vec![gpu::probe_command(p, " --measure-reads 2000")];
            }
            let sock = m.socket.clone();
            model = Some(m);
            Gpu::Model(sock)
        }
    };
    let name = slug(&branch);
    let plan = BootPlan {
        name: &name,
        bzimage: &built.bzimage,
        programs,
        modules: built.modules.clone(),
        run_lines,
        gpu,
        expect_suites: &[],
        echo: true,
        append: Vec::new(),
        hotplug_on: None,
    };
    let (suite, _) = boot_suite(ctx, &tc, plan)?;
    drop(model);
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
