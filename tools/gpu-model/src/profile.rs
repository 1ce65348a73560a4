//! Chip profiles: which NVIDIA board the model pretends to be.
//!
//! A profile fixes everything the guest can observe about the board's identity: PCI device
//! ID, class code, revision, the VRAM aperture (BAR1) size, and the chip identification
//! registers `NV_PMC_BOOT_0` / `NV_PMC_BOOT_42` derived from the architecture and
//! implementation numbers in `shared/facts/nvidia-gpu.md`.
//!
//! Device IDs are those of a real board with that chip, and board names are that database's
//! (Debian's `pci.ids` 0.0~2025.06.09-1 of trixie, vendor `10de`, which names the device
//! `<CHIP>[GL|M] [<board>]`); suite nova-stub checks every profile against the database the
//! guests get. BAR1 is 256 MiB for consumer boards (no resizable BAR) and the power of two that
//! covers the VRAM for the data-centre boards.

use std::fmt;

/// PCI vendor ID of NVIDIA.
pub const NVIDIA_VENDOR_ID: u16 = 0x10de;

/// PCI class code of a VGA-compatible display controller (GeForce/Quadro boards).
pub const CLASS_VGA: u32 = 0x03_00_00;

/// PCI class code of a 3D controller (data-centre boards: T4, A100, H100, L4, B200, ...).
pub const CLASS_3D: u32 = 0x03_02_00;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Size of BAR0, the register space, on every profile.
pub const BAR0_SIZE: u64 = 16 * MIB;

/// Size of BAR3, the instance memory aperture, on every profile.
pub const BAR3_SIZE: u64 = 32 * MIB;

/// The value a read returns when the device does not answer (fallen off the bus, dead).
pub const ALL_ONES: u32 = 0xffff_ffff;

/// Architecture and implementation of a chip plus its revision: what `NV_PMC_BOOT_0` and
/// `NV_PMC_BOOT_42` encode.
///
/// Invariants: `architecture` fits in 6 bits, `implementation`, `major_rev` and `minor_rev`
/// in 4 bits each. [`ChipId::new`] enforces them; the decoders can only produce such values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChipId {
    architecture: u8,
    implementation: u8,
    major_rev: u8,
    minor_rev: u8,
}

impl ChipId {
    /// Builds a chip ID; `None` if a field does not fit its register field.
    pub const fn new(
        architecture: u8,
        implementation: u8,
        major_rev: u8,
        minor_rev: u8,
    ) -> Option<Self> {
        if architecture > 0x3f || implementation > 0xf || major_rev > 0xf || minor_rev > 0xf {
            return None;
        }
        Some(Self {
            architecture,
            implementation,
            major_rev,
            minor_rev,
        })
    }

    /// The architecture number (e.g. 0x18 for Hopper).
    pub const fn architecture(&self) -> u8 {
        self.architecture
    }

    /// The implementation number within the architecture (e.g. 0x0 for GH100).
    pub const fn implementation(&self) -> u8 {
        self.implementation
    }

    /// The chipset number: `architecture << 4 | implementation` (e.g. 0x180 for GH100).
    pub const fn chipset(&self) -> u16 {
        (self.architecture as u16) << 4 | self.implementation as u16
    }

    /// The revision as one byte, major in the high nibble (0xa1 is printed "A1").
    pub const fn revision(&self) -> u8 {
        self.major_rev << 4 | self.minor_rev
    }

    /// Encodes `NV_PMC_BOOT_0`: 3:0 minor revision, 7:4 major revision, 8 architecture bit 5,
    /// 23:20 implementation, 28:24 architecture bits 4:0.
    pub const fn boot0(&self) -> u32 {
        (self.minor_rev as u32)
            | (self.major_rev as u32) << 4
            | ((self.architecture as u32 >> 5) & 1) << 8
            | (self.implementation as u32) << 20
            | (self.architecture as u32 & 0x1f) << 24
    }

    /// Encodes `NV_PMC_BOOT_42`: 15:12 minor revision, 19:16 major revision,
    /// 23:20 implementation, 29:24 architecture.
    pub const fn boot42(&self) -> u32 {
        (self.minor_rev as u32) << 12
            | (self.major_rev as u32) << 16
            | (self.implementation as u32) << 20
            | (self.architecture as u32) << 24
    }

    /// Decodes `NV_PMC_BOOT_0`; `None` for [`ALL_ONES`] (a device that does not answer).
    pub const fn from_boot0(boot0: u32) -> Option<Self> {
        if boot0 == ALL_ONES {
            return None;
        }
        let architecture = ((boot0 >> 24) & 0x1f) as u8 | (((boot0 >> 8) & 1) as u8) << 5;
        Some(Self {
            architecture,
            implementation: ((boot0 >> 20) & 0xf) as u8,
            major_rev: ((boot0 >> 4) & 0xf) as u8,
            minor_rev: (boot0 & 0xf) as u8,
        })
    }

    /// Decodes `NV_PMC_BOOT_42`; `None` for [`ALL_ONES`] (a device that does not answer).
    pub const fn from_boot42(boot42: u32) -> Option<Self> {
        if boot42 == ALL_ONES {
            return None;
        }
        Some(Self {
            architecture: ((boot42 >> 24) & 0x3f) as u8,
            implementation: ((boot42 >> 20) & 0xf) as u8,
            major_rev: ((boot42 >> 16) & 0xf) as u8,
            minor_rev: ((boot42 >> 12) & 0xf) as u8,
        })
    }
}

impl fmt::Display for ChipId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chipset {:#x} ({}) rev {:X}{:X}",
            self.chipset(),
            architecture_name(self.architecture),
            self.major_rev,
            self.minor_rev
        )
    }
}

/// Name of an architecture number, "unknown" for numbers not in the facts table.
pub fn architecture_name(architecture: u8) -> &'static str {
    match architecture {
        0x11 | 0x12 => "Maxwell",
        0x13 => "Pascal",
        0x14 => "Volta",
        0x16 => "Turing",
        0x17 => "Ampere",
        0x18 => "Hopper",
        0x19 => "Ada Lovelace",
        0x1a => "Blackwell (data centre)",
        0x1b => "Blackwell (consumer)",
        _ => "unknown",
    }
}

/// Whether a chip of this architecture runs GSP firmware (Turing and newer), i.e. is driven
/// by Nova rather than left to nouveau.
pub const fn is_gsp_architecture(architecture: u8) -> bool {
    architecture >= 0x16
}

/// What the model presents for one board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Name on the command line, the chip in lower case (`gh100`), or `dead`.
    pub name: &'static str,
    /// The board this profile copies, as the PCI ID database names it (in brackets after the
    /// chip).
    pub board: &'static str,
    /// PCI device ID of that board.
    pub device_id: u16,
    /// PCI class code ([`CLASS_VGA`] or [`CLASS_3D`]).
    pub class_code: u32,
    /// Chip identity reported through `NV_PMC_BOOT_0` / `NV_PMC_BOOT_42`.
    pub chip: ChipId,
    /// Default size of BAR1 (VRAM aperture); the command line can override it.
    pub bar1_size: u64,
    /// When true, every BAR0 read returns [`ALL_ONES`] and writes are dropped, while the
    /// config space still presents the board: a GPU that enumerates but does not answer.
    pub dead: bool,
    /// `NV_PMC_BOOT_0` as given on the command line (`--boot0`), read instead of the value
    /// derived from [`Self::chip`]; `None` in the profile table.
    pub boot0_override: Option<u32>,
    /// `NV_PMC_BOOT_42` as given on the command line (`--boot42`), read instead of the value
    /// derived from [`Self::chip`]; `None` in the profile table.
    pub boot42_override: Option<u32>,
}

impl Profile {
    /// The PCI revision ID: the chip revision byte (0xa1), as NVIDIA boards report it.
    pub const fn revision_id(&self) -> u8 {
        self.chip.revision()
    }

    /// `NV_PMC_BOOT_0` of this profile (what a responding device returns): the override if
    /// there is one, else the value encoded from the chip ID.
    pub const fn boot0(&self) -> u32 {
        match self.boot0_override {
            Some(v) => v,
            None => self.chip.boot0(),
        }
    }

    /// `NV_PMC_BOOT_42` of this profile (what a responding device returns): the override if
    /// there is one, else the value encoded from the chip ID.
    pub const fn boot42(&self) -> u32 {
        match self.boot42_override {
            Some(v) => v,
            None => self.chip.boot42(),
        }
    }

    /// This profile with the command line's `overrides` applied: the one place they take
    /// effect, so that config space, BAR0 and the config mirror all see the same values.
    /// The revision ID, BAR sizes and the rest stay the profile's.
    ///
    /// The `dead` profile refuses `--boot0`/`--boot42`: its BAR0 reads all-ones, so they
    /// would never be seen. `--device-id` and `--class` apply to it (its config space still
    /// presents the board).
    pub fn with_overrides(&self, overrides: &Overrides) -> Result<Profile, OverrideError> {
        if self.dead {
            if overrides.boot0.is_some() {
                return Err(OverrideError::Dead("--boot0"));
            }
            if overrides.boot42.is_some() {
                return Err(OverrideError::Dead("--boot42"));
            }
        }
        Ok(Profile {
            device_id: overrides.device_id.unwrap_or(self.device_id),
            class_code: overrides.class_code.unwrap_or(self.class_code),
            boot0_override: overrides.boot0.or(self.boot0_override),
            boot42_override: overrides.boot42.or(self.boot42_override),
            ..*self
        })
    }

    /// Whether Nova should bind to this chip (GSP-capable architecture).
    pub const fn gsp_capable(&self) -> bool {
        is_gsp_architecture(self.chip.architecture())
    }
}

const fn chip(architecture: u8, implementation: u8) -> ChipId {
    match ChipId::new(architecture, implementation, 0xa, 0x1) {
        Some(c) => c,
        None => panic!("chip field out of range in the profile table"),
    }
}

const fn board(
    name: &'static str,
    board: &'static str,
    device_id: u16,
    class_code: u32,
    chip: ChipId,
    bar1_size: u64,
) -> Profile {
    Profile {
        name,
        board,
        device_id,
        class_code,
        chip,
        bar1_size,
        dead: false,
        boot0_override: None,
        boot42_override: None,
    }
}

const CONSUMER_BAR1: u64 = 256 * MIB;

/// Every profile, in architecture order; `dead` last.
#[rustfmt::skip]
pub const PROFILES: &[Profile] = &[
    // Volta, pre-GSP: Nova must reject it at probe.
    board("gv100", "TITAN V", 0x1d81, CLASS_VGA, chip(0x14, 0x0), CONSUMER_BAR1),
    // Turing.
    board("tu102", "GeForce RTX 2080 Ti", 0x1e04, CLASS_VGA, chip(0x16, 0x2), CONSUMER_BAR1),
    board("tu104", "Tesla T4", 0x1eb8, CLASS_3D, chip(0x16, 0x4), CONSUMER_BAR1),
    board("tu106", "GeForce RTX 2070", 0x1f02, CLASS_VGA, chip(0x16, 0x6), CONSUMER_BAR1),
    board("tu117", "GeForce GTX 1650", 0x1f82, CLASS_VGA, chip(0x16, 0x7), CONSUMER_BAR1),
    board("tu116", "GeForce GTX 1660 Ti", 0x2182, CLASS_VGA, chip(0x16, 0x8), CONSUMER_BAR1),
    // Ampere.
    board("ga100", "A100 SXM4 40GB", 0x20b0, CLASS_3D, chip(0x17, 0x0), 64 * GIB),
    board("ga102", "GeForce RTX 3090", 0x2204, CLASS_VGA, chip(0x17, 0x2), CONSUMER_BAR1),
    board("ga103", "GeForce RTX 3060 Ti", 0x2414, CLASS_VGA, chip(0x17, 0x3), CONSUMER_BAR1),
    board("ga104", "GeForce RTX 3070", 0x2484, CLASS_VGA, chip(0x17, 0x4), CONSUMER_BAR1),
    board("ga106", "GeForce RTX 3060", 0x2503, CLASS_VGA, chip(0x17, 0x6), CONSUMER_BAR1),
    board("ga107", "GeForce RTX 3050 8GB", 0x2582, CLASS_VGA, chip(0x17, 0x7), CONSUMER_BAR1),
    // Hopper.
    board("gh100", "H100 SXM5 80GB", 0x2330, CLASS_3D, chip(0x18, 0x0), 128 * GIB),
    // Ada Lovelace.
    board("ad102", "GeForce RTX 4090", 0x2684, CLASS_VGA, chip(0x19, 0x2), CONSUMER_BAR1),
    board("ad103", "GeForce RTX 4080", 0x2704, CLASS_VGA, chip(0x19, 0x3), CONSUMER_BAR1),
    board("ad104", "L4", 0x27b8, CLASS_3D, chip(0x19, 0x4), 32 * GIB),
    board("ad106", "GeForce RTX 4060 Ti", 0x2803, CLASS_VGA, chip(0x19, 0x6), CONSUMER_BAR1),
    board("ad107", "GeForce RTX 4060", 0x2882, CLASS_VGA, chip(0x19, 0x7), CONSUMER_BAR1),
    // Blackwell, data centre.
    board("gb100", "B200", 0x2901, CLASS_3D, chip(0x1a, 0x0), 256 * GIB),
    board("gb102", "B100", 0x29bc, CLASS_3D, chip(0x1a, 0x2), 256 * GIB),
    // Blackwell, consumer.
    board("gb202", "GeForce RTX 5090", 0x2b85, CLASS_VGA, chip(0x1b, 0x2), CONSUMER_BAR1),
    board("gb203", "GeForce RTX 5080", 0x2c02, CLASS_VGA, chip(0x1b, 0x3), CONSUMER_BAR1),
    board("gb205", "GeForce RTX 5070", 0x2f04, CLASS_VGA, chip(0x1b, 0x5), CONSUMER_BAR1),
    board("gb206", "GeForce RTX 5060 Ti", 0x2d04, CLASS_VGA, chip(0x1b, 0x6), CONSUMER_BAR1),
    board("gb207", "GeForce RTX 5050 Max-Q / Mobile", 0x2d98, CLASS_VGA, chip(0x1b, 0x7), CONSUMER_BAR1),
    // A GH100 board that enumerates but whose registers do not answer.
    Profile {
        name: "dead",
        board: "H100 SXM5 80GB, not answering",
        device_id: 0x2330,
        class_code: CLASS_3D,
        chip: chip(0x18, 0x0),
        bar1_size: 128 * GIB,
        dead: true,
        boot0_override: None,
        boot42_override: None,
    },
];

/// Looks a profile up by name (case-insensitive).
pub fn find(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Identity values given on the command line instead of the profile's (`None`: keep it), so
/// that a chip without a profile (a future architecture, an odd revision) can be emulated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--boot0`: the `NV_PMC_BOOT_0` value read at BAR0 offset 0x0.
    pub boot0: Option<u32>,
    /// `--boot42`: the `NV_PMC_BOOT_42` value read at BAR0 offset 0xa00.
    pub boot42: Option<u32>,
    /// `--device-id`: the PCI device ID (config space 0x02; also the subsystem ID).
    pub device_id: Option<u16>,
    /// `--class`: the 24-bit PCI class code (config space 0x09..0x0b).
    pub class_code: Option<u32>,
}

/// Why [`Profile::with_overrides`] refused the overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideError {
    /// The `dead` profile reads all-ones in BAR0; the named option would have no effect.
    Dead(&'static str),
}

impl fmt::Display for OverrideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverrideError::Dead(option) => write!(
                f,
                "{option} cannot be used with the dead profile (its BAR0 reads all-ones)"
            ),
        }
    }
}

impl std::error::Error for OverrideError {}

/// Why a hex value given on the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    /// Not hex digits with an optional `0x` prefix.
    Malformed(String),
    /// Hex, but more than the field's bits.
    OutOfRange {
        /// The text as given.
        text: String,
        /// Width of the field.
        bits: u32,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::Malformed(s) => {
                write!(f, "'{s}' is not hex (expected e.g. 1b2000a1 or 0x2b85)")
            }
            HexError::OutOfRange { text, bits } => write!(
                f,
                "'{text}' does not fit in {bits} bits (at most {:#x})",
                (1u64 << bits) - 1
            ),
        }
    }
}

impl std::error::Error for HexError {}

/// Parses a hex value of at most `bits` bits (1..=32), with an optional `0x`/`0X` prefix.
///
/// ```
/// use gpu_model::profile::parse_hex;
/// assert_eq!(parse_hex("0x1b2000a1", 32), Ok(0x1b20_00a1));
/// assert_eq!(parse_hex("030200", 24), Ok(0x03_02_00));
/// assert!(parse_hex("10000", 16).is_err());
/// ```
pub fn parse_hex(text: &str, bits: u32) -> Result<u32, HexError> {
    let s = text.trim();
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    // from_str_radix alone would accept a leading `+`.
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(HexError::Malformed(text.to_string()));
    }
    let out_of_range = || HexError::OutOfRange {
        text: text.to_string(),
        bits,
    };
    // Only overflow can fail here: the digits are checked above.
    let value = u64::from_str_radix(digits, 16).map_err(|_| out_of_range())?;
    if value >> bits != 0 {
        return Err(out_of_range());
    }
    u32::try_from(value).map_err(|_| out_of_range())
}

/// Parses `--boot0`/`--boot42`: a 32-bit hex value.
pub fn parse_boot(text: &str) -> Result<u32, HexError> {
    parse_hex(text, 32)
}

/// Parses `--device-id`: a 16-bit hex value.
pub fn parse_device_id(text: &str) -> Result<u16, HexError> {
    parse_hex(text, 16).map(|v| v as u16)
}

/// Parses `--class`: a 24-bit hex class code (prog-if, subclass, base class).
pub fn parse_class_code(text: &str) -> Result<u32, HexError> {
    parse_hex(text, 24)
}

/// Smallest BAR1 size accepted on the command line.
pub const MIN_BAR1_SIZE: u64 = MIB;

/// Largest BAR1 size accepted on the command line.
pub const MAX_BAR1_SIZE: u64 = 1 << 40;

/// Why a size given on the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeError {
    /// Not a number with an optional K/M/G/T suffix.
    Malformed(String),
    /// A BAR size must be a power of two.
    NotPowerOfTwo(u64),
    /// Outside [`MIN_BAR1_SIZE`]..=[`MAX_BAR1_SIZE`].
    OutOfRange(u64),
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Malformed(s) => {
                write!(
                    f,
                    "malformed size '{s}' (expected e.g. 256M, 128G, 0x10000000)"
                )
            }
            SizeError::NotPowerOfTwo(n) => write!(f, "size {n:#x} is not a power of two"),
            SizeError::OutOfRange(n) => write!(
                f,
                "size {n:#x} is outside {MIN_BAR1_SIZE:#x}..={MAX_BAR1_SIZE:#x} (1M..1T)"
            ),
        }
    }
}

impl std::error::Error for SizeError {}

/// Parses a size: decimal or `0x` hex, with an optional binary suffix `K`, `M`, `G`, `T`
/// (case-insensitive, optionally followed by `iB` or `B`).
///
/// ```
/// use gpu_model::profile::parse_size;
/// assert_eq!(parse_size("256M"), Ok(256 << 20));
/// assert_eq!(parse_size("0x2000000000"), Ok(128 << 30));
/// assert!(parse_size("12Q").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let malformed = || SizeError::Malformed(text.to_string());
    let s = text.trim();
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    let split = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let (number, suffix) = digits.split_at(split);
    if number.is_empty() {
        return Err(malformed());
    }
    let value = u64::from_str_radix(number, radix).map_err(|_| malformed())?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(malformed()),
    };
    value.checked_mul(1u64 << shift).ok_or_else(malformed)
}

/// Parses and validates a BAR1 size: a power of two in [`MIN_BAR1_SIZE`]..=[`MAX_BAR1_SIZE`].
pub fn parse_bar1_size(text: &str) -> Result<u64, SizeError> {
    let size = parse_size(text)?;
    if !(MIN_BAR1_SIZE..=MAX_BAR1_SIZE).contains(&size) {
        return Err(SizeError::OutOfRange(size));
    }
    if !size.is_power_of_two() {
        return Err(SizeError::NotPowerOfTwo(size));
    }
    Ok(size)
}

/// Formats a size the way `--list-profiles` prints it (`256M`, `128G`).
pub fn format_size(size: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if size >= 1 << shift && size.is_multiple_of(1 << shift) {
            return format!("{}{unit}", size >> shift);
        }
    }
    size.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chipsets as listed in shared/facts/nvidia-gpu.md (name, chipset value).
    const FACTS_CHIPSETS: &[(&str, u16)] = &[
        ("tu102", 0x162),
        ("tu104", 0x164),
        ("tu106", 0x166),
        ("tu117", 0x167),
        ("tu116", 0x168),
        ("ga100", 0x170),
        ("ga102", 0x172),
        ("ga103", 0x173),
        ("ga104", 0x174),
        ("ga106", 0x176),
        ("ga107", 0x177),
        ("gh100", 0x180),
        ("ad102", 0x192),
        ("ad103", 0x193),
        ("ad104", 0x194),
        ("ad106", 0x196),
        ("ad107", 0x197),
        ("gb100", 0x1a0),
        ("gb102", 0x1a2),
        ("gb202", 0x1b2),
        ("gb203", 0x1b3),
        ("gb205", 0x1b5),
        ("gb206", 0x1b6),
        ("gb207", 0x1b7),
        ("gv100", 0x140),
    ];

    /// Device IDs the facts file names for a chip (chip, device ID).
    const FACTS_DEVICE_IDS: &[(&str, u16)] = &[
        ("tu102", 0x1e04),
        ("tu104", 0x1eb8),
        ("tu117", 0x1f82),
        ("ga100", 0x20b0),
        ("ga102", 0x2204),
        ("ga104", 0x2484),
        ("gh100", 0x2330),
        ("ad102", 0x2684),
        ("ad104", 0x27b8),
        ("gb202", 0x2b85),
        ("gv100", 0x1d81),
    ];

    #[test]
    fn every_facts_chipset_has_a_profile_with_that_chipset() {
        for &(name, chipset) in FACTS_CHIPSETS {
            let p = find(name).unwrap_or_else(|| panic!("no profile {name}"));
            assert_eq!(p.chip.chipset(), chipset, "{name}");
            assert!(!p.dead);
        }
        // Every profile is in the table (plus `dead`), so nothing unchecked slips in.
        assert_eq!(PROFILES.len(), FACTS_CHIPSETS.len() + 1);
    }

    #[test]
    fn device_ids_named_by_the_facts_are_used() {
        for &(name, id) in FACTS_DEVICE_IDS {
            assert_eq!(find(name).map(|p| p.device_id), Some(id), "{name}");
        }
    }

    #[test]
    fn boot0_examples_from_the_facts() {
        for (name, boot0) in [
            ("gh100", 0x180000a1),
            ("tu102", 0x162000a1),
            ("ad102", 0x192000a1),
            ("ga102", 0x172000a1),
            ("gv100", 0x140000a1),
        ] {
            assert_eq!(find(name).map(|p| p.boot0()), Some(boot0), "{name}");
        }
    }

    #[test]
    fn boot0_and_boot42_round_trip_for_every_profile() {
        for p in PROFILES {
            let from0 = ChipId::from_boot0(p.boot0()).expect("boot0 decodes");
            let from42 = ChipId::from_boot42(p.boot42()).expect("boot42 decodes");
            assert_eq!(from0, p.chip, "{}", p.name);
            assert_eq!(from42, p.chip, "{}", p.name);
            // Decode by hand as the facts describe, independently of the decoder.
            let b0 = p.boot0();
            let arch = ((b0 >> 24) & 0x1f) | ((b0 >> 8) & 1) << 5;
            let imp = (b0 >> 20) & 0xf;
            assert_eq!((arch << 4 | imp) as u16, p.chip.chipset(), "{}", p.name);
            assert_eq!(b0 & 0xff, 0xa1, "{}", p.name);
            let b42 = p.boot42();
            assert_eq!((b42 >> 24) & 0x3f, arch, "{}", p.name);
            assert_eq!((b42 >> 20) & 0xf, imp, "{}", p.name);
            assert_eq!((b42 >> 16) & 0xf, 0xa, "{}", p.name);
            assert_eq!((b42 >> 12) & 0xf, 0x1, "{}", p.name);
        }
    }

    #[test]
    fn architecture_bit_5_goes_to_boot0_bit_8() {
        let c = ChipId::new(0x21, 0x3, 0xa, 0x1).unwrap();
        assert_eq!(c.boot0(), 0x0130_01a1);
        assert_eq!(ChipId::from_boot0(c.boot0()), Some(c));
        assert_eq!(ChipId::from_boot42(c.boot42()), Some(c));
        assert_eq!(ChipId::new(0x40, 0, 0, 0), None);
        assert_eq!(ChipId::new(0x16, 0x10, 0, 0), None);
    }

    #[test]
    fn all_ones_never_decodes() {
        assert_eq!(ChipId::from_boot0(ALL_ONES), None);
        assert_eq!(ChipId::from_boot42(ALL_ONES), None);
    }

    #[test]
    fn identity_fields_are_sane() {
        let mut names = std::collections::HashSet::new();
        for p in PROFILES {
            assert!(names.insert(p.name), "duplicate profile {}", p.name);
            assert!(
                p.class_code == CLASS_VGA || p.class_code == CLASS_3D,
                "{}",
                p.name
            );
            assert!(
                p.bar1_size.is_power_of_two() && p.bar1_size >= MIN_BAR1_SIZE,
                "{}",
                p.name
            );
            assert!(p.bar1_size <= MAX_BAR1_SIZE, "{}", p.name);
            assert_eq!(p.revision_id(), 0xa1);
        }
        assert!(find("GH100").is_some());
        assert!(find("gk104").is_none());
        assert!(find("dead").is_some_and(|p| p.dead));
        assert!(!find("gv100").unwrap().gsp_capable());
        assert!(find("tu102").unwrap().gsp_capable());
        assert_eq!(find("gh100").unwrap().bar1_size, 128 * GIB);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1"), Ok(1));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("256MiB"), Ok(256 * MIB));
        assert_eq!(parse_size("128G"), Ok(128 * GIB));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("0x10000000"), Ok(256 * MIB));
        assert_eq!(parse_size("0x10M"), Ok(16 * MIB));
        for bad in [
            "",
            "M",
            "0x",
            "12Q",
            "-1",
            "1.5G",
            "99999999999T",
            "0xfffffffffffffffff",
        ] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(parse_bar1_size("256M"), Ok(256 * MIB));
        assert_eq!(
            parse_bar1_size("300M"),
            Err(SizeError::NotPowerOfTwo(300 * MIB))
        );
        assert_eq!(parse_bar1_size("4K"), Err(SizeError::OutOfRange(4096)));
        assert_eq!(parse_bar1_size("2T"), Err(SizeError::OutOfRange(2 << 40)));
        assert_eq!(format_size(256 * MIB), "256M");
        assert_eq!(format_size(128 * GIB), "128G");
        assert_eq!(format_size(1 << 40), "1T");
        assert_eq!(format_size(100), "100");
    }

    #[test]
    fn hex_values_parse() {
        assert_eq!(parse_boot("1b2000a1"), Ok(0x1b20_00a1));
        assert_eq!(parse_boot("0x1b2000a1"), Ok(0x1b20_00a1));
        assert_eq!(parse_boot("0XFFFFFFFF"), Ok(u32::MAX));
        assert_eq!(parse_boot("0"), Ok(0));
        assert_eq!(parse_device_id("2b85"), Ok(0x2b85));
        assert_eq!(parse_device_id("0xffff"), Ok(0xffff));
        assert_eq!(parse_class_code("030000"), Ok(CLASS_VGA));
        assert_eq!(parse_class_code("0x030200"), Ok(CLASS_3D));
        assert_eq!(parse_class_code("0xffffff"), Ok(0xff_ffff));
    }

    #[test]
    fn hex_values_out_of_range_are_refused() {
        let out = |text: &str, bits| HexError::OutOfRange {
            text: text.to_string(),
            bits,
        };
        assert_eq!(parse_boot("0x100000000"), Err(out("0x100000000", 32)));
        let huge = "1ffffffffffffffffffff";
        assert_eq!(parse_boot(huge), Err(out(huge, 32)));
        assert_eq!(parse_device_id("0x10000"), Err(out("0x10000", 16)));
        assert_eq!(parse_class_code("1000000"), Err(out("1000000", 24)));
        assert_eq!(
            parse_device_id("10000").unwrap_err().to_string(),
            "'10000' does not fit in 16 bits (at most 0xffff)"
        );
    }

    #[test]
    fn hex_values_not_hex_are_refused() {
        for bad in [
            "", "0x", "xyz", "0x12g4", "+1f", "-1", "1 2", "0x1_0", "12h",
        ] {
            assert_eq!(
                parse_boot(bad),
                Err(HexError::Malformed(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_class_code("vga").unwrap_err().to_string(),
            "'vga' is not hex (expected e.g. 1b2000a1 or 0x2b85)"
        );
    }

    #[test]
    fn overrides_replace_only_what_they_name() {
        let gb202 = find("gb202").unwrap();
        assert_eq!(gb202.with_overrides(&Overrides::default()), Ok(*gb202));
        let o = Overrides {
            boot0: Some(0x1c20_00b1),
            ..Overrides::default()
        };
        let p = gb202.with_overrides(&o).unwrap();
        assert_eq!(p.boot0(), 0x1c20_00b1);
        assert_eq!(
            p.boot42(),
            gb202.boot42(),
            "BOOT42 is not derived from BOOT0"
        );
        assert_eq!(p.chip, gb202.chip);
        assert_eq!(p.revision_id(), 0xa1);
        let all = Overrides {
            boot0: Some(1),
            boot42: Some(2),
            device_id: Some(0x3000),
            class_code: Some(CLASS_3D),
        };
        let p = gb202.with_overrides(&all).unwrap();
        assert_eq!((p.boot0(), p.boot42()), (1, 2));
        assert_eq!((p.device_id, p.class_code), (0x3000, CLASS_3D));
        assert_eq!(
            (p.name, p.board, p.bar1_size),
            (gb202.name, gb202.board, gb202.bar1_size)
        );
        // The table itself is untouched.
        assert_eq!(find("gb202").unwrap().boot0(), 0x1b20_00a1);
    }

    #[test]
    fn dead_refuses_boot_overrides_but_takes_pci_ids() {
        let dead = find("dead").unwrap();
        for (o, option) in [
            (
                Overrides {
                    boot0: Some(0x1800_00a1),
                    ..Overrides::default()
                },
                "--boot0",
            ),
            (
                Overrides {
                    boot42: Some(0x180a_1000),
                    device_id: Some(0x2331),
                    ..Overrides::default()
                },
                "--boot42",
            ),
        ] {
            let e = dead.with_overrides(&o).unwrap_err();
            assert_eq!(e, OverrideError::Dead(option));
            assert!(e.to_string().contains("dead profile"), "{e}");
        }
        let p = dead
            .with_overrides(&Overrides {
                device_id: Some(0x2331),
                class_code: Some(CLASS_VGA),
                ..Overrides::default()
            })
            .unwrap();
        assert!(p.dead);
        assert_eq!((p.device_id, p.class_code), (0x2331, CLASS_VGA));
    }

    #[test]
    fn display_names_the_chip() {
        let p = find("gh100").unwrap();
        assert_eq!(p.chip.to_string(), "chipset 0x180 (Hopper) rev A1");
    }
}
