// Package tracetest puts traces into a registry the way an attacker who can
// push a referrer could: without the checks trace.Attach makes, for tests
// of what a start, a listing or a pull does with them.
package tracetest
