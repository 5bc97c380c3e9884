# Targets for developers and CI. Tests that need AWS run inside cmd/emulators,
# which starts DynamoDB Local and moto (or uses AWS_ENDPOINT_URL if set).

GO ?= go
EMULATORS = $(GO) run ./cmd/emulators --

.PHONY: test bench vet fmt-check lint run clean

test:
	$(GO) mod download
	$(EMULATORS) $(GO) test -race -count=1 ./...

bench:
	$(EMULATORS) $(GO) test -run '^$$' -bench . -benchmem ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt -l reports unformatted files:"; echo "$$out"; exit 1; fi

# The domain imports only the standard library (and a uuid package): no AWS
# SDK, no Lambda, no logging. "(^|/)aws" rather than "aws" so that a package
# such as domain/draws does not trip it.
lint: vet fmt-check
	@deps="$$($(GO) list -deps ./domain/...)" || exit 1; \
	bad="$$(printf '%s\n' "$$deps" | grep -E '(^|/)aws|lambda|^log/slog$$' || true)"; \
	if [ -n "$$bad" ]; then \
		echo "domain/... must not depend on AWS, Lambda or log/slog, but depends on:"; \
		echo "$$bad"; exit 1; \
	fi; \
	echo "lint: ok"

run:
	@echo "make run arrives with the local runner (issue 4)"; exit 1

clean:
	rm -rf bin .aws-sam
	rm -f functions/*/bootstrap
	$(GO) clean -testcache
