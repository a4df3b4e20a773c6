#!/usr/bin/env bash
# htraug — one script: set up (venv, Python packages, Debian fonts) and run.
#   ./run_all.sh [smoke|quick|paper|paper-full] [extra `htraug study run` options]   the whole study (default: quick)
#   ./run_all.sh test                                                    the default test suite
#   ./run_all.sh test-slow                                               the slow tests
set -euo pipefail
cd "$(dirname "$0")"

VENV="${HTRAUG_VENV:-.venv}"
FONT_PACKAGES=(fonts-ecolier-court fonts-dancingscript fonts-kaushanscript fonts-dkg-handwriting
  fonts-breip fonts-sjfonts fonts-dustin fonts-aenigma fonts-tlwg-purisa-otf fonts-comic-neue
  fonts-klee fonts-yusei-magic fonts-seto fonts-hosny-amiri fonts-noto-core fonts-ukij-uyghur
  fonts-kacst fonts-arabeyes fonts-sil-alkalami fonts-sil-lateef fonts-lemonada libfribidi0)

say() { printf '[htraug] %s\n' "$*" >&2; }

install_debian_packages() {  # the fonts, plus any packages named as arguments
  command -v dpkg-query >/dev/null 2>&1 || { say "not a Debian/Ubuntu system: install the fonts of docs/DESIGN.md §5 and FriBiDi by hand"; return 0; }
  local missing=()
  for p in "${FONT_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      say "missing Debian packages: ${missing[*]}"
      say "install them with: sudo apt-get install -y ${missing[*]}"
      exit 1
    fi
  fi
  say "installing Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_python() {
  local py="${PYTHON:-python3}"
  command -v "$py" >/dev/null 2>&1 || { say "python3 (≥ 3.11) is required"; exit 1; }
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { say "python ≥ 3.11 is required"; exit 1; }
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    "$py" -m venv "$VENV" || { say "cannot create a venv: install python3-venv"; exit 1; }
  fi
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  local stamp="$VENV/.htraug-installed" want
  want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && python -c 'import torch, htr, gudhi' 2>/dev/null; then
    return 0
  fi
  python -m pip install -q --upgrade pip >/dev/null
  if ! python -c 'import torch' 2>/dev/null; then
    # A CPU build on machines without an NVIDIA GPU; override with HTRAUG_TORCH="torch==X ..." .
    local spec="${HTRAUG_TORCH:-}"
    if [ -z "$spec" ]; then
      if command -v nvidia-smi >/dev/null 2>&1; then spec="torch"; else spec="torch==2.13.0"; fi
    fi
    say "installing PyTorch ($spec)"
    # shellcheck disable=SC2086
    python -m pip install -q $spec
  fi
  say "installing htraug and its dependencies into $VENV"
  python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
}

main() {
  local what="${1:-quick}"
  [ $# -gt 0 ] && shift
  # the slow tests include a headless-Chromium rendering of the HTML report
  if [ "$what" = test-slow ]; then install_debian_packages chromium; else install_debian_packages; fi
  setup_python
  export PYTHONHASHSEED=0
  case "$what" in
    test)       exec python -m pytest -q "$@" ;;
    test-slow)  exec python -m pytest -q -m slow "$@" ;;
    smoke|quick|paper|paper-full)
      exec htraug study run --profile "$what" --out "${HTRAUG_STUDY_DIR:-studies/$what}" "$@" ;;
    -h|--help|help)
      sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) say "unknown argument '$what' (expected smoke, quick, paper, paper-full, test or test-slow)"; exit 2 ;;
  esac
}

main "$@"
