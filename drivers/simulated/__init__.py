"""A simulated device: counter readings at a fixed rate, for the demo, the tests and the benchmarks."""

from drivers.simulated.driver import SimulatedConfig, SimulatedDriver

__all__ = ["SimulatedConfig", "SimulatedDriver"]
