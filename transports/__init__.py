"""Mail commands of a Linux server: catalogue, detection, TLS probing, test sends.

Plain Python, no Django: usable from a shell (``python -m transports``), a
Celery task or a test alike.
"""

from __future__ import annotations

from .base import Detection, Mode, SendResult, Step, Target, TargetError
from .catalogue import BY_KEY, CATALOGUE, KEYS

__all__ = [
    "BY_KEY",
    "CATALOGUE",
    "KEYS",
    "Detection",
    "Mode",
    "SendResult",
    "Step",
    "Target",
    "TargetError",
]
