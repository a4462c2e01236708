"""Plain-Python pipeline steps: no kfp, no Kubernetes; each testable with plain values."""
