//! Suite `nova-stub`: nova/stub as series/ has it, built once with its fragments, kmemleak and
//! users and capabilities (`kconfig/multiuser.config`), booted three times with emulated GPUs
//! (each boot also runs the kernel's Rust doctests):
//!
//! - `gsp`: every profile Nova drives (all but gv100 and dead: 24 today) in one boot, with
//!   the real GSP firmware of Debian's `firmware-nvidia-graphics` (only the files Nova
//!   requests, [`gsp_firmware`]), one of them ([`BOOT0_DISAGREES`]) with a BOOT0 that names
//!   another chip, so that Nova must go by BOOT42; once Nova is loaded `nova-info` lists them,
//!   then `nova_test` checks each GPU through its uAPI ([`gsp_command`]); the suite checks each
//!   probe line and `nova-info` line.
//! - `refusals`: what Nova must refuse ([`refusals`], [`wrong_files`]): each refusal line
//!   (identification, a missing file, firmware files made wrong from the real ones), and the
//!   GPUs of [`GOOD`] bound beside them, nothing else.
//! - `stress`: one gh100 with kmemleak: unbind/bind, module and hot-unplug cycles over QMP
//!   ([`stress_command`]), kmemleak clean afterwards.
//!
//! And without a boot: every `firmware=` entry of Nova's `modinfo` is a file of the package
//! (links resolved).
//!
//! One boot of 24 GPUs is used rather than several smaller ones: measured on the base kernel
//! with the guest probe (2026-12-02, TCG, this 2-core machine), a boot with 6 GPUs took 2.0 s,
//! 12 took 2.5 s, 24 took 3.7 s (the kernel reached init at 0.89, 0.90, 1.35 s), so a GPU costs
//! ~0.1 s while every boot adds its fixed cost (the kernel, the doctests: ~1.5-2 s without,
//! several seconds with them on a kmemleak build) again.

use crate::boot::faults::FaultPlan;
use crate::boot::firmware::{
    firmware_name, gsp_firmware, modinfo_firmware, needs_gsp_firmware, resolve,
};
use crate::boot::gpu;
use crate::boot::modules::{build_load_order, insmod_line, NOVA_MODULE};
use crate::boot::qemu::Gpu;
use crate::boot::{boot_suite, guest_programs, BootPlan, BOOT_TIMEOUT, NOVA_INFO};
use crate::builds::kbuild::Built;
use crate::builds::{topic_images, variant_build, Variant};
use crate::ctx::Ctx;
use crate::results::report::{check, SuiteResult, TestResult};
use crate::setup::Toolchain;
use crate::setup::PCI_IDS;
use crate::suites::rust_device::{add_boot_notes, KMEMLEAK_BASELINE, KMEMLEAK_CHECK};
use anyhow::{Context, Result};
use gpu_model::profile::{Overrides, Profile, NVIDIA_VENDOR_ID, PROFILES};
use nova::pci_ids::{self, Database, PciIds};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// The GPU of the `gsp` boot whose `NV_PMC_BOOT_0` names another chip (GA102, revision A1),
/// and that value: Nova must identify it from `NV_PMC_BOOT_42` (which the profile keeps), as
/// nova-core does.
const BOOT0_DISAGREES: (&str, u32) = ("gb207", 0x1720_00a1);

/// The model's overrides of a GPU of the `gsp` boot: [`BOOT0_DISAGREES`]'s BOOT0, none for the
/// others.
fn gsp_overrides(p: &Profile) -> Overrides {
    Overrides {
        boot0: (p.name == BOOT0_DISAGREES.0).then_some(BOOT0_DISAGREES.1),
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

/// The PCI IDs of a GPU of profile `p`.
fn pci_ids_of(p: &Profile) -> PciIds {
    PciIds {
        vendor: NVIDIA_VENDOR_ID,
        device: p.device_id,
        revision: p.revision_id(),
    }
}

/// The two parts of `nova-info`'s line for a GPU of profile `p`, around its PCI address: its
/// name is lspci's, from the database `db` the guests get.
fn nova_info_parts(p: &Profile, db: &Database) -> (String, String) {
    (
        format!(": {}, PCI ", pci_ids::name(Some(db), &pci_ids_of(p))),
        format!(", BAR1 {}, nodes card", size_text(p.bar1_size)),
    )
}

/// What is wrong with `profiles` against the PCI ID database `db`: each must be a real board,
/// its device ID named `<CHIP>[suffix] [<board>]` under NVIDIA, where `<CHIP>` is the chip of
/// the profile (for `dead`, that of the profile with its chip) and `<board>` its board (for
/// `dead`, the text before its first comma).
fn profile_problems(db: &Database, profiles: &[Profile]) -> Vec<String> {
    let mut problems = Vec::new();
    for p in profiles {
        let live = profiles.iter().find(|q| !q.dead && q.chip == p.chip);
        let Some(live) = live else {
            problems.push(format!("{}: no live profile has its chip", p.name));
            continue;
        };
        let chip = live.name.to_uppercase();
        let board = p.board.split(',').next().unwrap_or(p.board);
        let want = format!("{chip} [{board}]");
        match db.lookup(NVIDIA_VENDOR_ID, p.device_id) {
            (Some("NVIDIA Corporation"), Some(name)) => {
                let fits = name
                    .strip_prefix(chip.as_str())
                    .and_then(|rest| rest.split_once(" ["))
                    .is_some_and(|(suffix, rest)| {
                        suffix.chars().all(|c| c.is_ascii_uppercase())
                            && rest.strip_suffix(']') == Some(board)
                    });
                if !fits {
                    problems.push(format!(
                        "{}: {:04x} is `{name}` in the database, not `{want}`",
                        p.name, p.device_id
                    ));
                }
            }
            (vendor, _) => problems.push(format!(
                "{}: the database has no device {:04x} of NVIDIA (vendor: {vendor:?}); `{want}` \
                 wanted",
                p.name, p.device_id
            )),
        }
    }
    problems
}

/// Test `nova-stub.profiles.in-pci-ids`: every profile of the model is a real board of the
/// PCI ID database the guests get ([`profile_problems`]); the database's version goes to
/// `notes`.
fn profiles_test(tc: &Toolchain, notes: &mut Vec<String>) -> Result<(TestResult, Database)> {
    let path = tc.rootfs.join(PCI_IDS);
    let db = Database::load(&path)?;
    let version =
        std::fs::read_to_string(tc.rootfs.join("etc/nova-pci-ids-version")).unwrap_or_default();
    notes.push(format!(
        "{} profiles checked against pci.ids {}",
        PROFILES.len(),
        version.trim()
    ));
    let test = check(
        "nova-stub.profiles.in-pci-ids",
        profile_problems(&db, PROFILES),
    );
    Ok((test, db))
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

/// The GPUs of the `refusals` boot that Nova binds, with their real firmware: the module goes on
/// driving GPUs beside those it refuses, one of each boot flow.
const GOOD: [&str; 2] = ["ga107", "gb202"];

/// What Nova must refuse before it requests any firmware, and a chip whose firmware is missing
/// (tu102: none of its files is packed). The register values are the model's `--boot0` and
/// `--boot42`; BOOT42's fields are architecture 29:24, implementation 23:20, revision 19:12.
fn refusals() -> Vec<Refusal> {
    let case = |name, profile, boot0, boot42, line: &str| Refusal {
        name,
        profile,
        overrides: Overrides {
            boot0,
            boot42,
            ..Overrides::default()
        },
        line: line.to_string(),
    };
    vec![
        case(
            "pre-gsp-gv100",
            "gv100",
            None,
            None,
            "chipset 0x140 (Volta), revision A1: not supported by nova; use nouveau",
        ),
        // A GT200's BOOT0 (architecture 0x0a) and a BOOT42 that names a GB207: BOOT42 is
        // never read on a GPU older than Fermi.
        case(
            "pre-fermi",
            "tu106",
            Some(0x0a00_00a1),
            Some(0x1b7a_1000),
            "BOOT0 0x0a0000a1: a GPU older than Fermi, not supported by nova; use nouveau",
        ),
        case(
            "unknown-architecture",
            "ga102",
            None,
            Some(0x1f2a_1000),
            "unknown architecture 0x1f (BOOT42 0x1f2a1000), not supported by nova",
        ),
        case(
            "unknown-chipset",
            "tu104",
            None,
            Some(0x169a_1000),
            "unknown chipset 0x169 (BOOT42 0x169a1000), not supported by nova",
        ),
        case(
            "dead",
            "dead",
            None,
            None,
            "BOOT0 reads 0xffffffff: the GPU does not answer (gone or not powered)",
        ),
        case(
            "boot42-all-ones",
            "ga103",
            None,
            Some(0xffff_ffff),
            "BOOT42 reads 0xffffffff: the GPU does not answer (gone or not powered)",
        ),
        case(
            "missing-firmware-tu102",
            "tu102",
            None,
            None,
            &format!(
                "missing firmware {} (error -2)",
                firmware_name("tu102", "booter_load")
            ),
        ),
    ]
}

/// How a wrong firmware file is made from the package's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Make {
    /// The chip's real file, cut to this many bytes.
    Truncated(usize),
    /// An empty file: the kernel's firmware loader refuses it (`EINVAL`) before Nova sees it,
    /// as a run showed, so Nova names it as a file it cannot load.
    Empty,
    /// Another real file, by its firmware name.
    CopyOf(&'static str),
}

/// A firmware file of a chip made wrong for a refusal case; the chip's other files are real.
struct WrongFile {
    /// A name for the test.
    name: &'static str,
    /// The chip (a profile that no other case of the boot uses).
    profile: &'static str,
    /// The file (as Nova names it, without the chip and release).
    file: &'static str,
    make: Make,
}

/// The wrong firmware files of the `refusals` boot: each defect Nova checks, on each flow.
fn wrong_files() -> Vec<WrongFile> {
    let w = |name, profile, file, make| WrongFile {
        name,
        profile,
        file,
        make,
    };
    vec![
        w(
            "truncated-booter",
            "ga104",
            "booter_load",
            Make::Truncated(4096),
        ),
        w(
            "not-an-nvidia-binary",
            "ad104",
            "bootloader",
            Make::CopyOf("nvidia/gh100/gsp/fmc-570.144.bin"),
        ),
        w("empty-fmc", "gb203", "fmc", Make::Empty),
        w(
            "fmc-not-elf32",
            "gb205",
            "fmc",
            Make::CopyOf("nvidia/tu102/gsp/booter_load-570.144.bin"),
        ),
        w(
            "gsp-of-another-family",
            "gb206",
            "gsp",
            Make::CopyOf("nvidia/tu102/gsp/gsp-570.144.bin"),
        ),
        w("truncated-gsp", "ad106", "gsp", Make::Truncated(1 << 20)),
    ]
}

/// The little-endian `u32` at `at` of `data`.
fn le32(data: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b) as usize)
}

/// Wrong file `w`, made from the package `tree`: its firmware name and content, and the line
/// Nova must print for it. A truncated file's line names what the real file's headers need:
/// an NVIDIA binary's payload end (offset + size, header words 4 and 5), a GSP image's
/// section header table end (`e_shoff` + `e_shnum` * 64).
fn wrong_file(tree: &Path, w: &WrongFile) -> Result<(String, Vec<u8>, String)> {
    let name = firmware_name(w.profile, w.file);
    let read = |n: &str| -> Result<Vec<u8>> {
        let real = resolve(tree, n)?;
        std::fs::read(tree.join(&real)).with_context(|| format!("cannot read {real}"))
    };
    let (data, defect) = match w.make {
        Make::Empty => {
            let line = format!("cannot load firmware {name} (error -22)");
            return Ok((name, Vec::new(), line));
        }
        Make::Truncated(len) => {
            let real = read(&name)?;
            let need = if w.file == "gsp" {
                let shoff = le32(&real, 0x28).context("a GSP image's e_shoff")?;
                let shnum = u16::from_le_bytes([real[0x3c], real[0x3d]]) as usize;
                shoff + shnum * 64
            } else {
                le32(&real, 16).context("a payload offset")? + le32(&real, 20).context("a size")?
            };
            (
                real[..len].to_vec(),
                format!("truncated ({len} bytes, its headers need {need})"),
            )
        }
        Make::CopyOf(other) => {
            let data = read(other)?;
            let defect = match w.file {
                "fmc" => "not a 32-bit ELF image".to_string(),
                "gsp" => format!(
                    "no signature section .fwsignature_{} for this chip",
                    signature_family(w.profile)
                ),
                _ => format!(
                    "no NVIDIA binary header (magic {:#x}, not 0x10de)",
                    le32(&data, 0).context("a magic")?
                ),
            };
            (data, defect)
        }
    };
    let line = format!("firmware {name}: {defect}, refused");
    Ok((name, data, line))
}

/// The family of a chip's signature section in the GSP image, as linux-firmware 20260916's
/// images name them (`.fwsignature_<family>`, read with `readelf -S`).
fn signature_family(chip: &str) -> &'static str {
    match chip {
        "tu102" | "tu104" | "tu106" => "tu10x",
        "tu116" | "tu117" => "tu11x",
        "ga100" => "ga100",
        c if c.starts_with("ga10") => "ga10x",
        c if c.starts_with("ad10") => "ad10x",
        "gh100" => "gh100",
        "gb100" | "gb102" => "gb10x",
        _ => "gb20x",
    }
}

/// The `refusals` boot's test: each refusal line in the kernel log, the [`GOOD`] GPUs bound and
/// no other.
fn refusal_command(refusals: &[Refusal]) -> String {
    let mut c = format!("{NOVA_TEST} --module {NOVA_KO}");
    for p in GOOD {
        let p = gpu::profile(p).expect("a profile of the model");
        c.push_str(&format!(" --expect {}", expect_arg(p)));
    }
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
fn gsp_checks(console: &str, profiles: &[&Profile], db: &Database) -> Vec<TestResult> {
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
        let (head, tail) = nova_info_parts(p, db);
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

/// The `refusals` boot's own checks: each refusal line, and the [`GOOD`] GPUs bound (their
/// probe lines, `nova-info` listing them), no other.
fn refusal_checks(console: &str, refusals: &[Refusal], db: &Database) -> Vec<TestResult> {
    let mut tests: Vec<TestResult> = refusals
        .iter()
        .map(|r| nova_line_test(format!("nova-stub.refused.{}", r.name), console, &r.line))
        .collect();
    let good: Vec<&Profile> = GOOD
        .iter()
        .map(|p| gpu::profile(p).expect("a profile of the model"))
        .collect();
    let others: Vec<String> = kernel_lines(console)
        .filter(|t| t.starts_with("nova ") && t.contains("DRM device registered"))
        .filter(|t| !good.iter().any(|p| t.contains(&bound_line(p))))
        .map(|l| format!("bound: {l}"))
        .collect();
    tests.push(check("nova-stub.refused.only-good-bound", others));
    tests.extend(gsp_checks(console, &good, db).into_iter().map(|mut t| {
        t.name = t.name.replace("nova-stub.", "nova-stub.good.");
        t
    }));
    tests
}

/// One boot of the suite.
struct NovaBoot {
    /// The boot's name (run folder, test prefix).
    name: &'static str,
    /// Its GPUs, in order (`gpu0` first).
    gpus: Vec<(&'static Profile, Overrides)>,
    /// The chips whose real firmware is packed (the files Nova requests for them).
    firmware: Vec<&'static Profile>,
    /// The firmware files packed wrong instead ([`wrong_files`]).
    wrong: bool,
    /// What the guest runs after loading Nova's dependencies.
    run_lines: Vec<String>,
    /// How many of the guest's hot-unplug requests the host answers (0: none).
    hotplug: usize,
    /// How many fault requests the guest makes of the models ([`crate::boot::faults`]; 0:
    /// none, and none is served).
    faults: usize,
    /// The KTAP suites that must have run.
    expect_suites: &'static [&'static str],
    /// How long the boot may take.
    timeout: Duration,
}

/// What one boot left for the checks.
struct Booted {
    suite: SuiteResult,
    console: String,
    /// The models' ready lines, in GPU order.
    ready: Vec<String>,
}

/// Boots `b` on `built` (models from `bin`, `programs` packed; `deps` loaded first; firmware
/// from the package `tree`, with the wrong files `replaced` if `b` wants them).
#[allow(clippy::too_many_arguments)]
fn boot(
    ctx: &Ctx,
    tc: &Toolchain,
    built: &Built,
    bin: &Path,
    programs: &[PathBuf],
    deps: &str,
    b: &NovaBoot,
    (tree, replaced): (&Path, &BTreeMap<String, Vec<u8>>),
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
    let ready = models.iter().map(|m| m.ready.clone()).collect();
    let gpus = models
        .iter()
        .map(|m| Gpu::Model(m.socket.clone()))
        .collect();
    // The models go to the fault worker when the guest may ask for faults (one may be killed
    // during the boot); they stop when the boot ends either way.
    let (faults, models) = if b.faults > 0 {
        let plan = FaultPlan {
            models: Box::new(models),
            requests: b.faults,
        };
        (Some(plan), Vec::new())
    } else {
        (None, models)
    };
    let plan = BootPlan {
        name: &name,
        kernel: &built.kernel,
        programs: programs.to_vec(),
        modules: built.modules.clone(),
        files: gsp_firmware(
            tree,
            &b.firmware,
            if b.wrong { replaced } else { &NONE_REPLACED },
        )?,
        run_lines,
        gpus,
        devices: Vec::new(),
        expect_suites: b.expect_suites,
        echo: false,
        append: Vec::new(),
        hotplug_on: (b.hotplug > 0).then_some(HOTPLUG_MARKER),
        hotplug_cycles: (b.hotplug > 0).then_some(b.hotplug),
        faults,
        timeout: b.timeout,
    };
    let (mut suite, res) = boot_suite(ctx, tc, plan)?;
    add_boot_notes(ctx, &mut suite, &res.console)?;
    drop(models);
    Ok(Booted {
        suite,
        console: res.console,
        ready,
    })
}

/// No replaced firmware file.
static NONE_REPLACED: BTreeMap<String, Vec<u8>> = BTreeMap::new();

/// The suite's three boots (see the module documentation); `refused` are the refusals of the
/// `refusals` boot, [`refusals`] and those of [`wrong_files`].
fn boots(refused: &[Refusal]) -> Vec<NovaBoot> {
    let profile = |name: &str| gpu::profile(name).expect("a profile of the model");
    let plain = |p: &'static Profile| (p, Overrides::default());
    let gsp = gsp_profiles();
    let stress = profile(STRESS_PROFILE);
    let mut refusal_gpus: Vec<(&'static Profile, Overrides)> = refused
        .iter()
        .map(|r| (profile(r.profile), r.overrides))
        .collect();
    refusal_gpus.extend(GOOD.iter().map(|p| plain(profile(p))));
    let mut refusal_firmware: Vec<&'static Profile> =
        wrong_files().iter().map(|w| profile(w.profile)).collect();
    refusal_firmware.extend(GOOD.iter().map(|p| profile(p)));
    vec![
        NovaBoot {
            name: "gsp",
            gpus: gsp.iter().map(|p| (*p, gsp_overrides(p))).collect(),
            firmware: gsp.clone(),
            wrong: false,
            run_lines: vec![load_nova(), NOVA_INFO.to_string(), gsp_command(&gsp)],
            hotplug: 0,
            faults: 0,
            expect_suites: EXPECT_SUITES,
            timeout: BOOT_TIMEOUT,
        },
        NovaBoot {
            name: "refusals",
            gpus: refusal_gpus,
            firmware: refusal_firmware,
            wrong: true,
            run_lines: vec![load_nova(), NOVA_INFO.to_string(), refusal_command(refused)],
            hotplug: 0,
            faults: 0,
            expect_suites: EXPECT_SUITES,
            timeout: BOOT_TIMEOUT,
        },
        NovaBoot {
            name: "stress",
            gpus: vec![plain(stress)],
            firmware: vec![stress],
            wrong: false,
            run_lines: vec![
                KMEMLEAK_BASELINE.to_string(),
                stress_command(),
                KMEMLEAK_CHECK.to_string(),
            ],
            hotplug: HOTPLUG_CYCLES,
            faults: 0,
            expect_suites: EXPECT_SUITES,
            timeout: BOOT_TIMEOUT,
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

/// Test `nova-stub.firmware.in-package`: every `firmware=` entry of Nova's `modinfo` is a file
/// of the package `tree` (links resolved); their number goes to `notes`.
fn modinfo_test(built: &Built, tree: &Path, notes: &mut Vec<String>) -> Result<TestResult> {
    let ko = built
        .modules
        .iter()
        .find(|m| m.file_name().is_some_and(|n| n == "nova.ko"))
        .context("the build has no nova.ko")?;
    let data = std::fs::read(ko).with_context(|| format!("cannot read {}", ko.display()))?;
    let names = modinfo_firmware(&data);
    let mut problems: Vec<String> = names
        .iter()
        .filter_map(|n| resolve(tree, n).err().map(|e| e.to_string()))
        .collect();
    let (pkg, version) = crate::setup::NVIDIA_FIRMWARE_DEB;
    notes.push(format!(
        "modinfo nova.ko: {} firmware entries, {} of them in {pkg} {version}",
        names.len(),
        names.len() - problems.len()
    ));
    if names.is_empty() {
        problems.push("nova.ko has no firmware= entry".to_string());
    }
    Ok(check("nova-stub.firmware.in-package", problems))
}

/// The `debug` suite's boot of Nova on the debug kernel `built`: one GPU of `profile` with its
/// firmware,
/// `nova_test` with `cycles` unbind/bind and module cycles and `hotplug_cycles` hot-unplugs (4
/// workers; for no `cycles`, only
/// its checks of the GPU, and Nova loaded again after it), then the command lines `after`, between kmemleak's baseline and check; `programs` are
/// the guest programs besides `nova_test`.
pub(crate) fn debug_boot(
    ctx: &Ctx,
    tc: &Toolchain,
    built: &Built,
    profile: &str,
    (cycles, hotplug_cycles): (usize, usize),
    programs: &[&str],
    after: &[String],
) -> Result<SuiteResult> {
    let mut names = vec![NOVA_TEST];
    names.extend_from_slice(programs);
    let p = gpu::profile(profile).with_context(|| format!("no profile {profile}"))?;
    let mut run_lines = vec![KMEMLEAK_BASELINE.to_string()];
    if cycles > 0 {
        run_lines.push(format!(
            "{NOVA_TEST} --module {NOVA_KO} --expect {} --cycles {cycles} --module-cycles \
             {cycles} --workers 4 --hotplug-cycles {hotplug_cycles}",
            expect_arg(p)
        ));
    } else {
        // The GPU's own checks only; nova_test unloads Nova at its end.
        run_lines.push(format!(
            "{NOVA_TEST} --module {NOVA_KO} --expect {} && insmod {NOVA_KO}",
            expect_arg(p)
        ));
    }
    run_lines.extend(after.iter().cloned());
    run_lines.push(KMEMLEAK_CHECK.to_string());
    let b = NovaBoot {
        name: "debug",
        gpus: vec![(p, Overrides::default())],
        firmware: vec![p],
        wrong: false,
        run_lines,
        hotplug: hotplug_cycles,
        faults: 0,
        expect_suites: EXPECT_SUITES,
        timeout: crate::suites::debug::DEBUG_BOOT_TIMEOUT,
    };
    boot_debug_kernel(ctx, tc, built, &names, &b)
}

/// Boots `b` on the debug kernel `built` with the guest programs `programs`, Nova's
/// dependencies loaded first and the real firmware of `b`'s chips.
fn boot_debug_kernel(
    ctx: &Ctx,
    tc: &Toolchain,
    built: &Built,
    programs: &[&str],
    b: &NovaBoot,
) -> Result<SuiteResult> {
    let deps = insmod_line(&build_load_order(&built.modules, &[NOVA_MODULE], false)?);
    let bin = gpu::build_model(&ctx.repo, &ctx.logs())?;
    let programs = guest_programs(ctx, programs)?;
    let tree = crate::setup::nvidia_firmware(ctx)?;
    let done = boot(
        ctx,
        tc,
        built,
        &bin,
        &programs,
        &deps,
        b,
        (&tree, &NONE_REPLACED),
    )?;
    Ok(done.suite)
}

/// The guest program of the faults boot.
const GPU_FAULTS: &str = "gpu_faults";
/// The fault requests `gpu_faults` makes: gpu0 `fall-off-bus` and `recover`, gpu1 and gpu2
/// `kill`.
const FAULT_REQUESTS: usize = 4;

/// The `debug` suite's boot of Nova on GPUs that misbehave, on the debug kernel `built`: three
/// GPUs of `profile` bound to Nova, `gpu_faults` with 4 workers (see its documentation: a fall
/// off the bus and its recovery, the model killed under ioctl load and during a probe), between
/// kmemleak's baseline and check.
pub(crate) fn faults_boot(
    ctx: &Ctx,
    tc: &Toolchain,
    built: &Built,
    profile: &str,
) -> Result<SuiteResult> {
    let p = gpu::profile(profile).with_context(|| format!("no profile {profile}"))?;
    let b = NovaBoot {
        name: "faults",
        gpus: vec![(p, Overrides::default()); 3],
        firmware: vec![p],
        wrong: false,
        run_lines: vec![
            KMEMLEAK_BASELINE.to_string(),
            format!("insmod {NOVA_KO}"),
            format!("{GPU_FAULTS} --workers 4"),
            KMEMLEAK_CHECK.to_string(),
        ],
        hotplug: 0,
        faults: FAULT_REQUESTS,
        expect_suites: &["rust_doctests_kernel", GPU_FAULTS],
        timeout: crate::suites::debug::DEBUG_BOOT_TIMEOUT,
    };
    boot_debug_kernel(ctx, tc, built, &[GPU_FAULTS], &b)
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
    let tree = crate::setup::nvidia_firmware(ctx)?;
    all.tests.push(modinfo_test(&built, &tree, &mut all.notes)?);
    let (test, db) = profiles_test(tc, &mut all.notes)?;
    all.tests.push(test);
    // The refusals: identification and a missing file, then the files made wrong.
    let mut refused = refusals();
    let mut replaced = BTreeMap::new();
    for w in wrong_files() {
        let (name, data, line) = wrong_file(&tree, &w)?;
        replaced.insert(name, data);
        refused.push(Refusal {
            name: w.name,
            profile: w.profile,
            overrides: Overrides::default(),
            line,
        });
    }
    for b in boots(&refused) {
        let firmware = (tree.as_path(), &replaced);
        let done = boot(ctx, tc, &built, &bin, &programs, &deps, &b, firmware)?;
        let mut tests = done.suite.tests;
        match b.name {
            "gsp" => {
                tests.extend(gsp_checks(&done.console, &profiles, &db));
                for (i, p) in profiles.iter().enumerate() {
                    let name = format!("nova-stub.model-override.{}-boot0", p.name);
                    tests.extend(override_test(name, done.ready.get(i), &gsp_overrides(p)));
                }
            }
            "refusals" => {
                tests.extend(refusal_checks(&done.console, &refused, &db));
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
    fn one_gsp_gpu_has_a_boot0_that_names_another_chip() {
        let overridden: Vec<&str> = gsp_profiles()
            .into_iter()
            .filter(|p| gsp_overrides(p).boot0.is_some())
            .map(|p| p.name)
            .collect();
        assert_eq!(overridden, ["gb207"]);
        // BOOT0 says GA102 (architecture 0x17 in 28:24, implementation 2), BOOT42 GB207.
        let boot0 = gsp_overrides(p("gb207")).boot0.unwrap();
        assert_eq!((boot0 >> 24 & 0x1f, boot0 >> 20 & 0xf), (0x17, 2));
        assert_eq!(p("gb207").boot42() >> 20 & 0x3ff, 0x1b7);
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
        let names: Vec<&str> = lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "pre-gsp-gv100",
                "pre-fermi",
                "unknown-architecture",
                "unknown-chipset",
                "dead",
                "boot42-all-ones",
                "missing-firmware-tu102"
            ]
        );
        assert_eq!(
            lines[0].1,
            "chipset 0x140 (Volta), revision A1: not supported by nova; use nouveau"
        );
        assert_eq!(
            lines[6].1,
            "missing firmware nvidia/tu102/gsp/booter_load-570.144.bin (error -2)"
        );
        // The BOOT42 values decode to what the lines say (architecture 29:24, implementation
        // 23:20, major 19:16, minor 15:12).
        let r = refusals();
        let chipset = |v: u32| v >> 20 & 0x3ff;
        assert_eq!(chipset(r[2].overrides.boot42.unwrap()) >> 4, 0x1f);
        assert_eq!(chipset(r[3].overrides.boot42.unwrap()), 0x169);
        assert_eq!(r[3].overrides.boot42.unwrap() >> 12 & 0xff, 0xa1);
        assert_eq!(
            r[1].overrides.boot0.unwrap() >> 24 & 0x1f,
            0x0a,
            "older than Fermi's 0x0c"
        );
    }

    /// A package tree with the files the wrong-file cases are made from, laid out and linked
    /// as in the package, with headers as the real ones have them.
    fn fake_tree() -> PathBuf {
        let t = std::env::temp_dir().join(format!("nova-stub-fw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        let put = |rel: &str, data: Vec<u8>| {
            let p = t.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        // An NVIDIA binary of 8192 bytes: magic, version, size, header at 24, payload 0x88 +
        // 8056.
        let mut bin = vec![0u8; 8192];
        for (i, v) in [0x10de_u32, 1, 0x2000, 24, 0x88, 8192 - 0x88]
            .iter()
            .enumerate()
        {
            bin[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        put("nvidia/ga102/gsp/booter_load-570.144.bin", bin.clone());
        put("nvidia/tu102/gsp/booter_load-570.144.bin", bin);
        std::fs::create_dir_all(t.join("nvidia/ga104")).unwrap();
        std::os::unix::fs::symlink("../ga102/gsp", t.join("nvidia/ga104/gsp")).unwrap();
        // A 64-bit ELF of 2 MiB whose section headers (3) are at 0x1f0000.
        let mut elf = vec![0u8; 2 << 20];
        elf[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        elf[0x28..0x30].copy_from_slice(&0x1f_0000_u64.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3_u16.to_le_bytes());
        put("nvidia/ga102/gsp/gsp-570.144.bin", elf.clone());
        put("nvidia/ad106/gsp/gsp-570.144.bin", elf.clone());
        put("nvidia/tu102/gsp/gsp-570.144.bin", elf);
        let mut fmc = vec![0u8; 4096];
        fmc[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1]);
        put("nvidia/gh100/gsp/fmc-570.144.bin", fmc);
        t
    }

    #[test]
    fn wrong_files_are_made_from_the_real_ones_with_nova_s_lines() {
        let t = fake_tree();
        let lines: Vec<(String, usize, String)> = wrong_files()
            .iter()
            .map(|w| {
                let (name, data, line) = wrong_file(&t, w).unwrap();
                (name, data.len(), line)
            })
            .collect();
        assert_eq!(
            lines[0],
            (
                "nvidia/ga104/gsp/booter_load-570.144.bin".to_string(),
                4096,
                "firmware nvidia/ga104/gsp/booter_load-570.144.bin: truncated (4096 bytes, its \
                 headers need 8192), refused"
                    .to_string()
            )
        );
        assert_eq!(
            lines[1].2,
            "firmware nvidia/ad104/gsp/bootloader-570.144.bin: no NVIDIA binary header (magic \
             0x464c457f, not 0x10de), refused"
        );
        assert_eq!(
            lines[2],
            (
                "nvidia/gb203/gsp/fmc-570.144.bin".to_string(),
                0,
                "cannot load firmware nvidia/gb203/gsp/fmc-570.144.bin (error -22)".to_string()
            )
        );
        assert_eq!(
            lines[3].2,
            "firmware nvidia/gb205/gsp/fmc-570.144.bin: not a 32-bit ELF image, refused"
        );
        assert_eq!(
            lines[4].2,
            "firmware nvidia/gb206/gsp/gsp-570.144.bin: no signature section .fwsignature_gb20x \
             for this chip, refused"
        );
        // The truncated GSP image: what its section header table needs (0x1f0000 + 3 * 64).
        assert_eq!(lines[5].1, 1 << 20);
        assert_eq!(
            lines[5].2,
            format!(
                "firmware nvidia/ad106/gsp/gsp-570.144.bin: truncated (1048576 bytes, its \
                 headers need {}), refused",
                0x1f_0000 + 3 * 64
            )
        );
        std::fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn signature_families_are_the_images_sections() {
        let f: Vec<&str> = [
            "tu104", "tu117", "ga100", "ga107", "ad103", "gh100", "gb102", "gb207",
        ]
        .iter()
        .map(|c| signature_family(c))
        .collect();
        assert_eq!(
            f,
            ["tu10x", "tu11x", "ga100", "ga10x", "ad10x", "gh100", "gb10x", "gb20x"]
        );
    }

    #[test]
    fn the_refusal_boot_quotes_each_line_and_binds_the_good_gpus() {
        let r = refusals();
        let c = refusal_command(&r);
        assert!(c.starts_with(
            "nova_test --module /lib/modules/nova.ko --expect ga107:0x10000000:0xa1 \
             --expect gb202:"
        ));
        assert_eq!(c.matches(" --expect-line '").count(), r.len());
        assert_eq!(c.matches(" --expect ").count(), GOOD.len());
        assert!(r.iter().all(|r| !r.line.contains('\'')));
        let b = boots(&r);
        let refusals = b.iter().find(|b| b.name == "refusals").unwrap();
        assert!(refusals.wrong);
        let names: Vec<&str> = refusals.gpus.iter().map(|(p, _)| p.name).collect();
        assert_eq!(
            names,
            ["gv100", "tu106", "ga102", "tu104", "dead", "ga103", "tu102", "ga107", "gb202"]
        );
        let firmware: Vec<&str> = refusals.firmware.iter().map(|p| p.name).collect();
        assert_eq!(
            firmware,
            ["ga104", "ad104", "gb203", "gb205", "gb206", "ad106", "ga107", "gb202"]
        );
        // No chip is in two cases, and tu102's firmware (missing) is not packed.
        let mut all: Vec<&str> = names.iter().chain(&firmware[..6]).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), names.len() + 6);
    }

    #[test]
    fn the_boots_are_what_the_suite_documents() {
        let b = boots(&refusals());
        let names: Vec<&str> = b.iter().map(|b| b.name).collect();
        assert_eq!(names, ["gsp", "refusals", "stress"]);
        assert_eq!(b[0].gpus.len(), 24);
        assert_eq!(b[0].firmware.len(), 24);
        assert!(!b[0].wrong && b[0].hotplug == 0);
        assert_eq!(
            b[0].run_lines[..2],
            [
                "insmod /lib/modules/nova.ko".to_string(),
                "nova-info".to_string()
            ]
        );
        let s = &b[2];
        assert!(s.hotplug == HOTPLUG_CYCLES && !s.wrong);
        assert_eq!(s.firmware.len(), 1);
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

    /// A PCI ID database with the tests' boards, as Debian's names them.
    fn db() -> Database {
        Database::new(
            "10de  NVIDIA Corporation\n\
             \t1e04  TU102 [GeForce RTX 2080 Ti]\n\
             \t2330  GH100 [H100 SXM5 80GB]\n\
             \t2582  GA107 [GeForce RTX 3050 8GB]\n\
             \t2b85  GB202 [GeForce RTX 5090]\n\
             10df  Emulex Corporation\n",
        )
    }

    /// A console as the `gsp` boot would leave it for two GPUs.
    fn gsp_console() -> String {
        "[    1.2] nova 0000:02:00.0: NVIDIA TU102 (Turing), revision A1, BAR1 256 MiB: DRM device registered\n\
         [    1.3] nova 0000:01:00.0: NVIDIA GH100 (Hopper), revision A1, BAR1 128 GiB: DRM device registered\n\
         nova-init: run nova-info\n\
         GPU 0: NVIDIA Corporation GH100 [H100 SXM5 80GB] (rev a1), PCI 0000:01:00.0, BAR1 128 GiB, nodes card1 renderD129\n\
         GPU 1: NVIDIA Corporation TU102 [GeForce RTX 2080 Ti] (rev a1), PCI 0000:02:00.0, BAR1 256 MiB, nodes card0 renderD128\n"
            .to_string()
    }

    #[test]
    fn profiles_must_be_boards_of_the_database() {
        let ok = [*p("tu102"), *p("gh100"), *p("dead")];
        assert_eq!(profile_problems(&db(), &ok), Vec::<String>::new());
        // A board named otherwise, a device ID the database lacks, another chip's ID.
        let renamed = Profile {
            board: "GeForce RTX 2080 Ti (TU102)",
            ..*p("tu102")
        };
        let unknown = Profile {
            device_id: 0x2331,
            ..*p("gh100")
        };
        let other = Profile {
            device_id: 0x2582,
            board: "GeForce RTX 3050 8GB",
            ..*p("gb202")
        };
        assert_eq!(
            profile_problems(&db(), &[renamed, unknown, other]),
            [
                "tu102: 1e04 is `TU102 [GeForce RTX 2080 Ti]` in the database, not \
                 `TU102 [GeForce RTX 2080 Ti (TU102)]`",
                "gh100: the database has no device 2331 of NVIDIA (vendor: Some(\"NVIDIA \
                 Corporation\")); `GH100 [H100 SXM5 80GB]` wanted",
                "gb202: 2582 is `GA107 [GeForce RTX 3050 8GB]` in the database, not \
                 `GB202 [GeForce RTX 3050 8GB]`",
            ]
        );
        // A chip suffix (GL, M) is the database's; a longer chip name is another chip.
        let t4 = Database::new("10de  NVIDIA Corporation\n\t1eb8  TU104GL [Tesla T4]\n");
        assert!(profile_problems(&t4, &[*p("tu104")]).is_empty());
        let gb = Database::new("10de  NVIDIA Corporation\n\t2b85  GB2020 [GeForce RTX 5090]\n");
        assert_eq!(profile_problems(&gb, &[*p("gb202")]).len(), 1);
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
        let tests = gsp_checks(&gsp_console(), &both, &db());
        assert_eq!(tests.len(), 5);
        assert!(failed(&tests).is_empty(), "{tests:?}");
        // A GPU bound with the wrong BAR1, one missing from nova-info.
        let bad = gsp_console()
            .replace("BAR1 128 GiB: DRM", "BAR1 64 GiB: DRM")
            .replace(
                "GPU 1: NVIDIA Corporation TU102",
                "GPU 1: NVIDIA Corporation TU104",
            );
        assert_eq!(
            failed(&gsp_checks(&bad, &both, &db())),
            ["nova-stub.nova-info.tu102", "nova-stub.probe-line.gh100"]
        );
        // nova-info must list each GPU once, and no more GPUs than were bound.
        let tests = gsp_checks(&gsp_console(), &[p("gh100")], &db());
        assert_eq!(failed(&tests), ["nova-stub.nova-info.count"]);
    }

    #[test]
    fn the_refusal_boot_needs_its_lines_and_only_the_good_gpus() {
        let r = refusals();
        let good =
            |i: usize, p: &Profile| format!("[    2.{i}] nova 0000:1{i}:00.0: {}\n", bound_line(p));
        let mut console: String = r
            .iter()
            .enumerate()
            .map(|(i, r)| format!("[    1.{i}] nova 0000:0{i}:00.0: {}\n", r.line))
            .collect();
        console.push_str(&good(0, p("ga107")));
        console.push_str(&good(1, p("gb202")));
        console.push_str("nova-init: run nova-info\n");
        for (i, g) in GOOD.iter().enumerate() {
            let (head, tail) = nova_info_parts(p(g), &db());
            console.push_str(&format!("GPU {i}{head}0000:1{i}:00.0{tail}0 renderD128\n"));
        }
        assert!(
            failed(&refusal_checks(&console, &r, &db())).is_empty(),
            "{console}"
        );
        let bound = console.clone()
            + "[    2.9] nova 0000:05:00.0: NVIDIA TU102 (Turing), revision A1, BAR1 256 MiB: DRM device registered\n";
        let bound = bound.replace("missing firmware", "firmware");
        assert_eq!(
            failed(&refusal_checks(&bound, &r, &db())),
            [
                "nova-stub.refused.missing-firmware-tu102",
                "nova-stub.refused.only-good-bound"
            ]
        );
        // The line must be Nova's, in the kernel log: not nova_test's echo of it.
        let echoed = format!("    # expecting '{}'\n", r[0].line);
        assert!(!failed(&refusal_checks(&echoed, &r[..1], &db())).is_empty());
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
