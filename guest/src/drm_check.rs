//! Checks of DRM ioctls' outcomes that the DRM driver tests share: an expected errno
//! ([`expect_errno`]), and the life of GEM objects through a driver's GEM_CREATE and GEM_INFO
//! and DRM core's GEM_CLOSE ([`create_each`], [`close_each`]), written once for every driver
//! whose uAPI has those two ioctls ([`GemIoctls`]).
//!
//! Each check gives its findings as messages, for [`crate::ktap::verdict`].

use drm_client::{describe, errno_name, Card, Errno};

/// `Ok` when `got` failed with one of `want`, else what it gave.
pub fn expect_errno<T: std::fmt::Debug>(
    what: &str,
    got: &Result<T, Errno>,
    want: &[Errno],
) -> Result<(), String> {
    match got {
        Err(e) if want.contains(e) => Ok(()),
        _ => {
            let names: Vec<String> = want.iter().map(|e| errno_name(*e)).collect();
            Err(format!(
                "{what}: {}, expected {}",
                describe(got),
                names.join(" or ")
            ))
        }
    }
}

/// A GEM object as a driver's GEM_CREATE gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    /// The new object's handle.
    pub handle: u32,
    /// The argument's padding as the driver left it (0).
    pub pad: u32,
    /// The size given.
    pub size: u64,
}

/// A driver's GEM ioctls, as its uAPI crate offers them, for [`create_each`] and
/// [`close_each`].
pub trait GemIoctls {
    /// GEM_CREATE of an object of at least `size` bytes on `card`.
    fn create(card: &Card, size: u64) -> Result<Created, Errno>;
    /// GEM_INFO of `handle` on `card`: the object's size.
    fn info(card: &Card, handle: u32) -> Result<u64, Errno>;
    /// `size` rounded up to a multiple of `page` as the driver rounds a GEM object's size;
    /// `None` when that overflows.
    fn page_align(size: u64, page: u64) -> Option<u64>;
}

/// Creates an object of each of `sizes` (small ones) on `card` and checks that each gets its
/// size rounded up to `page`, a zero pad and a handle that is not 0 and not one given before,
/// and that GEM_INFO gives the same size. The handles created, in order; what is wrong goes to
/// `problems`.
pub fn create_each<G: GemIoctls>(
    card: &Card,
    sizes: &[u64],
    page: u64,
    problems: &mut Vec<String>,
) -> Vec<u32> {
    let mut handles = Vec::new();
    for &size in sizes {
        let want = G::page_align(size, page).expect("small sizes");
        match G::create(card, size) {
            Ok(Created {
                handle,
                pad,
                size: got,
            }) => {
                if got != want || pad != 0 {
                    problems.push(format!(
                        "GEM_CREATE({size}) gave size {got} (pad {pad}), expected {want}"
                    ));
                }
                if handles.contains(&handle) || handle == 0 {
                    problems.push(format!(
                        "GEM_CREATE({size}) gave handle {handle}: 0 or one already given"
                    ));
                }
                let info = G::info(card, handle);
                if info != Ok(want) {
                    problems.push(format!(
                        "GEM_INFO({handle}) gave {}, expected Ok({want})",
                        describe(&info)
                    ));
                }
                handles.push(handle);
            }
            Err(e) => problems.push(format!("GEM_CREATE({size}): {}", errno_name(e))),
        }
    }
    handles
}

/// Closes each of `handles` on `card` (GEM_CLOSE), then checks that closing each again is
/// `EINVAL` and GEM_INFO of it `ENOENT`; what is wrong goes to `problems`.
pub fn close_each<G: GemIoctls>(card: &Card, handles: &[u32], problems: &mut Vec<String>) {
    for &h in handles {
        if let Err(e) = card.gem_close(h) {
            problems.push(format!("GEM_CLOSE({h}): {}", errno_name(e)));
        }
    }
    for &h in handles {
        let again = card.gem_close(h);
        problems
            .extend(expect_errno(&format!("GEM_CLOSE({h}) again"), &again, &[Errno::INVAL]).err());
        let info = G::info(card, h);
        problems.extend(
            expect_errno(
                &format!("GEM_INFO({h}) after close"),
                &info,
                &[Errno::NOENT],
            )
            .err(),
        );
    }
}

/// Opens the DRM node `path` with `CAP_SYS_ADMIN` dropped from the effective capabilities for
/// the `open` (and restored after): DRM authenticates every file opened with it
/// (`drm_file_alloc()`), so a primary file opened this way while the master's is open is not
/// authenticated.
pub fn open_without_sys_admin(path: &std::path::Path) -> Result<drm_client::Card, String> {
    use rustix::thread::{capabilities, set_capabilities, CapabilitySet};
    let saved = capabilities(None).map_err(|e| format!("capget: {e}"))?;
    let mut dropped = saved;
    dropped.effective.remove(CapabilitySet::SYS_ADMIN);
    set_capabilities(None, dropped).map_err(|e| format!("capset: {e}"))?;
    let opened = drm_client::Card::open(path).map_err(|e| format!("open {}: {e}", path.display()));
    set_capabilities(None, saved).map_err(|e| format!("capset (restore): {e}"))?;
    opened
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_are_expected_by_name() {
        assert_eq!(
            expect_errno::<()>("x", &Err(Errno::INVAL), &[Errno::INVAL]),
            Ok(())
        );
        assert_eq!(
            expect_errno::<()>("x", &Err(Errno::NOMEM), &[Errno::INVAL, Errno::NOMEM]),
            Ok(())
        );
        assert_eq!(
            expect_errno("GEM_CREATE(0)", &Ok(4096u64), &[Errno::INVAL]),
            Err("GEM_CREATE(0): Ok(4096), expected EINVAL".into())
        );
        assert_eq!(
            expect_errno::<u64>("y", &Err(Errno::NOENT), &[Errno::INVAL, Errno::NOMEM]),
            Err("y: Err(ENOENT), expected EINVAL or ENOMEM".into())
        );
        assert_eq!(
            expect_errno::<u64>("y", &Err(Errno::ACCESS), &[Errno::NODEV]),
            Err("y: Err(EACCES), expected ENODEV".into())
        );
    }
}
