// Package handover is the state a sockd hands the next image of itself
// across execve(2) when it upgrades in place (sockd upgrade): which
// inherited descriptor is which listening socket and the control socket,
// the processes it supervises (its children still: the pid does not
// change), and what the jobs remember (throttle times, counters). It is a
// document in a memfd whose number the new image finds in
// $SOCKD_HANDOVER_FD: a header line, "sockd-handover VERSION FROM\n",
// then State in encoding/gob (JSON took 60 ms to decode for 10,000
// sockets, gob 8 ms), its sockets in a table of their own from format 2
// on (socktable.go: gob's reflection was most of an upgrade's time spent
// on the state); docs/upgrade.md describes the fields.
//
// The format is versioned: a reader refuses a document whose version is
// newer than the one it knows, from the header alone, and says so; gob
// fields are only ever added (gob ignores those a reader does not know
// and leaves zero those the writer did not have), and the table's layout
// changes only with the version, so a newer reader reads an older
// document.
package handover

import (
	"bufio"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Version is the format this build writes and the newest it reads.
// Format 2 writes the sockets as SocketTable (socktable.go) instead of
// Sockets; a format 1 document is read as ever.
const Version = 2

// EnvFD names the environment variable that holds the document's fd.
const EnvFD = "SOCKD_HANDOVER_FD"

// State is the whole document.
type State struct {
	Version int
	From    string // the version of the sockd that wrote it
	Written int64  // when, unix nanoseconds
	// Asked is when the upgrade was asked for and Check how long the new
	// binary's check took (the new image logs the upgrade's phases).
	Asked int64
	Check time.Duration
	// Control is the control socket's fd and path (nil: none).
	Control *Control
	// Sockets are the listening sockets: read from SocketTable (format 2)
	// or from this field as format 1 wrote it.
	Sockets []Socket
	// SocketTable is Sockets as Write writes them from format 2 on; Read
	// turns it back into Sockets and leaves it nil.
	SocketTable []byte
	Jobs        []Job
	// Outputs are the read ends of children's output pipes sockd reads.
	Outputs []Output
	// ExtraFiles are the job files sockd bootstrap added.
	ExtraFiles []string
}

// Output is the read end of a child's stdout or stderr pipe.
type Output struct {
	Fd     int
	Label  string
	Stream string // stdout or stderr
	Pid    int
}

// Control is the inherited control socket.
type Control struct {
	Fd   int
	Path string
	Dev  uint64 // the socket node, so that only that node is ever removed
	Ino  uint64
}

// Socket is one inherited socket of one job, as the listener opened it.
type Socket struct {
	Label     string
	ID        string // the endpoint's identity (job.Endpoint.ID): a reload keeps the socket when it still matches
	Fd        int
	Network   string
	Addr      string
	Listening bool
	Options   []Option
	Created   *Node  // the node its bind made, removed when it closes
	Links     []Node // SockdOptions.Symlinks made
}

// Option is a socket option as the kernel reported it.
type Option struct {
	Name  string
	Value string
	Set   string
}

// Node is a filesystem node sockd created, by path and inode.
type Node struct {
	Path   string
	Type   uint32
	Dev    uint64
	Ino    uint64
	DirDev uint64
	DirIno uint64
}

// Job is what one job remembers.
type Job struct {
	Label string
	// Main is its main process (handoff, inetd wait, KeepAlive, proxy
	// backend), nil for none.
	Main *Proc
	// Children are the per-connection children of an inetd nowait job.
	Children []Proc
	// LastStartAgo is how long before the document was written the main
	// process last started (the throttle's reference); 0: never.
	LastStartAgo time.Duration
	Ran          bool // started at least once: RunAtLoad is not run again
	Stats        Stats
	// ExitTimeOut is the job's, for a new image that stops its processes
	// without a definition of the job (0 from an image that did not write
	// it: the default applies).
	ExitTimeOut time.Duration
	// Conns are a proxy job's connections in flight on the relay.
	Conns []ProxyConn
}

// ProxyConn is a proxied connection in flight: both sockets, the pipe of
// each direction with the bytes it holds (read from one side, not yet
// written to the other), and how far each direction got.
type ProxyConn struct {
	ClientFd     int
	BackendFd    int
	UpPipe       [2]int // client -> backend: read end, write end
	DownPipe     [2]int
	UpBuffered   uint64
	DownBuffered uint64
	Up           uint64 // bytes written to the backend so far
	Down         uint64
	UpEOF        bool // the client's EOF was read
	UpDone       bool // and passed on
	DownEOF      bool
	DownDone     bool
	Idle         time.Duration // the idle timeout
	Peer         string
	Local        string
	Age          time.Duration
}

// Fds are the connection's descriptors.
func (c ProxyConn) Fds() []int {
	return []int{c.ClientFd, c.BackendFd, c.UpPipe[0], c.UpPipe[1], c.DownPipe[0], c.DownPipe[1]}
}

// Proc is one running process.
type Proc struct {
	// Pid is the process: still sockd's child, unreaped, so the pid
	// cannot have been reused.
	Pid       int
	Age       time.Duration // how long it had run when the document was written
	Stopping  bool
	ByControl bool
	Source    string // a per-connection child's client address (per-source limits)
	// Record is a per-connection child's connection record in the making
	// (a job with connection records): nil for none.
	Record *Record
}

// Record is what a connection record written at a child's end needs: its
// client (an inet address and port, or a Unix client's pid and uid) and
// the local address. It began Age ago, when its child started.
type Record struct {
	Peer    string // netip.AddrPort text; "" for a Unix client
	PeerPID int32
	PeerUID uint32
	HasCred bool
	Local   string
}

// Stats are a job's counters (those of sockd list and the metrics).
type Stats struct {
	Accepted    uint64
	Refused     uint64
	RefusedBy   []uint64 // by reason, in the supervisor's order of reasons
	Spawned     uint64
	SpawnFailed uint64
	Exits       uint64
	ExitKinds   []uint64 // by kind, in the supervisor's order
	Deferred    uint64
	Throttled   uint64
}

// Write writes st to a new memfd and returns it; the caller clears its
// close-on-exec flag before execve.
func Write(st *State) (*os.File, error) {
	st.Version = Version
	st.Written = time.Now().UnixNano()
	f, err := memfd("sockd-handover")
	if err != nil {
		return nil, fmt.Errorf("handover: memfd: %w", err)
	}
	doc := *st
	doc.Sockets, doc.SocketTable = nil, appendSockets(nil, st.Sockets)
	w := bufio.NewWriterSize(f, 256<<10)
	fmt.Fprintf(w, "%s %d %s\n", magic, Version, strings.ReplaceAll(st.From, " ", "_"))
	if err := gob.NewEncoder(w).Encode(&doc); err != nil {
		f.Close()
		return nil, fmt.Errorf("handover: %w", err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, fmt.Errorf("handover: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("handover: %w", err)
	}
	return f, nil
}

// ErrNone is Read's error when the environment names no document.
var ErrNone = errors.New("handover: no state")

// FromEnv reads the document $SOCKD_HANDOVER_FD names, closes its fd and
// unsets the variable (children must not see it).
func FromEnv() (*State, error) {
	v, ok := os.LookupEnv(EnvFD)
	if !ok {
		return nil, ErrNone
	}
	os.Unsetenv(EnvFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("handover: $%s=%q is not a descriptor", EnvFD, v)
	}
	f := os.NewFile(uintptr(fd), "sockd-handover")
	defer f.Close()
	return Read(f)
}

// magic opens the header line.
const magic = "sockd-handover"

// Read decodes a document and refuses one of a newer format.
func Read(r io.Reader) (*State, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	head, err := br.ReadString('\n')
	f := strings.Fields(head)
	if err != nil || len(f) != 3 || f[0] != magic {
		return nil, fmt.Errorf("handover: the state is not readable: no %q header", magic)
	}
	v, err := strconv.Atoi(f[1])
	if err != nil || v > Version || v < 1 {
		return nil, fmt.Errorf("handover: the state is in format %s, and this sockd reads formats 1 to %d: run a sockd at least as new as %s", f[1], Version, f[2])
	}
	var st State
	if err := gob.NewDecoder(br).Decode(&st); err != nil {
		return nil, fmt.Errorf("handover: the state is not readable: %w", err)
	}
	if st.SocketTable != nil {
		if st.Sockets, err = readSockets(st.SocketTable); err != nil {
			return nil, fmt.Errorf("handover: the state is not readable: %w", err)
		}
		st.SocketTable = nil
	}
	return &st, nil
}

// Pids are the pids of every process in st.
func (st *State) Pids() map[int]bool {
	m := map[int]bool{}
	for _, j := range st.Jobs {
		if j.Main != nil {
			m[j.Main.Pid] = true
		}
		for _, c := range j.Children {
			m[c.Pid] = true
		}
	}
	return m
}

// Fds are every descriptor st names.
func (st *State) Fds() []int {
	var fds []int
	if st.Control != nil {
		fds = append(fds, st.Control.Fd)
	}
	for _, s := range st.Sockets {
		fds = append(fds, s.Fd)
	}
	for _, o := range st.Outputs {
		fds = append(fds, o.Fd)
	}
	for _, j := range st.Jobs {
		for _, c := range j.Conns {
			fds = append(fds, c.Fds()...)
		}
	}
	return fds
}
