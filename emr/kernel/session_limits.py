"""Automatic logoff (HIPAA §164.312(a)(2)(iii)): a signed-in session ends after a while without
activity, and after an absolute lifetime however active it is.

The session is written at most once a minute to note activity, not on every request.
"""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout

_STARTED = "session_limits.started"
_LAST_SEEN = "session_limits.last_seen"
_NOTE_EVERY_SECONDS = 60


class SessionLimitsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated and hasattr(request, "session"):
            self._apply(request)
        return self.get_response(request)

    def _apply(self, request) -> None:
        session, now = request.session, time.time()
        started = session.setdefault(_STARTED, now)
        last_seen = session.get(_LAST_SEEN, started)
        idle_limit = settings.IDLE_LOGOFF_MINUTES * 60
        if now - last_seen > idle_limit:
            self._end(
                request,
                f"You were signed out after {settings.IDLE_LOGOFF_MINUTES} "
                "minutes without activity. Sign in again to go on.",
            )
        elif now - started > settings.SESSION_MAX_HOURS * 3600:
            self._end(
                request,
                f"Sessions last at most {settings.SESSION_MAX_HOURS} hours. "
                "Sign in again to go on.",
            )
        elif now - last_seen > _NOTE_EVERY_SECONDS:
            session[_LAST_SEEN] = now

    @staticmethod
    def _end(request, sentence: str) -> None:
        logout(request)
        messages.info(request, sentence)
