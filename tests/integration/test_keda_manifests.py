"""deploy/kubernetes/keda: the KEDA ScaledObjects are structurally what KEDA documents and agree with
the triggerd deployment they scale. Offline (no cluster, no KEDA CRDs, no kustomize here), so the
documented fields are written down below from the KEDA 2.16 docs (concepts/scaling-deployments,
concepts/authentication, scalers/apache-kafka, redis-streams, rabbitmq-queue, prometheus).

Checked: one ScaledObject per source kind (kafka, redis-streams, rabbitmq) and one prometheus;
apiVersion keda.sh/v1alpha1; spec, scaleTargetRef, trigger and metadata keys all documented ones
(an unknown key is a failure: KEDA ignores it silently), required metadata present, every metadata
value a string (KEDA's metadata is map[string]string: an unquoted number is rejected by the CRD);
scaleTargetRef names deploy/kubernetes/deployment.yaml's Deployment; 0 <= min <= max;
authenticationRef resolves to a TriggerAuthentication in the same file whose parameters are the
scaler's documented auth parameters, and a secretTargetRef to triggerd-secrets names a key that
secret.example.yaml has; the redis-streams trigger reads the stream and group of the ConfigMap's
Redis source, with lagCount (the lag, not pending); the prometheus query aggregates with max()
a metric that the README's Metrics table documents, on a source the ConfigMap has; every file
says how to match concurrency and max_inflight to replicas. Proof that it can fail: broken
variants (an unknown spec key, a number where KEDA wants a string, an unknown scaler key, a
wrong target, a dangling authenticationRef, sum() in the query) must each be reported."""

import copy
import glob
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import log, run_test  # noqa: E402
import readme_util as ru  # noqa: E402

SRC = ru.SRC
K8S = os.path.join(SRC, "deploy", "kubernetes")
KEDA = os.path.join(K8S, "keda")

SPEC = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
        "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced",
        "triggers"}
TARGET = {"apiVersion", "kind", "name", "envSourceContainerName"}
TRIGGER = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
AUTHREF = {"name", "kind"}
# scaler: (documented metadata keys, required keys, documented TriggerAuthentication parameters)
SCALERS = {
    "kafka": ({"bootstrapServers", "consumerGroup", "topic", "lagThreshold",
               "activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers",
               "scaleToZeroOnInvalidOffset", "excludePersistentLag", "limitToPartitionsWithLag",
               "version", "partitionLimitation", "sasl", "saslTokenProvider", "tls", "unsafeSsl",
               "awsRegion"},
              {"bootstrapServers", "consumerGroup"},
              {"sasl", "saslTokenProvider", "username", "password", "keytab", "realm",
               "kerberosConfig", "kerberosServiceName", "kerberosDisableFAST",
               "oauthTokenEndpointUri", "scopes", "oauthExtensions", "tls", "ca", "cert", "key",
               "keyPassword", "awsRoleArn", "awsAccessKeyID", "awsSecretAccessKey"}),
    "redis-streams": ({"address", "host", "port", "usernameFromEnv", "passwordFromEnv", "stream",
                       "consumerGroup", "pendingEntriesCount", "streamLength", "lagCount",
                       "activationLagCount", "enableTLS", "unsafeSsl", "databaseIndex",
                       "addressFromEnv", "hostFromEnv", "portFromEnv"},
                      {"stream"},
                      {"username", "password", "tls", "ca", "cert", "key", "keyPassword"}),
    "rabbitmq": ({"host", "protocol", "mode", "value", "activationValue", "queueName",
                  "vhostName", "hostFromEnv", "usernameFromEnv", "passwordFromEnv", "unsafeSsl",
                  "useRegex", "pageSize", "operation", "timeout", "excludeUnacknowledged"},
                 {"queueName", "mode", "value"},
                 {"host", "username", "password", "tls", "ca", "cert", "key",
                  "workloadIdentityResource"}),
    "prometheus": ({"serverAddress", "query", "threshold", "activationThreshold", "namespace",
                    "customHeaders", "ignoreNullValues", "queryParameters", "unsafeSsl",
                    "authModes"},
                   {"serverAddress", "query", "threshold"},
                   {"bearerToken", "username", "password", "ca", "cert", "key",
                    "customAuthHeader", "customAuthValue"}),
}


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def context():
    deployment = load_all(os.path.join(K8S, "deployment.yaml"))[0]
    secret = load_all(os.path.join(K8S, "secret.example.yaml"))[0]
    cm = load_all(os.path.join(K8S, "configmap.yaml"))[0]
    tf = yaml.safe_load(cm["data"]["triggerd.yaml"])
    metrics = {ru.code_spans(cells[0])[0] for cells in ru.table("Metrics")[1:]}
    return {"deployment": deployment["metadata"]["name"], "secret": secret,
            "sources": tf["sources"], "metrics": metrics}


def problems(docs, text, ctx):
    """Every structural problem of one file's documents (a list of strings)."""
    out = []
    auths = {d["metadata"]["name"]: d for d in docs
             if d.get("kind") == "TriggerAuthentication"}
    objs = [d for d in docs if d.get("kind") == "ScaledObject"]
    if not objs:
        out.append("no ScaledObject")
    for d in docs:
        if d.get("kind") not in ("ScaledObject", "TriggerAuthentication"):
            out.append(f"unexpected kind {d.get('kind')}")
        if d.get("apiVersion") != "keda.sh/v1alpha1":
            out.append(f"{d.get('kind')}: apiVersion {d.get('apiVersion')}")
    for name, a in auths.items():
        for ref in a.get("spec", {}).get("secretTargetRef", []):
            if set(ref) != {"parameter", "name", "key"}:
                out.append(f"{name}: secretTargetRef keys {sorted(ref)}")
            if ref.get("name") == ctx["secret"]["metadata"]["name"] and \
                    ref.get("key") not in ctx["secret"].get("stringData", {}):
                out.append(f"{name}: {ref.get('name')} has no key {ref.get('key')}")
    for o in objs:
        spec = o.get("spec", {})
        name = o.get("metadata", {}).get("name")
        out += [f"{name}: unknown spec key {k}" for k in set(spec) - SPEC]
        tgt = spec.get("scaleTargetRef", {})
        out += [f"{name}: unknown scaleTargetRef key {k}" for k in set(tgt) - TARGET]
        if tgt.get("name") != ctx["deployment"]:
            out.append(f"{name}: scaleTargetRef {tgt.get('name')} is not the triggerd Deployment")
        lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi):
            out.append(f"{name}: replicas {lo}..{hi}")
        for k in ("pollingInterval", "cooldownPeriod"):
            if k in spec and not isinstance(spec[k], int):
                out.append(f"{name}: {k} is not an integer")
        trigs = spec.get("triggers") or []
        if not trigs:
            out.append(f"{name}: no triggers")
        for t in trigs:
            out += [f"{name}: unknown trigger key {k}" for k in set(t) - TRIGGER]
            typ = t.get("type")
            if typ not in SCALERS:
                out.append(f"{name}: scaler {typ} not one of {sorted(SCALERS)}")
                continue
            keys, required, auth_params = SCALERS[typ]
            md = t.get("metadata") or {}
            out += [f"{name}: unknown {typ} metadata {k}" for k in set(md) - keys]
            out += [f"{name}: {typ} needs {k}" for k in required - set(md)]
            out += [f"{name}: metadata {k} is {type(v).__name__}, KEDA wants a string"
                    for k, v in md.items() if not isinstance(v, str)]
            ref = t.get("authenticationRef")
            if ref:
                out += [f"{name}: unknown authenticationRef key {k}" for k in set(ref) - AUTHREF]
                a = auths.get(ref.get("name"))
                if not a:
                    out.append(f"{name}: authenticationRef {ref.get('name')} not in the file")
                else:
                    params = {r.get("parameter") for r in a["spec"].get("secretTargetRef", [])}
                    out += [f"{name}: {typ} has no auth parameter {p}"
                            for p in params - auth_params]
            if typ == "redis-streams":
                redis = [s["redis"] for s in ctx["sources"].values() if "redis" in s]
                if not any(r["stream"] == md.get("stream") and r["group"] == md.get("consumerGroup")
                           for r in redis):
                    out.append(f"{name}: stream/group not the ConfigMap's Redis source")
                if "lagCount" not in md or "pendingEntriesCount" in md:
                    out.append(f"{name}: scale redis on lagCount (the lag), not pending")
            if typ == "prometheus":
                q = md.get("query", "")
                m = re.match(r"\s*max\(\s*([a-z_:]+)\{(.*)\}\s*\)\s*$", q)
                if not m:
                    out.append(f"{name}: query is not max(metric{{...}}): {q}")
                else:
                    if m.group(1) not in ctx["metrics"]:
                        out.append(f"{name}: {m.group(1)} is not a documented metric")
                    src = re.search(r'source="([^"]+)"', m.group(2))
                    if not src or src.group(1) not in ctx["sources"]:
                        out.append(f"{name}: the query's source is not the ConfigMap's")
    for word in ("concurrency", "max_inflight"):
        if word not in text:
            out.append(f"the comments never mention {word}")
    return out


def body(c):
    ctx = context()
    files = sorted(glob.glob(os.path.join(KEDA, "*.yaml")))
    kinds = []
    parsed = {}
    for path in files:
        with open(path) as f:
            text = f.read()
        docs = load_all(path)
        parsed[path] = (docs, text)
        bad = problems(docs, text, ctx)
        c.check(not bad, f"{os.path.basename(path)}: as KEDA documents it", bad)
        kinds += [t.get("type") for d in docs if d.get("kind") == "ScaledObject"
                  for t in d["spec"].get("triggers", [])]
    c.eq(sorted(kinds), sorted(SCALERS), "one ScaledObject per scaler: kafka, redis-streams, "
         "rabbitmq, prometheus")

    # Proof that the checks can fail.
    def broken(fname, what, mutate):
        docs, text = parsed[os.path.join(KEDA, fname)]
        docs = copy.deepcopy(docs)
        so = next(d for d in docs if d["kind"] == "ScaledObject")
        mutate(so, docs)
        c.check(problems(docs, text, ctx), f"a broken variant is reported: {what}")

    broken("kafka.yaml", "unknown spec key", lambda so, d: so["spec"].update(maxReplicas=3))
    broken("kafka.yaml", "a number in metadata",
           lambda so, d: so["spec"]["triggers"][0]["metadata"].update(lagThreshold=500))
    broken("rabbitmq.yaml", "unknown scaler key",
           lambda so, d: so["spec"]["triggers"][0]["metadata"].update(queue="jobs"))
    broken("redis-streams.yaml", "wrong target",
           lambda so, d: so["spec"]["scaleTargetRef"].update(name="other"))
    broken("redis-streams.yaml", "dangling authenticationRef",
           lambda so, d: so["spec"]["triggers"][0]["authenticationRef"].update(name="nope"))
    broken("redis-streams.yaml", "pending instead of lag",
           lambda so, d: so["spec"]["triggers"][0]["metadata"].update(pendingEntriesCount="10"))
    broken("prometheus.yaml", "sum() over replicas",
           lambda so, d: so["spec"]["triggers"][0]["metadata"].update(
               query='sum(triggerd_source_lag_messages{source="uploads"})'))
    broken("prometheus.yaml", "an undocumented metric",
           lambda so, d: so["spec"]["triggers"][0]["metadata"].update(
               query='max(triggerd_lag{source="uploads"})'))
    log(f"{len(files)} files")


run_test(body, needs_triggerd=False)
