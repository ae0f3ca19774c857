"""Training logic: the :class:`~framework.models.base.Model` contract every registered model implements
(``base.py``), SRModel (``sr_model.py``) and the EMA of a network's weights (``ema.py``)."""
