package api

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are feedd's Prometheus metrics. No label carries a user id or a
// raw path: routes are the patterns of the router, reasons a fixed set.
type Metrics struct {
	reg            *prometheus.Registry
	feedsOpen      prometheus.Gauge
	feedsOpened    prometheus.Counter
	feedsClosed    *prometheus.CounterVec
	eventsWritten  prometheus.Counter
	eventsSent     prometheus.Counter
	deliveryLag    prometheus.Histogram
	pollSeconds    prometheus.Histogram
	pollRows       prometheus.Histogram
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
}

// NewMetrics creates feedd's metrics in a registry of their own, with the
// Go runtime and process collectors beside them.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		feedsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "feedd_feeds_open", Help: "Open feeds.",
		}),
		feedsOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "feedd_feeds_opened_total", Help: "Feeds opened.",
		}),
		feedsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedd_feeds_closed_total", Help: "Feeds closed, by why they ended.",
		}, []string{"reason"}),
		eventsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "feedd_events_written_total", Help: "Events committed to the log through this server.",
		}),
		eventsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "feedd_events_delivered_total", Help: "Events written to feeds, replays included.",
		}),
		deliveryLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "feedd_delivery_lag_seconds",
			Help:    "Time from an event's commit to its write to a live feed.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		pollSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "feedd_tailer_poll_seconds",
			Help:    "Time the tailer takes to read (or take over from a local commit) and dispatch new rows.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		pollRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "feedd_tailer_rows_per_poll",
			Help:    "Rows the tailer dispatched per poll (or local commit taken over).",
			Buckets: []float64{0, 1, 2, 5, 10, 50, 100, 500, 1000, 5000},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "feedd_http_requests_total", Help: "HTTP requests, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "feedd_http_request_seconds",
			Help:    "HTTP request durations by route pattern (feeds: how long they stayed open).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(m.feedsOpen, m.feedsOpened, m.feedsClosed, m.eventsWritten, m.eventsSent,
		m.deliveryLag, m.pollSeconds, m.pollRows, m.requests, m.requestSeconds)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *Metrics) feedOpened() {
	m.feedsOpen.Inc()
	m.feedsOpened.Inc()
}

func (m *Metrics) feedClosed(reason string) {
	m.feedsOpen.Dec()
	m.feedsClosed.WithLabelValues(reason).Inc()
}

// Written counts events committed through this server.
func (m *Metrics) Written(events int) { m.eventsWritten.Add(float64(events)) }

// Polled observes one read of new rows by the tailer.
func (m *Metrics) Polled(took time.Duration, rows int) {
	m.pollSeconds.Observe(took.Seconds())
	m.pollRows.Observe(float64(rows))
}

// Delivered counts events written to a feed and observes the delivery lag
// of the live ones, committed at the given times.
func (m *Metrics) Delivered(events int, committed []time.Time) {
	m.eventsSent.Add(float64(events))
	now := time.Now()
	for _, c := range committed {
		m.deliveryLag.Observe(now.Sub(c).Seconds())
	}
}
