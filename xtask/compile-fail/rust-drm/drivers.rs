// SPDX-License-Identifier: GPL-2.0

//! The DRM drivers the rust-drm compile-fail cases need, so that each case states only the
//! promise it breaks. Each case folder links this file as its `drivers.rs`.

/// Declares DRM driver `$driver`, named `$name`, with file data `$file`, GEM object data
/// `$object` and device data `$data`, whose `Driver` implementation ends with the items
/// `$ioctls` (its `IOCTLS`).
macro_rules! drm_driver {
    (
        $driver:ident, $name:literal, $file:ident, $object:ident, $data:ty,
        { $($ioctls:tt)* }
    ) => {
        /// The driver's file data.
        struct $file;

        impl kernel::drm::DriverFile for $file {
            type Driver = $driver;

            fn open(
                _dev: &kernel::drm::Device<$driver>,
            ) -> kernel::error::Result<core::pin::Pin<kernel::alloc::KBox<Self>>> {
                Ok(kernel::alloc::KBox::pin($file, kernel::alloc::flags::GFP_KERNEL)?)
            }
        }

        /// The driver's GEM object data.
        struct $object;

        impl kernel::drm::gem::DriverObject for $object {
            type Driver = $driver;
        }

        /// The driver.
        struct $driver;

        impl kernel::drm::Driver for $driver {
            type Data = $data;
            type File = $file;
            type Object = $object;
            const INFO: kernel::drm::DriverInfo = kernel::drm::DriverInfo {
                major: 1,
                minor: 0,
                patchlevel: 0,
                name: kernel::c_str!($name),
                desc: kernel::c_str!("A driver of a compile-fail case"),
            };
            $($ioctls)*
        }

        kernel::declare_drm_driver!($driver);
    };
}
