"""Start the model tier: Ray on this machine, or join the cluster that RAY_ADDRESS names; then N replicas on it,
routed by a consistent hash of each page's id."""

from __future__ import annotations

import logging
import os

import ray
from ray import serve
from ray.serve.config import RequestRouterConfig

from .front import ReplicaTier
from .replica import ModelReplica

log = logging.getLogger("xlm_demo")

APP = "xlm-demo"  # the Serve application: a second front that runs the same command finds it running
DEPLOYMENT = "model"
# Ray's own: each page id's place on a ring of replicas; a replica that is gone or full passes the page to the next.
ROUTER = "ray.serve.experimental.consistent_hash_router.ConsistentHashRouter"
# How often the controller asks each replica whether it is alive; one that does not answer is replaced.
HEALTH_CHECK_PERIOD = 2.0  # seconds


def start_replicas(
    model: str | None,
    device: str,
    dtype: str,
    quantize: str,
    replicas: int,
    cpus: float,
    concurrency: int,
    prefix_cache_bytes: int,
) -> ReplicaTier:
    """The model tier on `replicas` replicas of `cpus` cores each, `concurrency` requests waiting on each at once
    and a prefix cache of `prefix_cache_bytes` each."""
    arguments = (model, device, dtype, quantize, concurrency, prefix_cache_bytes)
    tier = deploy(ModelReplica, arguments, replicas, cpus, concurrency)
    log.info("the model tier: %d replicas of %s core(s) on Ray %s", replicas, cpus, ray.__version__)
    return tier


def deploy(replica: type, arguments: tuple, replicas: int, cpus: float, concurrency: int) -> ReplicaTier:
    """`replicas` of a replica class built with `arguments` (ModelReplica's, or one of the benchmarks'), Ray
    started or joined first, and the front's tier in front of them."""
    if not ray.is_initialized():
        joining = bool(os.environ.get("RAY_ADDRESS"))
        ray.init(**({} if joining else {"include_dashboard": False}), logging_level=logging.WARNING)
    serve.start(proxy_location="Disabled")  # the page is the way in: no Serve HTTP proxy
    deployment = serve.deployment(replica).options(
        name=DEPLOYMENT,
        num_replicas=replicas,
        max_ongoing_requests=concurrency,  # below it a replica takes every request its pages send
        ray_actor_options={"num_cpus": cpus},
        request_router_config=RequestRouterConfig(request_router_class=ROUTER),
        health_check_period_s=HEALTH_CHECK_PERIOD,
        logging_config={"enable_access_log": False},  # not a log line per keystroke
    )
    handle = serve.run(deployment.bind(*arguments), name=APP, route_prefix=None)
    return ReplicaTier(handle, handle.facts.remote().result())
