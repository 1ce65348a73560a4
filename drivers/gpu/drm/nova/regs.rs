// SPDX-License-Identifier: GPL-2.0

//! The GPU's registers that Nova reads, each a type that decodes its fields.

use kernel::io::Io;

/// The size of BAR0, the GPU's register space, that Nova maps.
pub(crate) const BAR0_SIZE: usize = 16 << 20;

/// BAR0 as Nova maps it: every register offset below is checked against its size at build time.
pub(crate) type Bar0 = Io<BAR0_SIZE>;

/// What a read of a register returns when the device does not answer (surprise removal, link
/// down, not powered).
const ALL_ONES: u32 = !0;

/// Extracts bits `hi:lo` of `value`.
const fn field(value: u32, hi: u32, lo: u32) -> u32 {
    (value >> lo) & ((1 << (hi - lo + 1)) - 1)
}

/// The chip identity that `NV_PMC_BOOT_0` and `NV_PMC_BOOT_42` both carry, in their layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChipId {
    /// The architecture (`0x16` is Turing).
    pub(crate) architecture: u8,
    /// The implementation within the architecture.
    pub(crate) implementation: u8,
    /// The major revision (`0xa` for revision A1).
    pub(crate) major_revision: u8,
    /// The minor revision (`0x1` for revision A1).
    pub(crate) minor_revision: u8,
}

/// `NV_PMC_BOOT_0` (BAR0 + 0x0): in every NVIDIA GPU; Nova reads it only to tell a GPU older
/// than Fermi.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Boot0(u32);

impl Boot0 {
    const OFFSET: usize = 0x0;

    /// Reads the register.
    pub(crate) fn read(bar: &Bar0) -> Self {
        Self(bar.read32(Self::OFFSET))
    }

    /// The raw value, for messages.
    pub(crate) fn raw(self) -> u32 {
        self.0
    }

    /// Whether the read returned all-ones: the device does not answer.
    pub(crate) fn is_all_ones(self) -> bool {
        self.0 == ALL_ONES
    }

    /// Whether the GPU is older than Fermi: the architecture (bits 4:0 in 28:24, bit 5 in bit
    /// 8) below Fermi's 0x0c. Such a GPU may have no `NV_PMC_BOOT_42`.
    pub(crate) fn is_older_than_fermi(self) -> bool {
        (field(self.0, 28, 24) | field(self.0, 8, 8) << 5) < 0x0c
    }
}

/// `NV_PMC_BOOT_42` (BAR0 + 0xa00): the chip's identity, in every GPU from Fermi on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Boot42(u32);

impl Boot42 {
    const OFFSET: usize = 0xa00;

    /// Reads the register.
    pub(crate) fn read(bar: &Bar0) -> Self {
        Self(bar.read32(Self::OFFSET))
    }

    /// Whether the read returned all-ones: the device does not answer.
    pub(crate) fn is_all_ones(self) -> bool {
        self.0 == ALL_ONES
    }

    /// The raw value, for messages.
    pub(crate) fn raw(self) -> u32 {
        self.0
    }

    /// The identity: architecture in 29:24, implementation in 23:20, revision in 19:16
    /// (major) and 15:12 (minor).
    pub(crate) fn chip_id(self) -> ChipId {
        ChipId {
            architecture: field(self.0, 29, 24) as u8,
            implementation: field(self.0, 23, 20) as u8,
            major_revision: field(self.0, 19, 16) as u8,
            minor_revision: field(self.0, 15, 12) as u8,
        }
    }
}
