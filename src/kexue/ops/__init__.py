"""Operating the models: the champion/challenger gate of scheduled retraining."""

from kexue.ops.gate import GateConfig, decide, gate_decision

__all__ = ["GateConfig", "decide", "gate_decision"]
