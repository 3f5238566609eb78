/* SPDX-License-Identifier: GPL-2.0-only */
/* Caretaker: what the x86 files share. */
#ifndef __CARETAKER_CT_X86_H
#define __CARETAKER_CT_X86_H

#include <linux/kvm_host.h>

#include "caretaker.h"

struct caretaker_refusal caretaker_x86_check_vcpu_state(struct kvm_vcpu *vcpu);

#endif /* __CARETAKER_CT_X86_H */
