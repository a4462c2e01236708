"""Why a pod cannot run, in its container's words: shared by model server pods and run Jobs."""

from __future__ import annotations

from typing import Any

# Waiting reasons that mean the container will not start (or keeps dying) without a change
# elsewhere: an image that is not there, a Secret or ConfigMap key that is missing, a crash loop.
STUCK = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "InvalidImageName",
}


def stuck(pods: list[dict[str, Any]]) -> str | None:
    """Why a pod cannot run: the container's waiting reason and its last message."""
    for pod in pods:
        status = pod.get("status") or {}
        containers = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        for container in containers:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK:
                last = ((container.get("lastState") or {}).get("terminated") or {}).get("message") or ""
                said = (last.strip() or waiting.get("message") or "").strip().splitlines()[-3:]
                name = (pod.get("metadata") or {}).get("name")
                return f"pod {name}: container {container['name']}: {waiting['reason']}: {' | '.join(said)}"
    return None


def not_created(events: list[dict[str, Any]]) -> str | None:
    """Why a controller could not create its pods (FailedCreate: a missing ServiceAccount, a refused
    security policy, a quota), from the newest such Event."""
    failed = [e for e in events if e.get("reason") == "FailedCreate"]
    if not failed:
        return None
    newest = max(failed, key=lambda e: str(e.get("last_timestamp") or e.get("lastTimestamp") or ""))
    return f"FailedCreate: {str(newest.get('message') or '').strip()}"


def blocked(pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> str | None:
    """Why a Job's pods cannot run: a stuck container, else pods that could not be created."""
    return stuck(pods) if pods else not_created(events)
