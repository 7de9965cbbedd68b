package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// MaxMessage bounds one request or answer (a list of 10,000 jobs is a few
// megabytes).
const MaxMessage = 64 << 20

// UnreachableError is a control socket no daemon answers at.
type UnreachableError struct {
	Path string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("no sockd answers at %s (is `sockd serve` running? --control chooses another socket): %v", e.Path, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Do sends req to the sockd at path and returns its answer. A daemon that
// cannot be reached is an *UnreachableError. timeout bounds the whole
// exchange (0: one minute; a bootstrap or reload of many jobs takes time).
func Do(path string, req Request, timeout time.Duration) (Response, error) {
	if timeout <= 0 {
		timeout = time.Minute
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if errors.Is(err, syscall.EACCES) {
		return Errorf(NotPermitted, "the control socket %s is not open to you (uid %d): ask as its sockd's user or root", path, os.Geteuid()), nil
	}
	if err != nil {
		return Response{}, &UnreachableError{Path: path, Err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Response{}, fmt.Errorf("control socket %s: send: %w", path, err)
	}
	// The server closes after its answer: read it whole, in large reads.
	data, err := io.ReadAll(&limitedReader{c, MaxMessage})
	if err != nil {
		return Response{}, fmt.Errorf("control socket %s: read the answer: %w", path, err)
	}
	var resp Response
	if err := json.Unmarshal(data, &resp); err != nil {
		return Response{}, fmt.Errorf("control socket %s: read the answer: %w", path, err)
	}
	return resp, nil
}

// limitedReader fails past n bytes instead of reading on.
type limitedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

var errTooLarge = errors.New("message larger than the control protocol allows")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
