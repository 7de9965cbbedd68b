//go:build linux

// Package journal speaks systemd-journald's two client protocols
// (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/): the native datagram
// protocol, entries of named fields (what sd_journal_send(3) writes), and
// the stdout stream protocol, a stream socket whose lines become entries
// (what systemd hands a service as its stdout and stderr). It also decodes
// native entries, for tests that stand in for journald.
//
// github.com/coreos/go-systemd/v22/journal writes the same datagrams, but
// its socket path is fixed (a test cannot point it at a stand-in), it takes
// the fields as a map (an unordered, allocating copy per entry) and prints
// to stderr on a bad field name; it has no stream protocol.
package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DefaultDir holds journald's sockets: socket (native) and stdout
// (streams).
const DefaultDir = "/run/systemd/journal"

// DirEnv names a directory that replaces DefaultDir. It is for tests: a
// stand-in for journald (a listener on DIR/socket, DIR/stdout), or a
// journald of a namespace (/run/systemd/journal.NAMESPACE).
const DirEnv = "SOCKD_JOURNAL_DIR"

// Dir is journald's socket directory: $SOCKD_JOURNAL_DIR, else DefaultDir.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return DefaultDir
}

// SocketPath is the native protocol's socket in dir.
func SocketPath(dir string) string { return filepath.Join(dir, "socket") }

// StdoutPath is the stream protocol's socket in dir.
func StdoutPath(dir string) string { return filepath.Join(dir, "stdout") }

// IsJournalStream reports whether fd is the journal stream that
// $JOURNAL_STREAM (device:inode, set by systemd) names: then the process's
// output reaches the journal and may be upgraded to the native protocol.
func IsJournalStream(fd int) bool {
	v := os.Getenv("JOURNAL_STREAM")
	dev, ino, ok := strings.Cut(v, ":")
	if !ok {
		return false
	}
	d, err1 := strconv.ParseUint(dev, 10, 64)
	i, err2 := strconv.ParseUint(ino, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	return st.Dev == d && st.Ino == i
}

// Priorities (syslog levels) of the PRIORITY field.
const (
	PriCrit    = 2
	PriErr     = 3
	PriWarning = 4
	PriInfo    = 6
	PriDebug   = 7

	// FacilityDaemon is LOG_DAEMON, the facility systemd gives a
	// service's streams (LOG_DAEMON|LOG_INFO).
	FacilityDaemon = 3 << 3
)

// Writer sends native entries to journald's socket. Safe for concurrent
// use: each entry is one datagram.
type Writer struct {
	fd   int
	addr *unix.SockaddrUnix
	path string
}

// Open makes a writer to the native socket at path. It fails when no
// journald listens there.
func Open(path string) (*Writer, error) {
	// Reachable now? An unconnected socket sends each entry (a journald
	// restarted later is reached at the same path); a throwaway connect
	// says whether anyone listens.
	probe, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("journal: socket: %w", err)
	}
	addr := &unix.SockaddrUnix{Name: path}
	err = unix.Connect(probe, addr)
	unix.Close(probe)
	if err != nil {
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("journal: socket: %w", err)
	}
	// As sd-journal: a large send buffer, so that bursts queue instead of
	// blocking (the kernel caps it at wmem_max).
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<20)
	return &Writer{fd: fd, addr: addr, path: path}, nil
}

// Path is the socket the writer sends to.
func (w *Writer) Path() string { return w.path }

// Close closes the writer's socket.
func (w *Writer) Close() error { return unix.Close(w.fd) }

// Send sends one entry, fields encoded by AppendField. An entry too large
// for a datagram goes as a sealed memfd passed with SCM_RIGHTS, as
// sd-journal does.
func (w *Writer) Send(entry []byte) error {
	err := retryEINTR(func() error { return unix.Sendmsg(w.fd, entry, nil, w.addr, 0) })
	if err == unix.EMSGSIZE || err == unix.ENOBUFS {
		err = w.sendFd(entry)
	}
	if err != nil {
		return fmt.Errorf("journal: send to %s: %w", w.path, err)
	}
	return nil
}

func (w *Writer) sendFd(entry []byte) error {
	mfd, err := unix.MemfdCreate("sockd-journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return err
	}
	defer unix.Close(mfd)
	for b := entry; len(b) > 0; {
		n, err := unix.Write(mfd, b)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		b = b[n:]
	}
	// journald takes a memfd only sealed against change.
	if _, err := unix.FcntlInt(uintptr(mfd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return err
	}
	return retryEINTR(func() error { return unix.Sendmsg(w.fd, nil, unix.UnixRights(mfd), w.addr, 0) })
}

func retryEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// AppendField appends one field of an entry to buf: NAME=value and a
// newline, or, for a value with a newline in it, NAME, a newline, the
// value's length as 64-bit little endian, the value and a newline. name
// must be valid (see FieldName).
func AppendField(buf []byte, name, value string) []byte {
	if strings.IndexByte(value, '\n') < 0 {
		buf = append(buf, name...)
		buf = append(buf, '=')
		buf = append(buf, value...)
		return append(buf, '\n')
	}
	buf = append(buf, name...)
	buf = append(buf, '\n')
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(value)))
	buf = append(buf, value...)
	return append(buf, '\n')
}

// maxNameLen is journald's longest field name.
const maxNameLen = 64

// FieldName makes a valid journal field name of key: upper case, every
// character outside [A-Z0-9_] as '_', no leading '_' (those are journald's
// trusted fields), "F" before a leading digit, at most 64 characters;
// "FIELD" for a key with nothing left.
func FieldName(key string) string {
	b := make([]byte, 0, len(key)+1)
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			c = '_'
		}
		if c == '_' && len(b) == 0 {
			continue
		}
		b = append(b, c)
	}
	if len(b) == 0 {
		return "FIELD"
	}
	if b[0] >= '0' && b[0] <= '9' {
		b = append([]byte{'F'}, b...)
	}
	if len(b) > maxNameLen {
		b = b[:maxNameLen]
	}
	return string(b)
}

// ValidName reports whether name is a field name journald accepts from a
// client.
func ValidName(name string) bool {
	if name == "" || len(name) > maxNameLen || name[0] == '_' || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Field is one field of a decoded entry.
type Field struct{ Name, Value string }

// Decode parses a native entry (both field forms). The fields are in
// their order; a name may repeat.
func Decode(data []byte) ([]Field, error) {
	var out []Field
	for len(data) > 0 {
		nl := indexByte(data, '\n')
		if nl < 0 {
			return out, errors.New("journal: entry does not end with a newline")
		}
		line := data[:nl]
		if eq := indexByte(line, '='); eq >= 0 {
			name := string(line[:eq])
			if !ValidName(name) {
				return out, fmt.Errorf("journal: invalid field name %q", name)
			}
			out = append(out, Field{name, string(line[eq+1:])})
			data = data[nl+1:]
			continue
		}
		name := string(line)
		if !ValidName(name) {
			return out, fmt.Errorf("journal: invalid field name %q", name)
		}
		data = data[nl+1:]
		if len(data) < 8 {
			return out, fmt.Errorf("journal: field %s: short length", name)
		}
		n := binary.LittleEndian.Uint64(data)
		data = data[8:]
		if n >= uint64(len(data)) || data[n] != '\n' {
			return out, fmt.Errorf("journal: field %s: length %d does not end at a newline", name, n)
		}
		out = append(out, Field{name, string(data[:n])})
		data = data[n+1:]
	}
	return out, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// OpenStream connects a stream to journald's stdout socket at path, for a
// child's stdout and stderr: each line the child writes becomes an entry
// with SYSLOG_IDENTIFIER=identifier and priority (a "<N>" prefix on a line
// sets that line's), as systemd does for a service with
// StandardOutput=journal. The socket is close-on-exec and blocking; its
// reading side is shut, as systemd does. It never waits: a journald whose
// backlog is full fails the connect (EAGAIN).
func OpenStream(path, identifier string, priority int) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("journal: socket: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("journal: %s %s: %w", what, path, err)
	}
	if err := retryEINTR(func() error { return unix.Connect(fd, &unix.SockaddrUnix{Name: path}) }); err != nil {
		return fail("connect", err)
	}
	_ = unix.Shutdown(fd, unix.SHUT_RD)
	// identifier, unit id (none: sockd is no unit manager), priority,
	// level prefix, forward to syslog, to kmsg, to the console.
	id := strings.Map(func(r rune) rune {
		if r == '\n' {
			return ' '
		}
		return r
	}, identifier)
	header := id + "\n\n" + strconv.Itoa(priority) + "\n1\n0\n0\n0\n"
	n, err := unix.Write(fd, []byte(header))
	if err == nil && n != len(header) {
		err = unix.EAGAIN
	}
	if err != nil {
		return fail("write header to", err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return fail("set blocking", err)
	}
	return fd, nil
}

// StreamEnv is the JOURNAL_STREAM=device:inode variable that tells a child
// whose stdout or stderr is the stream fd that it writes to the journal.
func StreamEnv(fd int) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", err
	}
	return "JOURNAL_STREAM=" + strconv.FormatUint(st.Dev, 10) + ":" + strconv.FormatUint(st.Ino, 10), nil
}
