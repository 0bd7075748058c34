package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/feedd/feedd/internal/auth"
	"github.com/feedd/feedd/internal/db"
	"github.com/feedd/feedd/internal/feed"
)

// maxBatchItems is the most notifications a batch holds, fixed by the API.
const maxBatchItems = 1000

// Limits bound what a request may carry. Zero fields take the values of
// DefaultLimits.
type Limits struct {
	// MaxBodyBytes caps a request body (413 beyond).
	MaxBodyBytes int64
	// MaxDataBytes caps the data of one notification as sent to
	// subscribers.
	MaxDataBytes int
	// MaxUsers caps the "users" of one notification.
	MaxUsers int
}

// DefaultLimits are the limits of a server configured with none: 1 MiB
// bodies, 64 KiB of data, 1000 users per notification.
func DefaultLimits() Limits {
	return Limits{MaxBodyBytes: 1 << 20, MaxDataBytes: 64 << 10, MaxUsers: 1000}
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxDataBytes <= 0 {
		l.MaxDataBytes = d.MaxDataBytes
	}
	if l.MaxUsers <= 0 {
		l.MaxUsers = d.MaxUsers
	}
	return l
}

// notification is the JSON body of a publish.
type notification struct {
	User      *string         `json:"user"`
	Users     *[]string       `json:"users"`
	Broadcast *bool           `json:"broadcast"`
	Type      *string         `json:"type"`
	Data      json.RawMessage `json:"data"`
}

// events validates n within lim and returns the rows it creates: one per
// addressee, or one for a broadcast.
func (n notification) events(lim Limits) ([]db.NewEvent, error) {
	typ := feed.DefaultType
	if n.Type != nil {
		typ = *n.Type
		if err := validateType(typ); err != nil {
			return nil, err
		}
	}
	data, isJSON, err := payload(n.Data, lim.MaxDataBytes)
	if err != nil {
		return nil, err
	}
	broadcast := n.Broadcast != nil && *n.Broadcast
	given := 0
	for _, set := range []bool{n.User != nil, n.Users != nil, broadcast} {
		if set {
			given++
		}
	}
	if given != 1 {
		return nil, errorf(http.StatusBadRequest, `give exactly one of "user", "users" or "broadcast": true`)
	}

	switch {
	case broadcast:
		return []db.NewEvent{{Type: typ, Data: data, DataJSON: isJSON}}, nil
	case n.User != nil:
		if err := auth.ValidateSubject(*n.User); err != nil {
			return nil, errorf(http.StatusBadRequest, `"user": %v`, err)
		}
		return []db.NewEvent{{UserID: *n.User, Type: typ, Data: data, DataJSON: isJSON}}, nil
	}
	users := *n.Users
	if len(users) == 0 || len(users) > lim.MaxUsers {
		return nil, errorf(http.StatusBadRequest, `"users" must list 1 to %d user ids, not %d`, lim.MaxUsers, len(users))
	}
	seen := make(map[string]int, len(users)) // user id -> its index
	out := make([]db.NewEvent, len(users))
	for i, u := range users {
		if err := auth.ValidateSubject(u); err != nil {
			return nil, errorf(http.StatusBadRequest, `"users"[%d]: %v`, i, err)
		}
		if first, dup := seen[u]; dup {
			return nil, errorf(http.StatusBadRequest, "a user id listed twice: users[%d] repeats users[%d]", i, first)
		}
		seen[u] = i
		out[i] = db.NewEvent{UserID: u, Type: typ, Data: data, DataJSON: isJSON}
	}
	return out, nil
}

// validateType checks a posted event type against the engine's rules (see
// feed.CheckType): 1 to 64 of A-Za-z0-9._:-, not in the feed. namespace.
func validateType(typ string) error {
	if err := feed.CheckType(typ); err != nil {
		return errorf(http.StatusBadRequest, `"type" %v`, err)
	}
	return nil
}

// payload turns the posted data into what subscribers receive: a string as
// is, any other JSON value compacted; at most maxBytes of it.
func payload(raw json.RawMessage, maxBytes int) (data string, isJSON bool, err error) {
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0:
		return "", false, errorf(http.StatusBadRequest, `"data" is required`)
	case string(trimmed) == "null":
		return "", false, errorf(http.StatusBadRequest, `"data" must not be null`)
	case trimmed[0] == '"':
		if err := json.Unmarshal(trimmed, &data); err != nil {
			return "", false, errorf(http.StatusBadRequest, `"data" is not a valid JSON string`)
		}
	default:
		var buf bytes.Buffer
		if err := json.Compact(&buf, trimmed); err != nil {
			return "", false, errorf(http.StatusBadRequest, `"data" is not valid JSON`)
		}
		data, isJSON = buf.String(), true
	}
	if len(data) > maxBytes {
		return "", false, errorf(http.StatusBadRequest, `"data" is %d bytes; the limit is %d`, len(data), maxBytes)
	}
	return data, isJSON, nil
}

// createdAtFormat is RFC 3339 with milliseconds, the log's precision.
const createdAtFormat = "2006-01-02T15:04:05.000Z07:00"

// eventJSON is how the API shows a stored event.
type eventJSON struct {
	ID        int64           `json:"id"`
	User      string          `json:"user,omitempty"`
	Broadcast bool            `json:"broadcast"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	CreatedAt string          `json:"created_at"`
}

func toJSON(e db.Event) eventJSON {
	out := eventJSON{
		ID:        e.ID,
		User:      e.UserID,
		Broadcast: e.Broadcast(),
		Type:      e.Type,
		CreatedAt: e.CreatedAt.UTC().Format(createdAtFormat),
	}
	if e.DataJSON && json.Valid([]byte(e.Data)) {
		out.Data = json.RawMessage(e.Data)
	} else {
		out.Data, _ = json.Marshal(e.Data) // a string always marshals
	}
	return out
}

// eventsJSON is the {"events": [...]} answer of a publish.
type eventsJSON struct {
	Events []eventJSON `json:"events"`
}

func toEventsJSON(evs []db.Event) eventsJSON {
	out := eventsJSON{Events: make([]eventJSON, len(evs))}
	for i, e := range evs {
		out.Events[i] = toJSON(e)
	}
	return out
}

// pageJSON is one page of a listing. HasMore tells that another page
// follows; NextAfter (oldest-first listings) or NextBefore (newest-first)
// is the cursor to ask for it with.
type pageJSON struct {
	Events     []eventJSON `json:"events"`
	HasMore    bool        `json:"has_more"`
	NextAfter  int64       `json:"next_after,omitempty"`
	NextBefore int64       `json:"next_before,omitempty"`
}

// itemError prefixes a validation error with the batch index it is about.
func itemError(i int, err error) error {
	if ae, ok := err.(*apiError); ok {
		return &apiError{status: ae.status, msg: fmt.Sprintf("notifications[%d]: %s", i, ae.msg)}
	}
	return err
}
