"""A run Job whose pod cannot run ends, with the pod's words, instead of staying Running for ever."""

from __future__ import annotations

from typing import Any

from lathe_core.runs import RunRequest
from lathe_core.settings import StoreSettings
from lathe_operator.backends.executors import FAILURE, JobExecutor
from lathe_operator.reconcile import pods

STORE = StoreSettings(uri="s3://lathe", endpoint="s3.store:9000", access_key="AK", secret_key="SK")


class Kube:
    """The calls the Job executor makes, on dictionaries."""

    def __init__(self, job: dict[str, Any] | None, pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        self.job, self.pods, self.events = job, pods, events
        self.patches: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.job

    def list(self, api_version: str, kind: str, namespace: str, **selectors: str | None) -> list[dict[str, Any]]:
        return self.pods if kind == "Pod" else self.events

    def patch(self, api_version: str, kind: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        self.patches.append(body)
        assert self.job is not None
        self.job["metadata"].setdefault("annotations", {}).update(body["metadata"]["annotations"])

    def ensure(self, manifest: dict[str, Any]) -> bool:
        self.created.append(manifest)
        return True


def job(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "digits-1"}, "status": status}


def waiting(reason: str, message: str) -> dict[str, Any]:
    container = {"name": "ingest", "state": {"waiting": {"reason": reason, "message": message}}}
    return {"metadata": {"name": "digits-1-x7"}, "status": {"containerStatuses": [container]}}


def executor(kube: Kube) -> JobExecutor:
    return JobExecutor(kube, lambda request: {"kind": "Job"}, pods.blocked, service_account="lathe-jobs")


def test_a_running_pod_is_running() -> None:
    running = {"metadata": {"name": "p"}, "status": {"containerStatuses": [{"name": "c", "state": {"running": {}}}]}}
    kube = Kube(job(active=1), [running], [])
    assert executor(kube).state("team", "digits-1").phase == "Running" and not kube.patches


def test_a_missing_secret_ends_the_job_once_and_says_so_from_then_on() -> None:
    kube = Kube(job(active=1), [waiting("CreateContainerConfigError", 'secret "creds" not found')], [])
    state = executor(kube).state("team", "digits-1")
    assert state.phase == "Failed" and 'CreateContainerConfigError: secret "creds" not found' in state.message
    assert kube.patches[0]["spec"] == {"activeDeadlineSeconds": 1}  # the Job controller ends it and its pods
    kube.pods = []  # the controller removed the pod and failed the Job
    kube.job["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}
    assert FAILURE in kube.job["metadata"]["annotations"]
    again = executor(kube).state("team", "digits-1")
    assert again.message == state.message and len(kube.patches) == 1


def test_pods_that_cannot_be_created_end_the_job_with_the_controllers_event() -> None:
    job = {"kind": "Job", "name": "digits-1"}
    events = [
        {"reason": "FailedCreate", "message": "old", "lastTimestamp": "2026-11-26T08:00:00Z", "involvedObject": job},
        {
            "involvedObject": job,
            "reason": "FailedCreate",
            "message": 'Error creating: pods "digits-1-" is forbidden: error looking up service account team/x',
            "lastTimestamp": "2026-11-26T08:00:01Z",
        },
    ]
    state = executor(Kube({"metadata": {"name": "digits-1"}, "status": {}}, [], events)).state("team", "digits-1")
    assert (
        state.phase == "Failed"
        and "FailedCreate: Error creating" in state.message
        and "service account" in state.message
    )


def test_a_finished_job_and_an_absent_one() -> None:
    done = job(conditions=[{"type": "Complete", "status": "True"}])
    assert executor(Kube(done, [], [])).state("team", "digits-1").phase == "Failed"  # ended without a report
    assert executor(Kube(None, [], [])).state("team", "digits-1").phase == "Absent"


def test_start_creates_the_jobs_service_account_without_a_token() -> None:
    kube = Kube(None, [], [])
    request = RunRequest(
        namespace="team", name="digits-1", component="ingest", args=("ingest",), labels={}, owner={}, generation=1
    )
    assert executor(kube).start(request)
    account = kube.created[0]
    assert account["kind"] == "ServiceAccount" and account["metadata"] == {
        "name": "lathe-jobs",
        "namespace": "team",
        "labels": {"app.kubernetes.io/managed-by": "lathe"},
    }
    assert account["automountServiceAccountToken"] is False


def test_a_training_run_in_a_job_pod_lands_on_its_node_pool() -> None:
    from lathe_operator.reconcile import jobs

    resources = {
        "gpus": 1,
        "acceleratorType": "nvidia-tesla-t4",
        "memory": "4Gi",
        "nodeSelector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    owner = {"apiVersion": "lathe.dev/v1alpha1", "kind": "TrainingRun", "name": "r", "uid": "u"}
    request = jobs.training_request("team", "r-u-1", {"seed": 1}, resources, False, owner)
    job = jobs.manifest(request, image="lathe.local/pipelines:1", service_account="lathe-jobs", store=STORE)
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == ["lathe", "train"] and container["image"] == "lathe.local/pipelines:1"
    assert container["resources"] == {"limits": {"memory": "4Gi", "nvidia.com/gpu": "1"}}
    assert pod["nodeSelector"] == {"pool": "gpu", "cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert pod["tolerations"] == resources["tolerations"] and job["metadata"]["ownerReferences"] == [owner]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert '"pipelineRoot": "/tmp/pipeline"' in env["LATHE_TRAINING_REQUEST"]  # scratch: the root is read-only
    assert container["securityContext"]["readOnlyRootFilesystem"] and pod["automountServiceAccountToken"] is False
