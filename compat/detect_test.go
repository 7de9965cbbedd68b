package compat

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDetectCorpus(t *testing.T) {
	root := corpusRoot(t)
	for dir, want := range map[string]Format{"launchd": FormatLaunchd, "inetd": FormatInetd, "xinetd": FormatXinetd} {
		n := 0
		filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			n++
			if got := Detect(p, data); got != want {
				t.Errorf("Detect(%s) = %s, want %s", p, got, want)
			}
			// Content alone must do too, under a neutral name.
			if got := Detect("/tmp/config", data); got != want {
				t.Errorf("Detect(content of %s) = %s, want %s", p, got, want)
			}
			return nil
		})
		if n == 0 {
			t.Errorf("no corpus files under %s", dir)
		}
	}
}

func TestDetectRules(t *testing.T) {
	tests := []struct {
		path, data string
		want       Format
	}{
		{"/etc/inetd.conf", "", FormatInetd},
		{"/etc/inetd.conf.dpkg-old", "", FormatInetd},
		{"/etc/xinetd.conf", "", FormatXinetd},
		{"/etc/xinetd.d/echo", "", FormatXinetd},
		{"/x/org.example.echo.plist", "echo stream tcp nowait root internal", FormatLaunchd},
		{"/x/a", "bplist00\x00\x01", FormatLaunchd},
		{"/x/a", "\ufeff  <?xml version=\"1.0\"?><plist/>", FormatLaunchd},
		{"/x/a", "<plist version=\"1.0\"><dict/></plist>", FormatLaunchd},
		{"/x/a", "{ Label = x; }", FormatLaunchd},
		{"/x/a", "# c\nservice echo\n{\n}\n", FormatXinetd},
		{"/x/a", "defaults {\n}\n", FormatXinetd},
		{"/x/a", "includedir /etc/xinetd.d\n", FormatXinetd},
		{"/x/a", "echo stream tcp nowait root internal\n", FormatInetd},
		{"/x/a", "finger stream tcp nowait/3/10 nobody /usr/libexec/fingerd fingerd -s", FormatInetd},
		{"/x/a", "#ftp stream tcp nowait.400 root /x x\n", FormatInetd},
		{"/x/a", "echo stream tcp sometimes root internal\n", FormatUnknown},
		{"/x/a", "", FormatUnknown},
		{"/x/a", "hello world\n", FormatUnknown},
	}
	for _, tc := range tests {
		if got := Detect(tc.path, []byte(tc.data)); got != tc.want {
			t.Errorf("Detect(%q, %q) = %s, want %s", tc.path, tc.data, got, tc.want)
		}
	}
	for f, s := range map[Format]string{FormatUnknown: "unknown", FormatLaunchd: "launchd", FormatInetd: "inetd", FormatXinetd: "xinetd"} {
		if f.String() != s {
			t.Errorf("%d.String() = %q", int(f), f.String())
		}
	}
}
