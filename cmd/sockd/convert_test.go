package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sockdEnv runs the sockd command tree, as sockd does, with env as its
// whole environment.
func sockdEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(env, "SOCKD_TEST_MAIN=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sockd %q: %v", args, err)
	}
	return o.String(), e.String(), code
}

// envWith is the test's environment with name set to value.
func envWith(name, value string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			env = append(env, kv)
		}
	}
	return append(env, name+"="+value)
}

const fingerSvc = "service finger\n{\n\tsocket_type = stream\n\twait = no\n\tuser = nobody\n\tserver = /usr/sbin/in.fingerd\n\tbind = 127.0.0.1\n\tflags = NOLIBWRAP\n%s}\n"

// TestConvertPassenvOddPath: a converted file does not depend on the
// environment of whoever ran sockd convert.
func TestConvertPassenvOddPath(t *testing.T) {
	const odd = "/tmp/odd-dir-xyz"
	dir := t.TempDir()
	xd := filepath.Join(dir, "xinetd.d")
	if err := os.Mkdir(xd, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, xd, "finger", strings.Replace(fingerSvc, "%s", "\tpassenv = PATH\n", 1), 0o644)
	out := filepath.Join(dir, "out")
	stdout, stderr, code := sockdEnv(t, envWith("PATH", odd+":/usr/bin"), "convert", "-o", out, xd)
	if code != 0 {
		t.Fatalf("convert: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "finger:9: passenv: warning: xinetd passes the server only PATH of its environment; sockd writes no value into the job") {
		t.Errorf("no passenv warning:\n%s", stderr)
	}
	data, err := os.ReadFile(filepath.Join(out, "xinetd.finger.plist"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), odd) || strings.Contains(string(data), "EnvironmentVariables") {
		t.Errorf("the converter's PATH is in the job file:\n%s", data)
	}
	// The file loads as a job.
	if o, e, code := sockd(t, "check", "--no-permissions", filepath.Join(out, "xinetd.finger.plist")); code != 0 {
		t.Errorf("check of the converted file: exit %d\n%s%s", code, o, e)
	}
}

// TestConvertBindInterface: an interface name in bind is an error naming
// file, line and attribute, and no job file listens anywhere for it.
func TestConvertBindInterface(t *testing.T) {
	dir := t.TempDir()
	src := writeFile(t, dir, "xinetd.conf", strings.Replace(strings.Replace(fingerSvc, "bind = 127.0.0.1", "interface = lo", 1), "%s", "", 1), 0o644)
	out := filepath.Join(dir, "out")
	_, stderr, code := sockd(t, "convert", "-o", out, src)
	if code != 1 || !strings.Contains(stderr, src+`:7: interface: error: "lo" is a network interface, not an address`) {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	if files, _ := filepath.Glob(filepath.Join(out, "*")); len(files) != 0 {
		t.Errorf("files written: %v", files)
	}
}

// TestConvertDoesNotFollowLinks: a link another user left at an output
// name is replaced by --force (the link, not its target), and without
// --force is an error that leaves it alone: convert, run as root, never
// writes through it.
func TestConvertDoesNotFollowLinks(t *testing.T) {
	dir := t.TempDir()
	src := writeFile(t, dir, "xinetd.conf", strings.Replace(fingerSvc, "%s", "", 1), 0o644)
	secret := writeFile(t, dir, "secret", "secret\n", 0o600)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(out, "xinetd.finger.plist")
	if err := os.Symlink(secret, name); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := sockd(t, "convert", "-o", out, src); code == 0 || !strings.Contains(stderr, name+" already exists (use --force to overwrite)") {
		t.Errorf("without --force: exit %d\n%s", code, stderr)
	}
	if fi, err := os.Lstat(name); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("without --force the link was replaced: %v", err)
	}
	if stdout, stderr, code := sockd(t, "convert", "--force", "-o", out, src); code != 0 {
		t.Fatalf("--force: exit %d\n%s%s", code, stdout, stderr)
	}
	if data, _ := os.ReadFile(secret); string(data) != "secret\n" {
		t.Errorf("the link's target was written: %q", data)
	}
	fi, err := os.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Fatalf("%s: %v %v, want a regular file of mode 0644", name, fi.Mode(), err)
	}
	if data, _ := os.ReadFile(name); !strings.Contains(string(data), "xinetd.finger") {
		t.Errorf("converted job:\n%s", data)
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
