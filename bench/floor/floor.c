/*
 * floor: the physical limit of an inetd-style server on this machine.
 *
 *   floor ADDR PORT PROG [ARG...]
 *
 * A minimal C loop: accept a connection, posix_spawn PROG with the connection
 * on fds 0, 1 and 2, close it, reap finished children with
 * waitpid(WNOHANG). No limits, no logging, no environment changes. glibc's
 * posix_spawn uses clone(CLONE_VM|CLONE_VFORK), the same shape as a vfork +
 * exec spawner. It prints nothing; it runs until killed.
 *
 *   gcc -O2 -o floor floor.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	int one = 1, lfd;

	if (argc < 4) {
		fprintf(stderr, "usage: floor ADDR PORT PROG [ARG...]\n");
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "floor: bad IPv4 address %s\n", argv[1]);
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
		perror("floor: listen");
		return 1;
	}
	for (;;) {
		posix_spawn_file_actions_t fa;
		pid_t pid;
		int c, err;

		c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
				continue;
			perror("floor: accept");
			return 1;
		}
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, c, 0);
		posix_spawn_file_actions_adddup2(&fa, c, 1);
		posix_spawn_file_actions_adddup2(&fa, c, 2);
		err = posix_spawn(&pid, argv[3], &fa, NULL, argv + 3, environ);
		posix_spawn_file_actions_destroy(&fa);
		if (err != 0)
			fprintf(stderr, "floor: spawn %s: %s\n", argv[3], strerror(err));
		close(c);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}
