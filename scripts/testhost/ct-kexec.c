// SPDX-License-Identifier: GPL-2.0
/*
 * ct-kexec: load the next kernel with kexec_file_load() and reboot into it.
 *
 *   ct-kexec KERNEL INITRD CMDLINE
 *
 * The test host's stage 1 uses it to hand over to stage 2.  Live Update
 * Orchestrator sessions held open by other processes are preserved by the
 * kernel's reboot path; nothing here needs to know about them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/reboot.h>

int main(int argc, char **argv)
{
	int kfd, ifd;
	long ret;

	if (argc != 4) {
		fprintf(stderr, "usage: %s KERNEL INITRD CMDLINE\n", argv[0]);
		return 2;
	}
	kfd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (kfd < 0) {
		fprintf(stderr, "ct-kexec: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	ifd = open(argv[2], O_RDONLY | O_CLOEXEC);
	if (ifd < 0) {
		fprintf(stderr, "ct-kexec: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	/* The command line length includes the terminating NUL. */
	ret = syscall(SYS_kexec_file_load, kfd, ifd, strlen(argv[3]) + 1,
		      argv[3], 0UL);
	if (ret) {
		fprintf(stderr, "ct-kexec: kexec_file_load: %s\n", strerror(errno));
		return 1;
	}
	printf("CT-KEXEC: loaded %s, rebooting\n", argv[1]);
	fflush(stdout);
	sync();
	reboot(LINUX_REBOOT_CMD_KEXEC);
	fprintf(stderr, "ct-kexec: reboot(RB_KEXEC): %s\n", strerror(errno));
	return 1;
}
