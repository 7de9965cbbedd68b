//go:build linux

package supervisor

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/builtin"
)

// acceptedPair returns a client connection and the fdConn sockd would
// serve it on, accepted from a loopback listener with acceptConn.
func acceptedPair(t *testing.T) (net.Conn, *fdConn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cfd int
	var peer unix.Sockaddr
	var aerr error
	if err := rc.Control(func(fd uintptr) { cfd, peer, aerr = acceptConn(int(fd)) }); err != nil || aerr != nil {
		t.Fatal(err, aerr)
	}
	conn, err := newFdConn(cfd, peer)
	if err != nil {
		unix.Close(cfd)
		t.Fatal(err)
	}
	return client, conn
}

// TestFdConnServesBuiltin: an internal service runs on the accepted fd
// itself: echo answers, the addresses are the connection's, and the idle
// limit (a read deadline in Go's poller) ends a silent connection.
func TestFdConnServesBuiltin(t *testing.T) {
	client, conn := acceptedPair(t)
	if got, want := conn.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want %s", got, want)
	}
	if got, want := conn.LocalAddr().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr %s, want %s", got, want)
	}
	done := make(chan error, 1)
	go func() { done <- builtin.Stream(context.Background(), builtin.Echo, conn, 200*time.Millisecond) }()
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("echo ended with %v, want nil (idle limit)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the idle limit did not end the connection")
	}
	if n, err := client.Read(buf); err != io.EOF {
		t.Errorf("after the service ended the client read %d bytes, %v; want EOF", n, err)
	}
}

// TestFdConnCancel: cancelling the service's context closes the connection
// and ends a blocked read.
func TestFdConnCancel(t *testing.T) {
	client, conn := acceptedPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- builtin.Stream(ctx, builtin.Discard, conn, 0) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Errorf("discard ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not end the service")
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read %v after cancel, want EOF", err)
	}
}
