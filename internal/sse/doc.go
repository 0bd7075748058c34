// Package sse implements the Server-Sent Events wire protocol: an [Event]
// type, its encoder ([AppendEvent], [AppendComment]), a [Stream] that
// writes events to one HTTP response and flushes each one, and a [Decoder]
// that reads an event stream as a browser does.
//
// It knows nothing of users, feeds or databases, so it can be fuzzed and
// reused on its own.
//
// # Encoding
//
// The encoding follows the event stream format of the WHATWG HTML standard
// ("Server-sent events", "Interpreting an event stream"). An event is
// written as its fields in the order id, event, retry, data, each as
// "name: value\n", and ends with an empty line:
//
//	id: 42
//	event: order.shipped
//	retry: 3000
//	data: first line
//	data: second line
//
// Rules:
//
//   - An empty ID writes no id field, so the client keeps the last event
//     ID it had.
//   - An empty Type and the type "message" write no event field: a client
//     treats an event without one as a "message" event.
//   - Retry is written in whole milliseconds, rounded up, so a positive
//     duration never becomes "retry: 0". Zero writes no retry field.
//   - Data is split on CR, LF and CRLF (a CRLF is one line break) into one
//     data line per line. A client joins data lines with LF and removes one
//     trailing LF, so it reads back exactly Data with every CR and CRLF
//     turned into LF; a trailing line break in Data survives because it
//     ends in an empty data line. An empty line is written as "data:" with
//     no space after the colon.
//   - Every event has at least one data line, so an event with empty Data
//     still reaches the client, with one exception: an event with only
//     Retry set (empty ID, empty Type, empty Data, Retry > 0) is written as
//     the retry field alone ("retry: 3000\n\n"). A client applies the
//     retry and dispatches no event. Set Type to "message" to send an
//     empty event together with a retry.
//   - An ID or Type containing CR, LF or NUL cannot be written: a line
//     break would end the field early, and a client ignores an id field
//     containing NUL. [AppendEvent] refuses such an event (and a negative
//     Retry) with an error wrapping [ErrInvalidField].
//   - Bytes are written as given. A client decodes the stream as UTF-8,
//     replacing invalid sequences with U+FFFD; it strips a byte order mark
//     only at the very start of the stream, which always begins with a
//     field name here.
//
// A comment ([AppendComment], [Stream.Comment]) is a line starting with a
// colon; clients ignore it, which makes it a heartbeat that keeps proxies
// and load balancers from closing an idle connection.
//
// # Decoding
//
// A [Decoder] reads a stream by the same standard and returns its events
// ([Decoder.Next]), or also its comments and retry fields
// ([Decoder.Step]), for clients written in Go: tests and benchmarks. An
// event it returns, encoded again, reads back the same.
package sse
