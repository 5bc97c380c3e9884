# Targets for developers and CI. Tests that need AWS run inside cmd/emulators,
# which starts DynamoDB Local and moto (or uses AWS_ENDPOINT_URL if set).

GO ?= go
EMULATORS = $(GO) run ./cmd/emulators --

.PHONY: test bench vet fmt-check lint cfn-lint template-check build run e2e clean \
	localstack-up localstack-deploy localstack-e2e localstack-down \
	build-AuthorizerFunction build-CommandsFunction build-QueriesFunction \
	build-RelayFunction build-ProjectorFunction build-NotifierFunction build-ReplayFunction \
	build-MembershipFunction

# The test processes check every AWS call the functions make against their
# roles in template.yaml (infra/iamcheck: a call not granted fails its
# suite) and write the calls to $CHRONICLE_IAM_LOG; cmd/iamcheck then
# reports, for the whole run, the calls not granted (failing make test) and
# the grants no test exercised. go test writes JSON, which cmd/testsummary
# prints as plain go test output; the run ends with its count of tests
# ("make test: N passed, M failed, K skipped (...)"). make test fails when
# go test, the summary (a test, a package or a build failed) or the IAM
# check does; go test's status is kept in a file, as sh has no pipefail.
# TEST_PACKAGES narrows the run (the IAM check wants one package that calls AWS):
# make test TEST_PACKAGES="./domain/... ./infra/rebuild/..."
# -timeout 25m: from cold caches, cmd/local's tests compile every function
# for linux/arm64 (and the Lambda emulator) before they run, minutes on two
# busy cores; go test's default of 10 minutes per package is too tight.
# Debian's chromium runs the audit console's browser test (cmd/local/e2e
# TestConsoleInBrowser) when /usr/bin/chromium is there; with
# CHRONICLE_REQUIRE_CHROMIUM=1 (CI) make test installs it and the test
# fails rather than skips without it.
# qemu-aarch64-static (Debian's qemu-user-static) runs the shipped
# linux/arm64 bootstraps in cmd/local's TestShippedBootstrapsUnderQEMU,
# which fails without it: make test installs it when it is missing.
TEST_PACKAGES ?= ./...
test:
	$(GO) mod download
	@command -v qemu-aarch64-static >/dev/null 2>&1 || { \
		echo "make test: installing qemu-user-static (for qemu-aarch64-static)"; \
		apt-get install -y qemu-user-static || { apt-get update && apt-get install -y qemu-user-static; } \
			|| echo "make test: could not install qemu-user-static: the arm64 bootstrap test will fail"; }
	@[ "$$CHRONICLE_REQUIRE_CHROMIUM" != 1 ] || [ -x "$${CHRONICLE_CHROMIUM:-/usr/bin/chromium}" ] || { \
		echo "make test: installing chromium (CHRONICLE_REQUIRE_CHROMIUM=1: the console's browser test must run)"; \
		apt-get install -y chromium || { apt-get update && apt-get install -y chromium; } \
			|| echo "make test: could not install chromium: the console's browser test will fail"; }
	@tmp="$$(mktemp -d)"; mkdir "$$tmp/iam"; \
	{ CHRONICLE_IAM_LOG="$$tmp/iam" $(EMULATORS) $(GO) test -json -race -count=1 -timeout 25m $(TEST_PACKAGES); echo $$? >"$$tmp/gotest"; } \
		| $(GO) run ./cmd/testsummary -label "make test" -summary "$$tmp/summary"; status=$$?; \
	gotest="$$(cat "$$tmp/gotest" 2>/dev/null)"; \
	if [ "$$gotest" != 0 ]; then \
		[ $$status != 0 ] || echo "make test: go test exited with status $${gotest:-unknown} (see above)"; status=1; \
	fi; \
	$(GO) run ./cmd/iamcheck "$$tmp/iam" || { status=1; echo "make test: the IAM check failed (see above)"; }; \
	cat "$$tmp/summary" 2>/dev/null; \
	rm -rf "$$tmp"; exit $$status

# make bench: every benchmark of the repository, each group on a DynamoDB
# Local and a moto of its own, and BENCHMARKS.md and BENCHMARKS.json written
# from what they measured (cmd/bench). BENCH_ARGS go to it, e.g.
# make bench BENCH_ARGS='-groups memory,store -keep-logs'.
BENCH_ARGS ?=
bench:
	GO=$(GO) $(GO) run ./cmd/bench $(BENCH_ARGS)

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt -l reports unformatted files:"; echo "$$out"; exit 1; fi

# The domain imports only the standard library (and a uuid package): no AWS
# SDK, no Lambda, no logging. "(^|/)aws" rather than "aws" so that a package
# such as domain/draws does not trip it.
lint: vet fmt-check cfn-lint template-check
	@deps="$$($(GO) list -deps ./domain/...)" || exit 1; \
	bad="$$(printf '%s\n' "$$deps" | grep -E '(^|/)aws|lambda|^log/slog$$' || true)"; \
	if [ -n "$$bad" ]; then \
		echo "domain/... must not depend on AWS, Lambda or log/slog, but depends on:"; \
		echo "$$bad"; exit 1; \
	fi; \
	prod="$$($(GO) list -deps ./functions/... ./cmd/...)" || exit 1; \
	if printf '%s\n' "$$prod" | grep -q '/infra/faults$$'; then \
		echo "functions/... and cmd/... must not depend on infra/faults: it injects failures, for tests only"; exit 1; \
	fi; \
	echo "lint: ok"

# template.yaml's rules, as infra/template's tests (they read the file and
# need no emulator): every IAM statement names its actions (no "*" or "?",
# no NotAction) and its resources (no unscoped "*" but for the actions that
# have no resource-level permission), and no policy lives outside the
# functions' roles; every queue has a dead-letter queue; every table has
# point-in-time recovery and deletion protection, following parameters
# that default to on; routes, event sources, timeouts and the rest.
template-check:
	$(GO) test -count=1 ./infra/template/...

# template.yaml must pass cfn-lint (offline: it carries the SAM transform).
cfn-lint:
	@command -v cfn-lint >/dev/null 2>&1 || { echo "cfn-lint not found: pip install cfn-lint"; exit 1; }
	cfn-lint template.yaml

# Lambda binaries: one static linux/arm64 bootstrap per function, for the
# provided.al2023 runtime. lambda.norpc drops the RPC mode that only the old
# go1.x runtime needed.
FUNCTIONS = authorizer commands queries relay projector notifier replay membership
LAMBDA_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w'

build:
	@for fn in $(FUNCTIONS); do \
		$(LAMBDA_BUILD) -o bin/$$fn/bootstrap ./functions/$$fn || exit 1; \
		printf '%-26s %6d KiB\n' "bin/$$fn/bootstrap" "$$(( $$(wc -c < bin/$$fn/bootstrap) / 1024 ))"; \
	done

# sam build (BuildMethod: makefile) runs build-<LogicalId> with ARTIFACTS_DIR
# set; CodeUri is the repository root because the functions import the module.
build-AuthorizerFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/authorizer
build-CommandsFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/commands
build-QueriesFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/queries
build-RelayFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/relay
build-ProjectorFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/projector
build-NotifierFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/notifier
build-ReplayFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/replay
build-MembershipFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/membership

# make run: the whole service from template.yaml on http://127.0.0.1:3000
# (PORT=8080 make run to move it), against DynamoDB Local and moto, which
# cmd/emulators installs and starts. Ctrl-C stops the runner, then the
# emulators. RUN_ARGS go to the runner: make run RUN_ARGS=--print-token.
RUN_ARGS ?=
# PERSIST=1 keeps DynamoDB Local's tables in DATA_DIR across runs (events,
# users, read model); moto keeps nothing, so the runner reads the stream
# again into the new queues at start (cmd/local/internal/runner: pollStream).
# Without it every run starts empty.
PERSIST ?=
DATA_DIR ?= $(HOME)/.cache/chronicle/data
EMULATOR_ARGS = $(if $(filter-out 0 false no,$(PERSIST)),-data-dir "$(DATA_DIR)")
# Both are built first: under go run, a Ctrl-C would end in "exit status 1".
# The port is checked before the emulators start; --write-env lets another
# shell reach them: eval "$(go run ./cmd/local env)".
run:
	$(GO) build -o bin/chronicle-local ./cmd/local
	$(GO) build -o bin/emulators ./cmd/emulators
	@bin/chronicle-local --check-port $(RUN_ARGS) && \
	bin/emulators $(EMULATOR_ARGS) -- bin/chronicle-local --write-env $(RUN_ARGS)

# make e2e: the end-to-end suite alone (make test runs it too). With
# CHRONICLE_E2E_BASE_URL set it runs against that deployment instead of a
# runner of its own, and starts no emulator (see cmd/local/e2e).
e2e:
ifdef CHRONICLE_E2E_BASE_URL
	$(GO) test -count=1 -v ./cmd/local/e2e/
else
	$(EMULATORS) $(GO) test -race -count=1 ./cmd/local/e2e/
endif

# LocalStack (needs Docker): start it, deploy the SAM build to it (prints
# the API URL), run the end-to-end suite against it, stop it.
LOCALSTACK_COMPOSE = docker compose -f localstack/docker-compose.yml
localstack-up:
	$(LOCALSTACK_COMPOSE) up -d --wait
localstack-deploy: localstack-up
	localstack/deploy.sh
localstack-e2e:
	localstack/e2e.sh
localstack-down:
	$(LOCALSTACK_COMPOSE) down -v

clean:
	rm -rf bin .aws-sam
	rm -f functions/*/bootstrap
	$(GO) clean -testcache
