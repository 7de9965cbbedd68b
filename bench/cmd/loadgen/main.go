// Command loadgen drives one loopback server with one workload of the
// bench/loadgen package and prints a table (and optionally JSON).
//
//	go run ./bench/cmd/loadgen -w conn -addr 127.0.0.1:7001 -c 8 -d 5s
//	go run ./bench/cmd/loadgen -w keepalive -addr 127.0.0.1:7002 -rate 500 -d 10s -json out.json
//	go run ./bench/cmd/loadgen -w bulk -addr 127.0.0.1:7003 -d 3s
//	go run ./bench/cmd/loadgen -sink 127.0.0.1:7003   # serve the bulk sink side
//
// Only loopback addresses and Unix socket paths are accepted.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sockd/sockd/bench/loadgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg      loadgen.Config
		workload = flag.String("w", "conn", "workload: "+workloadNames())
		request  = flag.String("req", "ping", "request line (a newline is appended)")
		jsonOut  = flag.String("json", "", "also write JSON results to this file (- for stdout)")
		sink     = flag.String("sink", "", "instead of generating load, serve the bulk sink on this loopback address")
	)
	flag.StringVar(&cfg.Network, "net", "", "network: tcp, tcp4, tcp6, udp, unix (default tcp; udp for -w udp)")
	flag.StringVar(&cfg.Addr, "addr", "", "target: loopback ip:port or Unix socket path")
	flag.StringVar(&cfg.Label, "label", "", "label for the result")
	flag.IntVar(&cfg.Concurrency, "c", 0, "closed loop: workers; open loop: most requests in flight")
	flag.Float64Var(&cfg.Rate, "rate", 0, "open-loop arrival rate in requests/s (0: closed loop)")
	flag.DurationVar(&cfg.Duration, "d", 0, "duration bound")
	flag.Int64Var(&cfg.Count, "n", 0, "request count bound")
	flag.DurationVar(&cfg.Timeout, "timeout", loadgen.DefaultTimeout, "per-request timeout")
	flag.IntVar(&cfg.MinReply, "min-reply", 1, "conn/first: fewest reply bytes that count as success")
	flag.Int64Var(&cfg.Bytes, "bytes", 0, "bulk: bytes per connection bound")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *sink != "" {
		return serveSink(ctx, *sink)
	}
	cfg.Workload = loadgen.Workload(*workload)
	cfg.Request = []byte(*request + "\n")
	if cfg.Workload == loadgen.FirstConn {
		fmt.Fprintln(os.Stderr, "loadgen: note: -w first without a restart hook measures connect -> first byte of a running service")
	}
	if cfg.Duration == 0 && cfg.Count == 0 && cfg.Bytes == 0 {
		cfg.Duration = 5 * time.Second
	}
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rs := []*loadgen.Result{res}
	if err := loadgen.WriteTable(os.Stdout, rs); err != nil {
		return err
	}
	for k, msg := range res.ErrorExamples {
		fmt.Printf("first %s error: %s\n", k, msg)
	}
	switch *jsonOut {
	case "":
	case "-":
		return loadgen.WriteJSON(os.Stdout, rs)
	default:
		f, err := os.Create(*jsonOut)
		if err != nil {
			return fmt.Errorf("json output: %w", err)
		}
		if err := loadgen.WriteJSON(f, rs); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return nil
}

func serveSink(ctx context.Context, addr string) error {
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	if err := loadgen.CheckLoopback(network, addr); err != nil {
		return err
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	fmt.Fprintf(os.Stderr, "loadgen: bulk sink on %s\n", l.Addr())
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	err = loadgen.ServeSink(l)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func workloadNames() string {
	var s []string
	for _, w := range loadgen.Workloads {
		s = append(s, string(w))
	}
	return strings.Join(s, ", ")
}
