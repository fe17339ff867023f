# shellcheck shell=bash
# The benchmarks' command line, shared: sourced by each script after it
# sets its defaults (markdown=0 among them). `bench_options NAME... --
# "$@"` takes `--NAME VALUE` for each NAME (into the variable of that name)
# and `--markdown` (markdown=1); anything else prints the usage, with the
# defaults, and exits 1.
bench_options() {
  local names=() usage="usage: $0" name known n
  while [[ $1 != -- ]]; do
    names+=("$1")
    usage+=" [--$1 ${!1}]"
    shift
  done
  shift
  usage+=" [--markdown]"
  while (( $# )); do
    if [[ $1 == --markdown ]]; then
      # shellcheck disable=SC2034  # the caller reads it
      markdown=1
      shift
      continue
    fi
    name=${1#--}
    known=0
    for n in "${names[@]}"; do [[ $name == "$n" && $1 == --* ]] && known=1; done
    if (( ! known || $# < 2 )); then
      echo "$usage" >&2
      exit 1
    fi
    printf -v "$name" '%s' "$2"
    shift 2
  done
}
