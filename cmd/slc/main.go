// Command slc is the command-line tool of the slc messaging library: it
// runs nodes that exchange typed messages over supervised connections.
//
// Each subcommand lives in its own file and adds itself to the root
// command from an init function with addCommand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/slc-go/slc"
)

// version is the tool's version; release builds set it with
// -ldflags "-X main.version=v1.2.3".
var version = ""

// exitInterrupted is the exit code after SIGINT or SIGTERM (128 + SIGINT).
const exitInterrupted = 130

// globals holds the settings every subcommand shares: the global flags and
// where output goes.
type globals struct {
	json     bool         // --json: JSON lines instead of text
	verbose  bool         // -v, or --log-level debug: debug logs and routine events
	logLevel logLevelFlag // --log-level: the library logs at this level and above to stderr

	compress compressFlag // --compress: every node's compressor (compress_flag.go)
	secure   secureFlags  // --identity, --authorized-keys, ...: secure mode (secure_flags.go)

	stdout, stderr io.Writer
}

// commands are the constructors of the subcommands, added by addCommand.
var commands []func(*globals) *cobra.Command

// addCommand registers a subcommand. Call it from an init function in the
// subcommand's file.
func addCommand(newCmd func(*globals) *cobra.Command) {
	commands = append(commands, newCmd)
}

// newPrinter returns a printer for the command's results, honouring --json.
func (g *globals) newPrinter() *printer { return newPrinter(g.stdout, g.json) }

// logger returns the logger nodes get with --log-level or -v, or nil: the
// library is silent by default.
func (g *globals) logger() *slog.Logger {
	level, ok := g.logLevel.level, g.logLevel.set
	if g.verbose {
		level, ok = slog.LevelDebug, true
	}
	if !ok {
		return nil
	}
	opts := &slog.HandlerOptions{Level: level}
	if g.json {
		return slog.New(slog.NewJSONHandler(g.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

// nodeOptions returns the options shared by every node a command starts,
// named name, followed by extra. Settings that apply to all nodes (the
// logger, and later connection security) are added here.
func (g *globals) nodeOptions(name string, extra ...slc.Option) []slc.Option {
	opts := []slc.Option{slc.WithName(name)}
	if l := g.logger(); l != nil {
		opts = append(opts, slc.WithLogger(l.With("node", name)))
	}
	opts = append(opts, g.compress.options()...)
	opts = append(opts, g.secure.options()...)
	return append(opts, extra...)
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "slc",
		Short: "Brokerless typed messaging with exactly-once delivery",
		Long: `slc runs nodes that exchange typed messages directly, without a broker.
Connections are supervised: they reconnect by themselves, and every message
is delivered exactly once, in order, and acknowledged.

Start with "slc demo" to see it happen.`,
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	pf := root.PersistentFlags()
	pf.BoolVar(&g.json, "json", false, "print events and results as JSON objects, one per line")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log the library's debug messages to stderr, and show routine events (--log-level debug)")
	pf.Var(&g.logLevel, "log-level", "log the library's messages at this `level` and above to stderr: debug, info, warn or error (default: none)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if !g.logLevel.set {
			return nil
		}
		if g.logLevel.level == slog.LevelDebug {
			g.verbose = true // --log-level debug is -v
		} else if g.verbose {
			return fmt.Errorf("-v means --log-level debug: it cannot be combined with --log-level %s", g.logLevel.String())
		}
		return nil
	}
	pf.Var(&g.compress, "compress", compressUsage)
	g.secure.addFlags(pf)
	for _, newCmd := range commands {
		root.AddCommand(newCmd(g))
	}
	return root
}

// logLevelFlag is the value of --log-level: one of the four slog levels,
// by name.
type logLevelFlag struct {
	level slog.Level
	set   bool
}

// logLevels are the names --log-level takes.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func (f *logLevelFlag) String() string {
	if !f.set {
		return ""
	}
	return strings.ToLower(f.level.String())
}

func (f *logLevelFlag) Set(s string) error {
	l, ok := logLevels[strings.ToLower(s)]
	if !ok {
		return errors.New("want debug, info, warn or error")
	}
	f.level, f.set = l, true
	return nil
}

func (f *logLevelFlag) Type() string { return "level" }

// buildVersion is the version set at link time, else the module version.
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit code. Errors are
// reported as one line on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(&globals{stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil:
		// Interrupted: whatever failed did so because of it.
		fmt.Fprintln(stderr, "slc: interrupted")
		return exitInterrupted
	default:
		fmt.Fprintf(stderr, "slc: %s\n", oneLine(err))
		return 1
	}
}

// oneLine renders err on a single line. Cobra's unknown-command error
// carries its suggestions on the lines that follow ("Did you mean
// this?"); they become a parenthesis.
func oneLine(err error) string {
	var lines []string
	for l := range strings.Lines(err.Error()) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return "unknown error"
	}
	msg := lines[0]
	rest := lines[1:]
	if len(rest) > 1 && rest[0] == "Did you mean this?" {
		quoted := make([]string, len(rest)-1)
		for i, s := range rest[1:] {
			quoted[i] = strconv.Quote(s)
		}
		return fmt.Sprintf("%s (did you mean %s?)", msg, strings.Join(quoted, " or "))
	}
	if len(rest) > 0 {
		msg += ": " + strings.Join(rest, "; ")
	}
	return msg
}
