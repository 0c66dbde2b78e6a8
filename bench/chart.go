package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// chart draws the summary as a PNG: throughput relative to raw TCP by
// message size, fan-out, echo latency and memory per idle peer. A missing
// bar is a FAILED or unmeasured cell.
func (s *summary) chart(m machine) ([]byte, error) {
	var panels []*plot.Plot
	add := func(p *plot.Plot, err error) error {
		if err != nil {
			return err
		}
		if p != nil {
			panels = append(panels, p)
		}
		return nil
	}
	st := s.st
	if st.Workloads[wOneWay] {
		var series []barSeries
		for _, size := range st.Sizes {
			series = append(series, barSeries{sizeName(size), key{wOneWay, size, mRate}, ratioOf})
		}
		if err := add(s.bars("One-way throughput, × raw TCP in the same run (higher is better)", "× raw TCP", wOneWay, series)); err != nil {
			return nil, err
		}
	}
	if st.Workloads[wFanout] {
		if err := add(s.bars(fmt.Sprintf("Fan-out 1 → %d, 64 B, × raw TCP (higher is better)", fanoutReceivers), "× raw TCP", wFanout,
			[]barSeries{{"64 B", key{wFanout, smallSize, mRate}, ratioOf}})); err != nil {
			return nil, err
		}
	}
	if st.Workloads[wEcho] {
		us := func(x *stat) float64 { return x.median / float64(time.Microsecond) }
		if err := add(s.bars("Request/echo latency, 64 B, µs (lower is better)", "µs", wEcho,
			[]barSeries{{"p50", key{wEcho, smallSize, mP50}, us}, {"p99", key{wEcho, smallSize, mP99}, us}})); err != nil {
			return nil, err
		}
	}
	if st.Workloads[wIdle] {
		kib := func(x *stat) float64 { return x.median / 1024 }
		if err := add(s.bars(fmt.Sprintf("Memory per idle peer, %d peers, KiB (lower is better)", st.IdlePeers), "KiB", wIdle,
			[]barSeries{{"memory/peer", key{wIdle, st.IdlePeers, mMemPeer}, kib}})); err != nil {
			return nil, err
		}
	}
	if len(panels) == 0 {
		return nil, fmt.Errorf("nothing to draw")
	}
	cols := min(2, len(panels))
	rows := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range panels {
		grid[i/cols][i%cols] = p
	}
	w, h := vg.Length(cols)*9*vg.Inch, vg.Length(rows)*5*vg.Inch+0.4*vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	// Title strip.
	title := fmt.Sprintf("slc benchmark, medians of %d run(s): %s. No bar: FAILED (see the table).", st.Runs, m)
	dc.FillText(draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 13),
		XAlign: draw.XCenter, YAlign: draw.YCenter, Handler: plot.DefaultTextHandler},
		vg.Point{X: w / 2, Y: h - 0.2*vg.Inch}, title)
	body := draw.Crop(dc, 0, 0, 0, -0.4*vg.Inch)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: 0.3 * vg.Inch, PadY: 0.3 * vg.Inch,
		PadTop: 0.1 * vg.Inch, PadBottom: 0.1 * vg.Inch, PadLeft: 0.1 * vg.Inch, PadRight: 0.2 * vg.Inch}
	canvases := plot.Align(grid, tiles, body)
	for r := range grid {
		for c, p := range grid[r] {
			if p != nil {
				p.Draw(canvases[r][c])
			}
		}
	}
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type barSeries struct {
	name  string
	k     key
	value func(*stat) float64
}

func ratioOf(x *stat) float64 {
	if !x.hasR {
		return 0
	}
	return x.ratio
}

// bars draws one grouped bar chart: a group per system, a bar per series.
func (s *summary) bars(title, ylabel, workload string, series []barSeries) (*plot.Plot, error) {
	var names []string
	var syss []*System
	for _, sys := range s.systems {
		if hasWorkload(sys, workload) {
			names = append(names, sys.Name)
			syss = append(syss, sys)
		}
	}
	if len(syss) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 5
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	width := vg.Length(min(18, 240/(len(syss)*len(series))))
	for i, ser := range series {
		vals := make(plotter.Values, len(syss))
		for j, sys := range syss {
			if x := s.get(sys.Name, ser.k); x != nil && x.ok() {
				vals[j] = ser.value(x)
			}
		}
		bc, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return nil, err
		}
		bc.LineStyle.Width = 0
		bc.Color = plotutil.Color(i)
		bc.Offset = vg.Length(float64(i)-float64(len(series)-1)/2) * width
		p.Add(bc)
		if len(series) > 1 {
			p.Legend.Add(ser.name, bc)
		}
	}
	return p, nil
}
