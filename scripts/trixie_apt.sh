# Sourced by scripts that take packages from Debian 13 (trixie) on a Debian 12 machine.
#
# A private apt list downloads (never installs) trixie's packages, so the system's own
# libraries are never touched. Defines trixie_download PACKAGE... which leaves the .deb files
# in $TRIXIE_DEBS. The lists are fetched once per day at most.
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
TRIXIE_APT_DIR="$ROOT/.deps/apt-trixie"
TRIXIE_DEBS="$TRIXIE_APT_DIR/debs"
TRIXIE_APT_OPTS=(-o Dir::Etc::sourcelist="$TRIXIE_APT_DIR/sources.list" -o Dir::Etc::sourceparts=-
                 -o Dir::State::Lists="$TRIXIE_APT_DIR/lists" -o Debug::NoLocking=1
                 -o APT::Sandbox::User=root)

trixie_download() {
  mkdir -p "$TRIXIE_APT_DIR/lists/partial" "$TRIXIE_DEBS"
  echo 'deb http://deb.debian.org/debian trixie main' > "$TRIXIE_APT_DIR/sources.list"
  if [ -z "$(find "$TRIXIE_APT_DIR/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null)" ]; then
    echo "trixie: fetching Debian 13 package lists (private, download only)"
    apt-get "${TRIXIE_APT_OPTS[@]}" update -qq
  fi
  echo "trixie: downloading $*"
  ( cd "$TRIXIE_DEBS" && rm -f ./*.deb && apt-get "${TRIXIE_APT_OPTS[@]}" download -qq "$@" )
}
