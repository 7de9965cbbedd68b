package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics GETs /metrics from a sockd serve --metrics (dial: how to
// reach it) and parses the answer with Prometheus' text parser.
func scrapeMetrics(t *testing.T, dial func(ctx context.Context) (net.Conn, error)) map[string]*dto.MetricFamily {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
	}}
	resp, err := c.Get("http://sockd/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %s %v\n%s", resp.Status, err, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, body)
	}
	return fams
}

func tcpDial(addr string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "tcp", addr) }
}

// metricValue is the value of the sample of family name with exactly the
// labels given (name, value pairs): a counter's or gauge's value, a
// histogram's count; -1 when there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		if len(m.Label)*2 != len(labels) {
			continue
		}
		match := true
		for i, l := range m.Label {
			if l.GetName() != labels[2*i] || l.GetValue() != labels[2*i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsScrape: after N connections served, M refused by
// SockdLimits.Deny (clients bound to 127.0.0.2) and K spawn failures (a
// program that does not exist), a scrape of /metrics shows exactly N, M
// and K for those jobs, and the histograms hold N observations.
func TestMetricsScrape(t *testing.T) {
	const N, M, K = 20, 7, 5
	dir := t.TempDir()
	okPort, failPort, mPort := freePort(t, "tcp"), freePort(t, "tcp"), freePort(t, "tcp")
	okJob := nowaitJob("test.metrics-ok", okPort, []string{"/bin/true"})
	okJob["SockdLimits"] = map[string]any{"Deny": []string{"127.0.0.2"}}
	writeJob(t, dir, "ok", okJob)
	writeJob(t, dir, "fail", nowaitJob("test.metrics-fail", failPort, []string{filepath.Join(dir, "no-such-program")}))
	maddr := fmt.Sprintf("127.0.0.1:%d", mPort)
	startSockd(t, dir, "--metrics", maddr)

	connect := func(src string, port int) {
		t.Helper()
		dl := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := dl.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("dial from %s: %v", src, err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c) // served or refused, the connection ends
	}
	for i := 0; i < N; i++ {
		connect("127.0.0.1", okPort)
	}
	for i := 0; i < M; i++ {
		connect("127.0.0.2", okPort)
	}
	for i := 0; i < K; i++ {
		connect("127.0.0.1", failPort)
	}

	okL := []string{"job", "test.metrics-ok"}
	failL := []string{"job", "test.metrics-fail"}
	var fams map[string]*dto.MetricFamily
	// Exits and failures are counted when sockd reaps the children.
	if !eventually(10*time.Second, func() bool {
		fams = scrapeMetrics(t, tcpDial(maddr))
		return metricValue(fams, "sockd_job_exits_total", append(okL, "kind", "success")...) == N &&
			metricValue(fams, "sockd_job_spawn_failures_total", failL...) == K
	}) {
		t.Errorf("exits and failures did not settle")
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"sockd_job_connections_total", okL, N + M},
		{"sockd_job_refusals_total", append(okL, "reason", "deny"), M},
		{"sockd_job_spawns_total", okL, N},
		{"sockd_job_spawn_failures_total", okL, 0},
		{"sockd_job_processes", okL, 0},
		{"sockd_job_exits_total", append(okL, "kind", "success"), N},
		{"sockd_job_exits_total", append(okL, "kind", "nonzero"), 0},
		{"sockd_job_spawn_latency_seconds", okL, N},
		{"sockd_job_run_seconds", okL, N},
		{"sockd_job_connections_total", failL, K},
		{"sockd_job_spawns_total", failL, 0},
		{"sockd_job_spawn_failures_total", failL, K},
		{"sockd_job_refusals_total", append(failL, "reason", "deny"), -1}, // sets no Deny
		{"sockd_jobs", nil, 2},
		{"sockd_reloads_total", []string{"result", "success"}, 0},
	} {
		if got := metricValue(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"sockd_open_fds", "sockd_resident_memory_bytes", "sockd_goroutines"} {
		if v := metricValue(fams, name); v <= 0 {
			t.Errorf("%s = %v", name, v)
		}
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "sockd_") || (f.GetType() == dto.MetricType_COUNTER) != strings.HasSuffix(name, "_total") || f.GetHelp() == "" {
			t.Errorf("family %s (%v, help %q): names begin sockd_, counters and only they end _total, each has HELP", name, f.GetType(), f.GetHelp())
		}
	}
}

// TestMetricsUnixAndReloads: --metrics unix:PATH serves the same
// endpoint on a Unix socket; a reload and a failed one are counted.
func TestMetricsUnixAndReloads(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t, "tcp")
	writeJob(t, dir, "ok", nowaitJob("test.metrics-unix", port, []string{"/bin/true"}))
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	d := startSockd(t, dir, "--metrics", "unix:"+sock)
	dial := func(ctx context.Context) (net.Conn, error) { return (&net.Dialer{}).DialContext(ctx, "unix", sock) }
	if v := metricValue(scrapeMetrics(t, dial), "sockd_jobs"); v != 1 {
		t.Errorf("sockd_jobs = %v", v)
	}
	if code, out, _ := d.ctl(t, nil, "reload"); code != 0 {
		t.Fatalf("reload: %d %s", code, out)
	}
	writeJob(t, dir, "bad", map[string]any{"Label": "test.metrics-bad"}) // no program: an error
	if code, _, _ := d.ctl(t, nil, "reload"); code != 1 {
		t.Fatalf("reload with a bad file: exit %d, want 1", code)
	}
	fams := scrapeMetrics(t, dial)
	if ok, bad := metricValue(fams, "sockd_reloads_total", "result", "success"), metricValue(fams, "sockd_reloads_total", "result", "failure"); ok != 1 || bad != 1 {
		t.Errorf("reloads: success %v, failure %v; want 1 and 1", ok, bad)
	}
	if err := d.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("unix", sock); err == nil {
		t.Error("the metrics socket still answers after sockd exited")
	}
}

// TestMetricsRefusesWiderAddress: an address other than loopback or
// unix:PATH is a usage error, before anything is bound.
func TestMetricsRefusesWiderAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9477", ":9477", "[::]:9477", "localhost:9477"} {
		cmd := exec.Command(sockdBin, "serve", "--jobs", t.TempDir(), "--control", "", "--metrics", addr)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.Sys().(syscall.WaitStatus).ExitStatus() != 2 || !strings.Contains(string(out), "loopback") {
			t.Errorf("--metrics %s: %v\n%s", addr, err, out)
		}
	}
}
