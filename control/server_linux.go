//go:build linux

package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Handler answers an authorised request from peer. It runs on the
// connection's goroutine, never on the daemon's event loop.
type Handler func(ctx context.Context, peer Peer, req Request) Response

// Server serves one control socket.
type Server struct {
	path    string
	ln      *net.UnixListener
	owner   int // the uid sockd runs as
	handler Handler
	log     *zap.Logger
	dev     uint64 // the socket node, removed at Close only if still ours
	ino     uint64
	// Requests served at once: the privileged (root and sockd's own user)
	// and everyone else have slots of their own, so that other users
	// holding connections open cannot keep root out.
	privileged, others chan struct{}
	wg                 sync.WaitGroup
}

// Slots of each kind of peer; a peer without a free slot is answered
// "busy" at once.
const (
	maxPrivileged = 16
	maxOthers     = 8
)

// requestTimeout bounds reading a request: a client writes it at once.
// answerTimeout bounds writing the answer.
const (
	requestTimeout = 2 * time.Second
	answerTimeout  = 30 * time.Second
)

// Listen creates the control socket at path. Its directory is created
// (0755) when missing and must belong to sockd's user and be closed to
// others. A dead socket left there is replaced; a live one (another sockd)
// is an error. Root's socket is open to every local user (mode 0666:
// requests are authorised by the peer's credentials, Authorize); a user's
// is the user's alone (0600).
func Listen(path string, h Handler, log *zap.Logger) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	owner := os.Geteuid()
	if err := prepareDir(filepath.Dir(path), owner); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := clearDead(path); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // Close removes it only if it is still ours
	mode := os.FileMode(0o600)
	if owner == 0 {
		mode = 0o666
	}
	// The directory is sockd's own and closed to others: nobody can swap
	// the node between bind and chmod.
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return &Server{path: path, ln: ln, owner: owner, handler: h, log: log, dev: st.Dev, ino: st.Ino,
		privileged: make(chan struct{}, maxPrivileged), others: make(chan struct{}, maxOthers)}, nil
}

// Adopt serves the control socket fd, inherited from the sockd image
// that upgraded into this one (package handover): the same socket, so a
// client that connected during the upgrade is answered. dev and ino name
// its node at path (removed at Close only if still that node).
func Adopt(fd int, path string, dev, ino uint64, h Handler, log *zap.Logger) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "control")
	fl, err := net.FileListener(f)
	f.Close() // FileListener holds a duplicate
	if err != nil {
		return nil, fmt.Errorf("control socket %s: inherited fd %d: %w", path, fd, err)
	}
	ln, ok := fl.(*net.UnixListener)
	if !ok {
		fl.Close()
		return nil, fmt.Errorf("control socket %s: inherited fd %d is not a Unix socket", path, fd)
	}
	ln.SetUnlinkOnClose(false)
	return &Server{path: path, ln: ln, owner: os.Geteuid(), handler: h, log: log, dev: dev, ino: ino,
		privileged: make(chan struct{}, maxPrivileged), others: make(chan struct{}, maxOthers)}, nil
}

// Handover is the control socket as the next sockd image inherits it: a
// duplicate of its fd (not close-on-exec) and its node. The caller closes
// the fd if the exec does not happen.
func (s *Server) Handover() (fd int, path string, dev, ino uint64, err error) {
	raw, err := s.ln.SyscallConn()
	if err != nil {
		return -1, "", 0, 0, err
	}
	cerr := raw.Control(func(orig uintptr) { fd, err = unix.Dup(int(orig)) })
	if cerr != nil {
		return -1, "", 0, 0, cerr
	}
	return fd, s.path, s.dev, s.ino, err
}

// prepareDir makes sure dir exists, belongs to uid and only uid (or root)
// can change it.
func prepareDir(dir string, uid int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if int(st.Uid) != uid && st.Uid != 0 {
		return fmt.Errorf("directory %s belongs to uid %d, not to sockd's user (uid %d)", dir, st.Uid, uid)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("directory %s is writable by group or others (mode %o): others could replace the control socket", dir, st.Mode&0o777)
	}
	return nil
}

// ErrInUse is Listen's error when another process serves the control
// socket: another sockd runs.
var ErrInUse = errors.New("another sockd serves this control socket; stop it, or give this one --control PATH")

// clearDead removes a socket at path that no process serves; anything else
// there is an error.
func clearDead(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("something other than a socket is in the way; left untouched")
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return ErrInUse
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot tell whether the socket there is in use: %w", err)
	}
	return os.Remove(path)
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers requests until ctx ends or Close is called.
func (s *Server) Serve(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			// EMFILE and the like: wait instead of spinning.
			s.log.Warn("control socket: accept", zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		s.dispatch(ctx, c)
	}
}

// dispatch serves c on a goroutine of its own when its kind of peer has a
// free slot, and answers "busy" otherwise; it never blocks the accept loop.
func (s *Server) dispatch(ctx context.Context, c *net.UnixConn) {
	peer, err := peerOf(c)
	if err != nil {
		s.log.Warn("control socket: peer credentials", zap.Error(err))
		c.Close()
		return
	}
	slots := s.others
	if peer.Uid == 0 || peer.Uid == s.owner {
		slots = s.privileged
	}
	select {
	case slots <- struct{}{}:
	default:
		_ = c.SetDeadline(time.Now().Add(time.Second))
		s.answer(c, Errorf(Failed, "sockd is busy with other control requests: try again"))
		c.Close()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-slots }()
		s.serveConn(ctx, c, peer)
	}()
}

// serveConn answers the one request of a connection.
func (s *Server) serveConn(ctx context.Context, c *net.UnixConn, peer Peer) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(requestTimeout))
	var req Request
	dec := json.NewDecoder(bufio.NewReader(&limitedReader{c, 1 << 20}))
	if err := dec.Decode(&req); err != nil {
		s.answer(c, Errorf(BadRequest, "malformed request: %v", err))
		return
	}
	if err := Authorize(peer, s.owner, req); err != nil {
		st := NotPermitted
		if !known[req.Cmd] {
			st = BadRequest
		}
		s.log.Warn("control request refused", zap.String("cmd", req.Cmd), zap.Strings("labels", req.Labels),
			zap.Int("uid", peer.Uid), zap.Int("pid", peer.Pid), zap.String("why", err.Error()))
		s.answer(c, Errorf(st, "%v", err))
		return
	}
	// A long reload or bootstrap may take longer than the read deadline.
	_ = c.SetDeadline(time.Time{})
	resp := s.handler(ctx, peer, req)
	_ = c.SetWriteDeadline(time.Now().Add(answerTimeout))
	s.answer(c, resp)
}

// answer writes resp, a job at a time, giving up the processor every few
// jobs (runtime.Gosched): the event loop, which needs one to accept a
// connection, never waits long behind a list of many jobs.
func (s *Server) answer(c net.Conn, resp Response) {
	if err := encodeResponse(c, &resp, runtime.Gosched); err != nil {
		s.log.Debug("control socket: write answer", zap.Error(err))
	}
}

// peerOf returns the kernel's credentials of the connection's peer.
func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if gerr != nil {
		return Peer{}, gerr
	}
	return Peer{Pid: int(cred.Pid), Uid: int(cred.Uid), Gid: int(cred.Gid)}, nil
}

// Close stops accepting, waits for the requests in hand and removes the
// socket node if it is still the one Listen made.
func (s *Server) Close() error {
	err := s.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	s.wg.Wait()
	var st unix.Stat_t
	if unix.Lstat(s.path, &st) == nil && st.Dev == s.dev && st.Ino == s.ino {
		if rerr := os.Remove(s.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}
