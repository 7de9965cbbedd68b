//go:build linux && cgo

package spawn

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockd/sockd/job"
)

// TestAsync runs the start tests again with asynchronous starts: the same
// child code, but on a slot's stack and copies, with the caller's fds
// closed as soon as the start returns (runReport and runOutput close the
// report pipe right after it).
func TestAsync(t *testing.T) {
	asyncStarts = true
	defer func() { asyncStarts = false }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"ArgvAndEnv", TestArgvAndEnv},
		{"ListenPIDOff", TestListenPIDOff},
		{"Globbing", TestGlobbing},
		{"FdLayout", TestFdLayout},
		{"SharedTableManyFds", TestSharedTableManyFds},
		{"SignalsReset", TestSignalsReset},
		{"ProcessGroupAndSession", TestProcessGroupAndSession},
		{"UmaskNiceLimits", TestUmaskNiceLimits},
		{"WorkingDirectory", TestWorkingDirectory},
		{"Credentials", TestCredentials},
		{"RootDirectory", TestRootDirectory},
	} {
		t.Run(tc.name, tc.f)
	}
	if n := asyncStuck(); n != 0 {
		t.Errorf("%d slots still held after every child was reaped", n)
	}
}

// TestAsyncStartErrors: beyond execve (TestStartErrors runs both modes), a
// chdir failure is reported by Reap too; a program that itself exits 127
// is not a start failure.
func TestAsyncStartErrors(t *testing.T) {
	dir := t.TempDir()
	null := devNull(t)
	// A chdir failure is a start failure too (not only execve).
	j := programJob(t, "true")
	j.WorkingDirectory = filepath.Join(dir, "nodir")
	if err := startFailure(t, newTemplate(t, j, Options{}), []int{null, null, null}, true); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing WorkingDirectory: StartErr %v; want chdir ENOENT", err)
	}

	sh := programJob(t, "sh")
	sh.Argv = append(sh.Argv, "-c", "exit 127")
	p, err := newTemplate(t, sh, Options{}).StartAsync([]int{null, null, null}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := wait(t, p); st.Code != 127 || st.StartErr != nil {
		t.Errorf("sh -c 'exit 127': status %v, StartErr %v; want exit 127 and no start error", st, st.StartErr)
	}
	if z := zombies(t); len(z) > 0 {
		t.Errorf("zombies left: %v", z)
	}
	if n := asyncStuck(); n != 0 {
		t.Errorf("%d slots still held after every child was reaped", n)
	}
}

// TestAsyncConcurrentStarts: many asynchronous starts from several
// goroutines, a quarter of them failing to exec, on both fd table paths;
// every child gets its own environment and fd, every failure is reported,
// and no slot stays held.
func TestAsyncConcurrentStarts(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			if shared {
				old := smallTable
				smallTable = 0
				defer func() { smallTable = old }()
			} else {
				lowSlots.disabled.Store(true)
				defer lowSlots.disabled.Store(false)
			}
			testAsyncConcurrent(t)
		})
	}
}

func testAsyncConcurrent(t *testing.T) {
	const workers, total = 8, 400
	null := devNull(t)
	echo := newTemplate(t, programJob(t, "sh", "-c", `echo "$I"`), Options{})
	missing := filepath.Join(t.TempDir(), "missing")
	bad := newTemplate(t, &job.Job{Label: "test.missing", Path: missing, Argv: []string{missing}}, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, total)
	next := make(chan int, total)
	for i := range total {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fail := i%4 == 3
				tpl := echo
				if fail {
					tpl = bad
				}
				o := newOutPipe(t)
				p, err := tpl.StartAsync([]int{null, o.w, null}, []string{"I=" + strconv.Itoa(i)})
				if err != nil {
					errs <- fmt.Errorf("start %d: %v", i, err)
					continue
				}
				out := string(o.output(t)) // closes our end at once
				st, err := waitExit(p, 30*time.Second)
				switch {
				case err != nil:
					errs <- fmt.Errorf("start %d: %v", i, err)
				case fail && (st.StartErr == nil || !errors.Is(st.StartErr, unix.ENOENT)):
					errs <- fmt.Errorf("start %d: %v, StartErr %v; want an execve ENOENT", i, st, st.StartErr)
				case !fail && (!st.Success() || st.StartErr != nil || out != strconv.Itoa(i)+"\n"):
					errs <- fmt.Errorf("start %d: %v, StartErr %v, output %q; want %q", i, st, st.StartErr, out, strconv.Itoa(i)+"\n")
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 10 {
			t.Error(err)
		}
	}
	if z := zombies(t); len(z) > 0 {
		t.Errorf("zombies left: %v", z)
	}
	if n := asyncStuck(); n != 0 {
		t.Errorf("%d slots still held after every child was reaped", n)
	}
}
