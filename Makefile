# IT0 — common tasks. `make test` is what CI runs.
GO ?= go

.PHONY: build test test-short vet bench run
build:
	$(GO) build -o bin/it0 ./cmd/it0

run:
	$(GO) run ./cmd/it0 serve

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

# The whole suite, race detector on. Needs PostgreSQL on 127.0.0.1:5432 and OpenSSH's sshd
# (.ci/run installs and starts them); without them those tests skip locally and fail under CI=true.
test: vet
	$(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
