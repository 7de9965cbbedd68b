//go:build linux

package supervisor

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/internal/journal"
	"github.com/sockd/sockd/spawn"
)

// Children's output.
//
// A main process (handoff, socketless) or proxy backend whose job names no
// StandardOutPath or StandardErrorPath would otherwise write into sockd's
// own stderr: its lines would land unlabelled among sockd's, and break a
// JSON log. Instead each start gets a home for its fds 1 and 2:
//
//   - When sockd logs to the journal, a stream connected to journald's
//     stdout socket, as systemd gives a service: SYSLOG_IDENTIFIER is the
//     job's label, priority info (a "<N>" prefix on a line sets its own),
//     and JOURNAL_STREAM names it. The child holds the only copy; sockd
//     copies nothing.
//   - Otherwise, or when journald refuses the stream, a pipe per stream
//     that sockd reads: each line becomes a log record, the line as its
//     message, with the job, stream (stdout or stderr) and pid fields.
//
// A path the job names replaces its descriptor in the child, as before
// (one that cannot be opened leaves the child this one). inetd children
// are not concerned: their fds 0 to 2 are the connection or the socket.
//
// Each pipe is read by a goroutine of its own, started once the child
// exists and ended when every process holding the pipe has closed it (the
// child and whatever inherited it); the supervisor waits for them when it
// stops, and closes those a left-behind process still holds. The loop
// never reads or writes a pipe: a chatty child slows its own writes, never
// sockd's loop. Lines are cut at maxOutputLine bytes (the rest follows as
// records of their own).

// maxOutputLine is the longest line a record holds; a longer one is cut,
// the pieces but the last marked partial.
const maxOutputLine = 16 << 10

// outputWait is how long a stopping supervisor waits for left-behind
// processes to close their pipes before it closes them.
const outputWait = time.Second

// outputs gives starts their fds 1 and 2 and owns the pipe readers.
type outputs struct {
	log     *zap.Logger
	journal string // journald's stdout socket, "" when sockd does not log to the journal

	mu      sync.Mutex
	readers map[*os.File]outputReader // read ends being read
	stopped bool
	wg      sync.WaitGroup

	warnMu     sync.Mutex
	journalErr time.Time // of the last warning that a stream was refused
}

func newOutputs(log *zap.Logger, journalDir string) *outputs {
	o := &outputs{log: log, readers: map[*os.File]outputReader{}}
	if journalDir != "" {
		o.journal = journal.StdoutPath(journalDir)
	}
	return o
}

// startOutput is one start's output: what sockd closes or reads once the
// start is made.
type startOutput struct {
	o      *outputs
	label  string
	stream int         // journal stream, -1 for none
	w, r   [2]*os.File // pipes (write ends for the child), stdout and stderr
}

var streamNames = [2]string{"stdout", "stderr"}

// outputReader is whose output a pipe carries.
type outputReader struct {
	label, stream string
	pid           int
}

// prepare gives a start of the job label its output: fds 1 and 2 that are
// sockd's own (the job names no file) are replaced in the returned copy of
// fds; env gets JOURNAL_STREAM for a journal stream. Call started with the
// start's result. Loop goroutine (or the one that starts).
func (o *outputs) prepare(label string, fds []int, env []string) ([]int, []string, *startOutput) {
	if o == nil || len(fds) < 3 || fds[1] != 1 || fds[2] != 2 {
		return fds, env, nil
	}
	so := &startOutput{o: o, label: label, stream: -1}
	fds = append([]int(nil), fds...)
	if o.journal != "" {
		fd, err := journal.OpenStream(o.journal, label, journal.FacilityDaemon|journal.PriInfo)
		if err == nil {
			so.stream = fd
			fds[1], fds[2] = fd, fd
			if kv, err := journal.StreamEnv(fd); err == nil {
				env = append(append([]string(nil), env...), kv)
			}
			return fds, env, so
		}
		o.warnJournal(label, err)
	}
	for i := range 2 {
		r, w, err := outputPipe()
		if err != nil {
			so.closeAll()
			o.log.Warn("no pipe for a child's output: it goes to /dev/null for this start",
				zap.String("job", label), zap.Error(err))
			fds[1], fds[2] = fds[0], fds[0] // /dev/null (read-write) in every start concerned
			return fds, env, nil
		}
		so.r[i], so.w[i] = r, w
		fds[1+i] = int(w.Fd())
	}
	return fds, env, so
}

// warnJournal says, once a minute at most, that journald refused a
// stream: that start's output goes through a pipe instead.
func (o *outputs) warnJournal(label string, err error) {
	o.warnMu.Lock()
	now := time.Now()
	warn := now.Sub(o.journalErr) >= time.Minute
	if warn {
		o.journalErr = now
	}
	o.warnMu.Unlock()
	if warn {
		o.log.Warn("journald refused a stream for a child's output: sockd reads it and logs it instead",
			zap.String("job", label), zap.Error(err))
	}
}

// outputPipe makes a pipe, both ends close-on-exec; the read end is
// non-blocking (read through Go's poller, so that Close ends a read), the
// write end, the child's, blocking.
func outputPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(p[0]), "output"), os.NewFile(uintptr(p[1]), "output-w"), nil
}

// started ends the start's part: sockd's copies of what the child got are
// closed; when the process exists, its pipes are read.
func (so *startOutput) started(p *spawn.Process) {
	if so == nil {
		return
	}
	if so.stream >= 0 {
		unix.Close(so.stream)
		so.stream = -1
	}
	for i := range 2 {
		if so.w[i] != nil {
			so.w[i].Close()
			so.w[i] = nil
		}
	}
	if p == nil || so.r[0] == nil {
		so.closeAll()
		return
	}
	o := so.o
	o.mu.Lock()
	if o.stopped {
		o.mu.Unlock()
		so.closeAll()
		return
	}
	for i := range 2 {
		o.readLocked(so.r[i], outputReader{so.label, streamNames[i], p.Pid})
	}
	o.mu.Unlock()
}

// readLocked starts reading r; o.mu held.
func (o *outputs) readLocked(r *os.File, who outputReader) {
	o.readers[r] = who
	o.wg.Add(1)
	go o.read(r, o.log.With(zap.String("job", who.label), zap.String("stream", who.stream), zap.Int("pid", who.pid)))
}

func (so *startOutput) closeAll() {
	if so.stream >= 0 {
		unix.Close(so.stream)
		so.stream = -1
	}
	for i := range 2 {
		for _, f := range []**os.File{&so.r[i], &so.w[i]} {
			if *f != nil {
				(*f).Close()
				*f = nil
			}
		}
	}
}

// read logs each line of r until every writer has closed it (or stop
// closes it).
func (o *outputs) read(r *os.File, log *zap.Logger) {
	defer o.wg.Done()
	lr := lineReader{emit: func(line []byte, partial bool) {
		if partial {
			log.Info(string(line), zap.Bool("partial", true))
			return
		}
		log.Info(string(line))
	}}
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		lr.write(buf[:n])
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				log.Warn("reading a child's output", zap.Error(err))
			}
			break
		}
	}
	lr.flush()
	o.mu.Lock()
	if _, ok := o.readers[r]; ok {
		delete(o.readers, r)
		r.Close()
	}
	o.mu.Unlock()
}

// stop ends the readers: it waits up to outputWait for the processes still
// holding pipes to close them, then closes the pipes. Their lines so far
// are logged. Called once the loop has stopped.
func (o *outputs) stop() {
	if o == nil {
		return
	}
	done := make(chan struct{})
	go func() { o.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(outputWait):
	}
	o.mu.Lock()
	o.stopped = true
	for r := range o.readers {
		delete(o.readers, r)
		r.Close() // ends its Read
	}
	o.mu.Unlock()
	<-done
}

// lineReader cuts a byte stream into lines: without the newline (and a
// carriage return before it), at most maxOutputLine bytes each.
type lineReader struct {
	pend []byte // a line begun
	emit func(line []byte, partial bool)
}

func (lr *lineReader) write(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			lr.pend = append(lr.pend, b...)
			for len(lr.pend) >= maxOutputLine {
				lr.emit(lr.pend[:maxOutputLine], true)
				lr.pend = append(lr.pend[:0], lr.pend[maxOutputLine:]...)
			}
			return
		}
		line := b[:i]
		if len(lr.pend) > 0 {
			lr.pend = append(lr.pend, line...)
			line = lr.pend
		}
		for len(line) > maxOutputLine {
			lr.emit(line[:maxOutputLine], true)
			line = line[maxOutputLine:]
		}
		lr.emit(bytes.TrimSuffix(line, []byte{'\r'}), false)
		lr.pend = lr.pend[:0]
		b = b[i+1:]
	}
	if cap(lr.pend) > maxOutputLine && len(lr.pend) == 0 {
		lr.pend = nil
	}
}

// flush emits a last line without its newline.
func (lr *lineReader) flush() {
	if len(lr.pend) > 0 {
		lr.emit(bytes.TrimSuffix(lr.pend, []byte{'\r'}), false)
		lr.pend = nil
	}
}
