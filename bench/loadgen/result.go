package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Result summarises one run. Latencies are in microseconds.
type Result struct {
	Label       string   `json:"label,omitempty"`
	Workload    Workload `json:"workload"`
	Network     string   `json:"network"`
	Addr        string   `json:"addr"`
	Concurrency int      `json:"concurrency"`
	// Rate is the open-loop arrival rate (requests/s); 0 for closed loop.
	Rate       float64 `json:"rate,omitempty"`
	OpenLoop   bool    `json:"open_loop"`
	ElapsedSec float64 `json:"elapsed_s"`
	// Requests counts successful requests (Bulk: completed connections).
	Requests int64       `json:"requests"`
	Errors   ErrorCounts `json:"errors"`
	// ErrorExamples holds the first message seen for each kind.
	ErrorExamples map[ErrorKind]string `json:"error_examples,omitempty"`
	// Missed counts open-loop requests that were due but not sent before
	// the hard stop (duration + timeout): the generator or server fell too
	// far behind. They are neither successes nor errors.
	Missed int64 `json:"missed,omitempty"`
	// Throughput is successful requests per second of elapsed time.
	Throughput float64 `json:"throughput_per_s"`
	// Bytes and MiBps: Bulk payload acknowledged by the sink.
	Bytes   int64   `json:"bytes,omitempty"`
	MiBps   float64 `json:"mib_per_s,omitempty"`
	Latency Latency `json:"latency_us"`

	hist *hdrhistogram.Histogram
}

// Latency is a histogram summary in microseconds. For open loop it is
// measured from the intended send time.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// Histogram returns the run's latency histogram (nanoseconds).
func (r *Result) Histogram() *hdrhistogram.Histogram { return r.hist }

// Summarize fills a Latency from a histogram in nanoseconds.
func Summarize(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	us := func(v int64) float64 { return float64(v) / float64(time.Microsecond) }
	return Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean() / float64(time.Microsecond),
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
	}
}

func (r *Result) finish() {
	r.Latency = Summarize(r.hist)
	if r.ElapsedSec > 0 {
		r.Throughput = float64(r.Requests) / r.ElapsedSec
		if r.Bytes > 0 {
			r.MiBps = float64(r.Bytes) / (1 << 20) / r.ElapsedSec
		}
	}
}

// WriteJSON writes results as an indented JSON array.
func WriteJSON(w io.Writer, rs []*Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rs); err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	return nil
}

// FormatDuration prints microseconds compactly: 87µs, 1.24ms, 2.1s.
func FormatDuration(us float64) string {
	switch {
	case us <= 0:
		return "-"
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 10_000:
		return fmt.Sprintf("%.2fms", us/1000)
	case us < 1_000_000:
		return fmt.Sprintf("%.1fms", us/1000)
	}
	return fmt.Sprintf("%.2fs", us/1e6)
}

// FormatErrors prints non-zero error counts as "refused=3 timeout=1", or "0".
func FormatErrors(e ErrorCounts) string {
	var parts []string
	for _, k := range ErrorKinds {
		if n := e.Get(k); n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, " ")
}

// WriteTable writes a human-readable table of results.
func WriteTable(w io.Writer, rs []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "label\tworkload\tC\trate/s\tok\treq/s\tMiB/s\tp50\tp90\tp99\tp99.9\tmax\terrors\tmissed\t")
	for _, r := range rs {
		rate := "closed"
		if r.OpenLoop {
			rate = fmt.Sprintf("%.0f", r.Rate)
		}
		mib := "-"
		if r.MiBps > 0 {
			mib = fmt.Sprintf("%.0f", r.MiBps)
		}
		l := r.Latency
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n",
			r.Label, r.Workload, r.Concurrency, rate, r.Requests, r.Throughput, mib,
			FormatDuration(l.P50), FormatDuration(l.P90), FormatDuration(l.P99),
			FormatDuration(l.P999), FormatDuration(l.Max), FormatErrors(r.Errors), r.Missed)
	}
	return tw.Flush()
}
