// Package examples holds runnable programs showing kafkit in use; each is a
// main package under this directory:
//
//	go run ./examples/quickstart                       # embedded broker, produce, consume
//	go run ./examples/producer-otel -bootstrap HOST:PORT
//	go run ./examples/consumer-service -bootstrap HOST:PORT
//	go run ./examples/exactly-once -bootstrap HOST:PORT
//
// Each main is a thin wrapper around a run function that its test drives
// against an in-process broker (or kfake) so the examples keep compiling and
// working.
package examples
