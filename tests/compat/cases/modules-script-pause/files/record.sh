#!/bin/sh
# Writes its arguments, one a line, and where it ran.
out=$1
shift
{
  for a in "$@"; do printf '%s\n' "$a"; done
  printf 'cwd=%s\n' "$(pwd)"
} > "$out"
echo "recorded $#"
