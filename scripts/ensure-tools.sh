#!/usr/bin/env bash
# Makes sure the command-line tools some test suites use are installed, installing any that is
# missing from the distribution's packages (as root, or through sudo). Prints one line per tool.
# A tool that cannot be installed is reported and its tests skip, saying why.
#   promtool  (Debian/Ubuntu package "prometheus")  test/ops: `promtool check metrics` on /metrics
#   openssl   (package "openssl")                   test/ops: a self-signed certificate for HTTPS
#   python3 grpc (package "python3-grpcio")         test/integrations: an independent gRPC client
#   slowhttptest (package "slowhttptest")           test/faults: slowloris and slow-body clients
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif have sudo; then sudo -n "$@"; else return 1; fi
}

updated=no
install_package() {
  have apt-get || return 1
  if [ "$updated" = no ]; then
    as_root apt-get update -qq >/dev/null 2>&1 || return 1
    updated=yes
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$1" \
    >/dev/null 2>&1
}

ensure() {
  local tool=$1 package=$2
  if have "$tool"; then echo "tools: $tool is $(command -v "$tool")"; return 0; fi
  echo "tools: $tool is missing; installing the $package package"
  if install_package "$package" && have "$tool"; then
    echo "tools: $tool is $(command -v "$tool")"
  else
    echo "tools: could not install $package: the tests that need $tool will skip" >&2
  fi
}

ensure promtool prometheus
ensure openssl openssl
ensure slowhttptest slowhttptest

# Not a command but a Python module: checked by importing it with the system Python.
has_python_grpc() { /usr/bin/python3 -c 'import grpc' >/dev/null 2>&1; }
if has_python_grpc; then
  echo "tools: python3 grpc is installed"
elif echo "tools: python3 grpc is missing; installing the python3-grpcio package" &&
  install_package python3-grpcio && has_python_grpc; then
  echo "tools: python3 grpc is installed"
else
  echo "tools: could not install python3-grpcio: the tests that need it will skip" >&2
fi
exit 0
