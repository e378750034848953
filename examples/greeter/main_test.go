package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/perfgate/perfgate/examples/greeter/greeterpb"
)

func TestExtraUnitsAveragesToTheRequestedPercentage(t *testing.T) {
	cases := []struct {
		pct   float64
		units int
		calls int
		want  int // total extra units over all calls
	}{
		{pct: 5, units: 1, calls: 1000, want: 50},     // one extra whole sort every 20th call
		{pct: 30, units: 12, calls: 1000, want: 3600}, // 3.6 extra SHA-256 rounds per call
		{pct: 0.1, units: 64, calls: 10_000, want: 640},
		{pct: 250, units: 64, calls: 10, want: 1600},
		{pct: 33.3333, units: 3, calls: 1_000_000, want: 999_999},
	}
	for _, c := range cases {
		reg := &regression{function: fnChecksumPayload, cpuPct: c.pct}
		total, most := 0, 0
		for range c.calls {
			extra := reg.extraUnits(fnChecksumPayload, c.units)
			total += extra
			most = max(most, extra)
		}
		if total != c.want {
			t.Errorf("pct=%g units=%d calls=%d: total extra %d, want %d", c.pct, c.units, c.calls, total, c.want)
		}
		perCall := float64(c.units) * c.pct / 100
		if float64(most) > perCall+1 {
			t.Errorf("pct=%g units=%d: one call did %d extra units, more than ceil(%g)", c.pct, c.units, most, perCall)
		}
	}
}

func TestExtraUnitsOnlyForTheTargetedFunction(t *testing.T) {
	reg := &regression{function: fnSortRecords, cpuPct: 100}
	if got := reg.extraUnits(fnChecksumPayload, 12); got != 0 {
		t.Errorf("untargeted stage got %d extra units", got)
	}
	if got := reg.extraUnits(fnSortRecords, 1); got != 1 {
		t.Errorf("targeted stage at +100%% got %d extra units, want 1", got)
	}
	var none *regression
	if got := none.extraUnits(fnSortRecords, 1); got != 0 {
		t.Errorf("nil regression got %d extra units", got)
	}
}

func TestSleepOnTheRequestedShareOfCalls(t *testing.T) {
	for _, pct := range []float64{10, 33.3, 100} {
		r := &regression{sleep: 2 * time.Millisecond, sleepPct: pct}
		calls, slept := 10_000, 0
		for range calls {
			if d := r.sleepThisCall(); d != 0 {
				if d != r.sleep {
					t.Fatalf("pct %g: slept %s, want %s", pct, d, r.sleep)
				}
				slept++
			}
		}
		if want := int(float64(calls) * pct / 100); slept < want-1 || slept > want+1 {
			t.Errorf("pct %g: %d of %d calls slept, want %d", pct, slept, calls, want)
		}
	}
	if d := (&regression{sleep: time.Millisecond, sleepPct: 0}).sleepThisCall(); d != 0 {
		t.Errorf("sleep pct 0 slept %s", d)
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	env := map[string]string{
		"GREETER_REGRESS_FUNCTION":    "sortRecords",
		"GREETER_REGRESS_CPU_PCT":     "not-a-number", // ignored: the flag is given
		"GREETER_REGRESS_ALLOC_BYTES": "4096",
		"GREETER_REGRESS_SLEEP":       "2ms",
	}
	cfg, err := parseConfig([]string{"-regress-cpu-pct", "12.5"}, mapEnv(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.regression
	if r.function != fnSortRecords || r.cpuPct != 12.5 || r.allocBytes != 4096 || r.sleep != 2*time.Millisecond {
		t.Errorf("got %s", r)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, mapEnv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.grpcAddr != "127.0.0.1:50051" || cfg.pprofAddr != "127.0.0.1:6060" {
		t.Errorf("addresses %q %q", cfg.grpcAddr, cfg.pprofAddr)
	}
	if cfg.regression.function != fnChecksumPayload || cfg.regression.active() {
		t.Errorf("regression %s", cfg.regression)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"-regress-function", "parseJSON"}, want: "valid: buildRecords, checksumPayload, encodePayload, sortRecords"},
		{env: map[string]string{"GREETER_REGRESS_FUNCTION": "nope"}, want: `unknown regress function "nope"`},
		{env: map[string]string{"GREETER_REGRESS_CPU_PCT": "ten"}, want: "GREETER_REGRESS_CPU_PCT"},
		{args: []string{"-regress-cpu-pct", "-1"}, want: "regress-cpu-pct"},
		{args: []string{"-regress-alloc-bytes", "-5"}, want: "regress-alloc-bytes"},
		{args: []string{"-regress-sleep", "soon"}, want: "regress-sleep"},
		{args: []string{"-regress-sleep-pct", "101"}, want: "regress-sleep-pct"},
		{env: map[string]string{"GREETER_REGRESS_SLEEP_PCT": "-1"}, want: "regress-sleep-pct"},
		{args: []string{"extra"}, want: "unexpected arguments"},
	}
	for _, c := range cases {
		_, err := parseConfig(c.args, mapEnv(c.env), io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("args %q env %v: got %v, want a usage error containing %q", c.args, c.env, err, c.want)
		}
	}
}

func TestMainPrefixedFunctionNameAccepted(t *testing.T) {
	if fn, err := parseHotFunction("main.encodePayload"); err != nil || fn != fnEncodePayload {
		t.Errorf("got %v, %v", fn, err)
	}
}

func TestCPURegressionLeavesTheReplyUnchanged(t *testing.T) {
	ctx := context.Background()
	req := &pb.HelloRequest{Name: "x", Items: 64}
	plain, err := (&greeterServer{reg: &regression{}}).SayHello(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for fn := range hotFunctionNames {
		f, _ := parseHotFunction(fn)
		slow := &greeterServer{reg: &regression{function: f, cpuPct: 170, allocBytes: 10_000}}
		for range 3 {
			got, err := slow.SayHello(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if got.GetChecksum() != plain.GetChecksum() || got.GetItems() != 64 {
				t.Errorf("%s: reply %v differs from %v", fn, got, plain)
			}
		}
	}
	if len(plain.GetChecksum()) != 64 || plain.GetMessage() != "Hello, x" {
		t.Errorf("reply %v", plain)
	}
}

func TestServesGreeterAndHealthOverTCP(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server, _ := newGRPCServer(&regression{})
	go server.Serve(lis)
	defer server.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	reply, err := pb.NewGreeterClient(conn).SayHello(ctx, &pb.HelloRequest{Name: "ci"})
	if err != nil || reply.GetItems() != defaultItems {
		t.Fatalf("SayHello: %v %v", reply, err)
	}
	_, err = pb.NewGreeterClient(conn).SayHello(ctx, &pb.HelloRequest{Items: -1})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("items=-1: got %v, want InvalidArgument", err)
	}
	for _, service := range []string{"", "greeter.Greeter"} {
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v", service, resp, err)
		}
	}
	if pb.Greeter_SayHello_FullMethodName != "/greeter.Greeter/SayHello" {
		t.Errorf("method name %q", pb.Greeter_SayHello_FullMethodName)
	}
}

func mapEnv(env map[string]string) func(string) string {
	return func(key string) string { return env[key] }
}

// BenchmarkStages times each stage at its normal work and with +30 % of
// regression work; the ratio of the two shows how exact the knob is.
func BenchmarkStages(b *testing.B) {
	records := buildRecords("x", defaultItems, nil)
	sorted := sortRecords(records, nil)
	payload := encodePayload(sorted, nil)
	stages := map[hotFunction]func(reg *regression){
		fnBuildRecords:    func(reg *regression) { buildRecords("x", defaultItems, reg) },
		fnSortRecords:     func(reg *regression) { sortRecords(records, reg) },
		fnEncodePayload:   func(reg *regression) { encodePayload(sorted, reg) },
		fnChecksumPayload: func(reg *regression) { checksumPayload(payload, reg) },
	}
	for name, fn := range hotFunctionNames {
		for _, pct := range []float64{0, 30} {
			b.Run(fmt.Sprintf("%s/+%g%%", name, pct), func(b *testing.B) {
				reg := &regression{function: fn, cpuPct: pct}
				for range b.N {
					stages[fn](reg)
				}
			})
		}
	}
	b.Run("SayHello", func(b *testing.B) {
		s := &greeterServer{reg: &regression{}}
		for range b.N {
			s.SayHello(context.Background(), &pb.HelloRequest{Name: "x", Items: defaultItems})
		}
	})
}
