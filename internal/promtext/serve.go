package promtext

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// Path is the one path the endpoint serves.
const Path = "/metrics"

// ParseAddr checks an endpoint address: "unix:PATH", or a TCP address
// whose host is a loopback IP literal (127.0.0.0/8, ::1) with a port.
// Nothing wider is accepted: an empty host, a wildcard, a name or any
// other address is an error that says so.
func ParseAddr(addr string) (network, address string, err error) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		if p == "" {
			return "", "", fmt.Errorf("%q: unix: needs a socket path (unix:/run/sockd/metrics.sock)", addr)
		}
		return "unix", p, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("%q: not HOST:PORT or unix:PATH (try 127.0.0.1:9477)", addr)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() || ip.Zone() != "" {
		return "", "", fmt.Errorf("%q: the metrics endpoint listens on a loopback address only (127.0.0.1:%s or [::1]:%s) or unix:PATH; "+
			"to scrape from elsewhere, put a proxy that authenticates in front of it", addr, port, port)
	}
	return "tcp", net.JoinHostPort(ip.Unmap().String(), port), nil
}

// Listen opens the endpoint at addr (see ParseAddr). A Unix socket is
// created mode 0666, like the control socket a local user may read
// through; a stale socket file nobody serves is replaced, one somebody
// serves is an error.
func Listen(addr string) (net.Listener, error) {
	network, address, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if fi, err := os.Lstat(address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.DialTimeout("unix", address, time.Second); err == nil {
				c.Close()
				return nil, fmt.Errorf("%s: another process serves this socket", address)
			}
			_ = os.Remove(address)
		}
	}
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o666); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

// Source prepares one scrape: it gathers the figures (an error answers
// 503) and returns what writes them.
type Source func() (render func(w *Writer), err error)

// maxConcurrent scrapes are served at once; more wait in the backlog.
const maxConcurrent = 4

// Timeouts of one connection: to send the request, and the whole answer.
const (
	readTimeout  = 10 * time.Second
	writeTimeout = 60 * time.Second
)

// maxHead bounds the request line and headers.
const maxHead = 8 << 10

// Serve answers GET and HEAD of /metrics on ln with src until ln is
// closed, one request per connection (Connection: close), at most
// maxConcurrent at a time, and waits for the answers in progress before
// it returns.
func Serve(ln net.Listener, src Source) error {
	sem := make(chan struct{}, maxConcurrent)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		sem <- struct{}{}
		c, err := ln.Accept()
		if err != nil {
			<-sem
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(50 * time.Millisecond) // EMFILE and the like: no busy loop
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer c.Close()
			serveConn(c, src)
		}()
	}
}

func serveConn(c net.Conn, src Source) {
	_ = c.SetReadDeadline(time.Now().Add(readTimeout))
	method, target, ok := readHead(bufio.NewReaderSize(io.LimitReader(c, maxHead), 4096))
	_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
	switch {
	case !ok:
		reply(c, "400 Bad Request", "", "bad request\n")
		return
	case method != "GET" && method != "HEAD":
		reply(c, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", "only GET and HEAD\n")
		return
	case target != Path && !strings.HasPrefix(target, Path+"?"):
		reply(c, "404 Not Found", "", "sockd serves "+Path+" only\n")
		return
	}
	render, err := src()
	if err != nil {
		reply(c, "503 Service Unavailable", "", err.Error()+"\n")
		return
	}
	w := NewWriter(c)
	w.buf = append(w.buf[:0], "HTTP/1.1 200 OK\r\nContent-Type: "+ContentType+"\r\nConnection: close\r\n\r\n"...)
	w.flushLine(w.buf)
	if method == "GET" {
		render(w)
	}
	_ = w.Flush()
}

// readHead reads the request line and the headers (ignored), and returns
// the method and the target.
func readHead(r *bufio.Reader) (method, target string, ok bool) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", "", false
	}
	f := strings.Fields(line)
	if len(f) != 3 || !strings.HasPrefix(f[2], "HTTP/1.") {
		return "", "", false
	}
	for {
		h, err := r.ReadString('\n')
		if err != nil {
			return "", "", false
		}
		if strings.TrimRight(h, "\r\n") == "" {
			return f[0], f[1], true
		}
	}
}

func reply(c net.Conn, status, headers, body string) {
	_, _ = io.WriteString(c, "HTTP/1.1 "+status+"\r\nContent-Type: text/plain; charset=utf-8\r\n"+headers+
		fmt.Sprintf("Content-Length: %d\r\nConnection: close\r\n\r\n", len(body))+body)
}
