/*
 * echosrv: a keep-alive echo server for the handoff benchmarks.
 *
 *   echosrv [ADDR PORT]
 *
 * If LISTEN_FDS is set (and LISTEN_PID is unset or names this process) it
 * serves the listening socket on fd 3, as handed over by sockd or
 * systemd-socket-activate; otherwise it binds ADDR:PORT (IPv4) itself. Every
 * connection gets back every byte it sends, until it closes. One thread,
 * epoll, non-blocking sockets.
 *
 *   gcc -O2 -static -o echosrv echosrv.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int inherited(void)
{
	const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
	if (fds == NULL || atoi(fds) < 1)
		return -1;
	if (pid != NULL && atoi(pid) != (int)getpid())
		return -1;
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	fcntl(3, F_SETFD, FD_CLOEXEC);
	return 3;
}

static int bound(const char *addr, const char *port)
{
	struct sockaddr_in sa;
	int one = 1, fd;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(port));
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		fprintf(stderr, "echosrv: bad IPv4 address %s\n", addr);
		exit(2);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
		perror("echosrv: listen");
		exit(1);
	}
	return fd;
}

/* writeall writes all of buf to a non-blocking socket, waiting when full. */
static int writeall(int fd, const char *buf, ssize_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, (size_t)n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = {.fd = fd, .events = POLLOUT};
				poll(&p, 1, 1000);
				continue;
			}
			return -1;
		}
		buf += w;
		n -= w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[65536];
	struct epoll_event ev, evs[64];
	int lfd, ep, one = 1;

	lfd = inherited();
	if (lfd < 0) {
		if (argc != 3) {
			fprintf(stderr, "usage: echosrv ADDR PORT (or LISTEN_FDS=1 with the socket on fd 3)\n");
			return 2;
		}
		lfd = bound(argv[1], argv[2]);
	}
	fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("echosrv: epoll");
		return 1;
	}
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echosrv: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				for (;;) {
					int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (c < 0)
						break;
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					ev.events = EPOLLIN;
					ev.data.fd = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
						close(c);
				}
				continue;
			}
			ssize_t r = read(fd, buf, sizeof buf);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0 || writeall(fd, buf, r) < 0)
				close(fd); /* also leaves the epoll set */
		}
	}
}
