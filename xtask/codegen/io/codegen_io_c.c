// SPDX-License-Identifier: GPL-2.0
/*
 * Register accesses through C's accessors, on a mapping a driver keeps in
 * its state; suite rust-pci disassembles every codegen_c_<case>() and
 * compares it with codegen_rust_<case>() of codegen_io_rust.rs.
 *
 * For each width and for the ordered and _relaxed accessors:
 * - is_zero: a read compared with zero (a dead device, an idle engine);
 * - rmw: a read-modify-write;
 * - doorbell: a store to normal memory (a descriptor), then a register
 *   write that tells the device to read it.
 */
#include <linux/io.h>
#include <linux/module.h>

struct codegen_regs {
	void __iomem *base;
};

#define CODEGEN_CASES(bits, rd, wr, sfx)				\
bool codegen_c_is_zero##bits##sfx(struct codegen_regs *regs);		\
bool codegen_c_is_zero##bits##sfx(struct codegen_regs *regs)		\
{									\
	return rd(regs->base + 0x20) == 0;				\
}									\
u##bits codegen_c_rmw##bits##sfx(struct codegen_regs *regs);		\
u##bits codegen_c_rmw##bits##sfx(struct codegen_regs *regs)		\
{									\
	u##bits v = rd(regs->base + 0x10);				\
									\
	wr(v | 1, regs->base + 0x18);					\
	return v;							\
}									\
void codegen_c_doorbell##bits##sfx(struct codegen_regs *regs,		\
				   u##bits *desc, u##bits val);		\
void codegen_c_doorbell##bits##sfx(struct codegen_regs *regs,		\
				   u##bits *desc, u##bits val)		\
{									\
	*desc = val;							\
	wr(1, regs->base + 0x28);					\
}

CODEGEN_CASES(8, readb, writeb, )
CODEGEN_CASES(16, readw, writew, )
CODEGEN_CASES(32, readl, writel, )
CODEGEN_CASES(64, readq, writeq, )
CODEGEN_CASES(8, readb_relaxed, writeb_relaxed, _relaxed)
CODEGEN_CASES(16, readw_relaxed, writew_relaxed, _relaxed)
CODEGEN_CASES(32, readl_relaxed, writel_relaxed, _relaxed)
CODEGEN_CASES(64, readq_relaxed, writeq_relaxed, _relaxed)

MODULE_DESCRIPTION("C side of the MMIO codegen comparison");
MODULE_LICENSE("GPL");
