package jobset

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLoad10000 loads a directory of 10,000 inetd jobs on Unix
// sockets, as sockd serve and check do at start (issue 23's start-up
// figure): read, decode, the preflight and the cross-check.
func BenchmarkLoad10000(b *testing.B) {
	dir := b.TempDir()
	for i := range 10000 {
		body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>Label</key><string>bench.%05d</string>
<key>ProgramArguments</key><array><string>/bin/true</string></array>
<key>inetdCompatibility</key><dict><key>Wait</key><false/></dict>
<key>Sockets</key><dict><key>L</key><dict><key>SockPathName</key><string>%s/%05d.sock</string></dict></dict>
</dict></plist>`, i, dir, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("j%05d.plist", i)), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if s := Load(Sources{Paths: []string{dir}}, Options{}); len(s.Jobs) != 10000 {
			b.Fatalf("%d jobs loaded: %v", len(s.Jobs), s.Diags)
		}
	}
}
