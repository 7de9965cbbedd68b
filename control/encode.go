package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
)

// answerBuffer is how much of an answer is written to the socket at once.
const answerBuffer = 64 << 10

// yieldEvery is how many jobs are encoded between two calls of yield: about
// 100 µs of encoding.
const yieldEvery = 64

// encodeResponse writes resp to w as json.NewEncoder(w).Encode(resp) does,
// byte for byte (one line of JSON and a newline), but one job at a time
// through an answerBuffer-sized buffer: a list of 10,000 jobs, about 3 MB,
// is never built whole in memory, and yield (when not nil) is called every
// yieldEvery jobs, so that the daemon's own work is not kept waiting behind
// a long answer.
func encodeResponse(w io.Writer, resp *Response, yield func()) error {
	bw := bufio.NewWriterSize(w, answerBuffer)
	var one bytes.Buffer
	enc := json.NewEncoder(&one)
	var err error
	// put appends v's encoding, less the newline Encode ends it with.
	put := func(v any) {
		if err != nil {
			return
		}
		one.Reset()
		if err = enc.Encode(v); err != nil {
			return
		}
		_, err = bw.Write(one.Bytes()[:one.Len()-1])
	}
	// The fields in Response's order, with its omitempty rules
	// (TestEncodeResponseFields keeps the two in step).
	bw.WriteString(`{"status":`)
	put(resp.Status)
	if resp.Error != "" {
		bw.WriteString(`,"error":`)
		put(resp.Error)
	}
	if len(resp.Jobs) > 0 {
		bw.WriteString(`,"jobs":[`)
		for i := range resp.Jobs {
			if i > 0 {
				bw.WriteByte(',')
			}
			put(&resp.Jobs[i])
			if err != nil {
				return err
			}
			if yield != nil && i%yieldEvery == yieldEvery-1 {
				yield()
			}
		}
		bw.WriteByte(']')
	}
	if len(resp.Diags) > 0 {
		bw.WriteString(`,"diags":`)
		put(resp.Diags)
	}
	if len(resp.Done) > 0 {
		bw.WriteString(`,"done":`)
		put(resp.Done)
	}
	if resp.Daemon != nil {
		bw.WriteString(`,"daemon":`)
		put(resp.Daemon)
	}
	bw.WriteString("}\n")
	if err != nil {
		return err
	}
	return bw.Flush()
}
