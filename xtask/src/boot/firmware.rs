//! The fake GSP firmware packed into guests: for every GPU model profile that Nova drives, the
//! files Nova requests (`nvidia/<chip>/gsp/{booter_load,booter_unload,bootloader,gsp}-535.113.01.bin`,
//! as in `shared/facts/nvidia-gpu.md`), each with a short content that names it. The stub
//! driver only requests the files; it does not look inside them.

use gpu_model::profile::{Profile, PROFILES};

/// The firmware release Nova requests.
pub const GSP_VERSION: &str = "535.113.01";

/// The files of a chip's GSP firmware, in the order Nova requests them.
pub const GSP_FILES: [&str; 4] = ["booter_load", "booter_unload", "bootloader", "gsp"];

/// Where the guest's firmware loader looks (the kernel's default search path).
pub const FIRMWARE_DIR: &str = "/lib/firmware";

/// A file for the guest's initramfs: its absolute path in the guest and its content.
pub type GuestFile = (String, Vec<u8>);

/// Whether Nova requests firmware for `p`: a GSP architecture (Turing, 0x16, and newer) that
/// answers (not the `dead` profile).
pub fn needs_gsp_firmware(p: &Profile) -> bool {
    !p.dead && p.gsp_capable()
}

/// The name Nova gives `request_firmware` for `file` (one of [`GSP_FILES`]) of chip `chip`
/// (the lower-case profile name), e.g. `nvidia/tu102/gsp/booter_load-535.113.01.bin`.
pub fn firmware_name(chip: &str, file: &str) -> String {
    format!("nvidia/{chip}/gsp/{file}-{GSP_VERSION}.bin")
}

/// The fake GSP firmware of profile `p` (none for a pre-GSP or dead profile): each file of
/// [`GSP_FILES`] under [`FIRMWARE_DIR`], its content one line naming it.
pub fn gsp_firmware(p: &Profile) -> Vec<GuestFile> {
    if !needs_gsp_firmware(p) {
        return Vec::new();
    }
    GSP_FILES
        .iter()
        .map(|f| {
            let name = firmware_name(p.name, f);
            let data = format!("nova fake GSP firmware: {name}\n").into_bytes();
            (format!("{FIRMWARE_DIR}/{name}"), data)
        })
        .collect()
}

/// The fake GSP firmware of every profile of the model that Nova drives.
pub fn all_gsp_firmware() -> Vec<GuestFile> {
    PROFILES.iter().flat_map(gsp_firmware).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_model::profile::find;

    fn paths(p: &str) -> Vec<String> {
        gsp_firmware(find(p).unwrap())
            .into_iter()
            .map(|(path, _)| path)
            .collect()
    }

    #[test]
    fn gsp_chips_get_the_four_files_by_name() {
        assert_eq!(
            paths("tu102"),
            [
                "/lib/firmware/nvidia/tu102/gsp/booter_load-535.113.01.bin",
                "/lib/firmware/nvidia/tu102/gsp/booter_unload-535.113.01.bin",
                "/lib/firmware/nvidia/tu102/gsp/bootloader-535.113.01.bin",
                "/lib/firmware/nvidia/tu102/gsp/gsp-535.113.01.bin",
            ]
        );
        assert_eq!(
            paths("gh100")[3],
            "/lib/firmware/nvidia/gh100/gsp/gsp-535.113.01.bin"
        );
        let (_, data) = &gsp_firmware(find("gh100").unwrap())[0];
        assert_eq!(
            std::str::from_utf8(data).unwrap(),
            "nova fake GSP firmware: nvidia/gh100/gsp/booter_load-535.113.01.bin\n"
        );
    }

    #[test]
    fn pre_gsp_and_dead_profiles_get_none() {
        assert!(paths("gv100").is_empty());
        assert!(paths("dead").is_empty());
    }

    #[test]
    fn every_gsp_profile_has_its_files_once() {
        let all = all_gsp_firmware();
        let chips = PROFILES.iter().filter(|p| needs_gsp_firmware(p)).count();
        assert_eq!(chips, PROFILES.len() - 2, "all but gv100 and dead");
        assert_eq!(all.len(), chips * GSP_FILES.len());
        let mut names: Vec<&str> = all.iter().map(|(p, _)| p.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(!names.iter().any(|n| n.contains("/gv100/")));
    }
}
