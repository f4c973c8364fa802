#!/usr/bin/env bash
# What bench/gpu_check.sh needs on a GPU machine that has torch but no package index, no RecBole and no
# RecBole pins (this project's device machine: CPython 3.12, numpy 2), packed into .gpu/ (ignored by git):
#   .gpu/site.tar.xz         RecBole 1.2.1 and its pins (numpy<2, scipy<1.13, pandas<3; README, "Why the pins"),
#                            the same versions as this project's CPU environment, unpacked from their x86-64
#                            CPython 3.12 wheels, test folders left out (about 35 MB)
#   .gpu/gowalla.inter.xz    the full Gowalla (about 2.5 MB)
# Run it where pip can reach PyPI (a 2-core CPU packs it in about 2 minutes):
#   bash bench/gpu_pack.sh [DATA]      DATA: default ../shared/datasets
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/datasets}
PYTHON=${PYTHON:-python3}
PINS=(numpy==1.26.4 scipy==1.12.0 pandas==2.3.3 pytz==2026.6 tzdata==2026.6 recbole==1.2.1 colorlog==4.7.2
      texttable==1.7.2 thop==0.1.1.post2209072238)
PLATFORMS=()
for platform in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    PLATFORMS+=(--platform "$platform")
done
[ -f "$DATA/gowalla/gowalla.inter" ] || { echo "no $DATA/gowalla/gowalla.inter: give the datasets' folder as DATA" >&2; exit 2; }

rm -rf .gpu && mkdir -p .gpu/wheels .gpu/site
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
    -d .gpu/wheels "${PINS[@]}"
for wheel in .gpu/wheels/*.whl; do
    "$PYTHON" -m zipfile -e "$wheel" .gpu/site
done
find .gpu/site -type d -name tests -prune -exec rm -rf {} +
tar -C .gpu/site -cJf .gpu/site.tar.xz .
xz -9 -T0 -c "$DATA/gowalla/gowalla.inter" >.gpu/gowalla.inter.xz
rm -rf .gpu/wheels .gpu/site
ls -l .gpu
