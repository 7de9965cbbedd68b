package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/sockd/sockd/control"
)

// TestAppendIndentAsJSONIndent: appendIndent gives json.Indent's bytes, on
// answers and on the shapes JSON has.
func TestAppendIndentAsJSONIndent(t *testing.T) {
	jobs := make([]control.Job, 300)
	for i := range jobs {
		jobs[i] = control.Job{Label: fmt.Sprintf("org.x.%d", i), State: `paused: "quoted" \ <b>`, Runs: uint64(i),
			Sockets: []control.Socket{{Name: "L", Network: "tcp", Address: "127.0.0.1:80", Fd: 3}},
			Limits:  &control.Limits{Rate: 1.5e-7}, Children: []control.Child{}}
	}
	answer, err := json.Marshal(control.Response{Status: control.OK, Jobs: jobs, Done: []string{"é\u2028\x01"}})
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{
		string(answer) + "\n",
		`{}`, `[]`, `{"a":{}}`, `{"a":[]}`, `[[],{},[[]]]`, `{"a":[1,2,{"b":null}],"c":true,"d":-1.5e+10}`,
		`{"s":"a\"b\\c\\","t":"\\\"","u":"\u00e9\ud83d\ude00"}`, `{"k,:{}[]":"v,:{}[]"}`,
		" \n{ \"a\" : [ 1 , 2 ] }\n\n", `{"a":1}  `,
	}
	for _, in := range inputs {
		var want bytes.Buffer
		if err := json.Indent(&want, []byte(in), "", "  "); err != nil {
			t.Fatalf("json.Indent(%q): %v", in, err)
		}
		got, err := appendIndent(nil, []byte(in))
		if err != nil {
			t.Errorf("appendIndent(%.80q): %v", in, err)
			continue
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("appendIndent(%.80q):\n got %.200q\nwant %.200q", in, got, want.String())
		}
	}
}

// TestAppendIndentRefuses: a truncated or malformed answer is an error.
func TestAppendIndentRefuses(t *testing.T) {
	full := `{"status":"ok","jobs":[{"label":"a\"b"}]}`
	for i := range len(full) {
		if _, err := appendIndent(nil, []byte(full[:i])); err == nil {
			t.Errorf("appendIndent(%q) took a truncated answer", full[:i])
		}
	}
	for _, in := range []string{``, ` `, `"x"`, `1`, `{"a":1}}`, `{"a":1]`, `[1}`, `{} {}`, `{"a":"\`} {
		if _, err := appendIndent(nil, []byte(in)); err == nil {
			t.Errorf("appendIndent(%q): no error", in)
		}
	}
	if _, err := appendIndent(nil, []byte(strings.Repeat("[", 50)+strings.Repeat("]", 50))); err != nil {
		t.Error(err)
	}
}

func BenchmarkAppendIndent(b *testing.B) {
	jobs := make([]control.Job, 10000)
	for i := range jobs {
		jobs[i] = control.Job{Label: fmt.Sprintf("org.x.%05d", i), Mode: "inetd", State: "waiting", Since: "2026-12-03T08:00:00Z",
			Sockets: []control.Socket{{Name: "Listeners", Network: "unix", Address: fmt.Sprintf("/run/x/%05d.sock", i), Fd: 3}},
			Limits:  &control.Limits{MaxChildren: 1024}}
	}
	answer, _ := json.Marshal(control.Response{Status: control.OK, Jobs: jobs})
	b.SetBytes(int64(len(answer)))
	var out []byte
	for b.Loop() {
		out, _ = appendIndent(out[:0], answer)
	}
}
