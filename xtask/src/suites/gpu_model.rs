//! Suite `gpu-model`: the base kernel with the emulated GPU, per profile, and a hot-unplug run.

use crate::boot::{boot_suite, console_line, guest_programs, ms, BootPlan};
use crate::builds::build_base;
use crate::ctx::Ctx;
use crate::gpu;
use crate::qemu::Gpu;
use crate::report::{check, SuiteResult};
use crate::setup::Toolchain;
use anyhow::Result;

/// Profiles the `gpu-model` suite boots: one Turing, GH100, one Blackwell, and a dead device.
const GPU_SUITE_PROFILES: &[&str] = &["tu102", "gh100", "gb202", "dead"];
/// The profile of the hot-unplug run.
const HOTPLUG_PROFILE: &str = "gh100";

/// `gpu-model`: the base kernel boots with the emulated GPU per profile; the guest probe checks
/// what sysfs and BAR0 show against the profile; one run unplugs and re-plugs the GPU via QMP.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    let built = build_base(ctx, tc)?;
    let bin = gpu::build_model(&ctx.repo, &ctx.logs())?;
    let programs = guest_programs(ctx, &["gpu_probe"])?;
    let mut all = SuiteResult::new("gpu-model");
    let runs = GPU_SUITE_PROFILES
        .iter()
        .map(|p| (*p, false))
        .chain([(HOTPLUG_PROFILE, true)]);
    for (name, hotplug) in runs {
        let p = gpu::profile(name)?;
        let run = format!("gpu-{name}{}", if hotplug { "-hotplug" } else { "" });
        let model = gpu::Model::start(&bin, name, &ctx.build.join("run").join(&run))?;
        let ready = model.start_time;
        let (probe, suites, marker) = if hotplug {
            (
                " --loop-until-gone 60",
                &["gpu_probe_hotplug"][..],
                Some("waiting for unplug"),
            )
        } else {
            (" --measure-reads 2000", &["gpu_probe"][..], None)
        };
        let plan = BootPlan {
            name: &run,
            bzimage: &built.bzimage,
            programs: programs.clone(),
            modules: Vec::new(),
            run_lines: vec![gpu::probe_command(p, probe)],
            gpu: Gpu::Model(model.socket.clone()),
            expect_suites: suites,
            echo: false,
            append: vec!["kunit.enable=0".into()],
            hotplug_on: marker,
        };
        let (mut suite, res) = boot_suite(ctx, tc, plan)?;
        // The guest must really have talked to this model: sessions and BAR0 reads counted.
        let stats = model
            .control("stats")
            .unwrap_or_else(|e| format!("error: {e:#}"));
        let counter = |k: &str| -> u64 {
            stats
                .split_whitespace()
                .find_map(|w| w.strip_prefix(k)?.strip_prefix('=')?.parse().ok())
                .unwrap_or(0)
        };
        // QEMU resets the device each time it realizes it: once per plug.
        let want_resets = if hotplug { 2 } else { 1 };
        let mut problems = Vec::new();
        if counter("resets") < want_resets || counter("bar0_reads") == 0 {
            problems.push(format!(
                "expected >= {want_resets} reset(s) and BAR0 reads: {stats}"
            ));
        }
        suite.tests.push(check("model.saw-guest", problems));
        suite.notes.push(format!("model {stats}"));
        drop(model);
        all.notes
            .push(format!("{run}: model ready in {:.1} ms", ms(ready)));
        for key in [
            "first BAR0 read at uptime",
            "reads/s",
            "loop: gone",
            "loop: ",
        ] {
            if let Some(l) = console_line(&res.console, key) {
                all.notes.push(format!("{run}: {l}"));
            }
        }
        all.notes
            .extend(suite.notes.into_iter().map(|n| format!("{run}: {n}")));
        for mut t in suite.tests {
            t.name = format!("{run}:{}", t.name);
            all.tests.push(t);
        }
    }
    all.notes.dedup();
    Ok(all)
}
