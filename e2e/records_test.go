package e2e

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// records returns the connection records (record=end or refused) of one
// job in d's log.
func (d *daemon) records(label, kind string) []map[string]any {
	var out []map[string]any
	for _, l := range d.logs() {
		if l["job"] == label && l["record"] == kind {
			out = append(out, l)
		}
	}
	return out
}

// waitRecords waits until the job has n records of kind, and returns them.
func (d *daemon) waitRecords(t *testing.T, label, kind string, n int) []map[string]any {
	t.Helper()
	var recs []map[string]any
	eventually(20*time.Second, func() bool {
		recs = d.records(label, kind)
		return len(recs) >= n
	})
	return recs
}

// TestConnectionRecords: with SockdLogConnections, each of 100 connections
// to an inetd job has exactly one record, at its end, with the client's
// port, the child's pid and exit status; a job without the key writes
// none; a refusal by Deny names the limit.
func TestConnectionRecords(t *testing.T) {
	dir := t.TempDir()
	on, off, denied := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")
	j := nowaitJob("test.rec", on, []string{"/bin/sh", "-c", "echo r; exit 7"})
	j["SockdLogConnections"] = true
	j["SockdLimits"] = map[string]any{"MaxChildren": 200}
	writeJob(t, dir, "on", j)
	writeJob(t, dir, "off", nowaitJob("test.norec", off, []string{"/bin/echo", "n"}))
	dj := nowaitJob("test.denied", denied, []string{"/bin/echo", "d"})
	dj["SockdLogConnections"] = true
	dj["SockdLimits"] = map[string]any{"Deny": []any{"127.0.0.1/32"}}
	writeJob(t, dir, "denied", dj)
	d := startSockd(t, dir)

	const n = 100
	ports := map[string]bool{}
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", on), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ports[strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)] = true
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, _ := io.ReadAll(c); string(b) != "r\n" {
			t.Fatalf("connection %d: %q", i, b)
		}
		c.Close()
	}
	for i := 0; i < 20; i++ {
		if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", off), ""); got != "n\n" {
			t.Fatalf("the job without records: %q", got)
		}
	}
	recs := d.waitRecords(t, "test.rec", "end", n)
	if len(recs) != n {
		t.Fatalf("%d records for %d connections", len(recs), n)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		peer, _ := r["peer"].(string)
		host, port, err := net.SplitHostPort(peer)
		if err != nil || host != "127.0.0.1" || !ports[port] || seen[port] {
			t.Fatalf("record with peer %q: not one of the clients, or twice: %v", peer, r)
		}
		seen[port] = true
		if r["exit_code"] != float64(7) || r["msg"] != "connection" || r["pid"] == nil || r["duration"] == nil {
			t.Errorf("record: %v, want exit_code 7, a pid and a duration", r)
		}
		if r["local"] != fmt.Sprintf("127.0.0.1:%d", on) {
			t.Errorf("record local %v, want 127.0.0.1:%d", r["local"], on)
		}
	}
	if recs := d.records("test.norec", "end"); len(recs) != 0 {
		t.Errorf("a job without SockdLogConnections wrote %d records", len(recs))
	}

	c, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", denied), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port)
	_, _ = io.ReadAll(c)
	c.Close()
	refused := d.waitRecords(t, "test.denied", "refused", 1)
	if len(refused) != 1 || refused[0]["limit"] != "SockdLimits.Deny" || refused[0]["peer"] != "127.0.0.1:"+port {
		t.Errorf("refusal records: %v, want one naming SockdLimits.Deny and peer 127.0.0.1:%s", refused, port)
	}
}

// TestConnectionRecordsFlag: --log-connections turns records on for every
// job (an internal echo service here), and a proxy job's records carry
// the bytes each way and why the connection closed.
func TestConnectionRecordsFlag(t *testing.T) {
	needProgram(t, "socat")
	dir := t.TempDir()
	echo, pub, priv := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")
	writeJob(t, dir, "echo", map[string]any{"Label": "test.echo", "SockdInternal": "echo",
		"Sockets": map[string]any{"Listeners": tcpSocket(echo)}})
	writeJob(t, dir, "proxy", map[string]any{
		"Label": "test.pxrec",
		"ProgramArguments": []string{"socat",
			fmt.Sprintf("TCP4-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", priv), "SYSTEM:'read line; echo px'"},
		"ExitTimeOut": 2,
		"Sockets":     map[string]any{"Listeners": tcpSocket(pub)},
		"SockdProxy":  map[string]any{"Backend": fmt.Sprintf("127.0.0.1:%d", priv)},
	})
	d := startSockd(t, dir, "--log-connections")
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", echo), "hello\n"); !strings.HasPrefix(got, "hello") {
		t.Fatalf("echo: %q", got)
	}
	if got := dialRead(t, "tcp4", fmt.Sprintf("127.0.0.1:%d", pub), "ping\n"); got != "px\n" {
		t.Fatalf("proxy: %q", got)
	}
	if recs := d.waitRecords(t, "test.echo", "end", 1); len(recs) != 1 || recs[0]["service"] != "echo" || recs[0]["close_reason"] == nil {
		t.Errorf("echo records: %v", recs)
	}
	recs := d.waitRecords(t, "test.pxrec", "end", 1)
	if len(recs) != 1 || recs[0]["bytes_to_client"] != float64(3) || recs[0]["close_reason"] != "closed" {
		t.Errorf("proxy records: %v, want one with bytes_to_client 3 and close_reason closed", recs)
	}
}
