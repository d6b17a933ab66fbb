// Package prefetch runs a replay plan against a lazily fetched image: units
// are fetched by parallel workers in first-access order, holding back while
// demand reads are fetching, sharing fetches in flight with them, and
// following the program: when it demands a range the plan holds for later,
// the cursor jumps there, so the engine works ahead of the program, not
// behind it; units jumped over are fetched last. Every unit ends with an
// outcome: hit (fetched before demand), partial (demand waited on it), miss
// (demand came first), waste (never used), or skipped (neither fetched nor
// used before the engine stopped).
package prefetch
