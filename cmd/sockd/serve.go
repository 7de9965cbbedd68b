package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/control"
	"github.com/sockd/sockd/job"
	"github.com/sockd/sockd/jobset"
	"github.com/sockd/sockd/overrides"
	"github.com/sockd/sockd/spawn"
	"github.com/sockd/sockd/supervisor"
)

func init() {
	register(command{
		name:    "serve",
		summary: "bind every job's sockets and serve them (the daemon)",
		run:     runServe,
	})
}

// serveFlags are serve's command line.
type serveFlags struct {
	sources             jobset.Sources
	logFormat, logLevel string
	control, overrides  string
	onceDir             string
}

// parseServe parses serve's flags; the sources default to
// defaultJobDirs().
func parseServe(args []string) (serveFlags, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var dirs stringsFlag
	fs.Var(&dirs, "jobs", "job directory or file (repeatable; a file may be an inetd.conf or xinetd file; default "+fmt.Sprint(defaultJobDirs())+")")
	var inetdConfs, xinetds stringsFlag
	fs.Var(&inetdConfs, "inetd-conf", "an inetd.conf file to serve beside the jobs (repeatable; reloaded on SIGHUP)")
	fs.Var(&xinetds, "xinetd", "an xinetd.conf file or xinetd.d directory to serve beside the jobs (repeatable; reloaded on SIGHUP)")
	logFormat := fs.String("log-format", "console", "log format: console or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	ctl := fs.String("control", control.DefaultPath(os.Geteuid()), "the control socket to serve (\"\" for none): sockd list, stop, ... talk to it")
	ov := fs.String("overrides", overrides.DefaultPath(os.Geteuid()), "the overrides file that sockd disable and enable write")
	once := fs.String("once-dir", "", "the directory of the LaunchOnlyOnce records (default: once/ beside the control socket, /run/sockd/once for root)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sockd serve [--jobs DIR]... [--inetd-conf FILE]... [--xinetd FILE|DIR]... [--control PATH] [--overrides FILE] [--once-dir DIR] [--log-format F] [--log-level L]\n\n"+
			"Binds every job's sockets and serves them until SIGTERM or SIGINT. SIGHUP reloads\n"+
			"every source, SIGUSR1 logs one line of figures per job. The jobs load as\n"+
			"sockd check loads them: what check calls valid is what serve loads.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return serveFlags{}, usageError(err)
	}
	if fs.NArg() > 0 {
		return serveFlags{}, usageError(fmt.Errorf("serve: unexpected argument %q", fs.Arg(0)))
	}
	if len(dirs) == 0 {
		dirs = defaultJobDirs()
	}
	return serveFlags{sources: jobset.Sources{Paths: dirs, Inetd: inetdConfs, Xinetd: xinetds}, logFormat: *logFormat, logLevel: *logLevel,
		control: *ctl, overrides: *ov, onceDir: onceDir(*once, *ctl)}, nil
}

// onceDir is where the LaunchOnlyOnce records go: dir, or once/ beside
// the control socket (the default one when serve has none), a run-time
// directory that a reboot empties.
func onceDir(dir, ctl string) string {
	if dir != "" {
		return dir
	}
	if ctl == "" {
		ctl = control.DefaultPath(os.Geteuid())
	}
	return filepath.Join(filepath.Dir(ctl), "once")
}

func runServe(args []string) error {
	sf, err := parseServe(args)
	if err != nil {
		return err
	}
	if err := ensureStdio(); err != nil {
		return err
	}
	// Before any socket exists: low fd slots let each start share sockd's
	// fd table instead of copying it (matters with thousands of sockets).
	if err := spawn.ReserveLowFds(); err != nil {
		fmt.Fprintln(os.Stderr, "sockd: warning:", err)
	}
	// Exits are learnt from pidfds; SIGCHLD would only wake a thread per
	// exit (and, if inherited ignored, make the kernel reap children).
	if err := spawn.QuietChildExits(); err != nil {
		fmt.Fprintln(os.Stderr, "sockd: warning:", err)
	}
	log, err := newLogger(sf.logFormat, sf.logLevel)
	if err != nil {
		return usageError(err)
	}
	defer func() { _ = log.Sync() }()

	sup, err := supervisor.New(supervisor.Config{
		Load:      serveLoader(sf.sources, log),
		LoadFiles: func(files []string) ([]*job.Job, job.Diags) { return serveLoader(jobset.Sources{Paths: files}, log)() },
		Control:   sf.control, Overrides: sf.overrides, OnceDir: sf.onceDir,
		Log: log, Notify: true})
	if err != nil {
		return err
	}

	// SIGPIPE is ignored: sockd writes to sockets whose peers vanish. The
	// spawn package resets every signal disposition in children.
	signal.Ignore(syscall.SIGPIPE)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for sig := range sigs {
			switch sig {
			case syscall.SIGHUP:
				log.Info("SIGHUP: reloading jobs")
				sup.Reload()
			case syscall.SIGUSR1:
				sup.LogStats()
			default:
				log.Info("signal received; shutting down", zap.Stringer("signal", sig))
				cancel()
				return
			}
		}
	}()
	log.Info("sockd starting", zap.Strings("jobs", sf.sources.Paths), zap.String("version", versionString()))
	return sup.Run(ctx)
}

// serveLoader is serve's Config.Load: the job-set loader (the one check
// and print use) for a sockd running as this process, at start and on
// every SIGHUP. A job directory that does not exist is only a warning.
func serveLoader(src jobset.Sources, log *zap.Logger) func() ([]*job.Job, job.Diags) {
	return func() ([]*job.Job, job.Diags) {
		opts := jobset.ForThisProcess()
		opts.MissingOK = true
		set := jobset.Load(src, opts)
		return set.Jobs, logInfos(log, set.Diags)
	}
}

// logInfos logs the info lines of diags (a job this host does not load:
// LimitLoadToHosts, LimitLoadFromHosts) at info level and returns the
// others, which the supervisor logs as errors and warnings.
func logInfos(log *zap.Logger, diags job.Diags) job.Diags {
	var rest job.Diags
	for _, d := range diags {
		if d.Severity == job.Info {
			log.Info(d.String())
			continue
		}
		rest = append(rest, d)
	}
	return rest
}

// ensureStdio opens /dev/null on any of fds 0, 1 and 2 that is closed, so
// that no socket or file sockd opens later takes one of those numbers and
// leaks into children as their stdio (handoff children get sockd's fds 1
// and 2).
func ensureStdio() error {
	for fd := 0; fd <= 2; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			continue
		}
		nfd, err := unix.Open("/dev/null", unix.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("serve: fd %d is closed and /dev/null cannot be opened: %w", fd, err)
		}
		if nfd != fd {
			unix.Close(nfd) // a lower fd was closed too and got it; loop order fills them
		}
	}
	return nil
}
