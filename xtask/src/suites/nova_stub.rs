//! Suite `nova-stub`: nova/stub as series/ has it, built once with its fragments, kmemleak and
//! users and capabilities (`kconfig/multiuser.config`), booted three times with emulated GPUs
//! (each boot also runs the kernel's Rust doctests):
//!
//! - `gsp`: every profile Nova drives (all but gv100 and dead: 24 today) in one boot, with
//!   the fake GSP firmware, one of them ([`BOOT42_ONLY`]) with a BOOT0 whose architecture reads
//!   zero, so that Nova identifies it from BOOT42; once Nova is loaded `nova-info` lists them,
//!   then `nova_test` checks each GPU through its uAPI ([`gsp_command`]); the suite checks each
//!   probe line and `nova-info` line.
//! - `refusals`: what Nova must refuse ([`refusals`]), without firmware: each refusal line,
//!   no device bound, `nova-info` finding no Nova device.
//! - `stress`: one gh100 with kmemleak: unbind/bind, module and hot-unplug cycles over QMP
//!   ([`stress_command`]), kmemleak clean afterwards.
//!
//! One boot of 24 GPUs is used rather than several smaller ones: measured on the base kernel
//! with the guest probe (2026-12-02, TCG, this 2-core machine), a boot with 6 GPUs took 2.0 s,
//! 12 took 2.5 s, 24 took 3.7 s (the kernel reached init at 0.89, 0.90, 1.35 s), so a GPU costs
//! ~0.1 s while every boot adds its fixed cost (the kernel, the doctests: ~1.5-2 s without,
//! several seconds with them on a kmemleak build) again.

use crate::boot::firmware::{all_gsp_firmware, firmware_name, needs_gsp_firmware, GSP_FILES};
use crate::boot::gpu;
use crate::boot::modules::{build_load_order, insmod_line, NOVA_MODULE};
use crate::boot::qemu::Gpu;
use crate::boot::{boot_suite, guest_programs, BootPlan, NOVA_INFO};
use crate::builds::kbuild::Built;
use crate::builds::{topic_images, variant_build, Variant};
use crate::ctx::Ctx;
use crate::results::report::{check, SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::suites::rust_device::{add_boot_notes, KMEMLEAK_BASELINE, KMEMLEAK_CHECK};
use anyhow::Result;
use gpu_model::profile::{ChipId, Overrides, Profile, ALL_ONES, PROFILES};
use std::path::{Path, PathBuf};

/// The branch under test.
const BRANCH: &str = "nova/stub";
/// Nova's module in the guest.
const NOVA_KO: &str = "/lib/modules/nova.ko";
/// The guest program that tests Nova (KTAP suite `nova_test`).
const NOVA_TEST: &str = "nova_test";
/// The KTAP suites every boot must show.
const EXPECT_SUITES: &[&str] = &["rust_doctests_kernel", "nova_test"];
/// What `nova_test` prints when it is ready for the next hot-unplug.
const HOTPLUG_MARKER: &str = "waiting for unplug";
/// The profile of the stress boot.
const STRESS_PROFILE: &str = "gh100";
/// The stress boot's hot-unplug cycles (each asked for by the guest).
const HOTPLUG_CYCLES: usize = 20;
/// What `nova-info` prints when no GPU is bound to Nova.
const NO_DEVICES: &str = "no Nova devices found";

/// Nova's name of an architecture (as its probe and refusal lines print it).
fn arch_name(architecture: u8) -> &'static str {
    match architecture {
        0x14 => "Volta",
        0x16 => "Turing",
        0x17 => "Ampere",
        0x18 => "Hopper",
        0x19 => "Ada",
        0x1a | 0x1b => "Blackwell",
        _ => "unknown",
    }
}

/// A revision byte as Nova prints it: its two nibbles as upper-case hex digits (0xa1: `A1`).
fn revision_text(revision: u8) -> String {
    format!("{:X}{:X}", revision >> 4, revision & 0xf)
}

/// A BAR size as Nova prints it: `N GiB` when a whole number of GiB, else `N MiB`.
fn size_text(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    if bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// `nova_test`'s `--expect` value for a GPU of profile `p`: `NAME:BAR1:REV` (hex).
fn expect_arg(p: &Profile) -> String {
    format!("{}:{:#x}:{:#04x}", p.name, p.bar1_size, p.revision_id())
}

/// Every profile Nova binds: those that need GSP firmware (all but gv100 and dead).
fn gsp_profiles() -> Vec<&'static Profile> {
    PROFILES.iter().filter(|p| needs_gsp_firmware(p)).collect()
}

/// The GPU of the `gsp` boot whose `NV_PMC_BOOT_0` reads an architecture of zero, and that
/// value: Nova must identify it from `NV_PMC_BOOT_42` (which the profile keeps) instead.
const BOOT42_ONLY: (&str, u32) = ("gb207", 0x0000_00a1);

/// The model's overrides of a GPU of the `gsp` boot: [`BOOT42_ONLY`]'s BOOT0, none for the others.
fn gsp_overrides(p: &Profile) -> Overrides {
    Overrides {
        boot0: (p.name == BOOT42_ONLY.0).then_some(BOOT42_ONLY.1),
        ..Overrides::default()
    }
}

/// The `gsp` boot's test: every GPU of `profiles` bound, its uAPI checked.
fn gsp_command(profiles: &[&Profile]) -> String {
    let mut c = format!("{NOVA_TEST} --module {NOVA_KO}");
    for p in profiles {
        c.push_str(&format!(" --expect {}", expect_arg(p)));
    }
    c
}

/// The stress boot's test: 100 unbind/bind cycles, 20 module cycles, 4 workers, and
/// [`HOTPLUG_CYCLES`] hot-unplugs asked of the host.
fn stress_command() -> String {
    let p = gpu::profile(STRESS_PROFILE).expect("a profile of the model");
    format!(
        "{NOVA_TEST} --module {NOVA_KO} --expect {} --cycles 100 --module-cycles 20 \
         --workers 4 --hotplug-cycles {HOTPLUG_CYCLES}",
        expect_arg(p)
    )
}

/// The line Nova prints when it binds a GPU of profile `p`, after `nova <BDF>: `.
fn bound_line(p: &Profile) -> String {
    format!(
        "NVIDIA {} ({}), revision {}, BAR1 {}: DRM device registered",
        p.name.to_uppercase(),
        arch_name(p.chip.architecture()),
        revision_text(p.revision_id()),
        size_text(p.bar1_size)
    )
}

/// The two parts of `nova-info`'s line for a GPU of profile `p`, around its PCI address.
fn nova_info_parts(p: &Profile) -> (String, String) {
    (
        format!(
            ": NVIDIA {} ({}) rev {}, PCI ",
            p.name.to_uppercase(),
            arch_name(p.chip.architecture()),
            revision_text(p.revision_id())
        ),
        format!(", BAR1 {}, nodes card", size_text(p.bar1_size)),
    )
}

/// A GPU Nova must refuse: its profile, the model's overrides, and the line Nova prints
/// (after `nova <BDF>: `).
struct Refusal {
    /// A name for the test.
    name: &'static str,
    profile: &'static str,
    overrides: Overrides,
    line: String,
}

/// The refusal line for `boot0`, as read from a GPU of profile `p` (`p.boot0()` unless
/// overridden); `None` when Nova knows the chip.
fn refusal_line(p: &Profile, boot0: u32) -> Option<String> {
    let Some(chip) = ChipId::from_boot0(boot0) else {
        return Some(format!(
            "BOOT0 reads {ALL_ONES:#010x}: the GPU does not answer (gone or not powered)"
        ));
    };
    let (arch, chipset) = (chip.architecture(), chip.chipset());
    let known_chipset = PROFILES
        .iter()
        .any(|q| !q.dead && q.chip.chipset() == chipset);
    if arch_name(arch) == "unknown" {
        Some(format!(
            "unknown architecture {arch:#x} (BOOT0 {boot0:#010x}), not supported by nova"
        ))
    } else if !known_chipset {
        Some(format!(
            "unknown chipset {chipset:#x} (BOOT0 {boot0:#010x}), not supported by nova"
        ))
    } else if !p.gsp_capable() {
        let name = arch_name(arch);
        Some(format!(
            "chipset {chipset:#x} ({name}), revision {}: {name}, not supported by nova; use \
             nouveau",
            revision_text(chip.revision())
        ))
    } else {
        None
    }
}

/// What the `refusals` boot attaches (no firmware in that boot): a pre-GSP GPU (gv100), an
/// unknown architecture and an unknown chipset given to the model with `--boot0`, a GPU that
/// does not answer (dead), and a GSP GPU whose firmware is missing (tu102).
fn refusals() -> Vec<Refusal> {
    let with_boot0 = |name, profile, boot0| {
        let p = gpu::profile(profile).expect("a profile of the model");
        Refusal {
            name,
            profile,
            overrides: Overrides {
                boot0: Some(boot0),
                ..Overrides::default()
            },
            line: refusal_line(p, boot0).expect("an unknown chip"),
        }
    };
    let plain = |name, profile| {
        let p = gpu::profile(profile).expect("a profile of the model");
        let boot0 = if p.dead { ALL_ONES } else { p.boot0() };
        Refusal {
            name,
            profile,
            overrides: Overrides::default(),
            line: refusal_line(p, boot0).unwrap_or_else(|| {
                format!(
                    "missing firmware {} (error -2)",
                    firmware_name(p.name, GSP_FILES[0])
                )
            }),
        }
    };
    vec![
        plain("pre-gsp-gv100", "gv100"),
        with_boot0("unknown-architecture", "ga102", 0x1f00_00a1),
        with_boot0("unknown-chipset", "tu104", 0x1690_00a1),
        plain("dead", "dead"),
        plain("missing-firmware-tu102", "tu102"),
    ]
}

/// The `refusals` boot's test: each refusal line in the kernel log, no device bound.
fn refusal_command(refusals: &[Refusal]) -> String {
    let mut c = format!("{NOVA_TEST} --module {NOVA_KO}");
    for r in refusals {
        c.push_str(&format!(" --expect-line '{}'", r.line));
    }
    c
}

/// The guest command that loads Nova, so that `nova-info` runs before `nova_test`, which
/// unloads Nova when it ends (and loads it itself when it is not loaded).
fn load_nova() -> String {
    format!("insmod {NOVA_KO}")
}

/// The kernel console lines of `console` (those with a `[ time]` stamp), their text.
fn kernel_lines(console: &str) -> impl Iterator<Item = &str> {
    console.lines().filter_map(|l| {
        let rest = l.strip_prefix('[')?;
        Some(rest.split_once("] ").map_or(rest, |(_, t)| t))
    })
}

/// Test `name`: a kernel line of Nova's (`nova <BDF>: ...`) contains `text`.
fn nova_line_test(name: String, console: &str, text: &str) -> TestResult {
    let seen = kernel_lines(console).any(|t| t.starts_with("nova ") && t.contains(text));
    let problems = if seen {
        vec![]
    } else {
        vec![format!("no `nova <BDF>: {text}` line in the kernel log")]
    };
    check(name, problems)
}

/// The `gsp` boot's own checks on its console: each profile's probe line, and `nova-info`
/// listing each GPU once (one `GPU N: ...` line each, with its chip, revision and BAR1).
fn gsp_checks(console: &str, profiles: &[&Profile]) -> Vec<TestResult> {
    let info: Vec<&str> = console
        .lines()
        .filter(|l| !l.starts_with('[') && l.starts_with("GPU "))
        .collect();
    let mut tests = Vec::new();
    for p in profiles {
        tests.push(nova_line_test(
            format!("nova-stub.probe-line.{}", p.name),
            console,
            &bound_line(p),
        ));
        let (head, tail) = nova_info_parts(p);
        let found = info
            .iter()
            .filter(|l| l.contains(&head) && l.contains(&tail))
            .count();
        let problems = if found == 1 {
            vec![]
        } else {
            vec![format!(
                "{found} nova-info line(s) with `{head}...{tail}`, 1 wanted"
            )]
        };
        tests.push(check(format!("nova-stub.nova-info.{}", p.name), problems));
    }
    let problems = if info.len() == profiles.len() {
        vec![]
    } else {
        vec![format!(
            "nova-info listed {} GPU(s), {} bound",
            info.len(),
            profiles.len()
        )]
    };
    tests.push(check("nova-stub.nova-info.count", problems));
    tests
}

/// The `refusals` boot's own checks: each refusal line, no DRM device registered, and
/// `nova-info` saying there is no Nova device.
fn refusal_checks(console: &str, refusals: &[Refusal]) -> Vec<TestResult> {
    let mut tests: Vec<TestResult> = refusals
        .iter()
        .map(|r| nova_line_test(format!("nova-stub.refused.{}", r.name), console, &r.line))
        .collect();
    let registered: Vec<&str> = kernel_lines(console)
        .filter(|t| t.starts_with("nova ") && t.contains("DRM device registered"))
        .collect();
    tests.push(check(
        "nova-stub.refused.none-bound",
        registered.iter().map(|l| format!("bound: {l}")).collect(),
    ));
    let listed = console
        .lines()
        .any(|l| !l.starts_with('[') && l.trim() == NO_DEVICES);
    let problems = if listed {
        vec![]
    } else {
        vec![format!("no `{NO_DEVICES}` line from nova-info")]
    };
    tests.push(check("nova-stub.refused.nova-info", problems));
    tests
}

/// One boot of the suite.
struct NovaBoot {
    /// The boot's name (run folder, test prefix).
    name: &'static str,
    /// Its GPUs, in order (`gpu0` first).
    gpus: Vec<(&'static Profile, Overrides)>,
    /// Whether the fake GSP firmware is packed.
    firmware: bool,
    /// What the guest runs after loading Nova's dependencies.
    run_lines: Vec<String>,
    /// Whether the host answers the guest's hot-unplug requests ([`HOTPLUG_CYCLES`]).
    hotplug: bool,
}

/// What one boot left for the checks.
struct Booted {
    suite: SuiteResult,
    console: String,
    /// The models' ready lines, in GPU order.
    ready: Vec<String>,
}

/// Boots `b` on `built` (models from `bin`, `programs` packed; `deps` loaded first).
fn boot(
    ctx: &Ctx,
    tc: &Toolchain,
    built: &Built,
    bin: &Path,
    programs: &[PathBuf],
    deps: &str,
    b: &NovaBoot,
) -> Result<Booted> {
    let dir = ctx.build.join("run").join(format!("nova-stub-{}", b.name));
    let mut models = Vec::new();
    for (i, (p, o)) in b.gpus.iter().enumerate() {
        models.push(gpu::Model::start(
            bin,
            p.name,
            o,
            &dir.join(format!("gpu{i}")),
        )?);
    }
    let mut run_lines = vec![deps.to_string()];
    run_lines.extend(b.run_lines.iter().cloned());
    let name = format!("nova-stub-{}", b.name);
    let plan = BootPlan {
        name: &name,
        kernel: &built.kernel,
        programs: programs.to_vec(),
        modules: built.modules.clone(),
        files: if b.firmware {
            all_gsp_firmware()
        } else {
            Vec::new()
        },
        run_lines,
        gpus: models
            .iter()
            .map(|m| Gpu::Model(m.socket.clone()))
            .collect(),
        devices: Vec::new(),
        expect_suites: EXPECT_SUITES,
        echo: false,
        append: Vec::new(),
        hotplug_on: b.hotplug.then_some(HOTPLUG_MARKER),
        hotplug_cycles: b.hotplug.then_some(HOTPLUG_CYCLES),
    };
    let (mut suite, res) = boot_suite(ctx, tc, plan)?;
    add_boot_notes(ctx, &mut suite, &res.console)?;
    let ready = models.iter().map(|m| m.ready.clone()).collect();
    drop(models);
    Ok(Booted {
        suite,
        console: res.console,
        ready,
    })
}

/// The suite's three boots (see the module documentation).
fn boots() -> Vec<NovaBoot> {
    let plain = |p: &'static Profile| (p, Overrides::default());
    let gsp = gsp_profiles();
    let stress = gpu::profile(STRESS_PROFILE).expect("a profile of the model");
    let refused = refusals();
    vec![
        NovaBoot {
            name: "gsp",
            gpus: gsp.iter().map(|p| (*p, gsp_overrides(p))).collect(),
            firmware: true,
            run_lines: vec![load_nova(), NOVA_INFO.to_string(), gsp_command(&gsp)],
            hotplug: false,
        },
        NovaBoot {
            name: "refusals",
            gpus: refused
                .iter()
                .map(|r| {
                    let p = gpu::profile(r.profile).expect("a profile of the model");
                    (p, r.overrides)
                })
                .collect(),
            firmware: false,
            run_lines: vec![
                load_nova(),
                NOVA_INFO.to_string(),
                refusal_command(&refused),
            ],
            hotplug: false,
        },
        NovaBoot {
            name: "stress",
            gpus: vec![plain(stress)],
            firmware: true,
            run_lines: vec![
                KMEMLEAK_BASELINE.to_string(),
                stress_command(),
                KMEMLEAK_CHECK.to_string(),
            ],
            hotplug: true,
        },
    ]
}

/// Test `name`: the `index`th model's ready line shows the BOOT0 its overrides gave it.
fn override_test(name: String, ready: Option<&String>, o: &Overrides) -> Option<TestResult> {
    let boot0 = o.boot0?;
    let want = format!("BOOT0 {boot0:08x}");
    let problems = match ready {
        Some(r) if r.contains(&want) => vec![],
        Some(r) => vec![format!("the model's ready line has no `{want}`: {r}")],
        None => vec!["no model".to_string()],
    };
    Some(check(name, problems))
}

/// `nova-stub`: see the module documentation.
pub fn run(ctx: &Ctx, tc: &Toolchain) -> Result<SuiteResult> {
    // The per-commit configuration has kmemleak (the leak check after the cycles) and users and
    // capabilities, without which every file passes DRM's authentication (the guest runs as
    // root, and tinyconfig's `capable()` is always true).
    let built = topic_images(ctx, tc, BRANCH)?;
    // nova_test loads Nova itself; whatever Nova's modinfo says it needs goes first.
    let deps = insmod_line(&build_load_order(&built.modules, &[NOVA_MODULE], false)?);
    let bin = gpu::build_model(&ctx.repo, &ctx.logs())?;
    let programs = guest_programs(ctx, &[NOVA_TEST])?;
    let mut all = SuiteResult::new("nova-stub");
    let profiles = gsp_profiles();
    let refused = refusals();
    for b in boots() {
        let done = boot(ctx, tc, &built, &bin, &programs, &deps, &b)?;
        let mut tests = done.suite.tests;
        match b.name {
            "gsp" => {
                tests.extend(gsp_checks(&done.console, &profiles));
                for (i, p) in profiles.iter().enumerate() {
                    let name = format!("nova-stub.model-override.{}-boot0", p.name);
                    tests.extend(override_test(name, done.ready.get(i), &gsp_overrides(p)));
                }
            }
            "refusals" => {
                tests.extend(refusal_checks(&done.console, &refused));
                for (i, r) in refused.iter().enumerate() {
                    let name = format!("nova-stub.model-override.{}", r.name);
                    tests.extend(override_test(name, done.ready.get(i), &r.overrides));
                }
            }
            _ => {}
        }
        for mut t in tests {
            t.name = format!("{}:{}", b.name, t.name);
            all.tests.push(t);
        }
        all.notes.push(format!(
            "{}: {} GPU(s): {}",
            b.name,
            b.gpus.len(),
            b.run_lines.join(" ; ")
        ));
        all.notes.extend(
            done.suite
                .notes
                .into_iter()
                .map(|n| format!("{}: {n}", b.name)),
        );
    }
    // Built, not booted: the tip for arm64 (the series' C-helper MMIO accessors among others),
    // and with the oldest rustc Debian gives us.
    all.tests.push(variant_build(
        ctx,
        tc,
        BRANCH,
        Variant::Arch("arm64"),
        "nova-stub.build.arm64",
    )?);
    all.tests.push(variant_build(
        ctx,
        tc,
        BRANCH,
        Variant::OldestRustc,
        "nova-stub.build.oldest_rustc",
    )?);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::ktap::Outcome;

    fn p(name: &str) -> &'static Profile {
        gpu::profile(name).unwrap()
    }

    #[test]
    fn every_gsp_profile_is_expected_with_its_bar1_and_revision() {
        let gsp = gsp_profiles();
        assert_eq!(gsp.len(), 24);
        assert!(!gsp.iter().any(|p| p.name == "gv100" || p.name == "dead"));
        assert_eq!(expect_arg(p("gh100")), "gh100:0x2000000000:0xa1");
        assert_eq!(expect_arg(p("tu102")), "tu102:0x10000000:0xa1");
        assert_eq!(expect_arg(p("gb100")), "gb100:0x4000000000:0xa1");
        let c = gsp_command(&gsp);
        assert!(c.starts_with(
            "nova_test --module /lib/modules/nova.ko --expect tu102:0x10000000:0xa1 \
             --expect tu104:0x10000000:0xa1 "
        ));
        assert_eq!(c.matches(" --expect ").count(), 24);
        assert!(c.ends_with(" --expect gb207:0x10000000:0xa1"), "{c}");
    }

    #[test]
    fn one_gsp_gpu_is_identified_through_boot42() {
        let overridden: Vec<&str> = gsp_profiles()
            .into_iter()
            .filter(|p| gsp_overrides(p).boot0.is_some())
            .map(|p| p.name)
            .collect();
        assert_eq!(overridden, ["gb207"]);
        // BOOT0's architecture field (bits 28:24 and 8) reads zero, BOOT42 still names GB207.
        let boot0 = gsp_overrides(p("gb207")).boot0.unwrap();
        assert_eq!(boot0 & 0x1f00_0100, 0);
        assert_eq!(p("gb207").boot42() >> 24 & 0x3f, 0x1b);
    }

    #[test]
    fn the_stress_command_is_the_one_documented() {
        assert_eq!(
            stress_command(),
            "nova_test --module /lib/modules/nova.ko --expect gh100:0x2000000000:0xa1 \
             --cycles 100 --module-cycles 20 --workers 4 --hotplug-cycles 20"
        );
    }

    /// The lines of the interface contract, without their `nova <BDF>: ` prefix.
    #[test]
    fn nova_s_lines_are_those_of_the_contract() {
        assert_eq!(
            bound_line(p("gh100")),
            "NVIDIA GH100 (Hopper), revision A1, BAR1 128 GiB: DRM device registered"
        );
        assert_eq!(
            bound_line(p("ad102")),
            "NVIDIA AD102 (Ada), revision A1, BAR1 256 MiB: DRM device registered"
        );
        assert!(bound_line(p("gb202")).contains("(Blackwell)"));
        let lines: Vec<(&str, String)> = refusals().into_iter().map(|r| (r.name, r.line)).collect();
        assert_eq!(
            lines,
            [
                (
                    "pre-gsp-gv100",
                    "chipset 0x140 (Volta), revision A1: Volta, not supported by nova; use \
                     nouveau"
                        .to_string()
                ),
                (
                    "unknown-architecture",
                    "unknown architecture 0x1f (BOOT0 0x1f0000a1), not supported by nova".into()
                ),
                (
                    "unknown-chipset",
                    "unknown chipset 0x169 (BOOT0 0x169000a1), not supported by nova".into()
                ),
                (
                    "dead",
                    "BOOT0 reads 0xffffffff: the GPU does not answer (gone or not powered)".into()
                ),
                (
                    "missing-firmware-tu102",
                    "missing firmware nvidia/tu102/gsp/booter_load-535.113.01.bin (error -2)"
                        .into()
                ),
            ]
        );
        assert_eq!(refusal_line(p("gh100"), p("gh100").boot0()), None);
    }

    #[test]
    fn the_refusal_boot_quotes_each_line_and_binds_nothing() {
        let r = refusals();
        let c = refusal_command(&r);
        assert!(c.starts_with("nova_test --module /lib/modules/nova.ko --expect-line '"));
        assert_eq!(c.matches(" --expect-line '").count(), r.len());
        assert!(
            !c.contains(" --expect "),
            "no device is expected bound: {c}"
        );
        assert!(r.iter().all(|r| !r.line.contains('\'')));
        let b = boots();
        let refusals = b.iter().find(|b| b.name == "refusals").unwrap();
        assert!(!refusals.firmware);
        let names: Vec<&str> = refusals.gpus.iter().map(|(p, _)| p.name).collect();
        assert_eq!(names, ["gv100", "ga102", "tu104", "dead", "tu102"]);
        assert_eq!(refusals.gpus[1].1.boot0, Some(0x1f00_00a1));
    }

    #[test]
    fn the_boots_are_what_the_suite_documents() {
        let b = boots();
        let names: Vec<&str> = b.iter().map(|b| b.name).collect();
        assert_eq!(names, ["gsp", "refusals", "stress"]);
        assert_eq!(b[0].gpus.len(), 24);
        assert!(b[0].firmware && !b[0].hotplug);
        assert_eq!(
            b[0].run_lines[..2],
            [
                "insmod /lib/modules/nova.ko".to_string(),
                "nova-info".to_string()
            ]
        );
        let s = &b[2];
        assert!(s.firmware && s.hotplug);
        assert_eq!(s.gpus.len(), 1);
        assert_eq!(s.gpus[0].0.name, "gh100");
        assert_eq!(
            s.run_lines,
            [
                KMEMLEAK_BASELINE.to_string(),
                stress_command(),
                KMEMLEAK_CHECK.to_string()
            ]
        );
    }

    #[test]
    fn sizes_and_revisions_are_printed_as_nova_prints_them() {
        assert_eq!(size_text(256 << 20), "256 MiB");
        assert_eq!(size_text(64 << 30), "64 GiB");
        assert_eq!(size_text(1536 << 20), "1536 MiB");
        assert_eq!(revision_text(0xa1), "A1");
        assert_eq!(revision_text(0xb2), "B2");
    }

    /// A console as the `gsp` boot would leave it for two GPUs.
    fn gsp_console() -> String {
        "[    1.2] nova 0000:02:00.0: NVIDIA TU102 (Turing), revision A1, BAR1 256 MiB: DRM device registered\n\
         [    1.3] nova 0000:01:00.0: NVIDIA GH100 (Hopper), revision A1, BAR1 128 GiB: DRM device registered\n\
         nova-init: run nova-info\n\
         GPU 0: NVIDIA GH100 (Hopper) rev A1, PCI 0000:01:00.0, BAR1 128 GiB, nodes card1 renderD129\n\
         GPU 1: NVIDIA TU102 (Turing) rev A1, PCI 0000:02:00.0, BAR1 256 MiB, nodes card0 renderD128\n"
            .to_string()
    }

    fn failed(tests: &[TestResult]) -> Vec<&str> {
        tests
            .iter()
            .filter(|t| t.outcome == Outcome::Fail)
            .map(|t| t.name.as_str())
            .collect()
    }

    #[test]
    fn the_gsp_boot_needs_each_probe_line_and_nova_info_line() {
        let both = [p("tu102"), p("gh100")];
        let tests = gsp_checks(&gsp_console(), &both);
        assert_eq!(tests.len(), 5);
        assert!(failed(&tests).is_empty(), "{tests:?}");
        // A GPU bound with the wrong BAR1, one missing from nova-info.
        let bad = gsp_console()
            .replace("BAR1 128 GiB: DRM", "BAR1 64 GiB: DRM")
            .replace("GPU 1: NVIDIA TU102", "GPU 1: NVIDIA TU104");
        assert_eq!(
            failed(&gsp_checks(&bad, &both)),
            ["nova-stub.nova-info.tu102", "nova-stub.probe-line.gh100"]
        );
        // nova-info must list each GPU once, and no more GPUs than were bound.
        let tests = gsp_checks(&gsp_console(), &[p("gh100")]);
        assert_eq!(failed(&tests), ["nova-stub.nova-info.count"]);
    }

    #[test]
    fn the_refusal_boot_needs_its_lines_and_no_device() {
        let r = refusals();
        let mut console: String = r
            .iter()
            .enumerate()
            .map(|(i, r)| format!("[    1.{i}] nova 0000:0{i}:00.0: {}\n", r.line))
            .collect();
        console.push_str("nova-init: run nova-info\nno Nova devices found\n");
        assert!(failed(&refusal_checks(&console, &r)).is_empty());
        let bound = console.replace(
            "no Nova devices found",
            "GPU 0: NVIDIA TU102 (Turing) rev A1, PCI 0000:05:00.0, BAR1 256 MiB, nodes card0",
        ) + "[    2.0] nova 0000:05:00.0: NVIDIA TU102 (Turing), revision A1, BAR1 256 MiB: DRM device registered\n";
        let bound = bound.replace("missing firmware", "firmware");
        assert_eq!(
            failed(&refusal_checks(&bound, &r)),
            [
                "nova-stub.refused.missing-firmware-tu102",
                "nova-stub.refused.none-bound",
                "nova-stub.refused.nova-info"
            ]
        );
        // The line must be Nova's, in the kernel log: not nova_test's echo of it.
        let echoed = format!("    # expecting '{}'\n", r[0].line);
        assert!(!failed(&refusal_checks(&echoed, &r[..1])).is_empty());
    }

    #[test]
    fn the_override_shows_in_the_model_s_ready_line() {
        let o = Overrides {
            boot0: Some(0x1f00_00a1),
            ..Overrides::default()
        };
        let ready = "gpu-model: ready: ga102 (GeForce RTX 3090, 10de:2204, class 030000, BOOT0 1f0000a1, BOOT42 172a1000, BAR1 256M) on s in 100 us".to_string();
        let t = override_test("x".into(), Some(&ready), &o).unwrap();
        assert_eq!(t.outcome, Outcome::Pass);
        let plain = ready.replace("1f0000a1", "172000a1");
        let t = override_test("x".into(), Some(&plain), &o).unwrap();
        assert_eq!(t.outcome, Outcome::Fail);
        assert!(override_test("x".into(), None, &Overrides::default()).is_none());
    }
}
