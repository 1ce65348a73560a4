// SPDX-License-Identifier: GPL-2.0

//! Which GPU a device is: its architecture, chipset and revision, and whether Nova drives it.
//!
//! Nova drives the GPUs whose GPU System Processor (GSP) runs NVIDIA's firmware: Turing and
//! newer. Older ones stay with nouveau.

use crate::{
    firmware::Flow,
    regs::{Bar0, Boot0, Boot42, ChipId},
};
use core::fmt;
use kernel::{device::Device, prelude::*};

/// The architectures Nova drives; the value is the architecture field of `NV_PMC_BOOT_0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Architecture {
    /// Turing.
    Turing = 0x16,
    /// Ampere.
    Ampere = 0x17,
    /// Hopper.
    Hopper = 0x18,
    /// Ada Lovelace.
    Ada = 0x19,
    /// Blackwell, data-centre chips.
    BlackwellDataCentre = 0x1a,
    /// Blackwell, consumer chips.
    Blackwell = 0x1b,
}

impl Architecture {
    /// How the architecture's GPUs boot their GSP.
    pub(crate) fn flow(self) -> Flow {
        match self {
            Self::Turing | Self::Ampere | Self::Ada => Flow::Booter,
            Self::Hopper | Self::BlackwellDataCentre | Self::Blackwell => Flow::Fsp,
        }
    }

    fn from_raw(architecture: u8) -> Option<Self> {
        Some(match architecture {
            0x16 => Self::Turing,
            0x17 => Self::Ampere,
            0x18 => Self::Hopper,
            0x19 => Self::Ada,
            0x1a => Self::BlackwellDataCentre,
            0x1b => Self::Blackwell,
            _ => return None,
        })
    }

    /// The architecture's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Turing => "Turing",
            Self::Ampere => "Ampere",
            Self::Hopper => "Hopper",
            Self::Ada => "Ada",
            Self::BlackwellDataCentre | Self::Blackwell => "Blackwell",
        }
    }
}

/// The name of a pre-GSP architecture, whose GPUs nouveau drives.
fn pre_gsp_name(architecture: u8) -> Option<&'static str> {
    Some(match architecture {
        0x0c | 0x0d => "Fermi",
        0x0e..=0x10 => "Kepler",
        0x11 | 0x12 => "Maxwell",
        0x13 => "Pascal",
        0x14 => "Volta",
        _ => return None,
    })
}

/// Defines [`Chipset`] from one table: each chipset's value, architecture, firmware folder and
/// family of signature in the GSP image, and the module's firmware list.
macro_rules! define_chipsets {
    ($($chip:ident = $value:literal, $arch:ident, $dir:literal, $family:literal;)*) => {
        /// The chipsets Nova drives.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) enum Chipset {
            $(
                #[doc = concat!("The ", stringify!($chip), " chipset.")]
                $chip,
            )*
        }

        impl Chipset {
            fn from_raw(chipset: u32) -> Option<Self> {
                match chipset {
                    $($value => Some(Self::$chip),)*
                    _ => None,
                }
            }

            /// The chipset's name, as NVIDIA writes it (`GH100`).
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Self::$chip => stringify!($chip),)*
                }
            }

            /// The chipset's architecture.
            pub(crate) fn architecture(self) -> Architecture {
                match self {
                    $(Self::$chip => Architecture::$arch,)*
                }
            }

            /// The folder of the chipset's firmware (`nvidia/<folder>/gsp/`).
            pub(crate) fn firmware_dir(self) -> &'static str {
                match self {
                    $(Self::$chip => $dir,)*
                }
            }

            /// The family whose signature the GSP image carries for this chipset, in its
            /// section `.fwsignature_<family>`.
            pub(crate) fn signature_family(self) -> &'static str {
                match self {
                    $(Self::$chip => $family,)*
                }
            }
        }

        $(
            // The table's architecture must be the one in the chipset's value.
            const _: () = assert!($value >> 4 == Architecture::$arch as u32);
            crate::firmware::module_firmware!($dir, $arch);
        )*
    };
}

define_chipsets! {
    TU102 = 0x162, Turing, "tu102", "tu10x";
    TU104 = 0x164, Turing, "tu104", "tu10x";
    TU106 = 0x166, Turing, "tu106", "tu10x";
    TU117 = 0x167, Turing, "tu117", "tu11x";
    TU116 = 0x168, Turing, "tu116", "tu11x";
    GA100 = 0x170, Ampere, "ga100", "ga100";
    GA102 = 0x172, Ampere, "ga102", "ga10x";
    GA103 = 0x173, Ampere, "ga103", "ga10x";
    GA104 = 0x174, Ampere, "ga104", "ga10x";
    GA106 = 0x176, Ampere, "ga106", "ga10x";
    GA107 = 0x177, Ampere, "ga107", "ga10x";
    GH100 = 0x180, Hopper, "gh100", "gh100";
    AD102 = 0x192, Ada, "ad102", "ad10x";
    AD103 = 0x193, Ada, "ad103", "ad10x";
    AD104 = 0x194, Ada, "ad104", "ad10x";
    AD106 = 0x196, Ada, "ad106", "ad10x";
    AD107 = 0x197, Ada, "ad107", "ad10x";
    GB100 = 0x1a0, BlackwellDataCentre, "gb100", "gb10x";
    GB102 = 0x1a2, BlackwellDataCentre, "gb102", "gb10x";
    GB202 = 0x1b2, Blackwell, "gb202", "gb20x";
    GB203 = 0x1b3, Blackwell, "gb203", "gb20x";
    GB205 = 0x1b5, Blackwell, "gb205", "gb20x";
    GB206 = 0x1b6, Blackwell, "gb206", "gb20x";
    GB207 = 0x1b7, Blackwell, "gb207", "gb20x";
}

/// A chip's revision, as NVIDIA writes it: the major revision as a letter from `0xa` (`A`)
/// and the minor one as a digit, `A1` for `0xa1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Revision {
    major: u8,
    minor: u8,
}

impl Revision {
    /// The revision as one byte: `major << 4 | minor`.
    pub(crate) fn value(self) -> u8 {
        self.major << 4 | self.minor
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.major >= 0xa {
            write!(f, "{}{:x}", char::from(b'A' + self.major - 0xa), self.minor)
        } else {
            write!(f, "{:#04x}", self.value())
        }
    }
}

/// What Nova drives: a chipset it knows, in a revision.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    /// The chipset.
    pub(crate) chipset: Chipset,
    /// The revision.
    pub(crate) revision: Revision,
}

/// Why Nova does not drive a device.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A register read all-ones: the device is gone or not powered.
    NoAnswer {
        /// The register's name.
        register: &'static str,
    },
    /// A GPU older than Fermi, told by `NV_PMC_BOOT_0` alone.
    PreFermi {
        /// `NV_PMC_BOOT_0` as read.
        boot0: u32,
    },
    /// A GPU without a GSP, Fermi to Volta.
    PreGsp {
        /// The chipset's value.
        chipset: u32,
        /// The architecture's name.
        architecture: &'static str,
        /// The chip's revision.
        revision: Revision,
    },
    /// An architecture Nova does not know.
    UnknownArchitecture {
        /// The architecture's value.
        architecture: u8,
        /// `NV_PMC_BOOT_42` as read.
        boot42: u32,
    },
    /// A chipset Nova does not know, of an architecture it knows.
    UnknownChipset {
        /// The chipset's value.
        chipset: u32,
        /// `NV_PMC_BOOT_42` as read.
        boot42: u32,
    },
}

impl Refusal {
    /// Says on `dev` what was found and why it is refused, in one line: at info level for GPUs
    /// that nouveau drives, as an error otherwise.
    pub(crate) fn report(&self, dev: &Device) {
        match *self {
            Self::NoAnswer { register } => dev_err!(
                dev,
                "{register} reads 0xffffffff: the GPU does not answer (gone or not powered)\n"
            ),
            Self::PreFermi { boot0 } => dev_info!(
                dev,
                "BOOT0 {boot0:#010x}: a GPU older than Fermi, not supported by nova; use \
                 nouveau\n"
            ),
            Self::PreGsp {
                chipset,
                architecture,
                revision,
            } => dev_info!(
                dev,
                "chipset {chipset:#x} ({architecture}), revision {revision}: not supported by \
                 nova; use nouveau\n"
            ),
            Self::UnknownArchitecture {
                architecture,
                boot42,
            } => dev_err!(
                dev,
                "unknown architecture {architecture:#x} (BOOT42 {boot42:#010x}), not supported \
                 by nova\n"
            ),
            Self::UnknownChipset { chipset, boot42 } => dev_err!(
                dev,
                "unknown chipset {chipset:#x} (BOOT42 {boot42:#010x}), not supported by nova\n"
            ),
        }
    }
}

impl Spec {
    /// Reads the GPU's identity from its registers and decides whether Nova drives it.
    ///
    /// As nova-core does: `NV_PMC_BOOT_0` only tells a GPU older than Fermi, whose
    /// `NV_PMC_BOOT_42` may not exist; from Fermi on, the identity is `NV_PMC_BOOT_42`'s, which
    /// is there and accurate on every such GPU, whatever `NV_PMC_BOOT_0` says.
    pub(crate) fn identify(bar: &Bar0) -> Result<Self, Refusal> {
        let boot0 = Boot0::read(bar);
        if boot0.is_all_ones() {
            return Err(Refusal::NoAnswer { register: "BOOT0" });
        }
        if boot0.is_older_than_fermi() {
            return Err(Refusal::PreFermi { boot0: boot0.raw() });
        }
        let boot42 = Boot42::read(bar);
        if boot42.is_all_ones() {
            return Err(Refusal::NoAnswer { register: "BOOT42" });
        }
        Self::decode(boot42.chip_id(), boot42.raw())
    }

    /// Decides from identity `id` (`boot42` is the raw register, for messages).
    fn decode(id: ChipId, boot42: u32) -> Result<Self, Refusal> {
        let chipset = u32::from(id.architecture) << 4 | u32::from(id.implementation);
        let revision = Revision {
            major: id.major_revision,
            minor: id.minor_revision,
        };
        if let Some(architecture) = pre_gsp_name(id.architecture) {
            return Err(Refusal::PreGsp {
                chipset,
                architecture,
                revision,
            });
        }
        if Architecture::from_raw(id.architecture).is_none() {
            return Err(Refusal::UnknownArchitecture {
                architecture: id.architecture,
                boot42,
            });
        }
        let chipset =
            Chipset::from_raw(chipset).ok_or(Refusal::UnknownChipset { chipset, boot42 })?;
        Ok(Self { chipset, revision })
    }
}
