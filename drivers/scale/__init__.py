"""Serial weighing scales: MT-SICS, Toledo continuous output, SMA and configurable ASCII formats."""

from drivers.scale.config import ScaleConfig
from drivers.scale.driver import ScaleDriver

__all__ = ["ScaleConfig", "ScaleDriver"]
