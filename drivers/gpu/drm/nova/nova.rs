// SPDX-License-Identifier: GPL-2.0

//! Nova: a DRM driver for NVIDIA GPUs with a GSP (GPU System Processor), Turing and newer.
//!
//! This stub binds the GPU over PCI, identifies its chip from its registers, refuses the GPUs
//! it must not drive (pre-GSP ones, unknown ones, devices that do not answer) and requests the
//! chip's GSP firmware. For each GPU it drives, it registers a DRM device `nova` with a render
//! node, whose uAPI (`include/uapi/drm/nova_drm.h`) tells the GPU's chipset, revision and VRAM
//! aperture and creates GEM objects.

mod driver;
mod file;
mod firmware;
mod gem;
mod gpu;
mod regs;
mod uapi;

kernel::module_pci_driver! {
    type: driver::NovaDriver,
    name: "nova",
    author: "Nova Developers",
    description: "Nova, a DRM driver for NVIDIA GPUs with a GSP (stub)",
    license: "GPL v2",
}
