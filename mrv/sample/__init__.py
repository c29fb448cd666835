"""Sample data: a seeded demo project with realistic faults."""

from mrv.sample.demo import DEMO_PARAMETERS, generate_demo_project

__all__ = ["DEMO_PARAMETERS", "generate_demo_project"]
