package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// testResponses are answers of every shape, with the characters that
// encoding/json escapes.
func testResponses() []Response {
	many := make([]Job, 1000)
	for i := range many {
		many[i] = Job{Label: fmt.Sprintf("org.x.%04d", i), Mode: "inetd", State: "waiting", Runs: uint64(i),
			Sockets: []Socket{{Name: "L", Network: "unix", Address: fmt.Sprintf("/run/x/%d.sock", i), Fd: 3}},
			Limits:  &Limits{MaxChildren: 1024, Rate: 2.5}}
	}
	return []Response{
		{},
		{Status: OK},
		{Status: Failed, Error: `no "such" <job> & \ more` + "\u2028\x00\xff"},
		{Status: OK, Jobs: []Job{}},
		{Status: OK, Jobs: []Job{{Label: "a"}}, Diags: []string{"f:1: K: error: x"}, Done: []string{"stopped a"}},
		{Status: OK, Diags: []string{}, Done: []string{"<b>"}},
		{Status: OK, Daemon: &Daemon{Version: "1.2", Pid: 7, Started: "2026-12-04T20:00:00Z", UpgradedFrom: "1.1"}},
		{Status: OK, Jobs: many},
		{Status: OK, Jobs: []Job{{Label: "p", Proxy: &Proxy{Backend: "127.0.0.1:1", Total: 7},
			Triggers: &Triggers{Calendar: []string{"Hour 3"}, LaunchOnlyOnce: true}, Children: []Child{{Pid: 9, Source: "::1"}}}}},
	}
}

// TestEncodeResponseSameBytes: the streamed answer is the bytes
// json.Encoder.Encode writes for the whole Response.
func TestEncodeResponseSameBytes(t *testing.T) {
	for i, resp := range testResponses() {
		var want, got bytes.Buffer
		if err := json.NewEncoder(&want).Encode(resp); err != nil {
			t.Fatal(err)
		}
		yields := 0
		if err := encodeResponse(&got, &resp, func() { yields++ }); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("response %d:\n got %.300q\nwant %.300q", i, got.String(), want.String())
		}
		if w := len(resp.Jobs) / yieldEvery; yields != w {
			t.Errorf("response %d: %d yields for %d jobs, want %d", i, yields, len(resp.Jobs), w)
		}
	}
}

// TestEncodeResponseFields: encodeResponse writes Response's fields by
// hand; a field added to Response must be added there too.
func TestEncodeResponseFields(t *testing.T) {
	var tags []string
	rt := reflect.TypeFor[Response]()
	for i := range rt.NumField() {
		tags = append(tags, rt.Field(i).Tag.Get("json"))
	}
	want := "status error,omitempty jobs,omitempty diags,omitempty done,omitempty daemon,omitempty"
	if got := strings.Join(tags, " "); got != want {
		t.Fatalf("Response's fields are %q; encodeResponse writes %q: update it", got, want)
	}
}

// TestAnswerHead: the status and error are read from the head of an
// answer, and an answer in another order is said to be one.
func TestAnswerHead(t *testing.T) {
	for _, c := range []struct {
		in     string
		want   Response
		wantOK bool
	}{
		{`{"status":"ok","jobs":[{"label":"x"}]}`, Response{Status: OK}, true},
		{`{"status":"failed","error":"no \"x\"","diags":["a"]}`, Response{Status: Failed, Error: `no "x"`}, true},
		{`{"status":"no-such-job","error":"x"}` + "\n", Response{Status: NoSuchJob, Error: "x"}, true},
		{`{"jobs":[],"status":"ok"}`, Response{}, false},
		{`{"error":"x","status":"ok"}`, Response{}, false},
		{`[1]`, Response{}, false},
		{``, Response{}, false},
	} {
		got, ok := answerHead([]byte(c.in))
		if ok != c.wantOK || (ok && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("answerHead(%s) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.wantOK)
		}
	}
}

func BenchmarkEncodeResponse10000(b *testing.B) {
	resp := Response{Status: OK, Jobs: make([]Job, 10000)}
	for i := range resp.Jobs {
		resp.Jobs[i] = testResponses()[6].Jobs[i%1000]
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := encodeResponse(discard{}, &resp, nil); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
