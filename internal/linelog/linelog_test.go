package linelog

import (
	"bytes"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fixedClock is a zapcore.Clock that always says t.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                         { return c.t }
func (c fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// encoder is sockd's encoder for f (cmd/sockd/log.go builds the same).
func encoder(f Format) zapcore.Encoder {
	if f == JSON {
		cfg := zap.NewProductionEncoderConfig()
		cfg.EncodeTime = zapcore.ISO8601TimeEncoder
		return zapcore.NewJSONEncoder(cfg)
	}
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.EncodeLevel = zapcore.CapitalLevelEncoder
	if f == ConsoleColour {
		cfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	return zapcore.NewConsoleEncoder(cfg)
}

// values are strings zap escapes in each way it can.
var values = []string{"", "127.0.0.1:43210", `quote " and \ back`, "tab\tnew\nline\rcr", "\x01\x1f\x7f",
	"bad \xff utf-8", "ünïcødé ✓", "exit 1"}

// TestSameBytesAsZap holds every format to zap's own output for the
// same message, context and fields.
func TestSameBytesAsZap(t *testing.T) {
	at := time.Date(2026, 12, 4, 20, 1, 2, 345678901, time.FixedZone("x", 3600))
	for _, f := range []Format{Console, ConsoleColour, JSON} {
		for _, v := range values {
			var want, got bytes.Buffer
			z := zap.New(zapcore.NewCore(encoder(f), zapcore.AddSync(&want), zapcore.InfoLevel), zap.WithClock(fixedClock{at}))
			z.With(zap.String("job", "job "+v)).Info("connection", zap.String("record", "end"), zap.String("peer", v),
				zap.Int64("pid", -12345), zap.Uint64("bytes", 1<<63), zap.Duration("duration", 1234567*time.Nanosecond),
				zap.Duration("zero", 0))
			w := New(zapcore.AddSync(&got), f, zapcore.InfoLevel)
			w.now = func() time.Time { return at }
			w.With("job", "job "+v).Info("connection").Str("record", "end").Bytes("peer", []byte(v)).
				Int("pid", -12345).Uint("bytes", 1<<63).Dur("duration", 1234567*time.Nanosecond).Dur("zero", 0).Write()
			if got.String() != want.String() {
				t.Errorf("format %d, value %q:\n got %q\nwant %q", f, v, got.String(), want.String())
			}
		}
	}
}

// TestNoFields is a line with neither context nor fields: the message
// alone, as zap writes it.
func TestNoFields(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, f := range []Format{Console, JSON} {
		var want, got bytes.Buffer
		zap.New(zapcore.NewCore(encoder(f), zapcore.AddSync(&want), zapcore.InfoLevel), zap.WithClock(fixedClock{at})).Info("m")
		w := New(zapcore.AddSync(&got), f, zapcore.InfoLevel)
		w.now = func() time.Time { return at }
		(&Context{w: w}).Info("m").Write()
		if got.String() != want.String() {
			t.Errorf("format %d: got %q, want %q", f, got.String(), want.String())
		}
	}
}

// TestLevel is a writer at warn: an info line is nil and writes nothing.
func TestLevel(t *testing.T) {
	var got bytes.Buffer
	l := New(zapcore.AddSync(&got), Console, zapcore.WarnLevel).With("job", "j").Info("connection")
	if l != nil {
		t.Fatal("an info line at level warn is not nil")
	}
	l.Str("a", "b").Int("c", 1).Write()
	if got.Len() != 0 {
		t.Errorf("wrote %q at level warn", got.String())
	}
}

// TestViaZap hands the fields to the logger, context included.
func TestViaZap(t *testing.T) {
	core, obs := observer.New(zapcore.InfoLevel)
	Zap(zap.New(core)).With("job", "j").Info("connection").Str("peer", "p").Int("pid", 7).Dur("d", time.Second).Write()
	es := obs.All()
	if len(es) != 1 || es[0].Message != "connection" {
		t.Fatalf("entries %v", es)
	}
	m := es[0].ContextMap()
	if m["job"] != "j" || m["peer"] != "p" || m["pid"] != int64(7) || m["d"] != time.Second {
		t.Errorf("fields %v", m)
	}
	core, _ = observer.New(zapcore.WarnLevel)
	if Zap(zap.New(core)).With("job", "j").Info("connection") != nil {
		t.Error("an info line through a logger at warn is not nil")
	}
}

// BenchmarkLine is a connection record's line through linelog and
// through zap, both to io.Discard.
func BenchmarkLine(b *testing.B) {
	peer := []byte("127.0.0.1:43210")
	b.Run("linelog", func(b *testing.B) {
		c := New(zapcore.AddSync(discard{}), Console, zapcore.InfoLevel).With("job", "bench.job")
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.Info("connection").Str("record", "end").Bytes("peer", peer).Str("local", "127.0.0.1:8080").
				Dur("duration", 1234*time.Microsecond).Int("pid", 12345).Str("status", "exit 0").Int("exit_code", 0).Write()
		}
	})
	b.Run("zap", func(b *testing.B) {
		z := zap.New(zapcore.NewCore(encoder(Console), zapcore.AddSync(discard{}), zapcore.InfoLevel)).With(zap.String("job", "bench.job"))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			z.Info("connection", zap.String("record", "end"), zap.ByteString("peer", peer), zap.String("local", "127.0.0.1:8080"),
				zap.Duration("duration", 1234*time.Microsecond), zap.Int("pid", 12345), zap.String("status", "exit 0"), zap.Int("exit_code", 0))
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
