#!/usr/bin/env bash
# Make `snakemake --profile slurm` work from anywhere: link profiles/slurm into Snakemake's user
# profile directory. Never replaces a profile the user already has there.
set -euo pipefail
src="$(cd "$(dirname "$0")/slurm" && pwd)"
dest_dir="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake"
dest="$dest_dir/slurm"
mkdir -p "$dest_dir"
if [ -L "$dest" ] && [ "$(readlink "$dest")" = "$src" ]; then
  echo "profile 'slurm' already points at $src"
elif [ -e "$dest" ] || [ -L "$dest" ]; then
  echo "error: $dest already exists and is not this workflow's profile; left untouched." >&2
  echo "Use 'snakemake --profile $src' or move $dest away first." >&2
  exit 1
else
  ln -s "$src" "$dest"
  echo "installed: $dest -> $src (now: snakemake --profile slurm)"
fi
