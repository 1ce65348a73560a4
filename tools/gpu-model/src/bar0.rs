//! BAR0: the register space of the GPU.
//!
//! Semantics, per 32-bit register (accesses of any width are split into the registers they
//! touch, little-endian):
//! - `NV_PMC_BOOT_0` (0x0) and `NV_PMC_BOOT_42` (0xa00) are read-only and return the
//!   profile's chip ID; writes are ignored.
//! - `0x88000..0x89000` (`NV_PCFG`) mirrors the PCI configuration space: reads return it and
//!   writes go to it through its write masks.
//! - Every other register is a plain register file: it reads back what was last written,
//!   and reads [`UNWRITTEN`] (`0xbadf5040`) while never written since power-on or reset.
//!   The value is the model's own marker, chosen to look like the `0xbadf....` values NVIDIA
//!   GPUs return for registers that do not answer, so that a driver reading a register the
//!   model does not implement sees something recognisable rather than a plausible zero.
//! - A dead device (profile `dead`, or one that fell off the bus) returns all-ones for every
//!   read and drops every write.

use crate::config_space::ConfigSpace;
use crate::profile::{ALL_ONES, BAR0_SIZE};
use std::collections::HashMap;

/// Offset of `NV_PMC_BOOT_0`.
pub const NV_PMC_BOOT_0: u32 = 0x0;
/// Offset of `NV_PMC_BOOT_42`.
pub const NV_PMC_BOOT_42: u32 = 0xa00;
/// Start of the configuration space mirror (`NV_PCFG`).
pub const NV_PCFG: u32 = 0x88000;
/// Size of the configuration space mirror.
pub const NV_PCFG_SIZE: u32 = 0x1000;
/// What a register of the register file reads before it was ever written.
pub const UNWRITTEN: u32 = 0xbadf_5040;

pub use crate::OutOfRange;

/// The register space of one GPU.
///
/// Invariant: keys of `regs` are 4-byte aligned offsets below [`BAR0_SIZE`] outside the
/// read-only registers and the mirror.
#[derive(Clone, Debug)]
pub struct Bar0 {
    boot0: u32,
    boot42: u32,
    responds: bool,
    regs: HashMap<u32, u32>,
}

impl Bar0 {
    /// A register space that reports `boot0`/`boot42`; `responds == false` makes every read
    /// return all-ones (a dead GPU).
    pub fn new(boot0: u32, boot42: u32, responds: bool) -> Self {
        Self {
            boot0,
            boot42,
            responds,
            regs: HashMap::new(),
        }
    }

    /// Whether the registers answer (false for a dead device).
    pub fn responds(&self) -> bool {
        self.responds
    }

    /// Number of registers of the register file written since power-on or reset.
    pub fn written_registers(&self) -> usize {
        self.regs.len()
    }

    fn check(offset: u64, len: usize) -> Result<u32, OutOfRange> {
        let err = OutOfRange {
            region: "BAR0",
            offset,
            len,
        };
        let end = offset.checked_add(len as u64).ok_or(err)?;
        if end > BAR0_SIZE {
            return Err(err);
        }
        // BAR0_SIZE is 16 MiB, so the offset fits in u32.
        u32::try_from(offset).map_err(|_| err)
    }

    fn in_mirror(reg: u32) -> bool {
        (NV_PCFG..NV_PCFG + NV_PCFG_SIZE).contains(&reg)
    }

    /// The 32-bit value of the register at the aligned offset `reg`.
    fn read_reg(&self, reg: u32, config: &ConfigSpace) -> u32 {
        match reg {
            NV_PMC_BOOT_0 => self.boot0,
            NV_PMC_BOOT_42 => self.boot42,
            r if Self::in_mirror(r) => config.read_u32((r - NV_PCFG) as usize),
            r => self.regs.get(&r).copied().unwrap_or(UNWRITTEN),
        }
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read(
        &self,
        offset: u64,
        buf: &mut [u8],
        config: &ConfigSpace,
    ) -> Result<(), OutOfRange> {
        let start = Self::check(offset, buf.len())?;
        if !self.responds {
            buf.fill(0xff);
            return Ok(());
        }
        for (i, byte) in buf.iter_mut().enumerate() {
            let addr = start + i as u32;
            let reg = addr & !3;
            *byte = self.read_reg(reg, config).to_le_bytes()[(addr & 3) as usize];
        }
        Ok(())
    }

    /// Writes `data` at `offset`.
    pub fn write(
        &mut self,
        offset: u64,
        data: &[u8],
        config: &mut ConfigSpace,
    ) -> Result<(), OutOfRange> {
        let start = Self::check(offset, data.len())?;
        if !self.responds {
            return Ok(());
        }
        let mut i = 0;
        while i < data.len() {
            let addr = start + i as u32;
            let reg = addr & !3;
            let first = (addr & 3) as usize;
            let n = (4 - first).min(data.len() - i);
            let bytes = &data[i..i + n];
            match reg {
                NV_PMC_BOOT_0 | NV_PMC_BOOT_42 => {}
                r if Self::in_mirror(r) => {
                    // In range: the mirror is exactly the 4 KiB config space.
                    let _ = config.write(u64::from(addr - NV_PCFG), bytes);
                }
                r => {
                    let mut v = self
                        .regs
                        .get(&r)
                        .copied()
                        .unwrap_or(UNWRITTEN)
                        .to_le_bytes();
                    v[first..first + n].copy_from_slice(bytes);
                    self.regs.insert(r, u32::from_le_bytes(v));
                }
            }
            i += n;
        }
        Ok(())
    }

    /// Reads one 32-bit register (offset rounded down to 4 bytes); all-ones if dead or out of
    /// range.
    pub fn read_u32(&self, offset: u32, config: &ConfigSpace) -> u32 {
        let mut b = [0; 4];
        match self.read(u64::from(offset & !3), &mut b, config) {
            Ok(()) => u32::from_le_bytes(b),
            Err(_) => ALL_ONES,
        }
    }

    /// Restores the power-on state: every register of the register file unwritten.
    pub fn reset(&mut self) {
        self.regs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_space::{Bar, BarKind, Identity, COMMAND};

    fn config() -> ConfigSpace {
        let id = Identity {
            vendor_id: 0x10de,
            device_id: 0x2684,
            revision_id: 0xa1,
            class_code: 0x030000,
            subsystem_vendor_id: 0x10de,
            subsystem_id: 0x2684,
        };
        ConfigSpace::new(
            &id,
            &[Bar {
                index: 0,
                size: BAR0_SIZE,
                kind: BarKind::Mem32,
            }],
        )
        .unwrap()
    }

    fn bar0() -> Bar0 {
        Bar0::new(0x192000a1, 0x190a1000, true)
    }

    #[test]
    fn boot_registers_are_read_only() {
        let mut cfg = config();
        let mut b = bar0();
        assert_eq!(b.read_u32(NV_PMC_BOOT_0, &cfg), 0x192000a1);
        assert_eq!(b.read_u32(NV_PMC_BOOT_42, &cfg), 0x190a1000);
        b.write(0, &0u32.to_le_bytes(), &mut cfg).unwrap();
        b.write(0xa00, &[0xff; 4], &mut cfg).unwrap();
        b.write(0x2, &[0x55], &mut cfg).unwrap();
        assert_eq!(b.read_u32(NV_PMC_BOOT_0, &cfg), 0x192000a1);
        assert_eq!(b.read_u32(NV_PMC_BOOT_42, &cfg), 0x190a1000);
        assert_eq!(b.written_registers(), 0);
        // Narrow reads see the right bytes.
        let mut one = [0u8; 1];
        b.read(3, &mut one, &cfg).unwrap();
        assert_eq!(one[0], 0x19);
    }

    #[test]
    fn register_file_reads_back_and_marks_unwritten() {
        let mut cfg = config();
        let mut b = bar0();
        assert_eq!(b.read_u32(0x1000, &cfg), UNWRITTEN);
        assert_eq!(b.read_u32(BAR0_SIZE as u32 - 4, &cfg), UNWRITTEN);
        b.write(0x1000, &0x1234_5678u32.to_le_bytes(), &mut cfg)
            .unwrap();
        assert_eq!(b.read_u32(0x1000, &cfg), 0x1234_5678);
        assert_eq!(b.read_u32(0x1004, &cfg), UNWRITTEN, "neighbour untouched");
        // Byte write merges into the register.
        b.write(0x1001, &[0xab], &mut cfg).unwrap();
        assert_eq!(b.read_u32(0x1000, &cfg), 0x1234_ab78);
        // A byte write into a never-written register merges with the marker.
        b.write(0x2003, &[0x00], &mut cfg).unwrap();
        assert_eq!(b.read_u32(0x2000, &cfg), 0x00df_5040);
        // 64-bit access spanning two registers.
        b.write(0x3000, &0x1122_3344_5566_7788u64.to_le_bytes(), &mut cfg)
            .unwrap();
        assert_eq!(b.read_u32(0x3000, &cfg), 0x5566_7788);
        assert_eq!(b.read_u32(0x3004, &cfg), 0x1122_3344);
        let mut q = [0u8; 8];
        b.read(0x3000, &mut q, &cfg).unwrap();
        assert_eq!(u64::from_le_bytes(q), 0x1122_3344_5566_7788);
        // Unaligned access across a register boundary.
        b.write(0x3002, &[0xaa, 0xbb, 0xcc, 0xdd], &mut cfg)
            .unwrap();
        assert_eq!(b.read_u32(0x3000, &cfg), 0xbbaa_7788);
        assert_eq!(b.read_u32(0x3004, &cfg), 0x1122_ddcc);
    }

    #[test]
    fn config_mirror_reads_and_writes_config_space() {
        let mut cfg = config();
        let mut b = bar0();
        assert_eq!(b.read_u32(NV_PCFG, &cfg), 0x2684_10de);
        assert_eq!(b.read_u32(NV_PCFG + 8, &cfg), 0x0300_00a1);
        // Writes go through the config-space masks.
        b.write(
            u64::from(NV_PCFG + COMMAND as u32),
            &0xffffu16.to_le_bytes(),
            &mut cfg,
        )
        .unwrap();
        assert_eq!(cfg.read_u16(COMMAND), 0x0546);
        b.write(u64::from(NV_PCFG), &[0; 4], &mut cfg).unwrap();
        assert_eq!(
            cfg.read_u16(0),
            0x10de,
            "vendor ID stays read-only through the mirror"
        );
        assert_eq!(b.read_u32(NV_PCFG + NV_PCFG_SIZE - 4, &cfg), 0);
        assert_eq!(
            b.read_u32(NV_PCFG + NV_PCFG_SIZE, &cfg),
            UNWRITTEN,
            "past the mirror"
        );
        assert_eq!(b.written_registers(), 0);
    }

    #[test]
    fn dead_device_reads_all_ones_and_drops_writes() {
        let mut cfg = config();
        let mut b = Bar0::new(0x180000a1, 0x180a1000, false);
        assert!(!b.responds());
        for off in [NV_PMC_BOOT_0, NV_PMC_BOOT_42, NV_PCFG, 0x1000] {
            assert_eq!(b.read_u32(off, &cfg), ALL_ONES, "{off:#x}");
        }
        b.write(0x1000, &[1, 2, 3, 4], &mut cfg).unwrap();
        b.write(u64::from(NV_PCFG + 4), &[0x06, 0], &mut cfg)
            .unwrap();
        assert_eq!(b.written_registers(), 0);
        assert_eq!(cfg.read_u16(COMMAND), 0);
        let mut q = [0u8; 8];
        b.read(0x10, &mut q, &cfg).unwrap();
        assert_eq!(q, [0xff; 8]);
    }

    #[test]
    fn reset_forgets_written_registers() {
        let mut cfg = config();
        let mut b = bar0();
        b.write(0x1000, &7u32.to_le_bytes(), &mut cfg).unwrap();
        b.reset();
        assert_eq!(b.read_u32(0x1000, &cfg), UNWRITTEN);
        assert_eq!(b.read_u32(0, &cfg), 0x192000a1);
    }

    #[test]
    fn out_of_range_accesses_are_refused() {
        let mut cfg = config();
        let mut b = bar0();
        let mut buf = [0u8; 4];
        assert!(b.read(BAR0_SIZE - 2, &mut buf, &cfg).is_err());
        assert!(b.read(BAR0_SIZE, &mut buf, &cfg).is_err());
        assert!(b.read(u64::MAX - 1, &mut buf, &cfg).is_err());
        assert!(b.write(BAR0_SIZE, &buf, &mut cfg).is_err());
        assert!(b.read(BAR0_SIZE - 4, &mut buf, &cfg).is_ok());
        assert_eq!(b.read_u32(BAR0_SIZE as u32, &cfg), ALL_ONES);
    }
}
