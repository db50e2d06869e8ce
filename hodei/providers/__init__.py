"""Workers on demand: the provider interface (`base`), providers.yaml (`config`), the
registry of provider types (`registry`) and the providers themselves (`process`,
`docker_provider`; Kubernetes in `kubernetes_provider`). The Docker and Kubernetes
clients are imported only inside their modules: `pip install hodei` runs without them."""
