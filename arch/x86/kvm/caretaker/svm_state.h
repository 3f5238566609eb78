/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A vCPU's state, as KVM's save/restore ioctls carry it, in and out of
 * the runtime's VMCB.
 */
#ifndef __CARETAKER_SVM_STATE_H
#define __CARETAKER_SVM_STATE_H

#include <linux/kvm_host.h>

#include "runtime.h"

int ct_svm_load(struct ct_runtime_cpu *c, const struct kvm_x86_vcpu_state *s,
		phys_addr_t ncr3);
void ct_svm_store(struct ct_runtime_cpu *c, struct kvm_x86_vcpu_state *s);

#endif /* __CARETAKER_SVM_STATE_H */
