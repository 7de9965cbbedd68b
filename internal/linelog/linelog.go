// Package linelog writes log lines in sockd's console or JSON format
// without zap's field machinery: a line is appended to one pooled buffer,
// figure by figure, and written with one write. It is for the lines
// written on the hot path (one per connection, with SockdLogConnections):
// zap builds a field slice, boxes values and formats through a generic
// encoder, which is most of a record's cost. The bytes are those zap's
// encoders write for the same message and fields (linelog_test.go holds
// both to it), so a record reads like every other line of the log.
//
// A Writer made with Zap hands each line to a zap logger instead (the
// journal's format, and tests that observe a logger).
package linelog

import (
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Format is how a Writer lays out a line.
type Format int

const (
	// Console is zap's console encoder with sockd's settings: ISO 8601
	// time, a capital level, the message, then the fields as JSON.
	Console Format = iota
	// ConsoleColour is Console with the level in colour.
	ConsoleColour
	// JSON is zap's JSON encoder with sockd's settings (level, ts, msg,
	// then the fields; durations in seconds).
	JSON
	// viaZap hands the line's fields to a zap logger.
	viaZap
)

// timeLayout is zap's ISO8601TimeEncoder layout.
const timeLayout = "2006-01-02T15:04:05.000Z0700"

// Writer writes lines to one destination. Its methods are safe for
// concurrent use when its io.Writer is (zapcore.Lock's is).
type Writer struct {
	w      io.Writer
	format Format
	level  zapcore.LevelEnabler
	zap    *zap.Logger
	now    func() time.Time
}

// New is a Writer of format f to w, writing lines at the levels level
// enables. Share w with the zap core that writes the rest of the log
// (the same zapcore.Lock) so that lines never interleave.
func New(w io.Writer, f Format, level zapcore.LevelEnabler) *Writer {
	return &Writer{w: w, format: f, level: level, now: time.Now}
}

// Zap is a Writer that logs each line through log.
func Zap(log *zap.Logger) *Writer {
	return &Writer{format: viaZap, zap: log}
}

// With is a Writer whose lines begin with the field key=value, as
// zap.Logger.With(zap.String(key, value)) does.
func (w *Writer) With(key, value string) *Context {
	c := &Context{w: w}
	if w.format == viaZap {
		c.zap = w.zap.With(zap.String(key, value))
		return c
	}
	l := Line{ctx: c}
	l.Str(key, value)
	c.prefix = l.buf
	return c
}

// Context is a Writer with fields every line begins with (the job).
type Context struct {
	w      *Writer
	prefix []byte      // the context's fields, encoded
	zap    *zap.Logger // viaZap: the logger with the context's fields
}

// Line is one line being built. Its methods append a field and return
// the line; Write ends it. A nil Line (a level not enabled) takes every
// call and writes nothing.
type Line struct {
	ctx    *Context
	buf    []byte
	fields []zap.Field // viaZap
	msg    string
	level  zapcore.Level
	open   bool // a console line's field object has begun
}

var linePool = sync.Pool{New: func() any { return &Line{buf: make([]byte, 0, 512)} }}

// Info starts a line with message msg at info level; nil when the level
// is not enabled.
func (c *Context) Info(msg string) *Line {
	enabled := c.w.format == viaZap && c.zap.Core().Enabled(zapcore.InfoLevel) ||
		c.w.format != viaZap && c.w.level.Enabled(zapcore.InfoLevel)
	if !enabled {
		return nil
	}
	l := linePool.Get().(*Line)
	l.ctx, l.msg, l.level = c, msg, zapcore.InfoLevel
	if c.w.format != viaZap {
		l.buf = append(l.begin(l.buf[:0], c.w.now()), c.prefix...)
		l.open = len(c.prefix) > 0
	}
	return l
}

// begin appends what comes before the fields: time, level and message.
func (l *Line) begin(b []byte, t time.Time) []byte {
	switch l.ctx.w.format {
	case JSON:
		b = append(b, `{"level":"`...)
		b = append(b, l.level.String()...)
		b = append(b, `","ts":"`...)
		b = t.AppendFormat(b, timeLayout)
		b = append(b, `","msg":`...)
		return appendQuoted(b, l.msg)
	case ConsoleColour:
		b = t.AppendFormat(b, timeLayout)
		b = append(b, '\t')
		b = append(b, colourLevel(l.level)...)
	default:
		b = t.AppendFormat(b, timeLayout)
		b = append(b, '\t')
		b = append(b, l.level.CapitalString()...)
	}
	b = append(b, '\t')
	b = append(b, l.msg...)
	return b
}

// colourLevel is zap's CapitalColorLevelEncoder's text for lvl.
func colourLevel(lvl zapcore.Level) string {
	switch {
	case lvl == zapcore.DebugLevel:
		return "\x1b[35mDEBUG\x1b[0m"
	case lvl == zapcore.InfoLevel:
		return "\x1b[34mINFO\x1b[0m"
	case lvl == zapcore.WarnLevel:
		return "\x1b[33mWARN\x1b[0m"
	}
	return "\x1b[31m" + lvl.CapitalString() + "\x1b[0m"
}

// key appends the separator before a field and its quoted key. The
// console format's fields are one JSON object after a tab, spaced as
// zap spaces it.
func (l *Line) key(k string) {
	if l.ctx.w.format == JSON {
		l.buf = append(l.buf, ',')
		l.buf = appendQuoted(l.buf, k)
		l.buf = append(l.buf, ':')
		return
	}
	if l.open {
		l.buf = append(l.buf, ", "...)
	} else {
		l.buf = append(l.buf, "\t{"...)
		l.open = true
	}
	l.buf = appendQuoted(l.buf, k)
	l.buf = append(l.buf, ": "...)
}

// Str appends the string field k.
func (l *Line) Str(k, v string) *Line {
	switch {
	case l == nil:
	case l.ctx.w.format == viaZap:
		l.fields = append(l.fields, zap.String(k, v))
	default:
		l.key(k)
		l.buf = appendQuoted(l.buf, v)
	}
	return l
}

// Bytes appends the field k whose text is v (an address's AppendTo, say),
// as a string.
func (l *Line) Bytes(k string, v []byte) *Line {
	switch {
	case l == nil:
	case l.ctx.w.format == viaZap:
		l.fields = append(l.fields, zap.String(k, string(v)))
	default:
		l.key(k)
		l.buf = appendQuoted(l.buf, string(v))
	}
	return l
}

// Int appends the integer field k.
func (l *Line) Int(k string, v int64) *Line {
	switch {
	case l == nil:
	case l.ctx.w.format == viaZap:
		l.fields = append(l.fields, zap.Int64(k, v))
	default:
		l.key(k)
		l.buf = strconv.AppendInt(l.buf, v, 10)
	}
	return l
}

// Uint appends the unsigned integer field k.
func (l *Line) Uint(k string, v uint64) *Line {
	switch {
	case l == nil:
	case l.ctx.w.format == viaZap:
		l.fields = append(l.fields, zap.Uint64(k, v))
	default:
		l.key(k)
		l.buf = strconv.AppendUint(l.buf, v, 10)
	}
	return l
}

// Dur appends the duration field k: its String in the console format,
// seconds in JSON (zap's encoders for each).
func (l *Line) Dur(k string, d time.Duration) *Line {
	switch {
	case l == nil:
	case l.ctx.w.format == viaZap:
		l.fields = append(l.fields, zap.Duration(k, d))
	case l.ctx.w.format == JSON:
		l.key(k)
		l.buf = strconv.AppendFloat(l.buf, float64(d)/float64(time.Second), 'f', -1, 64)
	default:
		l.key(k)
		l.buf = appendQuoted(l.buf, d.String())
	}
	return l
}

// Write ends the line and writes it with one write. An error is dropped,
// as zap drops it (its ErrorOutput is the same stderr).
func (l *Line) Write() {
	if l == nil {
		return
	}
	switch {
	case l.ctx.w.format == viaZap:
		l.ctx.zap.Info(l.msg, l.fields...)
	case l.ctx.w.format == JSON:
		l.buf = append(l.buf, "}\n"...)
		_, _ = l.ctx.w.w.Write(l.buf)
	default:
		if l.open {
			l.buf = append(l.buf, '}')
		}
		l.buf = append(l.buf, '\n')
		_, _ = l.ctx.w.w.Write(l.buf)
	}
	l.ctx, l.fields = nil, l.fields[:0]
	if cap(l.buf) <= 4096 {
		linePool.Put(l)
	}
}

// appendQuoted appends s as a JSON string, escaped as zap escapes it:
// quote, backslash and control characters, invalid UTF-8 as U+FFFD.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		if c < utf8.RuneSelf {
			b = appendEscaped(b, c)
			i++
		} else if r, size := utf8.DecodeRuneInString(s[i:]); r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
			i++
		} else {
			b = append(b, s[i:i+size]...)
			i += size
		}
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEscaped appends the escape of an ASCII byte that JSON (as zap
// writes it) does not take bare.
func appendEscaped(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, `\n`...)
	case '\r':
		return append(b, `\r`...)
	case '\t':
		return append(b, `\t`...)
	}
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}
