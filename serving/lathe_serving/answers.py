"""The answers a server gave, so that feedback is graded only against them.

Feedback names a request id and the true classes. It is graded against an answer this server
gave: one this process remembers, or the Seldon response the client carries back, whose tag
``lathe.dev/answer`` is an HMAC of (request id, version, predicted classes). The key is shared by
every worker and replica of a deployment: ``LATHE_FEEDBACK_KEY``, else one derived from the store's
secret key and the deployment's name, else one made at start-up before workers fork. A version or
prediction the client made up grades nothing, and each answer is graded once per process.

Memory is bounded by the classes held (``MAX_LABELS``), not by requests, so large requests are
remembered too; the oldest answers go first.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections import OrderedDict
from typing import NamedTuple

TAG = "lathe.dev/answer"
KEY_ENV = "LATHE_FEEDBACK_KEY"
MAX_LABELS = 200_000  # predicted classes remembered for feedback that does not carry its answer
MAX_GRADED = 100_000  # request ids graded recently (a second grade of one answer is refused)


class Answer(NamedTuple):
    version: int
    labels: list[str]


def ensure_key() -> None:
    """Before workers fork: make the process's key where nothing configures one, so every worker shares it."""
    if not os.environ.get(KEY_ENV) and not os.environ.get("LATHE_STORE_SECRET_KEY"):
        os.environ[KEY_ENV] = secrets.token_hex(32)


def configured_key(namespace: str, deployment: str) -> bytes:
    """The deployment's signing key (see the module docstring for where it comes from)."""
    given = os.environ.get(KEY_ENV)
    if given:
        return given.encode()
    store = os.environ.get("LATHE_STORE_SECRET_KEY")
    if store:
        return hmac.new(store.encode(), f"lathe.dev/feedback/{namespace}/{deployment}".encode(), "sha256").digest()
    ensure_key()
    return os.environ[KEY_ENV].encode()


class Answers:
    """Signs answers, remembers recent ones, and hands each out once for grading."""

    def __init__(self, key: bytes, max_labels: int = MAX_LABELS, max_graded: int = MAX_GRADED) -> None:
        self.key, self.max_labels, self.max_graded = key, max_labels, max_graded
        self.recent: OrderedDict[str, Answer] = OrderedDict()
        self.graded: OrderedDict[str, None] = OrderedDict()
        self.held = 0

    def sign(self, request_id: str, answer: Answer) -> str:
        message = "\x1f".join([request_id, str(answer.version), *answer.labels]).encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:32]

    def remember(self, request_id: str, answer: Answer) -> None:
        old = self.recent.pop(request_id, None)
        self.held -= len(old.labels) if old else 0
        if len(answer.labels) > self.max_labels:
            return
        self.recent[request_id] = answer
        self.held += len(answer.labels)
        while self.held > self.max_labels:
            self.held -= len(self.recent.popitem(last=False)[1].labels)

    def find(self, request_id: str, carried: Answer | None, tag: str | None) -> Answer | None:
        """The answer to grade: remembered here, or carried back with a valid tag; None when it is neither,
        or when it was graded already."""
        if request_id in self.graded:
            return None
        found = self.recent.get(request_id)
        if found is not None:
            return found
        if carried is not None and tag and hmac.compare_digest(self.sign(request_id, carried), tag):
            return carried
        return None

    def graded_now(self, request_id: str) -> None:
        """Record a grade: the answer is forgotten and its request id refused from now on."""
        found = self.recent.pop(request_id, None)
        self.held -= len(found.labels) if found else 0
        self.graded[request_id] = None
        if len(self.graded) > self.max_graded:
            self.graded.popitem(last=False)

    def was_graded(self, request_id: str) -> bool:
        return request_id in self.graded
