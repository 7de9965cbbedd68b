package job

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecode: no input makes Decode panic or hang, and every job it
// accepts is filled in consistently. Seeds: the launchd corpus plus small
// hand-written files in each encoding.
func FuzzDecode(f *testing.F) {
	// Never query DNS for fuzzed SockNodeName values.
	lookupHost = func(context.Context, string) ([]netip.Addr, error) {
		return nil, errors.New("lookups disabled while fuzzing")
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "corpus", "launchd", "*.plist"))
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add(xmlJob(base))
	f.Add(xmlJob(base + nowait + sockets(sock("L", `<key>SockServiceName</key><string>8080</string><key>SockNodeName</key><string>localhost</string>`))))
	f.Add(xmlJob(base + sockets(`<key>a</key><array><dict><key>SockPathName</key><string>/run/a</string><key>SockPathMode</key><integer>49663</integer></dict></array>`)))
	f.Add(xmlJob(base + `<key>KeepAlive</key><dict><key>PathState</key><dict><key>/x</key><true/></dict></dict><key>SockdLimits</key><dict><key>Rate</key><real>1.5</real></dict>`))
	f.Add([]byte(`{ Label = x; ProgramArguments = (/bin/cat); Sockets = { L = { SockServiceName = 7; SockType = dgram; }; }; RunAtLoad = YES; }`))
	f.Add([]byte("bplist00\xd1\x01\x02ULabelQx\x08\x0b\x11\x00\x00\x00\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x13"))
	f.Add(bplistChain(8, 2))
	f.Add(bplistChain(70, 1))
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?><!-- c --><plist version="1.0"><dict><key>Label</key><string>a &amp; &lt;b&gt;</string><key>N</key><integer>-12</integer><key>E</key><array/><key>D</key><dict/><key>T</key><true/></dict></plist>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastXML(t, data)
		j, diags := Decode(data, "f.plist")
		if j == nil {
			if !diags.HasErrors() {
				t.Fatal("no job and no error")
			}
			return
		}
		if diags.HasErrors() {
			t.Fatal("job returned with errors")
		}
		checkInvariants(t, j)
		for _, d := range diags {
			if d.File != "f.plist" || d.Msg == "" {
				t.Fatalf("bad diag %+v", d)
			}
		}
	})
}

// checkFastXML: whatever fastXMLTree accepts, howett.net/plist (the
// reference) decodes to the same tree.
func checkFastXML(t *testing.T, data []byte) {
	t.Helper()
	tree, ok := fastXMLTree(data)
	if !ok {
		return
	}
	ref, _, err := unmarshal(data)
	if err != nil {
		t.Fatalf("fast XML path accepted what the reference rejects (%v):\n%q", err, data)
	}
	if !reflect.DeepEqual(tree, ref) {
		t.Fatalf("fast XML path and reference differ:\nfast %#v\nref  %#v\ninput %q", tree, ref, data)
	}
}
