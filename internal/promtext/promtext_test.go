package promtext

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads an exposition with Prometheus' own text parser.
func parse(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, text)
	}
	return fams
}

func TestExposition(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	w.Family("x_total", Counter, "A counter.\nTwo lines, a \\.")
	w.Uint("x_total", 7, "job", `a"b\c`+"\nd")
	w.Uint("x_total", 0, "job", "plain", "reason", "deny")
	w.Family("g", Gauge, "A gauge.")
	w.Int("g", -3)
	w.Float("g", 0.25, "job", "f")
	bk := NewBuckets(0.001, 0.5, 2)
	w.Family("h_seconds", Histogram, "A histogram.")
	w.Histogram("h_seconds", bk, []uint64{1, 0, 2, 3}, 12.5, "job", "h")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	fams := parse(t, text)

	x := fams["x_total"]
	if x.GetType() != dto.MetricType_COUNTER || x.GetHelp() != "A counter.\nTwo lines, a \\." || len(x.Metric) != 2 {
		t.Fatalf("x_total: %v", x)
	}
	if l := x.Metric[0].Label[0]; l.GetName() != "job" || l.GetValue() != `a"b\c`+"\nd" || x.Metric[0].Counter.GetValue() != 7 {
		t.Errorf("escaped label: %v", x.Metric[0])
	}
	g := fams["g"]
	if g.GetType() != dto.MetricType_GAUGE || g.Metric[0].Gauge.GetValue() != -3 || g.Metric[1].Gauge.GetValue() != 0.25 {
		t.Errorf("g: %v", g)
	}
	h := fams["h_seconds"].Metric[0].Histogram
	if h.GetSampleCount() != 6 || h.GetSampleSum() != 12.5 || len(h.Bucket) != 4 {
		t.Fatalf("histogram: %v", h)
	}
	for i, want := range []uint64{1, 1, 3, 6} { // cumulative
		if h.Bucket[i].GetCumulativeCount() != want {
			t.Errorf("bucket %g: %d, want %d", h.Bucket[i].GetUpperBound(), h.Bucket[i].GetCumulativeCount(), want)
		}
	}
	if !strings.Contains(text, `h_seconds_bucket{job="h",le="+Inf"} 6`+"\n") || !strings.Contains(text, `le="0.001"`) {
		t.Errorf("bucket lines:\n%s", text)
	}
}

func TestParseAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:9477", "127.1.2.3:0", "[::1]:9477", "[::ffff:127.0.0.1]:1", "unix:/run/sockd/metrics.sock"} {
		if _, _, err := ParseAddr(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{":9477", "0.0.0.0:9477", "[::]:9477", "10.0.0.1:9477", "localhost:9477", "example.com:80", "127.0.0.1", "unix:", "[fe80::1%lo]:1"} {
		if _, _, err := ParseAddr(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestServe(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	for _, addr := range []string{"127.0.0.1:0", "unix:" + sock} {
		ln, err := Listen(addr)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- Serve(ln, func() (func(*Writer), error) {
				return func(w *Writer) {
					w.Family("up", Gauge, "Up.")
					w.Int("up", 1)
				}, nil
			})
		}()
		network, address := ln.Addr().Network(), ln.Addr().String()
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, address)
			},
		}}
		for _, tc := range []struct {
			method, path string
			code         int
		}{{"GET", "/metrics", 200}, {"GET", "/metrics?x=1", 200}, {"HEAD", "/metrics", 200}, {"GET", "/", 404}, {"POST", "/metrics", 405}} {
			req, _ := http.NewRequest(tc.method, "http://sockd"+tc.path, nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s %s: %v", addr, tc.method, tc.path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("%s %s %s: %d, want %d", addr, tc.method, tc.path, resp.StatusCode, tc.code)
			}
			if tc.code == 200 && tc.method == "GET" {
				if ct := resp.Header.Get("Content-Type"); ct != ContentType {
					t.Errorf("Content-Type %q", ct)
				}
				if f := parse(t, string(body)); f["up"].Metric[0].Gauge.GetValue() != 1 {
					t.Errorf("body %q", body)
				}
			}
		}
		// Garbage is answered 400.
		conn, err := net.Dial(network, address)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(conn, "NOT HTTP\r\n\r\n")
		line, _ := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if !strings.HasPrefix(line, "HTTP/1.1 400") {
			t.Errorf("garbage answered %q", line)
		}
		ln.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
