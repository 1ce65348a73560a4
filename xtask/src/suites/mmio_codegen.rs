//! The MMIO accessors' code compared with C's (suite rust-pci): for every case of
//! `xtask/codegen/io` (a read compared with zero, a read-modify-write, a store to normal memory
//! then a doorbell write; each width, ordered and `_relaxed`), the Rust function must do the
//! same work as the C one in the instruction forms C's `asm/io.h` uses:
//!
//! - every access to the MMIO base is a plain `mov` (TDX and SEV guests emulate MMIO by decoding
//!   the faulting instruction, and `insn_decode_mmio()` decodes only `mov` and its `movzx`/`movs`
//!   kin: a load folded into a `cmp` or `test` oopses there);
//! - the same accesses in the same order (no access split, merged or dropped);
//! - with the ordered accessors, the store to normal memory is emitted before the doorbell
//!   (C's `"memory"` clobber; the `_relaxed` forms promise no such order);
//! - no more instructions than C, but for the address arithmetic of accesses at a non-zero
//!   offset: C's `asm` takes its address as an `"m"` operand, which the compiler folds into the
//!   `mov` (`[rax + 16]`); Rust's `asm!` has no memory operands, so the address is computed into
//!   a register first (one `lea` or `add` per such access), and that is all Rust may add.
//!
//! The functions are read from `llvm-objdump -M intel` listings. An operand is an MMIO access
//! when its base register holds the mapping's address: loaded from the driver's state (the first
//! argument, `rdi`: C's `regs->base`, Rust's `Io`), or computed from such a register. The second
//! argument (`rsi`) is the normal memory of the doorbell cases.

use crate::ctx::Ctx;
use crate::results::report::TestResult;
use crate::util::run_logged;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// The cases of `xtask/codegen/io`, as `<kind><bits>[_relaxed]`: C's function is
/// `codegen_c_<case>`, Rust's `codegen_rust_<case>`.
pub fn cases() -> Vec<String> {
    let mut cases = Vec::new();
    for relaxed in ["", "_relaxed"] {
        for bits in [8, 16, 32, 64] {
            for kind in ["is_zero", "rmw", "doorbell"] {
                cases.push(format!("{kind}{bits}{relaxed}"));
            }
        }
    }
    cases
}

/// One instruction: the mnemonic and the operands, as objdump prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insn {
    pub mnemonic: String,
    pub operands: Vec<String>,
}

impl std::fmt::Display for Insn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.mnemonic)?;
        if !self.operands.is_empty() {
            write!(f, " {}", self.operands.join(", "))?;
        }
        Ok(())
    }
}

/// What a register holds, as far as the analysis follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    /// The driver's state (the first argument).
    State,
    /// Normal memory (the second argument).
    Normal,
    /// An address in the MMIO mapping.
    Mmio,
}

/// A memory access of a function: where in the listing, to what and in which direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub index: usize,
    pub mmio: bool,
    pub store: bool,
    pub mnemonic: String,
    /// Whether the operand has a displacement (`[rax + 16]`).
    pub displaced: bool,
}

/// The general-purpose register family of `w` (`rax`, `eax`, `ax`, `al` → `a`; `r8d` → `8`).
fn family(w: &str) -> Option<String> {
    let w = w.trim();
    let fam = match w {
        "al" | "ah" | "ax" | "eax" | "rax" => "a",
        "bl" | "bh" | "bx" | "ebx" | "rbx" => "b",
        "cl" | "ch" | "cx" | "ecx" | "rcx" => "c",
        "dl" | "dh" | "dx" | "edx" | "rdx" => "d",
        "sil" | "si" | "esi" | "rsi" => "si",
        "dil" | "di" | "edi" | "rdi" => "di",
        "bpl" | "bp" | "ebp" | "rbp" => "bp",
        "spl" | "sp" | "esp" | "rsp" => "sp",
        _ => {
            let n = w.strip_prefix('r')?.trim_end_matches(['d', 'w', 'b']);
            return (n.parse::<u8>().is_ok_and(|n| (8..=15).contains(&n))).then(|| n.to_string());
        }
    };
    Some(fam.to_string())
}

/// The base register family and whether there is a displacement, of memory operand `op`
/// (`dword ptr [rax + 16]`); `None` if `op` is not a memory operand.
fn memory_base(op: &str) -> Option<(Option<String>, bool)> {
    let inner = op.split_once('[')?.1.split_once(']')?.0;
    let mut parts = inner.split(['+', '-']).map(str::trim);
    let base = parts.next().and_then(family);
    let displaced = inner.contains('+') || inner.contains('-');
    Some((base, displaced))
}

/// Instructions that read their first operand without writing it.
const NO_WRITE: [&str; 5] = ["cmp", "test", "push", "bt", "jmp"];

/// The memory accesses of `insns`, classified by following what the registers hold.
pub fn accesses(insns: &[Insn]) -> Vec<Access> {
    let mut regs: HashMap<String, Holds> = HashMap::new();
    regs.insert("di".into(), Holds::State);
    regs.insert("si".into(), Holds::Normal);
    let mut out = Vec::new();
    for (index, insn) in insns.iter().enumerate() {
        let mut loaded_from = None;
        for (n, op) in insn.operands.iter().enumerate() {
            let Some((base, displaced)) = memory_base(op) else {
                continue;
            };
            let holds = base.as_ref().and_then(|b| regs.get(b).copied());
            if insn.mnemonic == "lea" {
                continue;
            }
            if n > 0 {
                loaded_from = holds;
            }
            if matches!(holds, Some(Holds::Mmio) | Some(Holds::Normal)) {
                out.push(Access {
                    index,
                    mmio: holds == Some(Holds::Mmio),
                    store: n == 0 && !NO_WRITE.contains(&insn.mnemonic.as_str()),
                    mnemonic: insn.mnemonic.clone(),
                    displaced,
                });
            }
        }
        // What the destination register holds afterwards.
        let Some(dest) = insn.operands.first().and_then(|d| family(d)) else {
            continue;
        };
        if NO_WRITE.contains(&insn.mnemonic.as_str()) {
            continue;
        }
        let src = insn.operands.get(1).map(String::as_str).unwrap_or("");
        let now = match insn.mnemonic.as_str() {
            // The mapping's address, loaded from the driver's state.
            "mov" if src.starts_with("qword ptr") && loaded_from == Some(Holds::State) => {
                Some(Holds::Mmio)
            }
            "mov" => family(src).and_then(|s| regs.get(&s).copied()),
            "lea" => memory_base(src)
                .and_then(|(b, _)| b)
                .and_then(|b| regs.get(&b).copied()),
            // An offset added to an address keeps it in the same place.
            "add" | "sub" if src.parse::<i64>().is_ok() || src.starts_with("0x") => {
                regs.get(&dest).copied()
            }
            _ => None,
        };
        match now {
            Some(h) => regs.insert(dest, h),
            None => regs.remove(&dest),
        };
    }
    out
}

/// The verdict on one case: `None` if Rust's function does C's work in C's forms, else why not.
pub fn compare(case: &str, c: &[Insn], rust: &[Insn]) -> Option<String> {
    let (ca, ra) = (accesses(c), accesses(rust));
    let mut why = Vec::new();
    for a in ra.iter().filter(|a| a.mmio && a.mnemonic != "mov") {
        why.push(format!(
            "MMIO access by `{}`, not a plain mov",
            rust[a.index]
        ));
    }
    // The MMIO accesses as their directions (true: a store), in order.
    let stores =
        |a: &[Access]| -> Vec<bool> { a.iter().filter(|a| a.mmio).map(|a| a.store).collect() };
    if stores(&ca) != stores(&ra) {
        why.push(format!(
            "MMIO accesses (store?) C {:?}, Rust {:?}",
            stores(&ca),
            stores(&ra)
        ));
    }
    if case.starts_with("doorbell") && !case.ends_with("_relaxed") {
        let normal = ra.iter().find(|a| !a.mmio && a.store).map(|a| a.index);
        let bell = ra.iter().find(|a| a.mmio && a.store).map(|a| a.index);
        match (normal, bell) {
            (Some(n), Some(b)) if n < b => {}
            _ => why.push(format!(
                "the store to normal memory (at {normal:?}) is not before the doorbell (at {bell:?})"
            )),
        }
    }
    // Address arithmetic Rust's asm! cannot fold: one per displaced MMIO access of C's.
    let allowance = ca.iter().filter(|a| a.mmio && a.displaced).count();
    if rust.len() > c.len() + allowance {
        why.push(format!(
            "{} instructions where C has {} (+{allowance} for addresses asm! cannot fold)",
            rust.len(),
            c.len()
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// The instructions of `symbol` in llvm-objdump's Intel-syntax listing `objdump`, without
/// padding (`nop`, `int3`).
pub fn parse_listing(objdump: &str, symbol: &str) -> Vec<Insn> {
    let header = format!("<{symbol}>:");
    let Some(body) = objdump.split(&header).nth(1) else {
        return Vec::new();
    };
    body.lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        // The listing ends at the blank line before whatever objdump prints next.
        .take_while(|l| !l.is_empty() && !l.ends_with(">:"))
        .filter(|l| !l.starts_with("R_X86"))
        .map(|l| {
            let l = l.split('#').next().unwrap_or(l);
            let l = l.split('<').next().unwrap_or(l).trim();
            let (mnemonic, ops) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            Insn {
                mnemonic: mnemonic.to_string(),
                operands: ops
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect(),
            }
        })
        .filter(|i| i.mnemonic != "nop" && i.mnemonic != "int3")
        .collect()
}

/// `insns` on one line, for the notes and failure details.
fn listing(insns: &[Insn]) -> String {
    insns
        .iter()
        .map(Insn::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The Intel-syntax listing of object `obj`, from llvm-objdump-14.
pub fn disassemble(ctx: &Ctx, obj: &Path) -> Result<String> {
    let name = obj.file_stem().unwrap_or_default().to_string_lossy();
    let log = ctx.logs().join(format!("objdump-{name}.log"));
    // A fresh log, so that only this listing is parsed.
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new("llvm-objdump-14");
    cmd.args([
        "-d",
        "--no-show-raw-insn",
        "--no-leading-addr",
        "-M",
        "intel",
    ])
    .arg(obj);
    run_logged(&format!("llvm-objdump {name}"), &mut cmd, &log)?;
    std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))
}

/// Compares every case of the codegen module whose objects are next to `kos`: the notes (the
/// instruction counts, and the listings of one case side by side) and one test per case,
/// `rust-pci.codegen.<case>`.
pub fn check(ctx: &Ctx, kos: &[std::path::PathBuf]) -> Result<(Vec<String>, Vec<TestResult>)> {
    let dir = kos
        .first()
        .and_then(|k| k.parent())
        .context("the codegen module build gave no .ko")?;
    let c_listing = disassemble(ctx, &dir.join("codegen_io_c.o"))?;
    let rust_listing = disassemble(ctx, &dir.join("codegen_io_rust.o"))?;
    let (mut notes, mut tests) = (Vec::new(), Vec::new());
    let mut counts = Vec::new();
    for case in cases() {
        let c = parse_listing(&c_listing, &format!("codegen_c_{case}"));
        let rust = parse_listing(&rust_listing, &format!("codegen_rust_{case}"));
        if c.is_empty() || rust.is_empty() {
            bail!(
                "no listing of case {case} (C {}, Rust {})",
                c.len(),
                rust.len()
            );
        }
        counts.push(format!("{case} {}/{}", c.len(), rust.len()));
        if case == "is_zero32" || case == "doorbell32" {
            notes.push(format!("codegen {case} C:    {}", listing(&c)));
            notes.push(format!("codegen {case} Rust: {}", listing(&rust)));
        }
        let name = format!("rust-pci.codegen.{case}");
        tests.push(match compare(&case, &c, &rust) {
            None => TestResult::pass(name),
            Some(why) => TestResult::fail(
                name,
                format!("{why}\nC:    {}\nRust: {}", listing(&c), listing(&rust)),
            ),
        });
    }
    notes.insert(
        0,
        format!("codegen instructions (C/Rust): {}", counts.join(", ")),
    );
    Ok((notes, tests))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insns(lines: &[&str]) -> Vec<Insn> {
        let listing = format!("<f>:\n{}\n\n", lines.join("\n"));
        parse_listing(&listing, "f")
    }

    /// C's `readl(regs->base + 0x20) == 0` as clang builds it.
    fn c_is_zero() -> Vec<Insn> {
        insns(&[
            "\tmov\trax, qword ptr [rdi]",
            "\tmov\teax, dword ptr [rax + 32]",
            "\ttest\teax, eax",
            "\tsete\tal",
            "\tret",
            "\tint3",
        ])
    }

    #[test]
    fn listings_parse_into_mnemonics_and_operands() {
        let c = c_is_zero();
        assert_eq!(c.len(), 5);
        assert_eq!(c[1].mnemonic, "mov");
        assert_eq!(c[1].operands, ["eax", "dword ptr [rax + 32]"]);
        assert!(parse_listing("<f>:\n\tret\n", "g").is_empty());
    }

    #[test]
    fn an_mmio_load_folded_into_cmp_fails() {
        // v1's accessors (a volatile read between compiler fences), rustc 1.95.
        let v1 = insns(&[
            "\tmov\trax, qword ptr [rdi]",
            "\tcmp\tdword ptr [rax + 32], 0",
            "\tsete\tal",
            "\tret",
        ]);
        let why = compare("is_zero32", &c_is_zero(), &v1).unwrap();
        assert!(
            why.contains("`cmp dword ptr [rax + 32], 0`, not a plain mov"),
            "{why}"
        );
        // A compare reads its memory operand: it is the same load as C's, in another form.
        assert!(!why.contains("MMIO accesses"), "{why}");
    }

    #[test]
    fn an_asm_mov_with_its_address_computed_passes() {
        let asm = insns(&[
            "\tmov\trax, qword ptr [rdi]",
            "\tadd\trax, 32",
            "\tmov\teax, dword ptr [rax]",
            "\ttest\teax, eax",
            "\tsete\tal",
            "\tret",
        ]);
        assert_eq!(compare("is_zero32", &c_is_zero(), &asm), None);
        // One more instruction than the address arithmetic allows fails.
        let mut longer = asm.clone();
        longer.insert(1, insns(&["\tmov\trcx, rdi"])[0].clone());
        let why = compare("is_zero32", &c_is_zero(), &longer).unwrap();
        assert!(why.contains("7 instructions where C has 5 (+1"), "{why}");
    }

    #[test]
    fn the_base_is_followed_through_a_reused_argument_register() {
        // `rdi` reloaded with the base: accesses through it are MMIO, not driver state.
        let a = accesses(&insns(&[
            "\tmov\trdi, qword ptr [rdi]",
            "\tmovzx\teax, byte ptr [rdi + 16]",
            "\tmov\tbyte ptr [rsi], dl",
        ]));
        assert_eq!(a.len(), 2);
        assert!(a[0].mmio && !a[0].store && a[0].mnemonic == "movzx");
        // `rsi` keeps what it held: normal memory.
        assert!(!a[1].mmio && a[1].store);
    }

    #[test]
    fn a_doorbell_before_the_normal_store_fails_when_ordered() {
        let c = insns(&[
            "\tmov\tdword ptr [rsi], edx",
            "\tmov\trax, qword ptr [rdi]",
            "\tmov\tecx, 1",
            "\tmov\tdword ptr [rax + 40], ecx",
            "\tret",
        ]);
        let sunk = insns(&[
            "\tmov\trax, qword ptr [rdi]",
            "\tlea\trcx, [rax + 40]",
            "\tmov\teax, 1",
            "\tmov\tdword ptr [rcx], eax",
            "\tmov\tdword ptr [rsi], edx",
            "\tret",
        ]);
        let why = compare("doorbell32", &c, &sunk).unwrap();
        assert!(why.contains("not before the doorbell"), "{why}");
        // The relaxed accessors promise no order with normal memory.
        assert_eq!(compare("doorbell32_relaxed", &c, &sunk), None);
    }

    #[test]
    fn a_dropped_or_extra_mmio_access_fails() {
        let none = insns(&["\txor\teax, eax", "\tret"]);
        let why = compare("is_zero32", &c_is_zero(), &none).unwrap();
        assert!(why.contains("MMIO accesses"), "{why}");
    }

    #[test]
    fn every_case_is_named_once() {
        let cases = cases();
        assert_eq!(cases.len(), 24);
        assert!(cases.contains(&"doorbell64_relaxed".to_string()));
        let mut sorted = cases.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 24);
    }

    #[test]
    fn registers_have_families() {
        for (r, f) in [
            ("rax", "a"),
            ("al", "a"),
            ("r8d", "8"),
            ("r15", "15"),
            ("dil", "di"),
        ] {
            assert_eq!(family(r).as_deref(), Some(f), "{r}");
        }
        for w in ["mov", "dword", "16", "r16", "rip"] {
            assert_eq!(family(w), None, "{w}");
        }
    }
}
