/* SPDX-License-Identifier: MIT */
/*
 * selfexec.h - run this test binary again as a child, with one
 * environment variable set, natively, under valgrind and under an
 * emulator.  For the tests whose subject is process start-up (early.c,
 * the PCPU_NR_SLOTS and PCPU_SLOT_INDEX runs of test_cpu.c and
 * test_area.c).  Header-only: early.c links no Check.
 *
 *  - The path: readlink() of /proc/self/exe, not the link itself; under
 *    valgrind the link names valgrind's tool, while readlink() gives this
 *    program's path there as well as natively.
 *  - Under an emulator (PCPU_TEST_RUNNER set, e.g. "qemu-aarch64": see
 *    tests/cross-aarch64.sh) the kernel cannot start a foreign binary, so
 *    the child is `$PCPU_TEST_RUNNER <binary> ARGS`, through /bin/sh.
 *    The emulator gives /proc/self/exe the emulated binary's path.
 */
#ifndef PCPU_SELFEXEC_H
#define PCPU_SELFEXEC_H

#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static inline const char *se_self_path(void)
{
	static char path[PATH_MAX];
	ssize_t len;

	if (path[0])
		return path;
	len = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (len <= 0 || (size_t)len >= sizeof(path) - 1) {
		path[0] = '\0';		/* unknown or truncated */
		return "/proc/self/exe";
	}
	path[len] = '\0';
	return path;
}

/*
 * Start this binary with the arguments @arg and @arg2 (either NULL: no
 * more) and the environment with @var ("NAME=value") replacing any NAME=;
 * wait for it.
 * Returns its wait status, or -1 (errno set) if it could not be started.
 * The child's exit status 127 means its exec failed.
 */
static inline int se_run_self(const char *arg, const char *arg2,
			      const char *var)
{
	const char *self = se_self_path(), *runner = getenv("PCPU_TEST_RUNNER");
	size_t n = 0, i, j = 0, len = strcspn(var, "=") + 1;
	char **envp;
	pid_t pid;
	int st;

	while (environ[n])
		n++;
	envp = calloc(n + 2, sizeof(*envp));
	if (!envp)
		return -1;
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], var, len))
			envp[j++] = environ[i];
	envp[j++] = (char *)var;
	envp[j] = NULL;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (runner && *runner) {
			char *sh[] = { "/bin/sh", "-c",
				"exec $PCPU_TEST_RUNNER \"$0\" \"$@\"",
				(char *)self, (char *)arg, (char *)arg2,
				NULL };

			execve("/bin/sh", sh, envp);
		} else {
			char *args[] = { (char *)self, (char *)arg,
					 (char *)arg2, NULL };

			execve(self, args, envp);
		}
		_exit(127);
	}
	free(envp);
	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

#endif /* PCPU_SELFEXEC_H */
