//go:build linux

// Package journaltest is a stand-in for journald in tests: it listens on
// DIR/socket (the native protocol: datagrams, and entries passed as a
// memfd with SCM_RIGHTS) and DIR/stdout (streams: the header, then one
// entry per line), and keeps what it receives, decoded. Point sockd at it
// with SOCKD_JOURNAL_DIR=DIR.
package journaltest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/journal"
)

// Entry is one entry received: its fields in order, and how it came.
type Entry struct {
	Fields    []journal.Field
	Transport string // "journal" (native), "journal-fd" (memfd), "stdout"
}

// Get is the first value of a field ("" if none).
func (e Entry) Get(name string) string {
	for _, f := range e.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// Has reports whether the entry has the field.
func (e Entry) Has(name string) bool {
	for _, f := range e.Fields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// Journal is the stand-in.
type Journal struct {
	Dir string
	t   testing.TB

	native *net.UnixConn
	stdout *net.UnixListener

	mu      sync.Mutex
	entries []Entry
	errs    []string
	wg      sync.WaitGroup
}

// Start listens in a new temporary directory (world-accessible, for a
// daemon run as another user); it stops when the test ends.
func Start(t testing.TB) *Journal {
	t.Helper()
	dir, err := os.MkdirTemp("", "sockd-journal-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	j := &Journal{Dir: dir, t: t}
	j.native, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: journal.SocketPath(dir), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	_ = j.native.SetReadBuffer(8 << 20)
	j.stdout, err = net.ListenUnix("unix", &net.UnixAddr{Name: journal.StdoutPath(dir), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(journal.SocketPath(dir), 0o666)
	_ = os.Chmod(journal.StdoutPath(dir), 0o666)
	j.wg.Add(2)
	go j.readNative()
	go j.acceptStreams()
	t.Cleanup(j.Close)
	return j
}

// Close stops listening and removes the directory.
func (j *Journal) Close() {
	j.native.Close()
	j.stdout.Close()
	j.wg.Wait()
	os.RemoveAll(j.Dir)
}

func (j *Journal) add(e Entry) {
	j.mu.Lock()
	j.entries = append(j.entries, e)
	j.mu.Unlock()
}

func (j *Journal) fail(format string, args ...any) {
	j.mu.Lock()
	j.errs = append(j.errs, fmt.Sprintf(format, args...))
	j.mu.Unlock()
}

func (j *Journal) readNative() {
	defer j.wg.Done()
	buf := make([]byte, 16<<20) // over any datagram sockd's socket can send
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, flags, _, err := j.native.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		if flags&unix.MSG_TRUNC != 0 {
			j.fail("a datagram over %d bytes", len(buf))
			continue
		}
		data, transport := buf[:n], "journal"
		if oobn > 0 {
			fd, err := passedFd(oob[:oobn])
			if err != nil {
				j.fail("entry with ancillary data: %v", err)
				continue
			}
			// From the start, as journald maps it: the sender's offset
			// is at the end.
			f := os.NewFile(uintptr(fd), "entry")
			var st unix.Stat_t
			_ = unix.Fstat(fd, &st)
			data, err = io.ReadAll(io.NewSectionReader(f, 0, st.Size))
			seals, _ := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
			f.Close()
			if err != nil {
				j.fail("entry in a passed fd: %v", err)
				continue
			}
			if n != 0 {
				j.fail("entry in a passed fd came with %d bytes of payload", n)
			}
			if seals&unix.F_SEAL_WRITE == 0 {
				j.fail("entry in a passed fd that is not sealed (seals %#x)", seals)
			}
			transport = "journal-fd"
		}
		fields, err := journal.Decode(data)
		if err == nil && len(fields) == 0 {
			err = errors.New("empty entry")
		}
		if err != nil {
			if len(data) > 200 {
				data = data[:200]
			}
			j.fail("undecodable entry %q...: %v", data, err)
			continue
		}
		j.add(Entry{Fields: fields, Transport: transport})
	}
}

func passedFd(oob []byte) (int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1, err
	}
	var fds []int
	for _, m := range msgs {
		f, err := unix.ParseUnixRights(&m)
		if err != nil {
			return -1, err
		}
		fds = append(fds, f...)
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, unix.EINVAL
	}
	return fds[0], nil
}

func (j *Journal) acceptStreams() {
	defer j.wg.Done()
	for {
		c, err := j.stdout.AcceptUnix()
		if err != nil {
			return
		}
		j.wg.Add(1)
		go j.readStream(c)
	}
}

// readStream reads a stream as journald does: the header (identifier,
// unit id, priority, level prefix, forward to syslog, kmsg, console), then
// one entry per line.
func (j *Journal) readStream(c *net.UnixConn) {
	defer j.wg.Done()
	defer c.Close()
	go func() { // a stream outlives the test only by a leaked child
		<-time.After(5 * time.Minute)
		c.Close()
	}()
	r := bufio.NewReader(c)
	var header [7]string
	for i := range header {
		line, err := r.ReadString('\n')
		if err != nil {
			if i > 0 || line != "" {
				j.fail("stream header cut after %d lines: %q", i, line)
			}
			return
		}
		header[i] = strings.TrimSuffix(line, "\n")
	}
	prio, err := strconv.Atoi(header[2])
	if err != nil {
		j.fail("stream header priority %q", header[2])
		return
	}
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			line = strings.TrimSuffix(line, "\n")
			p := prio & 7
			if header[3] == "1" && len(line) >= 3 && line[0] == '<' && line[2] == '>' && line[1] >= '0' && line[1] <= '7' {
				p, line = int(line[1]-'0'), line[3:]
			}
			fields := []journal.Field{{Name: "MESSAGE", Value: line}, {Name: "PRIORITY", Value: strconv.Itoa(p)},
				{Name: "SYSLOG_IDENTIFIER", Value: header[0]}, {Name: "_STREAM_HEADER", Value: strings.Join(header[:], "\n")}}
			if prio&^7 != 0 {
				fields = append(fields, journal.Field{Name: "SYSLOG_FACILITY", Value: strconv.Itoa(prio >> 3)})
			}
			j.add(Entry{Fields: fields, Transport: "stdout"})
		}
		if err != nil {
			return
		}
	}
}

// Entries is what was received so far. A protocol error fails the test.
func (j *Journal) Entries() []Entry {
	j.t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range j.errs {
		j.t.Errorf("journal stand-in: %s", e)
	}
	j.errs = nil
	return append([]Entry(nil), j.entries...)
}

// Wait waits up to timeout for an entry that ok accepts and returns it
// (ok reports false for all: the zero Entry and false).
func (j *Journal) Wait(timeout time.Duration, ok func(Entry) bool) (Entry, bool) {
	j.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range j.Entries() {
			if ok(e) {
				return e, true
			}
		}
		if time.Now().After(deadline) {
			return Entry{}, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Path is a file in the stand-in's directory.
func (j *Journal) Path(name string) string { return filepath.Join(j.Dir, name) }
