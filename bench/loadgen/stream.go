package loadgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// udpConn is one worker's connected UDP socket.
type udpConn struct {
	cfg *Config
	c   net.Conn
	seq uint64
	buf []byte
	req []byte
}

func (u *udpConn) close() {
	if u.c != nil {
		u.c.Close()
		u.c = nil
	}
}

// request sends Request with a sequence number appended (so a late reply to
// an earlier, timed-out request is not taken for this one) and waits for the
// identical datagram back.
func (u *udpConn) request(ctx context.Context) error {
	deadline := time.Now().Add(u.cfg.Timeout)
	if u.c == nil {
		c, err := dial(ctx, u.cfg, deadline)
		if err != nil {
			return err
		}
		u.c = c
	}
	u.seq++
	u.req = append(u.req[:0], bytes.TrimRight(u.cfg.Request, "\n")...)
	u.req = append(u.req, ' ')
	u.req = strconv.AppendUint(u.req, u.seq, 10)
	u.req = append(u.req, '\n')
	if err := u.c.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := u.c.Write(u.req); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	for {
		n, err := u.c.Read(u.buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if bytes.Equal(u.buf[:n], u.req) {
			return nil
		}
		if n < len(u.req) && bytes.HasPrefix(u.req, u.buf[:n]) {
			return fmt.Errorf("%w: datagram of %d bytes, want %d", ErrShortRead, n, len(u.req))
		}
		// A stale reply to an earlier request: keep waiting.
	}
}

// Bulk protocol, spoken by the Bulk workload and ServeSink: the client sends
// frames of a 4-byte big-endian length followed by that many bytes; a frame
// of length 0 ends the stream, and the sink answers with the 8-byte
// big-endian count of payload bytes it received, then closes once the client
// has closed. The acknowledgement does not rely on half-close, so it also
// works through proxies that tear down on the first EOF.
const frameHeader = 4

func bulkWorker(ctx context.Context, cfg *Config, s *schedule, t *tally) {
	deadline := s.deadline
	hard := time.Time{}
	if !deadline.IsZero() {
		hard = deadline.Add(cfg.Timeout)
	}
	frame := make([]byte, frameHeader+cfg.ChunkSize)
	for i := frameHeader; i < len(frame); i++ {
		frame[i] = byte(i)
	}
	n, err := bulkConn(ctx, cfg, deadline, hard, frame)
	if err != nil {
		if ctx.Err() == nil {
			t.fail(err)
		}
		return
	}
	t.bytes += n
	t.ok++
}

func bulkConn(ctx context.Context, cfg *Config, deadline, hard time.Time, frame []byte) (int64, error) {
	dialDeadline := time.Now().Add(cfg.Timeout)
	c, err := dial(ctx, cfg, dialDeadline)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if !hard.IsZero() {
		if err := c.SetDeadline(hard); err != nil {
			return 0, err
		}
	}
	var sent int64
	chunk := int64(len(frame) - frameHeader)
	binary.BigEndian.PutUint32(frame, uint32(chunk))
	for {
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			break
		}
		if cfg.Bytes > 0 && sent >= cfg.Bytes {
			break
		}
		f := frame
		if cfg.Bytes > 0 && cfg.Bytes-sent < chunk {
			part := cfg.Bytes - sent
			binary.BigEndian.PutUint32(f, uint32(part))
			f = f[:frameHeader+part]
		}
		if _, err := c.Write(f); err != nil {
			return 0, fmt.Errorf("write after %d bytes: %w", sent, err)
		}
		sent += int64(len(f) - frameHeader)
	}
	if hard.IsZero() {
		if err := c.SetDeadline(time.Now().Add(cfg.Timeout)); err != nil {
			return 0, err
		}
	}
	if _, err := c.Write(make([]byte, frameHeader)); err != nil {
		return 0, fmt.Errorf("write end frame: %w", err)
	}
	var ack [8]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("%w: no byte-count acknowledgement from the sink: %v", ErrShortRead, err)
		}
		return 0, fmt.Errorf("read acknowledgement: %w", err)
	}
	if got := int64(binary.BigEndian.Uint64(ack[:])); got != sent {
		return 0, fmt.Errorf("%w: sink received %d of %d bytes", ErrShortRead, got, sent)
	}
	return sent, nil
}

// ServeSink accepts connections on l and speaks the sink side of the Bulk
// protocol on each, until l is closed. It returns the Accept error that
// stopped it.
func ServeSink(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go sinkConn(c)
	}
}

func sinkConn(c net.Conn) {
	defer c.Close()
	var hdr [frameHeader]byte
	var total int64
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint32(hdr[:]))
		if n == 0 {
			break
		}
		m, err := io.CopyN(io.Discard, c, n)
		total += m
		if err != nil {
			return
		}
	}
	var ack [8]byte
	binary.BigEndian.PutUint64(ack[:], uint64(total))
	if _, err := c.Write(ack[:]); err != nil {
		return
	}
	// Wait for the client to close first so the sink does not reset it.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, c)
}
