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
/* HLTs that an NMI ends, even one taken at their STGI (ctrt_trap()). */
void ctrt_idle_halt(void);
void ctrt_guest_halt(void);
extern const u8 ctrt_idle_hlt[], ctrt_guest_sti[], ctrt_guest_hlt[];
extern const char ctrt_vectors[];
extern const char ctrt_text_end[], ctrt_rodata_end[], ctrt_file_end[];
extern const char ctrt_image_end[];

#endif /* __CARETAKER_RT_H */
