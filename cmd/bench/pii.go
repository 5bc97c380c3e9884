//go:build unix

package main

import (
	"context"
	"io"
	"time"
)

// The pii group (docs/forget.md): what sealing each user's
// personal data with a data key of its own costs, from infra/pii's
// BenchmarkPIIFigures, each figure against its floor measured in the same
// run, interleaved: a warm command and a 10,000-event replay sealed vs in
// clear; a create in a cold container with the user's key and the guard
// secret fetched at once vs one after the other; a create in a warm
// container with the user's key item in its transaction vs stored on its
// own first (as before), on the emulators and with a region's delays; and
// the KMS calls per command, cold and warm.
const (
	pkgPII = "infra/pii"
	secPII = "Personal data (crypto-shredding)"
)

func init() {
	figureBenchmarks[pkgPII] = append(figureBenchmarks[pkgPII], "BenchmarkPIIFigures", "BenchmarkCreateFigures")
}

func (b *bench) piiGroup() group {
	return group{
		name:     "pii",
		measures: "warm command p50 and a 10,000-event replay with the personal fields sealed vs in clear; cold create p50, keys fetched at once vs one after the other; warm create p50, key item in the transaction vs put first (also with simulated delays); KMS and DynamoDB calls per command",
		tables:   "events, guards and snapshots with the store's key schemas, without a stream; the keys table; a KMS key on moto",
		rounds:   "1 run: 100 renames each way interleaved, 3 replays of 10,000 events each way interleaved, 7 cold creates each way interleaved, 30 warm creates each way interleaved, with and without delays (the medians)",
		aws:      true,
		needs:    []string{pkgPII},
		run: func(ctx context.Context, env []string, log io.Writer) error {
			return b.runBench(ctx, pkgPII, invocation{bench: "^(BenchmarkPIIFigures|BenchmarkCreateFigures)$", benchtime: "1x", count: 1, timeout: 20 * time.Minute}, env, log, 0)
		},
	}
}

// piiSpecs are the pii group's figures.
func piiSpecs() []spec {
	const bench, creates = "BenchmarkPIIFigures", "BenchmarkCreateFigures"
	kms := func(name, metric string) spec {
		return spec{section: secPII, name: "KMS calls: " + name, unit: "calls", pkg: pkgPII, bench: bench, metric: metric, floorName: "no floor"}
	}
	return []spec{
		{section: secPII, name: "Warm command (rename) on DynamoDB Local, p50, personal fields sealed", unit: "ms", pkg: pkgPII, bench: bench,
			metric: "sealed-p50-ms", floorMetric: "plain-p50-ms", floorName: "the same store without the cipher"},
		{section: secPII, name: "Replay 10,000 events from DynamoDB Local (load, open, decode, fold), sealed", unit: "ms", pkg: pkgPII, bench: bench,
			metric: "sealed-replay-ms", floorMetric: "plain-replay-ms", floorName: "the same stream in clear, store without the cipher"},
		{section: secPII, name: "Create in a cold container, p50: the user's key and the guard secret fetched at once", unit: "ms", pkg: pkgPII, bench: bench,
			metric: "cold-create-p50-ms", floorMetric: "cold-create-seq-p50-ms", floorName: "the two fetched one after the other (before)"},
		{section: secPII, name: "Create in a warm container, p50: the user's key item in the create's transaction", unit: "ms", pkg: pkgPII, bench: creates,
			metric: "create-p50-ms", floorMetric: "create-keyput-p50-ms", floorName: "the key put on its own before the transaction (before)"},
		{section: secPII, name: "The same with dynamodb=4ms,kms=4ms per call (simulated region)", unit: "ms", pkg: pkgPII, bench: creates,
			metric: "create-simlat-p50-ms", floorMetric: "create-simlat-keyput-p50-ms", floorName: "the key put on its own before the transaction (before), same delays"},
		{section: secPII, name: "DynamoDB calls: a create in a warm container", unit: "calls", pkg: pkgPII, bench: creates,
			metric: "ddb-create-warm", floorMetric: "ddb-create-warm-keyput", floorName: "the key put on its own (before)"},
		kms("a create in a cold container (its key, the guard secret)", "kms-create-cold"),
		kms("a create in a warm container", "kms-create-warm"),
		kms("a rename in a cold container", "kms-rename-cold"),
		kms("an email change in a cold container (its key, the guard secret)", "kms-email-cold"),
		kms("a warm command", "kms-warm"),
	}
}
