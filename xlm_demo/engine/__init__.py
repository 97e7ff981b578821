"""The engine: `Engine`, the one facade the CLI, the API and the page call, over sessions, the prefix cache,
sampling and batching."""

from .engine import Engine
from .results import Analysis, Candidate, Comparison, Distribution, Encoded, Fill, FillCandidate, Step, TokenScore

__all__ = [
    "Analysis",
    "Candidate",
    "Comparison",
    "Distribution",
    "Encoded",
    "Engine",
    "Fill",
    "FillCandidate",
    "Step",
    "TokenScore",
]
