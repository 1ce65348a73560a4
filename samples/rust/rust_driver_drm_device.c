// SPDX-License-Identifier: GPL-2.0
/*
 * Test scaffolding for the Rust DRM driver sample: registers the made-up
 * platform device "rust-drm-sample" that the sample
 * (samples/rust/rust_driver_drm.rs) binds to, so that tests can bind and
 * unbind the sample through sysfs, and "rust-drm-sample-spare", which no
 * driver matches, for tests that need a second DRM device (they bind it
 * through its driver_override). Nothing in firmware describes such
 * devices; this module exists for tests only.
 */

#include <linux/err.h>
#include <linux/module.h>
#include <linux/platform_device.h>

static struct platform_device *sample_pdev, *spare_pdev;

static int __init rust_driver_drm_device_init(void)
{
	sample_pdev = platform_device_register_simple("rust-drm-sample",
						      PLATFORM_DEVID_NONE,
						      NULL, 0);
	if (IS_ERR(sample_pdev))
		return PTR_ERR(sample_pdev);
	spare_pdev = platform_device_register_simple("rust-drm-sample-spare",
						     PLATFORM_DEVID_NONE,
						     NULL, 0);
	if (IS_ERR(spare_pdev)) {
		platform_device_unregister(sample_pdev);
		return PTR_ERR(spare_pdev);
	}
	return 0;
}
module_init(rust_driver_drm_device_init);

static void __exit rust_driver_drm_device_exit(void)
{
	platform_device_unregister(spare_pdev);
	platform_device_unregister(sample_pdev);
}
module_exit(rust_driver_drm_device_exit);

MODULE_DESCRIPTION("Test scaffolding: the devices of the Rust DRM driver sample");
MODULE_LICENSE("GPL");
