/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Hand parked CPUs over a kexec: see <linux/kho/abi/cpu_park.h>.
 */
#ifndef _LINUX_CPU_PARK_KHO_H
#define _LINUX_CPU_PARK_KHO_H

#include <linux/errno.h>
#include <linux/timex.h>
#include <linux/types.h>

#if defined(CONFIG_ARCH_HAS_CPU_PARK) && defined(CONFIG_KEXEC_HANDOVER)
int cpu_park_kho_add(unsigned int cpu);
void cpu_park_kho_remove(unsigned int cpu);
bool cpu_park_kho_stamps(u64 *out_tsc, u64 *in_tsc);
int cpu_park_kho_claim(u32 phys_id);
int cpu_park_kho_kexec(bool pass_on);
void cpu_park_kho_kexec_cancel(void);

extern u64 cpu_park_kho_start_tsc;

/* First thing in start_kernel(): when this kernel began, for the handover log. */
static __always_inline void cpu_park_kho_stamp_start(void)
{
	cpu_park_kho_start_tsc = get_cycles();
}
#else
static inline int cpu_park_kho_add(unsigned int cpu)
{
	return -EOPNOTSUPP;
}

static inline void cpu_park_kho_remove(unsigned int cpu) { }

static inline bool cpu_park_kho_stamps(u64 *out_tsc, u64 *in_tsc)
{
	*out_tsc = 0;
	*in_tsc = 0;
	return false;
}

static inline int cpu_park_kho_claim(u32 phys_id)
{
	return -ENOENT;
}

static inline int cpu_park_kho_kexec(bool pass_on)
{
	return 0;
}

static inline void cpu_park_kho_kexec_cancel(void) { }
static inline void cpu_park_kho_stamp_start(void) { }
#endif

#endif /* _LINUX_CPU_PARK_KHO_H */
