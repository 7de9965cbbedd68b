// Package promtext writes the Prometheus text exposition format (version
// 0.0.4) and serves it over a minimal HTTP/1.x endpoint: what sockd's
// --metrics needs and no more. It holds no metric state: the caller
// writes the figures it owns, family by family, at scrape time, so that
// counting costs nothing beyond the caller's own plain adds.
package promtext

import (
	"bufio"
	"io"
	"math"
	"strconv"
)

// ContentType is the media type of the text format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Metric types, as TYPE lines name them.
const (
	Counter   = "counter"
	Gauge     = "gauge"
	Histogram = "histogram"
)

// Writer writes one exposition. Each family starts with Family (its HELP
// and TYPE lines) and is followed by all of its samples: the format wants
// a family's samples in one group. The first write error sticks and is
// returned by Flush; later writes do nothing.
type Writer struct {
	w   *bufio.Writer
	buf []byte
	err error
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 64<<10), buf: make([]byte, 0, 512)}
}

// Family writes the HELP and TYPE lines of a metric family.
func (w *Writer) Family(name, typ, help string) {
	b := append(w.buf[:0], "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = appendHelp(b, help)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	b = append(b, '\n')
	w.flushLine(b)
}

// Uint writes one sample with an integer value. labels are name, value
// pairs.
func (w *Writer) Uint(name string, v uint64, labels ...string) {
	b := w.start(name, "", labels, "", "")
	b = strconv.AppendUint(b, v, 10)
	w.flushLine(append(b, '\n'))
}

// Int writes one sample with a signed integer value.
func (w *Writer) Int(name string, v int64, labels ...string) {
	b := w.start(name, "", labels, "", "")
	b = strconv.AppendInt(b, v, 10)
	w.flushLine(append(b, '\n'))
}

// Float writes one sample with a float value.
func (w *Writer) Float(name string, v float64, labels ...string) {
	b := w.start(name, "", labels, "", "")
	b = appendFloat(b, v)
	w.flushLine(append(b, '\n'))
}

// Buckets are the upper bounds of a histogram's buckets, with their le
// label values made once.
type Buckets struct {
	Bounds []float64
	les    []string
}

// NewBuckets makes Buckets of bounds, which must increase.
func NewBuckets(bounds ...float64) *Buckets {
	bk := &Buckets{Bounds: bounds}
	for _, v := range bounds {
		bk.les = append(bk.les, string(appendFloat(nil, v)))
	}
	bk.les = append(bk.les, "+Inf")
	return bk
}

// Histogram writes the samples of one histogram: the cumulative
// name_bucket series (one per upper bound, then +Inf), name_sum and
// name_count. counts are the per-bucket (not cumulative) counts, one per
// bound and one for the observations above the last bound.
func (w *Writer) Histogram(name string, bk *Buckets, counts []uint64, sum float64, labels ...string) {
	var cum uint64
	for i, le := range bk.les {
		if i < len(counts) {
			cum += counts[i]
		}
		b := w.start(name, "_bucket", labels, "le", le)
		b = strconv.AppendUint(b, cum, 10)
		w.flushLine(append(b, '\n'))
	}
	b := w.start(name, "_sum", labels, "", "")
	b = appendFloat(b, sum)
	w.flushLine(append(b, '\n'))
	b = w.start(name, "_count", labels, "", "")
	b = strconv.AppendUint(b, cum, 10)
	w.flushLine(append(b, '\n'))
}

// Flush writes what is buffered and returns the first error.
func (w *Writer) Flush() error {
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

// start begins a sample line: the name and its suffix, the labels (with
// one more pair, extraK and extraV, when extraK is not ""), and the space
// before the value.
func (w *Writer) start(name, suffix string, labels []string, extraK, extraV string) []byte {
	b := append(w.buf[:0], name...)
	b = append(b, suffix...)
	if len(labels) > 0 || extraK != "" {
		b = append(b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, labels[i], labels[i+1])
		}
		if extraK != "" {
			if len(labels) > 0 {
				b = append(b, ',')
			}
			b = appendLabel(b, extraK, extraV)
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}

func (w *Writer) flushLine(b []byte) {
	w.buf = b[:0] // keep what it grew to
	if w.err != nil {
		return
	}
	_, w.err = w.w.Write(b)
}

func appendLabel(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, '=', '"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func appendHelp(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
