// SPDX-License-Identifier: GPL-2.0

//! A driver module declared with `module_platform_driver!` (and so `module_driver!`) in a file
//! that does not import the prelude must build: nova/stub's only use of the prelude was the
//! macro's call of `KBox::pin_init`, a method of a trait the caller had to import.

struct Driver;

kernel::platform_device_table!(
    TABLE,
    MODULE_TABLE,
    <Driver as kernel::platform::Driver>::IdInfo,
    [(
        kernel::platform::DeviceId::new(kernel::c_str!("no-prelude")),
        ()
    )]
);

impl kernel::platform::Driver for Driver {
    type IdInfo = ();
    const ID_TABLE: kernel::platform::IdTable<Self::IdInfo> = &TABLE;

    fn probe(
        _pdev: &kernel::platform::Device<kernel::device::Core>,
        _info: Option<&Self::IdInfo>,
    ) -> kernel::error::Result<impl kernel::init::PinInit<Self, kernel::error::Error>> {
        Ok(Driver)
    }
}

kernel::module_platform_driver! {
    type: Driver,
    name: "module_driver_without_prelude",
    author: "Nova Developers",
    description: "module_platform_driver! without the prelude, which must build",
    license: "GPL",
}
