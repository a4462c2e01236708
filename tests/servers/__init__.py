"""Real servers for tests and the local demo, started on loopback from cached binaries.

``controlplane`` (etcd, kube-apiserver, kube-controller-manager), ``s3`` (S3Proxy with
its filesystem backend) and ``prometheus``. Binaries come from hack/setup.sh.
"""
