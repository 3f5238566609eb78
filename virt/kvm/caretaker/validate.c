// SPDX-License-Identifier: GPL-2.0-only
/*
 * Pure argument checks of the caretaker uAPI.
 *
 * Kept free of side effects and of global state (the CPU masks are
 * parameters) so that KUnit can drive every branch; the ioctl paths call
 * them with the live masks.
 */
#include <kunit/visibility.h>
#include <linux/errno.h>
#include <linux/string.h>

#include "caretaker.h"

/**
 * caretaker_check_zero() - check that flags, padding or reserved are zero
 * @p: start of the field
 * @len: its size in bytes
 * @what: the field's name, for the refusal's reason
 *
 * Every uAPI struct ends in fields that must be zero, so that they can be
 * given a meaning later without breaking old binaries.
 *
 * Context: any context.
 * Return: CARETAKER_OK, or -EINVAL with @what as the reason.
 */
struct caretaker_refusal caretaker_check_zero(const void *p, size_t len,
					      const char *what)
{
	if (memchr_inv(p, 0, len))
		return CARETAKER_REFUSE(-EINVAL, what);
	return CARETAKER_OK;
}
EXPORT_SYMBOL_IF_KUNIT(caretaker_check_zero);

/**
 * caretaker_check_args() - check the flags and reserved fields of a request
 * @flags: the request's flags; none is defined yet
 * @reserved: the request's reserved fields
 * @len: their size in bytes
 *
 * Context: any context.
 * Return: CARETAKER_OK, or -EINVAL naming the field that is not zero.
 */
struct caretaker_refusal caretaker_check_args(u32 flags, const void *reserved,
					      size_t len)
{
	if (flags)
		return CARETAKER_REFUSE(-EINVAL, "flags not zero");
	return caretaker_check_zero(reserved, len, "reserved fields not zero");
}
EXPORT_SYMBOL_IF_KUNIT(caretaker_check_args);

/**
 * caretaker_check_cpus() - validate the physical CPUs requested by PREPARE
 * @cpus: the CPU numbers, entry i for the vCPU with index i
 * @nr_cpus: entries in @cpus
 * @nr_vcpus: vCPUs the VM has created
 * @nr_cpu_ids: the system's number of CPU ids
 * @online: the CPUs online now
 * @hotpluggable: the CPUs that can be taken offline (never the boot CPU)
 * @seen: scratch mask, cleared here, for the duplicate check
 *
 * One vCPU per physical CPU, each CPU online and hotpluggable.  A CPU that
 * is not hotpluggable (the boot CPU on x86) could never be handed back
 * from the parked state.
 *
 * Context: any context; the caller keeps @online and @hotpluggable stable.
 * Return: CARETAKER_OK, or -EINVAL and the first reason found.
 */
struct caretaker_refusal caretaker_check_cpus(const u32 *cpus, u32 nr_cpus,
					      u32 nr_vcpus,
					      unsigned int nr_cpu_ids,
					      const struct cpumask *online,
					      const struct cpumask *hotpluggable,
					      struct cpumask *seen)
{
	u32 i;

	if (!nr_vcpus)
		return CARETAKER_REFUSE(-EINVAL, "the VM has no vCPUs");
	if (nr_cpus < nr_vcpus)
		return CARETAKER_REFUSE(-EINVAL, "fewer physical CPUs than vCPUs");
	if (nr_cpus > nr_vcpus)
		return CARETAKER_REFUSE(-EINVAL, "more physical CPUs than vCPUs");

	cpumask_clear(seen);
	for (i = 0; i < nr_cpus; i++) {
		if (cpus[i] >= nr_cpu_ids)
			return CARETAKER_REFUSE(-EINVAL, "physical CPU out of range");
		if (cpumask_test_and_set_cpu(cpus[i], seen))
			return CARETAKER_REFUSE(-EINVAL, "physical CPU given twice");
		if (!cpumask_test_cpu(cpus[i], online))
			return CARETAKER_REFUSE(-EINVAL, "physical CPU is offline");
		if (!cpumask_test_cpu(cpus[i], hotpluggable))
			return CARETAKER_REFUSE(-EINVAL,
						"physical CPU cannot be taken offline (boot CPU or not hotpluggable)");
	}
	/* The host keeps at least one CPU: the boot CPU is never in the set. */
	return CARETAKER_OK;
}
EXPORT_SYMBOL_IF_KUNIT(caretaker_check_cpus);
