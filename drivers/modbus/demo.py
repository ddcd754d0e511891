"""`edge-agent demo`: a conveyor PLC simulator on loopback Modbus TCP and the device that reads it."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from drivers.modbus.simulator import ConveyorPlc, TcpSimulator

__all__ = ["ModbusDemo", "start"]

_DEVICE = """\
  - id: demo-conveyor
    driver: modbus
    transport: tcp
    host: 127.0.0.1
    port: {port}
    unit: 1
    poll_interval: 500ms
    timeout: 500ms
    points:
      - {{name: parcels_total, table: holding, address: 0, type: uint32, deadband: 0, max_age: 10s}}
      - {{name: state, table: holding, address: 4, deadband: 0, max_age: 10s}}
      - {{name: uptime, table: holding, address: 6, type: uint32, order: CDAB, unit: s}}
      - {{name: label, table: holding, address: 20, type: string, length: 8, max_age: 1m}}
      - {{name: distance, table: holding, address: 110, type: float64, order: DCBA, unit: m, deadband: 0.5}}
      - {{name: belt_speed, table: input, address: 10, type: float32, order: CDAB, scale: 0.1, unit: m/s,
          deadband: 0.05, max_age: 30s}}
      - {{name: motor_temp, table: input, address: 1, type: int16, scale: 0.1, unit: °C, deadband: '2%'}}
      - {{name: photo_eye_1, table: discrete, address: 0, deadband: 0}}
"""


@dataclass
class ModbusDemo:
    simulator: TcpSimulator
    yaml: str

    def stop(self) -> None:
        self.simulator.stop()


def start(workdir: pathlib.Path) -> ModbusDemo:
    """Start the simulator (a thread of this process) and return the device entry that reads it."""
    simulator = TcpSimulator(ConveyorPlc()).start()
    return ModbusDemo(simulator, _DEVICE.format(port=simulator.port))
