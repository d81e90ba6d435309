import shutil
from pathlib import Path

import pytest

from gome.tools.llm import structured

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def breast_cancer(tmp_path) -> Path:
    """A private copy of the breast-cancer example task (tests may break it)."""
    dest = tmp_path / "breast-cancer"
    shutil.copytree(EXAMPLES / "breast-cancer", dest)
    return dest


@pytest.fixture(autouse=True)
def _fresh_method_cache():
    """The remembered structured-output method is per model identity; tests reuse the fake's name."""
    structured._working_method.clear()
    yield
    structured._working_method.clear()


@pytest.fixture(scope="session")
def ray_cluster():
    """A real Ray cluster on this machine, shared by the Ray tests: a head and a second node of one CPU each
    (so two one-CPU scripts at once must use both). Tests that kill a node add their own."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 0, "include_dashboard": False, "object_store_memory": 100 << 20,
        "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4}})
    cluster.add_node(num_cpus=1, num_gpus=0, object_store_memory=100 << 20)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()

