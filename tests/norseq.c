/* SPDX-License-Identifier: MIT */
/*
 * tests/norseq: run a command on a kernel that "has no rseq".
 *
 *   tests/norseq PROGRAM [ARGS...]
 *
 * Installs a seccomp filter under which the rseq system call, and no
 * other, fails with ENOSYS, then execs PROGRAM.  The filter is inherited
 * across fork() and execve(), so in PROGRAM (and its children) glibc's
 * registration at start-up fails, and so does libpcpu's own attempt: the
 * library must reach "atomic" through its real detection path, without
 * PCPU_UPDATE_METHOD.  tests/all-methods.sh runs the suites under it.
 *
 * Exit status: PROGRAM's; 77 (automake's "skipped") where this
 * architecture has no rseq system call number or we do not know its
 * audit architecture; 126 when the filter cannot be installed, 127 when
 * PROGRAM cannot be run (as env(1) and the shell do).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

/*
 * The audit architecture the kernel reports in seccomp_data.arch for
 * system calls made with this program's ABI.  Syscall numbers only mean
 * something together with it: the same number is another call in
 * another ABI (i386 through int 0x80 on x86-64, say).
 */
#if defined(__x86_64__) && defined(__ILP32__)
# define NORSEQ_ARCH AUDIT_ARCH_X86_64	/* x32: numbers carry bit 30 */
#elif defined(__x86_64__)
# define NORSEQ_ARCH AUDIT_ARCH_X86_64
#elif defined(__i386__)
# define NORSEQ_ARCH AUDIT_ARCH_I386
#elif defined(__aarch64__) && defined(__AARCH64EB__)
# define NORSEQ_ARCH AUDIT_ARCH_AARCH64BE
#elif defined(__aarch64__)
# define NORSEQ_ARCH AUDIT_ARCH_AARCH64
#elif defined(__arm__) && defined(__ARMEB__)
# define NORSEQ_ARCH AUDIT_ARCH_ARMEB
#elif defined(__arm__)
# define NORSEQ_ARCH AUDIT_ARCH_ARM
#elif defined(__riscv) && __riscv_xlen == 64
# define NORSEQ_ARCH AUDIT_ARCH_RISCV64
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
# define NORSEQ_ARCH AUDIT_ARCH_PPC64LE
#elif defined(__powerpc64__)
# define NORSEQ_ARCH AUDIT_ARCH_PPC64
#elif defined(__s390x__)
# define NORSEQ_ARCH AUDIT_ARCH_S390X
#endif

#if defined(__NR_rseq) && defined(NORSEQ_ARCH)
static int install_filter(void)
{
	struct sock_filter code[] = {
		/* 0: A = seccomp_data.arch, the ABI of this system call. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		/* 1: our ABI: go on at 3; another one: 2.  __NR_rseq is a
		 * number in our ABI only, and another ABI's calls are not
		 * what the programs under test make. */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NORSEQ_ARCH, 1, 0),
		/* 2: another ABI: allowed, whatever it is ("only rseq"). */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		/* 3: A = seccomp_data.nr, the system call number. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		/* 4: rseq: go on at 5; anything else: 6. */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rseq, 0, 1),
		/* 5: rseq fails with ENOSYS, as on a kernel before 4.18
		 * (or in qemu-user), without being run. */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
		/* 6: every other call runs as usual. */
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(code) / sizeof(code[0])),
		.filter = code,
	};

	/* An unprivileged process may install a filter only once it can
	 * gain no privileges through execve() (set-uid programs). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		perror("norseq: prctl(PR_SET_NO_NEW_PRIVS)");
		return -1;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0)) {
		perror("norseq: prctl(PR_SET_SECCOMP)");
		return -1;
	}
	return 0;
}
#endif

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]);
		return 2;
	}
#if defined(__NR_rseq) && defined(NORSEQ_ARCH)
	if (install_filter())
		return 126;
#else
	fprintf(stderr, "norseq: no rseq system call number or audit "
		"architecture known for this target: skipped\n");
	return 77;
#endif
	execvp(argv[1], argv + 1);
	fprintf(stderr, "norseq: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
