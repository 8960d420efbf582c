#!/usr/bin/env bash
# Runs a command and checks its exit code and output.
#
#   expect.sh EXIT_CODE [CHECK ...] -- COMMAND [ARG ...]
#
# CHECKs (any number, all must hold; REGEX is an extended regex matched line by line, grep -E):
#   -o REGEX        some line of standard output matches REGEX
#   -e REGEX        some line of standard error matches REGEX
#   -O REGEX        no line of standard output matches REGEX
#   -E REGEX        no line of standard error matches REGEX
#   --empty-stdout  standard output is empty
#   --empty-stderr  standard error is empty
#
# On failure it prints the command, what it expected and everything the command printed, and exits
# 1; on success it exits 0. A malformed invocation of this script exits 99.
set -u

usage() {
  echo "usage: expect.sh EXIT_CODE [-o|-e|-O|-E REGEX | --empty-stdout | --empty-stderr]... -- COMMAND [ARG...]" >&2
  exit 99
}

[[ $# -ge 1 ]] || usage
want_rc=$1
shift
[[ $want_rc =~ ^[0-9]+$ ]] || usage

checks=()  # kind<TAB>regex
while [[ $# -gt 0 && $1 != "--" ]]; do
  case $1 in
    -o | -e | -O | -E)
      [[ $# -ge 2 ]] || usage
      checks+=("$1"$'\t'"$2")
      shift 2
      ;;
    --empty-stdout | --empty-stderr)
      checks+=("$1"$'\t')
      shift
      ;;
    *) usage ;;
  esac
done
[[ $# -ge 2 && $1 == "--" ]] || usage
shift

out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

"$@" >"$out" 2>"$err"
rc=$?

failures=()
if [[ $rc -ne $want_rc ]]; then
  failures+=("exit code $rc, expected $want_rc")
fi
for c in "${checks[@]+"${checks[@]}"}"; do
  kind=${c%%$'\t'*}
  re=${c#*$'\t'}
  case $kind in
    -o) grep -Eq -- "$re" "$out" || failures+=("no line of stdout matches: $re") ;;
    -e) grep -Eq -- "$re" "$err" || failures+=("no line of stderr matches: $re") ;;
    -O) ! grep -Eq -- "$re" "$out" || failures+=("a line of stdout matches: $re") ;;
    -E) ! grep -Eq -- "$re" "$err" || failures+=("a line of stderr matches: $re") ;;
    --empty-stdout) [[ ! -s $out ]] || failures+=("stdout is not empty") ;;
    --empty-stderr) [[ ! -s $err ]] || failures+=("stderr is not empty") ;;
  esac
done

if [[ ${#failures[@]} -eq 0 ]]; then
  exit 0
fi
{
  printf 'FAILED: %q' "$1"
  shift
  printf ' %q' "$@"
  printf '\n'
  for f in "${failures[@]}"; do
    echo "  - $f"
  done
  echo "--- exit code: $rc"
  echo "--- stdout ($(wc -c <"$out") bytes):"
  cat "$out"
  echo "--- stderr ($(wc -c <"$err") bytes):"
  cat "$err"
  echo "---"
} >&2
exit 1
