# tenantwal: the README's two commands are `make demo` and `make test`.
GO ?= go
TEST_TIMEOUT ?= 60m

.PHONY: demo test deps vet build fuzz bench

## demo: capture a multi-tenant workload, archive it, restore one tenant to before an accident
demo:
	$(GO) run ./cmd/tenantwal demo

## test: install the test servers if missing, then vet and run every test
test: deps vet
	$(GO) test -timeout $(TEST_TIMEOUT) -count=1 ./...

## deps: build the S3 test server and check PostgreSQL 15 (idempotent)
deps:
	bash scripts/install-test-deps.sh

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

build:
	$(GO) build -o bin/tenantwal ./cmd/tenantwal

## bench: the performance table against PostgreSQL's ceilings (SIZE=1 is ~2 minutes on 2 cores)
SIZE ?= 1
bench:
	$(GO) run ./cmd/tenantwal bench --size $(SIZE) --json bench.json

## fuzz: run the pgoutput decoder fuzz target for a minute
fuzz:
	$(GO) test ./capture/pgoutput -run '^$$' -fuzz FuzzParse -fuzztime 60s
