/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * A process linked with librtrs keeps the default actions of the signals
 * libfabric's libinfinipath takes at load time (rtrs(7) NOTES): raised in a
 * child, each kills it with that signal, instead of a message and exit(1).
 * Under a sanitizer, whose own handlers report SIGSEGV, SIGBUS and SIGILL,
 * only SIGINT, SIGTERM and SIGABRT are checked.
 */
#include <sys/resource.h>

#include "harness.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define T_SANITIZED 1
#else
#define T_SANITIZED 0
#endif

int main(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGABRT, SIGSEGV, SIGBUS,
				    SIGILL };
	size_t n = T_SANITIZED ? 3 : sizeof(sigs) / sizeof(sigs[0]);

	/* the library is loaded: its constructors ran before main */
	CHECK(strlen(rtrs_strerror(-EINVAL)) > 0, "rtrs_strerror");
	for (size_t i = 0; i < n; i++) {
		pid_t pid = fork();
		int st = 0;

		if (pid < 0) {
			CHECK(0, "fork: %s", strerror(errno));
			break;
		}
		if (pid == 0) {
			struct rlimit none = { 0, 0 };

			setrlimit(RLIMIT_CORE, &none);  /* no core files */
			raise(sigs[i]);
			_exit(0);
		}
		waitpid(pid, &st, 0);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == sigs[i],
		      "%s: the child %s %d", strsignal(sigs[i]),
		      WIFSIGNALED(st) ? "died by signal" : "exited with",
		      WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
	return t_finish();
}
