# bench/lib.sh — what the benchmark scripts share. Sourced; the script sets
# `prog` (its name, for messages) and `repo` (the checkout) first.

die() { echo "$prog: error: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
# shellcheck disable=SC2015 # die exits
need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }

has_idx() { # DIR: all four IDX files, raw or .gz
  local f
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -s "$1/$f" ] || [ -s "$1/$f.gz" ] || return 1
  done
}

ensure_digits() { # DIR: the digits there, made by scripts/get-mnist.sh if missing
  if ! has_idx "$1"; then
    note "the digits are not in $1; running scripts/get-mnist.sh $1"
    "$repo/scripts/get-mnist.sh" "$1" || die "scripts/get-mnist.sh could not make $1"
    has_idx "$1" || die "scripts/get-mnist.sh ran, but $1 still lacks IDX files"
  fi
}

check_nnc() { # PATH: an executable nnc
  [ -f "$1" ] && [ -x "$1" ] || die "no nnc binary at $1: build it (cmake --build build) or pass --nnc PATH"
}
