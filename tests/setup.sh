#!/usr/bin/env bash
# Installs build prerequisites on Debian when they are missing. Sourced by the
# README commands and by .ci/run; safe to run repeatedly.
need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
# RocksDB's bindings need libclang at build time (libclang.so or libclang-N.so; libclang-cpp,
# which LLVM's own packages bring, is another library and does not do).
compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null \
  || compgen -G '/usr/lib/llvm-*/lib/libclang-[0-9]*.so*' >/dev/null \
  || need_apt+=(libclang-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# tests/module-deps.py (the module cycle check).
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# The fault lab (tests/faults.rs): network namespaces, iptables and libfaketime, as root.
if [ "$(id -u)" -eq 0 ]; then
  command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
  command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
  ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || need_apt+=(faketime)
fi
# The PostgreSQL sink's tests start throwaway clusters (tests/postgres.sh).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# The console's browser suite (tests/console_browser.py, run by tests/operator.rs): headless
# Chromium, its WebDriver, Debian's Selenium for the system python3, and a CJK font so the
# screenshots show the Chinese pages.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
/usr/bin/python3 -c 'import selenium' >/dev/null 2>&1 || need_apt+=(python3-selenium)
{ command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh | grep -q .; } || need_apt+=(fonts-wqy-zenhei)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "installing the Rust toolchain with rustup" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
# Keep build products between runs; works when the directory is empty.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caihong/target}"
mkdir -p "$CARGO_TARGET_DIR"
