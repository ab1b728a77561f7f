# tests/attack.mk: included by Makefile.am.  Adversarial review of the v2
# counters, lazy areas and fork handling.
#
#   tests/test_attack         passes on a correct library: in TESTS.
#   tests/attack_static_fork  static link: the atfork handlers are there
#                             (they were not: fork.c's constructor was not
#                             linked); in TESTS.
#   tests/attack_share_handler  share() in a handler that interrupted its
#                             thread's hold of the allocator: no deadlock;
#                             in TESTS.
#   check-attack              all of them, and tests/attack_atfork_order:
#                             an application handler registered *before*
#                             libpcpu's (dlopen) that waits for a lock a
#                             thread holds around pcpu_free() deadlocks,
#                             as malloc's own fork handling would (the
#                             documented limit, libpcpu(7) "Fork"); its
#                             "after" run must pass.

if HAVE_CHECK
check_PROGRAMS += tests/test_attack tests/attack_static_fork \
	tests/attack_share_handler
TESTS += tests/test_attack tests/attack_static_fork \
	tests/attack_share_handler
tests_test_attack_SOURCES = tests/test_attack.c tests/testutil.h
tests_test_attack_CFLAGS = $(PCPU_TEST_CFLAGS)
tests_test_attack_LDADD = lib/libpcpu.la $(CHECK_LIBS)
endif

PCPU_ATTACK_TESTS = tests/attack_static_fork tests/attack_atfork_order \
	tests/attack_share_handler
EXTRA_PROGRAMS = tests/attack_atfork_order

tests_attack_static_fork_SOURCES = tests/attack_static_fork.c
tests_attack_static_fork_LDFLAGS = -static-libtool-libs
tests_attack_static_fork_LDADD = lib/libpcpu.la

tests_attack_atfork_order_SOURCES = tests/attack_atfork_order.c
tests_attack_atfork_order_CPPFLAGS = \
	-DPCPU_SO='"$(abs_top_builddir)/lib/.libs/libpcpu.so.0"'
tests_attack_atfork_order_LDADD = -ldl

tests_attack_share_handler_SOURCES = tests/attack_share_handler.c
tests_attack_share_handler_LDADD = lib/libpcpu.la

check-attack: $(PCPU_ATTACK_TESTS) lib/libpcpu.la
	@fail=0; \
	for t in "tests/attack_static_fork" "tests/attack_atfork_order after" \
		 "tests/attack_atfork_order" "tests/attack_share_handler add" \
		 "tests/attack_share_handler"; do \
		echo "== $$t"; \
		timeout -s KILL 150 ./$$t || { echo "FAIL: $$t"; fail=1; }; \
	done; exit $$fail

.PHONY: check-attack
EXTRA_DIST += tests/attack.mk
