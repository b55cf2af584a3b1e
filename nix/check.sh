#!/usr/bin/env bash
# nix/check.sh — syntax-checks every .nix file in the repository with `nix-instantiate --parse`, and the NixOS module's option stubs.
#
# Needs no network and no nixpkgs, so it runs where Nix cannot fetch anything
# (on Debian: apt-get install nix-bin). It catches syntax errors, and options
# nix/module.nix sets that nix/tests/nixos-stub.nix does not declare (see
# nix/tests/stub-coverage.nix); nix/README.md says how to evaluate the module
# fully with a nixpkgs lib, and what only `nix flake check` runs.
set -euo pipefail

if ! command -v nix-instantiate >/dev/null 2>&1; then
    echo "nix/check.sh: nix-instantiate not found; install it with: apt-get install nix-bin" >&2
    exit 127
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked and new-but-not-ignored files alike: a file not yet added is
    # checked too (the flake itself would not see it until it is added).
    while IFS= read -r -d '' f; do
        [[ -f "$f" ]] && files+=("$f")
    done < <(git ls-files -z --cached --others --exclude-standard -- '*.nix')
else
    while IFS= read -r -d '' f; do
        files+=("${f#./}")
    done < <(find . -name '*.nix' -not -path './target/*' -not -path './.git/*' -print0)
fi

if ((${#files[@]} == 0)); then
    echo "nix/check.sh: no .nix files found under $root" >&2
    exit 1
fi

failed=0
for f in "${files[@]}"; do
    if nix-instantiate --parse "$f" >/dev/null; then
        echo "ok    $f"
    else
        echo "FAIL  $f" >&2
        failed=$((failed + 1))
    fi
done

if ((failed > 0)); then
    echo "nix/check.sh: $failed of ${#files[@]} .nix files failed to parse" >&2
    exit 1
fi
echo "nix/check.sh: all ${#files[@]} .nix files parse"

# eval-module.nix (which needs nixpkgs' lib, so CI cannot run it) fails with
# "The option `...' does not exist" on any option the module sets that
# nixos-stub.nix does not declare; stub-coverage.nix finds those with
# builtins alone, and its header says why that is sound.
if covered="$(nix-instantiate --eval --strict --json nix/tests/stub-coverage.nix)"; then
    # For reading only (the verdict is nix-instantiate's exit status): the
    # JSON list of option paths, brackets and quotes dropped.
    covered="${covered//[\[\]\"]/}"
    echo "ok    nix/tests/nixos-stub.nix declares every option nix/module.nix sets: ${covered//,/ }"
else
    echo "FAIL  nix/tests/stub-coverage.nix: see its error above; nix/tests/eval-module.nix fails on the same options" >&2
    exit 1
fi
echo "nix/check.sh: the module's option stubs are complete"
