"""Training and export (installed as `fiqa_cli.export`); needs the `train` extra (torch).

Importing this package does not import torch: only the modules that need it do.
"""
