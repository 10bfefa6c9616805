# IT0 — common tasks. `make test` is what CI runs.
GO ?= go

.PHONY: build test test-short vet bench run web web-test web-check
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

# The web console (web/): `make web` rebuilds web/dist, which is committed and embedded by go:embed, so
# a fresh clone serves the console with no npm step. web-check fails when the committed build is stale.
web:
	cd web && npm ci --no-audit --no-fund && npm run build

web-test:
	cd web && npx vitest run

web-check: web
	@git diff --quiet --exit-code -- web/dist && test -z "$$(git ls-files --others --exclude-standard web/dist)" \
		|| (echo "web/dist is stale: run make web and commit web/dist"; git status --short web/dist; exit 1)
