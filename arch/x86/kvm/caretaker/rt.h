/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The caretaker runtime's own declarations: its entry points in
 * rt_entry.S and the boundaries its linker script (rt.lds) defines.
 */
#ifndef __CARETAKER_RT_H
#define __CARETAKER_RT_H

#include "rt_abi.h"

void ctrt_entry(void);
void ctrt_main(struct ctrt_cpu *cb);
void ctrt_trap(u64 *frame);
void ctrt_vmrun(struct ctrt_gprs *gprs, u64 vmcb_pa);
extern const char ctrt_vectors[];
extern const char ctrt_text_end[], ctrt_rodata_end[], ctrt_file_end[];
extern const char ctrt_image_end[];

#endif /* __CARETAKER_RT_H */
