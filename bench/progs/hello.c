/*
 * hello: the per-connection program of the sockd benchmarks.
 *
 * Started by an inetd-style server with the connection on fds 0, 1 and 2, it
 * writes one line to fd 1, then reads the client's request line once (so that
 * closing does not reset the connection because of unread data), and exits.
 *
 * With -DHELLO_RAW on x86-64 it is built without libc, from raw system calls,
 * so that exec + run costs as little as possible:
 *   gcc -O2 -static -nostdlib -fno-stack-protector -DHELLO_RAW -o hello hello.c
 * otherwise:
 *   gcc -O2 -static -o hello hello.c
 */
static const char msg[] = "hello\n";

#if defined(HELLO_RAW) && defined(__x86_64__)

static long sys3(long n, long a, long b, long c)
{
	long r;
	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return r;
}

__attribute__((noreturn)) void _start(void)
{
	char buf[512];
	sys3(1, 1, (long)msg, sizeof msg - 1); /* write */
	sys3(0, 0, (long)buf, sizeof buf);     /* read */
	for (;;)
		sys3(231, 0, 0, 0);            /* exit_group */
}

#else

#include <unistd.h>

int main(void)
{
	char buf[512];
	if (write(1, msg, sizeof msg - 1) < 0)
		return 1;
	if (read(0, buf, sizeof buf) < 0)
		return 1;
	return 0;
}

#endif
