// Package handover is the state a sockd hands the next image of itself
// across execve(2) when it upgrades in place (sockd upgrade): which
// inherited descriptor is which listening socket and the control socket,
// the processes it supervises (its children still: the pid does not
// change), and what the jobs remember (throttle times, counters). It is a
// document in a memfd whose number the new image finds in
// $SOCKD_HANDOVER_FD: a header line, "sockd-handover VERSION FROM\n",
// then State in encoding/gob (JSON took 60 ms to decode for 10,000
// sockets, gob 8 ms; docs/upgrade.md describes the fields).
//
// The format is versioned: a reader refuses a document whose version is
// newer than the one it knows, from the header alone, and says so; fields
// are only ever added (gob ignores those a reader does not know and
// leaves zero those the writer did not have), so a newer reader reads an
// older document.
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
const Version = 1

// EnvFD names the environment variable that holds the document's fd.
const EnvFD = "SOCKD_HANDOVER_FD"

// State is the whole document.
type State struct {
	Version int    `json:"version"`
	From    string `json:"from"`    // the version of the sockd that wrote it
	Written int64  `json:"written"` // when, unix nanoseconds
	// Asked is when the upgrade was asked for and Check how long the new
	// binary's check took (the new image logs the upgrade's phases).
	Asked int64         `json:"asked"`
	Check time.Duration `json:"check"`
	// Control is the control socket's fd and path (nil: none).
	Control *Control `json:"control,omitempty"`
	Sockets []Socket `json:"sockets"`
	Jobs    []Job    `json:"jobs"`
	// Outputs are the read ends of children's output pipes sockd reads.
	Outputs []Output `json:"outputs,omitempty"`
	// ExtraFiles are the job files sockd bootstrap added.
	ExtraFiles []string `json:"extra_files,omitempty"`
}

// Output is the read end of a child's stdout or stderr pipe.
type Output struct {
	Fd     int    `json:"fd"`
	Label  string `json:"label"`
	Stream string `json:"stream"` // stdout or stderr
	Pid    int    `json:"pid"`
}

// Control is the inherited control socket.
type Control struct {
	Fd   int    `json:"fd"`
	Path string `json:"path"`
	Dev  uint64 `json:"dev"` // the socket node, so that only that node is ever removed
	Ino  uint64 `json:"ino"`
}

// Socket is one inherited socket of one job, as the listener opened it.
type Socket struct {
	Label     string   `json:"label"`
	ID        string   `json:"id"` // the endpoint's identity (job.Endpoint.ID): a reload keeps the socket when it still matches
	Fd        int      `json:"fd"`
	Network   string   `json:"network"`
	Addr      string   `json:"addr"`
	Listening bool     `json:"listening"`
	Options   []Option `json:"options,omitempty"`
	Created   *Node    `json:"created,omitempty"` // the node its bind made, removed when it closes
	Links     []Node   `json:"links,omitempty"`   // SockdOptions.Symlinks made
}

// Option is a socket option as the kernel reported it.
type Option struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Set   string `json:"set,omitempty"`
}

// Node is a filesystem node sockd created, by path and inode.
type Node struct {
	Path   string `json:"path"`
	Type   uint32 `json:"type"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	DirDev uint64 `json:"dir_dev"`
	DirIno uint64 `json:"dir_ino"`
}

// Job is what one job remembers.
type Job struct {
	Label string `json:"label"`
	// Main is its main process (handoff, inetd wait, KeepAlive, proxy
	// backend), nil for none.
	Main *Proc `json:"main,omitempty"`
	// Children are the per-connection children of an inetd nowait job.
	Children []Proc `json:"children,omitempty"`
	// LastStartAgo is how long before the document was written the main
	// process last started (the throttle's reference); 0: never.
	LastStartAgo time.Duration `json:"last_start_ago,omitempty"`
	Ran          bool          `json:"ran"` // started at least once: RunAtLoad is not run again
	Stats        Stats         `json:"stats"`
	// Conns are a proxy job's connections in flight on the relay.
	Conns []ProxyConn `json:"conns,omitempty"`
}

// ProxyConn is a proxied connection in flight: both sockets, the pipe of
// each direction with the bytes it holds (read from one side, not yet
// written to the other), and how far each direction got.
type ProxyConn struct {
	ClientFd     int           `json:"client_fd"`
	BackendFd    int           `json:"backend_fd"`
	UpPipe       [2]int        `json:"up_pipe"` // client -> backend: read end, write end
	DownPipe     [2]int        `json:"down_pipe"`
	UpBuffered   uint64        `json:"up_buffered"`
	DownBuffered uint64        `json:"down_buffered"`
	Up           uint64        `json:"up"` // bytes written to the backend so far
	Down         uint64        `json:"down"`
	UpEOF        bool          `json:"up_eof,omitempty"`  // the client's EOF was read
	UpDone       bool          `json:"up_done,omitempty"` // and passed on
	DownEOF      bool          `json:"down_eof,omitempty"`
	DownDone     bool          `json:"down_done,omitempty"`
	Idle         time.Duration `json:"idle,omitempty"` // the idle timeout
	Peer         string        `json:"peer"`
	Local        string        `json:"local"`
	Age          time.Duration `json:"age"`
}

// Fds are the connection's descriptors.
func (c ProxyConn) Fds() []int {
	return []int{c.ClientFd, c.BackendFd, c.UpPipe[0], c.UpPipe[1], c.DownPipe[0], c.DownPipe[1]}
}

// Proc is one running process.
type Proc struct {
	Pid        int           `json:"pid"`
	StartTicks uint64        `json:"start_ticks"` // /proc/PID/stat's starttime: the same process, not a reused pid
	Age        time.Duration `json:"age"`         // how long it had run when the document was written
	Stopping   bool          `json:"stopping,omitempty"`
	ByControl  bool          `json:"by_control,omitempty"`
	Source     string        `json:"source,omitempty"` // a per-connection child's client address (per-source limits)
}

// Stats are a job's counters (those of sockd list and the metrics).
type Stats struct {
	Accepted    uint64   `json:"accepted"`
	Refused     uint64   `json:"refused"`
	RefusedBy   []uint64 `json:"refused_by"` // by reason, in the supervisor's order of reasons
	Spawned     uint64   `json:"spawned"`
	SpawnFailed uint64   `json:"spawn_failed"`
	Exits       uint64   `json:"exits"`
	ExitKinds   []uint64 `json:"exit_kinds"` // by kind, in the supervisor's order
	Deferred    uint64   `json:"deferred"`
	Throttled   uint64   `json:"throttled"`
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
	w := bufio.NewWriterSize(f, 256<<10)
	fmt.Fprintf(w, "%s %d %s\n", magic, Version, strings.ReplaceAll(st.From, " ", "_"))
	if err := gob.NewEncoder(w).Encode(st); err != nil {
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
