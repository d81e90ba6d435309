"""Killing and adding nodes of the test Ray cluster (tests/conftest.py's ray_cluster)."""

import time

import ray

NODE = {"num_cpus": 1, "num_gpus": 0, "object_store_memory": 100 << 20}


def add_node(cluster, **resources):
    node = cluster.add_node(**NODE, **({"resources": resources} if resources else {}))
    cluster.wait_for_nodes()
    return node


def kill_node(cluster, node, timeout_s: float = 90) -> None:
    """Kill a node (no grace) and wait until the cluster counts it dead: until then it is listed alive, and a
    test that compares node sets would race with the health check."""
    cluster.remove_node(node, allow_graceful=False)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(n["NodeID"] == node.node_id and n["Alive"] for n in ray.nodes()):
        time.sleep(0.2)


def live_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
