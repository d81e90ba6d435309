"""What nodes use to touch the world: LLM, executors, tasks, metrics, the run folder."""
