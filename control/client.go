package control

import (
	"bytes"
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
	hint := "--control chooses another socket"
	if e.Path != SystemSocket {
		hint += "; the system daemon's is --control " + SystemSocket
	}
	return fmt.Sprintf("no sockd answers at %s (is `sockd serve` running? %s): %v", e.Path, hint, e.Err)
}

// SystemSocket is the control socket of the system (root) sockd.
const SystemSocket = "/run/sockd/control.sock"

func (e *UnreachableError) Unwrap() error { return e.Err }

// ErrNoAnswer is Do's error when the daemon closed the connection without
// an answer: after an upgrade request, the exec did that.
var ErrNoAnswer = errors.New("the daemon closed the connection without an answer")

// Do sends req to the sockd at path and returns its answer. A daemon that
// cannot be reached is an *UnreachableError. timeout bounds the whole
// exchange (0: one minute; a bootstrap or reload of many jobs takes time).
func Do(path string, req Request, timeout time.Duration) (Response, error) {
	data, resp, err := exchange(path, req, timeout)
	if err != nil || data == nil {
		return resp, err
	}
	if len(data) == 0 {
		return Response{}, ErrNoAnswer
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return Response{}, fmt.Errorf("control socket %s: read the answer: %w", path, err)
	}
	return resp, nil
}

// DoRaw is Do for a caller that prints the answer as it came (--json): it
// returns the answer's bytes undecoded, and a Response with only its
// Status and Error, which the daemon writes first, so that a list of
// 10,000 jobs is not decoded. raw is nil when the answer was made here
// (the socket is not open to the caller).
func DoRaw(path string, req Request, timeout time.Duration) (raw []byte, resp Response, err error) {
	data, resp, err := exchange(path, req, timeout)
	if err != nil || data == nil {
		return nil, resp, err
	}
	resp, ok := answerHead(data)
	if !ok {
		// Not in the daemon's order: decode what is needed of it all.
		var head struct {
			Status Status `json:"status"`
			Error  string `json:"error"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return nil, Response{}, fmt.Errorf("control socket %s: read the answer: %w", path, err)
		}
		resp = Response{Status: head.Status, Error: head.Error}
	}
	return data, resp, nil
}

// answerHead decodes the status and error that open an answer; ok is
// false when the answer does not open with its status.
func answerHead(data []byte) (resp Response, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return Response{}, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return Response{}, false
		}
		switch t {
		case "status":
			if dec.Decode(&resp.Status) != nil {
				return Response{}, false
			}
			ok = true
		case "error":
			if !ok || dec.Decode(&resp.Error) != nil {
				return Response{}, false
			}
		default:
			return resp, ok
		}
	}
	return resp, ok
}

// exchange sends req and reads the answer whole. data is nil when the
// answer was made here: resp is it.
func exchange(path string, req Request, timeout time.Duration) (data []byte, resp Response, err error) {
	if timeout <= 0 {
		timeout = time.Minute
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if errors.Is(err, syscall.EACCES) {
		return nil, Errorf(NotPermitted, "the control socket %s is not open to you (uid %d): ask as its sockd's user or root", path, os.Geteuid()), nil
	}
	if err != nil {
		return nil, Response{}, &UnreachableError{Path: path, Err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, Response{}, fmt.Errorf("control socket %s: send: %w", path, err)
	}
	// The server closes after its answer: read it whole, in large reads.
	data, err = io.ReadAll(&limitedReader{c, MaxMessage})
	if err != nil {
		return nil, Response{}, fmt.Errorf("control socket %s: read the answer: %w", path, err)
	}
	return data, Response{}, nil
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
