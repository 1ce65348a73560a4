//! Suite `gpu-model`: the series' tip kernel with the emulated GPU, per profile, and a hot-unplug run.

use super::host;
use crate::boot::gpu;
use crate::boot::qemu::Gpu;
use crate::boot::{boot_suite, console_line, guest_programs, ms, BootPlan, BOOT_TIMEOUT};
use crate::builds::topic_images;
use crate::ctx::Ctx;
use crate::results::report::{check, SuiteResult};
use crate::setup::qemu_command;
use crate::setup::Toolchain;
use anyhow::{bail, Result};
use gpu_model::profile::Overrides;
use std::path::{Path, PathBuf};

/// Profiles the `gpu-model` suite boots: one Turing, GH100, one Blackwell, and a dead device.
const GPU_SUITE_PROFILES: &[&str] = &["tu102", "gh100", "gb202", "dead"];
/// The profile of the hot-unplug run.
const HOTPLUG_PROFILE: &str = "gh100";
/// The boot with several GPUs, each its own model process on its own root port.
const MULTI_PROFILES: &[&str] = &["tu102", "gb202"];
/// QEMU's own test devices, attached to the multi-GPU boot (the PCI layer's sample binds them).
const TEST_DEVICES: &[(&str, &str)] = &[("pci-testdev", "0x1b36:0x0005"), ("edu", "0x1234:0x11e8")];

/// One boot of the suite.
struct Run {
    name: String,
    profiles: Vec<&'static str>,
    hotplug: bool,
    devices: &'static [(&'static str, &'static str)],
}

/// A guest command that fails unless a PCI function `vendor:device` (as `0xVVVV:0xDDDD`) is
/// in sysfs.
fn device_present(id: &str) -> String {
    format!(
        "for d in /sys/bus/pci/devices/*; do echo $(cat $d/vendor):$(cat $d/device); done | \
         grep -qx {id} && echo 'found PCI function {id}'"
    )
}

/// `gpu-model`: the series' tip kernel (the per-commit slot's build, Nova not loaded) boots with the emulated GPU per profile; the guest probe checks
/// what sysfs and BAR0 show against the profile; one run unplugs and re-plugs the GPU via QMP;
/// one run has two GPUs (two model processes) and QEMU's PCI test devices.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    let built = topic_images(ctx, tc, &ctx.series()?.topics.tip().branch)?;
    let bin = gpu::build_model(&ctx.repo, &ctx.logs())?;
    let programs = guest_programs(ctx, &["gpu_probe"])?;
    let mut all = SuiteResult::new("gpu-model");
    let mut runs: Vec<Run> = GPU_SUITE_PROFILES
        .iter()
        .map(|p| Run {
            name: format!("gpu-{p}"),
            profiles: vec![p],
            hotplug: false,
            devices: &[],
        })
        .collect();
    runs.push(Run {
        name: format!("gpu-{HOTPLUG_PROFILE}-hotplug"),
        profiles: vec![HOTPLUG_PROFILE],
        hotplug: true,
        devices: &[],
    });
    runs.push(Run {
        name: "gpu-multi".into(),
        profiles: MULTI_PROFILES.to_vec(),
        hotplug: false,
        devices: TEST_DEVICES,
    });
    // Boots side by side, as many as there are cores (each TCG guest keeps one busy).
    let width = std::thread::available_parallelism().map_or(1, |n| n.get());
    for chunk in runs.chunks(width) {
        let done: Vec<Result<SuiteResult>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|r| scope.spawn(|| one_run(ctx, tc, &bin, &programs, &built.kernel, r)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a boot thread panicked")))
                })
                .collect()
        });
        for d in done {
            let d = d?;
            all.tests.extend(d.tests);
            all.notes.extend(d.notes);
        }
    }
    // The model's own test against a real QEMU (ignored in a plain `cargo test`).
    let qemu = qemu_command(&tc.rootfs);
    let mut words = vec![qemu.get_program().to_string_lossy().into_owned()];
    words.extend(qemu.get_args().map(|a| a.to_string_lossy().into_owned()));
    if words.iter().any(|w| w.contains(char::is_whitespace)) {
        bail!("the QEMU command has a path with whitespace: {words:?}");
    }
    let mut envs = vec![("GPU_MODEL_QEMU", words.join(" ").into())];
    envs.extend(
        qemu.get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?, v?.to_os_string()))),
    );
    let log = ctx.logs().join("gpu-model-qemu-test.log");
    let args = [
        "test",
        "-p",
        "gpu-model",
        "--test",
        "qemu",
        "--color",
        "never",
        "--",
        "--ignored",
    ];
    for mut t in host::cargo_tests(ctx, &args, &envs, &log)? {
        t.name = format!("qemu-test:{}", t.name);
        all.tests.push(t);
    }
    all.notes.dedup();
    Ok(all)
}

/// One boot of the suite: its models, the probe per GPU, the boot, and what the models saw;
/// its tests and notes are prefixed with the run's name.
fn one_run(
    ctx: &Ctx,
    tc: &Toolchain,
    bin: &Path,
    programs: &[PathBuf],
    kernel: &Path,
    r: &Run,
) -> Result<SuiteResult> {
    let mut all = SuiteResult::new("gpu-model");
    let run = &r.name;
    let several = r.profiles.len() > 1;
    let mut models = Vec::new();
    let mut run_lines = Vec::new();
    let mut suites = Vec::new();
    for (i, name) in r.profiles.iter().enumerate() {
        let p = gpu::profile(name)?;
        let dir = ctx.build.join("run").join(run);
        let dir = if several {
            dir.join(format!("gpu{i}"))
        } else {
            dir
        };
        models.push(gpu::Model::start(bin, name, &Overrides::default(), &dir)?);
        let (probe, suite) = if r.hotplug {
            (
                " --loop-until-gone 60".to_string(),
                "gpu_probe_hotplug".to_string(),
            )
        } else if several {
            // Each GPU found behind its own root port: the probe checks that gpu<i> is the
            // model started for it.
            let suite = format!("gpu_probe_gpu{i}");
            (
                format!(
                    " --measure-reads 200 --suite {suite} --bdf {}",
                    gpu::gpu_bdf_word(i)
                ),
                suite,
            )
        } else {
            (" --measure-reads 2000".to_string(), "gpu_probe".to_string())
        };
        run_lines.push(gpu::probe_command(p, &probe));
        suites.push(suite);
    }
    run_lines.extend(r.devices.iter().map(|(_, id)| device_present(id)));
    let suites: Vec<&str> = suites.iter().map(String::as_str).collect();
    let plan = BootPlan {
        name: run,
        kernel,
        programs: programs.to_vec(),
        modules: Vec::new(),
        files: Vec::new(),
        run_lines,
        gpus: models
            .iter()
            .map(|m| Gpu::Model(m.socket.clone()))
            .collect(),
        devices: r.devices.iter().map(|(d, _)| d.to_string()).collect(),
        expect_suites: &suites,
        echo: false,
        append: vec!["kunit.enable=0".into()],
        hotplug_on: r.hotplug.then_some("waiting for unplug"),
        // gpu_probe's loop asks once.
        hotplug_cycles: r.hotplug.then_some(1),
        faults: None,
        timeout: BOOT_TIMEOUT,
    };
    let (mut suite, res) = boot_suite(ctx, tc, plan)?;
    for (i, model) in models.iter().enumerate() {
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
        let want_resets = if r.hotplug { 2 } else { 1 };
        let mut problems = Vec::new();
        if counter("resets") < want_resets || counter("bar0_reads") == 0 {
            problems.push(format!(
                "expected >= {want_resets} reset(s) and BAR0 reads: {stats}"
            ));
        }
        let label = if several {
            format!("model{i}")
        } else {
            "model".into()
        };
        suite
            .tests
            .push(check(format!("{label}.saw-guest"), problems));
        suite.notes.push(format!("{label} {stats}"));
        all.notes.push(format!(
            "{run}: {label} ready in {:.1} ms",
            ms(model.start_time)
        ));
    }
    drop(models);
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
    Ok(all)
}
