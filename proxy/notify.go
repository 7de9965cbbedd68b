package proxy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
)

// The NOTIFY_SOCKET (Config.Notify). Its path is visible to every local
// user (/proc/net/unix), and READY=1 sends clients to the backend's
// address, which a stranger may have taken while the backend starts. So
// a datagram counts only when it comes from the backend:
//
//   - The socket's node is mode 0600 and belongs to the backend's user
//     (Config.BackendUser; sockd's own user without one), in a directory of
//     sockd's, mode 0710 with the backend's group (0700 when the backend
//     runs as sockd's user): no other user but root can send to it.
//   - SO_PASSCRED makes the kernel attach the sender's pid, uid and gid to
//     every datagram; a process cannot claim another pid without
//     CAP_SYS_ADMIN. A datagram is accepted only from the backend's main
//     process (Backend.MainPID) or one of its descendants: the sender's
//     parent chain, read from /proc when the datagram is read, reaches the
//     main process. This is systemd's NotifyAccess=main, widened to the
//     children a shell backend runs systemd-notify from. A process that
//     left the tree (a double fork, reparented to init or to sockd) is
//     refused, and so is a child that exited before sockd read its
//     datagram (systemd-notify --ready waits: its BARRIER=1 ends only when
//     sockd closes the fd it passed, after its READY=1 was read). The
//     process group is not used: any process of sockd's session could
//     join the backend's.
//
// A refused datagram is logged at most once every notifyLogEvery, with its
// sender and the number refused since the last line.

const notifyLogEvery = 10 * time.Second

// maxAncestors bounds the parent chain followed from a sender.
const maxAncestors = 64

// sender is the SCM_CREDENTIALS of a datagram.
type sender struct {
	pid      int32
	uid, gid uint32
}

// refusedNotify rate-limits the refusal lines.
type refusedNotify struct {
	last time.Time
	n    int
}

func (s *Server) openNotify() error {
	dir, err := os.MkdirTemp("", "sockd-proxy-") // 0700, sockd's own
	if err != nil {
		return fmt.Errorf("proxy %s: notify socket directory: %w", s.cfg.Label, err)
	}
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err == nil {
		if err = setPassCred(c); err == nil {
			err = s.shareNotify(dir, path)
		}
		if err != nil {
			c.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("proxy %s: notify socket: %w", s.cfg.Label, err)
	}
	s.mu.Lock()
	s.notifyDir, s.notifyPath, s.notifyConn = dir, path, c
	s.mu.Unlock()
	return nil
}

// shareNotify gives the socket node mode 0600 and, for a backend of
// another user, that user and group, and lets that group traverse the
// directory (0710). The directory is 0700 until then, so no one else can
// reach the node meanwhile; nothing here follows a path another user can
// change.
func (s *Server) shareNotify(dir, path string) error {
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	u := s.cfg.BackendUser
	if u == nil || os.Geteuid() != 0 {
		return nil
	}
	if err := os.Chown(path, int(u.UID), int(u.GID)); err != nil {
		return err
	}
	if err := os.Chown(dir, -1, int(u.GID)); err != nil {
		return err
	}
	return os.Chmod(dir, 0o710)
}

// readNotify reads sd_notify datagrams. From the backend, READY=1 makes it
// ready and STOPPING=1 not ready; other datagrams are refused. Passed fds
// (FDSTORE, BARRIER) are closed once the sender was judged.
func (s *Server) readNotify() {
	defer s.wg.Done()
	buf := make([]byte, 4096)
	oob := make([]byte, 1024)
	for {
		n, oobn, _, _, err := s.notifyConn.ReadMsgUnix(buf, oob)
		snd, hasCred, fds := notifyControl(oob[:oobn])
		if err != nil {
			closeFDs(fds)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ok := s.fromBackend(snd, hasCred)
		closeFDs(fds)
		if !ok {
			s.logRefused(snd, hasCred)
			continue
		}
		s.notifyLines(string(buf[:n]))
	}
}

func (s *Server) notifyLines(msg string) {
	for _, line := range strings.Split(msg, "\n") {
		switch line {
		case "READY=1":
			s.notified()
		case "STOPPING=1":
			s.mu.Lock()
			s.setReadyLocked(false)
			s.dropSpareLocked()
			s.mu.Unlock()
		}
	}
}

// fromBackend reports whether the sender is the backend's main process or
// one of its descendants. With no main process known it first waits for a
// Backend.Start in progress: a backend may send READY=1 before Start has
// returned.
func (s *Server) fromBackend(snd sender, hasCred bool) bool {
	if !hasCred || snd.pid <= 0 {
		return false
	}
	main := s.be.MainPID()
	if main == 0 {
		s.beMu.Lock()
		//lint:ignore SA2001 taking beMu waits for a Backend.Start in progress; nothing is done under it
		s.beMu.Unlock()
		main = s.be.MainPID()
	}
	if main <= 0 {
		return false
	}
	return int(snd.pid) == main || descendantOf(int(snd.pid), main)
}

// descendantOf reports whether main is on pid's parent chain.
func descendantOf(pid, main int) bool {
	for i := 0; i < maxAncestors && pid > 1; i++ {
		ppid, ok := parentPID(pid)
		if !ok {
			return false
		}
		if ppid == main {
			return true
		}
		pid = ppid
	}
	return false
}

func (s *Server) logRefused(snd sender, hasCred bool) {
	r := &s.refused
	r.n++
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < notifyLogEvery {
		return
	}
	fields := []zap.Field{zap.Int("main_pid", s.be.MainPID()), zap.Int("refused", r.n)}
	if hasCred {
		fields = append(fields, zap.Int32("sender_pid", snd.pid), zap.Uint32("sender_uid", snd.uid))
	} else {
		fields = append(fields, zap.String("sender", "unknown (no credentials)"))
	}
	s.log.Warn("notify datagram refused: the sender is not the backend process or one of its descendants", fields...)
	r.last, r.n = now, 0
}
