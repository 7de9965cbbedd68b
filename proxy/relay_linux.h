// The relay: threads outside the Go scheduler that move the bytes of proxied
// stream connections with splice(2). See relay_linux.go.
#ifndef SOCKD_RELAY_LINUX_H
#define SOCKD_RELAY_LINUX_H

#include <stdint.h>

typedef struct relay_loop relay_loop;
typedef struct relay_conn relay_conn;

// How a connection ended.
enum {
	RELAY_EOF = 0,    // both directions reached EOF and passed it on
	RELAY_IDLE = 1,   // nothing moved for the idle timeout
	RELAY_ERROR = 2,  // a socket failed (err holds the errno)
	RELAY_CLOSED = 3, // relay_close, or the loop stopped
};

typedef struct relay_result {
	uint64_t id;
	uint64_t up, down; // bytes client -> backend, backend -> client
	int32_t how;
	int32_t err;
} relay_result;

// relay_start starts a loop thread; NULL with errno set on failure.
relay_loop *relay_start(void);
// relay_done_fd is an eventfd that becomes readable when results wait.
int relay_done_fd(relay_loop *l);
// relay_add hands a connection to the loop: both fds (non-blocking) are the
// loop's from then on, closed by it when the connection ends. It returns 0
// and the connection's handle in *out, or -errno having taken nothing.
int relay_add(relay_loop *l, uint64_t id, int cfd, int bfd, int64_t idle_ns, relay_conn **out);
// relay_close ends c (result RELAY_CLOSED) unless it has ended already.
// Not after relay_release.
void relay_close(relay_loop *l, relay_conn *c);
// relay_take_done copies up to max results of ended connections out;
// returns how many. Each connection is then to be freed with relay_release.
int relay_take_done(relay_loop *l, relay_result *out, int max);
// relay_release frees a connection whose result was taken.
void relay_release(relay_loop *l, relay_conn *c);
// relay_stop ends the thread, closing any connection left (their results
// go to the done list).
void relay_stop(relay_loop *l);
// A connection as an in-place upgrade hands it to the next image of sockd:
// its sockets, its pipes and what each holds, how far each direction got.
typedef struct relay_frozen {
	uint64_t id;
	int32_t cfd, bfd;
	int32_t up_pr, up_pw, down_pr, down_pw;
	uint64_t up_buffered, down_buffered; // bytes in each pipe
	uint64_t up_moved, down_moved;
	int32_t up_eof, up_done, down_eof, down_done;
	int64_t idle_ns;
} relay_frozen;

// relay_freeze ends the thread without ending its connections: they stay
// as they are, fds open and bytes in their pipes, for relay_take_frozen; new
// adds wait. relay_thaw starts the thread again over them.
void relay_freeze(relay_loop *l);
int relay_thaw(relay_loop *l);
// relay_take_frozen copies up to max of a frozen loop's live connections out;
// returns how many.
int relay_take_frozen(relay_loop *l, relay_frozen *out, int max);
// relay_adopt hands the loop a connection an earlier image froze: its fds
// are the loop's from then on. 0 and the handle in *out, or -errno.
int relay_adopt(relay_loop *l, const relay_frozen *f, uint64_t id, relay_conn **out);
// relay_free closes the loop's fds and frees it, results not taken too. No
// other relay_ call on l may run or follow.
void relay_free(relay_loop *l);

#endif
