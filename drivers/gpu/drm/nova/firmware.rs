// SPDX-License-Identifier: GPL-2.0

//! The GSP firmware: the files of each chip, their request at probe, and the module's list of
//! them (`MODULE_FIRMWARE`).
//!
//! The files are those linux-firmware publishes for the GSP-based drivers, under
//! `nvidia/<chip>/gsp/`, one set per chip.

use crate::gpu::Chipset;
use kernel::{device::Device, firmware::Firmware, fmt, prelude::*, str::CString};

/// The release of the GSP firmware Nova requests, as a literal for `concat!`.
macro_rules! gsp_version {
    () => {
        "535.113.01"
    };
}

/// Adds the `firmware=` entries of chip folder `$dir` to the module's information, as C's
/// `MODULE_FIRMWARE()` does (`modinfo` lists them; initramfs tools pack them).
macro_rules! module_firmware {
    ($dir:literal) => {
        $crate::firmware::module_firmware!(@with_files [@entries $dir,]);
    };
    // Hands the names of a chip's files, in the order they are requested, to arm `$arm`: the
    // one list of them.
    (@with_files [$($arm:tt)*]) => {
        $crate::firmware::module_firmware! {
            $($arm)* "booter_load", "booter_unload", "bootloader", "gsp"
        }
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

/// The files of a chip, in the order they are requested.
const FILES: [&str; 4] = module_firmware!(@with_files [@array]);

pub(crate) use {gsp_version, module_firmware};

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

/// The GSP firmware files of a chip, loaded.
///
/// The stub does not boot the GSP: it holds the files for as long as the GPU is bound, which
/// is what booting it will need.
pub(crate) struct GspFirmware {
    _files: KVec<Firmware>,
}

impl GspFirmware {
    /// Requests the files of `chipset` for `dev`, in order.
    ///
    /// # Errors
    ///
    /// The error of the first file that cannot be loaded (`ENOENT` when it does not exist),
    /// after a message naming the file.
    pub(crate) fn request(dev: &Device, chipset: Chipset) -> Result<Self> {
        let mut files = KVec::with_capacity(FILES.len(), GFP_KERNEL)?;
        for file in FILES {
            let name = CString::try_from_fmt(fmt!(
                "nvidia/{}/gsp/{}-{}.bin",
                chipset.firmware_dir(),
                file,
                gsp_version!()
            ))?;
            // The message below names the file: the firmware loader's own would repeat it.
            match Firmware::request_nowarn(&name, dev) {
                Ok(fw) => files.push(fw, GFP_KERNEL)?,
                Err(e) if e == ENOENT => {
                    dev_err!(
                        dev,
                        "missing firmware {} (error {})\n",
                        &*name,
                        e.to_errno()
                    );
                    return Err(e);
                }
                Err(e) => {
                    dev_err!(
                        dev,
                        "cannot load firmware {} (error {})\n",
                        &*name,
                        e.to_errno()
                    );
                    return Err(e);
                }
            }
        }
        Ok(Self { _files: files })
    }
}
