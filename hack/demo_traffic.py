"""The demo's client: digits rows sent to a ModelDeployment's endpoint, ground truth sent back as Seldon feedback."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

import numpy as np


def post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Client(threading.Thread):
    """Sends one row per request until stopped; reports each answer's truth through /api/v1.0/feedback."""

    def __init__(self, endpoint: str, rows: np.ndarray, labels: list[str], pause: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.rows, self.labels, self.pause = endpoint, rows, labels, pause
        self.feedback = endpoint.replace("/api/v1.0/predictions", "/api/v1.0/feedback")
        self.stopped = threading.Event()
        self.served: Counter[str] = Counter()
        self.right: Counter[str] = Counter()

    def once(self, i: int) -> None:
        row, truth = self.rows[i % len(self.rows)], self.labels[i % len(self.labels)]
        code, answer = post(self.endpoint, {"data": {"ndarray": [row.tolist()]}})
        if code != 200:
            self.served[str(code)] += 1
            return
        version = answer["meta"]["requestPath"]["model"]
        names, probabilities = answer["data"]["names"], answer["data"]["ndarray"][0]
        self.served[version] += 1
        self.right[version] += names[int(np.argmax(probabilities))] == truth
        post(self.feedback, {"response": answer, "truth": {"data": {"ndarray": [truth]}}})

    def run(self) -> None:
        i = 0
        while not self.stopped.wait(self.pause):
            self.once(i)
            i += 1

    def stop(self) -> str:
        self.stopped.set()
        if self.ident is not None:
            self.join(10)
        return self.summary()

    def summary(self) -> str:
        return ", ".join(
            f"{v}: {n} requests, {self.right[v] / n:.1%} right" if v in self.right else f"HTTP {v}: {n}"
            for v, n in sorted(self.served.items())
        )
