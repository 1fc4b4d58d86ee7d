"""The demo region `make run` serves: a seeded, self-contained Chinese regional health network."""
from ihs.demo.generator import generate_region

__all__ = ["generate_region"]
