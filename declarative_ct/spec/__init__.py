"""Desired state: YAML spec documents (one container each), loaded and validated all at once.

The reconciler consumes :class:`~.model.ContainerSpec` objects; nothing here touches a container.
"""
