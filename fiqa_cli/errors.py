"""The one base of every error fiqa expects and explains.

A `FiqaError`'s message is written for the person at the terminal: it says what is wrong and,
where there is one, the fix. Commands print it as `Error: ...` and exit 1
(`fiqa_cli.commands.options.FiqaCommand`); anything else escaping a command is a bug.
Subclasses exist where a caller must tell failures apart (a per-input failure row against a
fatal setup problem, for one).
"""

from __future__ import annotations


class FiqaError(Exception):
    """An expected failure with a message fit to show as it is."""


class ModelFileError(FiqaError):
    """An ONNX model file is missing, not loadable, or does not follow its contract."""
