// SPDX-License-Identifier: GPL-2.0
/*
 * The device that the Rust DRM driver sample binds to, for tests.
 *
 * The sample (samples/rust/rust_driver_drm.rs) is a platform driver for a
 * made-up device that nothing in firmware describes: this module registers it,
 * so that tests can bind and unbind the sample through sysfs.
 */

#include <linux/err.h>
#include <linux/module.h>
#include <linux/platform_device.h>

static struct platform_device *sample_pdev;

static int __init drm_rust_sample_device_init(void)
{
	sample_pdev = platform_device_register_simple("rust-drm-sample",
						      PLATFORM_DEVID_NONE,
						      NULL, 0);
	return PTR_ERR_OR_ZERO(sample_pdev);
}
module_init(drm_rust_sample_device_init);

static void __exit drm_rust_sample_device_exit(void)
{
	platform_device_unregister(sample_pdev);
}
module_exit(drm_rust_sample_device_exit);

MODULE_DESCRIPTION("Device for the Rust DRM driver sample");
MODULE_LICENSE("GPL");
