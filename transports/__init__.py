"""Mail commands of a Linux server: catalogue, detection, TLS probing, test sends.

Plain Python, no Django: usable from a shell (``python -m transports``), a
Celery task or a test alike. Every sentence it gives is a :class:`Text` (an English
message id and its parameters) that the panel translates.
"""

from __future__ import annotations

from .base import Detection, Mode, SendResult, Step, Target, TargetError
from .catalogue import BY_KEY, CATALOGUE, KEYS
from .texts import Text

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
    "Text",
]
