package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/launch"
)

// helpers are the programs the test binary plays when sockd starts it as a
// job (GO_WANT_HELPER_PROCESS=1, argv[1] names the helper).
var helpers = map[string]func(args []string) int{
	"echo": func([]string) int {
		_, _ = io.Copy(os.Stdout, os.Stdin)
		return 0
	},
	// report prints what the child sees: selected environment, open fds,
	// blocking state of fd 0 and credentials, then exits.
	"report": func([]string) int {
		fmt.Print(report())
		return 0
	},
	// ignore-term ignores SIGTERM and sleeps; the pid goes to args[0].
	"ignore-term": func(args []string) int {
		signal.Ignore(syscall.SIGTERM)
		if len(args) > 0 {
			_ = os.WriteFile(args[0], []byte(strconv.Itoa(os.Getpid())), 0o644)
		}
		time.Sleep(120 * time.Second)
		return 0
	},
	// report-nonblock is report for a handoff job that then sets O_NONBLOCK
	// on its passed sockets (to prove sockd restores its own decision).
	"report-nonblock": func(args []string) int {
		out := report()
		appendLine(args[0], strings.ReplaceAll(out, "\n", " "))
		for fd := 3; fd < 3+atoiEnv("LISTEN_FDS"); fd++ {
			_ = unix.SetNonblock(fd, true)
		}
		return 0
	},
	// count appends a line to args[0] and exits with code args[1] (default
	// 0) without touching its sockets.
	"count": func(args []string) int {
		appendLine(args[0], strconv.Itoa(os.Getpid()))
		if len(args) > 1 {
			n, _ := strconv.Atoi(args[1])
			return n
		}
		return 0
	},
	// activation serves with go-systemd's activation package: every
	// connection gets "pid=<pid> names=<names>\n"; starts are counted in
	// args[0].
	"activation": func(args []string) int {
		appendLine(args[0], strconv.Itoa(os.Getpid()))
		byName, err := activation.ListenersWithNames()
		if err != nil || len(byName) == 0 {
			fmt.Fprintln(os.Stderr, "activation: no listeners:", err, os.Getenv("LISTEN_PID"), os.Getpid())
			return 3
		}
		var names []string
		for n := range byName {
			names = append(names, fmt.Sprintf("%s:%d", n, len(byName[n])))
		}
		sort.Strings(names)
		line := fmt.Sprintf("pid=%d names=%s\n", os.Getpid(), strings.Join(names, ","))
		serveAll(byName, line)
		return 0
	},
	// echo-lines is a handoff service that echoes every connection on its
	// sockets (go-systemd's activation) for 120 s; its pid goes to args[0].
	"echo-lines": func(args []string) int {
		_ = os.WriteFile(args[0], []byte(strconv.Itoa(os.Getpid())), 0o644)
		ls, err := activation.Listeners()
		if err != nil || len(ls) == 0 {
			fmt.Fprintln(os.Stderr, "echo-lines: no listeners:", err)
			return 3
		}
		for _, l := range ls {
			go func(l net.Listener) {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() { _, _ = io.Copy(c, c); c.Close() }()
				}
			}(l)
		}
		time.Sleep(120 * time.Second)
		return 0
	},
	// bulk-backend listens on 127.0.0.1:args[0]; on each connection it
	// sends pattern bytes (bulkByte) in 64 KiB chunks, a chunk every 2 ms,
	// until the client shuts its write side, then writes the count it sent
	// to args[1] and closes.
	"bulk-backend": func(args []string) int {
		l, err := net.Listen("tcp4", "127.0.0.1:"+args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "bulk-backend:", err)
			return 3
		}
		for {
			c, err := l.Accept()
			if err != nil {
				return 3
			}
			go bulkSend(c, args[1])
		}
	},
	// launch serves with the launch package: args[1:] are Sockets keys.
	"launch": func(args []string) int {
		appendLine(args[0], strconv.Itoa(os.Getpid()))
		all := map[string][]net.Listener{}
		for _, name := range args[1:] {
			ls, err := launch.Listeners(name)
			if err != nil {
				fmt.Fprintln(os.Stderr, "launch:", err)
				return 3
			}
			all[name] = ls
		}
		serveAll(all, "")
		return 0
	},
}

// serveAll accepts on every listener and answers each connection with
// line (or, when empty, "name=<key> local=<addr> pid=<pid>\n"), for 60 s.
func serveAll(byName map[string][]net.Listener, line string) {
	for name, ls := range byName {
		for _, l := range ls {
			go func(name string, l net.Listener) {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					msg := line
					if msg == "" {
						msg = fmt.Sprintf("name=%s local=%s pid=%d\n", name, c.LocalAddr(), os.Getpid())
					}
					_, _ = c.Write([]byte(msg))
					c.Close()
				}
			}(name, l)
		}
	}
	time.Sleep(60 * time.Second)
}

// bulkByte is byte i of a bulk-backend stream.
func bulkByte(i int64) byte { return byte((i*7 + 3) % 251) }

// bulkSend streams pattern chunks to c until c's peer shuts its write side.
func bulkSend(c net.Conn, countFile string) {
	stop := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, c); close(stop) }()
	chunk := make([]byte, 64<<10)
	var sent int64
	for {
		select {
		case <-stop:
			appendLine(countFile, strconv.FormatInt(sent, 10))
			c.Close()
			return
		case <-time.After(2 * time.Millisecond):
		}
		for i := range chunk {
			chunk[i] = bulkByte(sent + int64(i))
		}
		if _, err := c.Write(chunk); err != nil {
			appendLine(countFile, "error "+err.Error())
			return
		}
		sent += int64(len(chunk))
	}
}

func atoiEnv(k string) int {
	n, _ := strconv.Atoi(os.Getenv(k))
	return n
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o666)
	if err != nil {
		return
	}
	fmt.Fprintln(f, line)
	f.Close()
}

func report() string {
	var b strings.Builder
	for _, k := range []string{"REMOTE_ADDR", "REMOTE_PORT", "PROTO", "TCPREMOTEIP", "TCPREMOTEPORT",
		"TCPLOCALIP", "TCPLOCALPORT", "UNIXREMOTEUID", "UNIXLOCALPATH", "LAUNCH_JOB_LABEL",
		"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOBVAR", "NOTIFY_SOCKET", "HOME", "USER"} {
		if v, ok := os.LookupEnv(k); ok {
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
	}
	fds := initialFds
	var fs []string
	for _, n := range fds {
		fs = append(fs, strconv.Itoa(n))
	}
	fmt.Fprintf(&b, "FDS=%s\n", strings.Join(fs, ","))
	for _, fd := range fds {
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
			fmt.Fprintf(&b, "NONBLOCK%d=%t\n", fd, fl&unix.O_NONBLOCK != 0)
		}
	}
	groups, _ := unix.Getgroups()
	sort.Ints(groups)
	fmt.Fprintf(&b, "UID=%d\nGID=%d\nGROUPS=%v\n", os.Getuid(), os.Getgid(), groups)
	pgid, _ := unix.Getpgid(0)
	fmt.Fprintf(&b, "PID=%d\nPGID=%d\n", os.Getpid(), pgid)
	return b.String()
}

// initialFds are the fds open when the helper started, before the Go
// runtime's poller or anything else opened its own.
var initialFds []int

// scanFds lists open fds with raw fcntl calls (no fd of its own).
func scanFds() []int {
	var fds []int
	for fd := 0; fd < 1024; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			fds = append(fds, fd)
		}
	}
	return fds
}

func runHelper() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "helper: no command")
		os.Exit(2)
	}
	h, ok := helpers[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "helper: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	os.Exit(h(os.Args[2:]))
}

// parseReport turns report() output into a map.
func parseReport(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}
