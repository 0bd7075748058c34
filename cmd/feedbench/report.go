package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// figure is one measured value.
type figure struct {
	key   string // snake_case, the JSON key
	value float64
	unit  string
}

// result is what one run of a scenario measured, in the order measured.
type result struct {
	figures []figure
}

// add appends a figure; a key added twice keeps its last value.
func (r *result) add(key string, value float64, unit string) {
	for i := range r.figures {
		if r.figures[i].key == key {
			r.figures[i].value = value
			return
		}
	}
	r.figures = append(r.figures, figure{key, value, unit})
}

// addMs adds a duration in milliseconds.
func (r *result) addMs(key string, d time.Duration) {
	r.add(key, float64(d)/float64(time.Millisecond), "ms")
}

// get returns the value of key, if present.
func (r *result) get(key string) (float64, bool) {
	for _, f := range r.figures {
		if f.key == key {
			return f.value, true
		}
	}
	return 0, false
}

// summary is one figure over several runs.
type summary struct {
	key, unit        string
	median, min, max float64
}

// summarize gives the median, min and max of each figure over runs. A
// figure missing from a run (an error status that run did not see) counts
// as 0 there.
func summarize(runs []*result) []summary {
	var out []summary
	seen := map[string]bool{}
	for _, r := range runs {
		for _, f := range r.figures {
			if seen[f.key] {
				continue
			}
			seen[f.key] = true
			vals := make([]float64, len(runs))
			for i, r2 := range runs {
				vals[i], _ = r2.get(f.key)
			}
			slices.Sort(vals)
			out = append(out, summary{key: f.key, unit: f.unit, median: median(vals), min: vals[0], max: vals[len(vals)-1]})
		}
	}
	return out
}

// median of sorted values: the middle one, or the mean of the two middle ones.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values
// at or below it. An empty slice gives 0.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank, 1), n)-1]
}

// report prints the table (unless jsonOnly) and the JSON line of a
// scenario's runs.
func report(w io.Writer, scenario string, params map[string]any, runs []*result, jsonOnly bool) error {
	sums := summarize(runs)
	if !jsonOnly {
		if err := writeTable(w, scenario, params, len(runs), sums); err != nil {
			return err
		}
	}
	line, err := jsonLine(scenario, params, len(runs), sums)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}

// writeTable prints figures as aligned columns for people.
func writeTable(w io.Writer, scenario string, params map[string]any, runs int, sums []summary) error {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s:", scenario)
	for _, k := range keys {
		fmt.Fprintf(&head, " %s=%v", k, params[k])
	}
	fmt.Fprintf(&head, " runs=%d\n", runs)
	if _, err := w.Write(head.Bytes()); err != nil {
		return err
	}
	rows := [][]string{{"figure", "value", "unit"}}
	if runs > 1 {
		rows[0] = []string{"figure", "median", "min", "max", "unit"}
	}
	for _, s := range sums {
		row := []string{s.key, human(s.median)}
		if runs > 1 {
			row = append(row, human(s.min), human(s.max))
		}
		rows = append(rows, append(row, s.unit))
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len(cell))
		}
	}
	var b bytes.Buffer
	for _, row := range rows {
		// The figure's name to the left, numbers to the right, the unit
		// last and ragged.
		fmt.Fprintf(&b, "  %-*s", widths[0], row[0])
		for i := 1; i < len(row)-1; i++ {
			fmt.Fprintf(&b, "  %*s", widths[i], row[i])
		}
		fmt.Fprintf(&b, "  %s", row[len(row)-1])
		b.Truncate(len(bytes.TrimRight(b.Bytes(), " ")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// human formats v with as many decimals as its size deserves.
func human(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 0.1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// jsonLine is the one-line summary: scenario, runs, params, then every
// figure (the median over runs), with KEY_min and KEY_max beside it when
// there was more than one run. Keys keep the order they were measured in.
func jsonLine(scenario string, params map[string]any, runs int, sums []summary) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"scenario":`)
	name, _ := json.Marshal(scenario)
	b.Write(name)
	fmt.Fprintf(&b, `,"runs":%d,"params":`, runs)
	p, err := json.Marshal(params) // map keys come out sorted
	if err != nil {
		return nil, err
	}
	b.Write(p)
	for _, s := range sums {
		writeNumber(&b, s.key, s.median)
		if runs > 1 {
			writeNumber(&b, s.key+"_min", s.min)
			writeNumber(&b, s.key+"_max", s.max)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeNumber appends ,"key":value with up to six significant digits.
func writeNumber(b *bytes.Buffer, key string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	fmt.Fprintf(b, `,%q:`, key)
	b.WriteString(strconv.FormatFloat(roundSig(v, 6), 'f', -1, 64))
}

// roundSig rounds v to n significant digits.
func roundSig(v float64, n int) float64 {
	if v == 0 {
		return 0
	}
	scale := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}
