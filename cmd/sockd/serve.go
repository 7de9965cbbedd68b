package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
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

func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var dirs stringsFlag
	fs.Var(&dirs, "jobs", "job directory or file (repeatable; default "+fmt.Sprint(defaultJobDirs())+")")
	var inetdConfs, xinetds stringsFlag
	fs.Var(&inetdConfs, "inetd-conf", "an inetd.conf file to serve beside the jobs (repeatable; reloaded on SIGHUP)")
	fs.Var(&xinetds, "xinetd", "an xinetd.conf file or xinetd.d directory to serve beside the jobs (repeatable; reloaded on SIGHUP)")
	logFormat := fs.String("log-format", "console", "log format: console or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sockd serve [--jobs DIR]... [--inetd-conf FILE]... [--xinetd FILE|DIR]... [--log-format F] [--log-level L]\n\n"+
			"Binds every job's sockets and serves them until SIGTERM or SIGINT. SIGHUP reloads\n"+
			"every source, SIGUSR1 logs one line of figures per job.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Errorf("serve: unexpected argument %q", fs.Arg(0)))
	}
	if len(dirs) == 0 {
		dirs = defaultJobDirs()
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
	log, err := newLogger(*logFormat, *logLevel)
	if err != nil {
		return usageError(err)
	}
	defer func() { _ = log.Sync() }()

	opts := job.LoadOptions{UID: os.Geteuid()}
	load := func() ([]*job.Job, job.Diags) {
		var paths []string
		var diags job.Diags
		for _, d := range dirs {
			if _, err := os.Stat(d); err != nil {
				diags = append(diags, job.Diag{File: d, Severity: job.Warning, Msg: "job directory not readable: " + err.Error()})
				continue
			}
			paths = append(paths, d)
		}
		jobs, ds := job.LoadPaths(paths, opts)
		diags = append(diags, logInfos(log, ds)...)
		if len(inetdConfs)+len(xinetds) == 0 {
			return jobs, diags
		}
		legacy, ds := loadLegacy(inetdConfs, xinetds)
		jobs, ds2 := job.CrossCheck(append(jobs, legacy...))
		return jobs, append(append(diags, ds...), ds2...)
	}

	sup, err := supervisor.New(supervisor.Config{Load: load, Log: log, Notify: true})
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
	log.Info("sockd starting", zap.Strings("jobs", dirs), zap.String("version", versionString()))
	return sup.Run(ctx)
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
