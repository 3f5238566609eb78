/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Hand parked CPUs over a kexec: see <linux/kho/abi/cpu_park.h>.
 */
#ifndef _LINUX_CPU_PARK_KHO_H
#define _LINUX_CPU_PARK_KHO_H

#include <linux/errno.h>
#include <linux/types.h>

#if defined(CONFIG_ARCH_HAS_CPU_PARK) && defined(CONFIG_KEXEC_HANDOVER)
int cpu_park_kho_add(unsigned int cpu);
void cpu_park_kho_remove(unsigned int cpu);
bool cpu_park_kho_stamps(u64 *out_tsc, u64 *in_tsc);
int cpu_park_kho_claim(u32 phys_id);
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
#endif

#endif /* _LINUX_CPU_PARK_KHO_H */
