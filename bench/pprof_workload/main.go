// Command pprofworkload type-checks Go standard library packages from source
// over and over while runtime/pprof records a CPU profile at a raised rate. The
// parser and type checker recurse deeply through thousands of functions, so the
// profile has the shape of a real large service's: many distinct stacks, inlined
// frames, recursion. bench/bench_pprof.py uses it as the real input that its
// large benchmark profile is built from.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

func main() {
	out := flag.String("o", "workload.pb.gz", "CPU profile output file")
	seconds := flag.Float64("seconds", 10, "how long to keep type-checking")
	hz := flag.Int("hz", 500, "CPU profiling rate (samples per second of CPU)")
	flag.Parse()

	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Setting the rate first makes StartCPUProfile keep it (it prints a harmless warning).
	runtime.SetCPUProfileRate(*hz)
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pkgs := []string{"net/http", "go/types", "encoding/json", "text/template", "crypto/tls", "compress/flate"}
	sources := map[string]map[string][]byte{}
	for _, pkg := range pkgs {
		files, err := readPackage(pkg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sources[pkg] = files
	}
	// One importer for the whole run: it caches the dependencies it has type-checked, so the
	// loop below is parsing and type-checking in memory, not file I/O.
	imports := importer.ForCompiler(token.NewFileSet(), "source", nil)
	deadline := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	checked := 0
	for time.Now().Before(deadline) {
		for _, pkg := range pkgs {
			if err := check(pkg, sources[pkg], imports); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			checked++
			if !time.Now().Before(deadline) {
				break
			}
		}
	}
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("type-checked %d packages\n", checked)
}

// readPackage reads the non-test Go files of one standard library package.
func readPackage(path string) (map[string][]byte, error) {
	dir := filepath.Join(runtime.GOROOT(), "src", path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		files[name] = src
	}
	return files, nil
}

// check parses one package from memory and type-checks it (type errors from
// build-tag variants are ignored: the work is the point, not the result).
func check(path string, sources map[string][]byte, imports types.Importer) error {
	fset := token.NewFileSet()
	var files []*ast.File
	for name, src := range sources {
		file, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			return err
		}
		files = append(files, file)
	}
	conf := types.Config{Importer: imports, Error: func(error) {}}
	_, _ = conf.Check(path, fset, files, nil)
	return nil
}
