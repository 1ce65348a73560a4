// SPDX-License-Identifier: GPL-2.0

//! The GSP firmware: the files each chip's boot flow needs, their checks at probe, and the
//! module's list of them (`MODULE_FIRMWARE`).
//!
//! The files are linux-firmware's, under `nvidia/<chip>/gsp/`, all of release 570.144: the one
//! release linux-firmware ships for every chip Nova drives (Hopper and Blackwell have no other).
//! Turing, Ampere and Ada boot the GSP through the booter ([`Flow::Booter`]), Hopper and
//! Blackwell through the FSP ([`Flow::Fsp`]); each flow has its own files.
//!
//! The stub does not boot the GSP yet: it loads each file, checks that it is what the flow
//! needs, and lets it go (a GSP image is tens of MiB).

use crate::gpu::Chipset;
use kernel::{device::Device, firmware::Firmware, fmt, prelude::*, str::CString};

/// The release of the GSP firmware Nova requests, as a literal for `concat!`.
macro_rules! gsp_version {
    () => {
        "570.144"
    };
}

/// How a chip boots its GSP, which decides the files it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Through the booter, on the SEC2 falcon: Turing, Ampere and Ada.
    Booter,
    /// Through the FSP and its FMC image: Hopper and Blackwell.
    Fsp,
}

/// What a firmware file must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// An NVIDIA binary: a header with magic `0x10de` and the payload it locates.
    NvidiaBinary,
    /// A 32-bit ELF image (the FSP's FMC).
    Elf32,
    /// The GSP's 64-bit ELF image, with a signature section for the chip's family.
    GspImage,
}

/// Adds the `firmware=` entries of a chip (folder `$dir`, architecture `$arch`) to the
/// module's information, as C's `MODULE_FIRMWARE()` does (`modinfo` lists them; initramfs tools
/// pack them). The arms `@booter` and `@fsp` hold each flow's one list of files, which
/// [`Flow::files`] reads too.
macro_rules! module_firmware {
    ($dir:literal, Turing) => { $crate::firmware::module_firmware!(@booter [@entries $dir,]); };
    ($dir:literal, Ampere) => { $crate::firmware::module_firmware!(@booter [@entries $dir,]); };
    ($dir:literal, Ada) => { $crate::firmware::module_firmware!(@booter [@entries $dir,]); };
    ($dir:literal, Hopper) => { $crate::firmware::module_firmware!(@fsp [@entries $dir,]); };
    ($dir:literal, BlackwellDataCentre) => {
        $crate::firmware::module_firmware!(@fsp [@entries $dir,]);
    };
    ($dir:literal, Blackwell) => { $crate::firmware::module_firmware!(@fsp [@entries $dir,]); };
    // Hands a flow's files, in the order they are requested, to arm `$arm`.
    (@booter [$($arm:tt)*]) => {
        $crate::firmware::module_firmware! {
            $($arm)* "booter_load", "booter_unload", "bootloader", "gsp"
        }
    };
    (@fsp [$($arm:tt)*]) => {
        $crate::firmware::module_firmware! { $($arm)* "fmc", "bootloader", "gsp" }
    };
    (@array $($file:literal),*) => {
        [$($file),*]
    };
    (@entries $dir:literal, $($file:literal),*) => {
        $(
            const _: () = {
                // The key is prefixed with the module's name when built in.
                #[cfg(MODULE)]
                const ENTRY: &str = concat!(
                    "firmware=nvidia/", $dir, "/gsp/", $file, "-",
                    $crate::firmware::gsp_version!(), ".bin\0"
                );
                #[cfg(not(MODULE))]
                const ENTRY: &str = concat!(
                    "nova.firmware=nvidia/", $dir, "/gsp/", $file, "-",
                    $crate::firmware::gsp_version!(), ".bin\0"
                );
                #[link_section = ".modinfo"]
                #[used(compiler)]
                static MODINFO: [u8; ENTRY.len()] = $crate::firmware::modinfo_bytes(ENTRY);
            };
        )*
    };
}

/// The booter flow's files, in the order they are requested.
const BOOTER_FILES: [&str; 4] = module_firmware!(@booter [@array]);
/// The FSP flow's files, in the order they are requested.
const FSP_FILES: [&str; 3] = module_firmware!(@fsp [@array]);

pub(crate) use {gsp_version, module_firmware};

impl Flow {
    /// The flow's files, in the order they are requested.
    fn files(self) -> &'static [&'static str] {
        match self {
            Self::Booter => &BOOTER_FILES,
            Self::Fsp => &FSP_FILES,
        }
    }
}

impl Format {
    /// What file `name` of a flow must be: the GSP image, the FMC (an ELF32), or an NVIDIA
    /// binary (the booters and the bootloader).
    fn of(name: &str) -> Self {
        match name {
            "gsp" => Self::GspImage,
            "fmc" => Self::Elf32,
            _ => Self::NvidiaBinary,
        }
    }
}

/// The bytes of `entry` as an array, for a `.modinfo` entry.
///
/// `N` must be `entry.len()`: the array has to be the entry itself, not a pointer to it.
pub(crate) const fn modinfo_bytes<const N: usize>(entry: &str) -> [u8; N] {
    let bytes = entry.as_bytes();
    assert!(bytes.len() == N);
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Why a firmware file is refused.
#[derive(Debug, PartialEq, Eq)]
enum Defect {
    /// The file ends before what its format needs: `need` bytes, `len` there.
    Truncated { need: usize, len: usize },
    /// An NVIDIA binary without its magic.
    BadMagic(u32),
    /// Not an ELF image of the class the file must be.
    NotElf { class: u8 },
    /// A GSP image without the signature section of the chip's family.
    NoSignature(&'static str),
}

impl core::fmt::Display for Defect {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Truncated { need, len } => {
                write!(f, "truncated ({len} bytes, its headers need {need})")
            }
            Self::BadMagic(m) => write!(f, "no NVIDIA binary header (magic {m:#x}, not 0x10de)"),
            Self::NotElf { class: 1 } => write!(f, "not a 32-bit ELF image"),
            Self::NotElf { .. } => write!(f, "not a 64-bit ELF image"),
            Self::NoSignature(family) => {
                write!(
                    f,
                    "no signature section .fwsignature_{family} for this chip"
                )
            }
        }
    }
}

/// The magic of an NVIDIA binary header (NVIDIA's PCI vendor ID).
const BINARY_MAGIC: u32 = 0x10de;
/// An NVIDIA binary header: six little-endian `u32`s, magic, version, size, the offset of the
/// image's own header, and the offset and size of its payload.
const BINARY_HEADER_LEN: usize = 24;
/// The length of an ELF32 file header.
const ELF32_HEADER_LEN: usize = 52;
/// The length of an ELF64 file header, and of each of its section headers.
const ELF64_HEADER_LEN: usize = 64;

/// The `N` bytes at `at` of `data`, if it has them.
fn bytes_at<const N: usize>(data: &[u8], at: usize) -> Option<[u8; N]> {
    data.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    bytes_at(data, at).map(u16::from_le_bytes)
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    bytes_at(data, at).map(u32::from_le_bytes)
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    bytes_at(data, at).map(u64::from_le_bytes)
}

/// `Ok` if `data` has `end` bytes (`None`: an end past `usize`), else `Truncated`.
fn need(data: &[u8], end: Option<usize>) -> Result<(), Defect> {
    match end {
        Some(end) if end <= data.len() => Ok(()),
        end => Err(Defect::Truncated {
            need: end.unwrap_or(usize::MAX),
            len: data.len(),
        }),
    }
}

/// A `u64` or `u32` from a header, as an offset or a size.
fn to_usize(v: impl TryInto<usize>) -> Option<usize> {
    v.try_into().ok()
}

/// Checks an NVIDIA binary: its header's magic, and that the image header and the payload it
/// locates are within the file.
fn check_binary(data: &[u8]) -> Result<(), Defect> {
    need(data, Some(BINARY_HEADER_LEN))?;
    // Within the header, checked just above.
    let field = |i: usize| u32_at(data, i * 4).unwrap_or(0);
    if field(0) != BINARY_MAGIC {
        return Err(Defect::BadMagic(field(0)));
    }
    let (header, payload, payload_len) = (field(3), field(4), field(5));
    need(data, to_usize(header).and_then(|h| h.checked_add(1)))?;
    need(
        data,
        to_usize(payload)
            .zip(to_usize(payload_len))
            .and_then(|(o, l)| o.checked_add(l)),
    )
}

/// Checks that `data` starts as an ELF image of class `class` (1: 32-bit, 2: 64-bit),
/// little-endian, with a file header of `header_len` bytes.
fn check_elf_header(data: &[u8], class: u8, header_len: usize) -> Result<(), Defect> {
    let ident: Option<[u8; 6]> = bytes_at(data, 0);
    match ident {
        Some([0x7f, b'E', b'L', b'F', c, 1]) if c == class => need(data, Some(header_len)),
        Some(_) => Err(Defect::NotElf { class }),
        None => need(data, Some(header_len)).and(Err(Defect::NotElf { class })),
    }
}

/// Checks the FSP's FMC image: a 32-bit ELF whose section headers are within the file.
fn check_elf32(data: &[u8]) -> Result<(), Defect> {
    check_elf_header(data, 1, ELF32_HEADER_LEN)?;
    // Within the header, checked just above.
    let shoff = u32_at(data, 0x20).and_then(to_usize);
    let (entsize, count) = (u16_at(data, 0x2e), u16_at(data, 0x30));
    let table = entsize
        .zip(count)
        .and_then(|(e, n)| usize::from(e).checked_mul(usize::from(n)));
    need(data, shoff.zip(table).and_then(|(o, l)| o.checked_add(l)))
}

/// Checks the GSP image: a 64-bit ELF whose section headers are within the file, with a
/// non-empty section `.fwsignature_<family>`, within the file too.
fn check_gsp(data: &[u8], family: &'static str) -> Result<(), Defect> {
    check_elf_header(data, 2, ELF64_HEADER_LEN)?;
    let shoff = u64_at(data, 0x28).and_then(to_usize);
    let count = u16_at(data, 0x3c).map(usize::from).unwrap_or(0);
    let names = u16_at(data, 0x3e).map(usize::from).unwrap_or(0);
    let table_len = count.checked_mul(ELF64_HEADER_LEN);
    need(
        data,
        shoff.zip(table_len).and_then(|(o, l)| o.checked_add(l)),
    )?;
    let shoff = shoff.unwrap_or(0);
    // Section `i`'s name offset, and its file offset and size; its header is in the file
    // (checked above) for `i < count`.
    let section = |i: usize| {
        let at = shoff + i * ELF64_HEADER_LEN;
        let name = u32_at(data, at).and_then(to_usize);
        let offset = u64_at(data, at + 0x18).and_then(to_usize);
        let size = u64_at(data, at + 0x20).and_then(to_usize);
        name.zip(offset).zip(size).map(|((n, o), s)| (n, o, s))
    };
    if names >= count {
        return Err(Defect::NoSignature(family));
    }
    let (_, strtab, strtab_len) = section(names).ok_or(Defect::NoSignature(family))?;
    need(data, strtab.checked_add(strtab_len))?;
    let strings = &data[strtab..strtab + strtab_len];
    let mut wanted = [0u8; 32];
    let wanted = {
        let prefix = b".fwsignature_";
        let len = prefix.len() + family.len();
        if len + 1 > wanted.len() {
            return Err(Defect::NoSignature(family));
        }
        wanted[..prefix.len()].copy_from_slice(prefix);
        wanted[prefix.len()..len].copy_from_slice(family.as_bytes());
        // The name ends with its NUL in the string table.
        &wanted[..len + 1]
    };
    for i in 0..count {
        let Some((name, offset, size)) = section(i) else {
            continue;
        };
        if strings.get(name..name.saturating_add(wanted.len())) == Some(wanted) && size > 0 {
            return need(data, offset.checked_add(size));
        }
    }
    Err(Defect::NoSignature(family))
}

/// Loads each of `chipset`'s firmware files for `dev`, in order, checks it and lets it go.
///
/// # Errors
///
/// The error of the first file that cannot be loaded (`ENOENT` when it does not exist), or
/// `EINVAL` for the first that is not what its flow needs, after a message naming the file
/// (and the defect).
pub(crate) fn check(dev: &Device, chipset: Chipset) -> Result {
    for &file in chipset.architecture().flow().files() {
        let name = CString::try_from_fmt(fmt!(
            "nvidia/{}/gsp/{}-{}.bin",
            chipset.firmware_dir(),
            file,
            gsp_version!()
        ))?;
        // The messages below name the file: the firmware loader's own would repeat it.
        let fw = match Firmware::request_nowarn(&name, dev) {
            Ok(fw) => fw,
            Err(e) => {
                let what = if e == ENOENT {
                    "missing"
                } else {
                    "cannot load"
                };
                dev_err!(dev, "{what} firmware {} (error {})\n", &*name, e.to_errno());
                return Err(e);
            }
        };
        let verdict = match Format::of(file) {
            Format::NvidiaBinary => check_binary(fw.data()),
            Format::Elf32 => check_elf32(fw.data()),
            Format::GspImage => check_gsp(fw.data(), chipset.signature_family()),
        };
        if let Err(defect) = verdict {
            dev_err!(dev, "firmware {}: {defect}, refused\n", &*name);
            return Err(EINVAL);
        }
        // `fw` goes here: the stub keeps nothing of it.
    }
    Ok(())
}
