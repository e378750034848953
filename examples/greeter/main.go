// Command greeter is the gRPC service perfgate measures in its tests, demo
// and benchmarks: greeter.Greeter/SayHello does real, profile-visible CPU work,
// net/http/pprof serves CPU profiles, and regression knobs make it slower on
// purpose. See README.md.
package main

import (
	"context"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/perfgate/perfgate/examples/greeter/greeterpb"
)

const (
	serviceName      = "greeter.Greeter"
	gracefulDeadline = 2 * time.Second
	maxAllocBytes    = 1 << 30
	maxCPUPct        = 100_000
)

type config struct {
	grpcAddr   string
	pprofAddr  string
	regression *regression
	rates      profilingRates
}

// usageError is a bad flag or environment value: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "greeter: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "greeter: %v\n", err)
		os.Exit(1)
	}
}

// parseConfig reads flags, then fills each regression knob whose flag was not
// given from its environment variable (so a flag wins over the environment).
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("greeter", flag.ContinueOnError)
	fs.SetOutput(out)
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:50051", "gRPC listen address (port 0 picks a free port)")
	pprofAddr := fs.String("pprof-addr", "127.0.0.1:6060", "net/http/pprof listen address; empty disables it")
	function := fs.String("regress-function", "checksumPayload",
		"stage that -regress-cpu-pct slows down: "+validFunctionNames+" [env GREETER_REGRESS_FUNCTION]")
	cpuPct := fs.Float64("regress-cpu-pct", 0,
		"extra CPU work in that stage, as a percentage of its normal work [env GREETER_REGRESS_CPU_PCT]")
	allocBytes := fs.Int("regress-alloc-bytes", 0, "extra heap bytes allocated per request [env GREETER_REGRESS_ALLOC_BYTES]")
	sleep := fs.Duration("regress-sleep", 0, "extra sleep per request, e.g. 2ms [env GREETER_REGRESS_SLEEP]")
	layers := addLayerFlags(fs)
	syscalls := addSyscallFlags(fs)
	sleepPct := fs.Float64("regress-sleep-pct", 100,
		"percentage of calls that do the -regress-sleep, spread evenly [env GREETER_REGRESS_SLEEP_PCT]")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return config{}, usageError{fmt.Sprintf("unexpected arguments: %q", fs.Args())}
	}

	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fromEnv := func(flagName, envName string, apply func(string) error) error {
		value := getenv(envName)
		if given[flagName] || value == "" {
			return nil
		}
		if err := apply(value); err != nil {
			return usageError{fmt.Sprintf("%s=%q: %v", envName, value, err)}
		}
		return nil
	}
	var layerErrs []error
	for _, setter := range append(layers.envSetters(), syscalls.envSetters()...) {
		layerErrs = append(layerErrs, fromEnv(setter.flag, setter.env, setter.apply))
	}
	envErr := errors.Join(
		fromEnv("regress-function", "GREETER_REGRESS_FUNCTION", func(v string) error { *function = v; return nil }),
		fromEnv("regress-cpu-pct", "GREETER_REGRESS_CPU_PCT", func(v string) (err error) {
			*cpuPct, err = strconv.ParseFloat(v, 64)
			return err
		}),
		fromEnv("regress-alloc-bytes", "GREETER_REGRESS_ALLOC_BYTES", func(v string) (err error) {
			*allocBytes, err = strconv.Atoi(v)
			return err
		}),
		fromEnv("regress-sleep", "GREETER_REGRESS_SLEEP", func(v string) (err error) {
			*sleep, err = time.ParseDuration(v)
			return err
		}),
		errors.Join(layerErrs...),
		fromEnv("regress-sleep-pct", "GREETER_REGRESS_SLEEP_PCT", func(v string) (err error) {
			*sleepPct, err = strconv.ParseFloat(v, 64)
			return err
		}),
	)
	if envErr != nil {
		return config{}, usageError{envErr.Error()}
	}

	fn, err := parseHotFunction(*function)
	if err != nil {
		return config{}, usageError{err.Error()}
	}
	switch {
	case math.IsNaN(*cpuPct) || *cpuPct < 0 || *cpuPct > maxCPUPct:
		return config{}, usageError{fmt.Sprintf("regress-cpu-pct must be between 0 and %d, got %g", maxCPUPct, *cpuPct)}
	case *allocBytes < 0 || *allocBytes > maxAllocBytes:
		return config{}, usageError{fmt.Sprintf("regress-alloc-bytes must be between 0 and %d, got %d", maxAllocBytes, *allocBytes)}
	case *sleep < 0:
		return config{}, usageError{fmt.Sprintf("regress-sleep must not be negative, got %s", *sleep)}
	case math.IsNaN(*sleepPct) || *sleepPct < 0 || *sleepPct > 100:
		return config{}, usageError{fmt.Sprintf("regress-sleep-pct must be between 0 and 100, got %g", *sleepPct)}
	}
	if err := errors.Join(layers.validate(), syscalls.validate()); err != nil {
		return config{}, usageError{err.Error()}
	}
	return config{
		grpcAddr:  *grpcAddr,
		pprofAddr: *pprofAddr,
		regression: &regression{function: fn, cpuPct: *cpuPct, allocBytes: *allocBytes, sleep: *sleep,
			sleepPct: *sleepPct, lockHold: *layers.lockHold, lockEvery: *layers.lockEvery,
			leakEvery: *layers.leakEvery, syscalls: syscallKnob{read: *syscalls.read, pct: *syscalls.pct}},
		rates: profilingRates{mutexFraction: *layers.mutexFraction, blockRate: *layers.blockRate},
	}, nil
}

// run serves until ctx is done, then stops gracefully (or hard after gracefulDeadline).
func run(ctx context.Context, cfg config, log io.Writer) error {
	grpcLis, err := net.Listen("tcp", cfg.grpcAddr)
	if err != nil {
		return fmt.Errorf("grpc listen: %w", err)
	}
	var pprofServer *http.Server
	var pprofLis net.Listener
	pprofShown := "off"
	if cfg.pprofAddr != "" {
		pprofLis, err = net.Listen("tcp", cfg.pprofAddr)
		if err != nil {
			grpcLis.Close()
			return fmt.Errorf("pprof listen: %w", err)
		}
		pprofServer = newPprofServer()
		pprofShown = pprofLis.Addr().String()
	}

	cfg.rates.apply()
	grpcServer, healthServer := newGRPCServer(cfg.regression)
	serveErr := make(chan error, 2)
	go func() { serveErr <- grpcServer.Serve(grpcLis) }()
	if pprofServer != nil {
		go func() {
			if err := pprofServer.Serve(pprofLis); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("pprof: %w", err)
			}
		}()
	}
	if cfg.regression.active() {
		fmt.Fprintf(log, "greeter: regression %s\n", cfg.regression)
	}
	fmt.Fprintf(log, "greeter: serving grpc=%s pprof=%s\n", grpcLis.Addr(), pprofShown)

	var failure error
	select {
	case <-ctx.Done():
	case failure = <-serveErr:
	}
	healthServer.Shutdown()
	stopGracefully(grpcServer, gracefulDeadline)
	if pprofServer != nil {
		pprofServer.Close()
	}
	return failure
}

func newGRPCServer(reg *regression) (*grpc.Server, *health.Server) {
	server := grpc.NewServer()
	pb.RegisterGreeterServer(server, &greeterServer{reg: reg})
	healthServer := health.NewServer()
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthServer.SetServingStatus(serviceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, healthServer)
	reflection.Register(server)
	return server, healthServer
}

// newPprofServer serves net/http/pprof on its own mux. No WriteTimeout:
// /debug/pprof/profile?seconds=N answers only after N seconds.
func newPprofServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler()) // memstats: GC cycles and pauses for tools without GODEBUG=gctrace
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

func stopGracefully(server *grpc.Server, deadline time.Duration) {
	done := make(chan struct{})
	go func() {
		server.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(deadline):
		server.Stop()
		<-done
	}
}

type greeterServer struct {
	pb.UnimplementedGreeterServer
	reg *regression
}

func (s *greeterServer) SayHello(ctx context.Context, req *pb.HelloRequest) (*pb.HelloReply, error) {
	items := int(req.GetItems())
	if items == 0 {
		items = defaultItems
	}
	if items < 0 || items > maxItems {
		return nil, status.Errorf(codes.InvalidArgument, "items must be between 0 and %d, got %d", maxItems, items)
	}
	ballast := allocBallast(s.reg.allocBytes)
	maybeLeak(s.reg, req.GetName())
	records := buildRecords(req.GetName(), items, s.reg)
	sorted := sortRecords(records, s.reg)
	payload := encodePayload(sorted, s.reg)
	checksum := checksumPayload(payload, s.reg)
	if err := blockingRead(s.reg); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if err := sleepFor(ctx, s.reg.sleepThisCall()); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	runtime.KeepAlive(ballast)
	return &pb.HelloReply{
		Message:  greetingPrefix(s.reg) + req.GetName(),
		Checksum: checksum,
		Items:    int32(items),
	}, nil
}

func sleepFor(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
