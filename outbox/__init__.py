"""The outbox: messages that applications on this server hand to ``xmail-sendmail``.

Plain Python without Django or ``transports``, so the entry point starts fast and runs
as any local user. A message is written as Maildir does it (a file in ``tmp/``, fsync,
rename into ``new/``), so a half-written message is never picked up; the delivery (the
panel's worker, through the preferred order with fallback) takes it from ``new/``.
"""
