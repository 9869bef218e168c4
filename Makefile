# Conveniences over bin/hubbub, which installs what it needs on first use.
.PHONY: run test lint bench fuzz clean

run:    ## the whole system: embedded PostgreSQL/NATS/Redis, hub, worker (and the frontend)
	bin/hubbub up

test:   ## every check and test — what CI runs
	bin/hubbub test

lint:   ## ruff and mypy only
	bin/hubbub check >/dev/null 2>&1 || true
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench:  ## every benchmark, each beside a baseline measured in the same run
	bin/hubbub bench

fuzz:   ## schemathesis, every check but one (see tests/fuzz/schemathesis.toml), 200 examples per operation, against a whole running system
	bin/hubbub check >/dev/null 2>&1 || true
	.venv/bin/python -m tests.fuzz --max-examples 200

clean:  ## forget the embedded servers' data and the dev secret
	rm -rf .hubbub
