"""cgd-harness: benchmark harness for SFT / CFT / Critique-Guided Distillation."""

__version__ = "0.1.0"
