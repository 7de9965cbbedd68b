//go:build linux

package journal

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap/zapcore"
)

// NewCore is a zap core that writes each entry to w as a native entry:
// MESSAGE, PRIORITY (from the level), SYSLOG_IDENTIFIER=identifier,
// CODE_FILE/CODE_LINE/CODE_FUNC when the entry has a caller, STACKTRACE
// when it has one, and each zap field under its FieldName (job -> JOB; a
// field whose name would be one of those, or another journald reads
// itself, gets FIELD_ before it). An entry the journal does not take is
// written by fallback instead (text on stderr, say): the first after a
// good one is preceded there by one warning.
func NewCore(w *Writer, identifier string, enab zapcore.LevelEnabler, fallback zapcore.Core) zapcore.Core {
	return &core{LevelEnabler: enab, w: w, ident: identifier, fallback: fallback, state: &coreState{}}
}

type core struct {
	zapcore.LevelEnabler
	w        *Writer
	ident    string
	fields   []byte // the fields of With, encoded
	fallback zapcore.Core
	state    *coreState
}

// coreState is what every core derived by With shares.
type coreState struct {
	failing atomic.Bool // the last send failed
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (c *core) With(fs []zapcore.Field) zapcore.Core {
	n := *c
	n.fields = appendZapFields(append([]byte(nil), c.fields...), fs)
	n.fallback = c.fallback.With(fs)
	return &n
}

func (c *core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *core) Write(e zapcore.Entry, fs []zapcore.Field) error {
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	buf = AppendField(buf, "MESSAGE", e.Message)
	buf = AppendField(buf, "PRIORITY", strconv.Itoa(Priority(e.Level)))
	buf = AppendField(buf, "SYSLOG_IDENTIFIER", c.ident)
	if e.Caller.Defined {
		buf = AppendField(buf, "CODE_FILE", e.Caller.File)
		buf = AppendField(buf, "CODE_LINE", strconv.Itoa(e.Caller.Line))
		if e.Caller.Function != "" {
			buf = AppendField(buf, "CODE_FUNC", e.Caller.Function)
		}
	}
	if e.Stack != "" {
		buf = AppendField(buf, "STACKTRACE", e.Stack)
	}
	buf = append(buf, c.fields...)
	buf = appendZapFields(buf, fs)
	err := c.w.Send(buf)
	if cap(buf) <= 64<<10 {
		*bp = buf
		bufPool.Put(bp)
	}
	if err == nil {
		c.state.failing.Store(false)
		return nil
	}
	if !c.state.failing.Swap(true) {
		_ = c.fallback.Write(zapcore.Entry{Level: zapcore.WarnLevel, Time: time.Now(),
			Message: "the journal does not take sockd's log: writing it here as text until it does"},
			[]zapcore.Field{{Key: "error", Type: zapcore.StringType, String: err.Error()}})
	}
	return c.fallback.Write(e, fs)
}

func (c *core) Sync() error { return c.fallback.Sync() }

// Priority is the syslog priority of a zap level.
func Priority(l zapcore.Level) int {
	switch {
	case l <= zapcore.DebugLevel:
		return PriDebug
	case l == zapcore.InfoLevel:
		return PriInfo
	case l == zapcore.WarnLevel:
		return PriWarning
	case l == zapcore.ErrorLevel:
		return PriErr
	}
	return PriCrit // DPanic, Panic, Fatal
}

// reserved are the names the core writes itself and those journald reads
// a meaning into: a zap field by one of these names gets FIELD_ before it.
var reserved = map[string]bool{
	"MESSAGE": true, "MESSAGE_ID": true, "PRIORITY": true, "CODE_FILE": true, "CODE_LINE": true,
	"CODE_FUNC": true, "ERRNO": true, "INVOCATION_ID": true, "USER_INVOCATION_ID": true,
	"SYSLOG_FACILITY": true, "SYSLOG_IDENTIFIER": true, "SYSLOG_PID": true, "SYSLOG_TIMESTAMP": true,
	"SYSLOG_RAW": true, "DOCUMENTATION": true, "TID": true, "STACKTRACE": true,
}

// zapFieldName is the journal name of a zap field's key.
func zapFieldName(key string) string {
	n := FieldName(key)
	if reserved[n] {
		n = FieldName("FIELD_" + n)
	}
	return n
}

// appendZapFields encodes fields: each under its journal name, in the
// order given; an object or array as JSON.
func appendZapFields(buf []byte, fs []zapcore.Field) []byte {
	if len(fs) == 0 {
		return buf
	}
	for _, f := range fs {
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		if len(enc.Fields) == 1 { // the common case, in order
			for k, v := range enc.Fields {
				buf = AppendField(buf, zapFieldName(k), valueString(v))
			}
			continue
		}
		// A field that adds several (an error's errorVerbose, an inline
		// object): sorted, for a stable entry.
		keys := make([]string, 0, len(enc.Fields))
		for k := range enc.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			buf = AppendField(buf, zapFieldName(k), valueString(enc.Fields[k]))
		}
	}
	return buf
}

// valueString is the journal value of what a zap MapObjectEncoder holds.
func valueString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case int16:
		return strconv.FormatInt(int64(x), 10)
	case int8:
		return strconv.FormatInt(int64(x), 10)
	case uint:
		return strconv.FormatUint(uint64(x), 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case uint32:
		return strconv.FormatUint(uint64(x), 10)
	case uint16:
		return strconv.FormatUint(uint64(x), 10)
	case uint8:
		return strconv.FormatUint(uint64(x), 10)
	case uintptr:
		return strconv.FormatUint(uint64(x), 10)
	case float64:
		return formatFloat(x, 64)
	case float32:
		return formatFloat(float64(x), 32)
	case time.Duration:
		return x.String()
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case complex128, complex64:
		return fmt.Sprint(x)
	case nil:
		return ""
	case fmt.Stringer:
		return x.String()
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}
