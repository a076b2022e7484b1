"""Shipped ONNX models and their model cards (package data, no code)."""
