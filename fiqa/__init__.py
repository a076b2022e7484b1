"""fiqa's Python API (`fiqa_cli.api`): score faces from Python with the pipeline `fiqa score`
runs.

    from fiqa import Scorer
    rows = Scorer().score("photo.jpg")
"""

from fiqa_cli import __version__
from fiqa_cli.api import FaceScore, FiqaError, Scorer

__all__ = ["FaceScore", "FiqaError", "Scorer", "__version__"]
