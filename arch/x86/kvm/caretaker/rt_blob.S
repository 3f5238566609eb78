/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The caretaker runtime's image (rt.bin, linked at CTRT_BASE), carried
 * in caretaker.ko's read-only data and copied into pages of its own at
 * PREPARE.
 */
#include <linux/linkage.h>

	.section .rodata, "a"
	.balign 64
SYM_DATA_START(caretaker_rt_image)
	.incbin "arch/x86/kvm/caretaker/rt.bin"
SYM_DATA_END_LABEL(caretaker_rt_image, SYM_L_GLOBAL, caretaker_rt_image_end)
