package feed

import (
	"fmt"
	"testing"
)

// BenchmarkHubBroadcast measures handing one broadcast to every open feed
// and each feed taking it from its queue.
func BenchmarkHubBroadcast(b *testing.B) {
	for _, feeds := range []int{1000, 10_000} {
		b.Run(fmt.Sprintf("feeds=%d", feeds), func(b *testing.B) {
			h := newHub(HubOptions{})
			subs := make([]*subscriber, feeds)
			for i := range subs {
				s, err := h.subscribe(fmt.Sprint("u", i))
				if err != nil {
					b.Fatal(err)
				}
				subs[i] = s
			}
			d := []*delivery{{id: 1, typ: "message", wire: []byte("id: 1\ndata: x\n\n")}}
			spare := make([][]*delivery, feeds)
			for b.Loop() {
				h.dispatch(d)
				for i, s := range subs {
					spare[i], _ = s.take(spare[i])
					<-s.wake
				}
			}
			b.ReportMetric(float64(b.N*feeds)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkHubUnicast measures handing an event to one user's feed among
// many.
func BenchmarkHubUnicast(b *testing.B) {
	h := newHub(HubOptions{})
	const users = 10_000
	subs := make([]*subscriber, users)
	for i := range subs {
		s, err := h.subscribe(fmt.Sprint("u", i))
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = s
	}
	ds := make([][]*delivery, users)
	for i := range ds {
		ds[i] = []*delivery{{id: int64(i), userID: fmt.Sprint("u", i), typ: "message", wire: []byte("data: x\n\n")}}
	}
	var spare []*delivery
	i := 0
	for b.Loop() {
		h.dispatch(ds[i])
		spare, _ = subs[i].take(spare)
		<-subs[i].wake
		i = (i + 1) % users
	}
}
