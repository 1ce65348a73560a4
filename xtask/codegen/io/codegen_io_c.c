// SPDX-License-Identifier: GPL-2.0
/*
 * A register read-modify-write through C's accessors, on a mapping a driver
 * keeps in its state; suite rust-pci disassembles codegen_io_c() and compares
 * it with codegen_io_rust().
 */
#include <linux/io.h>
#include <linux/module.h>

struct codegen_regs {
	void __iomem *base;
};

u32 codegen_io_c(struct codegen_regs *regs);

u32 codegen_io_c(struct codegen_regs *regs)
{
	u32 v = readl(regs->base + 0x10);

	writel(v | 1, regs->base + 0x14);
	return v;
}

MODULE_DESCRIPTION("C side of the MMIO codegen comparison");
MODULE_LICENSE("GPL");
