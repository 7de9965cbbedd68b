// The relay: each loop is a thread of its own (not a Go thread) over a
// level-triggered epoll set, moving the bytes of its connections with
// splice(2) through a pipe per direction, as systemd-socket-proxyd does.
// Go hands connections over with relay_add and learns how each ended from
// the done list, signalled on an eventfd that Go's poller watches.
//
// Ownership: a conn belongs to the loop thread from relay_add until it is on
// the done list; after relay_take_done it is Go's, which frees it with
// relay_release. The mutex protects what both sides touch: the add queue,
// the close queue (and a conn's close fields), the stop flag, the done
// list. Closes are processed with the mutex held, so that relay_release can
// take a conn off the close queue before freeing it.
#define _GNU_SOURCE
#include "relay_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// Pipe capacity asked for per direction (as Go's own splice): up to this
// much moves per pair of splice calls.
#define PIPE_SIZE (1 << 20)
// Splice rounds of one direction per readiness event, so that one bulk
// stream cannot starve the other connections of its loop.
#define PUMP_ROUNDS 8
#define MAX_EVENTS 64

typedef struct dir {
	int src, dst;
	int pr, pw;       // the pipe's read and write ends
	size_t buffered;  // bytes in the pipe
	uint64_t moved;   // bytes written to dst
	int eof;          // src reached EOF
	int done;         // EOF passed on: dst's write side shut down
} dir;

typedef struct relay_conn conn;
struct relay_conn {
	uint64_t id;
	int cfd, bfd;
	dir up, down; // client -> backend, backend -> client
	int64_t idle_ns, last_ns;
	uint32_t cev, bev; // events registered for cfd and bfd (0: none)
	int activated, finished;
	int32_t how, err;
	conn *prev, *next; // the active list, the add queue, the grave or the done list
	// under the loop's mutex:
	conn *close_next; // the close queue
	int close_queued, close_req;
};

struct relay_loop {
	int epfd, wake, donefd;
	pthread_t thread;
	pthread_mutex_t mu;
	// under mu:
	conn *adds, *adds_tail;
	conn *closes;
	conn *done;
	int stop;
	int freeze; // stop the thread, keep the connections (relay_freeze)
	// loop thread only:
	conn *active;
	conn *grave; // finished during this batch of events
	int nidle;
	int64_t min_idle;
};

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// idle_window is how often idle connections are looked for.
static int64_t idle_window(int64_t idle) {
	int64_t w = idle / 4;
	if (w < 10000000) w = 10000000;
	if (w > 15000000000LL) w = 15000000000LL;
	return w;
}

static void wake_fd(int fd) {
	uint64_t one = 1;
	ssize_t n;
	do {
		n = write(fd, &one, sizeof one);
	} while (n < 0 && errno == EINTR);
}

static void drain_fd(int fd) {
	uint64_t v;
	ssize_t n;
	do {
		n = read(fd, &v, sizeof v);
	} while (n < 0 && errno == EINTR);
}

static int want_in(const dir *d) { return !d->eof && d->buffered == 0; }
static int want_out(const dir *d) { return d->buffered > 0; }

static uint32_t ev_bits(int in, int out) {
	uint32_t ev = 0;
	if (in) ev |= EPOLLIN | EPOLLRDHUP;
	if (out) ev |= EPOLLOUT;
	return ev;
}

// set_events brings fd's registration (side 0: cfd, 1: bfd) to want; 0 or
// an errno.
static int set_events(relay_loop *l, conn *c, int side, uint32_t want) {
	uint32_t *cur = side ? &c->bev : &c->cev;
	int fd = side ? c->bfd : c->cfd;
	if (*cur == want) return 0;
	struct epoll_event ev = {.events = want, .data.u64 = (uint64_t)(uintptr_t)c | (uint64_t)side};
	int rc;
	if (want == 0)
		rc = epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	else if (*cur == 0)
		rc = epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
	else
		rc = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
	if (rc < 0) return errno;
	*cur = want;
	return 0;
}

// reg registers what c's directions wait for. An fd that waits for nothing
// leaves the set, so that a hang-up it reports cannot wake the loop in vain.
static int reg(relay_loop *l, conn *c) {
	int err = set_events(l, c, 0, ev_bits(want_in(&c->up), want_out(&c->down)));
	if (err) return err;
	return set_events(l, c, 1, ev_bits(want_in(&c->down), want_out(&c->up)));
}

// pump moves what it can of d without blocking; 0 or an errno. *moved is
// set on progress.
static int pump(dir *d, int *moved) {
	const unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
	for (int round = 0; round < PUMP_ROUNDS; round++) {
		if (d->buffered > 0) {
			ssize_t n = splice(d->pr, NULL, d->dst, NULL, d->buffered, flags);
			if (n < 0) {
				if (errno == EAGAIN) return 0;
				if (errno == EINTR) continue;
				return errno;
			}
			d->buffered -= (size_t)n;
			d->moved += (uint64_t)n;
			*moved = 1;
			continue;
		}
		if (d->eof) return 0;
		ssize_t n = splice(d->src, NULL, d->pw, NULL, PIPE_SIZE, flags);
		if (n < 0) {
			if (errno == EAGAIN) return 0;
			if (errno == EINTR) continue;
			return errno;
		}
		if (n == 0) {
			// EOF with the pipe empty: pass it on now (a round bound must
			// not leave the direction waiting for an event that will not
			// come).
			d->eof = d->done = 1;
			*moved = 1;
			if (shutdown(d->dst, SHUT_WR) < 0) return errno; // as copyDir: end both
			return 0;
		}
		d->buffered += (size_t)n;
		*moved = 1;
	}
	return 0;
}

static void close_fds(conn *c) {
	int fds[] = {c->cfd, c->bfd, c->up.pr, c->up.pw, c->down.pr, c->down.pw};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
		if (fds[i] >= 0) close(fds[i]);
}

// finish ends c: its fds leave the set and are closed, and it goes to the
// grave, handed to Go after the current batch of events.
static void finish(relay_loop *l, conn *c, int how, int err) {
	if (c->finished) return;
	c->finished = 1;
	c->how = how;
	c->err = err;
	if (c->cev) epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->cfd, NULL);
	if (c->bev) epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->bfd, NULL);
	c->cev = c->bev = 0;
	close_fds(c);
	if (c->prev) c->prev->next = c->next;
	else l->active = c->next;
	if (c->next) c->next->prev = c->prev;
	if (c->idle_ns > 0 && --l->nidle == 0) l->min_idle = 0;
	c->prev = NULL;
	c->next = l->grave;
	l->grave = c;
}

// bury hands the connections finished in this batch to Go.
static void bury(relay_loop *l) {
	if (!l->grave) return;
	conn *last = l->grave;
	while (last->next) last = last->next;
	pthread_mutex_lock(&l->mu);
	last->next = l->done;
	l->done = l->grave;
	pthread_mutex_unlock(&l->mu);
	l->grave = NULL;
	wake_fd(l->donefd);
}

static void activate(relay_loop *l, conn *c, int64_t now) {
	c->activated = 1;
	c->next = l->active;
	c->prev = NULL;
	if (l->active) l->active->prev = c;
	l->active = c;
	c->last_ns = now;
	if (c->idle_ns > 0) {
		if (l->nidle++ == 0 || c->idle_ns < l->min_idle) l->min_idle = c->idle_ns;
	}
	pthread_mutex_lock(&l->mu);
	int close_req = c->close_req;
	pthread_mutex_unlock(&l->mu);
	if (close_req) {
		finish(l, c, RELAY_CLOSED, 0);
		return;
	}
	if (c->err) { // from relay_add's first pump
		finish(l, c, RELAY_ERROR, c->err);
		return;
	}
	if (c->up.done && c->down.done) {
		finish(l, c, RELAY_EOF, 0);
		return;
	}
	// Whatever arrived since is read at the first wake-up (level-triggered).
	int err = reg(l, c);
	if (err) finish(l, c, RELAY_ERROR, err);
}

// commands takes the queued connections, closes and the stop flag; it
// returns 1 when the loop is to stop.
static int commands(relay_loop *l) {
	drain_fd(l->wake);
	pthread_mutex_lock(&l->mu);
	conn *q = l->adds;
	l->adds = l->adds_tail = NULL;
	pthread_mutex_unlock(&l->mu);
	int64_t now = now_ns();
	while (q) {
		conn *c = q;
		q = q->next;
		activate(l, c, now);
	}
	pthread_mutex_lock(&l->mu);
	for (conn *c = l->closes, *next; c; c = next) {
		next = c->close_next;
		c->close_next = NULL;
		c->close_queued = 0;
		if (!c->activated)
			c->close_req = 1; // added after the queue was taken: activate closes it
		else if (!c->finished)
			finish(l, c, RELAY_CLOSED, 0);
	}
	l->closes = NULL;
	int stop = l->stop, freeze = l->freeze;
	pthread_mutex_unlock(&l->mu);
	if (stop)
		while (l->active) finish(l, l->active, RELAY_CLOSED, 0);
	return stop || freeze;
}

// ready pumps the directions that fd (side 0: cfd, 1: bfd) takes part in.
static int ready(conn *c, int side, uint32_t ev, int *moved) {
	dir *in = side ? &c->down : &c->up;
	dir *out = side ? &c->up : &c->down;
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		int err = pump(in, moved);
		if (err) return err;
	}
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) return pump(out, moved);
	return 0;
}

static void close_idle(relay_loop *l, int64_t now) {
	conn *c = l->active;
	while (c) {
		conn *next = c->next;
		if (c->idle_ns > 0 && now - c->last_ns >= c->idle_ns) finish(l, c, RELAY_IDLE, 0);
		c = next;
	}
}

static void *loop_main(void *arg) {
	relay_loop *l = arg;
	struct epoll_event evs[MAX_EVENTS];
	int64_t last_scan = now_ns();
	for (;;) {
		int timeout = -1;
		int64_t win = 0;
		if (l->nidle > 0) {
			win = idle_window(l->min_idle);
			int64_t left = last_scan + win - now_ns();
			timeout = left > 0 ? (int)((left + 999999) / 1000000) : 0;
		}
		int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno != EINTR) {
				// Cannot happen with a valid epoll fd; do not spin.
				struct timespec ts = {0, 10000000};
				nanosleep(&ts, NULL);
			}
			n = 0;
		}
		int64_t now = 0;
		int stop = 0;
		for (int i = 0; i < n; i++) {
			uint64_t data = evs[i].data.u64;
			if (data == 0) {
				stop = commands(l);
				continue;
			}
			conn *c = (conn *)(uintptr_t)(data & ~(uint64_t)1);
			if (c->finished) continue; // earlier in this batch
			int moved = 0;
			int err = ready(c, (int)(data & 1), evs[i].events, &moved);
			if (err) {
				finish(l, c, RELAY_ERROR, err);
				continue;
			}
			if (c->up.done && c->down.done) {
				finish(l, c, RELAY_EOF, 0);
				continue;
			}
			if (moved && c->idle_ns > 0) {
				if (!now) now = now_ns();
				c->last_ns = now;
			}
			err = reg(l, c);
			if (err) finish(l, c, RELAY_ERROR, err);
		}
		if (l->nidle > 0) {
			int64_t t = now_ns();
			if (t - last_scan >= win) {
				last_scan = t;
				close_idle(l, t);
			}
		}
		bury(l);
		if (stop) return NULL;
	}
}

// start_thread starts l's loop thread; 0 or an errno. The thread starts
// with every signal blocked: signals are for Go's threads.
static int start_thread(relay_loop *l) {
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int err = pthread_create(&l->thread, &attr, loop_main, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return err;
}

relay_loop *relay_start(void) {
	relay_loop *l = calloc(1, sizeof *l);
	if (!l) return NULL;
	l->epfd = l->wake = l->donefd = -1;
	int err = 0;
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    (l->donefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		err = errno;
		goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake, &ev) < 0) {
		err = errno;
		goto fail;
	}
	pthread_mutex_init(&l->mu, NULL);
	err = start_thread(l);
	if (err) {
		pthread_mutex_destroy(&l->mu);
		goto fail;
	}
	return l;
fail:
	if (l->epfd >= 0) close(l->epfd);
	if (l->wake >= 0) close(l->wake);
	if (l->donefd >= 0) close(l->donefd);
	free(l);
	errno = err;
	return NULL;
}

int relay_done_fd(relay_loop *l) { return l->donefd; }

static int open_pipe(dir *d) {
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) return errno;
	d->pr = p[0];
	d->pw = p[1];
	// Best effort: past pipe-user-pages-soft (an unprivileged user with
	// many pipes open) the kernel refuses, and new pipes of that user get
	// 2 pages (Go's own splice pipes fare the same).
	(void)fcntl(d->pw, F_SETPIPE_SZ, PIPE_SIZE);
	return 0;
}

// queue_add hands c to the loop's thread, which activates it.
static void queue_add(relay_loop *l, conn *c) {
	pthread_mutex_lock(&l->mu);
	if (l->adds_tail) l->adds_tail->next = c;
	else l->adds = c;
	l->adds_tail = c;
	pthread_mutex_unlock(&l->mu);
	wake_fd(l->wake);
}

int relay_add(relay_loop *l, uint64_t id, int cfd, int bfd, int64_t idle_ns, relay_conn **out) {
	conn *c = calloc(1, sizeof *c);
	if (!c) return -ENOMEM;
	c->id = id;
	c->cfd = cfd;
	c->bfd = bfd;
	c->idle_ns = idle_ns;
	c->up = (dir){.src = cfd, .dst = bfd, .pr = -1, .pw = -1};
	c->down = (dir){.src = bfd, .dst = cfd, .pr = -1, .pw = -1};
	int err = open_pipe(&c->up);
	if (!err) err = open_pipe(&c->down);
	if (err) {
		int fds[] = {c->up.pr, c->up.pw, c->down.pr, c->down.pw};
		for (int i = 0; i < 4; i++)
			if (fds[i] >= 0) close(fds[i]);
		free(c);
		return -err;
	}
	// Move what has arrived already (typically the client's first request)
	// here, before the loop's thread wakes up for the new connection: that
	// wake-up then overlaps the backend's work instead of delaying it. The
	// connection is not the loop's yet, so this thread may touch it.
	int moved = 0;
	c->err = pump(&c->up, &moved);
	if (!c->err) c->err = pump(&c->down, &moved);
	queue_add(l, c);
	*out = c;
	return 0;
}

void relay_close(relay_loop *l, relay_conn *c) {
	pthread_mutex_lock(&l->mu);
	int queue = !c->close_queued;
	if (queue) {
		c->close_queued = 1;
		c->close_next = l->closes;
		l->closes = c;
	}
	pthread_mutex_unlock(&l->mu);
	if (queue) wake_fd(l->wake);
}

void relay_release(relay_loop *l, relay_conn *c) {
	pthread_mutex_lock(&l->mu);
	if (c->close_queued) {
		conn **pp = &l->closes;
		while (*pp != c) pp = &(*pp)->close_next;
		*pp = c->close_next;
	}
	pthread_mutex_unlock(&l->mu);
	free(c);
}

int relay_take_done(relay_loop *l, relay_result *out, int max) {
	int n = 0;
	pthread_mutex_lock(&l->mu);
	while (n < max && l->done) {
		conn *c = l->done;
		l->done = c->next;
		out[n++] = (relay_result){.id = c->id, .up = c->up.moved, .down = c->down.moved, .how = c->how, .err = c->err};
	}
	pthread_mutex_unlock(&l->mu);
	return n;
}

// end_thread sets *flag (l->stop or l->freeze) and waits for the loop's
// thread to see it and return.
static void end_thread(relay_loop *l, int *flag) {
	pthread_mutex_lock(&l->mu);
	*flag = 1;
	pthread_mutex_unlock(&l->mu);
	wake_fd(l->wake);
	pthread_join(l->thread, NULL);
}

void relay_stop(relay_loop *l) { end_thread(l, &l->stop); }

void relay_free(relay_loop *l) {
	conn *c = l->done;
	while (c) {
		conn *next = c->next;
		free(c);
		c = next;
	}
	close(l->epfd);
	close(l->wake);
	close(l->donefd);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

void relay_freeze(relay_loop *l) { end_thread(l, &l->freeze); }

int relay_thaw(relay_loop *l) {
	pthread_mutex_lock(&l->mu);
	l->freeze = 0;
	pthread_mutex_unlock(&l->mu);
	int err = start_thread(l);
	if (!err) wake_fd(l->wake); // adds that waited
	return err;
}

int relay_take_frozen(relay_loop *l, relay_frozen *out, int max) {
	int n = 0;
	for (conn *c = l->active; c && n < max; c = c->next) {
		if (c->finished) continue;
		out[n++] = (relay_frozen){.id = c->id, .cfd = c->cfd, .bfd = c->bfd,
			.up_pr = c->up.pr, .up_pw = c->up.pw, .down_pr = c->down.pr, .down_pw = c->down.pw,
			.up_buffered = c->up.buffered, .down_buffered = c->down.buffered,
			.up_moved = c->up.moved, .down_moved = c->down.moved,
			.up_eof = c->up.eof, .up_done = c->up.done, .down_eof = c->down.eof, .down_done = c->down.done,
			.idle_ns = c->idle_ns};
	}
	return n;
}

int relay_adopt(relay_loop *l, const relay_frozen *f, uint64_t id, relay_conn **out) {
	conn *c = calloc(1, sizeof *c);
	if (!c) return -ENOMEM;
	c->id = id;
	c->cfd = f->cfd;
	c->bfd = f->bfd;
	c->idle_ns = f->idle_ns;
	c->up = (dir){.src = f->cfd, .dst = f->bfd, .pr = f->up_pr, .pw = f->up_pw, .buffered = f->up_buffered,
		.moved = f->up_moved, .eof = f->up_eof, .done = f->up_done};
	c->down = (dir){.src = f->bfd, .dst = f->cfd, .pr = f->down_pr, .pw = f->down_pw, .buffered = f->down_buffered,
		.moved = f->down_moved, .eof = f->down_eof, .done = f->down_done};
	queue_add(l, c);
	*out = c;
	return 0;
}
