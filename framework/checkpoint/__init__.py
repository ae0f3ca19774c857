"""Checkpoints: what the files hold, how they are written and read safely, and the manager of one run's.

Formats:
- ``<name>_iter_<N>.pth`` / ``<name>_best.pth``: exactly ``{'params': state_dict}``, for deployment.
- ``<name>_iter_<N>.safetensors`` / ``<name>_best.safetensors`` (``logger.save_checkpoint_format``): the same
  tensors as the ``.pth``, flat (the layout spandrel and chaiNNer read), with the architecture, scale, the
  ``network_g`` options and the framework version as metadata.
- ``<name>_iter_<N>.pt`` / ``<name>_best.pt``: the full training state, a plain dict marked
  ``kind: 'training_state'`` with a format version.
``.pt`` and ``.pth`` load with ``torch.load(..., weights_only=True)``, ``.safetensors`` with safetensors (no
pickle at all).

Modules, one job each (import from them directly):
- :mod:`.format`: the training state's layout and version, its check, the ``.safetensors`` metadata.
- :mod:`.io`: atomic writes (temp file, fsync, rename, a ``.pt`` and its weights files together), ``.safetensors``.
- :mod:`.safe_load`: weights-only loading, the unsafe-globals scanner, :func:`~.safe_load.verify`.
- :mod:`.weights`: network weights from any file a user points at (:func:`~.weights.read_weights`).
- :mod:`.archive`: the best model's copy in ``experiments/<name>/best_model/``.
- :mod:`.manager`: :class:`~.manager.CheckpointManager`, the save policy and the one save path.
- :mod:`.writer`: the snapshot and the background writer thread of asynchronous saves.
- :mod:`.errors`: :class:`~.errors.CheckpointError`, :class:`~.errors.CheckpointWriteError`.
"""
