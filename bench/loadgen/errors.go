package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// ErrorKind classifies a failed request.
type ErrorKind string

const (
	Refused   ErrorKind = "refused"    // ECONNREFUSED (nothing listening, ICMP unreachable)
	Reset     ErrorKind = "reset"      // ECONNRESET, EPIPE, ECONNABORTED
	Timeout   ErrorKind = "timeout"    // the request timeout expired
	ShortRead ErrorKind = "short_read" // EOF before the expected reply
	Other     ErrorKind = "other"
)

// ErrorKinds lists the kinds in table order.
var ErrorKinds = []ErrorKind{Refused, Reset, Timeout, ShortRead, Other}

// Classify returns the kind of a request error.
func Classify(err error) ErrorKind {
	var ne net.Error
	switch {
	case errors.Is(err, ErrShortRead), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ShortRead
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED):
		return Reset
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT), errors.As(err, &ne) && ne.Timeout():
		return Timeout
	}
	return Other
}

// ErrorCounts counts failed requests by kind.
type ErrorCounts struct {
	Refused   int64 `json:"refused"`
	Reset     int64 `json:"reset"`
	Timeout   int64 `json:"timeout"`
	ShortRead int64 `json:"short_read"`
	Other     int64 `json:"other"`
}

func (e *ErrorCounts) add(k ErrorKind) {
	switch k {
	case Refused:
		e.Refused++
	case Reset:
		e.Reset++
	case Timeout:
		e.Timeout++
	case ShortRead:
		e.ShortRead++
	default:
		e.Other++
	}
}

func (e *ErrorCounts) merge(o ErrorCounts) {
	e.Refused += o.Refused
	e.Reset += o.Reset
	e.Timeout += o.Timeout
	e.ShortRead += o.ShortRead
	e.Other += o.Other
}

// Get returns the count of one kind.
func (e ErrorCounts) Get(k ErrorKind) int64 {
	switch k {
	case Refused:
		return e.Refused
	case Reset:
		return e.Reset
	case Timeout:
		return e.Timeout
	case ShortRead:
		return e.ShortRead
	}
	return e.Other
}

// Total is the number of failed requests.
func (e ErrorCounts) Total() int64 {
	return e.Refused + e.Reset + e.Timeout + e.ShortRead + e.Other
}

// CheckLoopback refuses targets that are not on this host's loopback: the
// host part must be a literal loopback address (127.0.0.0/8, ::1) or
// "localhost"; Unix socket paths are local by construction.
func CheckLoopback(network, addr string) error {
	switch network {
	case "unix", "unixpacket":
		if addr == "" {
			return errors.New("loadgen: empty Unix socket path")
		}
		return nil
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return fmt.Errorf("loadgen: unsupported network %q", network)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("loadgen: target %q: %w", addr, err)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("loadgen: target %q: no port", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("loadgen: target %q: host must be a loopback address literal or localhost", addr)
	}
	if !ip.Unmap().IsLoopback() {
		return fmt.Errorf("loadgen: target %q is not a loopback address; only 127.0.0.0/8 and ::1 are allowed", addr)
	}
	return nil
}
