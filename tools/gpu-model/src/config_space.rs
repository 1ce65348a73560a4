//! PCI Express endpoint configuration space with per-bit write semantics.
//!
//! The 4 KiB space is held as bytes with two masks beside it:
//! - `wmask`: bits software may change (everything else is read-only),
//! - `w1cmask`: bits that are cleared by writing 1 (status bits).
//!
//! A write of value `v` to a byte stores `(old & !wmask) | (v & wmask)` and then clears
//! `old & v & w1cmask`. BAR sizing falls out of the masks: the address bits of a BAR below
//! its size are read-only zero and its type bits are read-only, so writing all-ones and
//! reading back yields the size mask with the type bits, as on hardware.
//!
//! Layout of the capability list (the offsets NVIDIA boards use):
//! `0x60` power management (v3), `0x68` MSI (64-bit, one vector), `0x78` PCI Express
//! (v2, endpoint). The extended space from `0x100` is present and empty (header 0).

use std::fmt;

/// Size of the configuration space of a PCI Express function.
pub const CONFIG_SPACE_SIZE: usize = 4096;

/// Offset of the vendor ID.
pub const VENDOR_ID: usize = 0x00;
/// Offset of the device ID.
pub const DEVICE_ID: usize = 0x02;
/// Offset of the command register.
pub const COMMAND: usize = 0x04;
/// Offset of the status register.
pub const STATUS: usize = 0x06;
/// Offset of the revision ID.
pub const REVISION_ID: usize = 0x08;
/// Offset of the class code (3 bytes: programming interface, subclass, base class).
pub const CLASS_CODE: usize = 0x09;
/// Offset of the cache line size register.
pub const CACHE_LINE_SIZE: usize = 0x0c;
/// Offset of the header type.
pub const HEADER_TYPE: usize = 0x0e;
/// Offset of BAR 0; BAR n is at `BAR0 + 4 * n`.
pub const BAR0: usize = 0x10;
/// Offset of the subsystem vendor ID.
pub const SUBSYSTEM_VENDOR_ID: usize = 0x2c;
/// Offset of the subsystem ID.
pub const SUBSYSTEM_ID: usize = 0x2e;
/// Offset of the expansion ROM BAR.
pub const ROM_BAR: usize = 0x30;
/// Offset of the capability list pointer.
pub const CAPABILITIES_POINTER: usize = 0x34;
/// Offset of the interrupt line register.
pub const INTERRUPT_LINE: usize = 0x3c;
/// Offset of the interrupt pin register.
pub const INTERRUPT_PIN: usize = 0x3d;

/// Offset of the power management capability.
pub const PM_CAP: usize = 0x60;
/// Offset of the MSI capability.
pub const MSI_CAP: usize = 0x68;
/// Offset of the PCI Express capability.
pub const PCIE_CAP: usize = 0x78;
/// Offset where the extended capability list starts.
pub const EXTENDED_CAPS: usize = 0x100;

/// Capability ID of power management.
pub const CAP_ID_PM: u8 = 0x01;
/// Capability ID of MSI.
pub const CAP_ID_MSI: u8 = 0x05;
/// Capability ID of PCI Express.
pub const CAP_ID_PCIE: u8 = 0x10;

/// Command register: I/O space enable.
pub const COMMAND_IO: u16 = 1 << 0;
/// Command register: memory space enable.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command register: bus master enable.
pub const COMMAND_MASTER: u16 = 1 << 2;
/// Command register: parity error response.
pub const COMMAND_PARITY: u16 = 1 << 6;
/// Command register: SERR# enable.
pub const COMMAND_SERR: u16 = 1 << 8;
/// Command register: INTx disable.
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;

/// Status register: capability list present.
pub const STATUS_CAP_LIST: u16 = 1 << 4;
/// Status register bits that are write-1-to-clear (error bits 8, 11..15).
pub const STATUS_W1C: u16 = 0xf900;

/// BAR type bits: 64-bit memory BAR.
pub const BAR_MEM_64: u32 = 0b100;
/// BAR type bits: prefetchable memory.
pub const BAR_PREFETCH: u32 = 0b1000;

/// The kind of a memory BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// 32-bit, non-prefetchable memory (registers).
    Mem32,
    /// 64-bit, prefetchable memory (apertures); occupies BAR n and n+1.
    Mem64Prefetchable,
}

/// One memory BAR of the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// BAR number, 0..=5.
    pub index: usize,
    /// Size in bytes: a power of two, at least 16; at most 2 GiB for [`BarKind::Mem32`].
    pub size: u64,
    /// 32-bit or 64-bit prefetchable.
    pub kind: BarKind,
}

/// What identifies the function on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Vendor ID.
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// Revision ID.
    pub revision_id: u8,
    /// 24-bit class code (base class, subclass, programming interface).
    pub class_code: u32,
    /// Subsystem vendor ID.
    pub subsystem_vendor_id: u16,
    /// Subsystem ID.
    pub subsystem_id: u16,
}

/// A BAR layout that cannot be presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// BAR number above 5, or a 64-bit BAR at 5.
    BadIndex(usize),
    /// Two BARs use the same register.
    Overlap(usize),
    /// Size not a power of two, below 16, or above 2 GiB for a 32-bit BAR.
    BadSize(usize, u64),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::BadIndex(i) => write!(f, "BAR {i} cannot be placed"),
            LayoutError::Overlap(i) => write!(f, "BAR {i} overlaps another BAR"),
            LayoutError::BadSize(i, s) => write!(f, "BAR {i} has an invalid size {s:#x}"),
        }
    }
}

impl std::error::Error for LayoutError {}

pub use crate::OutOfRange;

/// The configuration space of one PCI Express endpoint.
///
/// Invariant: `data`, `wmask`, `w1cmask` and `power_on` are all [`CONFIG_SPACE_SIZE`] bytes;
/// `power_on` is the content at construction, restored by [`ConfigSpace::reset`].
#[derive(Clone)]
pub struct ConfigSpace {
    data: Box<[u8; CONFIG_SPACE_SIZE]>,
    wmask: Box<[u8; CONFIG_SPACE_SIZE]>,
    w1cmask: Box<[u8; CONFIG_SPACE_SIZE]>,
    power_on: Box<[u8; CONFIG_SPACE_SIZE]>,
}

impl fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSpace")
            .field(
                "vendor_id",
                &format_args!("{:#06x}", self.read_u16(VENDOR_ID)),
            )
            .field(
                "device_id",
                &format_args!("{:#06x}", self.read_u16(DEVICE_ID)),
            )
            .finish_non_exhaustive()
    }
}

impl ConfigSpace {
    /// Builds the power-on configuration space of an endpoint with these BARs.
    pub fn new(id: &Identity, bars: &[Bar]) -> Result<Self, LayoutError> {
        let mut cs = Self {
            data: Box::new([0; CONFIG_SPACE_SIZE]),
            wmask: Box::new([0; CONFIG_SPACE_SIZE]),
            w1cmask: Box::new([0; CONFIG_SPACE_SIZE]),
            power_on: Box::new([0; CONFIG_SPACE_SIZE]),
        };

        cs.set_u16(VENDOR_ID, id.vendor_id);
        cs.set_u16(DEVICE_ID, id.device_id);
        cs.set_wmask_u16(
            COMMAND,
            COMMAND_MEMORY | COMMAND_MASTER | COMMAND_PARITY | COMMAND_SERR | COMMAND_INTX_DISABLE,
        );
        cs.set_u16(STATUS, STATUS_CAP_LIST);
        cs.set_w1c_u16(STATUS, STATUS_W1C);
        cs.data[REVISION_ID] = id.revision_id;
        cs.data[CLASS_CODE] = id.class_code as u8;
        cs.data[CLASS_CODE + 1] = (id.class_code >> 8) as u8;
        cs.data[CLASS_CODE + 2] = (id.class_code >> 16) as u8;
        cs.wmask[CACHE_LINE_SIZE] = 0xff;
        cs.data[HEADER_TYPE] = 0x00;
        cs.set_u16(SUBSYSTEM_VENDOR_ID, id.subsystem_vendor_id);
        cs.set_u16(SUBSYSTEM_ID, id.subsystem_id);
        cs.data[CAPABILITIES_POINTER] = PM_CAP as u8;
        cs.wmask[INTERRUPT_LINE] = 0xff;
        cs.data[INTERRUPT_PIN] = 1; // INTA#

        cs.place_bars(bars)?;
        cs.add_pm_cap(MSI_CAP as u8);
        cs.add_msi_cap(PCIE_CAP as u8);
        cs.add_pcie_cap(0);

        cs.power_on.copy_from_slice(&cs.data[..]);
        Ok(cs)
    }

    fn place_bars(&mut self, bars: &[Bar]) -> Result<(), LayoutError> {
        let mut used = [false; 6];
        for bar in bars {
            let regs = match bar.kind {
                BarKind::Mem32 => 1,
                BarKind::Mem64Prefetchable => 2,
            };
            if bar.index + regs > 6 {
                return Err(LayoutError::BadIndex(bar.index));
            }
            let max = match bar.kind {
                BarKind::Mem32 => 1 << 31,
                BarKind::Mem64Prefetchable => 1 << 63,
            };
            if !bar.size.is_power_of_two() || bar.size < 16 || bar.size > max {
                return Err(LayoutError::BadSize(bar.index, bar.size));
            }
            for slot in &mut used[bar.index..bar.index + regs] {
                if *slot {
                    return Err(LayoutError::Overlap(bar.index));
                }
                *slot = true;
            }
            let addr_mask = !(bar.size - 1);
            let off = BAR0 + 4 * bar.index;
            match bar.kind {
                BarKind::Mem32 => {
                    self.set_u32(off, 0);
                    self.set_wmask_u32(off, addr_mask as u32 & !0xf);
                }
                BarKind::Mem64Prefetchable => {
                    self.set_u32(off, BAR_MEM_64 | BAR_PREFETCH);
                    self.set_wmask_u32(off, addr_mask as u32 & !0xf);
                    self.set_u32(off + 4, 0);
                    self.set_wmask_u32(off + 4, (addr_mask >> 32) as u32);
                }
            }
        }
        Ok(())
    }

    fn add_pm_cap(&mut self, next: u8) {
        let c = PM_CAP;
        self.data[c] = CAP_ID_PM;
        self.data[c + 1] = next;
        // PMC: version 3, no PME, no D1/D2.
        self.set_u16(c + 2, 0x0003);
        // PMCSR: power state (1:0) writable; No_Soft_Reset (bit 3) set.
        self.set_u16(c + 4, 0x0008);
        self.set_wmask_u16(c + 4, 0x0003);
    }

    fn add_msi_cap(&mut self, next: u8) {
        let c = MSI_CAP;
        self.data[c] = CAP_ID_MSI;
        self.data[c + 1] = next;
        // Message control: 64-bit capable (bit 7), one vector (MMC 0); enable (bit 0) and
        // multiple message enable (6:4) writable.
        self.set_u16(c + 2, 0x0080);
        self.set_wmask_u16(c + 2, 0x0071);
        self.set_wmask_u32(c + 4, 0xffff_fffc); // address low, dword aligned
        self.set_wmask_u32(c + 8, 0xffff_ffff); // address high
        self.set_wmask_u16(c + 12, 0xffff); // data
    }

    fn add_pcie_cap(&mut self, next: u8) {
        let c = PCIE_CAP;
        self.data[c] = CAP_ID_PCIE;
        self.data[c + 1] = next;
        // PCIe capabilities: version 2, device/port type 0 (endpoint).
        self.set_u16(c + 0x02, 0x0002);
        // Device capabilities: max payload 256 B, role-based error reporting.
        self.set_u32(c + 0x04, 0x0000_8001);
        // Device control: error reporting enables (3:0), relaxed ordering (4), max payload
        // (7:5), extended tag (8), aux power (10), no snoop (11), max read request (14:12).
        self.set_u16(c + 0x08, 0x2810);
        self.set_wmask_u16(c + 0x08, 0x7dff);
        // Device status: error detected bits (3:0) are write-1-to-clear.
        self.set_w1c_u16(c + 0x0a, 0x000f);
        // Link capabilities: 16 GT/s, x16.
        self.set_u32(c + 0x0c, 0x0000_0104);
        // Link control: ASPM (1:0), RCB (3), common clock (6), extended synch (7).
        self.set_wmask_u16(c + 0x10, 0x00cb);
        // Link status: 16 GT/s, x16.
        self.set_u16(c + 0x12, 0x0104);
        // Device control 2: completion timeout value (3:0) and disable (4).
        self.set_wmask_u16(c + 0x28, 0x001f);
        // Link capabilities 2: 2.5, 5, 8 and 16 GT/s supported.
        self.set_u32(c + 0x2c, 0x0000_001e);
        // Link control 2: target link speed (3:0), 16 GT/s.
        self.set_u16(c + 0x30, 0x0004);
        self.set_wmask_u16(c + 0x30, 0x000f);
    }

    fn set_u16(&mut self, off: usize, v: u16) {
        self.data[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn set_u32(&mut self, off: usize, v: u32) {
        self.data[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn set_wmask_u16(&mut self, off: usize, v: u16) {
        self.wmask[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn set_wmask_u32(&mut self, off: usize, v: u32) {
        self.wmask[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn set_w1c_u16(&mut self, off: usize, v: u16) {
        self.w1cmask[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }

    fn range(offset: u64, len: usize) -> Result<std::ops::Range<usize>, OutOfRange> {
        let err = OutOfRange {
            region: "config",
            offset,
            len,
        };
        let start = usize::try_from(offset).map_err(|_| err)?;
        let end = start.checked_add(len).ok_or(err)?;
        if end > CONFIG_SPACE_SIZE {
            return Err(err);
        }
        Ok(start..end)
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let r = Self::range(offset, buf.len())?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }

    /// Writes `data` at `offset`, honouring the read-only and write-1-to-clear bits.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), OutOfRange> {
        let r = Self::range(offset, data.len())?;
        for (i, &v) in r.zip(data) {
            let old = self.data[i];
            let w = self.wmask[i];
            let mut new = (old & !w) | (v & w);
            new &= !(v & self.w1cmask[i]);
            self.data[i] = new;
        }
        Ok(())
    }

    /// Reads a little-endian 16-bit field; 0 when out of range.
    pub fn read_u16(&self, offset: usize) -> u16 {
        let mut b = [0; 2];
        match self.read(offset as u64, &mut b) {
            Ok(()) => u16::from_le_bytes(b),
            Err(_) => 0,
        }
    }

    /// Reads a little-endian 32-bit field; 0 when out of range.
    pub fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0; 4];
        match self.read(offset as u64, &mut b) {
            Ok(()) => u32::from_le_bytes(b),
            Err(_) => 0,
        }
    }

    /// Writes a 32-bit value through the write masks (as the guest would).
    pub fn write_u32(&mut self, offset: usize, value: u32) -> Result<(), OutOfRange> {
        self.write(offset as u64, &value.to_le_bytes())
    }

    /// Writes a 16-bit value through the write masks (as the guest would).
    pub fn write_u16(&mut self, offset: usize, value: u16) -> Result<(), OutOfRange> {
        self.write(offset as u64, &value.to_le_bytes())
    }

    /// Restores the power-on content (BARs unassigned, command register 0, ...).
    pub fn reset(&mut self) {
        self.data.copy_from_slice(&self.power_on[..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            vendor_id: 0x10de,
            device_id: 0x2330,
            revision_id: 0xa1,
            class_code: 0x030200,
            subsystem_vendor_id: 0x10de,
            subsystem_id: 0x2330,
        }
    }

    fn gpu_bars(bar1: u64) -> Vec<Bar> {
        vec![
            Bar {
                index: 0,
                size: 16 << 20,
                kind: BarKind::Mem32,
            },
            Bar {
                index: 1,
                size: bar1,
                kind: BarKind::Mem64Prefetchable,
            },
            Bar {
                index: 3,
                size: 32 << 20,
                kind: BarKind::Mem64Prefetchable,
            },
        ]
    }

    fn cs(bar1: u64) -> ConfigSpace {
        ConfigSpace::new(&id(), &gpu_bars(bar1)).unwrap()
    }

    /// Writes all-ones to BAR n (and n+1 for 64-bit) and decodes the size as an OS does.
    fn size_bar(c: &mut ConfigSpace, index: usize) -> (u64, u32) {
        let off = BAR0 + 4 * index;
        let orig = c.read_u32(off);
        c.write_u32(off, 0xffff_ffff).unwrap();
        let lo = c.read_u32(off);
        let flags = lo & 0xf;
        let mask = if flags & BAR_MEM_64 != 0 {
            c.write_u32(off + 4, 0xffff_ffff).unwrap();
            let hi = c.read_u32(off + 4);
            (u64::from(hi) << 32) | u64::from(lo & !0xf)
        } else {
            u64::from(lo & !0xf) | 0xffff_ffff_0000_0000
        };
        c.write_u32(off, orig).unwrap();
        (!mask + 1, flags)
    }

    #[test]
    fn identity_is_presented() {
        let c = cs(256 << 20);
        assert_eq!(c.read_u16(VENDOR_ID), 0x10de);
        assert_eq!(c.read_u16(DEVICE_ID), 0x2330);
        assert_eq!(c.read_u32(0x08), 0x030200a1);
        assert_eq!(c.read_u16(SUBSYSTEM_VENDOR_ID), 0x10de);
        assert_eq!(c.read_u16(SUBSYSTEM_ID), 0x2330);
        assert_eq!(c.data[HEADER_TYPE], 0);
        assert_eq!(c.data[INTERRUPT_PIN], 1);
    }

    #[test]
    fn read_only_fields_ignore_writes() {
        let mut c = cs(256 << 20);
        for off in [
            VENDOR_ID,
            REVISION_ID,
            HEADER_TYPE,
            SUBSYSTEM_VENDOR_ID,
            CAPABILITIES_POINTER,
            0x200,
        ] {
            let before = c.read_u32(off);
            c.write_u32(off, 0x5a5a_5a5a).unwrap();
            c.write_u32(off, 0).unwrap();
            assert_eq!(c.read_u32(off), before, "offset {off:#x}");
        }
        // No ROM BAR, no BAR 5: hardwired to zero.
        c.write_u32(ROM_BAR, 0xffff_ffff).unwrap();
        assert_eq!(c.read_u32(ROM_BAR), 0);
        c.write_u32(BAR0 + 20, 0xffff_ffff).unwrap();
        assert_eq!(c.read_u32(BAR0 + 20), 0);
    }

    #[test]
    fn command_register_masks() {
        let mut c = cs(256 << 20);
        c.write_u16(COMMAND, 0xffff).unwrap();
        let want =
            COMMAND_MEMORY | COMMAND_MASTER | COMMAND_PARITY | COMMAND_SERR | COMMAND_INTX_DISABLE;
        assert_eq!(c.read_u16(COMMAND), want);
        assert_eq!(
            c.read_u16(COMMAND) & COMMAND_IO,
            0,
            "no I/O BAR, so no I/O decode"
        );
        c.write_u16(COMMAND, COMMAND_MEMORY).unwrap();
        assert_eq!(c.read_u16(COMMAND), COMMAND_MEMORY);
        // Byte writes reach only their byte.
        c.write(COMMAND as u64 + 1, &[0x04]).unwrap();
        assert_eq!(c.read_u16(COMMAND), COMMAND_MEMORY | COMMAND_INTX_DISABLE);
    }

    #[test]
    fn status_error_bits_are_write_one_to_clear() {
        let mut c = cs(256 << 20);
        c.data[STATUS + 1] = 0xf9; // as if the device had flagged every error
        c.write_u16(STATUS, 0x1000).unwrap(); // clear received target abort only
        assert_eq!(c.read_u16(STATUS), STATUS_CAP_LIST | 0xe900);
        c.write_u16(STATUS, 0xffff).unwrap();
        assert_eq!(
            c.read_u16(STATUS),
            STATUS_CAP_LIST,
            "cap-list bit is read-only"
        );
    }

    #[test]
    fn bar_sizing_32_bit() {
        let mut c = cs(256 << 20);
        assert_eq!(size_bar(&mut c, 0), (16 << 20, 0));
        c.write_u32(BAR0, 0xffff_ffff).unwrap();
        assert_eq!(c.read_u32(BAR0), 0xff00_0000);
        c.write_u32(BAR0, 0xfd12_3456).unwrap();
        assert_eq!(
            c.read_u32(BAR0),
            0xfd00_0000,
            "address below the size is read-only"
        );
    }

    #[test]
    fn bar_sizing_64_bit() {
        for size in [256u64 << 20, 4 << 30, 128 << 30, 1 << 40] {
            let mut c = cs(size);
            assert_eq!(
                size_bar(&mut c, 1),
                (size, BAR_MEM_64 | BAR_PREFETCH),
                "{size:#x}"
            );
            assert_eq!(size_bar(&mut c, 3), (32 << 20, BAR_MEM_64 | BAR_PREFETCH));
        }
        let mut c = cs(128 << 30);
        c.write_u32(BAR0 + 4, 0xffff_ffff).unwrap();
        c.write_u32(BAR0 + 8, 0xffff_ffff).unwrap();
        assert_eq!(
            c.read_u32(BAR0 + 4),
            0x0000_000c,
            "128 GiB: whole low dword is size"
        );
        assert_eq!(c.read_u32(BAR0 + 8), 0xffff_ffe0);
        // Assign an address and read it back.
        c.write_u32(BAR0 + 4, 0).unwrap();
        c.write_u32(BAR0 + 8, 0x20).unwrap();
        assert_eq!(c.read_u32(BAR0 + 4), 0xc);
        assert_eq!(c.read_u32(BAR0 + 8), 0x20);
    }

    #[test]
    fn capability_list_walks() {
        let c = cs(256 << 20);
        let mut seen = vec![];
        let mut ptr = c.data[CAPABILITIES_POINTER] as usize;
        while ptr != 0 {
            assert_eq!(ptr % 4, 0);
            seen.push((ptr, c.data[ptr]));
            ptr = c.data[ptr + 1] as usize;
            assert!(seen.len() < 16, "loop in capability list");
        }
        assert_eq!(
            seen,
            vec![
                (PM_CAP, CAP_ID_PM),
                (MSI_CAP, CAP_ID_MSI),
                (PCIE_CAP, CAP_ID_PCIE)
            ]
        );
        assert_eq!(c.read_u32(EXTENDED_CAPS), 0, "empty extended list");
        // PCIe endpoint, capability version 2.
        assert_eq!(c.read_u16(PCIE_CAP + 2), 0x0002);
    }

    #[test]
    fn msi_and_pm_masks() {
        let mut c = cs(256 << 20);
        c.write_u16(MSI_CAP + 2, 0xffff).unwrap();
        assert_eq!(
            c.read_u16(MSI_CAP + 2),
            0x00f1,
            "64-bit flag stays, enable + MME set"
        );
        c.write_u32(MSI_CAP + 4, 0xfee0_1003).unwrap();
        assert_eq!(c.read_u32(MSI_CAP + 4), 0xfee0_1000);
        c.write_u32(MSI_CAP + 8, 0x1234_5678).unwrap();
        assert_eq!(c.read_u32(MSI_CAP + 8), 0x1234_5678);
        c.write_u16(MSI_CAP + 12, 0x4021).unwrap();
        assert_eq!(c.read_u16(MSI_CAP + 12), 0x4021);
        c.write_u16(PM_CAP + 4, 0xffff).unwrap();
        assert_eq!(
            c.read_u16(PM_CAP + 4),
            0x000b,
            "D3hot requested, No_Soft_Reset kept"
        );
        c.write_u16(PM_CAP + 2, 0).unwrap();
        assert_eq!(c.read_u16(PM_CAP + 2), 0x0003);
    }

    #[test]
    fn reset_restores_power_on_state() {
        let mut c = cs(256 << 20);
        let before = *c.data;
        c.write_u16(COMMAND, 0x0006).unwrap();
        c.write_u32(BAR0, 0xfd00_0000).unwrap();
        c.write_u32(BAR0 + 4, 0xe000_0000).unwrap();
        c.write_u16(MSI_CAP + 2, 1).unwrap();
        assert_ne!(*c.data, before);
        c.reset();
        assert_eq!(*c.data, before);
    }

    #[test]
    fn out_of_range_accesses_are_refused() {
        let mut c = cs(256 << 20);
        let mut b = [0u8; 4];
        assert!(c.read(4094, &mut b).is_err());
        assert!(c.write(4096, &[1]).is_err());
        assert!(c.read(u64::MAX, &mut b).is_err());
        assert!(c.read(4092, &mut b).is_ok());
        assert_eq!(c.read_u32(4096), 0);
    }

    #[test]
    fn bad_layouts_are_refused() {
        let bad = |bars: &[Bar]| ConfigSpace::new(&id(), bars).unwrap_err();
        let b = |index, size, kind| Bar { index, size, kind };
        assert_eq!(
            bad(&[b(5, 1 << 20, BarKind::Mem64Prefetchable)]),
            LayoutError::BadIndex(5)
        );
        assert_eq!(
            bad(&[b(6, 1 << 20, BarKind::Mem32)]),
            LayoutError::BadIndex(6)
        );
        assert_eq!(
            bad(&[
                b(1, 1 << 20, BarKind::Mem64Prefetchable),
                b(2, 1 << 20, BarKind::Mem32)
            ]),
            LayoutError::Overlap(2)
        );
        assert_eq!(
            bad(&[b(0, 3 << 20, BarKind::Mem32)]),
            LayoutError::BadSize(0, 3 << 20)
        );
        assert_eq!(
            bad(&[b(0, 4 << 30, BarKind::Mem32)]),
            LayoutError::BadSize(0, 4 << 30)
        );
        assert_eq!(bad(&[b(0, 8, BarKind::Mem32)]), LayoutError::BadSize(0, 8));
    }
}
