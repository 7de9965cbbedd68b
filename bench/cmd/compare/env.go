package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// peer is an optional program the comparison runs against.
type peer struct {
	name    string // as printed
	path    string // "" when missing
	pkg     string // Debian package
	missing string // why it is missing
}

// env holds everything the groups need: built programs and peers.
type env struct {
	root     string // module root
	tmp      string // scratch dir for this run (jobs, configs, logs)
	hello    string
	floor    string
	echosrv  string
	sockd    string // "" when it could not be built
	sockdErr error

	tcpserver, xinetd, inetd, activate, proxyd peer

	shm string // tmpfs scratch dir for Unix sockets ("" until sockTmp)
}

// sockTmp is a scratch directory on tmpfs (/dev/shm) for Unix socket
// nodes, or the run's scratch dir when there is no tmpfs; removeShm
// removes it.
func (e *env) sockTmp() string {
	if e.shm == "" {
		e.shm = e.tmp
		if d, err := os.MkdirTemp("/dev/shm", "sockd-bench-"); err == nil {
			e.shm = d
		}
	}
	return e.shm
}

func (e *env) removeShm() {
	if e.shm != "" && e.shm != e.tmp {
		os.RemoveAll(e.shm)
	}
}

func (e *env) peers() []*peer {
	return []*peer{&e.tcpserver, &e.xinetd, &e.inetd, &e.activate, &e.proxyd}
}

// findRoot walks up from the working directory to the directory holding
// go.mod with bench/ beside it.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 20 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "bench", "progs", "hello.c")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("run from inside the sockd module (no go.mod with bench/progs/hello.c above the working directory)")
}

// buildC compiles the C programs into e.tmp/bin with gcc.
func (e *env) buildC(ctx context.Context) error {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return fmt.Errorf("gcc is needed to build the per-connection programs (apt-get install gcc libc6-dev): %w", err)
	}
	bin := filepath.Join(e.tmp, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	helloFlags := []string{"-O2", "-static"}
	if runtime.GOARCH == "amd64" {
		helloFlags = append(helloFlags, "-nostdlib", "-fno-stack-protector", "-DHELLO_RAW")
	}
	builds := []struct {
		out   *string
		name  string
		src   string
		flags []string
	}{
		{&e.hello, "hello", "bench/progs/hello.c", helloFlags},
		{&e.echosrv, "echosrv", "bench/progs/echosrv.c", []string{"-O2", "-static"}},
		{&e.floor, "floor", "bench/floor/floor.c", []string{"-O2"}},
	}
	for _, b := range builds {
		out := filepath.Join(bin, b.name)
		args := append(append([]string{}, b.flags...), "-o", out, filepath.Join(e.root, b.src))
		cmd := exec.CommandContext(ctx, gcc, args...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %s: %w\n%s", strings.Join(args, " "), err, msg)
		}
		*b.out = out
	}
	return nil
}

// buildSockd builds ./cmd/sockd, or uses the given binary.
func (e *env) buildSockd(ctx context.Context, prebuilt string) {
	if prebuilt != "" {
		if _, err := os.Stat(prebuilt); err != nil {
			e.sockdErr = err
			return
		}
		e.sockd = prebuilt
		return
	}
	out := filepath.Join(e.tmp, "bin", "sockd")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/sockd")
	cmd.Dir = e.root
	if msg, err := cmd.CombinedOutput(); err != nil {
		e.sockdErr = fmt.Errorf("go build ./cmd/sockd: %w\n%s", err, strings.TrimSpace(string(msg)))
		return
	}
	e.sockd = out
}

// findPeers looks the peers up; flags may name explicit paths.
func (e *env) findPeers(tcpserver, xinetd, inetd, activate, proxyd string) {
	look := func(p *peer, name, pkg, explicit string, candidates ...string) {
		p.name, p.pkg = name, pkg
		if explicit != "" {
			if fi, err := os.Stat(explicit); err != nil || fi.IsDir() {
				p.missing = fmt.Sprintf("%s: not an executable file", explicit)
				return
			}
			p.path = explicit
			return
		}
		for _, c := range candidates {
			if strings.HasPrefix(c, "/") {
				if fi, err := os.Stat(c); err == nil && !fi.IsDir() {
					p.path = c
					return
				}
				continue
			}
			if path, err := exec.LookPath(c); err == nil {
				p.path = path
				return
			}
		}
		p.missing = "not found"
	}
	look(&e.tcpserver, "tcpserver", "ucspi-tcp", tcpserver, "tcpserver")
	look(&e.xinetd, "xinetd", "xinetd", xinetd, "xinetd", "/usr/sbin/xinetd")
	look(&e.inetd, "openbsd-inetd", "openbsd-inetd", inetd, "/usr/sbin/inetd", "inetd")
	look(&e.activate, "systemd-socket-activate", "systemd", activate, "systemd-socket-activate", "/usr/bin/systemd-socket-activate")
	look(&e.proxyd, "systemd-socket-proxyd", "systemd", proxyd, "/lib/systemd/systemd-socket-proxyd", "/usr/lib/systemd/systemd-socket-proxyd")
	// GNU inetutils inetd has the same name but other flags; only the
	// OpenBSD one is driven here.
	if e.inetd.path != "" && !isOpenBSDInetd(e.inetd.path) {
		e.inetd.missing = e.inetd.path + " is not openbsd-inetd (no -R flag in its usage)"
		e.inetd.path = ""
	}
}

func isOpenBSDInetd(path string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, path, "-h").CombinedOutput()
	return strings.Contains(string(out), "-R rate")
}

// peerReport says which peers are present and how to install the others.
func (e *env) peerReport() string {
	var b strings.Builder
	var missing []string
	for _, p := range e.peers() {
		if p.path != "" {
			fmt.Fprintf(&b, "  present: %-24s %s\n", p.name, p.path)
		} else {
			fmt.Fprintf(&b, "  missing: %-24s %s (Debian package %s)\n", p.name, p.missing, p.pkg)
			missing = append(missing, p.pkg)
		}
	}
	if e.sockd != "" {
		fmt.Fprintf(&b, "  built:   %-24s %s\n", "sockd", e.sockd)
	} else {
		fmt.Fprintf(&b, "  missing: %-24s %v\n", "sockd", e.sockdErr)
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "  nothing is installed by this command; to add the missing peers:\n"+
			"    apt-get install ucspi-tcp xinetd openbsd-inetd systemd\n"+
			"  (xinetd and openbsd-inetd conflict in Debian; install one, and for the other\n"+
			"   `apt-get download xinetd && dpkg-deb -x xinetd_*.deb DIR`, then pass -xinetd DIR/usr/sbin/xinetd.\n"+
			"   Create /usr/sbin/policy-rc.d with `exit 101` first so the packaged daemons are not started.)\n")
	}
	return b.String()
}
