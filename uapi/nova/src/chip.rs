//! Chips as Nova's probe line names them: the chip (`GH100`) and its architecture (`Hopper`)
//! from the chipset value, the revision (`A1`) and sizes (`128 GiB`). The uAPI does not carry
//! the chip: these are for reading and writing the kernel log (the tests' expectations).
//!
//! The chipset is `architecture << 4 | implementation`, as `NV_PMC_BOOT_42` identifies the chip;
//! [`CHIPS`] lists the chipsets with a GSP, which Nova drives. A value that is not among them
//! is still printable (`chipset 0x1f3`), never a panic.
//!
//! ```
//! use nova::{Chipset, Revision};
//!
//! assert_eq!(Chipset(0x180).describe(), "GH100 (Hopper)");
//! assert_eq!(Chipset::from_name("gb202"), Some(Chipset(0x1b2)));
//! assert_eq!(Revision(0xa1).to_string(), "A1");
//! assert_eq!(nova::chip::format_size(128 << 30), "128 GiB");
//! ```

use std::fmt;

/// The chips Nova drives (every GSP-capable chipset) and their chipset values, in
/// architecture order.
pub const CHIPS: [(&str, u64); 24] = [
    ("TU102", 0x162),
    ("TU104", 0x164),
    ("TU106", 0x166),
    ("TU117", 0x167),
    ("TU116", 0x168),
    ("GA100", 0x170),
    ("GA102", 0x172),
    ("GA103", 0x173),
    ("GA104", 0x174),
    ("GA106", 0x176),
    ("GA107", 0x177),
    ("GH100", 0x180),
    ("AD102", 0x192),
    ("AD103", 0x193),
    ("AD104", 0x194),
    ("AD106", 0x196),
    ("AD107", 0x197),
    ("GB100", 0x1a0),
    ("GB102", 0x1a2),
    ("GB202", 0x1b2),
    ("GB203", 0x1b3),
    ("GB205", 0x1b5),
    ("GB206", 0x1b6),
    ("GB207", 0x1b7),
];

/// The name of architecture `architecture` (the chipset's upper bits) among those Nova drives:
/// Turing (0x16), Ampere (0x17), Hopper (0x18), Ada (0x19, Ada Lovelace), Blackwell (0x1a, data
/// centre, and 0x1b, consumer); `None` for any other.
pub fn architecture_name(architecture: u64) -> Option<&'static str> {
    Some(match architecture {
        0x16 => "Turing",
        0x17 => "Ampere",
        0x18 => "Hopper",
        0x19 => "Ada",
        0x1a | 0x1b => "Blackwell",
        _ => return None,
    })
}

/// A chipset value: `architecture << 4 | implementation`. Its
/// `Display` is the chip's name (`GH100`), or `chipset 0x1f3` for a value not in [`CHIPS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Chipset(pub u64);

impl Chipset {
    /// The architecture: the value without its implementation nibble (0x18 for GH100).
    pub const fn architecture(self) -> u64 {
        self.0 >> 4
    }

    /// The implementation: the low nibble (0 for GH100).
    pub const fn implementation(self) -> u64 {
        self.0 & 0xf
    }

    /// The chip's name as NVIDIA writes it (`GH100`), if it is one of [`CHIPS`].
    pub fn name(self) -> Option<&'static str> {
        CHIPS.iter().find(|(_, v)| *v == self.0).map(|(n, _)| *n)
    }

    /// The architecture's name ([`architecture_name`]), if Nova drives that architecture.
    pub fn architecture_name(self) -> Option<&'static str> {
        architecture_name(self.architecture())
    }

    /// The chipset of the chip named `name`, in any case (`gh100`, the GPU model's profile
    /// names, or `GH100`); `None` for a name not in [`CHIPS`].
    pub fn from_name(name: &str) -> Option<Self> {
        CHIPS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| Self(*v))
    }

    /// The chip and its architecture, as the probe line names them: `GH100 (Hopper)`;
    /// `chipset 0x169 (Turing)` for an unknown chip of a known architecture, `chipset 0x1f3`
    /// when the architecture is unknown too.
    pub fn describe(self) -> String {
        match self.architecture_name() {
            Some(arch) => format!("{self} ({arch})"),
            None => self.to_string(),
        }
    }
}

impl fmt::Display for Chipset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "chipset {:#x}", self.0),
        }
    }
}

/// A chip revision: `major << 4 | minor`. Its `Display` is the
/// way NVIDIA and Nova's probe line write it: the major revision as a letter counted from 0xa
/// (`A`), the minor one as a hexadecimal digit, so 0xa1 is `A1` and 0xb2 `B2`. A value with a
/// major revision below 0xa, or above one byte, prints as hexadecimal (`0x01`, `0x1a1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision(pub u64);

impl Revision {
    /// The major revision (the high nibble of the byte: 0xa for `A1`).
    pub const fn major(self) -> u64 {
        (self.0 >> 4) & 0xf
    }

    /// The minor revision (the low nibble: 1 for `A1`).
    pub const fn minor(self) -> u64 {
        self.0 & 0xf
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0xff || self.major() < 0xa {
            return write!(f, "{:#04x}", self.0);
        }
        let letter = char::from(b'A' + (self.major() - 0xa) as u8);
        write!(f, "{letter}{:x}", self.minor())
    }
}

/// `bytes` as Nova's probe line prints a BAR size: `N GiB` when a whole number of GiB, else
/// `N MiB` when a whole number of MiB, else `N bytes` (also for 0).
pub fn format_size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    match bytes {
        0 => "0 bytes".to_string(),
        n if n % GIB == 0 => format!("{} GiB", n / GIB),
        n if n % MIB == 0 => format!("{} MiB", n / MIB),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chip_has_its_architecture_and_a_unique_value() {
        for (name, value) in CHIPS {
            let c = Chipset(value);
            assert_eq!(c.name(), Some(name));
            assert_eq!(Chipset::from_name(name), Some(c));
            assert_eq!(Chipset::from_name(&name.to_lowercase()), Some(c));
            let arch = c.architecture_name().unwrap_or_else(|| panic!("{name}"));
            let want = match &name[..2] {
                "TU" => "Turing",
                "GA" => "Ampere",
                "GH" => "Hopper",
                "AD" => "Ada",
                "GB" => "Blackwell",
                other => panic!("{other}"),
            };
            assert_eq!(arch, want, "{name}");
            assert_eq!(
                CHIPS.iter().filter(|(_, v)| *v == value).count(),
                1,
                "{name}"
            );
        }
    }

    #[test]
    fn chipsets_decode_as_the_facts_say() {
        let gh100 = Chipset(0x180);
        assert_eq!((gh100.architecture(), gh100.implementation()), (0x18, 0));
        assert_eq!(gh100.to_string(), "GH100");
        assert_eq!(gh100.describe(), "GH100 (Hopper)");
        assert_eq!(Chipset(0x162).describe(), "TU102 (Turing)");
        assert_eq!(Chipset(0x174).describe(), "GA104 (Ampere)");
        assert_eq!(Chipset(0x192).describe(), "AD102 (Ada)");
        assert_eq!(Chipset(0x1a0).describe(), "GB100 (Blackwell)");
        assert_eq!(Chipset(0x1b7).describe(), "GB207 (Blackwell)");
        assert_eq!(Chipset(0x1b2).implementation(), 2);
    }

    #[test]
    fn unknown_chipsets_print_their_value() {
        assert_eq!(Chipset(0x1f3).to_string(), "chipset 0x1f3");
        assert_eq!(Chipset(0x1f3).describe(), "chipset 0x1f3");
        assert_eq!(Chipset(0x169).describe(), "chipset 0x169 (Turing)");
        // Pre-GSP: not Nova's.
        assert_eq!(Chipset(0x140).describe(), "chipset 0x140");
        assert_eq!(Chipset(0).describe(), "chipset 0x0");
        assert_eq!(Chipset(u64::MAX).describe(), "chipset 0xffffffffffffffff");
        assert_eq!(Chipset::from_name("gv100"), None);
        assert_eq!(Chipset::from_name("dead"), None);
        assert_eq!(Chipset::from_name(""), None);
        for arch in [0, 0x14, 0x15, 0x1c, 0x3f, u64::MAX] {
            assert_eq!(architecture_name(arch), None, "{arch:#x}");
        }
    }

    #[test]
    fn revisions_print_as_nvidia_writes_them() {
        assert_eq!(Revision(0xa1).to_string(), "A1");
        assert_eq!(Revision(0xa0).to_string(), "A0");
        assert_eq!(Revision(0xb2).to_string(), "B2");
        assert_eq!(Revision(0xfa).to_string(), "Fa");
        assert_eq!((Revision(0xa1).major(), Revision(0xa1).minor()), (0xa, 1));
        assert_eq!(Revision(0x01).to_string(), "0x01");
        assert_eq!(Revision(0x91).to_string(), "0x91");
        assert_eq!(Revision(0x1a1).to_string(), "0x1a1");
        assert_eq!(Revision(u64::MAX).to_string(), "0xffffffffffffffff");
    }

    #[test]
    fn sizes_print_in_gib_mib_or_bytes() {
        assert_eq!(format_size(128 << 30), "128 GiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(256 << 20), "256 MiB");
        assert_eq!(format_size(1536 << 20), "1536 MiB");
        assert_eq!(format_size(1 << 40), "1024 GiB");
        assert_eq!(format_size(4096), "4096 bytes");
        assert_eq!(format_size((1 << 20) + 1), "1048577 bytes");
        assert_eq!(format_size(0), "0 bytes");
    }
}
