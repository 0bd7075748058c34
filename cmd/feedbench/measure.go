package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// which is 100 on every Linux architecture Go supports.
const clockTicks = 100

// snapshot is the CPU time the tool and the server had used at a moment.
type snapshot struct {
	at        time.Time
	clientCPU time.Duration
	serverCPU time.Duration
	serverOK  bool // serverCPU is known
}

// snapshot reads the CPU time used so far: the tool's from getrusage, the
// server's from /proc/PID/stat when the PID is known, else from the
// process_cpu_seconds_total of its /metrics.
func (t *target) snapshot(ctx context.Context) snapshot {
	s := snapshot{at: time.Now(), clientCPU: selfCPU()}
	if t.pid > 0 {
		if d, err := procCPU(t.pid); err == nil {
			s.serverCPU, s.serverOK = d, true
		}
		return s
	}
	if m, err := t.scrape(ctx); err == nil {
		if v, ok := m["process_cpu_seconds_total"]; ok {
			s.serverCPU, s.serverOK = time.Duration(v*float64(time.Second)), true
		}
	}
	return s
}

// addTimes adds the wall time between from and to and the CPU time the tool
// and the server used in it, also as a percentage of one core.
func addTimes(res *result, from, to snapshot) {
	wall := to.at.Sub(from.at).Seconds()
	client := (to.clientCPU - from.clientCPU).Seconds()
	res.add("wall_s", wall, "s")
	res.add("client_cpu_s", client, "s")
	if wall > 0 {
		res.add("client_cpu_pct", 100*client/wall, "% of a core")
	}
	if from.serverOK && to.serverOK {
		server := (to.serverCPU - from.serverCPU).Seconds()
		res.add("server_cpu_s", server, "s")
		if wall > 0 {
			res.add("server_cpu_pct", 100*server/wall, "% of a core")
		}
	}
}

// selfCPU is the user and system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfMaxRSS is the most memory this process has held, in bytes.
func selfMaxRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) * 1024 // kilobytes on Linux
}

// procCPU reads utime+stime of pid from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat extracts utime+stime from the text of /proc/PID/stat. The
// command name, in parentheses, may hold spaces, so fields are counted from
// the last ')': after it come state (field 3), ..., utime (14), stime (15).
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// procRSS reads VmRSS of pid from /proc/PID/status, in bytes.
func procRSS(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest) // "12345 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("/proc status: odd VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		return kb * 1024, err
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("/proc status: no VmRSS line")
}

// serverStats is the server's memory and goroutines at a moment.
type serverStats struct {
	rss        float64 // bytes; 0 when unknown
	goroutines float64 // -1 when unknown
	feedsOpen  float64 // -1 when unknown
}

// stats reads the server's RSS (from /proc when the PID is known, else
// from /metrics), goroutines and open feeds (from /metrics).
func (t *target) stats(ctx context.Context) (serverStats, error) {
	st := serverStats{goroutines: -1, feedsOpen: -1}
	var m map[string]float64
	if t.metricsURL != "" {
		var err error
		if m, err = t.scrape(ctx); err != nil {
			return st, err
		}
		if v, ok := m["go_goroutines"]; ok {
			st.goroutines = v
		}
		if v, ok := m["feedd_feeds_open"]; ok {
			st.feedsOpen = v
		}
		st.rss = m["process_resident_memory_bytes"]
	}
	if t.pid > 0 {
		rss, err := procRSS(t.pid)
		if err != nil {
			return st, err
		}
		st.rss = rss
	}
	return st, nil
}

// scrape reads the metrics feedbench uses from the server's /metrics.
func (t *target) scrape(ctx context.Context) (map[string]float64, error) {
	if t.metricsURL == "" {
		return nil, errors.New("metrics are off")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	status, body, err := t.do(req)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.metricsURL, err)
	}
	if status != http.StatusOK {
		return nil, errStatus("read "+t.metricsURL, status, body)
	}
	return promValues(string(body), "go_goroutines", "process_resident_memory_bytes",
		"process_cpu_seconds_total", "feedd_feeds_open"), nil
}

// promValues picks the unlabelled samples called names out of a
// Prometheus text exposition: lines "name value [timestamp]". Comments,
// labelled samples and other names are skipped.
func promValues(text string, names ...string) map[string]float64 {
	out := make(map[string]float64, len(names))
	for line := range strings.Lines(text) {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		for _, name := range names {
			if f[0] != name {
				continue
			}
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[name] = v
			}
		}
	}
	return out
}
