package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// baseline is the system every ratio is taken against.
const baseline = "tcp"

// key names one measured quantity of a system.
type key struct {
	workload string
	size     int
	metric   string
}

// stat is one system's summary of one key over the runs.
type stat struct {
	byRun  map[int]float64
	cut    bool     // some run's rate was cut by the drain limit
	fails  []string // "run N: reason"
	median float64
	lo, hi float64
	ratio  float64 // median over runs of value / baseline's value in that run
	hasR   bool
}

func (s *stat) ok() bool { return len(s.fails) == 0 && len(s.byRun) > 0 }

// summary is everything the report shows.
type summary struct {
	st      *Settings
	systems []*System
	stats   map[string]map[key]*stat // system -> key -> stat
	files   []string
}

func summarize(st *Settings, obs []Obs) *summary {
	s := &summary{st: st, systems: st.Systems, stats: map[string]map[key]*stat{}}
	get := func(sys string, k key) *stat {
		m := s.stats[sys]
		if m == nil {
			m = map[key]*stat{}
			s.stats[sys] = m
		}
		x := m[k]
		if x == nil {
			x = &stat{byRun: map[int]float64{}}
			m[k] = x
		}
		return x
	}
	for _, o := range obs {
		if o.Err != "" {
			// A failed cell fails every metric of its workload and size.
			for _, metric := range metricsOf(o.Workload) {
				x := get(o.System, key{o.Workload, o.Size, metric})
				x.fails = append(x.fails, fmt.Sprintf("run %d: %s", o.Run, o.Err))
			}
			continue
		}
		x := get(o.System, key{o.Workload, o.Size, o.Metric})
		x.byRun[o.Run] = o.Value
		x.cut = x.cut || o.Note == noteCut
	}
	for _, m := range s.stats {
		for k, x := range m {
			if len(x.byRun) == 0 {
				continue
			}
			vals := values(x.byRun)
			x.median, x.lo, x.hi = median(vals), slices.Min(vals), slices.Max(vals)
			if k.metric == mAllocs {
				continue // the baseline allocates nothing
			}
			if r, ok := s.ratio(x, baseline, k); ok {
				x.ratio, x.hasR = r, true
			}
		}
	}
	return s
}

func metricsOf(workload string) []string {
	switch workload {
	case wOneWay, wFanout:
		return []string{mRate, mMBps, mAllocs}
	case wEcho:
		return []string{mP50, mP99}
	case wIdle:
		return []string{mMemPeer, mConnect}
	}
	return nil
}

func values(m map[int]float64) []float64 {
	v := make([]float64, 0, len(m))
	for _, x := range m {
		v = append(v, x)
	}
	sort.Float64s(v)
	return v
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	sort.Float64s(v)
	n := len(v)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// ratio returns the median over the runs of x's value divided by other's
// value of the same key in the same run.
func (s *summary) ratio(x *stat, other string, k key) (float64, bool) {
	y := s.stats[other][k]
	if y == nil || !x.ok() || !y.ok() {
		return 0, false
	}
	var rs []float64
	for run, v := range x.byRun {
		if b, ok := y.byRun[run]; ok && b > 0 {
			rs = append(rs, v/b)
		}
	}
	if len(rs) == 0 {
		return 0, false
	}
	return median(rs), true
}

func (s *summary) get(sys string, k key) *stat { return s.stats[sys][k] }

// Formatting.

func si(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func mbps(bytesPerSec float64) string { return fmt.Sprintf("%.0f MB/s", bytesPerSec/1e6) }

func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1fµs", float64(d)/1e3)
}

func bytesIEC(b float64) string {
	switch a := math.Abs(b); {
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func fmtValue(metric string, v float64) string {
	switch metric {
	case mRate:
		return si(v)
	case mMBps:
		return fmt.Sprintf("%.0f", v)
	case mAllocs:
		return fmt.Sprintf("%.1f", v)
	case mP50, mP99, mConnect:
		return dur(time.Duration(v))
	case mMemPeer:
		return bytesIEC(v)
	}
	return fmt.Sprint(v)
}

// column is one column of a report table.
type column struct {
	title string
	k     key
}

// section is one table of the report.
type section struct {
	title string
	note  string
	cols  []column
	// filter, when set, leaves out the systems without the workload.
	workload string
}

func (s *summary) sections() []section {
	var out []section
	st := s.st
	if st.Workloads[wOneWay] {
		sec := section{title: "One-way throughput, messages/s", workload: wOneWay,
			note: "The receiver checks the order and content of every message. slc cells end when the last message is acknowledged."}
		for _, size := range st.Sizes {
			sec.cols = append(sec.cols, column{sizeName(size), key{wOneWay, size, mRate}})
		}
		out = append(out, sec)
		if slices.Contains(st.Sizes, 1<<20) {
			out = append(out, section{title: "One-way throughput at 1 MiB, MB/s", workload: wOneWay,
				cols: []column{{"1 MiB", key{wOneWay, 1 << 20, mMBps}}}})
		}
		sec = section{title: "Allocations per message, whole process (sender and receiver)", workload: wOneWay}
		for _, size := range st.Sizes {
			sec.cols = append(sec.cols, column{sizeName(size), key{wOneWay, size, mAllocs}})
		}
		out = append(out, sec)
	}
	if st.Workloads[wFanout] {
		out = append(out, section{title: fmt.Sprintf("Fan-out, 1 sender to %d receivers, 64 B: messages/s sent (each to all %d)", fanoutReceivers, fanoutReceivers),
			workload: wFanout, cols: []column{{"msg/s", key{wFanout, smallSize, mRate}}}})
	}
	if st.Workloads[wEcho] {
		out = append(out, section{title: "Request/echo latency, 64 B", workload: wEcho,
			cols: []column{{"p50", key{wEcho, smallSize, mP50}}, {"p99", key{wEcho, smallSize, mP99}}}})
	}
	if st.Workloads[wIdle] {
		out = append(out, section{title: fmt.Sprintf("%d idle peers on one listener", st.IdlePeers), workload: wIdle,
			note: "Memory: the listener process's live heap and goroutine stacks per peer (the peers run in a child process). Time: until the listener has them all.",
			cols: []column{{"memory/peer", key{wIdle, st.IdlePeers, mMemPeer}}, {"connect all", key{wIdle, st.IdlePeers, mConnect}}}})
	}
	return out
}

func hasWorkload(sys *System, w string) bool {
	switch w {
	case wOneWay, wFanout:
		return sys.OneWay != nil
	case wEcho:
		return sys.Echo != nil
	case wIdle:
		return sys.Idle != nil
	}
	return false
}

// cellText renders a stat: median ×ratio [min..max], or FAILED with a
// footnote number.
func (s *summary) cellText(x *stat, metric string, note func(string) int) string {
	if x == nil {
		return "-"
	}
	if !x.ok() {
		return fmt.Sprintf("FAILED [%d]", note(strings.Join(x.fails, "; ")))
	}
	t := fmtValue(metric, x.median)
	if x.cut {
		t += "†"
	}
	if x.hasR {
		t += fmt.Sprintf(" ×%.2f", x.ratio)
	}
	if len(x.byRun) > 1 {
		t += fmt.Sprintf(" (%s..%s)", fmtValue(metric, x.lo), fmtValue(metric, x.hi))
	}
	return t
}

// table renders the sections as aligned text (md false) or Markdown.
func (s *summary) table(md bool) string {
	var b bytes.Buffer
	var notes []string
	note := func(n string) int {
		for i, x := range notes {
			if x == n {
				return i + 1
			}
		}
		notes = append(notes, n)
		return len(notes)
	}
	for _, sec := range s.sections() {
		if md {
			fmt.Fprintf(&b, "#### %s\n\n", sec.title)
			if sec.note != "" {
				fmt.Fprintf(&b, "%s\n\n", sec.note)
			}
			b.WriteString("| system | payload |")
			for _, c := range sec.cols {
				b.WriteString(" " + c.title + " |")
			}
			b.WriteString("\n|---|---|")
			for range sec.cols {
				b.WriteString("---:|")
			}
			b.WriteString("\n")
		} else {
			fmt.Fprintf(&b, "== %s\n", sec.title)
			if sec.note != "" {
				fmt.Fprintf(&b, "   %s\n", sec.note)
			}
		}
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		if !md {
			fmt.Fprint(tw, "system\tpayload")
			for _, c := range sec.cols {
				fmt.Fprintf(tw, "\t%s", c.title)
			}
			fmt.Fprintln(tw, "\t")
		}
		for _, sys := range s.systems {
			if !hasWorkload(sys, sec.workload) {
				continue
			}
			cells := []string{sys.Name, payloadName(sys.Typed)}
			for _, c := range sec.cols {
				cells = append(cells, s.cellText(s.get(sys.Name, c.k), c.k.metric, note))
			}
			if md {
				fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
			} else {
				fmt.Fprintf(tw, "%s\t\n", strings.Join(cells, "\t"))
			}
		}
		tw.Flush()
		b.WriteString("\n")
	}
	if s.anyCut() {
		fmt.Fprintf(&b, "† The sender queued messages much faster than the receivers took them (no flow control); the rate counts the messages that arrived, in order, by %v after the last send.\n\n", s.st.Drain)
	}
	if len(notes) > 0 {
		if md {
			b.WriteString("Failures:\n\n")
		} else {
			b.WriteString("Failures:\n")
		}
		for i, n := range notes {
			if md {
				fmt.Fprintf(&b, "%d. %s\n", i+1, n)
			} else {
				fmt.Fprintf(&b, "  [%d] %s\n", i+1, n)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (s *summary) anyCut() bool {
	for _, m := range s.stats {
		for _, x := range m {
			if x.cut && x.ok() {
				return true
			}
		}
	}
	return false
}

// text is the report printed at the end of a run.
func (s *summary) text(m machine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "slc benchmark: %s\n", m)
	fmt.Fprintf(&b, "medians of %d run(s) (min..max); ×N is the ratio to raw TCP (%q) in the same run, median over the runs\n\n", s.st.Runs, baseline)
	b.WriteString(s.table(false))
	b.WriteString(s.targetsText(false))
	return b.String()
}

// Targets.

type target struct {
	what      string
	sys, vs   string // vs "" for an absolute bound
	k         key
	atLeast   bool
	bound     float64
	boundText string
}

func (s *summary) targets() []target {
	st := s.st
	var ts []target
	if st.Workloads[wOneWay] && slices.Contains(st.Sizes, 64) {
		k := key{wOneWay, 64, mRate}
		ts = append(ts,
			target{"slc typed 64 B, acknowledged, vs NATS (typed)", "slc", "nats", k, true, 1.5, "≥ 1.5×"},
			target{"slc typed 64 B, acknowledged, vs protoactor remote (typed)", "slc", "protoactor", k, true, 1.5, "≥ 1.5×"},
			target{"slc SendRaw 64 B vs raw TCP", "slc-raw", "tcp", k, true, 0.35, "≥ 0.35×"})
	}
	if st.Workloads[wOneWay] && slices.Contains(st.Sizes, 1<<20) {
		k := key{wOneWay, 1 << 20, mRate}
		ts = append(ts,
			target{"slc typed 1 MiB vs raw TCP", "slc", "tcp", k, true, 0.8, "≥ 0.8×"},
			target{"slc SendRaw 1 MiB vs raw TCP", "slc-raw", "tcp", k, true, 0.8, "≥ 0.8×"},
			target{"slc-secure typed 1 MiB vs raw TCP + AES-GCM", "slc-secure", "tcp-aesgcm", k, true, 0.8, "≥ 0.8×"},
			target{"slc-secure SendRaw 1 MiB vs raw TCP + AES-GCM", "slc-secure-raw", "tcp-aesgcm", k, true, 0.8, "≥ 0.8×"})
	}
	if st.Workloads[wEcho] {
		ts = append(ts,
			target{"slc typed echo p50 vs raw TCP", "slc", "tcp", key{wEcho, smallSize, mP50}, false, 1.5, "≤ 1.5×"},
			target{"slc typed echo p99 vs raw TCP", "slc", "tcp", key{wEcho, smallSize, mP99}, false, 2, "≤ 2×"},
			target{"slc SendRaw echo p50 vs raw TCP", "slc-raw", "tcp", key{wEcho, smallSize, mP50}, false, 1.5, "≤ 1.5×"},
			target{"slc SendRaw echo p99 vs raw TCP", "slc-raw", "tcp", key{wEcho, smallSize, mP99}, false, 2, "≤ 2×"})
	}
	if st.Workloads[wIdle] {
		ts = append(ts,
			target{fmt.Sprintf("slc memory per idle peer (%d peers)", st.IdlePeers), "slc", "", key{wIdle, st.IdlePeers, mMemPeer}, false, 64 << 10, "≤ 64 KiB"},
			target{fmt.Sprintf("slc time to connect %d peers", st.IdlePeers), "slc", "", key{wIdle, st.IdlePeers, mConnect}, false, float64(3 * time.Second), "≤ 3 s"})
	}
	return ts
}

// evaluate returns a target's value as text and whether it passes; ok is
// false when it could not be measured.
func (s *summary) evaluate(t target) (val string, pass, ok bool) {
	x := s.get(t.sys, t.k)
	if x == nil {
		return "not measured", false, false
	}
	if !x.ok() {
		return "FAILED", false, true
	}
	var v float64
	if t.vs == "" {
		v = x.median
		val = fmtValue(t.k.metric, v)
	} else {
		r, good := s.ratio(x, t.vs, t.k)
		if !good {
			return "no baseline (" + t.vs + ")", false, false
		}
		v = r
		val = fmt.Sprintf("%.2f×", r)
	}
	if t.atLeast {
		return val, v >= t.bound, true
	}
	return val, v <= t.bound, true
}

func (s *summary) targetsText(md bool) string {
	ts := s.targets()
	if len(ts) == 0 {
		return ""
	}
	var b bytes.Buffer
	if md {
		b.WriteString("| target | bound | measured | |\n|---|---|---:|---|\n")
	} else {
		b.WriteString("== Targets (medians over the runs of per-run ratios)\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, t := range ts {
		val, pass, ok := s.evaluate(t)
		verdict := "FAIL"
		switch {
		case !ok:
			verdict = "-"
		case pass:
			verdict = "pass"
		}
		if md {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.what, t.boundText, val, verdict)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", t.what, t.boundText, val, verdict)
		}
	}
	tw.Flush()
	return b.String()
}

// Output files.

func (s *summary) write(dir string, m machine, obs []Obs) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	add := func(name string, data []byte) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		s.files = append(s.files, p)
		return nil
	}
	if err := add("runs.csv", obsCSV(obs)); err != nil {
		return err
	}
	if err := add("summary.csv", s.csv()); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "Machine: %s. Medians of %d run(s) (min..max); ×N is the ratio to raw TCP in the same run.\n\n", m, s.st.Runs)
	md.WriteString(s.table(true))
	md.WriteString("#### Targets\n\n")
	md.WriteString(s.targetsText(true))
	if err := add("summary.md", []byte(md.String())); err != nil {
		return err
	}
	png, err := s.chart(m)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return add("chart.png", png)
}

func obsCSV(obs []Obs) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"run", "system", "payload", "workload", "size", "metric", "value", "error"})
	for _, o := range obs {
		v := ""
		if o.Err == "" {
			v = strconv.FormatFloat(o.Value, 'g', 6, 64)
		}
		w.Write([]string{strconv.Itoa(o.Run), o.System, payloadName(o.Typed), o.Workload, strconv.Itoa(o.Size), o.Metric, v, o.Err})
	}
	w.Flush()
	return b.Bytes()
}

func (s *summary) csv() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"system", "payload", "workload", "size", "metric", "unit", "runs", "median", "min", "max", "ratio_to_tcp", "failed"})
	unit := map[string]string{mRate: "msg/s", mMBps: "MB/s", mAllocs: "allocs/msg", mP50: "ns", mP99: "ns", mMemPeer: "bytes", mConnect: "ns"}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, sys := range s.systems {
		m := s.stats[sys.Name]
		keys := make([]key, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			a, b := keys[i], keys[j]
			if a.workload != b.workload {
				return slices.Index(allWorkloads, a.workload) < slices.Index(allWorkloads, b.workload)
			}
			if a.size != b.size {
				return a.size < b.size
			}
			return a.metric < b.metric
		})
		for _, k := range keys {
			x := m[k]
			row := []string{sys.Name, payloadName(sys.Typed), k.workload, strconv.Itoa(k.size), k.metric, unit[k.metric], strconv.Itoa(len(x.byRun))}
			if x.ok() {
				r := ""
				if x.hasR {
					r = g(x.ratio)
				}
				row = append(row, g(x.median), g(x.lo), g(x.hi), r, "")
			} else {
				row = append(row, "", "", "", "", strings.Join(x.fails, "; "))
			}
			w.Write(row)
		}
	}
	w.Flush()
	return b.Bytes()
}

// The machine.

type machine struct {
	cpu    string
	cores  int
	goVer  string
	kernel string
	load   string // load averages during the run, once known
}

func (m machine) String() string {
	s := fmt.Sprintf("%s, %d cores, %s, Linux %s, %s/%s", m.cpu, m.cores, m.goVer, m.kernel, runtime.GOOS, runtime.GOARCH)
	if m.load != "" {
		s += "; " + m.load
	}
	return s
}

// loadAvg returns the 1-minute load average: how busy the machine is
// besides this run.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func describeMachine() machine {
	m := machine{cpu: "unknown CPU", cores: runtime.NumCPU(), goVer: runtime.Version(), kernel: "?"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}
